import CommunicationService
import Crypto
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

typealias SendProto = Switchboard_Communication_V1_Send

extension CommClient {
    /// Sends; unless `listed` is false, the address is first listed as the contact's (as the contacts feed would).
    func send(
        contact: String, to: String = "ada@example.com", purpose: String = "marketing", body: String = "Hello", requestID: String? = nil,
        values: [String: String] = [:], listed: Bool = true, configure: (inout SendProto) -> Void = { _ in }
    ) async throws -> SendProto {
        var send = SendProto()
        send.contactId = contact
        send.channel = .email
        send.purpose = purpose
        send.toAddress = to
        send.subject = "Hi"
        send.body = body
        configure(&send)
        if listed, UUID(uuidString: send.contactId) != nil, !send.toAddress.isEmpty {
            try await list(address: send.toAddress, kind: send.channel == .email ? "email" : "phone", for: send.contactId)
        }
        var request = Switchboard_Communication_V1_SendMessageRequest()
        request.send = send
        request.templateValues = values
        request.requestId = requestID ?? UUID().uuidString
        return try await stub.sendMessage(request, options: options)
    }

    func getSend(_ id: String) async throws -> SendProto {
        var request = Switchboard_Communication_V1_GetSendRequest()
        request.id = id
        return try await stub.getSend(request, options: options)
    }

    func cancelSend(_ id: String) async throws -> SendProto {
        var request = Switchboard_Communication_V1_CancelSendRequest()
        request.id = id
        return try await stub.cancelSend(request, options: options)
    }

    /// Polls until the send leaves SCHEDULED/SENDING (or the time runs out).
    func settled(_ id: String, within: Duration = .seconds(30)) async throws -> SendProto {
        let clock = ContinuousClock()
        let deadline = clock.now + within
        while true {
            let send = try await getSend(id)
            if send.status != .scheduled && send.status != .sending || clock.now > deadline { return send }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

func expectedSignature(_ body: [UInt8]) -> String {
    let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(providerSecret.utf8)))
    return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
}

/// Sends through the dispatcher to a fake provider, over HTTP/2 and PostgreSQL.
@Suite("Communication service: sends", .serialized)
final class SendTests {
    let provider: FakeProvider
    let harness: CommunicationHarness
    init() async throws {
        provider = try await FakeProvider.start()
        harness = try await CommunicationHarness.start(maxSendAttempts: 3, provider: CommunicationHarness.providerSettings(provider))
    }
    deinit {
        let (h, p) = (harness, provider)
        Task {
            await h.stop()
            await p.stop()
        }
    }

    /// A client of a fresh tenant with consent for `contact` on e-mail marketing.
    private func consenting(_ contact: String) async throws -> CommClient {
        let client = try await harness.client(tenant: tenant())
        _ = try await client.recordConsent(contact: contact)
        return client
    }

    @Test("a send goes out once, signed over the exact body, keyed by its id, without the tenant; a retried request sends nothing more")
    func sendNow() async throws {
        let contact = newID()
        let t = tenant()
        let client = try await harness.client(tenant: t)
        _ = try await client.recordConsent(contact: contact)
        let scheduled = try await client.send(contact: contact, body: "Hello Ada", requestID: "send-1")
        #expect(scheduled.status == .scheduled && scheduled.attempts == 0)
        let sent = try await client.settled(scheduled.id)
        #expect(sent.status == .sent && sent.attempts == 1 && sent.providerMessageId == "msg-\(scheduled.id)" && sent.sentAt != nil)
        #expect(try await client.send(contact: contact, body: "Hello Ada", requestID: "send-1").id == scheduled.id)
        // The sent message is logged as an outbound interaction with the send's id, in the contact's history.
        #expect(sent.interactionId == scheduled.id)
        let logged = try await client.get(scheduled.id)
        #expect(logged.kind == .email && logged.direction == .outbound && logged.contactIds == [contact] && logged.body == "Hello Ada")
        #expect(logged.addresses == ["ada@example.com"] && logged.ownerId == "user-1")
        #expect(try await client.list { $0.contactId = contact }.interactions.map(\.id) == [scheduled.id])
        try await Task.sleep(for: .milliseconds(300))
        let requests = provider.requests.filter { $0.idempotencyKey == scheduled.id }
        #expect(requests.count == 1)
        let request = try #require(requests.first)
        #expect(request.signature == expectedSignature(request.body))
        #expect(request.attempt == 1)
        let text = String(decoding: request.body, as: UTF8.self)
        // The body is the contract's ProviderMessage in proto3 JSON, and nothing else.
        let posted = try Switchboard_Communication_V1_ProviderMessage(protoJSONText: text)
        #expect(posted.idempotencyKey == scheduled.id && posted.channel == .email && posted.to == "ada@example.com")
        #expect(posted.subject == "Hi" && posted.body == "Hello Ada")
        #expect(!text.contains(t) && !text.contains(contact) && !text.contains("marketing"), "\(text)")
    }

    @Test("SendMessage without request_id, or with bad fields, is INVALID_ARGUMENT naming them; without consent FAILED_PRECONDITION")
    func refusals() async throws {
        let contact = newID()
        let client = try await consenting(contact)
        #expect(fields(await rpcError { _ = try await client.send(contact: contact, requestID: "") }) == ["request_id"])
        let bad = await rpcError {
            _ = try await client.send(contact: "x", to: " ", purpose: "all", body: "") { $0.channel = .unspecified }
        }
        #expect(fields(bad) == ["send.contact_id", "send.channel"])
        let bad2 = await rpcError {
            _ = try await client.send(contact: contact, to: String(repeating: "a", count: 321), purpose: "all", body: "") {
                $0.sendAt = Date().addingTimeInterval(400 * 86400)
            }
        }
        #expect(fields(bad2) == ["send.purpose", "send.to_address", "send.send_at", "send.body"])
        // A Timestamp outside its range (here before year 1) is refused, never taken as "now".
        let ancient = await rpcError { _ = try await client.send(contact: contact) { $0.sendAt = Date(timeIntervalSince1970: -1e15) } }
        #expect(fields(ancient) == ["send.send_at"])
        #expect(fields(await rpcError { _ = try await client.send(contact: contact, values: ["x": "y"]) }) == ["template_values"])
        #expect(await code { _ = try await client.send(contact: newID()) } == .failedPrecondition)
        #expect(await code { _ = try await client.send(contact: contact, purpose: "surveys") } == .failedPrecondition)
        // The address must be the contact's own in the directory the contacts feed keeps: another contact's (who may
        // have withdrawn consent), a number on the e-mail channel, or a contact with none listed is refused, naming
        // the field; the contact's own address matches however it is cased.
        let other = newID()
        try await client.list(address: "kim@example.com", for: other)
        for (to, who) in [("kim@example.com", contact), ("+49 30 1234567", contact), ("ada@example.com", newID())] {
            let refused = await rpcError { _ = try await client.send(contact: who, to: to, listed: false) }
            #expect(
                refused?.code == .failedPrecondition && refused?.message.contains("send.to_address") == true, "\(to): \(String(describing: refused))")
        }
        #expect(try await client.send(contact: contact, to: " ADA@Example.com ", listed: false).status == .scheduled)
        let template = try await client.createTemplate("T", subject: "Hi {{first}}", body: "Dear {{first}}, {{tier}}")
        let missing = await rpcError {
            _ = try await client.send(contact: contact, body: "", values: ["first": "Ada"]) {
                $0.subject = ""
                $0.templateId = template.id
            }
        }
        #expect(fields(missing) == ["template_values[tier]"])
        // A template written for another channel (SMS text sent as an e-mail) is refused, naming it.
        let sms = try await client.createTemplate("S", channel: .sms, body: "Hi {{first}}")
        let crossed = await rpcError {
            _ = try await client.send(contact: contact, body: "", values: ["first": "Ada"]) {
                $0.subject = ""
                $0.templateId = sms.id
            }
        }
        #expect(fields(crossed) == ["send.template_id"])
        let rendered = try await client.send(contact: contact, body: "", values: ["first": "Ada", "tier": "gold"]) {
            $0.subject = ""
            $0.templateId = template.id
        }
        #expect(rendered.subject == "Hi Ada" && rendered.body == "Dear Ada, gold" && rendered.templateVersion == 1)
        #expect(try await client.settled(rendered.id).status == .sent)
    }

    @Test("consent withdrawn after scheduling: the dispatcher refuses the send and never calls the provider")
    func consentAtDispatch() async throws {
        let contact = newID()
        let client = try await consenting(contact)
        // Due in 5 s: the withdrawal must commit first (1 s was too little for a loaded full run, where the consent call
        // itself took longer and the send went out before it).
        let due = Date().addingTimeInterval(5)
        let scheduled = try await client.send(contact: contact) { $0.sendAt = due }
        _ = try await client.recordConsent(contact: contact, purpose: "all", status: .withdrawn, basis: .unspecified, source: "unsubscribe")
        try #require(Date() < due, "recording the withdrawal took until the send was due: the test's premise does not hold")
        let settled = try await client.settled(scheduled.id)
        #expect(settled.status == .refused && settled.lastError.contains("withdrawn") && settled.attempts == 1)
        #expect(provider.requests.allSatisfy { $0.idempotencyKey != scheduled.id })
    }

    @Test("retryable failures (500, 503, a timeout) are retried with the same key, bytes and signature; the attempt is a header")
    func retries() async throws {
        let contact = newID()
        let client = try await consenting(contact)
        provider.script([.status(500), .hang, .status(503)])
        // Three attempts are allowed: 500, hang, 503 exhaust them.
        let failing = try await client.send(contact: contact, body: "first")
        let failed = try await client.settled(failing.id, within: .seconds(20))
        #expect(failed.status == .failed && failed.attempts == 3 && failed.lastError.hasPrefix("gave up after 3 attempts"), "\(failed)")
        let tries = provider.requests.filter { $0.idempotencyKey == failing.id }
        #expect(tries.count == 3)
        #expect(Set(tries.map(\.body)).count == 1 && Set(tries.map(\.signature)).count == 1)
        #expect(tries.map(\.attempt) == [1, 2, 3])
        #expect(tries.first.map { $0.signature == expectedSignature($0.body) } == true)

        provider.script([.status(502)])
        let recovering = try await client.send(contact: contact, body: "second")
        let recovered = try await client.settled(recovering.id)
        #expect(recovered.status == .sent && recovered.attempts == 2 && recovered.lastError.isEmpty)
    }

    @Test("Retry-After is honoured, on the database clock; a permanent refusal (400) fails at once")
    func retryAfterAndPermanent() async throws {
        let contact = newID()
        let t = tenant()
        let client = try await harness.client(tenant: t)
        _ = try await client.recordConsent(contact: contact)
        provider.script([.status(429, retryAfter: "2")])
        let send = try await client.send(contact: contact)
        // The 429's outcome is recorded once the row is scheduled again after its first attempt (status 1); until then
        // it is claimed (status 2) and its next_attempt_at is still the first one's, so the gap is read only then.
        let clock = ContinuousClock()
        let started = clock.now
        var gap: Double?
        while gap == nil, clock.now - started < .seconds(10) {
            gap = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
                try await c.query(
                    """
                    SELECT extract(epoch FROM next_attempt_at - updated_at)::float8 AS gap FROM communication.sends
                    WHERE tenant_id = $1 AND id = $2::uuid AND status = 1 AND attempts = 1
                    """,
                    [.text(t), .text(send.id)]
                ).first?.double("gap")
            }
            if gap == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let recorded = try #require(gap, "the 429 was never recorded as a retry")
        #expect(recorded >= 1.99, "retry scheduled \(recorded) s after the 429, not after Retry-After: 2")
        let sent = try await client.settled(send.id)
        #expect(sent.status == .sent && sent.attempts == 2)

        provider.script([.status(400)])
        let refused = try await client.send(contact: contact)
        let failed = try await client.settled(refused.id)
        #expect(failed.status == .failed && failed.attempts == 1 && failed.lastError.contains("400"))

        // 401, 403 and 404 are about our configuration, not the message: retried, not failed for good.
        provider.script([.status(401), .status(404)])
        let misconfigured = try await client.send(contact: contact)
        let recovered = try await client.settled(misconfigured.id)
        #expect(recovered.status == .sent && recovered.attempts == 3, "\(recovered)")
    }

    @Test("CancelSend before the due time stops the send; after a dispatcher claimed or sent it, FAILED_PRECONDITION")
    func cancel() async throws {
        let contact = newID()
        let client = try await consenting(contact)
        let later = try await client.send(contact: contact) { $0.sendAt = Date().addingTimeInterval(3600) }
        let cancelled = try await client.cancelSend(later.id)
        #expect(cancelled.status == .cancelled)
        #expect(await code { _ = try await client.cancelSend(later.id) } == .failedPrecondition)
        let now = try await client.send(contact: contact)
        #expect(try await client.settled(now.id).status == .sent)
        #expect(await code { _ = try await client.cancelSend(now.id) } == .failedPrecondition)
        #expect(await code { _ = try await client.cancelSend(newID()) } == .notFound)
        #expect(provider.requests.allSatisfy { $0.idempotencyKey != later.id })
    }

    @Test("two dispatchers (replicas) on one database: every send is posted exactly once")
    func replicas() async throws {
        let contact = newID()
        let client = try await consenting(contact)
        var configuration = Dispatcher.Configuration()
        configuration.pollInterval = .milliseconds(20)
        configuration.batchSize = 2
        let settings = CommunicationHarness.providerSettings(provider)
        let second = Dispatcher(
            store: PostgresDispatchStore(pool: harness.pool, owner: UUID()),
            provider: ProviderAdapter(client: try WebhookClient(endpoint: settings.endpoint), secret: settings.secret, timeout: .seconds(1)),
            configuration: configuration, logger: .init(label: "second-dispatcher"))
        let running = Task { try await second.run() }
        defer { running.cancel() }
        var ids: [String] = []
        for i in 0..<30 { ids.append(try await client.send(contact: contact, body: "m\(i)").id) }
        for id in ids { #expect(try await client.settled(id).status == .sent) }
        let posted = provider.requests.filter { ids.contains($0.idempotencyKey) }
        #expect(posted.count == 30)
        #expect(Set(posted.map(\.idempotencyKey)).count == 30)
    }

    @Test("provider events: signed, idempotent by event id, never moving a send's state back; bad ones are refused")
    func providerEvents() async throws {
        let server = try await ProviderEventServer.bind(
            host: "127.0.0.1", port: 0, secret: Array(providerSecret.utf8), store: PostgresProviderEventStore(pool: harness.pool),
            logger: .init(label: "events"))
        let serving = Task { try await server.run() }
        defer { serving.cancel() }
        let webhook = try WebhookClient(endpoint: WebhookEndpoint(url: "http://127.0.0.1:\(server.port)/events")!)
        func post(_ json: String, signature: String? = nil) async throws -> (Int, String) {
            let body = Array(json.utf8)
            let response = try await webhook.post(
                body: body, headers: [("X-Provider-Signature", signature ?? expectedSignature(body))], timeout: .seconds(5))
            return (response.status, String(decoding: response.body, as: UTF8.self))
        }
        func event(_ id: String, _ send: String, _ type: String) -> String {
            "{\"event_id\":\"\(id)\",\"idempotency_key\":\"\(send)\",\"type\":\"\(type)\"}"
        }
        let contact = newID()
        let t = tenant()
        let client = try await harness.client(tenant: t)
        _ = try await client.recordConsent(contact: contact)
        let send = try await client.send(contact: contact)
        #expect(try await client.settled(send.id).status == .sent)
        #expect(try await post(event("e1", send.id, "delivered")).0 == 200)
        #expect(try await client.getSend(send.id).deliveryState == .delivered)
        #expect(try await post(event("e2", send.id, "opened")).0 == 200)
        // A "delivered" arriving after "opened" is recorded but does not move the send back.
        #expect(try await post(event("e3", send.id, "delivered")).0 == 200)
        #expect(try await client.getSend(send.id).deliveryState == .opened)
        #expect(try await client.get(send.id).deliveryState == .opened)
        #expect(try await post(event("e2", send.id, "opened")) == (200, "duplicate"))
        #expect(try await post(event("e4", send.id, "clicked")).0 == 200)
        #expect(try await client.getSend(send.id).deliveryState == .clicked)
        // A redelivered event id changes nothing even with another type.
        #expect(try await post(event("e1", send.id, "bounced")) == (200, "duplicate"))
        #expect(try await client.getSend(send.id).deliveryState == .clicked)
        // The send's progress is in the change feed, in order: created, SENT by the dispatcher, and one change per state
        // that rose (the late "delivered" and the duplicates publish nothing).
        let changes = try await harness.pool.query(
            settings: ["app.tenant_id": t],
            """
            SELECT kind, changed_fields, actor_id, resource::text AS r FROM communication.changes
            WHERE resource_id = $1 AND resource_type = 'switchboard.communication.v1.Send' ORDER BY sequence
            """,
            [.text(send.id)]
        ).rows.map { (try $0.int("kind"), try $0.strings("changed_fields"), try $0.string("actor_id"), try $0.string("r")) }
        #expect(changes.map(\.0) == [1, 2, 2, 2, 2], "\(changes)")
        #expect(changes.dropFirst().map(\.2) == ["dispatcher", "provider", "provider", "provider"])
        #expect(changes.dropFirst(2).allSatisfy { $0.1 == ["delivery_state"] })
        let states = try changes.dropFirst().map { try SendProto(protoJSONText: $0.3, options: .init()) }
        #expect(states.map(\.status) == [.sent, .sent, .sent, .sent])
        #expect(states.map(\.deliveryState) == [.unspecified, .delivered, .opened, .clicked])

        #expect(try await post(event("e5", send.id, "bounced"), signature: "sha256=" + String(repeating: "0", count: 64)).0 == 401)
        #expect(try await post(event("e5", send.id, "bounced"), signature: "").0 == 401)
        #expect(try await post("{\"nope\":1}").0 == 400)
        #expect(try await post(event("e6", send.id, "exploded")).0 == 400)
        #expect(try await post(event("", send.id, "opened")).0 == 400)
        #expect(try await post(event(String(repeating: "x", count: 129), send.id, "opened")).0 == 400)
        #expect(try await post(event("e7", newID(), "opened")).0 == 404)
        #expect(try await post(event("e8", send.id, String(repeating: "x", count: 20_000))).0 == 413)
        #expect(try await client.getSend(send.id).deliveryState == .clicked)
        // Field names in either proto3 JSON form, and fields this version does not know, are accepted.
        #expect(try await post("{\"eventId\":\"e10\",\"idempotencyKey\":\"\(send.id)\",\"type\":\"replied\",\"extra\":{\"a\":1}}").0 == 200)
        #expect(try await client.getSend(send.id).deliveryState == .replied)
        #expect(try await post(event("e9", send.id, "bounced")).0 == 200)
        #expect(try await client.getSend(send.id).deliveryState == .bounced)
    }

    @Test("the dispatcher's policies admit SELECT and UPDATE of sends across tenants, never INSERT or DELETE, and nothing else")
    func dispatcherScope() async throws {
        let contact = newID()
        let client = try await consenting(contact)
        _ = try await client.send(contact: contact) { $0.sendAt = Date().addingTimeInterval(3600) }
        let seen = try await harness.pool.transaction(settings: ["app.dispatcher": "on"]) { c in
            try await c.query("SELECT count(*) AS n FROM communication.sends").first!.int("n")
        }
        #expect(seen >= 1)
        let deleted = try await harness.pool.transaction(settings: ["app.dispatcher": "on"]) { c in
            try await c.query("DELETE FROM communication.sends RETURNING id").rows.count
        }
        #expect(deleted == 0)
        await #expect(throws: PostgresError.self) {
            try await harness.pool.transaction(settings: ["app.dispatcher": "on"]) { c in
                _ = try await c.query(
                    """
                    INSERT INTO communication.sends (tenant_id, id, contact_id, channel, purpose, to_address, body, payload, send_at, max_attempts,
                        next_attempt_at, created_by, updated_by)
                    VALUES ('forged', gen_random_uuid(), gen_random_uuid(), 1, 'x', 'x', 'x', '\\x00', now(), 1, now(), 'x', 'x')
                    """)
            }
        }
        for statement in ["UPDATE communication.sends SET tenant_id = 'moved'", "UPDATE communication.sends SET id = gen_random_uuid()"] {
            await #expect(throws: PostgresError.self, "\(statement)") {
                try await harness.pool.transaction(settings: ["app.dispatcher": "on"]) { c in _ = try await c.query(statement) }
            }
        }
        for table in ["interactions", "consent_ledger", "templates"] {
            let n = try await harness.pool.transaction(settings: ["app.dispatcher": "on"]) { c in
                try await c.query("SELECT count(*) AS n FROM communication.\(table)").first!.int("n")
            }
            #expect(n == 0, "the dispatcher setting opened \(table)")
        }
    }

    @Test("a dispatcher transaction may change only the columns the dispatcher writes (migration 014); requests and erasure are unaffected")
    func dispatcherColumns() async throws {
        let contact = newID()
        let t = tenant()
        let client = try await harness.client(tenant: t)
        _ = try await client.recordConsent(contact: contact)
        let later = try await client.send(contact: contact, body: "original") { $0.sendAt = Date().addingTimeInterval(3600) }
        func update(_ set: String, tenant: String? = nil) async throws {
            var settings = ["app.dispatcher": "on"]
            settings["app.tenant_id"] = tenant
            try await harness.pool.transaction(settings: settings) { c in
                _ = try await c.query("UPDATE communication.sends SET \(set) WHERE id = $1::uuid", [.text(later.id)])
            }
        }
        // Content, routing, schedule and the erasure mark: refused, naming the column, with or without a tenant set too.
        for (set, column) in [
            ("body = 'forged'", "body"), ("subject = 'forged'", "subject"), ("to_address = 'eve@example.com'", "to_address"),
            ("payload = '\\x00'::bytea", "payload"), ("contact_id = gen_random_uuid()", "contact_id"), ("purpose = 'other'", "purpose"),
            ("template_version = 2", "template_version"), ("send_at = now()", "send_at"), ("max_attempts = 100", "max_attempts"),
            ("erased_at = now()", "erased_at"), ("channel = 2", "channel"), ("status = 1, body = 'forged'", "body"),
        ] {
            for tenant in [nil, t] {
                let error = await #expect(throws: PostgresError.self, "\(set)") { try await update(set, tenant: tenant) }
                #expect(
                    error?.sqlState == "42501" && error?.message.contains("cannot change sends.\(column)") == true,
                    "\(set): \(String(describing: error))")
            }
        }
        // The columns the dispatcher writes: admitted.
        try await update("last_error = 'checked', next_attempt_at = next_attempt_at, version = version + 1, updated_by = 'dispatcher'")
        let unchanged = try await client.getSend(later.id)
        #expect(unchanged.body == "original" && unchanged.toAddress == "ada@example.com" && unchanged.lastError == "checked", "\(unchanged)")
        // A request (the tenant's own setting, no dispatcher) is not narrowed: CancelSend and the store write as before.
        try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            _ = try await c.query(
                "UPDATE communication.sends SET subject = 'edited' WHERE tenant_id = $1 AND id = $2::uuid", [.text(t), .text(later.id)])
        }
        #expect(try await client.getSend(later.id).subject == "edited")
        #expect(try await client.cancelSend(later.id).status == .cancelled)

        // An erased send in flight settled by the dispatcher: the statement sets only status columns, and migration 010's
        // trigger (which fires after this check) still blanks the address and text.
        let inFlight = try await client.send(contact: contact, body: "in flight") { $0.sendAt = Date().addingTimeInterval(3600) }
        try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            _ = try await c.query(
                "UPDATE communication.sends SET status = 2, attempts = 1, erased_at = now() WHERE tenant_id = $1 AND id = $2::uuid",
                [.text(t), .text(inFlight.id)])
        }
        try await harness.pool.transaction(settings: ["app.dispatcher": "on"]) { c in
            _ = try await c.query("UPDATE communication.sends SET status = 3, sent_at = now() WHERE id = $1::uuid", [.text(inFlight.id)])
        }
        let settled = try await client.getSend(inFlight.id)
        #expect(settled.status == .sent && settled.body.isEmpty && settled.toAddress.isEmpty, "\(settled)")

        // Campaigns and their recipients: the runner's columns only.
        let template = try await client.createTemplate("Columns", body: "Hi {{first}}")
        let campaign = try await client.createCampaign(template: template.id, contacts: [contact], startAt: Date().addingTimeInterval(3600))
        for statement in [
            "UPDATE communication.campaigns SET name = 'forged' WHERE id = $1::uuid",
            "UPDATE communication.campaigns SET template_values = '{\"first\": \"forged\"}' WHERE id = $1::uuid",
            "UPDATE communication.campaigns SET start_at = now() WHERE id = $1::uuid",
            "UPDATE communication.campaign_recipients SET contact_id = gen_random_uuid() WHERE campaign_id = $1::uuid",
            "UPDATE communication.campaign_recipients SET campaign_id = gen_random_uuid() WHERE campaign_id = $1::uuid",
        ] {
            let error = await #expect(throws: PostgresError.self, "\(statement)") {
                try await harness.pool.transaction(settings: ["app.dispatcher": "on"]) { c in _ = try await c.query(statement, [.text(campaign.id)]) }
            }
            #expect(error?.sqlState == "42501", "\(statement): \(String(describing: error))")
        }
        let admitted = try await harness.pool.transaction(settings: ["app.dispatcher": "on"]) { c in
            let recipients = try await c.query(
                "UPDATE communication.campaign_recipients SET reason = 'checked' WHERE campaign_id = $1::uuid RETURNING 1 AS n", [.text(campaign.id)])
            let campaigns = try await c.query(
                "UPDATE communication.campaigns SET status = 2, updated_by = 'campaign-runner' WHERE id = $1::uuid RETURNING 1 AS n",
                [.text(campaign.id)])
            return [recipients.rows.count, campaigns.rows.count]
        }
        #expect(admitted == [1, 1])
        let read = try await client.campaign(campaign.id)
        #expect(read.name == "Spring" && read.status == .paused, "\(read)")
    }

    @Test("tenant B cannot read or cancel tenant A's sends; readers read but cannot send or cancel")
    func isolationAndAuth() async throws {
        let contact = newID()
        let t = tenant()
        let a = try await harness.client(tenant: t)
        _ = try await a.recordConsent(contact: contact)
        let send = try await a.send(contact: contact) { $0.sendAt = Date().addingTimeInterval(3600) }
        let b = try await harness.client(tenant: tenant())
        #expect(await code { _ = try await b.getSend(send.id) } == .notFound)
        #expect(await code { _ = try await b.cancelSend(send.id) } == .notFound)
        let reader = try await harness.client(tenant: t, roles: [.readOnly])
        #expect(try await reader.getSend(send.id).id == send.id)
        #expect(await code { _ = try await reader.send(contact: contact) } == .permissionDenied)
        #expect(await code { _ = try await reader.cancelSend(send.id) } == .permissionDenied)
        #expect(try await a.getSend(send.id).status == .scheduled)
    }
}

/// Shutdown during a provider call: the call finishes and its result is recorded, so a restart sends nothing again.
@Suite("Communication service: sends across shutdown", .serialized)
struct SendShutdownTests {
    @Test("graceful shutdown (SIGTERM) mid-call: the in-flight call's result is recorded before the service stops")
    func gracefulShutdown() async throws {
        let provider = try await FakeProvider.start()
        defer { Task { await provider.stop() } }
        // A provider timeout of 10 s: the late answer below must stay inside it on a loaded host (with 1 s, a CI-like
        // run once saw the answer time out and the send scheduled again; with 2.5 s, a full local run with every suite
        // at once on two cores did too: status 1, the test taking 17 s instead of 1).
        let harness = try await CommunicationHarness.start(
            provider: CommunicationHarness.providerSettings(provider, timeout: .seconds(10)))
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let contact = newID()
        _ = try await client.recordConsent(contact: contact)
        // Answered within the call's timeout, but well after the shutdown began.
        provider.script([.late(.milliseconds(700))])
        let send = try await client.send(contact: contact)
        let clock = ContinuousClock()
        let started = clock.now
        while provider.requests.isEmpty, clock.now - started < .seconds(10) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(provider.requests.count == 1)
        await harness.stop()
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: harness.service.serviceConninfo, maxConnections: 1))
        defer { pool.close() }
        let row = try await pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                "SELECT status, provider_message_id, last_error FROM communication.sends WHERE tenant_id = $1 AND id = $2::uuid",
                [.text(t), .text(send.id)]
            ).first!
        }
        let status = try row.int("status")
        let lastError = try row.string("last_error")
        #expect(status == 3, "the result of the in-flight call was not recorded: status \(status), \(lastError)")
        #expect(try row.string("provider_message_id") == "msg-\(send.id)")
    }

    // A guard more than a proof: today neither the NIO client's future nor the pool's queries react to task
    // cancellation, so a dispatcher without the unstructured-task shield passes this too (checked by removing it).
    // It fails as soon as a cancellation-aware await sits between the provider call and the recording.
    @Test("cancelling the dispatcher's task mid-call does not cancel the call's bookkeeping: the result is recorded")
    func cancellationShield() async throws {
        let provider = try await FakeProvider.start()
        defer { Task { await provider.stop() } }
        // No dispatcher in the service: the test runs its own, to cancel its task.
        let harness = try await CommunicationHarness.start()
        defer { Task { await harness.stop() } }
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let contact = newID()
        _ = try await client.recordConsent(contact: contact)
        let send = try await client.send(contact: contact)
        provider.script([.late(.milliseconds(700))])
        let settings = CommunicationHarness.providerSettings(provider)
        let dispatcher = Dispatcher(
            store: PostgresDispatchStore(pool: harness.pool, owner: UUID()),
            // The answer comes 700 ms late; the bound is far above it, as two full runs on a loaded machine timed out at
            // 2 s ("the provider did not answer in time", 2026-12-08) and then recorded a retry instead of the result.
            provider: ProviderAdapter(client: try WebhookClient(endpoint: settings.endpoint), secret: settings.secret, timeout: .seconds(15)),
            configuration: settings.dispatcher, logger: .init(label: "cancelled-dispatcher"))
        let running = Task { try await dispatcher.run() }
        let clock = ContinuousClock()
        let started = clock.now
        // Generous: in a full run on two cores the dispatcher's first claim once took over 10 s (2026-12-08), and the
        // test then cancelled a dispatcher that had not called yet.
        while provider.requests.isEmpty, clock.now - started < .seconds(60) { try await Task.sleep(for: .milliseconds(5)) }
        try #require(!provider.requests.isEmpty, "the dispatcher never called the provider")
        running.cancel()
        _ = await running.result
        // The run returned only after the in-flight call ended and was recorded.
        let recorded = try await client.getSend(send.id)
        #expect(recorded.status == .sent && recorded.providerMessageId == "msg-\(send.id)", "\(recorded)")
        #expect(provider.requests.count == 1)
    }
}
