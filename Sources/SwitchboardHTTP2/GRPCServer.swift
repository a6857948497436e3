import Logging
import NIOCore
import NIOPosix
import NIOSSL
import SwitchboardRPC
import Synchronization

/// A gRPC server: HTTP/2 through nghttp2 on SwiftNIO, handlers as Swift tasks.
///
/// ```swift
/// let server = GRPCServer(configuration: .init(port: 50051), services: [MyService()])
/// try await server.run()   // until shutDown(grace:) or the task is cancelled
/// ```
public final class GRPCServer: Sendable {
    /// The configuration.
    public let configuration: ServerConfiguration
    private let router: RPCRouter
    private let interceptors: [any ServerInterceptor]
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state: Mutex<State>
    private let boundAddress: Mutex<(SocketAddress?, [CheckedContinuation<SocketAddress, any Error>])>
    private let requestBytes = BufferedRequestBytes()

    private struct State {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var shuttingDown = false
    }

    /// Creates a server.
    /// - Parameters:
    ///   - configuration: where to listen and the limits.
    ///   - services: the services to route to.
    ///   - interceptors: server interceptors, outermost first.
    ///   - group: the event loops; defaults to NIO's shared multi-threaded group.
    ///   - logger: the server's logger.
    public init(
        configuration: ServerConfiguration,
        services: [any RPCService],
        interceptors: [any ServerInterceptor] = [],
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "switchboard.rpc.server")
    ) {
        var router = RPCRouter()
        for service in services { router.register(service) }
        self.configuration = configuration
        self.router = router
        self.interceptors = interceptors
        self.group = group
        self.logger = logger
        self.state = Mutex(State())
        self.boundAddress = Mutex((nil, []))
    }

    /// The registered methods.
    public var methods: [MethodDescriptor] { router.methods }

    /// The number of open client connections.
    public var connectionCount: Int { state.withLock { $0.connections.count } }

    /// Request bytes held for handlers over all connections: decoded (decompressed) messages not taken yet, and
    /// the raw bytes of messages waiting for budget or still arriving; about `maxBufferedRequestBytesPerConnection`
    /// per connection at most, whatever clients send.
    public var bufferedRequestBytes: Int { requestBytes.current }

    /// The address the server is listening on, once it is.
    /// - Returns: the bound address.
    /// - Throws: if the server failed to bind.
    public func listeningAddress() async throws -> SocketAddress {
        try await withCheckedThrowingContinuation { continuation in
            let ready: SocketAddress? = boundAddress.withLock { state in
                if let address = state.0 { return address }
                state.1.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Binds and serves until ``shutDown(grace:)`` completes or the calling task is cancelled (which shuts down
    /// with a short grace period).
    /// - Throws: when binding fails.
    public func run() async throws {
        let sslContext = try configuration.tls.map(Self.makeSSLContext)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.configureConnection(channel, sslContext: sslContext)
                }
            }
        let listener: any Channel
        do {
            listener = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        } catch {
            let waiters = boundAddress.withLock { state in
                let waiters = state.1
                state.1 = []
                return waiters
            }
            waiters.forEach { $0.resume(throwing: error) }
            throw error
        }
        state.withLock { $0.listener = listener }
        let address = listener.localAddress!
        let waiters = boundAddress.withLock { state in
            state.0 = address
            let waiters = state.1
            state.1 = []
            return waiters
        }
        waiters.forEach { $0.resume(returning: address) }
        logger.info("gRPC server listening", metadata: ["address": "\(address)"])
        try await withTaskCancellationHandler {
            try await listener.closeFuture.get()
        } onCancel: {
            Task { await self.shutDown(grace: .seconds(5)) }
        }
        // Wait for connections still draining.
        while !(state.withLock { $0.connections.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private static func makeSSLContext(_ tls: ServerTLS) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(tls.certificateChainPath).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: tls.privateKeyPath, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        // gRPC runs over HTTP/2 only: offer nothing else.
        configuration.applicationProtocols = ["h2"]
        configuration.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: configuration)
    }

    private func configureConnection(_ channel: any Channel, sslContext: NIOSSLContext?) throws {
        let accepted: Bool = state.withLock { state in
            guard !state.shuttingDown, state.connections.count < configuration.maxConnections else { return false }
            state.connections[ObjectIdentifier(channel)] = channel
            return true
        }
        guard accepted else {
            logger.debug(
                "refusing connection: shutting down or at maxConnections",
                metadata: ["maxConnections": "\(configuration.maxConnections)"])
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [self] _ in
            _ = state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
        }
        if let sslContext {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
        }
        try channel.pipeline.syncOperations.addHandler(
            ServerConnectionHandler(
                router: router, interceptors: interceptors, configuration: configuration, requestBytes: requestBytes,
                logger: logger))
    }

    /// Stops accepting connections, sends GOAWAY on every connection, lets accepted calls finish for up to
    /// `grace`, then cancels what remains and closes.
    /// - Parameter grace: how long accepted calls may take to finish.
    public func shutDown(grace: Duration = .seconds(10)) async {
        let (listener, connections): ((any Channel)?, [any Channel]) = state.withLock { state in
            state.shuttingDown = true
            return (state.listener, Array(state.connections.values))
        }
        let deadline = NIODeadline.now() + .nanoseconds(grace.nanoseconds)
        for connection in connections {
            connection.pipeline.fireUserInboundEventTriggered(GracefulShutdownEvent(deadline: deadline))
        }
        for connection in connections {
            try? await connection.closeFuture.get()
        }
        try? await listener?.close()
    }
}

/// A process-wide tally of decoded request bytes waiting for handlers, kept by every connection of a server.
final class BufferedRequestBytes: Sendable {
    private let value = Atomic<Int>(0)

    /// Adds (or, negative, removes) bytes.
    func add(_ bytes: Int) { value.wrappingAdd(bytes, ordering: .relaxed) }

    /// The current total.
    var current: Int { value.load(ordering: .relaxed) }
}
