import CommunicationService
import Foundation
import NIOCore
import NIOSSL
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// Sends to a provider over HTTPS: the fake provider serves TLS with a self-signed certificate made for this run, which
/// `SWITCHBOARD_COMMUNICATION_PROVIDER_CA_FILE` trusts and the system's trust store does not.
@Suite("Communication service: the provider over HTTPS", .serialized)
struct ProviderTLSTests {
    static let caFile = "SWITCHBOARD_COMMUNICATION_PROVIDER_CA_FILE"

    /// A file holding the provider secret, removed by the caller.
    private func secretFile() throws -> URL {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("comm-secret-\(UUID().uuidString)")
        try providerSecret.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// The provider settings the environment gives for `provider` (with the CA file when given, keep-alive on), with
    /// the test harness's fast dispatcher.
    private func settings(_ provider: FakeProvider, secret: URL, caFile: String?) throws -> CommunicationService.ProviderSettings {
        var environment = [
            "SWITCHBOARD_COMMUNICATION_PROVIDER_URL": provider.url, "SWITCHBOARD_COMMUNICATION_PROVIDER_SECRET_FILE": secret.path,
            "SWITCHBOARD_COMMUNICATION_PROVIDER_MAX_IDLE_CONNECTIONS": "4", "SWITCHBOARD_COMMUNICATION_PROVIDER_IDLE_TIMEOUT_MS": "30000",
        ]
        environment[Self.caFile] = caFile
        var parsed = try #require(try CommunicationService.providerSettings(environment))
        let fast = CommunicationHarness.providerSettings(provider)
        parsed.dispatcher = fast.dispatcher
        parsed.timeout = .seconds(2)
        return parsed
    }

    @Test("with the CA file a send goes out over https exactly once, signed; two sends in a row share one TLS connection")
    func delivered() async throws {
        let certificate = try await TestCertificate()
        defer { try? FileManager.default.removeItem(at: certificate.directory) }
        let provider = try await FakeProvider.start(certificate: certificate)
        let secret = try secretFile()
        defer { try? FileManager.default.removeItem(at: secret) }
        let settings = try settings(provider, secret: secret, caFile: certificate.certificate)
        #expect(settings.endpoint.tls && settings.endpoint.host == "localhost" && settings.trustRoots?.count == 1)
        let harness = try await CommunicationHarness.start(maxSendAttempts: 3, provider: settings)
        let contact = newID()
        let client = try await harness.client(tenant: tenant())
        _ = try await client.recordConsent(contact: contact)

        let first = try await client.send(contact: contact, body: "over TLS")
        let sent = try await client.settled(first.id)
        #expect(sent.status == .sent && sent.attempts == 1 && sent.providerMessageId == "msg-\(first.id)" && sent.lastError.isEmpty, "\(sent)")
        let second = try await client.send(contact: contact, body: "over the same connection")
        let again = try await client.settled(second.id)
        #expect(again.status == .sent && again.attempts == 1, "\(again)")

        try await Task.sleep(for: .milliseconds(300))
        let posts = provider.requests.filter { $0.idempotencyKey == first.id }
        #expect(posts.count == 1)
        let post = try #require(posts.first)
        #expect(post.signature == expectedSignature(post.body) && post.attempt == 1)
        #expect(String(decoding: post.body, as: UTF8.self).contains("over TLS"))
        #expect(provider.deliveries == [first.id, second.id])
        // Kept alive: the second send rode the first one's TLS connection (one handshake).
        #expect(provider.acceptedConnections == 1, "\(provider.acceptedConnections) connections")
        await harness.stop()
        await provider.stop()
    }

    @Test(
        "without the CA file (the system's roots) the self-signed certificate is refused: nothing is delivered, and the send fails as connection errors do"
    )
    func refusedWithoutTheCA() async throws {
        let certificate = try await TestCertificate()
        defer { try? FileManager.default.removeItem(at: certificate.directory) }
        let provider = try await FakeProvider.start(certificate: certificate)
        let secret = try secretFile()
        defer { try? FileManager.default.removeItem(at: secret) }
        let settings = try settings(provider, secret: secret, caFile: nil)
        #expect(settings.trustRoots == nil)
        let harness = try await CommunicationHarness.start(maxSendAttempts: 3, provider: settings)
        let contact = newID()
        let client = try await harness.client(tenant: tenant())
        _ = try await client.recordConsent(contact: contact)

        let send = try await client.send(contact: contact)
        let failed = try await client.settled(send.id, within: .seconds(20))
        // Retried like any connection error (a new handshake each time), then failed with the TLS error as the reason.
        #expect(failed.status == .failed && failed.attempts == 3, "\(failed)")
        #expect(failed.lastError.hasPrefix("gave up after 3 attempts: connection failed:"), "\(failed.lastError)")
        #expect(failed.lastError.contains("CERTIFICATE_VERIFY_FAILED"), "\(failed.lastError)")
        #expect(provider.requests.isEmpty && provider.deliveries.isEmpty)
        #expect(provider.acceptedConnections == 3, "\(provider.acceptedConnections) connections")
        await harness.stop()
        await provider.stop()
    }

    @Test("the endpoint's host is verified: a name (sent as SNI) against the certificate's names, an address against its addresses")
    func hostVerified() async throws {
        func deliver(_ url: String, trusting certificate: TestCertificate) async throws -> ProviderAdapter.Verdict {
            let client = try WebhookClient(
                endpoint: try #require(WebhookEndpoint(url: url)), trustRoots: try NIOSSLCertificate.fromPEMFile(certificate.certificate))
            return await ProviderAdapter(client: client, secret: Array(providerSecret.utf8), timeout: .seconds(5))
                .deliver(id: UUID(), payload: Array("{}".utf8), attempt: 1)
        }
        func accepted(_ verdict: ProviderAdapter.Verdict) -> Bool {
            if case .accepted = verdict { return true }
            return false
        }
        // Valid for both: by name and by address.
        let both = try await TestCertificate()
        defer { try? FileManager.default.removeItem(at: both.directory) }
        let provider = try await FakeProvider.start(certificate: both)
        #expect(accepted(try await deliver(provider.url(host: "localhost"), trusting: both)))
        #expect(accepted(try await deliver(provider.url(host: "127.0.0.1"), trusting: both)))
        #expect(provider.requests.count == 2)
        await provider.stop()

        // Valid for the name only: the address is refused, though the chain is trusted.
        let nameOnly = try await TestCertificate(subjectAlternativeNames: "DNS:localhost")
        defer { try? FileManager.default.removeItem(at: nameOnly.directory) }
        let named = try await FakeProvider.start(certificate: nameOnly)
        #expect(accepted(try await deliver(named.url(host: "localhost"), trusting: nameOnly)))
        let byAddress = try await deliver(named.url(host: "127.0.0.1"), trusting: nameOnly)
        #expect(!accepted(byAddress) && "\(byAddress)".contains("failedToValidateHostname"), "\(byAddress)")
        #expect(named.requests.count == 1)
        await named.stop()

        // Valid for another name only: refused by name too.
        let other = try await TestCertificate(subjectAlternativeNames: "DNS:provider.example")
        defer { try? FileManager.default.removeItem(at: other.directory) }
        let elsewhere = try await FakeProvider.start(certificate: other)
        let byName = try await deliver(elsewhere.url(host: "localhost"), trusting: other)
        #expect(
            !accepted(byName) && "\(byName)".contains("failedToValidateHostname") && "\(byName)".contains("find localhost in certificate"),
            "\(byName)")
        #expect(elsewhere.requests.isEmpty)
        await elsewhere.stop()
    }

    @Test("the executable: --help lists the CA file; a bad one stops it at start-up naming the variable; a good one reaches the provider")
    func executable() async throws {
        let binary =
            ProcessInfo.processInfo.environment["SWITCHBOARD_COMMUNICATION_BIN"]
            ?? repositoryRoot.appendingPathComponent(".build/debug/communication").path
        let (_, help) = try await runProcess(binary, ["--help"])
        #expect(help.contains(Self.caFile), "\(help)")

        let certificate = try await TestCertificate()
        defer { try? FileManager.default.removeItem(at: certificate.directory) }
        let provider = try await FakeProvider.start(certificate: certificate)
        defer { Task { await provider.stop() } }
        let secret = try secretFile()
        defer { try? FileManager.default.removeItem(at: secret) }
        let harness = try await CommunicationHarness.start()
        await harness.stop()
        var environment = [
            "SWITCHBOARD_ADMIN_PORT": "0", "SWITCHBOARD_DATABASE_URL": harness.service.serviceConninfo, "SWITCHBOARD_JWT_HS256_SECRET": testSecret,
            "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "5", "SWITCHBOARD_LOG_LEVEL": "warning",
            "SWITCHBOARD_COMMUNICATION_PROVIDER_URL": provider.url, "SWITCHBOARD_COMMUNICATION_PROVIDER_SECRET_FILE": secret.path,
            "SWITCHBOARD_COMMUNICATION_DISPATCH_POLL_MS": "50",
        ]
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("missing-\(UUID().uuidString).pem").path
        let (status, output) = try await runProcess(binary, [], environment: environment.merging([Self.caFile: missing]) { $1 })
        #expect(status != 0 && output.contains("\(Self.caFile): file \(missing) does not exist or is not readable"), "\(status): \(output)")

        environment[Self.caFile] = certificate.certificate
        let port = try #require(freePort())
        let running = try CommunicationLifecycleTests.Executable(port: port, environment: environment)
        #expect(try await running.serving(), "the service never reported SERVING")
        let channel = GRPCChannel(host: "127.0.0.1", port: port)
        defer { Task { await channel.close() } }
        var options = CallOptions(timeout: .seconds(30))
        let t = tenant()
        options.metadata.addString("Bearer \(try await ServiceHarness.token(tenant: t, roles: [.user]))", forKey: "authorization")
        // The harness is stopped (its pool closed): the address directory is written through a pool of the test's own.
        let directory = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: harness.service.serviceConninfo, maxConnections: 1))
        defer { directory.close() }
        let client = CommClient(stub: CommunicationStub(client: RPCClient(transport: channel)), options: options, tenant: t, pool: directory)
        let contact = newID()
        _ = try await client.recordConsent(contact: contact)
        let send = try await client.send(contact: contact, body: "from the executable")
        let sent = try await client.settled(send.id)
        #expect(sent.status == .sent && sent.attempts == 1, "\(sent)")
        #expect(provider.deliveries == [send.id])
        await running.kill(SIGTERM)
    }
}
