import Crypto
import FoundationEssentials
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The webhook the provider posts delivery events to: `POST <any path>` with a JSON event and
/// `X-Provider-Signature: sha256=<hex HMAC-SHA256(shared secret, exact body)>`. Answers 200 (applied or a
/// duplicate), 401 (bad signature), 400 (not an event), 404 (unknown send), 413 (too large), 503 (database trouble:
/// the provider retries later).
public final class ProviderEventServer: Service, Sendable {
    let channel: any NIOCore.Channel
    let logger: Logger
    private let open: ConnectionCount
    /// The port it listens on.
    public let port: Int
    /// Connections open now (counted against the cap until their close completes).
    public var openConnections: Int { open.value.load(ordering: .relaxed) }

    private init(channel: any NIOCore.Channel, open: ConnectionCount, logger: Logger) {
        self.channel = channel
        self.open = open
        self.logger = logger
        self.port = channel.localAddress?.port ?? 0
    }

    /// Connections open now, against the cap.
    private final class ConnectionCount: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Binds the webhook. It faces the internet, so every connection is bounded: one request per connection (the
    /// answer closes it; pipelined requests are ignored), a deadline for the whole exchange, and a cap on open
    /// connections (past it a new one is closed at once).
    /// - Parameters:
    ///   - host: the address to bind.
    ///   - port: the port (0: any free one).
    ///   - secret: the secret shared with the provider.
    ///   - store: where events are applied.
    ///   - logger: the service's logger.
    ///   - maxConnections: most connections open at once.
    ///   - requestDeadline: longest a connection may stay open, its request read and answered.
    public static func bind(
        host: String, port: Int, secret: [UInt8], store: PostgresProviderEventStore, logger: Logger, maxConnections: Int = 256,
        requestDeadline: Duration = .seconds(30)
    ) async throws -> ProviderEventServer {
        let key = SymmetricKey(data: secret)
        let open = ConnectionCount()
        let deadline = TimeAmount.nanoseconds(
            Int64(requestDeadline.components.seconds) * 1_000_000_000 + requestDeadline.components.attoseconds / 1_000_000_000)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard open.value.wrappingAdd(1, ordering: .relaxed).newValue <= maxConnections else {
                    open.value.wrappingSubtract(1, ordering: .relaxed)
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in open.value.wrappingSubtract(1, ordering: .relaxed) }
                // Closed at the deadline whatever it is doing: a slow sender, a client that never reads, a stuck apply.
                let timer = channel.eventLoop.scheduleTask(in: deadline) { channel.close(promise: nil) }
                channel.closeFuture.whenComplete { _ in timer.cancel() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(EventHandler(key: key, store: store, logger: logger))
                }
            }
            .bind(host: host, port: port).get()
        return ProviderEventServer(channel: channel, open: open, logger: logger)
    }

    /// Serves until graceful shutdown or cancellation, then closes the listener.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            try? await Task.sleep(for: .seconds(1_000_000_000))
        }
        try? await channel.close()
    }

    /// The answer to one request body, given its signature header.
    static func handle(body: [UInt8], signature: String?, key: SymmetricKey, store: PostgresProviderEventStore, logger: Logger) async -> (Int, String)
    {
        guard body.count <= ProviderEvent.maxBodyBytes else { return (413, "too large") }
        let expected = "sha256=" + ProviderAdapter.hex(Array(HMAC<SHA256>.authenticationCode(for: body, using: key)))
        // Constant-time comparison: a timing difference must not reveal how much of a forged signature was right.
        guard let signature, signature.utf8.count == expected.utf8.count,
            zip(signature.utf8, expected.utf8).reduce(UInt8(0), { $0 | ($1.0 ^ $1.1) }) == 0
        else { return (401, "bad signature") }
        let event: ProviderEvent
        switch ProviderWire.event(body) {
        case .success(let e): event = e
        case .failure(let refusal): return (400, refusal.reason)
        }
        do {
            switch try await store.apply(event) {
            case .applied(let state): return (200, "applied; state \(state.rawValue)")
            case .duplicate: return (200, "duplicate")
            case .unknownSend: return (404, "unknown send")
            }
        } catch {
            logger.warning("a provider event could not be applied", metadata: ["error": "\(error)"])
            return (503, "try again later")
        }
    }

    /// One connection's requests. Confined to its channel's event loop; the database work runs in a task whose answer
    /// is written back on the loop.
    private final class EventHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let key: SymmetricKey
        let store: PostgresProviderEventStore
        let logger: Logger
        var head: HTTPRequestHead?
        var body: [UInt8] = []
        var tooLarge = false
        /// The connection's one request has ended; anything after it (pipelined requests) is ignored.
        var ended = false

        init(key: SymmetricKey, store: PostgresProviderEventStore, logger: Logger) {
            self.key = key
            self.store = store
            self.logger = logger
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !ended else { return }
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                body = []
                tooLarge = false
            case .body(var buffer):
                // Bounded while reading: a large body is dropped, not held.
                if body.count + buffer.readableBytes > ProviderEvent.maxBodyBytes {
                    tooLarge = true
                    body = []
                } else if !tooLarge {
                    body += buffer.readBytes(length: buffer.readableBytes) ?? []
                }
            case .end:
                guard let head else { return }
                ended = true
                let (body, key, store, logger) = (
                    tooLarge ? [UInt8](repeating: 0, count: ProviderEvent.maxBodyBytes + 1) : self.body, key, store, logger
                )
                let signature = head.headers.first(name: "X-Provider-Signature")
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let loop = context.eventLoop
                guard head.method == .POST else {
                    respond(context, 405, "POST only")
                    return
                }
                Task {
                    let (status, text) = await ProviderEventServer.handle(body: body, signature: signature, key: key, store: store, logger: logger)
                    loop.execute { bound.value.0.respond(bound.value.1, status, text) }
                }
            }
        }

        func respond(_ context: ChannelHandlerContext, _ status: Int, _ text: String) {
            let headers = HTTPHeaders([("Content-Type", "text/plain"), ("Content-Length", String(text.utf8.count)), ("Connection", "close")])
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
        }
    }
}

/// The events webhook as a lifecycle service: binds when the service starts, closes on shutdown.
public struct ProviderEventListener: Service {
    let host: String
    let port: Int
    let secret: [UInt8]
    let store: PostgresProviderEventStore
    let logger: Logger

    /// Creates the listener.
    public init(host: String, port: Int, secret: [UInt8], store: PostgresProviderEventStore, logger: Logger) {
        self.host = host
        self.port = port
        self.secret = secret
        self.store = store
        self.logger = logger
    }

    /// Runs until graceful shutdown or cancellation.
    public func run() async throws {
        let server = try await ProviderEventServer.bind(host: host, port: port, secret: secret, store: store, logger: logger)
        logger.info("provider events webhook listening", metadata: ["port": "\(server.port)"])
        try await server.run()
    }
}
