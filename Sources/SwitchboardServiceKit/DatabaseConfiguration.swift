import FoundationEssentials
import SwitchboardRuntime

/// The database settings of a service: its connection, pool and the retention of the kit's tables. Separate from
/// ``RuntimeConfiguration`` so that executables without a database (`crmctl`, the gateway) neither link libpq nor
/// list these settings.
public struct DatabaseConfiguration: Sendable {
    /// libpq connection string for the service's database, as the service's own role.
    public var url: String
    /// Pool size.
    public var poolSize: Int
    /// Single-shot calls pipelined on one connection before another is used.
    public var pipelineDepth: Int
    /// Most keys concurrent point reads put in one statement (`PostgresPool.query(_:settings:_:key:)`); 1 turns coalescing off.
    public var coalescedKeys: Int
    /// Most concurrent writes of one tenant run in one transaction (`PostgresPool.coalescedPipeline(settings:_:)`), and
    /// most calls gathered in one (`PostgresPool.gatheringCalls(_:)`: the contact summaries' lists); 1 turns both off.
    public var coalescedWrites: Int = 16
    /// How long a readiness check waits for the database.
    public var probeTimeout: Duration
    /// Days of change-feed history kept.
    public var changeRetentionDays: Int
    /// Hours a request id is remembered for idempotent retries.
    public var idempotencyRetentionHours: Int

    /// Every database setting of a service, for `--help` and validation.
    /// - Parameter service: the service (its role is `<name>_service`).
    /// - Returns: the settings.
    public static func settings(for service: ServiceDefaults) -> [EnvironmentSetting] {
        [
            .init(
                "SWITCHBOARD_DATABASE_URL", default: "host=127.0.0.1 port=54329 dbname=switchboard user=\(service.name)_service",
                help: "libpq connection string, as the service's own role; several hosts with target_session_attrs=read-write survive a failover."),
            .init("SWITCHBOARD_DB_POOL_SIZE", default: "10", help: "Database connections (1-200)."),
            .init(
                "SWITCHBOARD_DB_PIPELINE_DEPTH", default: "8",
                help:
                    "Single-statement reads pipelined on one connection before another is used (1-64; 1: a connection each). More saves the database work under load; a read may then wait behind a slow one."
            ),
            .init(
                "SWITCHBOARD_DB_COALESCED_KEYS", default: "64",
                help:
                    "Most keys that concurrent point reads (e.g. GetContact) share in one statement (1-1000; 1: a statement each). Sharing saves the database and the service a statement and a wake-up per read under load."
            ),
            .init(
                "SWITCHBOARD_DB_COALESCED_WRITES", default: "16",
                help:
                    "Most concurrent creates of one tenant committed in one transaction, and most reads of contact summaries (GetContactSummary's lists, with those of concurrent summaries of the same tenant) read in one (1-256; 1: a transaction each). One commit for several saves the database most of each write's cost; if any of them fails, each is retried alone."
            ),
            .init(
                "SWITCHBOARD_DB_PROBE_TIMEOUT_SECONDS", default: "2",
                help: "How long a readiness check waits for the database before reporting NOT_SERVING (0.1-60)."),
            .init("SWITCHBOARD_CHANGE_RETENTION_DAYS", default: "90", help: "Days of change-feed history kept (1-3650)."),
            .init(
                "SWITCHBOARD_IDEMPOTENCY_RETENTION_HOURS", default: "24",
                help: "Hours a mutation's request id is remembered (1-8760); a retry after that is a new request."),
        ]
    }

    /// Reads and validates the database settings.
    /// - Parameters:
    ///   - service: the service.
    ///   - environment: the variables.
    /// - Throws: ``ConfigurationError`` naming the first invalid variable.
    public static func load(
        service: ServiceDefaults, _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> DatabaseConfiguration {
        let all = settings(for: service)
        func setting(_ name: String) -> EnvironmentSetting { all.first { $0.name == name }! }
        let env = EnvironmentReader(environment)
        return DatabaseConfiguration(
            url: try env.requiredString(setting("SWITCHBOARD_DATABASE_URL")),
            poolSize: try env.int(setting("SWITCHBOARD_DB_POOL_SIZE"), in: 1...200),
            pipelineDepth: try env.int(setting("SWITCHBOARD_DB_PIPELINE_DEPTH"), in: 1...64),
            coalescedKeys: try env.int(setting("SWITCHBOARD_DB_COALESCED_KEYS"), in: 1...1000),
            probeTimeout: try env.seconds(setting("SWITCHBOARD_DB_PROBE_TIMEOUT_SECONDS"), in: 0.1...60),
            changeRetentionDays: try env.int(setting("SWITCHBOARD_CHANGE_RETENTION_DAYS"), in: 1...3650),
            idempotencyRetentionHours: try env.int(setting("SWITCHBOARD_IDEMPOTENCY_RETENTION_HOURS"), in: 1...8760),
            coalescedWrites: try env.int(setting("SWITCHBOARD_DB_COALESCED_WRITES"), in: 1...256))
    }

    /// Creates a configuration by hand (tests); the other settings take their defaults.
    /// - Parameter url: the connection string.
    public init(url: String) {
        self.init(
            url: url, poolSize: 8, pipelineDepth: 8, coalescedKeys: 64, probeTimeout: .seconds(2), changeRetentionDays: 90,
            idempotencyRetentionHours: 24, coalescedWrites: 16)
    }

    private init(
        url: String, poolSize: Int, pipelineDepth: Int, coalescedKeys: Int, probeTimeout: Duration, changeRetentionDays: Int,
        idempotencyRetentionHours: Int, coalescedWrites: Int
    ) {
        self.url = url
        self.poolSize = poolSize
        self.pipelineDepth = pipelineDepth
        self.coalescedKeys = coalescedKeys
        self.probeTimeout = probeTimeout
        self.changeRetentionDays = changeRetentionDays
        self.idempotencyRetentionHours = idempotencyRetentionHours
        self.coalescedWrites = coalescedWrites
    }
}
