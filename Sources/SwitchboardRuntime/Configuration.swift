import FoundationEssentials

/// One setting read from an environment variable.
public struct EnvironmentSetting: Sendable {
    /// The variable, e.g. `SWITCHBOARD_GRPC_PORT`.
    public let name: String
    /// The value used when it is unset; nil means the setting is optional with no default.
    public let defaultValue: String?
    /// What it does, for `--help`.
    public let help: String

    /// Creates a setting.
    public init(_ name: String, default defaultValue: String?, help: String) {
        self.name = name
        self.defaultValue = defaultValue
        self.help = help
    }
}

/// A setting whose value is invalid; the message names the variable.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    /// The variable.
    public let variable: String
    /// What is wrong.
    public let problem: String
    /// `SWITCHBOARD_GRPC_PORT: must be an integer from 1 to 65535 (got "x")`.
    public var description: String { "\(variable): \(problem)" }
}

/// Reads settings from an environment, validating each and naming the variable in every error.
public struct EnvironmentReader: Sendable {
    private let environment: [String: String]

    /// Creates a reader.
    /// - Parameter environment: the variables (usually the process environment).
    public init(_ environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// The raw value, or the default.
    public func string(_ setting: EnvironmentSetting) -> String? {
        environment[setting.name].flatMap { $0.isEmpty ? nil : $0 } ?? setting.defaultValue
    }

    /// A required string.
    public func requiredString(_ setting: EnvironmentSetting) throws -> String {
        guard let value = string(setting) else { throw ConfigurationError(variable: setting.name, problem: "must be set") }
        return value
    }

    /// An integer within a range.
    public func int(_ setting: EnvironmentSetting, in range: ClosedRange<Int>) throws -> Int {
        let raw = try requiredString(setting)
        guard let value = Int(raw), range.contains(value) else {
            throw ConfigurationError(
                variable: setting.name, problem: "must be an integer from \(range.lowerBound) to \(range.upperBound) (got \"\(raw)\")")
        }
        return value
    }

    /// A duration given in (possibly fractional) seconds, kept to the millisecond.
    public func seconds(_ setting: EnvironmentSetting, in range: ClosedRange<Double>) throws -> Duration {
        let raw = try requiredString(setting)
        // `Int64(_: Double)` traps out of range, and a caller's range may reach beyond what milliseconds in an
        // Int64 can hold: convert with `exactly:` so every value ends in an error naming the variable.
        guard let value = Double(raw), value.isFinite, range.contains(value),
              let milliseconds = Int64(exactly: (value * 1000).rounded(.towardZero))
        else {
            throw ConfigurationError(
                variable: setting.name, problem: "must be a number of seconds from \(range.lowerBound) to \(range.upperBound) (got \"\(raw)\")")
        }
        return .milliseconds(milliseconds)
    }

    /// One of a fixed set of words.
    public func choice(_ setting: EnvironmentSetting, from choices: [String]) throws -> String {
        let raw = try requiredString(setting).lowercased()
        guard choices.contains(raw) else {
            throw ConfigurationError(variable: setting.name, problem: "must be one of \(choices.joined(separator: ", ")) (got \"\(raw)\")")
        }
        return raw
    }

    /// A path to a readable file, if set.
    public func file(_ setting: EnvironmentSetting) throws -> String? {
        guard let path = string(setting) else { return nil }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ConfigurationError(variable: setting.name, problem: "file \(path) does not exist or is not readable")
        }
        return path
    }
}

/// The settings every Switchboard service shares. Each is an environment variable with a safe default.
public struct RuntimeConfiguration: Sendable {
    /// Address the gRPC server binds.
    public var grpcHost: String
    /// gRPC port.
    public var grpcPort: Int
    /// Address the admin HTTP endpoint binds; its own setting, so exposing gRPC does not expose metrics too.
    public var adminHost: String
    /// Admin HTTP port (`/metrics`, `/livez`, `/readyz`); 0 disables it.
    public var adminPort: Int
    /// libpq connection string for the service's database.
    public var databaseURL: String
    /// Pool size.
    public var databasePoolSize: Int
    /// Single-shot calls pipelined on one connection before another is used.
    public var databasePipelineDepth: Int
    /// Log level.
    public var logLevel: String
    /// Development HS256 secret; refused together with a production key (a public key or JWKS file).
    public var jwtHS256Secret: String?
    /// PEM public key file (RS256 or ES256, by its content); verifies tokens that name no key (`kid`).
    public var jwtPublicKeyFile: String?
    /// JWKS file of public keys; verifies tokens that name one of its keys by `kid`.
    public var jwtJWKSFile: String?
    /// The issuer (`iss`) every token must name, if set.
    public var jwtIssuer: String?
    /// The audience every token's `aud` must include, if set.
    public var jwtAudience: String?
    /// How long in-flight calls may run after SIGTERM.
    public var shutdownGrace: Duration
    /// Days of change-feed history kept.
    public var changeRetentionDays: Int
    /// Hours a request id is remembered for idempotent retries.
    public var idempotencyRetentionHours: Int
    /// Largest request message.
    public var maxMessageBytes: Int
    /// Event loop threads serving gRPC; 0 means one per core less one (at least one).
    public var eventLoopThreads: Int
    /// Most client connections served at once.
    public var maxConnections: Int
    /// Largest request header block in bytes (advertised and enforced).
    public var maxHeaderListBytes: Int
    /// Time a connection has for its preface, and a request for its header block.
    public var headerTimeout: Duration
    /// Time without an open stream after which a connection is closed; nil disables.
    public var idleTimeout: Duration?
    /// Decoded request bytes one stream may hold before its flow-control window is held back.
    public var maxBufferedRequestBytesPerStream: Int
    /// Decoded request bytes one connection may hold before its streams stop decoding.
    public var maxBufferedRequestBytesPerConnection: Int
    /// How long a readiness check waits for the database.
    public var databaseProbeTimeout: Duration

    /// Every setting, for `--help` and validation.
    public static let settings: [EnvironmentSetting] = [
        .init("SWITCHBOARD_GRPC_HOST", default: "127.0.0.1", help: "Address the gRPC server binds (0.0.0.0 for all)."),
        .init("SWITCHBOARD_GRPC_PORT", default: "50061", help: "gRPC port."),
        .init("SWITCHBOARD_ADMIN_HOST", default: "127.0.0.1",
              help: "Address the admin endpoint binds (0.0.0.0 for all); separate from the gRPC host, as metrics are not for callers."),
        .init("SWITCHBOARD_ADMIN_PORT", default: "9461", help: "Admin HTTP port for /metrics, /livez, /readyz; 0 disables."),
        .init("SWITCHBOARD_DATABASE_URL", default: "host=127.0.0.1 port=54329 dbname=switchboard user=<service>_service",
              help: "libpq connection string, as the service's own role; several hosts with target_session_attrs=read-write survive a failover."),
        .init("SWITCHBOARD_DB_POOL_SIZE", default: "10", help: "Database connections (1-200)."),
        .init("SWITCHBOARD_DB_PIPELINE_DEPTH", default: "8",
              help: "Single-statement reads pipelined on one connection before another is used (1-64; 1: a connection each). More saves the database work under load; a read may then wait behind a slow one."),
        .init("SWITCHBOARD_LOG_LEVEL", default: "info", help: "trace, debug, info, notice, warning, error or critical."),
        .init("SWITCHBOARD_JWT_HS256_SECRET", default: nil,
              help: "Development only: HS256 secret for tokens (min 32 bytes); the service refuses to start with it and a public key or JWKS file."),
        .init("SWITCHBOARD_JWT_PUBLIC_KEY_FILE", default: nil,
              help: "PEM public key (RSA for RS256, P-256 for ES256); verifies tokens without a kid header."),
        .init("SWITCHBOARD_JWT_JWKS_FILE", default: nil,
              help: "JWKS file with the public keys tokens may be signed with; a token names its key by kid, and an unknown kid is refused."),
        .init("SWITCHBOARD_JWT_ISSUER", default: nil, help: "If set, every token's iss must equal it."),
        .init("SWITCHBOARD_JWT_AUDIENCE", default: nil, help: "If set, every token's aud (a string or an array) must include it."),
        .init("SWITCHBOARD_SHUTDOWN_GRACE_SECONDS", default: "20", help: "Time in-flight calls get after SIGTERM."),
        .init("SWITCHBOARD_CHANGE_RETENTION_DAYS", default: "90", help: "Days of change-feed history kept (1-3650)."),
        .init("SWITCHBOARD_IDEMPOTENCY_RETENTION_HOURS", default: "24",
              help: "Hours a mutation's request id is remembered (1-8760); a retry after that is a new request."),
        .init("SWITCHBOARD_MAX_MESSAGE_BYTES", default: "4194304", help: "Largest request message in bytes."),
        .init("SWITCHBOARD_EVENT_LOOP_THREADS", default: "0",
              help: "Threads serving gRPC and running handlers (0: one per core less one, at least one; the database poller thread takes the last core)."),
        .init("SWITCHBOARD_MAX_CONNECTIONS", default: "4096",
              help: "Client connections served at once (1-1000000); more are closed as soon as they are accepted."),
        .init("SWITCHBOARD_MAX_HEADER_LIST_BYTES", default: "16384",
              help: "Largest request header block (1024-1048576 bytes, 32 more per field as HTTP/2 counts); a larger one resets its stream."),
        .init("SWITCHBOARD_HEADER_TIMEOUT_SECONDS", default: "10",
              help: "Time a new connection has to send its HTTP/2 preface, and each request its headers, before the connection is closed (0.1-3600)."),
        .init("SWITCHBOARD_IDLE_TIMEOUT_SECONDS", default: "300",
              help: "A connection without open calls for this long is closed with GOAWAY (0 disables; up to 86400)."),
        .init("SWITCHBOARD_MAX_BUFFERED_REQUEST_BYTES_PER_STREAM", default: "1048576",
              help: "Decoded (decompressed) request bytes a call may hold that its handler has not read; past it the client is held back by flow control (65536-268435456)."),
        .init("SWITCHBOARD_MAX_BUFFERED_REQUEST_BYTES_PER_CONNECTION", default: "33554432",
              help: "Decoded request bytes all calls of one connection may hold together (65536-4294967296)."),
        .init("SWITCHBOARD_PROTO_MAX_DEPTH", default: "100",
              help: "Deepest nesting of messages a request may have (1-1000); deeper is INVALID_ARGUMENT, refused before decoding."),
        .init("SWITCHBOARD_PROTO_MAX_ELEMENTS", default: "200000",
              help: "Most nested messages, strings and bytes fields in one request message (1-100000000)."),
        .init("SWITCHBOARD_DB_PROBE_TIMEOUT_SECONDS", default: "2",
              help: "How long a readiness check waits for the database before reporting NOT_SERVING (0.1-60)."),
    ]

    private static func setting(_ name: String) -> EnvironmentSetting { settings.first { $0.name == name }! }

    /// Reads and validates the configuration.
    /// - Parameter environment: the variables.
    /// - Throws: ``ConfigurationError`` naming the first invalid variable.
    public static func load(
        service: String, _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> RuntimeConfiguration {
        var environment = environment
        if (environment["SWITCHBOARD_DATABASE_URL"] ?? "").isEmpty {
            environment["SWITCHBOARD_DATABASE_URL"] = "host=127.0.0.1 port=54329 dbname=switchboard user=\(service)_service"
        }
        let env = EnvironmentReader(environment)
        let config = RuntimeConfiguration(
            grpcHost: try env.requiredString(setting("SWITCHBOARD_GRPC_HOST")),
            grpcPort: try env.int(setting("SWITCHBOARD_GRPC_PORT"), in: 0...65535),
            adminHost: try env.requiredString(setting("SWITCHBOARD_ADMIN_HOST")),
            adminPort: try env.int(setting("SWITCHBOARD_ADMIN_PORT"), in: 0...65535),
            databaseURL: try env.requiredString(setting("SWITCHBOARD_DATABASE_URL")),
            databasePoolSize: try env.int(setting("SWITCHBOARD_DB_POOL_SIZE"), in: 1...200),
            databasePipelineDepth: try env.int(setting("SWITCHBOARD_DB_PIPELINE_DEPTH"), in: 1...64),
            logLevel: try env.choice(setting("SWITCHBOARD_LOG_LEVEL"), from: ["trace", "debug", "info", "notice", "warning", "error", "critical"]),
            jwtHS256Secret: env.string(setting("SWITCHBOARD_JWT_HS256_SECRET")),
            jwtPublicKeyFile: try env.file(setting("SWITCHBOARD_JWT_PUBLIC_KEY_FILE")),
            jwtJWKSFile: try env.file(setting("SWITCHBOARD_JWT_JWKS_FILE")),
            jwtIssuer: env.string(setting("SWITCHBOARD_JWT_ISSUER")),
            jwtAudience: env.string(setting("SWITCHBOARD_JWT_AUDIENCE")),
            shutdownGrace: try env.seconds(setting("SWITCHBOARD_SHUTDOWN_GRACE_SECONDS"), in: 0...3600),
            changeRetentionDays: try env.int(setting("SWITCHBOARD_CHANGE_RETENTION_DAYS"), in: 1...3650),
            idempotencyRetentionHours: try env.int(setting("SWITCHBOARD_IDEMPOTENCY_RETENTION_HOURS"), in: 1...8760),
            maxMessageBytes: try env.int(setting("SWITCHBOARD_MAX_MESSAGE_BYTES"), in: 1024...(64 << 20)),
            eventLoopThreads: try env.int(setting("SWITCHBOARD_EVENT_LOOP_THREADS"), in: 0...256),
            maxConnections: try env.int(setting("SWITCHBOARD_MAX_CONNECTIONS"), in: 1...1_000_000),
            maxHeaderListBytes: try env.int(setting("SWITCHBOARD_MAX_HEADER_LIST_BYTES"), in: 1024...(1 << 20)),
            headerTimeout: try env.seconds(setting("SWITCHBOARD_HEADER_TIMEOUT_SECONDS"), in: 0.1...3600),
            idleTimeout: try Self.optionalDuration(env.seconds(setting("SWITCHBOARD_IDLE_TIMEOUT_SECONDS"), in: 0...86_400)),
            maxBufferedRequestBytesPerStream: try env.int(
                setting("SWITCHBOARD_MAX_BUFFERED_REQUEST_BYTES_PER_STREAM"), in: (64 << 10)...(256 << 20)),
            maxBufferedRequestBytesPerConnection: try env.int(
                setting("SWITCHBOARD_MAX_BUFFERED_REQUEST_BYTES_PER_CONNECTION"), in: (64 << 10)...(4 << 30)),
            databaseProbeTimeout: try env.seconds(setting("SWITCHBOARD_DB_PROBE_TIMEOUT_SECONDS"), in: 0.1...60))
        // Read by the protobuf decoder itself (ProtoDecodingLimits.process); validated here so that a bad value stops
        // the service at start instead of being ignored.
        _ = try env.int(setting("SWITCHBOARD_PROTO_MAX_DEPTH"), in: 1...1_000)
        _ = try env.int(setting("SWITCHBOARD_PROTO_MAX_ELEMENTS"), in: 1...100_000_000)
        if let secret = config.jwtHS256Secret, secret.utf8.count < 32 {
            throw ConfigurationError(variable: "SWITCHBOARD_JWT_HS256_SECRET", problem: "must be at least 32 bytes")
        }
        // Refused rather than ignored: a development secret beside production keys would let anyone who knows it
        // (it sits in scripts and compose files) mint tokens, and silently ignoring it would hide the mistake.
        if config.jwtHS256Secret != nil, config.jwtPublicKeyFile != nil || config.jwtJWKSFile != nil {
            throw ConfigurationError(
                variable: "SWITCHBOARD_JWT_HS256_SECRET",
                problem: "the development secret must not be set together with SWITCHBOARD_JWT_PUBLIC_KEY_FILE or SWITCHBOARD_JWT_JWKS_FILE: unset it")
        }
        if config.jwtHS256Secret == nil, config.jwtPublicKeyFile == nil, config.jwtJWKSFile == nil {
            throw ConfigurationError(
                variable: "SWITCHBOARD_JWT_HS256_SECRET",
                problem: "no token key configured: set it (development) or SWITCHBOARD_JWT_PUBLIC_KEY_FILE / SWITCHBOARD_JWT_JWKS_FILE")
        }
        return config
    }

    private static func optionalDuration(_ duration: Duration) -> Duration? { duration == .zero ? nil : duration }

    /// The `--help` text listing every variable, its default and what it does.
    /// - Parameter extra: service-specific settings to list after the shared ones.
    public static func helpText(extra: [EnvironmentSetting] = []) -> String {
        (settings + extra).map { s in
            "  \(s.name)\(s.defaultValue.map { " (default: \($0))" } ?? "")\n      \(s.help)"
        }.joined(separator: "\n")
    }
}
