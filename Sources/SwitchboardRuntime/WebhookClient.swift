import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

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

/// How a ``WebhookClient`` keeps connections open between posts.
public struct WebhookKeepAlive: Sendable, Hashable {
    /// The most idle connections kept (0: none; every post then opens its own connection and closes it).
    public var maxIdleConnections: Int
    /// How long an idle connection is kept before the client closes it. Keep it shorter than the server's own idle
    /// timeout, so that the server rarely closes a connection just as a post is written to it.
    public var idleTimeout: TimeAmount

    /// Creates keep-alive settings.
    public init(maxIdleConnections: Int, idleTimeout: TimeAmount) {
        self.maxIdleConnections = maxIdleConnections
        self.idleTimeout = idleTimeout
    }
}

/// A minimal HTTP/1.1 client that posts to one endpoint (SwiftNIO's NIOHTTP1, NIOSSL for https).
///
/// Without ``WebhookKeepAlive`` every post opens a connection and closes it (`Connection: close`). With it, a
/// connection whose response was complete and kept alive is parked in a small pool (at most `maxIdleConnections`,
/// each closed after `idleTimeout`, or as soon as the server closes it) and the next post reuses it.
///
/// **No post is ever sent twice because of the pool.** A post on a reused connection is written again, on a fresh
/// connection, only when the first write did not complete (the connection had been closed by the server while idle)
/// and no byte of a response arrived: the server then cannot have had the whole request, so it cannot have acted on
/// it. Any other failure (the connection closed after the request was written, a timeout, a partial answer) is
/// reported to the caller as it is without a pool, since the server may have acted on the request.
public struct WebhookClient: Sendable {
    let endpoint: WebhookEndpoint
    let group: any EventLoopGroup
    let sslContext: NIOSSLContext?
    let pool: WebhookConnectionPool?
    /// Largest response body read.
    static let maxResponseBytes = 64 * 1024

    /// Creates a client.
    /// - Parameters:
    ///   - endpoint: where posts go.
    ///   - group: the event loops connections run on.
    ///   - keepAlive: how connections are kept between posts; nil or `maxIdleConnections` 0: one connection per post.
    ///   - trustRoots: for https, the certificates trusted as roots instead of the system's (a private CA); nil: the
    ///     system's trust store. Either way the server's chain is verified and so is its name: the endpoint's host, as a
    ///     DNS name (also sent as SNI) or, for an address, against the certificate's IP addresses.
    /// - Throws: when the TLS context cannot be made.
    public init(
        endpoint: WebhookEndpoint, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, keepAlive: WebhookKeepAlive? = nil,
        trustRoots: [NIOSSLCertificate]? = nil
    ) throws {
        self.endpoint = endpoint
        self.group = group
        if endpoint.tls {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .fullVerification
            if let trustRoots { configuration.trustRoots = .certificates(trustRoots) }
            self.sslContext = try NIOSSLContext(configuration: configuration)
        } else {
            self.sslContext = nil
        }
        self.pool = keepAlive.flatMap { $0.maxIdleConnections > 0 ? WebhookConnectionPool(keepAlive: $0) : nil }
    }

    /// Connections this client has opened so far, counted by its keep-alive pool (0 without keep-alive, where every
    /// post opens one).
    public var connectionsOpened: Int { pool?.opened ?? 0 }

    /// Idle connections held now.
    public var idleConnections: Int { pool?.idleCount ?? 0 }

    /// Closes the idle connections (a post after this opens a new one).
    public func closeIdleConnections() { pool?.closeAll() }

    /// Posts `body` with `headers`; the whole call (connect, send, response) is bounded by `timeout`.
    /// - Throws: ``WebhookError``.
    public func post(body: [UInt8], headers extra: [(String, String)], timeout: TimeAmount) async throws -> WebhookResponse {
        let deadline = NIODeadline.now() + timeout
        if let pool, let connection = pool.take() {
            do {
                return try await exchange(on: connection, body: body, headers: extra, deadline: deadline)
            } catch WebhookExchangeError.notWritten {
                // The server closed the idle connection before it could have read the whole request: a fresh
                // connection carries it, once.
            }
        }
        let connection = try await connect(deadline: deadline)
        do {
            return try await exchange(on: connection, body: body, headers: extra, deadline: deadline)
        } catch WebhookExchangeError.notWritten(let reason) {
            // On a fresh connection this is also where a failed TLS handshake (an untrusted certificate, a name it is
            // not valid for) ends: the request waited for the handshake and was never written.
            throw WebhookError.connection(reason)
        }
    }

    private func connect(deadline: NIODeadline) async throws -> WebhookConnection {
        let eventLoop = group.next()
        let endpoint = self.endpoint, sslContext = self.sslContext
        // SNI carries names only (NIOSSL refuses an address there); without one, NIOSSL checks the certificate's IP
        // addresses against the address connected to, which is the endpoint's host.
        let serverHostname = endpoint.host.isIPAddress ? nil : endpoint.host
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(max(.zero, deadline - .now()))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(WebhookExchangeHandler(maxBody: Self.maxResponseBytes))
                }
            }
        do {
            let connection = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).flatMapThrowing { channel in
                WebhookConnection(
                    channel: channel,
                    handler: NIOLoopBound(
                        try channel.pipeline.syncOperations.handler(type: WebhookExchangeHandler.self), eventLoop: channel.eventLoop))
            }.get()
            pool?.opened(connection)
            return connection
        } catch {
            throw (error as? WebhookError) ?? WebhookError.connection("\(error)")
        }
    }

    /// One request and its response on `connection`; the connection is parked again when the response allows it,
    /// closed otherwise.
    /// - Throws: ``WebhookError``, or ``WebhookExchangeError/notWritten`` when the request was not completely written
    ///   and nothing was answered.
    private func exchange(
        on connection: WebhookConnection, body: [UInt8], headers extra: [(String, String)], deadline: NIODeadline
    ) async throws -> WebhookResponse {
        let channel = connection.channel
        let promise = channel.eventLoop.makePromise(of: WebhookExchangeHandler.Outcome.self)
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: endpoint.path)
        head.headers.add(name: "Host", value: endpoint.port == (endpoint.tls ? 443 : 80) ? endpoint.host : "\(endpoint.host):\(endpoint.port)")
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(body.count))
        head.headers.add(name: "Connection", value: pool == nil ? "close" : "keep-alive")
        for (name, value) in extra { head.headers.add(name: name, value: value) }
        var buffer = channel.allocator.buffer(capacity: body.count)
        buffer.writeBytes(body)
        let timer = channel.eventLoop.scheduleTask(deadline: deadline) { promise.fail(WebhookError.timeout) }
        let handler = connection.handler, request = head, payload = buffer
        channel.eventLoop.execute {
            handler.value.begin(promise)
            channel.write(HTTPClientRequestPart.head(request), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(payload)), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenComplete { handler.value.written($0) }
        }
        let outcome: WebhookExchangeHandler.Outcome
        do {
            outcome = try await promise.futureResult.get()
        } catch {
            timer.cancel()
            // Never reused after a failure: a late answer to this request must not be read as the next one's.
            channel.close(promise: nil)
            if let error = error as? WebhookError { throw error }
            if let error = error as? WebhookExchangeError { throw error }
            throw WebhookError.connection("\(error)")
        }
        timer.cancel()
        if outcome.reusable, let pool {
            pool.park(connection)
        } else {
            channel.close(promise: nil)
        }
        return outcome.response
    }
}

extension String {
    /// Whether this is an IPv4 or IPv6 address literal (not a name to resolve).
    fileprivate var isIPAddress: Bool { (try? SocketAddress(ipAddress: self, port: 0)) != nil }
}

/// A request that never reached the server whole.
enum WebhookExchangeError: Error, Sendable, Hashable {
    /// The connection closed (or failed: `reason`, e.g. a TLS handshake error) before the request was completely
    /// written, and nothing was answered.
    case notWritten(reason: String)

    /// The reason when the connection closed without an error.
    static let closedBeforeWritten = "the connection closed before the request was written"
}

/// One open connection and its handler.
final class WebhookConnection: Sendable {
    let channel: any NIOCore.Channel
    let handler: NIOLoopBound<WebhookExchangeHandler>

    init(channel: any NIOCore.Channel, handler: NIOLoopBound<WebhookExchangeHandler>) {
        self.channel = channel
        self.handler = handler
    }
}

/// The idle connections of one client (one endpoint), newest first out: at most `maxIdleConnections`, each closed
/// after `idleTimeout` idle, and forgotten as soon as it closes (the server's idle timeout, a reset).
final class WebhookConnectionPool: Sendable {
    private struct State {
        var idle: [(connection: WebhookConnection, generation: Int)] = []
        var generation = 0
        var opened = 0
    }

    let keepAlive: WebhookKeepAlive
    private let state = Mutex(State())

    init(keepAlive: WebhookKeepAlive) { self.keepAlive = keepAlive }

    deinit { closeAll() }

    var opened: Int { state.withLock { $0.opened } }
    var idleCount: Int { state.withLock { $0.idle.count } }

    /// Counts a new connection and forgets it from the idle list when it closes.
    func opened(_ connection: WebhookConnection) {
        state.withLock { $0.opened += 1 }
        let id = ObjectIdentifier(connection)
        connection.channel.closeFuture.whenComplete { [weak self] _ in
            self?.state.withLock { $0.idle.removeAll { ObjectIdentifier($0.connection) == id } }
        }
    }

    /// The most recently parked connection that is still open, or nil.
    func take() -> WebhookConnection? {
        state.withLock { state in
            while let last = state.idle.popLast() {
                if last.connection.channel.isActive { return last.connection }
            }
            return nil
        }
    }

    /// Keeps `connection` for the next post, or closes it when the pool is full or the connection closed.
    func park(_ connection: WebhookConnection) {
        let generation: Int? = state.withLock { state in
            guard state.idle.count < keepAlive.maxIdleConnections, connection.channel.isActive else { return nil }
            state.generation += 1
            state.idle.append((connection, state.generation))
            return state.generation
        }
        guard let generation else {
            connection.channel.close(promise: nil)
            return
        }
        connection.channel.eventLoop.scheduleTask(in: keepAlive.idleTimeout) { [weak self] in
            // Only if it has stayed idle since this parking (a reused and parked again connection has a new one).
            let expired = self?.state.withLock { state in
                guard let index = state.idle.firstIndex(where: { $0.generation == generation }) else { return false }
                state.idle.remove(at: index)
                return true
            }
            if expired == true { connection.channel.close(promise: nil) }
        }
    }

    /// Closes every idle connection.
    func closeAll() {
        let idle = state.withLock { state in
            defer { state.idle = [] }
            return state.idle
        }
        for entry in idle { entry.connection.channel.close(promise: nil) }
    }
}

/// Reads the responses of one connection, one request at a time. Confined to its channel's event loop. The timeout
/// may fail the promise first; a later completion is then a no-op (NIO ignores completing a fulfilled promise).
final class WebhookExchangeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    /// A complete response, and whether the connection may carry another request.
    struct Outcome: Sendable {
        var response: WebhookResponse
        var reusable: Bool
    }

    let maxBody: Int
    private var promise: EventLoopPromise<Outcome>?
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    /// The request was completely written (handed to the kernel).
    private var requestWritten = false
    /// A byte of the response arrived.
    private var answered = false
    /// The error the connection failed with, even between exchanges: a TLS handshake that fails before the request is
    /// handed over leaves only "closed channel" to the request's write, and this is the reason worth reporting.
    private var failure: (any Error)?

    init(maxBody: Int) { self.maxBody = maxBody }

    /// Starts an exchange: the response that follows completes `promise`.
    func begin(_ promise: EventLoopPromise<Outcome>) {
        self.promise = promise
        head = nil
        body = []
        requestWritten = false
        answered = false
    }

    /// The outcome of writing the request.
    func written(_ result: Result<Void, any Error>) {
        switch result {
        case .success: requestWritten = true
        case .failure(let error):
            let reason = "\(failure ?? error)"
            finish(.failure(answered ? WebhookError.connection(reason) : WebhookExchangeError.notWritten(reason: reason)))
        }
    }

    private func finish(_ result: Result<Outcome, any Error>) {
        guard let promise else { return }
        self.promise = nil
        promise.completeWith(result)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard promise != nil else {
            // Bytes nobody asked for on an idle connection: it cannot be trusted with a request any more.
            context.close(promise: nil)
            return
        }
        answered = true
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body(var buffer):
            guard body.count + buffer.readableBytes <= maxBody else {
                finish(.failure(WebhookError.responseTooLarge))
                context.close(promise: nil)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head else {
                finish(.failure(WebhookError.connection("a response without a head")))
                return
            }
            // Reusable only when the request went out whole, the server keeps the connection open, and the body's end
            // was framed (a length or chunks), not the connection's close.
            let framed =
                head.headers.contains(name: "Content-Length") || head.headers[canonicalForm: "Transfer-Encoding"].contains("chunked")
                || head.status == .noContent || head.status == .notModified
            finish(
                .success(
                    Outcome(
                        response: WebhookResponse(status: Int(head.status.code), headers: head.headers, body: body),
                        reusable: requestWritten && head.isKeepAlive && framed)))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failure == nil { failure = error }
        finish(.failure(requestWritten || answered ? WebhookError.connection("\(error)") : WebhookExchangeError.notWritten(reason: "\(error)")))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(
            .failure(
                requestWritten || answered
                    ? WebhookError.connection("the provider closed the connection before answering")
                    : WebhookExchangeError.notWritten(reason: failure.map { "\($0)" } ?? WebhookExchangeError.closedBeforeWritten)))
        context.fireChannelInactive()
    }
}
