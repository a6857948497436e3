import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SwitchboardTestSupport
import Synchronization

/// A provider webhook for tests (never part of production): records every request it receives and answers as the
/// test's script says: accept, fail with a status (and Retry-After), answer late, or never answer. Like a real
/// provider it deduplicates by `Idempotency-Key`: ``deliveries`` counts the messages it would actually have sent.
/// A connection whose request asks for keep-alive stays open for the next request (closed by the provider after
/// `closeIdleAfter` without one, when set, like a server's keep-alive timeout); ``acceptedConnections`` counts them.
/// Started with a certificate it serves HTTPS (TLS in front of the same HTTP/1.1 pipeline).
final class FakeProvider: Sendable {
    /// One received request.
    struct Request: Sendable {
        var headers: [String: String]
        var body: [UInt8]
        var idempotencyKey: String { headers["idempotency-key"] ?? "" }
        var signature: String { headers["x-switchboard-signature"] ?? "" }
        var attempt: Int { Int(headers["x-switchboard-attempt"] ?? "") ?? 0 }
    }

    /// How to answer a request.
    enum Answer: Sendable {
        /// 200 with `{"id": …}`.
        case accept
        /// This status, with a Retry-After header when given.
        case status(Int, retryAfter: String? = nil)
        /// Accept, after a delay.
        case late(Duration)
        /// Never answer (the connection stays open until the client gives up).
        case hang
    }

    private let state = Mutex<(requests: [Request], delivered: Set<String>, script: [Answer], fallback: Answer)>(([], [], [], .accept))
    private let connections = Mutex<(accepted: Int, open: Int)>((0, 0))
    /// How long a kept-alive connection may stay idle before the provider closes it; nil: until the client closes it.
    let closeIdleAfter: Duration?
    private let channel: any Channel
    /// The port it listens on (loopback).
    let port: Int
    /// Whether it serves HTTPS.
    let tls: Bool
    /// Its URL: `http://127.0.0.1:port/hooks/send`, or with TLS `https://localhost:port/hooks/send` (a name, verified
    /// against the certificate and sent as SNI).
    var url: String { tls ? url(host: "localhost") : url(host: "127.0.0.1") }

    /// Its URL with `host` (a name or address of the loopback interface).
    func url(host: String) -> String { "\(tls ? "https" : "http")://\(host):\(port)/hooks/send" }

    private init(channel: any Channel, closeIdleAfter: Duration?, tls: Bool) {
        self.channel = channel
        self.closeIdleAfter = closeIdleAfter
        self.tls = tls
        self.port = channel.localAddress?.port ?? 0
    }

    /// Starts a provider on a free loopback port.
    /// - Parameters:
    ///   - closeIdleAfter: closes a kept-alive connection idle this long (nil: never).
    ///   - certificate: serves HTTPS with this certificate and key (nil: plain HTTP).
    static func start(closeIdleAfter: Duration? = nil, certificate: TestCertificate? = nil) async throws -> FakeProvider {
        let sslContext = try certificate.map { certificate in
            try NIOSSLContext(
                configuration: .makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.certificate).map { .certificate($0) },
                    privateKey: .privateKey(try NIOSSLPrivateKey(file: certificate.key, format: .pem))))
        }
        let box = Mutex<FakeProvider?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                box.withLock { $0 }?.accepted(channel)
                return channel.eventLoop.makeCompletedFuture {
                    if let sslContext { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(provider: { box.withLock { $0 } }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let provider = FakeProvider(channel: channel, closeIdleAfter: closeIdleAfter, tls: sslContext != nil)
        box.withLock { $0 = provider }
        return provider
    }

    func stop() async { try? await channel.close() }

    /// Answers the next requests in order, then `fallback`.
    func script(_ answers: [Answer], then fallback: Answer = .accept) {
        state.withLock {
            $0.script = answers
            $0.fallback = fallback
        }
    }

    var requests: [Request] { state.withLock { $0.requests } }
    /// Connections accepted so far.
    var acceptedConnections: Int { connections.withLock { $0.accepted } }
    /// Connections open now.
    var openConnections: Int { connections.withLock { $0.open } }

    fileprivate func accepted(_ channel: any Channel) {
        connections.withLock {
            $0.accepted += 1
            $0.open += 1
        }
        channel.closeFuture.whenComplete { [weak self] _ in self?.connections.withLock { $0.open -= 1 } }
    }
    /// Distinct idempotency keys accepted: the messages a deduplicating provider sent.
    var deliveries: Set<String> { state.withLock { $0.delivered } }

    fileprivate func receive(_ request: Request) -> Answer {
        state.withLock {
            $0.requests.append(request)
            let answer = $0.script.isEmpty ? $0.fallback : $0.script.removeFirst()
            switch answer {
            case .accept, .late: $0.delivered.insert(request.idempotencyKey)
            default: break
            }
            return answer
        }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let provider: @Sendable () -> FakeProvider?
        var head: HTTPRequestHead?
        var body: [UInt8] = []
        /// Counts requests, so an idle timer knows whether another one came.
        var served = 0
        var keepAlive = false
        var closeIdleAfter: Duration?

        init(provider: @escaping @Sendable () -> FakeProvider?) { self.provider = provider }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                body = []
            case .body(var buffer): body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head, let provider = provider() else { return }
                var headers: [String: String] = [:]
                for (name, value) in head.headers { headers[name.lowercased()] = value }
                let request = Request(headers: headers, body: body)
                let answer = provider.receive(request)
                served += 1
                keepAlive = head.isKeepAlive
                closeIdleAfter = provider.closeIdleAfter
                let loop = context.eventLoop
                let bound = NIOLoopBound((self, context), eventLoop: loop)
                switch answer {
                case .accept: bound.value.0.respond(bound.value.1, status: 200, id: request.idempotencyKey, retryAfter: nil)
                case .status(let code, let retryAfter): bound.value.0.respond(bound.value.1, status: code, id: nil, retryAfter: retryAfter)
                case .late(let delay):
                    let nanos = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
                    loop.scheduleTask(in: .nanoseconds(nanos)) {
                        bound.value.0.respond(bound.value.1, status: 200, id: request.idempotencyKey, retryAfter: nil)
                    }
                case .hang: break
                }
            }
        }

        func respond(_ context: ChannelHandlerContext, status: Int, id: String?, retryAfter: String?) {
            let text = id.map { "{\"id\":\"msg-\($0)\"}" } ?? "{\"error\":\"scripted\"}"
            var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(text.utf8.count))])
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            if let retryAfter { headers.add(name: "Retry-After", value: retryAfter) }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            guard keepAlive else {
                written.futureResult.whenComplete { _ in bound.value.1.close(promise: nil) }
                return
            }
            if let idle = closeIdleAfter {
                let request = served
                let nanos = idle.components.seconds * 1_000_000_000 + idle.components.attoseconds / 1_000_000_000
                context.eventLoop.scheduleTask(in: .nanoseconds(nanos)) {
                    // Still idle: no request came since this answer.
                    if bound.value.0.served == request { bound.value.1.close(promise: nil) }
                }
            }
        }
    }
}
