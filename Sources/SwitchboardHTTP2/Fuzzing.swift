import Logging
import NIOCore
import SwitchboardRPC

/// What the libFuzzer harnesses in `Fuzz/` need from the transport and applications must not use: the server's
/// per-connection handler on its own, so that a harness can feed it raw bytes through an `EmbeddedChannel` without
/// sockets or a ``GRPCServer``.
@_spi(Fuzzing)
public enum ServerFuzzing {
    /// The handler ``GRPCServer`` installs on every accepted connection (nghttp2 session, call dispatch, timers).
    /// - Parameters:
    ///   - services: the services to route to.
    ///   - interceptors: server interceptors, outermost first.
    ///   - configuration: the limits and timers (host and port are not used).
    ///   - logger: the connection's logger.
    /// - Returns: a channel handler that reads and writes `ByteBuffer`s; it must live on one event loop.
    public static func makeConnectionHandler(
        services: [any RPCService],
        interceptors: [any ServerInterceptor] = [],
        configuration: ServerConfiguration,
        logger: Logger
    ) -> any ChannelHandler {
        var router = RPCRouter()
        for service in services { router.register(service) }
        return ServerConnectionHandler(
            router: router, interceptors: interceptors, configuration: configuration, logger: logger)
    }
}
