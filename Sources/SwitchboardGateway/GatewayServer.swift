import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
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
    /// responses in flight finish (each saying `connection: close`) and closes what is left after the grace.
    public func run() async throws {
        let gateway = self.gateway, maxBody = gateway.configuration.maxBodyBytes
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
                        let guardHandler = ConnectionGuard(headerTimeout: headerTimeout, writeStallTimeout: writeStallTimeout)
                        try sync.addHandler(RequestBytesWatch(guardHandler))
                        // No pipelining assistance: a connection's requests are answered in order by its one task anyway,
                        // and NIO's handler stopped reading while a response was pending, which cost two epoll_ctl calls
                        // per request (3-5% of the gateway's throughput). The guard closes connections on shutdown.
                        try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
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
        guardHandler.bytesArrived()
        context.fireChannelRead(data)
    }
}

/// Keeps a client from holding a connection without using it:
/// - a request's head must arrive within the header timeout of its first byte (a new connection's first one, of the
///   connection's opening), and its body may pause no longer than that between reads (slow-loris);
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

    init(headerTimeout: TimeAmount?, writeStallTimeout: TimeAmount?) {
        self.headerTimeout = headerTimeout
        self.writeStallTimeout = writeStallTimeout
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

    /// Bytes arrived before the decoder.
    func bytesArrived() {
        switch phase {
        case .idle:
            phase = .head
            armReadTimer()
        case .body:
            armReadTimer()
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
