import CommunicationService
import ContactsService
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// The contacts a write names are asked of a real contacts service over HTTP/2, with the caller's token: interactions,
/// consent, preferences and sends refuse a contact that is not live in the caller's tenant and write nothing.
@Suite("Communication service: the contacts a write names must be live", .serialized)
final class ContactReferenceTests {
    let contacts: ServiceHarness
    let harness: CommunicationHarness

    init() async throws {
        contacts = try await ServiceHarness.start(ContactsService.description)
        harness = try await CommunicationHarness.start(audiences: .init(contacts: .init(host: "127.0.0.1", port: contacts.port)))
    }
    deinit {
        let (h, c) = (harness, contacts)
        Task {
            await h.stop()
            await c.stop()
        }
    }

    private func count(_ table: String, _ t: String) async throws -> Int64 {
        try await harness.pool.query(
            settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM communication.\(table) WHERE tenant_id = $1", [.text(t)]
        ).first!.int("n")
    }

    @Test(
        "interactions, consent, preferences and sends naming an unknown, deleted or other tenant's contact: NOT_FOUND naming the field, nothing written"
    )
    func refused() async throws {
        let (t, other) = (tenant(), tenant())
        let client = try await harness.client(tenant: t)
        let (ada, bob, gone) = (try await contacts.person(t, "Ada"), try await contacts.person(t, "Bob"), try await contacts.person(t, "Gone"))
        try await contacts.deleteContact(t, gone)
        let stranger = try await contacts.person(other, "Stranger")
        let unknown = newID()

        for (bad, label) in [(unknown, "unknown"), (gone, "deleted"), (stranger, "another tenant's")] {
            let error = await rpcError { _ = try await client.log { $0.contactIds = [ada, bad] } }
            #expect(missingContacts(error, field: "interaction.contact_ids[1]") == [bad], "\(label)")
            #expect(missingContacts(await rpcError { _ = try await client.recordConsent(contact: bad) }, field: "consent.contact_id") == [bad])
            #expect(
                missingContacts(await rpcError { _ = try await client.setPreferences(bad) { $0.language = "de" } }, field: "preferences.contact_id")
                    == [bad])
            #expect(missingContacts(await rpcError { _ = try await client.send(contact: bad) }, field: "send.contact_id") == [bad])
        }
        // Two missing at once are both named, in request order.
        let two = await rpcError { _ = try await client.log { $0.contactIds = [unknown, ada, gone] } }
        #expect(missingContacts(two, field: "interaction.contact_ids[0]") == [unknown, gone])
        #expect(two?.message.contains("interaction.contact_ids[2]") == true)
        for table in ["interactions", "consent_ledger", "preferences", "sends"] {
            #expect(try await count(table, t) == 0, "\(table)")
        }

        // Live contacts pass, and a write that names none asks nothing.
        let logged = try await client.log { $0.contactIds = [ada, bob] }
        #expect(logged.contactIds == [ada, bob])
        _ = try await client.log { $0.subject = "no contact" }
        _ = try await client.recordConsent(contact: ada)
        _ = try await client.setPreferences(ada) { $0.language = "de" }
        _ = try await client.send(contact: ada)
    }

    @Test("a consent withdrawal or do_not_contact is never refused, whatever the contact's state")
    func restrictionsPass() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let gone = try await contacts.person(t, "Gone")
        try await contacts.deleteContact(t, gone)
        for id in [gone, newID()] {
            _ = try await client.recordConsent(contact: id, status: .withdrawn, basis: .unspecified, source: "unsubscribe link")
            _ = try await client.setPreferences(id, paths: ["do_not_contact"]) { $0.doNotContact = true }
            // Anything else for the same contact is still refused.
            #expect(missingContacts(await rpcError { _ = try await client.recordConsent(contact: id) }, field: "consent.contact_id") == [id])
            let other = await rpcError { _ = try await client.setPreferences(id, paths: ["language"]) { $0.language = "de" } }
            #expect(missingContacts(other, field: "preferences.contact_id") == [id])
        }
        #expect(try await count("consent_ledger", t) == 2)
        #expect(try await count("preferences", t) == 2)
    }

    @Test("an update checks only the contacts it adds: one deleted since it was named may stay")
    func updateChecksAdded() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (ada, bob, cy) = (try await contacts.person(t, "Ada"), try await contacts.person(t, "Bob"), try await contacts.person(t, "Cy"))
        let logged = try await client.log { $0.contactIds = [ada, bob] }
        try await contacts.deleteContact(t, bob)
        // Bob stays named (deleted after he was named), Cy is added.
        let updated = try await client.update(logged.id, paths: ["contact_ids"]) { $0.contactIds = [bob, ada, cy] }
        #expect(updated.contactIds == [bob, ada, cy])
        let unknown = newID()
        let error = await rpcError { _ = try await client.update(logged.id, paths: ["contact_ids"]) { $0.contactIds = [bob, unknown] } }
        #expect(missingContacts(error, field: "interaction.contact_ids[1]") == [unknown])
        #expect(try await client.get(logged.id).contactIds == [bob, ada, cy])
        // An interaction that does not exist is the update's NOT_FOUND, not a contact's.
        let absent = newID()
        let none = await rpcError { _ = try await client.update(absent, paths: ["contact_ids"]) { $0.contactIds = [unknown] } }
        #expect(
            none?.code == .notFound && none?.message.contains(absent) == true && none?.message.contains("contact_ids") == false,
            "\(String(describing: none))")
        // A deleted interaction's update is refused for what it is, whatever contacts it names.
        let doomed = try await client.log { $0.contactIds = [ada] }
        _ = try await client.delete(doomed.id)
        let deleted = await rpcError { _ = try await client.update(doomed.id, paths: ["contact_ids"]) { $0.contactIds = [unknown] } }
        #expect(deleted != nil && deleted?.message.contains("contact_ids") == false, "\(String(describing: deleted))")
        // A mask without contact_ids does not look at them.
        #expect(try await client.update(logged.id, paths: ["subject"]) { $0.subject = "renamed" }.subject == "renamed")
    }

    @Test("a retry of a write whose contact was deleted since replays its first response; a new request is refused")
    func retryReplays() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let ada = try await contacts.person(t, "Ada")
        let requestID = UUID().uuidString
        let first = try await client.log(subject: "call", requestID: requestID) { $0.contactIds = [ada] }
        let consent = try await client.recordConsent(contact: ada, requestID: requestID + "-consent")
        try await contacts.deleteContact(t, ada)
        let again = try await client.log(subject: "call", requestID: requestID) { $0.contactIds = [ada] }
        #expect(again == first)
        #expect(try await client.recordConsent(contact: ada, requestID: requestID + "-consent") == consent)
        // The same id for another request is still refused as reused, not answered.
        let reused = await rpcError { _ = try await client.log(subject: "other", requestID: requestID) { $0.contactIds = [ada] } }
        #expect(fields(reused) == ["request_id"], "\(String(describing: reused))")
        let fresh = await rpcError { _ = try await client.log(subject: "call", requestID: UUID().uuidString) { $0.contactIds = [ada] } }
        #expect(missingContacts(fresh, field: "interaction.contact_ids[0]") == [ada])
        #expect(try await count("interactions", t) == 1)
    }

    @Test("the contacts service unreachable: UNAVAILABLE, nothing written; a write naming no contact goes on")
    func contactsUnreachable() async throws {
        let lonely = try await CommunicationHarness.start(audiences: .init(contacts: .init(host: "127.0.0.1", port: 1)))
        defer { Task { await lonely.stop() } }
        let t = tenant()
        let client = try await lonely.client(tenant: t)
        let error = await rpcError { _ = try await client.log { $0.contactIds = [newID()] } }
        #expect(error?.code == .unavailable, "\(String(describing: error))")
        #expect(error?.message.contains("nothing was written") == true)
        _ = try await client.log { $0.subject = "no contact named" }
        let written = try await lonely.pool.query(
            settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM communication.interactions WHERE tenant_id = $1", [.text(t)]
        ).first!.int("n")
        #expect(written == 1)
    }
}
