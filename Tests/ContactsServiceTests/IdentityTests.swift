import Foundation
import JWTKit
import SwitchboardRPC
import SwitchboardRuntime
import Testing

/// Production token keys: an ES256 public key file and a JWKS file (RS256 is read the same way as ES256 PEM files,
/// by content), verified through the same `TokenVerifier` the services use.
@Suite("Token verification with production key types")
struct IdentityTests {
    private func configuration(_ env: [String: String]) throws -> RuntimeConfiguration {
        try RuntimeConfiguration.load(service: "contacts", env)
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
        let token = try await signer.sign(SwitchboardClaims(userID: "u", tenantID: "t", roles: [.user], expires: Date().addingTimeInterval(60)), kid: "k1")
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
}
