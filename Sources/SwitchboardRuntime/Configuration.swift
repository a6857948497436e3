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

    /// Creates the error (for a service's own settings, checked beyond what ``EnvironmentReader`` checks).
    /// - Parameters:
    ///   - variable: the variable's name.
    ///   - problem: what is wrong with its value.
    public init(variable: String, problem: String) {
        self.variable = variable
        self.problem = problem
    }
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
    /// A `host:port` setting (the host as given, the last colon separating the port: 1-65535, or 0-65535 with
    /// `allowingPortZero`); nil when unset.
    /// - Throws: ``ConfigurationError`` naming the variable when the value is not host:port.
    public func address(_ setting: EnvironmentSetting, allowingPortZero: Bool = false) throws -> (host: String, port: Int)? {
        guard let address = string(setting) else { return nil }
        guard let colon = address.lastIndex(of: ":"), colon != address.startIndex, let port = Int(address[address.index(after: colon)...]),
            (allowingPortZero ? 0 : 1)...65535 ~= port
        else { throw ConfigurationError(variable: setting.name, problem: "must be host:port (got \"\(address)\")") }
        return (String(address[..<colon]), port)
    }

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
    /// How long a call's writes may wait for its client to read before the stream is reset; nil disables.
    public var writeStallTimeout: Duration?

    /// Every setting of an executable with these defaults, for `--help` and validation.
    /// - Parameter defaults: the executable's ports.
    /// - Returns: the settings, in `--help` order.
    public static func settings(for defaults: ServiceDefaults) -> [EnvironmentSetting] {
        [
            .init("SWITCHBOARD_GRPC_HOST", default: "127.0.0.1", help: "Address the gRPC server binds (0.0.0.0 for all)."),
            .init("SWITCHBOARD_GRPC_PORT", default: String(defaults.grpcPort), help: "gRPC port."),
            .init(
                "SWITCHBOARD_ADMIN_HOST", default: "127.0.0.1",
                help: "Address the admin endpoint binds (0.0.0.0 for all); separate from the gRPC host, as metrics are not for callers."),
            .init("SWITCHBOARD_ADMIN_PORT", default: String(defaults.adminPort), help: "Admin HTTP port for /metrics, /livez, /readyz; 0 disables."),
            .init("SWITCHBOARD_LOG_LEVEL", default: "info", help: "trace, debug, info, notice, warning, error or critical."),
            .init(
                "SWITCHBOARD_JWT_HS256_SECRET", default: nil,
                help: "Development only: HS256 secret for tokens (min 32 bytes); the service refuses to start with it and a public key or JWKS file."),
            .init(
                "SWITCHBOARD_JWT_PUBLIC_KEY_FILE", default: nil,
                help: "PEM public key (RSA for RS256, P-256 for ES256); verifies tokens without a kid header."),
            .init(
                "SWITCHBOARD_JWT_JWKS_FILE", default: nil,
                help: "JWKS file with the public keys tokens may be signed with; a token names its key by kid, and an unknown kid is refused."),
            .init("SWITCHBOARD_JWT_ISSUER", default: nil, help: "If set, every token's iss must equal it."),
            .init("SWITCHBOARD_JWT_AUDIENCE", default: nil, help: "If set, every token's aud (a string or an array) must include it."),
            .init("SWITCHBOARD_SHUTDOWN_GRACE_SECONDS", default: "20", help: "Time in-flight calls get after SIGTERM."),
            .init("SWITCHBOARD_MAX_MESSAGE_BYTES", default: "4194304", help: "Largest request message in bytes."),
            .init(
                "SWITCHBOARD_EVENT_LOOP_THREADS", default: "0",
                help:
                    "Threads serving gRPC and running handlers (0: one per core less one, at least one; the database poller thread takes the last core)."
            ),
            .init(
                "SWITCHBOARD_MAX_CONNECTIONS", default: "4096",
                help: "Client connections served at once (1-1000000); more are closed as soon as they are accepted."),
            .init(
                "SWITCHBOARD_MAX_HEADER_LIST_BYTES", default: "16384",
                help: "Largest request header block (1024-1048576 bytes, 32 more per field as HTTP/2 counts); a larger one resets its stream."),
            .init(
                "SWITCHBOARD_HEADER_TIMEOUT_SECONDS", default: "10",
                help:
                    "Time a new connection has to send its HTTP/2 preface, and each request its headers, before the connection is closed (0.1-3600)."),
            .init(
                "SWITCHBOARD_IDLE_TIMEOUT_SECONDS", default: "300",
                help: "A connection without open calls for this long is closed with GOAWAY (0 disables; up to 86400)."),
            .init(
                "SWITCHBOARD_WRITE_STALL_SECONDS", default: "30",
                help:
                    "A call whose client reads none of its response for this long while the server has more to send is reset, freeing what its handler holds (0 disables; up to 86400)."
            ),
            .init(
                "SWITCHBOARD_MAX_BUFFERED_REQUEST_BYTES_PER_STREAM", default: "1048576",
                help:
                    "Decoded (decompressed) request bytes a call may hold that its handler has not read; past it the client is held back by flow control (65536-268435456)."
            ),
            .init(
                "SWITCHBOARD_MAX_BUFFERED_REQUEST_BYTES_PER_CONNECTION", default: "33554432",
                help: "Decoded request bytes all calls of one connection may hold together (65536-4294967296)."),
            .init(
                "SWITCHBOARD_PROTO_MAX_DEPTH", default: "100",
                help:
                    "Deepest nesting of messages a request may have (1-1000); deeper is refused before decoding (INTERNAL, as an undecodable message)."
            ),
            .init(
                "SWITCHBOARD_PROTO_MAX_ELEMENTS", default: "200000",
                help: "Most nested messages, strings and bytes fields in one request message (1-100000000)."),
        ]
    }

    /// Reads and validates the configuration.
    /// - Parameters:
    ///   - service: the executable's defaults (its ports).
    ///   - environment: the variables.
    /// - Throws: ``ConfigurationError`` naming the first invalid variable.
    public static func load(
        service: ServiceDefaults, _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> RuntimeConfiguration {
        let all = settings(for: service)
        func setting(_ name: String) -> EnvironmentSetting { all.first { $0.name == name }! }
        let env = EnvironmentReader(environment)
        let config = RuntimeConfiguration(
            grpcHost: try env.requiredString(setting("SWITCHBOARD_GRPC_HOST")),
            grpcPort: try env.int(setting("SWITCHBOARD_GRPC_PORT"), in: 0...65535),
            adminHost: try env.requiredString(setting("SWITCHBOARD_ADMIN_HOST")),
            adminPort: try env.int(setting("SWITCHBOARD_ADMIN_PORT"), in: 0...65535),
            logLevel: try env.choice(setting("SWITCHBOARD_LOG_LEVEL"), from: ["trace", "debug", "info", "notice", "warning", "error", "critical"]),
            jwtHS256Secret: env.string(setting("SWITCHBOARD_JWT_HS256_SECRET")),
            jwtPublicKeyFile: try env.file(setting("SWITCHBOARD_JWT_PUBLIC_KEY_FILE")),
            jwtJWKSFile: try env.file(setting("SWITCHBOARD_JWT_JWKS_FILE")),
            jwtIssuer: env.string(setting("SWITCHBOARD_JWT_ISSUER")),
            jwtAudience: env.string(setting("SWITCHBOARD_JWT_AUDIENCE")),
            shutdownGrace: try env.seconds(setting("SWITCHBOARD_SHUTDOWN_GRACE_SECONDS"), in: 0...3600),
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
            writeStallTimeout: try Self.optionalDuration(env.seconds(setting("SWITCHBOARD_WRITE_STALL_SECONDS"), in: 0...86_400)))
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
                problem: "the development secret must not be set together with SWITCHBOARD_JWT_PUBLIC_KEY_FILE or SWITCHBOARD_JWT_JWKS_FILE: unset it"
            )
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
    /// - Parameters:
    ///   - service: the executable's defaults.
    ///   - extra: more settings (the database's, a service's own) to list after the shared ones.
    public static func helpText(service: ServiceDefaults, extra: [EnvironmentSetting] = []) -> String {
        EnvironmentSetting.helpText(settings(for: service) + extra)
    }
}

extension EnvironmentSetting {
    /// `--help` lines for settings: each variable, its default and what it does.
    /// - Parameter settings: the settings.
    /// - Returns: the text.
    public static func helpText(_ settings: [EnvironmentSetting]) -> String {
        settings.map { s in
            "  \(s.name)\(s.defaultValue.map { " (default: \($0))" } ?? "")\n      \(s.help)"
        }.joined(separator: "\n")
    }
}

/// What distinguishes one Switchboard executable from another by default: its name and ports (see
/// `../shared/SERVICES.md`). Every default is still an environment setting.
public struct ServiceDefaults: Sendable, Hashable {
    /// Short name, e.g. `contacts`; also the service's schema and the prefix of its database role.
    public var name: String
    /// Default gRPC (or, for the gateway, HTTP) port.
    public var grpcPort: Int
    /// Default admin HTTP port.
    public var adminPort: Int

    /// Creates defaults.
    public init(name: String, grpcPort: Int, adminPort: Int) {
        self.name = name
        self.grpcPort = grpcPort
        self.adminPort = adminPort
    }

    /// `contacts`: 50061, admin 9461.
    public static let contacts = ServiceDefaults(name: "contacts", grpcPort: 50061, adminPort: 9461)
    /// `organization`: 50062, admin 9462.
    public static let organization = ServiceDefaults(name: "organization", grpcPort: 50062, adminPort: 9462)
    /// `communication`: 50063, admin 9463.
    public static let communication = ServiceDefaults(name: "communication", grpcPort: 50063, adminPort: 9463)
    /// `collaboration`: 50064, admin 9464.
    public static let collaboration = ServiceDefaults(name: "collaboration", grpcPort: 50064, adminPort: 9464)
    /// `analytics`: 50065, admin 9465.
    public static let analytics = ServiceDefaults(name: "analytics", grpcPort: 50065, adminPort: 9465)
    /// The HTTP/JSON gateway: 8080, admin 9460.
    public static let gateway = ServiceDefaults(name: "gateway", grpcPort: 8080, adminPort: 9460)
}
