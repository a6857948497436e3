import CommunicationService
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// The contacts feed applied as the consumer applies it (one batch in one transaction), with real ChangeEvents.
@Suite("Communication service: the contacts feed", .serialized)
final class ContactsFeedTests {
    static let suppressionSecret = Array("suppression-secret-0123456789abcdef0123".utf8)
    let harness: CommunicationHarness
    let provider: FakeProvider

    init() async throws {
        provider = try await FakeProvider.start()
        // The feed's address is a closed port: the consumer retries in the background; the tests apply events directly.
        let feed = CommunicationService.ContactsFeed(
            host: "127.0.0.1", port: 1, token: .file("/nonexistent"), suppressionSecret: Self.suppressionSecret)
        harness = try await CommunicationHarness.start(contactsFeed: feed)
    }
    deinit {
        let (h, p) = (harness, provider)
        Task {
            await h.stop()
            await p.stop()
        }
    }

    private func event(
        _ tenant: String, _ contact: String, _ kind: Switchboard_Common_V1_ChangeKind, emails: [String] = [], phones: [String] = [],
        related: [String] = [], primaryEmail: String = ""
    ) throws -> Switchboard_Common_V1_ChangeEvent {
        var e = Switchboard_Common_V1_ChangeEvent()
        e.tenantId = tenant
        e.resourceType = "switchboard.contacts.v1.Contact"
        e.resourceId = contact
        e.kind = kind
        e.relatedIds = related
        var c = Switchboard_Contacts_V1_Contact()
        c.id = contact
        c.emails = emails.map {
            var m = Switchboard_Contacts_V1_Email()
            m.address = $0
            m.primary = $0 == primaryEmail
            return m
        }
        c.phones = phones.map {
            var p = Switchboard_Contacts_V1_Phone()
            p.number = $0
            p.e164 = $0.filter { $0 == "+" || $0.isNumber }
            return p
        }
        e.resource = try Google_Protobuf_Struct(protoJSONText: try c.protoJSONText())
        return e
    }

    private func apply(_ events: [Switchboard_Common_V1_ChangeEvent]) async throws { try await harness.applyContacts(events) }

    @Test("created/updated contacts fill the address directory; DELETED cancels the contact's pending sends")
    func directoryAndDelete() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let contact = newID()
        try await apply([try event(t, contact, .created, emails: [" Ada@Example.com "], phones: ["+49 30 1234"])])
        let rows = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query("SELECT kind, address FROM communication.contact_addresses WHERE tenant_id = $1 ORDER BY kind", [.text(t)]).rows.map {
                "\(try $0.string("kind")):\(try $0.string("address"))"
            }
        }
        #expect(rows == ["email:ada@example.com", "phone:+49301234"])
        // The primary address ranks first whatever its place or spelling: a campaign writes to the first.
        let ranked = newID()
        try await apply([try event(t, ranked, .created, emails: ["aa.old@example.com", "zz.new@example.com"], primaryEmail: "zz.new@example.com")])
        let first = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                "SELECT address FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2 AND kind = 'email' ORDER BY rank, address LIMIT 1",
                [.text(t), .uuid(try #require(UUID(uuidString: ranked)))]
            ).first?.string("address")
        }
        #expect(first == "zz.new@example.com")
        _ = try await client.recordConsent(contact: contact)
        let pending = try await client.send(contact: contact) { $0.sendAt = Date().addingTimeInterval(3600) }
        try await apply([try event(t, contact, .deleted)])
        let cancelled = try await client.getSend(pending.id)
        #expect(cancelled.status == .cancelled && cancelled.lastError == "the contact was deleted")
    }

    @Test("MERGED re-points interactions and pending sends to the winner and merges consent: the most restrictive wins")
    func merge() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (loser, winner) = (newID(), newID())
        let logged = try await client.log(.call, subject: "with the loser") { $0.contactIds = [loser] }
        let both = try await client.log(.meeting, subject: "with both") { $0.contactIds = [loser, winner] }
        _ = try await client.recordConsent(contact: winner)
        _ = try await client.recordConsent(contact: loser, channel: .sms, purpose: "surveys")
        _ = try await client.recordConsent(contact: loser)
        _ = try await client.recordConsent(contact: loser, status: .withdrawn, basis: .unspecified, source: "unsubscribe")
        let pending = try await client.send(contact: loser, to: "+1 555 0199", purpose: "surveys") {
            $0.channel = .sms
            $0.subject = ""
            $0.sendAt = Date().addingTimeInterval(3600)
        }
        try await apply([try event(t, loser, .merged, related: [winner])])
        #expect(try await client.get(logged.id).contactIds == [winner])
        #expect(try await client.get(both.id).contactIds == [winner])
        // Each interaction moved is published as it is now, for the readers of this service's feed.
        let published = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                """
                SELECT resource_id FROM communication.changes
                WHERE tenant_id = $1 AND actor_id = 'contacts-feed' AND resource_type = 'switchboard.communication.v1.Interaction'
                """, [.text(t)]
            ).rows.map { try $0.string("resource_id") }
        }
        #expect(Set(published) == [logged.id, both.id] && published.count == 2, "\(published)")
        #expect(try await client.list { $0.contactId = loser }.interactions.isEmpty)
        #expect(Set(try await client.list { $0.contactId = winner }.interactions.map(\.id)) == [logged.id, both.id])
        let decision = try await client.checkConsent(contact: winner)
        #expect(!decision.allowed && decision.reason == .withdrawn && decision.decidedBy?.source == "merged from contact \(loser)")
        #expect(try await client.getSend(pending.id).contactId == winner)
        // A grant of the loser is not copied.
        #expect(try await client.checkConsent(contact: winner, channel: .sms, purpose: "surveys").reason == .noConsent)
    }

    @Test("MERGED of two contacts a campaign reached both cancels the loser's scheduled copy instead of moving it (one send per recipient)")
    func mergeCampaignDuplicates() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (loser, winner) = (newID(), newID())
        try await apply([
            try event(t, loser, .created, emails: ["loser-\(t)@example.com"]), try event(t, winner, .created, emails: ["winner-\(t)@example.com"]),
        ])
        for contact in [loser, winner] { _ = try await client.recordConsent(contact: contact) }
        let template = try await client.createTemplate("T", body: "hello {{first}}")
        let campaign = try await client.createCampaign(template: template.id, contacts: [loser, winner])
        // No provider here: the runner makes both sends and they stay SCHEDULED.
        let queued = try await eventually(timeout: .seconds(30)) { try await client.campaign(campaign.id).progress?.queued == 2 }
        try #require(queued, "the runner did not queue both recipients")
        try await apply([try event(t, loser, .merged, related: [winner])])
        let sends = try await client.sends(campaign: campaign.id).sends
        let byContact = Dictionary(grouping: sends, by: \.contactId)
        #expect(byContact[winner]?.map(\.status) == [.scheduled], "\(sends)")
        #expect(byContact[loser]?.map(\.status) == [.cancelled], "\(sends)")
        #expect(byContact[loser]?.first?.lastError == "the contact was merged into one this campaign also sends to")
    }

    @Test("UNMERGED reverses what MERGED moved: interactions and sends go back, the winner's grant is restored, withdrawals made meanwhile bind both")
    func unmerge() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (loser, winner, other) = (newID(), newID(), newID())
        let logged = try await client.log(.call, subject: "with the loser") { $0.contactIds = [loser] }
        let both = try await client.log(.meeting, subject: "with both") { $0.contactIds = [loser, winner] }
        let edited = try await client.log(.email, subject: "edited while merged") { $0.contactIds = [loser] }
        let winnerOnly = try await client.log(.other, subject: "the winner's own") { $0.contactIds = [winner] }
        _ = try await client.recordConsent(contact: winner)
        _ = try await client.recordConsent(contact: winner, purpose: "news")
        _ = try await client.recordConsent(contact: loser, purpose: "news")
        _ = try await client.recordConsent(contact: loser, channel: .sms, purpose: "surveys")
        _ = try await client.recordConsent(contact: loser)
        _ = try await client.recordConsent(contact: loser, status: .withdrawn, basis: .unspecified, source: "unsubscribe")
        let soon = try await client.send(contact: loser, to: "l@x.io", purpose: "news") { $0.sendAt = Date().addingTimeInterval(1) }
        let later = try await client.send(contact: loser, to: "l@x.io", purpose: "news") { $0.sendAt = Date().addingTimeInterval(3600) }
        try await apply([try event(t, loser, .merged, related: [winner])])
        #expect(try await client.checkConsent(contact: winner).reason == .withdrawn)

        // While merged: a user edits an interaction, the (one) person withdraws a consent, and a moved send goes out.
        _ = try await client.update(edited.id, paths: ["contact_ids"]) { $0.contactIds = [winner, other] }
        _ = try await client.recordConsent(
            contact: winner, channel: .sms, purpose: "surveys", status: .withdrawn, basis: .unspecified, source: "phone")
        let settings = CommunicationHarness.providerSettings(provider)
        let dispatcher = Dispatcher(
            store: PostgresDispatchStore(pool: harness.pool, owner: UUID(), suppressionSecret: Self.suppressionSecret),
            provider: ProviderAdapter(client: try WebhookClient(endpoint: settings.endpoint), secret: settings.secret, timeout: .seconds(1)),
            configuration: settings.dispatcher, logger: .init(label: "dispatcher"))
        let running = Task { try await dispatcher.run() }
        let sent = try await client.settled(soon.id)
        running.cancel()
        #expect(sent.status == .sent && sent.contactId == winner, "\(sent)")
        #expect(try await client.get(soon.id).contactIds == [winner])

        try await apply([try event(t, loser, .unmerged, emails: ["L@x.io"], related: [winner])])
        // Interactions: exactly as before where nothing changed since the merge; the restored contact back in the
        // winner's place where a user edited; the winner's own untouched; the sent message's log with the restored one.
        #expect(try await client.get(logged.id).contactIds == [loser])
        #expect(try await client.get(both.id).contactIds == [loser, winner])
        #expect(try await client.get(edited.id).contactIds == [loser, other])
        #expect(try await client.get(winnerOnly.id).contactIds == [winner])
        #expect(try await client.get(soon.id).contactIds == [loser])
        #expect(Set(try await client.list { $0.contactId = loser }.interactions.map(\.id)) == [logged.id, both.id, edited.id, soon.id])
        #expect(Set(try await client.list { $0.contactId = winner }.interactions.map(\.id)) == [both.id, winnerOnly.id])
        // Sends: the sent one and the scheduled one name the restored contact again.
        #expect(try await client.getSend(soon.id).contactId == loser)
        let back = try await client.getSend(later.id)
        #expect(back.contactId == loser && back.status == .scheduled, "\(back)")
        // Consent: the winner's own grant decides again; the restored contact keeps its own withdrawal, and the one
        // stated while merged binds it too.
        let winnerDecision = try await client.checkConsent(contact: winner)
        #expect(winnerDecision.allowed && winnerDecision.decidedBy?.source.hasPrefix("restored when contact \(loser) was unmerged") == true)
        let loserDecision = try await client.checkConsent(contact: loser)
        #expect(!loserDecision.allowed && loserDecision.decidedBy?.source == "unsubscribe")
        let surveys = try await client.checkConsent(contact: loser, channel: .sms, purpose: "surveys")
        #expect(!surveys.allowed && surveys.decidedBy?.source == "withdrawn while merged into contact \(winner)", "\(surveys)")
        #expect(try await client.checkConsent(contact: winner, channel: .sms, purpose: "surveys").decidedBy?.source == "phone")
        #expect(try await client.checkConsent(contact: loser, purpose: "news").allowed)
        // The directory has the restored contact's address; the log is forgotten, so a replayed UNMERGED changes nothing.
        let (addresses, logs) = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            (
                try await c.query(
                    "SELECT kind || ':' || address AS a FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2::uuid",
                    [.text(t), .text(loser)]
                ).rows.map { try $0.string("a") },
                try await c.query("SELECT count(*) AS n FROM communication.merges WHERE tenant_id = $1", [.text(t)]).first!.int("n")
            )
        }
        #expect(addresses == ["email:l@x.io"] && logs == 0)
        let entries = try await client.consentHistory(contact: winner).records.count
        try await apply([try event(t, loser, .unmerged, related: [winner])])
        #expect(try await client.get(both.id).contactIds == [loser, winner])
        #expect(try await client.consentHistory(contact: winner).records.count == entries)
    }

    @Test("UNMERGED of a merge never logged moves nothing; a malformed one is set aside; an erasure forgets the merge log")
    func unmergeEdges() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (a, b) = (newID(), newID())
        let withB = try await client.log(.call, subject: "b's") { $0.contactIds = [b] }
        try await apply([try event(t, a, .unmerged, related: [b]), try event(t, a, .unmerged)])
        #expect(try await client.get(withB.id).contactIds == [b])
        // Merged, then the winner erased: the log goes with the person, and the UNMERGED that follows moves nothing.
        let withA = try await client.log(.call, subject: "a's") { $0.contactIds = [a] }
        try await apply([try event(t, a, .merged, related: [b]), try event(t, b, .erased, related: ["erasure-9"])])
        try await apply([try event(t, a, .unmerged, related: [b])])
        #expect(try await client.get(withA.id).contactIds.isEmpty)
        let (dead, logs) = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            (
                try await c.query("SELECT count(*) AS n FROM communication.feed_dead_letters WHERE tenant_id = $1", [.text(t)]).first!.int("n"),
                try await c.query("SELECT count(*) AS n FROM communication.merge_moves WHERE tenant_id = $1", [.text(t)]).first!.int("n")
            )
        }
        #expect(dead == 1 && logs == 0)
    }

    @Test("ERASED redacts the person's rows, keeps only an HMAC of each address, and the address is never messaged again")
    func erasure() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (person, other) = (newID(), newID())
        try await apply([try event(t, person, .created, emails: ["p@x.io"], phones: ["+1 555 0100"])])
        let own = try await client.log(.email, subject: "secret subject") {
            $0.contactIds = [person]
            $0.body = "secret body"
            $0.addresses = ["p@x.io"]
        }
        let shared = try await client.log(.meeting, subject: "team meeting") {
            $0.contactIds = [person, other]
            $0.addresses = ["P@x.io", "someone@else.io"]
        }
        _ = try await client.recordConsent(contact: other)
        // A send due soon to the person's address under another contact: the dispatcher must refuse it after erasure.
        let laterSend = try await client.send(contact: other, to: "p@x.io") { $0.sendAt = Date().addingTimeInterval(1) }
        try await apply([try event(t, person, .erased, related: ["erasure-1"])])

        let redacted = try await client.get(own.id)
        #expect(redacted.subject.isEmpty && redacted.body.isEmpty && redacted.contactIds.isEmpty && redacted.addresses.isEmpty)
        let kept = try await client.get(shared.id)
        #expect(kept.subject == "team meeting" && kept.contactIds == [other] && kept.addresses == ["someone@else.io"])
        #expect(try await client.list { $0.contactId = person }.interactions.isEmpty)
        let suppressions = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query("SELECT kind, address_hash FROM communication.suppressions WHERE tenant_id = $1 ORDER BY kind", [.text(t)]).rows
                .map { "\(try $0.string("kind")):\(try $0.string("address_hash"))" }
        }
        #expect(
            Set(suppressions) == [
                "email:" + AddressRules.suppressionHash("p@x.io", kind: "email", secret: Self.suppressionSecret),
                "phone:" + AddressRules.suppressionHash("+15550100", kind: "phone", secret: Self.suppressionSecret),
            ])
        #expect(!suppressions.joined().contains("p@x.io"))
        // Never messaged again: refused at request time (any contact, any spelling of the address)…
        #expect(await code { _ = try await client.send(contact: other, to: " P@X.io ") } == .failedPrecondition)
        // …and a send made before the erasure to the person's address (under another contact) is cancelled by it,
        // its address and text gone; a dispatcher never posts it.
        let settings = CommunicationHarness.providerSettings(provider)
        let dispatcher = Dispatcher(
            store: PostgresDispatchStore(pool: harness.pool, owner: UUID(), suppressionSecret: Self.suppressionSecret),
            provider: ProviderAdapter(client: try WebhookClient(endpoint: settings.endpoint), secret: settings.secret, timeout: .seconds(1)),
            configuration: settings.dispatcher, logger: .init(label: "dispatcher"))
        let running = Task { try await dispatcher.run() }
        defer { running.cancel() }
        let cancelled = try await client.settled(laterSend.id)
        #expect(cancelled.status == .cancelled && cancelled.lastError == "the person was erased", "\(cancelled)")
        #expect(cancelled.toAddress.isEmpty && cancelled.body.isEmpty)
        #expect(provider.requests.allSatisfy { $0.idempotencyKey != laterSend.id })
    }

    @Test("ERASED reaches free addresses in any spelling, sends in flight, stored events and responses, and sends a receipt")
    func erasureReachesEverything() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (person, other) = (newID(), newID())
        try await apply([try event(t, person, .created, emails: ["p@x.io"], phones: ["+1 555 0100"])])
        // Only by free addresses, spelled as a user typed them.
        let byPhone = try await client.log(.call, subject: "called about the offer") { $0.addresses = ["+1 (555) 0100"] }
        let withOther = try await client.log(.email, subject: "to both") {
            $0.contactIds = [other]
            $0.addresses = ["P@X.IO"]
        }
        let remembered = try await client.log(.email, subject: "private", requestID: "erase-req-1") { $0.contactIds = [person] }
        // Published whole to services only (the cross-tenant feed's payload): erased there too.
        let hidden = try await client.log(.call, subject: "hidden subject") {
            $0.contactIds = [person]
            $0.visibility = .private
        }
        _ = try await client.log(.email, subject: "unrelated", requestID: "keep-req-1") { $0.contactIds = [other] }
        _ = try await client.recordConsent(contact: person)
        let inFlight = try await client.send(contact: person, to: "p@x.io") { $0.sendAt = Date().addingTimeInterval(3600) }
        let retried = try await client.send(contact: person, to: "p@x.io") { $0.sendAt = Date().addingTimeInterval(3600) }
        // Both claimed by a dispatcher (which holds their payload while the provider call runs).
        _ = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                """
                UPDATE communication.sends SET status = 2, attempts = 1, lease_owner = gen_random_uuid(), lease_until = now() + interval '1 hour'
                WHERE tenant_id = $1 AND id = ANY($2::uuid[])
                """, [.text(t), .array([.text(inFlight.id), .text(retried.id)], elementType: .text)])
        }
        try await apply([try event(t, person, .erased, related: ["erasure-7"])])

        let call = try await client.get(byPhone.id)
        #expect(call.addresses.isEmpty && call.subject.isEmpty, "\(call)")
        let mail = try await client.get(withOther.id)
        #expect(mail.addresses.isEmpty && mail.contactIds == [other] && mail.subject == "to both", "\(mail)")
        // In flight: untouched until it settles; then the address and text go, and a retry is cancelled instead.
        #expect(try await client.getSend(inFlight.id).toAddress == "p@x.io")
        try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                "UPDATE communication.sends SET status = 3, sent_at = now() WHERE tenant_id = $1 AND id = $2::uuid", [.text(t), .text(inFlight.id)])
            try await c.query("UPDATE communication.sends SET status = 1 WHERE tenant_id = $1 AND id = $2::uuid", [.text(t), .text(retried.id)])
        }
        let sent = try await client.getSend(inFlight.id)
        #expect(sent.status == .sent && sent.toAddress.isEmpty && sent.body.isEmpty && sent.subject.isEmpty, "\(sent)")
        let again = try await client.getSend(retried.id)
        #expect(again.status == .cancelled && again.lastError == "the person was erased" && again.toAddress.isEmpty, "\(again)")

        let (changes, receipts, keys) = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            (
                try await c.query(
                    """
                    SELECT resource::text || coalesce(service_resource::text, '') AS r
                    FROM communication.changes WHERE tenant_id = $1 AND resource_id = ANY($2::text[])
                      AND NOT (actor_id = 'contacts-feed' AND resource_type = 'switchboard.communication.v1.Interaction')
                    """,
                    [.text(t), .array([.text(remembered.id), .text(byPhone.id), .text(withOther.id), .text(hidden.id)], elementType: .text)]
                ).rows.map { try $0.string("r") },
                try await c.query(
                    "SELECT resource_type, related_ids, resource::text AS r FROM communication.changes WHERE tenant_id = $1 AND kind = 7",
                    [.text(t)]
                ).rows.map { (try $0.string("resource_type"), try $0.strings("related_ids"), try $0.string("r")) },
                try await c.query(
                    "SELECT request_id FROM communication.idempotency_keys WHERE tenant_id = $1 AND NOT erased ORDER BY 1", [.text(t)]
                ).rows.map { try $0.string("request_id") }
            )
        }
        // Every stored event of those interactions keeps only its id (the events of the other contact's interaction too:
        // they named the person's address).
        #expect(changes.count >= 4)
        #expect(
            changes.allSatisfy {
                !$0.contains("subject") && !$0.contains("hidden") && !$0.contains("p@x.io") && !$0.lowercased().contains("p@x.io")
                    && !$0.contains(person)
            })
        #expect(!keys.contains { $0.hasSuffix("erase-req-1") } && keys.contains { $0.hasSuffix("keep-req-1") }, "\(keys)")
        // Each interaction the erasure changed is published again as it is now, without the person.
        let republished = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                """
                SELECT resource_id, resource::text || coalesce(service_resource::text, '') AS r FROM communication.changes
                WHERE tenant_id = $1 AND actor_id = 'contacts-feed' AND kind = 2 AND resource_type = 'switchboard.communication.v1.Interaction'
                """, [.text(t)]
            ).rows.map { (try $0.string("resource_id"), try $0.string("r")) }
        }
        #expect(Set(republished.map(\.0)) == [remembered.id, byPhone.id, withOther.id, hidden.id], "\(republished.map(\.0))")
        #expect(republished.allSatisfy { !$0.1.contains(person) && !$0.1.lowercased().contains("p@x.io") }, "\(republished)")
        #expect(receipts.count == 1)
        let receipt = try #require(receipts.first)
        #expect(receipt.0 == "switchboard.communication.v1.ErasureReceipt" && receipt.1 == ["erasure-7"])
        let decoded = try Switchboard_Communication_V1_ErasureReceipt(protoJSONText: receipt.2)
        #expect(decoded.contactId == person && decoded.erasureRequestId == "erasure-7")
        #expect(decoded.interactionsRedacted == 4 && decoded.sendsRedacted == 2 && decoded.addressesSuppressed == 2)
        #expect(decoded.changesRedacted >= 4 && decoded.storedResponsesRemoved >= 1)
        // The person's consent entries are gone (erasure is the ledger's one exception); another contact's stay.
        #expect(decoded.consentEntriesDeleted == 1)
        #expect(try await client.consentHistory(contact: person).records.isEmpty)
        _ = try await client.recordConsent(contact: other)
        #expect(try await client.consentHistory(contact: other).records.count == 1)
        // Outside an erasure a delete fails, even in the service's own transaction.
        await #expect(throws: PostgresError.self) {
            try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
                _ = try await c.query("DELETE FROM communication.consent_ledger WHERE tenant_id = $1", [.text(t)])
            }
        }
        #expect(try await client.consentHistory(contact: other).records.count == 1)
    }

    @Test("an event that cannot be applied is set aside and the rest of the batch applies")
    func setAside() async throws {
        let t = tenant()
        let contact = newID()
        var broken = try event(t, newID(), .merged)
        broken.sequence = 7
        try await apply([broken, try event(t, contact, .created, emails: ["ok@x.io"])])
        let (dead, rows) = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            (
                try await c.query("SELECT count(*) AS n FROM communication.feed_dead_letters WHERE tenant_id = $1", [.text(t)]).first!.int("n"),
                try await c.query("SELECT count(*) AS n FROM communication.contact_addresses WHERE tenant_id = $1", [.text(t)]).first!.int("n")
            )
        }
        #expect(dead == 1 && rows == 1)
    }
}
