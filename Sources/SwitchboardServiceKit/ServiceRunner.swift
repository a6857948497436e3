import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import SwitchboardBuiltins
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime

/// What the kit gives a service when it builds its handlers: the pieces its store needs (pool, feed, idempotency)
/// and the default `WatchChanges`. Handlers themselves get only their domain and ``changes``.
public struct ServiceDependencies: Sendable {
    /// The database pool (the service's own role and schema).
    public let pool: PostgresPool
    /// The service's change feed (the outbox its store writes to).
    public let changeFeed: ChangeFeed
    /// The service's idempotency keys.
    public let idempotency: Idempotency
    /// The tenant's `WatchChanges`, ready for the handler to call.
    public let changes: TenantChangeWatcher
    /// The wakeups of the change feed's NOTIFY channel (``ChangeFeed/channel``, payload: the tenant id), for a
    /// service's own live streams: a store that sends `pg_notify(feed.channel, tenant)` in a transaction wakes the
    /// tenant's streams at commit without a second LISTEN connection.
    public let notifier: ChangeNotifier
    /// The service's logger.
    public let logger: Logger
}

/// Describes one Switchboard service to the kit.
public struct ServiceDescription: Sendable {
    /// Name and default ports.
    public var defaults: ServiceDefaults
    /// The PostgreSQL schema it owns.
    public var schema: String
    /// Its own migrations (embedded in the binary); the kit's tables are migrated after them.
    public var migrations: [Migration]
    /// Fully-qualified gRPC service names it serves.
    public var grpcServices: [String]
    /// Which role each RPC needs.
    public var requiredRoles: [MethodDescriptor: Role]
    /// Bytes of stored resources one change-feed batch reads at most.
    public var feedBatchBytes: Int
    /// Builds the RPC services.
    public var makeServices: @Sendable (ServiceDependencies) -> [any RPCService]
    /// Builds the service's own long-running parts beside the server (a ``FeedConsumer`` of another service's feed,
    /// say); they start after the server and stop before it. None by default.
    public var makeBackgroundServices: @Sendable (ServiceDependencies) -> [any Service] = { _ in [] }

    /// The service's short name.
    public var name: String { defaults.name }

    /// Creates a description.
    public init(
        defaults: ServiceDefaults, migrations: [Migration], grpcServices: [String], requiredRoles: [MethodDescriptor: Role],
        feedBatchBytes: Int = 1 << 20, makeServices: @escaping @Sendable (ServiceDependencies) -> [any RPCService]
    ) {
        self.defaults = defaults
        self.schema = defaults.name
        self.migrations = migrations
        self.grpcServices = grpcServices
        self.requiredRoles = requiredRoles
        self.feedBatchBytes = feedBatchBytes
        self.makeServices = makeServices
    }
}

/// A service put together as it runs in production: pool, change feed, health following the database, token
/// verification, the gRPC server with the service's handlers, the kit's feed and built-in services, retention, and
/// the admin endpoint. The executable runs it (``ServiceRunner``); tests run the same assembly on a free port.
public struct ServiceAssembly: Sendable {
    /// The pool; closed by ``close()``.
    public let pool: PostgresPool
    /// The gRPC server.
    public let server: GRPCServer
    /// gRPC health (follows the database).
    public let health: HealthService
    /// The database health monitor.
    public let monitor: DatabaseHealthMonitor
    /// The long-running parts, in start order (the server first, so shutdown drains calls before the rest stop).
    public let services: [any Service]

    /// Migrates the schema and builds every part (nothing runs until ``services`` run).
    /// - Parameters:
    ///   - description: the service.
    ///   - configuration: the runtime settings.
    ///   - database: the database settings.
    ///   - registry: the metrics registry for the admin endpoint (nil: no admin endpoint).
    ///   - healthInterval: time between database checks.
    ///   - logger: the service's logger.
    public static func make(
        _ description: ServiceDescription, configuration: RuntimeConfiguration, database: DatabaseConfiguration,
        registry: PrometheusCollectorRegistry?, healthInterval: Duration = .seconds(1), logger: Logger
    ) async throws -> ServiceAssembly {
        var poolConfiguration = PostgresPoolConfiguration(conninfo: database.url, maxConnections: database.poolSize)
        poolConfiguration.acquireTimeout = .seconds(5)
        poolConfiguration.pipelineDepth = database.pipelineDepth
        poolConfiguration.maxCoalescedKeys = database.coalescedKeys
        poolConfiguration.maxCoalescedWrites = database.coalescedWrites
        let pool = PostgresPool(configuration: poolConfiguration)
        do {
            try await ServiceRunner.migrate(description, pool: pool, logger: logger)
            return try await make(
                description, pool: pool, configuration: configuration, database: database, registry: registry,
                healthInterval: healthInterval, logger: logger)
        } catch {
            pool.close()
            throw error
        }
    }

    private static func make(
        _ description: ServiceDescription, pool: PostgresPool, configuration: RuntimeConfiguration, database: DatabaseConfiguration,
        registry: PrometheusCollectorRegistry?, healthInterval: Duration, logger: Logger
    ) async throws -> ServiceAssembly {
        let feed = ChangeFeed(schema: description.schema)
        let notifier = ChangeNotifier(conninfo: database.url, feed: feed)
        let idempotency = Idempotency(schema: description.schema)
        let dependencies = ServiceDependencies(
            pool: pool, changeFeed: feed, idempotency: idempotency,
            changes: TenantChangeWatcher(feed: feed, pool: pool, notifier: notifier, batchBytes: description.feedBatchBytes),
            notifier: notifier, logger: logger)
        let feedService = Switchboard_Common_V1_ChangeFeedService.serviceName
        let applicationServices = description.grpcServices + [feedService]
        let health = HealthService(services: applicationServices)
        let monitor = DatabaseHealthMonitor(
            pool: pool, health: health, services: applicationServices, interval: healthInterval, probeTimeout: database.probeTimeout,
            logger: logger)
        await monitor.check()

        let verifier = try await TokenVerifier.make(from: configuration)
        let policy = AccessPolicy(
            required: description.requiredRoles,
            publicServices: ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"],
            serviceServices: [feedService])
        var serverConfiguration = ServerConfiguration(host: configuration.grpcHost, port: configuration.grpcPort)
        serverConfiguration.maxReceiveMessageSize = configuration.maxMessageBytes
        serverConfiguration.maxConnections = configuration.maxConnections
        serverConfiguration.maxHeaderListSize = configuration.maxHeaderListBytes
        serverConfiguration.headerTimeout = configuration.headerTimeout
        serverConfiguration.idleTimeout = configuration.idleTimeout
        serverConfiguration.streamWriteStallTimeout = configuration.writeStallTimeout
        serverConfiguration.maxBufferedRequestBytesPerStream = configuration.maxBufferedRequestBytesPerStream
        serverConfiguration.maxBufferedRequestBytesPerConnection = configuration.maxBufferedRequestBytesPerConnection
        let crossTenant = CrossTenantFeedHandler(feed: feed, pool: pool, notifier: notifier, batchBytes: description.feedBatchBytes)
        let server = GRPCServer(
            configuration: serverConfiguration,
            services: description.makeServices(dependencies) + [crossTenant]
                + BuiltinServices.make(health: health, applicationServices: applicationServices),
            interceptors: [CallContextInterceptor(), AuthInterceptor(verifier: verifier, policy: policy)],
            logger: logger)

        var services: [any Service] = [
            GRPCServerService(server: server, monitor: monitor, grace: configuration.shutdownGrace),
            monitor, notifier,
            RetentionService(
                feed: feed, idempotency: idempotency, pool: pool, days: database.changeRetentionDays,
                idempotencyHours: database.idempotencyRetentionHours, logger: logger),
        ]
        services += description.makeBackgroundServices(dependencies)
        if let registry,
            let admin = AdminServer.configured(
                configuration: configuration, registry: registry, logger: logger, readiness: { monitor.isReady })
        {
            services.append(admin)
        }
        return ServiceAssembly(pool: pool, server: server, health: health, monitor: monitor, services: services)
    }

    /// Closes the pool (after the services have stopped).
    public func close() { pool.close() }
}

/// Runs a service: the shape every executable's `main` shares (see ``ServiceCommand``).
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

    /// Applies the service's migrations and then the kit's, retrying while the database is unreachable (up to
    /// `patience`).
    public static func migrate(_ description: ServiceDescription, pool: PostgresPool, logger: Logger, patience: Duration = .seconds(60)) async throws
    {
        let deadline = ContinuousClock.now + patience
        while true {
            do {
                let applied = try await KitMigrations.migrate(schema: description.schema, service: description.migrations, pool: pool)
                logger.info(
                    "migrations up to date",
                    metadata: [
                        "applied": "\(applied.service)", "kit_applied": "\(applied.kit)", "schema": "\(description.schema)",
                    ])
                return
            } catch let error as PostgresError where error.isConnectionFailure && ContinuousClock.now < deadline {
                logger.warning("database unreachable; retrying migrations", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Runs the service until SIGTERM/SIGINT: then health goes NOT_SERVING, the server sends GOAWAY and drains
    /// in-flight calls for the grace period, the other parts stop, the pool closes, and the process can exit 0.
    public static func run(
        _ description: ServiceDescription, configuration: RuntimeConfiguration, database: DatabaseConfiguration,
        registry: PrometheusCollectorRegistry
    ) async throws {
        let logger = Logger(label: "switchboard.\(description.name)")
        let assembly = try await ServiceAssembly.make(
            description, configuration: configuration, database: database, registry: registry, logger: logger)
        defer { assembly.close() }
        let group = ServiceGroup(
            configuration: .init(
                services: assembly.services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
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

/// Prunes change-feed history, set-aside feed events and idempotency keys older than their retention periods, hourly.
struct RetentionService: Service {
    let feed: ChangeFeed
    let idempotency: Idempotency
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
                    let removed = try await FeedConsumer.purgeSetAside(olderThan: days, schema: feed.schema, pool: pool)
                    if removed > 0 { logger.info("pruned set-aside feed events", metadata: ["rows": "\(removed)"]) }
                } catch {
                    logger.warning("set-aside feed event pruning failed", metadata: ["error": "\(error)"])
                }
                do {
                    let removed = try await idempotency.purge(olderThan: idempotencyHours, pool: pool)
                    if removed > 0 { logger.info("pruned idempotency keys", metadata: ["rows": "\(removed)"]) }
                } catch {
                    logger.warning("idempotency-key pruning failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(3600))
            }
        }
    }
}
