import Logging
import NIOCore
import Metrics
import Prometheus
import ServiceLifecycle
import SwitchboardBuiltins
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardRPC

/// What a service's handlers get from the runtime.
public struct ServiceDependencies: Sendable {
    /// The database pool (the service's own role and schema).
    public let pool: PostgresPool
    /// The service's change feed.
    public let changeFeed: ChangeFeed
    /// Wakes `WatchChanges` streams.
    public let notifier: ChangeNotifier
    /// The service's logger.
    public let logger: Logger
    /// The configuration.
    public let configuration: RuntimeConfiguration

    /// Creates the dependencies (done by ``ServiceRunner``, and by tests that run a service in-process).
    public init(pool: PostgresPool, changeFeed: ChangeFeed, notifier: ChangeNotifier, logger: Logger, configuration: RuntimeConfiguration) {
        self.pool = pool
        self.changeFeed = changeFeed
        self.notifier = notifier
        self.logger = logger
        self.configuration = configuration
    }
}

/// Describes one Switchboard service to the runtime.
public struct ServiceDescription: Sendable {
    /// Short name, e.g. `contacts`.
    public var name: String
    /// The PostgreSQL schema it owns.
    public var schema: String
    /// Its migrations (embedded in the binary).
    public var migrations: [Migration]
    /// Fully-qualified gRPC service names it serves.
    public var grpcServices: [String]
    /// Which role each RPC needs.
    public var requiredRoles: [MethodDescriptor: Role]
    /// Builds the RPC services.
    public var makeServices: @Sendable (ServiceDependencies) -> [any RPCService]

    /// Creates a description.
    public init(
        name: String, schema: String, migrations: [Migration], grpcServices: [String],
        requiredRoles: [MethodDescriptor: Role], makeServices: @escaping @Sendable (ServiceDependencies) -> [any RPCService]
    ) {
        self.name = name
        self.schema = schema
        self.migrations = migrations
        self.grpcServices = grpcServices
        self.requiredRoles = requiredRoles
        self.makeServices = makeServices
    }
}

/// Runs a service: the shape every executable's `main` shares.
public enum ServiceRunner {
    /// Logs as JSON lines, exports metrics to Prometheus and sizes the event loops; call once, first.
    /// - Parameters:
    ///   - logLevel: the lowest level written.
    ///   - eventLoopThreads: threads serving gRPC (and running handlers); 0 chooses: one per core less one, at least
    ///     one — the database poller thread does a share of every call's work and gets the remaining core.
    /// - Returns: the metrics registry for the admin endpoint.
    public static func bootstrap(logLevel: String, eventLoopThreads: Int = 0) -> PrometheusCollectorRegistry {
        // Before anything touches the shared event loop group, which NIO sizes on first use. Measured on 2 cores
        // (BENCHMARKS.md): one loop served GetContact 12% faster than two, with less CPU per call.
        NIOSingletons.groupLoopCountSuggestion = eventLoopThreads > 0 ? eventLoopThreads : max(1, System.coreCount - 1)
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: level) }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }

    /// Applies the service's migrations, retrying while the database is unreachable (up to `patience`).
    public static func migrate(_ description: ServiceDescription, pool: PostgresPool, logger: Logger, patience: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + patience
        while true {
            do {
                let applied = try await MigrationRunner(schema: description.schema, migrations: description.migrations).migrate(pool)
                logger.info("migrations up to date", metadata: ["applied": "\(applied)", "schema": "\(description.schema)"])
                return
            } catch let error as PostgresError where error.isConnectionFailure && ContinuousClock.now < deadline {
                logger.warning("database unreachable; retrying migrations", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Runs the service until SIGTERM/SIGINT: then health goes NOT_SERVING, the server sends GOAWAY and drains
    /// in-flight calls for the grace period, the other parts stop, the pool closes, and the process can exit 0.
    public static func run(_ description: ServiceDescription, configuration: RuntimeConfiguration, registry: PrometheusCollectorRegistry) async throws {
        let logger = Logger(label: "switchboard.\(description.name)")
        var poolConfiguration = PostgresPoolConfiguration(conninfo: configuration.databaseURL, maxConnections: configuration.databasePoolSize)
        poolConfiguration.acquireTimeout = .seconds(5)
        poolConfiguration.pipelineDepth = configuration.databasePipelineDepth
        let pool = PostgresPool(configuration: poolConfiguration)
        defer { pool.close() }
        try await migrate(description, pool: pool, logger: logger)

        let feed = ChangeFeed(schema: description.schema)
        let notifier = ChangeNotifier(conninfo: configuration.databaseURL, feed: feed)
        let dependencies = ServiceDependencies(pool: pool, changeFeed: feed, notifier: notifier, logger: logger, configuration: configuration)
        let health = HealthService(services: description.grpcServices)
        let monitor = DatabaseHealthMonitor(
            pool: pool, health: health, services: description.grpcServices, probeTimeout: configuration.databaseProbeTimeout,
            logger: logger)
        await monitor.check()

        let verifier = try await TokenVerifier.make(from: configuration)
        let policy = AccessPolicy(
            required: description.requiredRoles,
            publicServices: ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"])
        var serverConfiguration = ServerConfiguration(host: configuration.grpcHost, port: configuration.grpcPort)
        serverConfiguration.maxReceiveMessageSize = configuration.maxMessageBytes
        serverConfiguration.maxConnections = configuration.maxConnections
        serverConfiguration.maxHeaderListSize = configuration.maxHeaderListBytes
        serverConfiguration.headerTimeout = configuration.headerTimeout
        serverConfiguration.idleTimeout = configuration.idleTimeout
        serverConfiguration.maxBufferedRequestBytesPerStream = configuration.maxBufferedRequestBytesPerStream
        serverConfiguration.maxBufferedRequestBytesPerConnection = configuration.maxBufferedRequestBytesPerConnection
        let server = GRPCServer(
            configuration: serverConfiguration,
            services: description.makeServices(dependencies) + BuiltinServices.make(health: health, applicationServices: description.grpcServices),
            interceptors: [CallContextInterceptor(), AuthInterceptor(verifier: verifier, policy: policy)],
            logger: logger)

        var services: [any Service] = [
            GRPCServerService(server: server, monitor: monitor, grace: configuration.shutdownGrace),
            monitor, notifier,
            RetentionService(
                feed: feed, pool: pool, days: configuration.changeRetentionDays,
                idempotencyHours: configuration.idempotencyRetentionHours, logger: logger),
        ]
        if let admin = adminServer(configuration: configuration, registry: registry, logger: logger, readiness: { monitor.isReady }) {
            services.append(admin)
        }
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            logger.critical("stopped on error", metadata: ["error": "\(error)"])
            throw error
        }
        logger.info("stopped")
    }
}

extension ServiceRunner {
    /// The admin endpoint the configuration asks for, bound to its own host (never the gRPC host), or nil when
    /// `SWITCHBOARD_ADMIN_PORT` is 0.
    /// - Parameters:
    ///   - configuration: the runtime configuration.
    ///   - registry: the metrics registry to expose.
    ///   - logger: the logger.
    ///   - readiness: whether `/readyz` answers 200.
    /// - Returns: the admin server, or nil if disabled.
    public static func adminServer(
        configuration: RuntimeConfiguration, registry: PrometheusCollectorRegistry, logger: Logger,
        readiness: @escaping @Sendable () -> Bool
    ) -> AdminServer? {
        guard configuration.adminPort != 0 else { return nil }
        return AdminServer(host: configuration.adminHost, port: configuration.adminPort, registry: registry, logger: logger, readiness: readiness)
    }
}

/// The gRPC server as a lifecycle service.
struct GRPCServerService: Service {
    let server: GRPCServer
    let monitor: DatabaseHealthMonitor
    let grace: Duration

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.run()
        } onGracefulShutdown: {
            monitor.markShuttingDown()
            Task { await server.shutDown(grace: grace) }
        }
    }
}

/// Prunes change-feed history and idempotency keys older than their retention periods, hourly.
struct RetentionService: Service {
    let feed: ChangeFeed
    let pool: PostgresPool
    let days: Int
    let idempotencyHours: Int
    let logger: Logger

    func run() async throws {
        // The hour-long sleep must end at shutdown, so graceful shutdown cancels this loop.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let removed = try await feed.purge(olderThan: days, pool: pool)
                    if removed > 0 { logger.info("pruned change feed", metadata: ["rows": "\(removed)"]) }
                } catch {
                    logger.warning("change-feed pruning failed", metadata: ["error": "\(error)"])
                }
                do {
                    let removed = try await IdempotencyKeys.purge(schema: feed.schema, olderThan: idempotencyHours, pool: pool)
                    if removed > 0 { logger.info("pruned idempotency keys", metadata: ["rows": "\(removed)"]) }
                } catch {
                    logger.warning("idempotency-key pruning failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(3600))
            }
        }
    }
}
