import ArgumentParser
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import SwitchboardRuntime
import UnixSignals

/// `gateway`: serves HTTP/JSON for every service until SIGTERM or SIGINT, then drains.
public struct GatewayCommand: AsyncParsableCommand {
    /// The command's help: every setting with its default.
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "gateway",
            abstract: "Switchboard's HTTP/JSON gateway (HTTP 8080, admin 9460 by default).",
            discussion: "Settings (environment variables):\n"
                + RuntimeConfiguration.helpText(service: .gateway) + "\n"
                + EnvironmentSetting.helpText(GatewayConfiguration.settings))
    }

    /// Creates the command.
    public init() {}

    /// Runs the gateway.
    public func run() async throws {
        let runtime = try RuntimeConfiguration.load(service: .gateway)
        let gatewayConfiguration = try GatewayConfiguration.load()
        NIOSingletons.groupLoopCountSuggestion = runtime.eventLoopThreads > 0 ? runtime.eventLoopThreads : max(1, System.coreCount - 1)
        let level = Logger.Level(rawValue: runtime.logLevel) ?? .info
        LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: level) }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "gateway")
        let gateway = try Gateway(configuration: gatewayConfiguration, verifier: try await TokenVerifier.make(from: runtime), logger: logger)
        var services: [any Service] = [
            GatewayServer(
                gateway: gateway, host: runtime.grpcHost, port: runtime.grpcPort, maxConnections: runtime.maxConnections,
                idleTimeout: runtime.idleTimeout, headerTimeout: runtime.headerTimeout, writeStallTimeout: runtime.writeStallTimeout,
                shutdownGrace: runtime.shutdownGrace)
        ]
        if let admin = AdminServer.configured(configuration: runtime, registry: registry, logger: logger, readiness: { true }) {
            services.append(admin)
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await gateway.close()
    }
}
