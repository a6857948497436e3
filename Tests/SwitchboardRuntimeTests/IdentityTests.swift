import Foundation
import JWTKit
import Logging
import Prometheus
import SwitchboardRPC
import SwitchboardRuntime
import Testing

/// Production token keys: an ES256 public key file and a JWKS file (RS256 is read the same way as ES256 PEM files,
/// by content), verified through the same `TokenVerifier` the services use.
@Suite("Token verification with production key types")
struct IdentityTests {
    private func configuration(_ env: [String: String]) throws -> RuntimeConfiguration {
        try RuntimeConfiguration.load(service: .contacts, env)
    }

    @Test("an ES256 public key file verifies tokens signed with its private key and rejects others")
    func es256() async throws {
        let key = ES256PrivateKey()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("es256-\(UUID()).pem").path
        try key.publicKey.pemRepresentation.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let verifier = try await TokenVerifier.make(from: try configuration(["SWITCHBOARD_JWT_PUBLIC_KEY_FILE": path]))

        let signer = JWTKeyCollection()
        await signer.add(ecdsa: key)
        let claims = SwitchboardClaims(userID: "u", tenantID: "t", roles: [.manager], expires: Date().addingTimeInterval(60))
        let identity = try await verifier.verify(try await signer.sign(claims))
        #expect(identity == CallerIdentity(userID: "u", tenantID: "t", roles: [.manager]))

        let other = JWTKeyCollection()
        await other.add(ecdsa: ES256PrivateKey())
        await #expect(throws: RPCError.self) { try await verifier.verify(try await other.sign(claims)) }
    }

    @Test("a JWKS file's keys verify tokens that name them by kid")
    func jwks() async throws {
        let key = ES256PrivateKey()
        let params = key.parameters!
        let jwks = """
            {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "x": "\(params.x)", "y": "\(params.y)"}]}
            """
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID()).json").path
        try jwks.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let verifier = try await TokenVerifier.make(from: try configuration(["SWITCHBOARD_JWT_JWKS_FILE": path]))
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: key, kid: "k1")
        let token = try await signer.sign(
            SwitchboardClaims(userID: "u", tenantID: "t", roles: [.user], expires: Date().addingTimeInterval(60)), kid: "k1")
        #expect(try await verifier.verify(token).tenantID == "t")
    }

    @Test("configuration errors name the variable")
    func configurationErrors() {
        #expect(throws: ConfigurationError.self) { try configuration([:]) }
        do {
            _ = try configuration(["SWITCHBOARD_JWT_HS256_SECRET": String(repeating: "x", count: 40), "SWITCHBOARD_GRPC_PORT": "http"])
            Issue.record("a bad port was accepted")
        } catch let error as ConfigurationError {
            #expect(error.variable == "SWITCHBOARD_GRPC_PORT")
            #expect(error.description.contains("http"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(throws: ConfigurationError.self) {
            try configuration(["SWITCHBOARD_JWT_PUBLIC_KEY_FILE": "/no/such/file.pem"])
        }
    }

    // MARK: - Claims every token is held to

    private static let secret = String(repeating: "s", count: 40)

    private func hs256Verifier(_ extra: [String: String] = [:]) async throws -> TokenVerifier {
        try await TokenVerifier.make(from: try configuration(extra.merging(["SWITCHBOARD_JWT_HS256_SECRET": Self.secret]) { $1 }))
    }

    private func hs256Token(_ claims: SwitchboardClaims) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: Self.secret), digestAlgorithm: .sha256)
        return try await keys.sign(claims)
    }

    private func claims(notBefore: Date? = nil, issuer: String? = nil, audience: [String]? = nil) -> SwitchboardClaims {
        SwitchboardClaims(
            userID: "u", tenantID: "t", roles: [.user], expires: Date().addingTimeInterval(600),
            notBefore: notBefore, issuer: issuer, audience: audience)
    }

    /// Expects UNAUTHENTICATED whose message contains `phrase`.
    private func expectRefused(_ phrase: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("accepted; expected a refusal mentioning \"\(phrase)\"", sourceLocation: sourceLocation)
        } catch let error as RPCError {
            #expect(error.code == .unauthenticated, sourceLocation: sourceLocation)
            #expect(error.message.contains(phrase), "\(error.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("a token whose nbf is in the future is refused; one whose nbf has passed is accepted")
    func notBefore() async throws {
        let verifier = try await hs256Verifier()
        let early = try await hs256Token(claims(notBefore: Date().addingTimeInterval(300)))
        await expectRefused("nbf") { _ = try await verifier.verify(early) }
        _ = try await verifier.verify(try await hs256Token(claims(notBefore: Date().addingTimeInterval(-5))))
    }

    @Test("with SWITCHBOARD_JWT_ISSUER set, iss must equal it (a token without iss is refused)")
    func issuer() async throws {
        let verifier = try await hs256Verifier(["SWITCHBOARD_JWT_ISSUER": "https://auth.example"])
        let none = try await hs256Token(claims())
        await expectRefused("iss") { _ = try await verifier.verify(none) }
        let other = try await hs256Token(claims(issuer: "https://evil.example"))
        await expectRefused("iss") { _ = try await verifier.verify(other) }
        _ = try await verifier.verify(try await hs256Token(claims(issuer: "https://auth.example")))
        // Unset, any issuer is accepted, as before.
        _ = try await hs256Verifier().verify(other)
    }

    @Test("with SWITCHBOARD_JWT_AUDIENCE set, aud (a string or an array) must include it")
    func audience() async throws {
        let verifier = try await hs256Verifier(["SWITCHBOARD_JWT_AUDIENCE": "contacts"])
        let none = try await hs256Token(claims())
        await expectRefused("aud") { _ = try await verifier.verify(none) }
        let other = try await hs256Token(claims(audience: ["billing"]))
        await expectRefused("aud") { _ = try await verifier.verify(other) }
        let otherArray = try await hs256Token(claims(audience: ["billing", "reports"]))
        await expectRefused("aud") { _ = try await verifier.verify(otherArray) }
        let single = try await hs256Token(claims(audience: ["contacts"]))
        #expect(try unverifiedPayloadJSON(single).contains(#""aud":"contacts""#), "a single audience is a JSON string")
        _ = try await verifier.verify(single)
        let array = try await hs256Token(claims(audience: ["billing", "contacts"]))
        #expect(try unverifiedPayloadJSON(array).contains(#""aud":["billing","contacts"]"#))
        _ = try await verifier.verify(array)
    }

    private func unverifiedPayloadJSON(_ token: String) throws -> String {
        var part = String(token.split(separator: ".")[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while part.count % 4 != 0 { part += "=" }
        return String(decoding: try #require(Data(base64Encoded: part)), as: UTF8.self)
    }

    // MARK: - Key choice

    private func writeTemporary(_ text: String, suffix: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID())\(suffix)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func jwks(_ keys: [(kid: String, key: ES256PrivateKey)]) -> String {
        let entries = keys.map { kid, key in
            let p = key.parameters!
            return #"{"kty": "EC", "crv": "P-256", "kid": "\#(kid)", "alg": "ES256", "x": "\#(p.x)", "y": "\#(p.y)"}"#
        }
        return #"{"keys": [\#(entries.joined(separator: ", "))]}"#
    }

    @Test("a kid the JWKS does not hold is refused, even when the token is signed by one of its keys")
    func unknownKidWithJWKS() async throws {
        let key = ES256PrivateKey()
        let path = try writeTemporary(jwks([("k1", key)]), suffix: ".json")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let verifier = try await TokenVerifier.make(from: try configuration(["SWITCHBOARD_JWT_JWKS_FILE": path]))
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: key, kid: "k2")
        // jwt-kit alone falls back to its default key (the first JWK) for an unknown kid.
        let token = try await signer.sign(claims(), kid: "k2")
        await expectRefused("kid") { _ = try await verifier.verify(token) }
        // A token that names no key has no key to be verified with when only a JWKS is configured.
        let unnamed = JWTKeyCollection()
        await unnamed.add(ecdsa: key)
        let anonymous = try await unnamed.sign(claims())
        await expectRefused("kid") { _ = try await verifier.verify(anonymous) }
    }

    @Test("a token naming a kid is never verified with the public key file's key (which has no kid)")
    func unknownKidWithPublicKey() async throws {
        let key = ES256PrivateKey()
        let pem = try writeTemporary(key.publicKey.pemRepresentation, suffix: ".pem")
        let named = ES256PrivateKey()
        let set = try writeTemporary(jwks([("k1", named)]), suffix: ".json")
        defer {
            try? FileManager.default.removeItem(atPath: pem)
            try? FileManager.default.removeItem(atPath: set)
        }
        let verifier = try await TokenVerifier.make(
            from: try configuration([
                "SWITCHBOARD_JWT_PUBLIC_KEY_FILE": pem, "SWITCHBOARD_JWT_JWKS_FILE": set,
            ]))
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: key, kid: "made-up")
        let token = try await signer.sign(claims(), kid: "made-up")
        await expectRefused("kid") { _ = try await verifier.verify(token) }
        // The same key without a kid, and the JWKS key by its kid, are both accepted.
        let plain = JWTKeyCollection()
        await plain.add(ecdsa: key)
        _ = try await verifier.verify(try await plain.sign(claims()))
        let byKid = JWTKeyCollection()
        await byKid.add(ecdsa: named, kid: "k1")
        _ = try await verifier.verify(try await byKid.sign(claims(), kid: "k1"))
    }

    @Test("the development secret together with a production key is a configuration error naming it")
    func developmentSecretBesideProductionKey() async throws {
        let key = ES256PrivateKey()
        let pem = try writeTemporary(key.publicKey.pemRepresentation, suffix: ".pem")
        let set = try writeTemporary(jwks([("k1", key)]), suffix: ".json")
        defer {
            try? FileManager.default.removeItem(atPath: pem)
            try? FileManager.default.removeItem(atPath: set)
        }
        for production in [["SWITCHBOARD_JWT_PUBLIC_KEY_FILE": pem], ["SWITCHBOARD_JWT_JWKS_FILE": set]] {
            do {
                _ = try configuration(production.merging(["SWITCHBOARD_JWT_HS256_SECRET": Self.secret]) { $1 })
                Issue.record("loaded with both \(production.keys.first!) and the development secret")
            } catch let error as ConfigurationError {
                #expect(error.variable == "SWITCHBOARD_JWT_HS256_SECRET")
                #expect(error.description.contains(production.keys.first!))
            }
        }
        // A configuration assembled in code is refused by the verifier too, so no HS256 token can get through.
        var both = try configuration(["SWITCHBOARD_JWT_PUBLIC_KEY_FILE": pem])
        both.jwtHS256Secret = Self.secret
        await #expect(throws: ConfigurationError.self) { _ = try await TokenVerifier.make(from: both) }
    }

    // MARK: - Other settings

    @Test("the admin endpoint binds SWITCHBOARD_ADMIN_HOST (default loopback), never the gRPC host")
    func adminHost() throws {
        let registry = PrometheusCollectorRegistry()
        let logger = Logger(label: "test")
        let exposed = try configuration(["SWITCHBOARD_JWT_HS256_SECRET": Self.secret, "SWITCHBOARD_GRPC_HOST": "0.0.0.0"])
        #expect(exposed.adminHost == "127.0.0.1")
        #expect(AdminServer.configured(configuration: exposed, registry: registry, logger: logger) { true }?.host == "127.0.0.1")

        let chosen = try configuration(["SWITCHBOARD_JWT_HS256_SECRET": Self.secret, "SWITCHBOARD_ADMIN_HOST": "10.1.2.3"])
        #expect(chosen.grpcHost == "127.0.0.1")
        let server = AdminServer.configured(configuration: chosen, registry: registry, logger: logger) { true }
        #expect(server?.host == "10.1.2.3")
        #expect(server?.port == 9461)

        let off = try configuration(["SWITCHBOARD_JWT_HS256_SECRET": Self.secret, "SWITCHBOARD_ADMIN_PORT": "0"])
        #expect(AdminServer.configured(configuration: off, registry: registry, logger: logger) { true } == nil)
    }

    @Test("`contacts --help` text lists the new settings")
    func helpListsSettings() {
        let help = RuntimeConfiguration.helpText(service: .contacts)
        for name in ["SWITCHBOARD_ADMIN_HOST", "SWITCHBOARD_JWT_ISSUER", "SWITCHBOARD_JWT_AUDIENCE"] {
            #expect(help.contains(name))
        }
    }

    @Test("numbers too large for their type are configuration errors, not traps")
    func hugeNumbers() throws {
        let base = ["SWITCHBOARD_JWT_HS256_SECRET": Self.secret]
        for (variable, value) in [
            ("SWITCHBOARD_GRPC_PORT", "99999999999999999999999"), ("SWITCHBOARD_MAX_CONNECTIONS", "-9223372036854775809"),
            ("SWITCHBOARD_SHUTDOWN_GRACE_SECONDS", "1e308"), ("SWITCHBOARD_SHUTDOWN_GRACE_SECONDS", "inf"),
            ("SWITCHBOARD_SHUTDOWN_GRACE_SECONDS", "nan"), ("SWITCHBOARD_SHUTDOWN_GRACE_SECONDS", "-1"),
        ] {
            #expect(throws: ConfigurationError.self, "\(variable)=\(value)") {
                try configuration(base.merging([variable: value]) { $1 })
            }
        }
        // The reader itself must not trap whatever range a caller allows: 1e300 s is not a number of milliseconds
        // an Int64 can hold (this conversion used to be `Int64(value * 1000)`, which traps).
        let reader = EnvironmentReader(["X": "1e300"])
        let setting = EnvironmentSetting("X", default: nil, help: "")
        #expect(throws: ConfigurationError.self) { try reader.seconds(setting, in: 0...Double.greatestFiniteMagnitude) }
        #expect(try EnvironmentReader(["X": "2.5"]).seconds(setting, in: 0...10) == .milliseconds(2500))
    }
}
