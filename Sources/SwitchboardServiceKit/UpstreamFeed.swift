import SwitchboardRuntime

/// Where a service finds another service's cross-tenant change feed: its gRPC address and the service token it
/// presents there. Read from two settings, `SWITCHBOARD_<NAME>_<SOURCE>_ADDRESS` and `…_TOKEN_FILE`.
public struct UpstreamFeed: Sendable, Hashable {
    /// The source service's host.
    public var host: String
    /// Its gRPC port.
    public var port: Int
    /// Where the service token comes from.
    public var token: ServiceTokenSource

    /// Creates the source.
    public init(host: String, port: Int, token: ServiceTokenSource) {
        self.host = host
        self.port = port
        self.token = token
    }

    /// Creates the source with a token file.
    public init(host: String, port: Int, tokenFile: String) {
        self.init(host: host, port: port, token: .file(tokenFile))
    }

    /// The source its settings give; nil when the address is unset.
    /// - Parameters:
    ///   - address: the `host:port` setting.
    ///   - tokenFile: the token file setting (unset: tokens the service signs with the HS256 secret).
    ///   - service: the following service's name (the subject of the tokens it signs).
    ///   - environment: the process environment.
    /// - Throws: ``ConfigurationError`` naming the setting that is wrong or missing.
    public static func from(
        address: EnvironmentSetting, tokenFile: EnvironmentSetting, service: String, environment: [String: String]
    ) throws -> UpstreamFeed? {
        guard let hostPort = try EnvironmentReader(environment).address(address) else { return nil }
        let token = try ServiceTokenSource.required(by: address, tokenFile: tokenFile, service: service, environment: environment)
        return UpstreamFeed(host: hostPort.host, port: hostPort.port, token: token)
    }
}
