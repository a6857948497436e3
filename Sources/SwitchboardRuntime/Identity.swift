import FoundationEssentials
import JWTKit
import Synchronization
import SwitchboardRPC

/// What a caller may do. Higher roles include what lower ones may do.
public enum Role: String, Sendable, Hashable, CaseIterable, Comparable {
    /// Reads only.
    case readOnly = "read-only"
    /// Works with records.
    case user
    /// Manages a team's records and settings.
    case manager
    /// Administers the tenant.
    case admin

    private var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }
}

/// The verified caller of a call, attached to its `ServerContext` by ``AuthInterceptor``.
public struct CallerIdentity: Sendable, Hashable {
    /// The user (`sub`).
    public var userID: String
    /// The tenant (`tenant_id`); every query runs inside it.
    public var tenantID: String
    /// The roles (`roles`).
    public var roles: Set<Role>

    /// Creates an identity.
    public init(userID: String, tenantID: String, roles: Set<Role>) {
        self.userID = userID
        self.tenantID = tenantID
        self.roles = roles
    }

    /// Whether any of the caller's roles is at least `minimum`.
    public func has(atLeast minimum: Role) -> Bool { roles.contains { $0 >= minimum } }
}

extension ServerContext {
    /// The verified caller; throws UNAUTHENTICATED when the call was not authenticated (a server wiring error).
    public func caller() throws -> CallerIdentity {
        guard let identity = self[CallerIdentity.self] else {
            throw RPCError(code: .unauthenticated, message: "the call carries no verified identity")
        }
        return identity
    }
}

/// The JWT claims Switchboard reads.
public struct SwitchboardClaims: JWTPayload, Equatable {
    /// The user id.
    public var sub: SubjectClaim
    /// The tenant id.
    public var tenantID: String
    /// Role names.
    public var roles: [String]
    /// Expiry.
    public var exp: ExpirationClaim
    /// Issued at.
    public var iat: IssuedAtClaim?

    enum CodingKeys: String, CodingKey {
        case sub, roles, exp, iat
        case tenantID = "tenant_id"
    }

    /// Creates claims (used by `crmctl token` and tests).
    public init(userID: String, tenantID: String, roles: [Role], expires: Date) {
        self.sub = SubjectClaim(value: userID)
        self.tenantID = tenantID
        self.roles = roles.map(\.rawValue)
        self.exp = ExpirationClaim(value: expires)
        self.iat = IssuedAtClaim(value: Date())
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// Verifies bearer tokens with the configured keys and caches verified tokens until they expire, so verification
/// does not dominate a call's cost.
public final class TokenVerifier: Sendable {
    private let keys: JWTKeyCollection
    private let cache = Mutex<[String: (identity: CallerIdentity, expires: Date)]>([:])
    private static let cacheLimit = 10_000

    /// Creates a verifier from keys.
    /// - Parameter keys: the key collection.
    public init(keys: JWTKeyCollection) { self.keys = keys }

    /// Builds the key collection from configuration: an HS256 secret (development), a PEM public key (RS256 or
    /// ES256, told apart by its content), and/or a JWKS file.
    /// - Parameter configuration: the runtime configuration.
    /// - Returns: the verifier.
    /// - Throws: ``ConfigurationError`` naming the variable whose key could not be read.
    public static func make(from configuration: RuntimeConfiguration) async throws -> TokenVerifier {
        let keys = JWTKeyCollection()
        if let secret = configuration.jwtHS256Secret {
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        }
        if let path = configuration.jwtPublicKeyFile {
            let pem = try String(contentsOfFile: path, encoding: .utf8)
            if let ecdsa = try? ES256PublicKey(pem: pem) {
                await keys.add(ecdsa: ecdsa)
            } else {
                do {
                    await keys.add(rsa: try Insecure.RSA.PublicKey(pem: pem), digestAlgorithm: .sha256)
                } catch {
                    throw ConfigurationError(variable: "SWITCHBOARD_JWT_PUBLIC_KEY_FILE", problem: "not an RSA or P-256 public key in PEM form")
                }
            }
        }
        if let path = configuration.jwtJWKSFile {
            do {
                try await keys.add(jwksJSON: try String(contentsOfFile: path, encoding: .utf8))
            } catch {
                throw ConfigurationError(variable: "SWITCHBOARD_JWT_JWKS_FILE", problem: "not a valid JWKS document: \(error)")
            }
        }
        return TokenVerifier(keys: keys)
    }

    /// Verifies a token.
    /// - Parameter token: the compact JWT.
    /// - Returns: the caller.
    /// - Throws: `UNAUTHENTICATED` with a reason (bad signature, expired, malformed, missing claims).
    public func verify(_ token: String) async throws -> CallerIdentity {
        let now = Date()
        if let cached = cache.withLock({ $0[token] }), cached.expires > now { return cached.identity }
        let claims: SwitchboardClaims
        do {
            claims = try await keys.verify(token, as: SwitchboardClaims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw RPCError(code: .unauthenticated, message: "the token has expired", cause: error)
        } catch {
            throw RPCError(code: .unauthenticated, message: "the token is invalid", cause: error)
        }
        guard !claims.tenantID.isEmpty, !claims.sub.value.isEmpty else {
            throw RPCError(code: .unauthenticated, message: "the token lacks sub or tenant_id")
        }
        var roles = Set<Role>()
        for name in claims.roles {
            guard let role = Role(rawValue: name) else {
                throw RPCError(code: .unauthenticated, message: "the token names an unknown role \(name)")
            }
            roles.insert(role)
        }
        let identity = CallerIdentity(userID: claims.sub.value, tenantID: claims.tenantID, roles: roles)
        cache.withLock { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[token] = (identity, claims.exp.value)
        }
        return identity
    }
}

/// Which role each RPC needs. Methods listed as public need no token (health, reflection).
public struct AccessPolicy: Sendable {
    private var required: [String: Role]
    private var publicServices: Set<String>

    /// Creates a policy.
    /// - Parameters:
    ///   - required: method → the lowest role allowed.
    ///   - publicServices: services callable without a token.
    public init(required: [MethodDescriptor: Role], publicServices: Set<String>) {
        self.required = Dictionary(uniqueKeysWithValues: required.map { ($0.key.path, $0.value) })
        self.publicServices = publicServices
    }

    func isPublic(_ method: MethodDescriptor) -> Bool { publicServices.contains(method.service) }
    func requiredRole(_ method: MethodDescriptor) -> Role? { required[method.path] }
}

/// Verifies `authorization: Bearer <JWT>` and the method's role, then attaches ``CallerIdentity``.
/// Missing, malformed, badly signed or expired tokens → UNAUTHENTICATED; too weak a role → PERMISSION_DENIED.
/// A method the policy does not list is refused (PERMISSION_DENIED): access must be declared.
public struct AuthInterceptor: ServerInterceptor {
    private let verifier: TokenVerifier
    private let policy: AccessPolicy

    /// Creates the interceptor.
    public init(verifier: TokenVerifier, policy: AccessPolicy) {
        self.verifier = verifier
        self.policy = policy
    }

    public func intercept<Result: Sendable>(
        context: ServerContext, next: @Sendable (ServerContext) async throws -> Result
    ) async throws -> Result {
        if policy.isPublic(context.method) { return try await next(context) }
        guard let header = context.requestMetadata.firstString("authorization") else {
            throw RPCError(code: .unauthenticated, message: "authorization: Bearer <token> is required")
        }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw RPCError(code: .unauthenticated, message: "authorization must be a Bearer token")
        }
        // Trimmed by hand: Foundation's `trimmingCharacters` bridges through NSString and showed up in profiles.
        let token = header.utf8.dropFirst(7).drop { $0 == 0x20 || $0 == 0x09 }
        let end = token.lastIndex { $0 != 0x20 && $0 != 0x09 }.map { token.index(after: $0) } ?? token.startIndex
        let identity = try await verifier.verify(String(decoding: token[token.startIndex..<end], as: UTF8.self))
        guard let needed = policy.requiredRole(context.method) else {
            throw RPCError(code: .permissionDenied, message: "\(context.method) is not open to any role")
        }
        guard identity.has(atLeast: needed) else {
            throw RPCError(code: .permissionDenied, message: "\(context.method) needs the \(needed.rawValue) role or higher")
        }
        context[CallerIdentity.self] = identity
        context.addLoggerMetadata("user_id", identity.userID)
        context.addLoggerMetadata("tenant_id", identity.tenantID)
        return try await next(context)
    }
}
