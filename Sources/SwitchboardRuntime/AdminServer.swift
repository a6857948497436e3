import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// The admin HTTP/1.1 endpoint: `/metrics` (Prometheus text), `/livez` (the process runs) and `/readyz`
/// (the database is reachable and the service accepts calls).
public struct AdminServer: Service {
    /// The address it binds.
    public let host: String
    /// The port it binds.
    public let port: Int
    private let registry: PrometheusCollectorRegistry
    private let readiness: @Sendable () -> Bool
    private let logger: Logger

    /// Creates the server.
    /// - Parameters:
    ///   - host: address to bind.
    ///   - port: port to bind.
    ///   - registry: the metrics registry to expose.
    ///   - readiness: whether `/readyz` answers 200.
    ///   - logger: the logger.
    public init(host: String, port: Int, registry: PrometheusCollectorRegistry, logger: Logger, readiness: @escaping @Sendable () -> Bool) {
        self.host = host
        self.port = port
        self.registry = registry
        self.readiness = readiness
        self.logger = logger
    }

    public func run() async throws {
        let registry = self.registry, readiness = self.readiness
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(registry: registry, readiness: readiness))
                }
            }
            .bind(host: host, port: port).get()
        logger.info("admin endpoint listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        // closeFuture ignores task cancellation: close the channel on cancellation and on graceful shutdown.
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await channel.closeFuture.get()
            } onGracefulShutdown: {
                channel.close(promise: nil)
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }
}

private final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private let readiness: @Sendable () -> Bool
    private var path = "/"

    init(registry: PrometheusCollectorRegistry, readiness: @escaping @Sendable () -> Bool) {
        self.registry = registry
        self.readiness = readiness
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = String(head.uri.split(separator: "?").first ?? "/")
        case .body:
            break
        case .end:
            let (status, contentType, body): (HTTPResponseStatus, String, [UInt8])
            switch path {
            case "/metrics":
                (status, contentType, body) = (.ok, "text/plain; version=0.0.4", registry.emitToBuffer())
            case "/livez":
                (status, contentType, body) = (.ok, "text/plain", Array("ok\n".utf8))
            case "/readyz":
                let ready = readiness()
                (status, contentType, body) = (ready ? .ok : .serviceUnavailable, "text/plain", Array((ready ? "ready\n" : "not ready\n").utf8))
            default:
                (status, contentType, body) = (.notFound, "text/plain", Array("not found\n".utf8))
            }
            var headers = HTTPHeaders([("content-type", contentType), ("content-length", String(body.count))])
            headers.add(name: "cache-control", value: "no-store")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

extension AdminServer {
    /// The admin endpoint the configuration asks for, bound to its own host (never the gRPC host), or nil when
    /// `SWITCHBOARD_ADMIN_PORT` is 0.
    /// - Parameters:
    ///   - configuration: the runtime configuration.
    ///   - registry: the metrics registry to expose.
    ///   - logger: the logger.
    ///   - readiness: whether `/readyz` answers 200.
    /// - Returns: the admin server, or nil if disabled.
    public static func configured(
        configuration: RuntimeConfiguration, registry: PrometheusCollectorRegistry, logger: Logger,
        readiness: @escaping @Sendable () -> Bool
    ) -> AdminServer? {
        guard configuration.adminPort != 0 else { return nil }
        return AdminServer(host: configuration.adminHost, port: configuration.adminPort, registry: registry, logger: logger, readiness: readiness)
    }
}
