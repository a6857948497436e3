import FoundationEssentials
import JWTKit

/// Where a service identity's bearer token comes from when one service calls another as itself (a feed consumer, say).
/// Asked for on every (re)connection, so a token can be renewed or rotated without a restart.
public enum ServiceTokenSource: Sendable, Hashable, CustomStringConvertible {
    /// A file holding the token (minted by an operator, e.g. `crmctl token --service NAME`), read on every call.
    case file(String)
    /// A token the service signs itself with the platform's HS256 secret (development, and deployments such as the
    /// compose file where every service holds that secret anyway): the `service` role, no tenant, `sub` = `service`,
    /// valid for five minutes, with the issuer and audience the platform requires. Impossible, by design, when the
    /// platform verifies tokens with a public key: then a token file is needed.
    case selfSigned(service: String, hs256Secret: String, issuer: String?, audience: String?)

    /// Says where the token comes from without the secret, so that logging a configuration never leaks it.
    public var description: String {
        switch self {
        case .file(let path): return "token file \(path)"
        case .selfSigned(let service, _, let issuer, let audience):
            return "self-signed service token for \(service) (issuer \(issuer ?? "none"), audience \(audience ?? "none"), secret redacted)"
        }
    }

    /// How long a self-signed token is valid: one connection's authentication, not a credential to keep.
    public static let selfSignedLifetime: TimeInterval = 300

    /// The token, now.
    /// - Throws: when the file cannot be read, or signing fails.
    public func token() async throws -> String {
        switch self {
        case .file(let path):
            let text = try String(contentsOfFile: path, encoding: .utf8)
            return String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
        case .selfSigned(let service, let secret, let issuer, let audience):
            let keys = JWTKeyCollection()
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            let claims = SwitchboardClaims.service(
                service, expires: Date().addingTimeInterval(Self.selfSignedLifetime), issuer: issuer, audience: audience.map { [$0] })
            return try await keys.sign(claims)
        }
    }

    /// The source a service's settings give: the token file when one is set, otherwise a self-signed token when the
    /// platform's HS256 secret (`SWITCHBOARD_JWT_HS256_SECRET`, with `SWITCHBOARD_JWT_ISSUER` and
    /// `SWITCHBOARD_JWT_AUDIENCE`) is configured, otherwise nil (the caller names the missing setting).
    /// - Parameters:
    ///   - tokenFile: the token file setting's value.
    ///   - service: the calling service's name.
    ///   - environment: the process environment.
    public static func from(tokenFile: String?, service: String, environment: [String: String]) -> ServiceTokenSource? {
        if let tokenFile { return .file(tokenFile) }
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        guard let secret = value("SWITCHBOARD_JWT_HS256_SECRET") else { return nil }
        return .selfSigned(
            service: service, hs256Secret: secret, issuer: value("SWITCHBOARD_JWT_ISSUER"), audience: value("SWITCHBOARD_JWT_AUDIENCE"))
    }

    /// The source of the tokens a service presents to the upstream whose address `address` sets: ``from(tokenFile:service:environment:)``
    /// with the token file setting `tokenFile`.
    /// - Throws: ``ConfigurationError`` naming `tokenFile` when there is neither a token file nor an HS256 secret to sign
    ///   with, or when the file cannot be read.
    public static func required(
        by address: EnvironmentSetting, tokenFile: EnvironmentSetting, service: String, environment: [String: String]
    ) throws -> ServiceTokenSource {
        guard let token = from(tokenFile: try EnvironmentReader(environment).file(tokenFile), service: service, environment: environment) else {
            throw ConfigurationError(
                variable: tokenFile.name, problem: "must be set when \(address.name) is (or SWITCHBOARD_JWT_HS256_SECRET, to sign its own)")
        }
        return token
    }
}
