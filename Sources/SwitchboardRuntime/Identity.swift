import FoundationEssentials
import JWTKit
import SwitchboardRPC
import Synchronization

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
    /// A service identity (the `service` role, no tenant): it may call only methods the policy opens to services,
    /// such as the cross-tenant change feed, and no tenant's methods.
    public var isService: Bool

    /// Creates a user's identity in a tenant.
    public init(userID: String, tenantID: String, roles: Set<Role>) {
        self.userID = userID
        self.tenantID = tenantID
        self.roles = roles
        self.isService = false
    }

    /// Creates a service identity.
    /// - Parameter name: the calling service (`sub`).
    public static func service(_ name: String) -> CallerIdentity {
        var identity = CallerIdentity(userID: name, tenantID: "", roles: [])
        identity.isService = true
        return identity
    }

    /// The role name a service token carries (alone, and with no tenant).
    public static let serviceRole = "service"

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
    /// Not valid before (optional).
    public var nbf: NotBeforeClaim?
    /// Issued at.
    public var iat: IssuedAtClaim?
    /// Issuer (optional; required to match when `SWITCHBOARD_JWT_ISSUER` is set).
    public var iss: IssuerClaim?
    /// Audiences, a string or an array in the token (optional; required to include `SWITCHBOARD_JWT_AUDIENCE` when set).
    public var aud: AudienceClaim?

    enum CodingKeys: String, CodingKey {
        case sub, roles, exp, nbf, iat, iss, aud
        case tenantID = "tenant_id"
    }

    /// Claims of a service identity: the `service` role, no tenant.
    /// - Parameters:
    ///   - service: the calling service's name (`sub`).
    ///   - expires: expiry.
    ///   - issuer: `iss`, if the receiving services require one.
    ///   - audience: `aud`, if they require one.
    public static func service(_ service: String, expires: Date, issuer: String? = nil, audience: [String]? = nil) -> SwitchboardClaims {
        var claims = SwitchboardClaims(userID: service, tenantID: "", roles: [], expires: expires, issuer: issuer, audience: audience)
        claims.roles = [CallerIdentity.serviceRole]
        return claims
    }

    /// Creates claims (used by `crmctl token` and tests).
    public init(
        userID: String, tenantID: String, roles: [Role], expires: Date,
        notBefore: Date? = nil, issuer: String? = nil, audience: [String]? = nil
    ) {
        self.sub = SubjectClaim(value: userID)
        self.tenantID = tenantID
        self.roles = roles.map(\.rawValue)
        self.exp = ExpirationClaim(value: expires)
        self.nbf = notBefore.map(NotBeforeClaim.init(value:))
        self.iat = IssuedAtClaim(value: Date())
        self.iss = issuer.map(IssuerClaim.init(value:))
        self.aud = audience.map(AudienceClaim.init(value:))
    }

    /// Checks the time claims; `iss` and `aud` depend on configuration, so ``TokenVerifier`` checks those.
    public func verify(using algorithm: some JWTAlgorithm) async throws {
        // One clock reading for both, so a token is judged at a single instant. No leeway on either.
        let now = Date()
        try exp.verifyNotExpired(currentDate: now)
        try nbf?.verifyNotBefore(currentDate: now)
    }
}

/// Decodes no claims: lets jwt-kit's parser read a token's header (for its `kid`) before any key is chosen, without
/// trusting or even interpreting the unverified payload.
private struct UnverifiedHeaderOnly: JWTPayload {
    init(from decoder: any Decoder) throws {}
    func encode(to encoder: any Encoder) throws {}
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Verifies bearer tokens with the configured keys and caches verified tokens until they expire, so verification
/// does not dominate a call's cost.
///
/// Keys are chosen strictly: a token that names a key (`kid`) is verified only with the JWKS key of that id, and one
/// that names none only with the key that has no id (the PEM public key, or the development secret). jwt-kit on its
/// own falls back to a default key when a `kid` is unknown; keeping named keys in a collection with no default makes
/// it refuse instead.
public final class TokenVerifier: Sendable {
    private let namedKeys: JWTKeyCollection
    private let unnamedKey: JWTKeyCollection?
    private let issuer: String?
    private let audience: String?
    private let cache = Mutex<[String: (identity: CallerIdentity, expires: Date)]>([:])
    private static let cacheLimit = 10_000

    /// Creates a verifier.
    /// - Parameters:
    ///   - namedKeys: keys tokens name by `kid`; the collection's default key is cleared, so it is never a fallback.
    ///   - unnamedKey: a collection whose default key verifies tokens without a `kid`; nil refuses such tokens.
    ///   - issuer: the `iss` every token must carry, if any.
    ///   - audience: the value every token's `aud` must include, if any.
    public init(namedKeys: JWTKeyCollection, unnamedKey: JWTKeyCollection?, issuer: String? = nil, audience: String? = nil) async {
        await namedKeys.clearDefault()
        self.namedKeys = namedKeys
        self.unnamedKey = unnamedKey
        self.issuer = issuer
        self.audience = audience
    }

    /// Builds the keys from configuration: an HS256 secret (development) or a PEM public key (RS256 or ES256, told
    /// apart by its content) for tokens without a `kid`, and/or a JWKS file for tokens that name their key.
    /// - Parameter configuration: the runtime configuration.
    /// - Returns: the verifier.
    /// - Throws: ``ConfigurationError`` naming the variable whose key could not be read.
    public static func make(from configuration: RuntimeConfiguration) async throws -> TokenVerifier {
        // `RuntimeConfiguration.load` already refuses this; checked again for configurations built by hand.
        if configuration.jwtHS256Secret != nil, configuration.jwtPublicKeyFile != nil || configuration.jwtJWKSFile != nil {
            throw ConfigurationError(
                variable: "SWITCHBOARD_JWT_HS256_SECRET",
                problem: "the development secret must not be set together with SWITCHBOARD_JWT_PUBLIC_KEY_FILE or SWITCHBOARD_JWT_JWKS_FILE: unset it"
            )
        }
        var unnamedKey: JWTKeyCollection?
        if let secret = configuration.jwtHS256Secret {
            unnamedKey = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        }
        if let path = configuration.jwtPublicKeyFile {
            let pem = try String(contentsOfFile: path, encoding: .utf8)
            if let ecdsa = try? ES256PublicKey(pem: pem) {
                unnamedKey = await JWTKeyCollection().add(ecdsa: ecdsa)
            } else {
                do {
                    unnamedKey = await JWTKeyCollection().add(rsa: try Insecure.RSA.PublicKey(pem: pem), digestAlgorithm: .sha256)
                } catch {
                    throw ConfigurationError(variable: "SWITCHBOARD_JWT_PUBLIC_KEY_FILE", problem: "not an RSA or P-256 public key in PEM form")
                }
            }
        }
        let namedKeys = JWTKeyCollection()
        if let path = configuration.jwtJWKSFile {
            do {
                try await namedKeys.add(jwksJSON: try String(contentsOfFile: path, encoding: .utf8))
            } catch {
                throw ConfigurationError(variable: "SWITCHBOARD_JWT_JWKS_FILE", problem: "not a valid JWKS document: \(error)")
            }
        }
        return await TokenVerifier(
            namedKeys: namedKeys, unnamedKey: unnamedKey, issuer: configuration.jwtIssuer, audience: configuration.jwtAudience)
    }

    /// Verifies a token.
    /// - Parameter token: the compact JWT.
    /// - Returns: the caller.
    /// - Throws: `UNAUTHENTICATED` with a reason (bad signature, unknown key, expired, not yet valid, wrong issuer or
    ///   audience, malformed, missing claims).
    public func verify(_ token: String) async throws -> CallerIdentity {
        let now = Date()
        if let cached = cache.withLock({ $0[token] }), cached.expires > now { return cached.identity }
        let claims: SwitchboardClaims
        do {
            claims = try await keys(for: token).verify(token, as: SwitchboardClaims.self)
        } catch let error as RPCError {
            throw error
        } catch let error as JWTError where error.errorType == .noKeyProvided {
            throw RPCError(code: .unauthenticated, message: "the token's key id (kid) is not one of this service's keys", cause: error)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            let reason = error.failedClaim is NotBeforeClaim ? "the token is not valid yet (nbf)" : "the token has expired"
            throw RPCError(code: .unauthenticated, message: reason, cause: error)
        } catch {
            throw RPCError(code: .unauthenticated, message: "the token is invalid", cause: error)
        }
        if let issuer, claims.iss?.value != issuer {
            throw RPCError(code: .unauthenticated, message: "the token's issuer (iss) is not the one this service trusts")
        }
        if let audience {
            do {
                guard let aud = claims.aud else { throw JWTError.claimVerificationFailure(failedClaim: nil, reason: "no aud") }
                try aud.verifyIntendedAudience(includes: audience)
            } catch {
                throw RPCError(code: .unauthenticated, message: "the token's audience (aud) does not include this service", cause: error)
            }
        }
        let identity: CallerIdentity
        if claims.roles.contains(CallerIdentity.serviceRole) {
            // A service acts for every tenant or none: mixing it with a tenant or a user's roles would be ambiguous.
            guard claims.roles.count == 1, claims.tenantID.isEmpty, !claims.sub.value.isEmpty else {
                throw RPCError(code: .unauthenticated, message: "a service token carries the service role alone, a sub and no tenant_id")
            }
            identity = .service(claims.sub.value)
        } else {
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
            identity = CallerIdentity(userID: claims.sub.value, tenantID: claims.tenantID, roles: roles)
        }
        cache.withLock { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[token] = (identity, claims.exp.value)
        }
        return identity
    }

    /// The collection that may verify `token`, chosen by whether its header names a key.
    private func keys(for token: String) throws -> JWTKeyCollection {
        // The parser jwt-kit's collections use by default, so the header is read exactly as verification reads it.
        let header = try DefaultJWTParser().parse(Array(token.utf8), as: UnverifiedHeaderOnly.self).header
        // Any `kid` field counts as naming a key, even a non-string one: such a token must not reach the unnamed key.
        if header.fields["kid"] != nil { return namedKeys }
        guard let unnamedKey else {
            throw RPCError(code: .unauthenticated, message: "the token names no key (kid); this service's keys are chosen by kid")
        }
        return unnamedKey
    }
}

/// Which role each RPC needs. Methods listed as public need no token (health, reflection).
public struct AccessPolicy: Sendable {
    private var required: [String: Role]
    private var publicServices: Set<String>
    private var serviceServices: Set<String>

    /// Creates a policy.
    /// - Parameters:
    ///   - required: method → the lowest role allowed.
    ///   - publicServices: services callable without a token.
    ///   - serviceServices: services callable only by service identities (the cross-tenant change feed).
    public init(required: [MethodDescriptor: Role], publicServices: Set<String>, serviceServices: Set<String> = []) {
        self.required = Dictionary(uniqueKeysWithValues: required.map { ($0.key.path, $0.value) })
        self.publicServices = publicServices
        self.serviceServices = serviceServices
    }

    func isPublic(_ method: MethodDescriptor) -> Bool { publicServices.contains(method.service) }
    func isForServices(_ method: MethodDescriptor) -> Bool { serviceServices.contains(method.service) }
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
        if policy.isForServices(context.method) || identity.isService {
            guard policy.isForServices(context.method), identity.isService else {
                throw RPCError(
                    code: .permissionDenied,
                    message: identity.isService
                        ? "\(context.method) acts within a tenant; a service identity may call only the cross-tenant feed"
                        : "\(context.method) is open to service identities only")
            }
            context[CallerIdentity.self] = identity
            context.addLoggerMetadata("service", identity.userID)
            return try await next(context)
        }
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
