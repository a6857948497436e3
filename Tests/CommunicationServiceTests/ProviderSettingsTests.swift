import CommunicationService
import Foundation
import NIOHTTP1
import NIOSSL
import SwitchboardRuntime
import SwitchboardTestSupport
import Testing

/// The provider's settings, its URL parsing, the signature and the verdicts on responses: pure.
@Suite("Communication service: provider settings and verdicts")
struct ProviderSettingsTests {
    @Test("settings: the secret is the file's contents (trimmed, at least 32 bytes); the lease must exceed the timeout; URLs are checked")
    func settings() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)")
        try (providerSecret + "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let base = [
            "SWITCHBOARD_COMMUNICATION_PROVIDER_URL": "https://provider.example:8443/v1/send",
            "SWITCHBOARD_COMMUNICATION_PROVIDER_SECRET_FILE": file.path,
        ]
        #expect(try CommunicationService.providerSettings([:]) == nil)
        let parsed = try #require(try CommunicationService.providerSettings(base))
        #expect(parsed.secret == Array(providerSecret.utf8))
        #expect(parsed.endpoint == WebhookEndpoint(url: "https://provider.example:8443/v1/send"))
        #expect(parsed.endpoint.tls && parsed.endpoint.port == 8443 && parsed.endpoint.path == "/v1/send")
        #expect(throws: ConfigurationError.self) {
            _ = try CommunicationService.providerSettings(["SWITCHBOARD_COMMUNICATION_PROVIDER_URL": "http://x/"])
        }
        #expect(throws: ConfigurationError.self) {
            _ = try CommunicationService.providerSettings(base.merging(["SWITCHBOARD_COMMUNICATION_PROVIDER_URL": "ftp://x/"]) { $1 })
        }
        #expect(throws: ConfigurationError.self) {
            _ = try CommunicationService.providerSettings(
                base.merging(["SWITCHBOARD_COMMUNICATION_PROVIDER_TIMEOUT_MS": "5000", "SWITCHBOARD_COMMUNICATION_SEND_LEASE_SECONDS": "5"]) { $1 })
        }
        let short = FileManager.default.temporaryDirectory.appendingPathComponent("short-\(UUID().uuidString)")
        try "too short".write(to: short, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: short) }
        #expect(throws: ConfigurationError.self) {
            _ = try CommunicationService.providerSettings(base.merging(["SWITCHBOARD_COMMUNICATION_PROVIDER_SECRET_FILE": short.path]) { $1 })
        }
        // Keep-alive: 16 idle connections for 4 s by default; 0 turns it off; both bounded.
        #expect(parsed.keepAlive == WebhookKeepAlive(maxIdleConnections: 16, idleTimeout: .milliseconds(4000)))
        let tuned = try #require(
            try CommunicationService.providerSettings(
                base.merging([
                    "SWITCHBOARD_COMMUNICATION_PROVIDER_MAX_IDLE_CONNECTIONS": "0", "SWITCHBOARD_COMMUNICATION_PROVIDER_IDLE_TIMEOUT_MS": "250",
                ]) { $1 }))
        #expect(tuned.keepAlive == WebhookKeepAlive(maxIdleConnections: 0, idleTimeout: .milliseconds(250)))
        for (name, value) in [
            ("SWITCHBOARD_COMMUNICATION_PROVIDER_MAX_IDLE_CONNECTIONS", "257"), ("SWITCHBOARD_COMMUNICATION_PROVIDER_MAX_IDLE_CONNECTIONS", "-1"),
            ("SWITCHBOARD_COMMUNICATION_PROVIDER_IDLE_TIMEOUT_MS", "99"), ("SWITCHBOARD_COMMUNICATION_PROVIDER_IDLE_TIMEOUT_MS", "300001"),
        ] {
            #expect(throws: ConfigurationError.self, "\(name)=\(value)") {
                _ = try CommunicationService.providerSettings(base.merging([name: value]) { $1 })
            }
        }
        #expect(WebhookEndpoint(url: "http://127.0.0.1:8080")?.path == "/")
        #expect(WebhookEndpoint(url: "http://user@host/") == nil)
        #expect(WebhookEndpoint(url: "http://host:99999/") == nil)
        #expect(WebhookEndpoint(url: "http:///x") == nil)
    }

    @Test(
        "the signature is HMAC-SHA256 over the exact bytes; verdicts: 2xx accepted, 408/425/429/5xx retryable (Retry-After bounded), others rejected")
    func verdicts() {
        let body = Array("{\"a\":1}".utf8)
        #expect(ProviderAdapter.signature(of: body, secret: Array(providerSecret.utf8)) == expectedSignature(body))
        #expect(ProviderAdapter.signature(of: body + [32], secret: Array(providerSecret.utf8)) != expectedSignature(body))
        func response(_ status: Int, _ headers: [(String, String)] = [], _ body: String = "") -> WebhookResponse {
            WebhookResponse(status: status, headers: HTTPHeaders(headers), body: Array(body.utf8))
        }
        #expect(ProviderAdapter.verdict(response(202, [], "{\"id\":\"m-1\"}")) == .accepted("m-1"))
        #expect(ProviderAdapter.verdict(response(200, [("X-Provider-Message-Id", "h-2")])) == .accepted("h-2"))
        #expect(ProviderAdapter.verdict(response(200, [], "{\"id\":\"\(String(repeating: "x", count: 300))\"}")) == .accepted(""))
        #expect(ProviderAdapter.verdict(response(429, [("Retry-After", "7")])) == .retryable("the provider answered 429", retryAfter: 7))
        #expect(ProviderAdapter.verdict(response(503, [("Retry-After", "999999")])) == .retryable("the provider answered 503", retryAfter: 3600))
        #expect(ProviderAdapter.verdict(response(500, [("Retry-After", "-1")])) == .retryable("the provider answered 500", retryAfter: nil))
        #expect(ProviderAdapter.verdict(response(408)) == .retryable("the provider answered 408", retryAfter: nil))
        if case .rejected = ProviderAdapter.verdict(response(400)) {} else { Issue.record("400 is not rejected") }
        if case .rejected = ProviderAdapter.verdict(response(301)) {} else { Issue.record("301 is not rejected") }
    }

    @Test(
        "the provider CA file: its certificates become the trust roots; unreadable, empty, not PEM, or with http:// is a ConfigurationError naming it"
    )
    func caFile() async throws {
        let name = "SWITCHBOARD_COMMUNICATION_PROVIDER_CA_FILE"
        let secret = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)")
        try providerSecret.write(to: secret, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: secret) }
        let base = [
            "SWITCHBOARD_COMMUNICATION_PROVIDER_URL": "https://provider.example/v1/send",
            "SWITCHBOARD_COMMUNICATION_PROVIDER_SECRET_FILE": secret.path,
        ]
        #expect(try #require(try CommunicationService.providerSettings(base)).trustRoots == nil)
        #expect(CommunicationService.settings.contains { $0.name == name && $0.defaultValue == nil && !$0.help.isEmpty })

        let certificate = try await TestCertificate()
        defer { try? FileManager.default.removeItem(at: certificate.directory) }
        let parsed = try #require(try CommunicationService.providerSettings(base.merging([name: certificate.certificate]) { $1 }))
        #expect(parsed.trustRoots == (try NIOSSLCertificate.fromPEMFile(certificate.certificate)) && parsed.trustRoots?.count == 1)

        let notPEM = FileManager.default.temporaryDirectory.appendingPathComponent("ca-\(UUID().uuidString).pem")
        try "not a certificate\n".write(to: notPEM, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: notPEM) }
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("missing-\(UUID().uuidString).pem").path
        let cases: [(String, [String: String], String)] = [
            ("unreadable", [name: missing], "does not exist or is not readable"),
            ("a folder", [name: certificate.directory.path], "does not exist or is not readable"),
            ("not PEM", [name: notPEM.path], "holds no PEM certificate"),
            // A private key is PEM, but no certificate.
            ("a key", [name: certificate.key], "holds no PEM certificate"),
            (
                "http", [name: certificate.certificate, "SWITCHBOARD_COMMUNICATION_PROVIDER_URL": "http://provider.example/v1/send"],
                "is not an https:// URL"
            ),
        ]
        for (label, change, problem) in cases {
            let error = #expect(throws: ConfigurationError.self, "\(label)") {
                _ = try CommunicationService.providerSettings(base.merging(change) { $1 })
            }
            #expect(error?.variable == name && error?.problem.contains(problem) == true, "\(label): \(String(describing: error))")
        }
    }

    @Test("backoff doubles from the initial delay, is capped, jittered into its upper half, and never before Retry-After")
    func backoff() {
        var configuration = Dispatcher.Configuration()
        configuration.initialBackoff = 2
        configuration.maxBackoff = 60
        for attempt in 1...12 {
            let expected = min(60, 2 * pow(2, Double(attempt - 1)))
            let delay = Dispatcher.backoff(attempt: attempt, retryAfter: nil, configuration: configuration)
            #expect(delay >= expected / 2 && delay <= expected, "attempt \(attempt): \(delay)")
        }
        #expect(Dispatcher.backoff(attempt: 1, retryAfter: 30, configuration: configuration) >= 30)
        #expect(Dispatcher.backoff(attempt: 1_000_000, retryAfter: nil, configuration: configuration) <= 60)
    }
}
