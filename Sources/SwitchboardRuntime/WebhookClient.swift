import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An HTTP endpoint webhooks are posted to (a provider's, or the events webhook the gateway forwards to):
/// `http://host[:port]/path` or `https://host[:port]/path`.
public struct WebhookEndpoint: Sendable, Hashable {
    /// TLS or not.
    public var tls: Bool
    /// The host name or address.
    public var host: String
    /// The port.
    public var port: Int
    /// The request target (path and query), starting with `/`.
    public var path: String

    /// Parses a URL; nil when it is not an absolute http(s) URL with a host.
    public init?(url: String) {
        let tls: Bool
        var rest: Substring
        if url.hasPrefix("https://") {
            tls = true
            rest = url.dropFirst("https://".count)
        } else if url.hasPrefix("http://") {
            tls = false
            rest = url.dropFirst("http://".count)
        } else {
            return nil
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        rest = authority
        var host = String(authority)
        var port = tls ? 443 : 80
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
            host = String(authority[..<colon])
        }
        guard !host.isEmpty, !host.contains("@"), !path.contains(" ") else { return nil }
        self.tls = tls
        self.host = host
        self.port = port
        self.path = path
    }
}

/// What the provider answered.
public struct WebhookResponse: Sendable {
    /// The HTTP status code.
    public var status: Int
    /// The response headers.
    public var headers: HTTPHeaders
    /// The body (bounded by the client).
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, headers: HTTPHeaders, body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Why a webhook call produced no response.
public enum WebhookError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No complete response within the timeout.
    case timeout
    /// The connection failed or closed early.
    case connection(String)
    /// The response body passed the bound.
    case responseTooLarge

    /// What went wrong, for logs.
    public var description: String {
        switch self {
        case .timeout: "the provider did not answer in time"
        case .connection(let why): "connection failed: \(why)"
        case .responseTooLarge: "the provider's response was too large"
        }
    }
}

/// A minimal HTTP/1.1 client for one POST per connection (SwiftNIO's NIOHTTP1, NIOSSL for https). One connection
/// per call keeps it simple and a slow or broken provider cannot wedge others; the provider rate is bounded by the
/// dispatcher's concurrency.
public struct WebhookClient: Sendable {
    let endpoint: WebhookEndpoint
    let group: any EventLoopGroup
    let sslContext: NIOSSLContext?
    /// Largest response body read.
    static let maxResponseBytes = 64 * 1024

    /// Creates a client.
    /// - Throws: when the TLS context cannot be made.
    public init(endpoint: WebhookEndpoint, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.endpoint = endpoint
        self.group = group
        self.sslContext = endpoint.tls ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
    }

    /// Posts `body` with `headers`; the whole call (connect, send, response) is bounded by `timeout`.
    /// - Throws: ``WebhookError``.
    public func post(body: [UInt8], headers extra: [(String, String)], timeout: TimeAmount) async throws -> WebhookResponse {
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: WebhookResponse.self)
        let endpoint = self.endpoint, sslContext = self.sslContext
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: endpoint.host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise, maxBody: Self.maxResponseBytes))
                }
            }
        let timer = eventLoop.scheduleTask(in: timeout) { promise.fail(WebhookError.timeout) }
        defer { timer.cancel() }
        let channel: any NIOCore.Channel
        do {
            channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            promise.fail(WebhookError.connection("\(error)"))
            throw (error as? WebhookError) ?? WebhookError.connection("\(error)")
        }
        promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: endpoint.path)
        head.headers.add(name: "Host", value: endpoint.port == (endpoint.tls ? 443 : 80) ? endpoint.host : "\(endpoint.host):\(endpoint.port)")
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(body.count))
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in extra { head.headers.add(name: name, value: value) }
        var buffer = channel.allocator.buffer(capacity: body.count)
        buffer.writeBytes(body)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail(WebhookError.connection("\($0)")) }
        do {
            return try await promise.futureResult.get()
        } catch let error as WebhookError {
            throw error
        } catch {
            throw WebhookError.connection("\(error)")
        }
    }
}

/// Collects one response. Confined to its channel's event loop. The timeout may fail the promise first; a later
/// completion is then a no-op (NIO ignores completing a fulfilled promise).
private final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<WebhookResponse>
    let maxBody: Int
    var head: HTTPResponseHead?
    var body: [UInt8] = []
    var done = false

    init(promise: EventLoopPromise<WebhookResponse>, maxBody: Int) {
        self.promise = promise
        self.maxBody = maxBody
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body(var buffer):
            guard body.count + buffer.readableBytes <= maxBody else {
                done = true
                promise.fail(WebhookError.responseTooLarge)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            done = true
            guard let head else {
                promise.fail(WebhookError.connection("a response without a head"))
                return
            }
            promise.succeed(WebhookResponse(status: Int(head.status.code), headers: head.headers, body: body))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done {
            done = true
            promise.fail(WebhookError.connection("\(error)"))
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            promise.fail(WebhookError.connection("the provider closed the connection before answering"))
        }
        context.fireChannelInactive()
    }
}
