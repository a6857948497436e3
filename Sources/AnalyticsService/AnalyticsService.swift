import FoundationEssentials
import Logging
import Metrics
import ServiceLifecycle
import SwitchboardAccess
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

/// The analytics service as the kit runs it: defaults, settings, migrations, RPCs and the role each RPC needs, and one
/// feed consumer per source service.
public enum AnalyticsService: ServiceDefinition {
    /// `analytics`, gRPC 50065, admin 9465.
    public static let defaults = ServiceDefaults.analytics

    /// The per-source settings: `SWITCHBOARD_ANALYTICS_<SOURCE>_ADDRESS` and `_TOKEN_FILE`, in ``FeedSource`` order.
    static let feedSettings: [(address: EnvironmentSetting, token: EnvironmentSetting)] = FeedSource.allCases.map { source in
        let upper = source.name.uppercased()
        return (
            EnvironmentSetting(
                "SWITCHBOARD_ANALYTICS_\(upper)_ADDRESS", default: nil,
                help: "host:port of the \(source.name) service, whose cross-tenant change feed analytics ingests; unset: that feed is not followed."),
            EnvironmentSetting(
                "SWITCHBOARD_ANALYTICS_\(upper)_TOKEN_FILE", default: nil,
                help:
                    "A file holding a service token (role service, no tenant) for the \(source.name) feed, read again at every reconnection; unset: the service signs its own five-minute tokens with SWITCHBOARD_JWT_HS256_SECRET, which is then required."
            )
        )
    }

    /// The settings of the analytics service beyond the shared ones.
    public static let settings: [EnvironmentSetting] =
        [
            .init(
                "SWITCHBOARD_ANALYTICS_MAX_PAGE_SIZE", default: "500",
                help: "Largest page GetTimeline and ListReports return (1-10000); a larger page_size is capped to it."),
            .init(
                "SWITCHBOARD_ANALYTICS_MAX_RANGE_DAYS", default: "366",
                help: "Widest time range (days, 1-3660) of GetActivityStats and ListTop; a wider one is INVALID_ARGUMENT."),
            .init("SWITCHBOARD_ANALYTICS_MAX_TOP", default: "100", help: "Largest ListTop limit (1-10000); a larger one is INVALID_ARGUMENT."),
            .init(
                "SWITCHBOARD_ANALYTICS_WATCH_STREAMS", default: "1000",
                help:
                    "WatchTimeline streams open at once in this process (1-100000; one user may hold SWITCHBOARD_ANALYTICS_WATCH_STREAMS_PER_USER); more are RESOURCE_EXHAUSTED."
            ),
            .init(
                "SWITCHBOARD_ANALYTICS_WATCH_STREAMS_PER_USER", default: "16",
                help: "WatchTimeline streams one user may hold open at once in this process (1-1000); more are RESOURCE_EXHAUSTED."),
            .init(
                "SWITCHBOARD_ANALYTICS_EXPORT_CHUNK_BYTES", default: "65536",
                help: "Largest CSV chunk ExportReport sends (1024-4194304 bytes, below SWITCHBOARD_MAX_MESSAGE_BYTES)."),
            .init(
                "SWITCHBOARD_ANALYTICS_REPORT_PAGE_ROWS", default: "500",
                help: "Rows RunReport and ExportReport read per database round trip (10-10000): a report streams with memory flat in its length."),
            .init(
                "SWITCHBOARD_ANALYTICS_MAX_DEFINITIONS", default: "1000",
                help: "Most reports, dashboards and alerts (each) one tenant may keep (1-100000); more is FAILED_PRECONDITION."),
            .init(
                "SWITCHBOARD_ANALYTICS_SCHEDULER_INTERVAL_SECONDS", default: "60",
                help: "Time between scans for scheduled report runs that are due (1-3600 s)."),
        ] + feedSettings.flatMap { [$0.address, $0.token] }

    /// Where a source feed comes from.
    public struct SourceFeed: Sendable, Hashable {
        /// Which service.
        public var source: FeedSource
        /// Its host and gRPC port.
        public var host: String, port: Int
        /// Where the service token comes from.
        public var token: ServiceTokenSource

        /// Creates the source.
        public init(source: FeedSource, host: String, port: Int, token: ServiceTokenSource) {
            self.source = source
            self.host = host
            self.port = port
            self.token = token
        }
    }

    /// The source feeds ``settings`` give (those with an address).
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func sourceFeeds(_ environment: [String: String]) throws -> [SourceFeed] {
        let env = EnvironmentReader(environment)
        var feeds: [SourceFeed] = []
        for (source, setting) in zip(FeedSource.allCases, feedSettings) {
            guard let address = try env.address(setting.address) else { continue }
            let token = try ServiceTokenSource.required(
                by: setting.address, tokenFile: setting.token, service: defaults.name, environment: environment)
            feeds.append(SourceFeed(source: source, host: address.host, port: address.port, token: token))
        }
        return feeds
    }

    /// The description with the settings the environment gives.
    /// - Throws: ``ConfigurationError`` naming an invalid variable.
    public static func description(environment: [String: String]) throws -> ServiceDescription {
        let env = EnvironmentReader(environment)
        var limits = AnalyticsLimits()
        limits.maxPageSize = try env.int(settings[0], in: 1...10_000)
        limits.maxRangeDays = try env.int(settings[1], in: 1...3660)
        limits.maxTop = try env.int(settings[2], in: 1...10_000)
        limits.watchStreams = try env.int(settings[3], in: 1...100_000)
        limits.watchStreamsPerUser = try env.int(settings[4], in: 1...1000)
        limits.exportChunkBytes = try env.int(settings[5], in: 1024...(4 << 20))
        limits.reportPageRows = try env.int(settings[6], in: 10...10_000)
        limits.maxDefinitions = try env.int(settings[7], in: 1...100_000)
        let schedulerInterval = try env.int(settings[8], in: 1...3600)
        return description(limits: limits, feeds: try sourceFeeds(environment), schedulerInterval: .seconds(schedulerInterval))
    }

    /// The description with the default settings and no feeds.
    public static var description: ServiceDescription { description() }

    /// The description.
    /// - Parameters:
    ///   - limits: the bounds on requests.
    ///   - feeds: the source feeds to follow.
    ///   - schedulerInterval: the time between scans for due scheduled reports.
    public static func description(
        limits: AnalyticsLimits = AnalyticsLimits(), feeds: [SourceFeed] = [], schedulerInterval: Duration = .seconds(60)
    ) -> ServiceDescription {
        typealias M = Switchboard_Analytics_V1_AnalyticsService.Method
        var description = ServiceDescription(
            defaults: defaults, migrations: EmbeddedMigrations.all,
            grpcServices: [Switchboard_Analytics_V1_AnalyticsService.serviceName],
            requiredRoles: AccessRules.analytics,
            makeServices: { dependencies in
                [AnalyticsHandler(domain: domain(dependencies, limits: limits), changes: dependencies.changes)]
            })
        description.makeBackgroundServices = { dependencies in
            let scheduler = ReportScheduler(
                domain: domain(dependencies, limits: limits), spec: reportSpec, interval: schedulerInterval, logger: dependencies.logger)
            return feeds.map { consumer($0, dependencies: dependencies) } + [scheduler]
        }
        return description
    }

    static func makeStore(_ dependencies: ServiceDependencies) -> PostgresAnalyticsStore { store(pool: dependencies.pool) }

    static func domain(_ dependencies: ServiceDependencies, limits: AnalyticsLimits) -> AnalyticsDomain {
        let notifier = dependencies.notifier
        return AnalyticsDomain(
            store: makeStore(dependencies), limits: limits, wakeups: { tenant in notifier.wakeups(tenantID: tenant, heartbeat: .seconds(1)) })
    }

    /// A stored report's definition, as the scheduler runs it.
    /// - Throws: when the stored JSON no longer decodes or validates.
    public static func reportSpec(_ stored: StoredDefinition) throws -> ReportSpec {
        try AnalyticsMapping.spec(try AnalyticsMapping.report(stored), prefix: "report.", stored: true)
    }

    /// The store as the service builds it, with the change-event payloads made by the handlers' mapping (tests apply
    /// feed events through it).
    /// - Parameter pool: the service's pool.
    public static func store(pool: PostgresPool) -> PostgresAnalyticsStore {
        PostgresAnalyticsStore(
            pool: pool, feed: ChangeFeed(schema: defaults.name), idempotency: Idempotency(schema: defaults.name),
            publish: .init(
                transition: { try AnalyticsMapping.proto($0).protoJSONText() },
                alertFired: { try AnalyticsMapping.proto($0).protoJSONText() },
                receipt: { try AnalyticsMapping.proto($0).protoJSONText() },
                model: { try AnalyticsMapping.proto($0).protoJSONText() },
                alert: { try AnalyticsMapping.proto($0).protoJSONText() },
                reportRun: { try AnalyticsMapping.proto($0).protoJSONText() }))
    }

    /// Applies a batch of one source feed; an event that cannot be applied is set aside
    /// (``FeedConsumer/setAside(_:reason:feed:schema:logger:on:)``), never thrown (a thrown error would retry the batch
    /// for ever and stop the feed for every tenant).
    public static func applyEvents(
        _ events: [Switchboard_Common_V1_ChangeEvent], source: FeedSource, store: PostgresAnalyticsStore, logger: Logger,
        on connection: PostgresConnection
    ) async throws {
        var facts: [IngestEvent] = []
        for event in events {
            switch FeedMapping.outcome(event, source: source) {
            case .apply(let fact): facts.append(fact)
            case .ignore: continue
            case .reject(let reason):
                try await FeedConsumer.setAside(event, reason: reason, feed: source.name, schema: defaults.name, logger: logger, on: connection)
            }
        }
        try await store.ingest(facts, on: connection)
    }

    /// Follows one source service's cross-tenant feed; `analytics_feed_lag_seconds{source}` is the age of the newest
    /// change of the last batch applied (the kit's `feed_consumer_lag_seconds{feed}` also keeps growing while it fails).
    static func consumer(_ feed: SourceFeed, dependencies: ServiceDependencies) -> FeedConsumer {
        feedConsumer(feed, pool: dependencies.pool, logger: dependencies.logger)
    }

    /// The consumer of one source feed as the service runs it, on a given pool (tests stop and restart it mid-ingest).
    /// - Parameters:
    ///   - feed: the source.
    ///   - pool: analytics' pool.
    ///   - logger: the logger.
    public static func feedConsumer(_ feed: SourceFeed, pool: PostgresPool, logger: Logger) -> FeedConsumer {
        let store = store(pool: pool)
        let token = feed.token
        let source = feed.source
        let lag = Gauge(label: "analytics_feed_lag_seconds", dimensions: [("source", source.name)])
        return FeedConsumer(
            feed: source.name, schema: defaults.name,
            source: .init(
                transport: GRPCChannel(host: feed.host, port: feed.port), token: { try await token.token() },
                resourceTypes: FeedMapping.resourceTypes(source)),
            pool: pool, logger: logger
        ) { events, connection in
            try await applyEvents(events, source: source, store: store, logger: logger, on: connection)
            if let time = events.last?.commitTime { lag.record(max(0, Date().timeIntervalSince(time))) }
        }
    }
}
