import Foundation
import SwitchboardHTTP2
import SwitchboardRuntime

/// The gateway's own settings, beyond the runtime's (port, admin port, token keys, log level).
public struct GatewayConfiguration: Sendable {
    /// The services the gateway forwards to and where each runs (several addresses are balanced over).
    public var upstreams: [String: [GRPCChannel.Target]]
    /// The budget of a request that names none (`grpc-timeout` or `X-Request-Timeout` sets it).
    public var defaultTimeout: Duration
    /// The most a request may ask for.
    public var maxTimeout: Duration
    /// The largest request body read (bytes); larger bodies are refused with 413.
    public var maxBodyBytes: Int
    /// The slowest a request body may arrive on average (bytes per second): each byte buys 1/rate s before the
    /// connection is closed, never more than one header timeout from now; 0: only the pause between reads is bounded.
    public var minBodyBytesPerSecond: Int = 1024
    /// Rate limits per route class.
    public var rateLimits: [RouteClass: RateLimiter.Limit]
    /// Origins allowed by CORS (`*` allows any); empty sends no CORS headers.
    public var corsOrigins: [String]
    /// What each optional part of the contact overview may take at most (it also never outlives the request's budget).
    public var overviewPartTimeout: Duration
    /// Server streams open at once in this process.
    public var maxStreams: Int
    /// Server streams one tenant may hold open at once in this process.
    public var maxStreamsPerTenant: Int = 100
    /// Provider webhooks: `POST /v1/webhooks/{name}` is checked against ``webhookSecret`` and passed to the endpoint.
    public var webhooks: [String: WebhookEndpoint] = [:]
    /// The secret providers sign webhook bodies with (HMAC-SHA256, `X-Provider-Signature: sha256=<hex>`).
    public var webhookSecret: [UInt8]?
    /// Between two health checks of each upstream connection (`grpc.health.v1.Health/Check`); nil checks none.
    public var healthCheckInterval: Duration? = .seconds(5)

    /// The services the gateway knows, with their default gRPC ports.
    public static let services: [(name: String, port: Int)] = [
        ("contacts", 50061), ("organization", 50062), ("communication", 50063), ("collaboration", 50064), ("analytics", 50065),
    ]

    /// Every setting, for `--help` and the README.
    public static var settings: [EnvironmentSetting] {
        services.map { service in
            EnvironmentSetting(
                "SWITCHBOARD_GATEWAY_\(service.name.uppercased())_TARGETS", default: "127.0.0.1:\(service.port)",
                help:
                    "Comma-separated host:port addresses of the \(service.name) service (calls are spread over them; a failing one is skipped while it backs off); empty leaves its routes out."
            )
        } + [
            EnvironmentSetting(
                "SWITCHBOARD_GATEWAY_TIMEOUT_SECONDS", default: "10",
                help: "Budget of a unary request that sends no grpc-timeout or X-Request-Timeout."),
            EnvironmentSetting("SWITCHBOARD_GATEWAY_MAX_TIMEOUT_SECONDS", default: "60", help: "The largest budget a request may ask for."),
            EnvironmentSetting("SWITCHBOARD_GATEWAY_MAX_BODY_BYTES", default: "\(8 << 20)", help: "Largest request body (413 past it)."),
            EnvironmentSetting(
                "SWITCHBOARD_GATEWAY_MIN_BODY_RATE", default: "1024",
                help:
                    "Slowest average rate of a request body, in bytes per second: each byte buys 1/rate s (at most one header timeout ahead), so a client trickling a body is cut off; 0 bounds only the pause between reads (the header timeout)."
            ),
            EnvironmentSetting(
                "SWITCHBOARD_GATEWAY_READ_RATE", default: "200",
                help: "GET requests per second per tenant (token bucket; 0 = unlimited); per replica."),
            EnvironmentSetting("SWITCHBOARD_GATEWAY_READ_BURST", default: "400", help: "Burst of GET requests per tenant."),
            EnvironmentSetting(
                "SWITCHBOARD_GATEWAY_WRITE_RATE", default: "50", help: "Other requests per second per tenant (0 = unlimited); per replica."),
            EnvironmentSetting("SWITCHBOARD_GATEWAY_WRITE_BURST", default: "100", help: "Burst of other requests per tenant."),
            EnvironmentSetting(
                "SWITCHBOARD_GATEWAY_STREAM_RATE", default: "2", help: "Server streams opened per second per tenant (0 = unlimited); per replica."),
            EnvironmentSetting("SWITCHBOARD_GATEWAY_STREAM_BURST", default: "20", help: "Burst of streams opened per tenant."),
            EnvironmentSetting("SWITCHBOARD_GATEWAY_MAX_STREAMS", default: "1000", help: "Server streams open at once in this process."),
            EnvironmentSetting(
                "SWITCHBOARD_GATEWAY_MAX_STREAMS_PER_TENANT", default: "100",
                help: "Server streams one tenant may hold open at once (429 past it); per replica."),
            EnvironmentSetting(
                "SWITCHBOARD_GATEWAY_CORS_ORIGINS", default: "", help: "Comma-separated origins allowed by CORS, or *; empty sends no CORS headers."),
            EnvironmentSetting(
                "SWITCHBOARD_GATEWAY_WEBHOOKS", default: "",
                help:
                    "Provider webhooks as name=url pairs, comma-separated (e.g. mail=http://127.0.0.1:9563/events: the communication service's events webhook); POST /v1/webhooks/<name> is verified and passed on."
            ),
            EnvironmentSetting(
                "SWITCHBOARD_GATEWAY_WEBHOOK_SECRET_FILE", default: nil,
                help:
                    "A file holding the secret providers sign webhook bodies with (32 bytes or more; the communication service's provider secret). Required with SWITCHBOARD_GATEWAY_WEBHOOKS."
            ),
            EnvironmentSetting(
                "SWITCHBOARD_GATEWAY_OVERVIEW_PART_TIMEOUT_SECONDS", default: "2",
                help: "Longest wait for an optional part of GET /v1/contacts/{id}:overview before it is listed in partialFailures."),
            EnvironmentSetting(
                "SWITCHBOARD_GATEWAY_HEALTH_CHECK_SECONDS", default: "5",
                help:
                    "Seconds between health checks of each upstream connection (grpc.health.v1 Check of the service, 1 s deadline); an address not SERVING (e.g. its database is down) takes no requests while another serves. 0 checks none (only failed connections are avoided)."
            ),
        ]
    }

    /// Reads the settings.
    /// - Parameter environment: the process environment.
    /// - Returns: the configuration.
    /// - Throws: ``ConfigurationError`` naming a bad variable.
    public static func load(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GatewayConfiguration {
        let all = settings
        func setting(_ name: String) -> EnvironmentSetting { all.first { $0.name == name }! }
        let env = EnvironmentReader(environment)
        var upstreams: [String: [GRPCChannel.Target]] = [:]
        for service in services {
            let variable = "SWITCHBOARD_GATEWAY_\(service.name.uppercased())_TARGETS"
            let text = env.string(setting(variable)) ?? ""
            var targets: [GRPCChannel.Target] = []
            for item in text.split(separator: ",") {
                let address = item.trimmingCharacters(in: .whitespaces)
                guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port),
                    colon > address.startIndex
                else {
                    throw ConfigurationError(variable: variable, problem: "\(address) is not host:port")
                }
                targets.append(GRPCChannel.Target(host: String(address[..<colon]), port: port))
            }
            if !targets.isEmpty { upstreams[service.name] = targets }
        }
        func rate(_ name: String) throws -> Double { Double(try env.int(setting(name), in: 0...1_000_000)) }
        var limits: [RouteClass: RateLimiter.Limit] = [:]
        for routeClass in RouteClass.allCases {
            let prefix = "SWITCHBOARD_GATEWAY_\(routeClass.rawValue.uppercased())"
            let perSecond = try rate(prefix + "_RATE")
            if perSecond > 0 { limits[routeClass] = .init(perSecond: perSecond, burst: max(1, try rate(prefix + "_BURST"))) }
        }
        let maxTimeout = try env.seconds(setting("SWITCHBOARD_GATEWAY_MAX_TIMEOUT_SECONDS"), in: 0.001...86_400)
        var webhooks: [String: WebhookEndpoint] = [:]
        for item in (env.string(setting("SWITCHBOARD_GATEWAY_WEBHOOKS")) ?? "").split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, !pair[0].isEmpty, pair[0].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }),
                let endpoint = WebhookEndpoint(url: pair[1])
            else {
                throw ConfigurationError(variable: "SWITCHBOARD_GATEWAY_WEBHOOKS", problem: "\(item) is not name=http(s)://host:port/path")
            }
            webhooks[pair[0]] = endpoint
        }
        var webhookSecret: [UInt8]?
        if let path = try env.file(setting("SWITCHBOARD_GATEWAY_WEBHOOK_SECRET_FILE")) {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            // Trailing white space only, as the communication service reads the same file: both must hold the same bytes.
            var secret = Array(text.utf8)
            while let last = secret.last, last == 0x20 || last == 0x09 || last == 0x0A || last == 0x0D { secret.removeLast() }
            guard secret.count >= 32 else {
                throw ConfigurationError(variable: "SWITCHBOARD_GATEWAY_WEBHOOK_SECRET_FILE", problem: "the secret must be at least 32 bytes")
            }
            webhookSecret = secret
        }
        if !webhooks.isEmpty, webhookSecret == nil {
            throw ConfigurationError(variable: "SWITCHBOARD_GATEWAY_WEBHOOK_SECRET_FILE", problem: "required with SWITCHBOARD_GATEWAY_WEBHOOKS")
        }
        return GatewayConfiguration(
            upstreams: upstreams,
            defaultTimeout: min(maxTimeout, try env.seconds(setting("SWITCHBOARD_GATEWAY_TIMEOUT_SECONDS"), in: 0.001...86_400)),
            maxTimeout: maxTimeout,
            maxBodyBytes: try env.int(setting("SWITCHBOARD_GATEWAY_MAX_BODY_BYTES"), in: 1024...(1 << 30)),
            minBodyBytesPerSecond: try env.int(setting("SWITCHBOARD_GATEWAY_MIN_BODY_RATE"), in: 0...(1 << 30)),
            rateLimits: limits,
            corsOrigins: (env.string(setting("SWITCHBOARD_GATEWAY_CORS_ORIGINS")) ?? "").split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespaces)
            }.filter { !$0.isEmpty },
            overviewPartTimeout: try env.seconds(setting("SWITCHBOARD_GATEWAY_OVERVIEW_PART_TIMEOUT_SECONDS"), in: 0.001...3600),
            maxStreams: try env.int(setting("SWITCHBOARD_GATEWAY_MAX_STREAMS"), in: 1...1_000_000),
            maxStreamsPerTenant: try env.int(setting("SWITCHBOARD_GATEWAY_MAX_STREAMS_PER_TENANT"), in: 1...1_000_000), webhooks: webhooks,
            webhookSecret: webhookSecret,
            healthCheckInterval: { $0 > .zero ? $0 : nil }(
                try env.seconds(setting("SWITCHBOARD_GATEWAY_HEALTH_CHECK_SECONDS"), in: 0...3600)))
    }
}
