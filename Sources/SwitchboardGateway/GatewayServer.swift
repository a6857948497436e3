import FoundationEssentials
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import Synchronization

/// The gateway's HTTP/1.1 listener: each connection's requests are read by NIO's server pipeline and answered in order
/// by its ``GatewayConnectionHandler`` (keep-alive and pipelining included, each body bounded), which hands them to the
/// ``Gateway``.
public struct GatewayServer: Service {
    let gateway: Gateway
    let host: String
    let port: Int
    let maxConnections: Int
    let idleTimeout: Duration?
    let headerTimeout: Duration?
    let writeStallTimeout: Duration?
    let shutdownGrace: Duration
    private let address: EventLoopPromise<SocketAddress>

    /// Creates the server.
    /// - Parameters:
    ///   - gateway: what answers requests.
    ///   - host: address to bind.
    ///   - port: port to bind (0 picks one; see ``listeningAddress()``).
    ///   - maxConnections: connections held at once; past it new ones are closed at once.
    ///   - idleTimeout: a connection that sends nothing for this long while no response is being written is closed
    ///     (a quiet stream keeps its connection); nil never closes one.
    ///   - headerTimeout: a request's head must arrive within this long of its first byte (a new connection's first
    ///     request, of the connection's opening), and its body may pause no longer between reads; nil waits forever.
    ///   - writeStallTimeout: a connection whose client reads nothing of a response for this long while more is waiting
    ///     to be written is closed (so a stalled reader frees the stream it holds); nil waits forever.
    ///   - shutdownGrace: after graceful shutdown begins, what responses in flight (streams included) get before their
    ///     connections are closed; idle connections close at once.
    public init(
        gateway: Gateway, host: String, port: Int, maxConnections: Int, idleTimeout: Duration? = .seconds(300),
        headerTimeout: Duration? = .seconds(10), writeStallTimeout: Duration? = .seconds(30), shutdownGrace: Duration = .seconds(20)
    ) {
        self.gateway = gateway
        self.host = host
        self.port = port
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
        self.writeStallTimeout = writeStallTimeout
        self.shutdownGrace = shutdownGrace
        self.address = MultiThreadedEventLoopGroup.singleton.any().makePromise()
    }

    /// The bound address, once listening.
    /// - Returns: the address.
    /// - Throws: when binding failed.
    public func listeningAddress() async throws -> SocketAddress {
        try await address.futureResult.get()
    }

    /// Serves until cancelled or until graceful shutdown, which stops accepting, closes idle connections, lets
    /// responses in flight finish (each saying `connection: close`), ends server streams still open near the grace's
    /// end with an UNAVAILABLE error (``Gateway/drainStreams()``) and closes what is left after the grace.
    public func run() async throws {
        let gateway = self.gateway, maxBody = gateway.configuration.maxBodyBytes, minBodyRate = gateway.configuration.minBodyBytesPerSecond
        let idleTimeout = self.idleTimeout.map(Self.timeAmount)
        let headerTimeout = self.headerTimeout.map(Self.timeAmount), writeStallTimeout = self.writeStallTimeout.map(Self.timeAmount)
        let server: NIOAsyncChannel<any Channel, Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        if let idleTimeout { try sync.addHandler(IdleStateHandler(readTimeout: idleTimeout)) }
                        let guardHandler = ConnectionGuard(
                            headerTimeout: headerTimeout, writeStallTimeout: writeStallTimeout, minBodyRate: minBodyRate)
                        try sync.addHandler(RequestBytesWatch(guardHandler))
                        // No pipelining assistance: a connection's requests are answered in order by its one task anyway,
                        // and NIO's handler stopped reading while a response was pending, which cost two epoll_ctl calls
                        // per request (3-5% of the gateway's throughput). The guard closes connections on shutdown.
                        try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
                        try sync.addHandler(GatewayProtocolErrorHandler())
                        try sync.addHandler(guardHandler)
                        try sync.addHandler(GatewayConnectionHandler(gateway: gateway, maxBody: maxBody))
                        return channel
                    }
                }
        } catch {
            address.fail(error)
            throw error
        }
        address.succeed(server.channel.localAddress!)
        gateway.logger.info("gateway listening", metadata: ["address": "\(server.channel.localAddress.map { "\($0)" } ?? "?")"])
        let open = ConnectionRegistry()
        let maxConnections = self.maxConnections, grace = Self.timeAmount(shutdownGrace)
        // The server channel's iteration ignores task cancellation: close it on cancellation and on graceful shutdown.
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await withThrowingDiscardingTaskGroup { group in
                    try await server.executeThenClose { connections in
                        for try await connection in connections {
                            guard open.add(connection, limit: maxConnections) else {
                                try? await connection.close()
                                continue
                            }
                            // The connection's requests are answered by its handler; this task only lasts as long as
                            // the connection, so that the server returns once every connection has closed, and
                            // closes it when the server is cancelled.
                            group.addTask {
                                defer { open.remove(connection) }
                                await withTaskCancellationHandler {
                                    try? await connection.closeFuture.get()
                                } onCancel: {
                                    connection.close(promise: nil)
                                }
                            }
                        }
                    }
                }
            } onGracefulShutdown: {
                server.channel.close(promise: nil)
                open.drain(grace: grace)
                // Streams that are still open near the grace's end (watches; exports and imports that need longer) end
                // with an error the client can act on, before their connections are closed: half a second before, or
                // half the grace when that is shorter. A finite stream that ends within the grace is not cut.
                let streamsEnd = grace - min(.nanoseconds(grace.nanoseconds / 2), .milliseconds(500))
                MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: streamsEnd) { gateway.drainStreams() }
            }
        } onCancel: {
            server.channel.close(promise: nil)
        }
    }

    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}

/// The connections open at once, so graceful shutdown can reach them all.
final class ConnectionRegistry: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var draining = false
    }
    private let state = Mutex(State())

    /// Registers a new connection; false when `limit` are open or shutdown has begun (the caller closes it).
    func add(_ channel: any Channel, limit: Int) -> Bool {
        state.withLock { state in
            guard !state.draining, state.channels.count < limit else { return false }
            state.channels[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    /// Forgets a connection that ended.
    func remove(_ channel: any Channel) {
        _ = state.withLock { $0.channels.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Asks every connection to finish: its ``ConnectionGuard`` closes an idle one at once and one with a response in
    /// flight after its end (that response saying `connection: close`); after `grace` every one left is closed.
    func drain(grace: TimeAmount) {
        let channels: [any Channel] = state.withLock { state in
            guard !state.draining else { return [] }
            state.draining = true
            return Array(state.channels.values)
        }
        for channel in channels {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            channel.eventLoop.scheduleTask(in: grace) { channel.close(promise: nil) }
        }
    }
}

/// The client's connection as a request sees it: one action (the current stream's cancellation) runs when it closes.
final class ClientConnection: Sendable {
    private let state = Mutex<(closed: Bool, action: (@Sendable () -> Void)?)>((false, nil))

    /// Runs `action` when the connection closes (at once if it has), replacing any earlier action; nil clears it.
    func onClose(_ action: (@Sendable () -> Void)?) {
        let runNow: Bool = state.withLock { state in
            if state.closed { return true }
            state.action = action
            return false
        }
        if runNow { action?() }
    }

    /// The connection closed.
    func closed() {
        let action = state.withLock { state in
            state.closed = true
            defer { state.action = nil }
            return state.action
        }
        action?()
    }
}

/// Answers a request HTTP/1.1 cannot parse with a JSON error, as every other error of the gateway's is: 431 for headers
/// past NIO's limit (80 KiB), 400 for anything else, unless a response is already under way; then the connection
/// closes (the decoder reads nothing more after a parse error). NIO's own handler answered an empty 400.
final class GatewayProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// A response's head went out and its end has not.
    private var responding = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        // The decoder reads nothing more after a parse error: the connection closes, after the answer when one can be
        // written (else it would wait for a timeout).
        let channel = context.channel
        if responding {
            context.close(promise: nil)
        } else {
            let (status, message) =
                error == .headerOverflow
                ? (HTTPResponseStatus.requestHeaderFieldsTooLarge, "the request's head is larger than 80 KiB")
                : (HTTPResponseStatus.badRequest, "the request is not valid HTTP/1.1 (\(error))")
            let text = HTTPErrorMapping.statusJSON(RPCError(code: .invalidArgument, message: message)).text
            let headers = HTTPHeaders([
                ("content-type", "application/json"), ("content-length", "\(text.utf8.count)"), ("connection", "close"),
                ("x-request-id", UUID.randomText()),
            ])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: responding = true
        case .end: responding = false
        default: break
        }
        context.write(data, promise: promise)
    }
}

/// Tells the ``ConnectionGuard`` when request bytes arrive (it sits before the HTTP decoder, which hides a head that
/// is still incomplete).
final class RequestBytesWatch: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let guardHandler: ConnectionGuard

    init(_ guardHandler: ConnectionGuard) {
        self.guardHandler = guardHandler
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guardHandler.bytesArrived(unwrapInboundIn(data).readableBytes)
        context.fireChannelRead(data)
    }
}

/// Keeps a client from holding a connection without using it:
/// - a request's head must arrive within the header timeout of its first byte (a new connection's first one, of the
///   connection's opening), and its body may pause no longer than that between reads (slow-loris); nor may it arrive
///   slower than the minimum body rate on average: from the head, each byte of body buys 1/rate s, never more than one
///   header timeout ahead, so a body trickled a byte at a time is cut off after about one header timeout;
/// - a connection quiet for the idle timeout (the `IdleStateHandler` before it) closes, but never while a response is
///   being written: a watch stream may send nothing for minutes;
/// - a client that reads nothing of a response for the write-stall timeout while more waits to be written loses the
///   connection, which cancels the upstream call behind it.
/// Only while the gateway has no response in flight does a read timeout close, and it starts again when that response
/// ends. On graceful shutdown (`ChannelShouldQuiesceEvent`) an idle connection closes at once, and one with responses
/// in flight after the last of them ends, each response head saying `connection: close`.
final class ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Phase {
        /// No byte of a next request yet.
        case idle
        /// Some bytes, no complete head.
        case head
        /// The head, not yet the end.
        case body
    }

    private let headerTimeout: TimeAmount?
    private let writeStallTimeout: TimeAmount?
    /// Bytes per second a body must average (0: none).
    private let minBodyRate: Int
    private var phase = Phase.idle
    /// Requests received in full whose responses have not ended.
    private var inFlight = 0
    /// When the read timeout closes the connection; nil: no read timeout runs. Moved (not re-scheduled) as requests
    /// come, so a keep-alive connection does not schedule and cancel a timer for every request.
    private var readDeadline: NIODeadline?
    /// The one timer that checks `readDeadline` (at or before it).
    private var readTimer: Scheduled<Void>?
    private var stallTimer: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    /// Graceful shutdown asked the connection to finish.
    private var quiescing = false

    init(headerTimeout: TimeAmount?, writeStallTimeout: TimeAmount?, minBodyRate: Int = 0) {
        self.headerTimeout = headerTimeout
        self.writeStallTimeout = writeStallTimeout
        self.minBodyRate = max(0, minBodyRate)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // A new connection must send its first request in time.
        armReadTimer()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        readTimer?.cancel()
        stallTimer?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        readTimer?.cancel()
        stallTimer?.cancel()
        context.fireChannelInactive()
    }

    /// `count` bytes arrived before the decoder.
    func bytesArrived(_ count: Int) {
        switch phase {
        case .idle:
            phase = .head
            armReadTimer()
        case .body:
            guard minBodyRate > 0, let headerTimeout, let deadline = readDeadline else {
                armReadTimer()
                return
            }
            // Time bought by these bytes at the slowest rate allowed; a burst cannot buy more than one header timeout.
            let bought = TimeAmount.nanoseconds(Int64(min(count, 1 << 30)) * 1_000_000_000 / Int64(minBodyRate))
            readDeadline = min(deadline + bought, .now() + headerTimeout)
        case .head:
            break
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            phase = .body
            armReadTimer()
        case .body:
            break
        case .end:
            phase = .idle
            inFlight += 1
            readDeadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where quiescing:
            head.headers.replaceOrAdd(name: "connection", value: "close")
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end:
            inFlight = max(0, inFlight - 1)
            if quiescing, inFlight == 0 {
                // The last response ends: close once it is written (and flushed by whoever ends it).
                let written = promise ?? context.eventLoop.makePromise()
                context.write(data, promise: written)
                let channel = context.channel
                written.futureResult.whenComplete { _ in channel.close(promise: nil) }
                return
            }
            // Bytes of a next request that came while this response was written get their time from now.
            if inFlight == 0, phase != .idle { armReadTimer() }
            context.write(data, promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stallTimer?.cancel()
            stallTimer = nil
        } else if let writeStallTimeout, stallTimer == nil {
            stallTimer = context.eventLoop.assumeIsolated().scheduleTask(in: writeStallTimeout) { [weak self] in
                guard let self, let context = self.context, !context.channel.isWritable else { return }
                context.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            if inFlight == 0 { context.close(promise: nil) }
            return
        }
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            // Idle or only part of a head: close now. A request whose head came is answered first (its body's end
            // makes it in flight), as one in flight is.
            if inFlight == 0, phase != .body { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func armReadTimer() {
        guard let headerTimeout, context != nil else { return }
        readDeadline = .now() + headerTimeout
        if readTimer == nil { scheduleReadCheck(at: readDeadline!) }
    }

    private func scheduleReadCheck(at deadline: NIODeadline) {
        guard let context else { return }
        readTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            guard let self, let context = self.context else { return }
            self.readTimer = nil
            guard let due = self.readDeadline else { return }
            if due > .now() {
                self.scheduleReadCheck(at: due)
            } else {
                self.readDeadline = nil
                if self.inFlight == 0 { context.close(promise: nil) }
            }
        }
    }
}
