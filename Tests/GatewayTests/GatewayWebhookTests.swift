import CommunicationService
import Crypto
import Foundation
import NIOCore
import NIOPosix
import SwitchboardPostgres
import SwitchboardRuntime
import SwitchboardServiceKitTestSupport
import Testing

/// `POST /v1/webhooks/{provider}`: verified at the edge, passed to communication's events webhook, replays no-ops.
@Suite("Gateway webhooks", .serialized)
struct GatewayWebhookTests {
    static let secret = "provider-secret-0123456789abcdef0123456789"

    static func sign(_ body: String) -> String {
        "sha256="
            + HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: SymmetricKey(data: Array(secret.utf8)))
            .map { String(format: "%02x", $0) }.joined()
    }

    @Test("a bad signature is 401 without passing anything on; a signed event reaches communication once")
    func providerEvents() async throws {
        // A free port for communication's events webhook.
        let probe = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let eventsPort = probe.localAddress!.port!
        try await probe.close()
        var provider = CommunicationService.ProviderSettings(
            endpoint: WebhookEndpoint(url: "http://127.0.0.1:1/send")!, secret: Array(Self.secret.utf8))
        provider.eventsHost = "127.0.0.1"
        provider.eventsPort = eventsPort
        let communication = try await ServiceHarness.start(CommunicationService.description(pageBytes: 1 << 20, provider: provider))
        let secretFile = FileManager.default.temporaryDirectory.appendingPathComponent("webhook-secret-\(UUID())").path
        try Self.secret.write(toFile: secretFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: secretFile) }
        let gw = try await GatewayHarness.start(
            targets: ["communication": "127.0.0.1:\(communication.port)"],
            environment: [
                "SWITCHBOARD_GATEWAY_WEBHOOKS": "mail=http://127.0.0.1:\(eventsPort)/events", "SWITCHBOARD_GATEWAY_WEBHOOK_SECRET_FILE": secretFile,
            ])
        defer {
            Task {
                await gw.stop()
                await communication.stop()
            }
        }
        let tenant = "gw-" + UUID().uuidString.prefix(8).lowercased()
        let token = try await GatewayHarness.token(tenant: tenant)
        let contact = UUID().uuidString.lowercased()
        // The contact's address, as the contacts feed would have listed it (a send goes only to a contact's own address).
        _ = try await communication.pool.transaction(settings: ["app.tenant_id": tenant]) { c in
            try await c.query(
                "INSERT INTO communication.contact_addresses (tenant_id, kind, address, contact_id) VALUES ($1, 'email', 'a@example.com', $2::uuid)",
                [.text(tenant), .text(contact)])
        }
        let consent = try await gw.request(
            "POST", "/v1/consents",
            body:
                #"{"contactId": "\#(contact)", "channel": "CHANNEL_EMAIL", "purpose": "transactional", "status": "CONSENT_STATUS_GRANTED", "legalBasis": "LEGAL_BASIS_CONTRACT", "source": "test"}"#,
            token: token, headers: ["Idempotency-Key": "consent-1"])
        #expect(consent.status == 200, "\(consent.body)")
        let send = try await gw.request(
            "POST", "/v1/sends",
            body:
                #"{"send": {"contactId": "\#(contact)", "channel": "CHANNEL_EMAIL", "purpose": "transactional", "toAddress": "a@example.com", "subject": "s", "body": "b"}}"#,
            token: token, headers: ["Idempotency-Key": "send-1"])
        #expect(send.status == 200, "\(send.body)")
        let sendID = try #require(send.json["id"] as? String)

        let event = #"{"eventId": "evt-1", "idempotencyKey": "\#(sendID)", "type": "delivered"}"#
        let unsigned = try await gw.request("POST", "/v1/webhooks/mail", body: event)
        #expect(unsigned.status == 401)
        #expect(unsigned.json["code"] as? Int == 16)
        let forged = try await gw.request("POST", "/v1/webhooks/mail", body: event, headers: ["X-Provider-Signature": Self.sign(event + " ")])
        #expect(forged.status == 401)
        // Neither reached communication: the send is still where the provider call left it.
        let untouched = try await gw.request("GET", "/v1/sends/\(sendID)", token: token)
        #expect(untouched.status == 200)
        #expect(!untouched.body.contains("DELIVERED"), "\(untouched.body)")
        let applied = try await gw.request("POST", "/v1/webhooks/mail", body: event, headers: ["X-Provider-Signature": Self.sign(event)])
        #expect(applied.status == 200, "\(applied.body)")
        let replayed = try await gw.request("POST", "/v1/webhooks/mail", body: event, headers: ["X-Provider-Signature": Self.sign(event)])
        #expect(replayed.status == 200, "\(replayed.body)")
        let state = try await gw.request("GET", "/v1/sends/\(sendID)", token: token)
        #expect(state.body.contains("DELIVERED"), "\(state.body)")

        let unknownSend = #"{"eventId": "evt-2", "idempotencyKey": "\#(UUID().uuidString.lowercased())", "type": "delivered"}"#
        let notFound = try await gw.request("POST", "/v1/webhooks/mail", body: unknownSend, headers: ["X-Provider-Signature": Self.sign(unknownSend)])
        #expect(notFound.status == 404, "\(notFound.body)")
        #expect(try await gw.request("POST", "/v1/webhooks/other", body: event, headers: ["X-Provider-Signature": Self.sign(event)]).status == 404)
        #expect(try await gw.request("GET", "/v1/webhooks/mail").status == 405)
    }
}
