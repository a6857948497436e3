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

extension Client {
    func merge(_ loser: String, into winner: String, winnerETag: String = "", loserETag: String = "") async throws -> Switchboard_Contacts_V1_Contact
    {
        var request = Switchboard_Contacts_V1_MergeContactsRequest()
        request.winnerId = winner
        request.loserId = loser
        request.winnerEtag = winnerETag
        request.loserEtag = loserETag
        return try await stub.mergeContacts(request, options: options)
    }

    func unmerge(_ id: String) async throws -> Switchboard_Contacts_V1_Contact {
        var request = Switchboard_Contacts_V1_UnmergeContactRequest()
        request.id = id
        return try await stub.unmergeContact(request, options: options)
    }

    func phone(_ id: String, _ numbers: [String]) async throws -> Switchboard_Contacts_V1_Contact {
        try await update(id, paths: ["phones"]) { contact in
            contact.phones = numbers.map {
                var p = Switchboard_Contacts_V1_Phone()
                p.number = $0
                return p
            }
        }
    }
}

/// The merge rules alone, no I/O.
@Suite("Contacts: merge rules")
struct MergeRulesTests {
    @Test("the winner keeps its values and gains what it lacks; strip takes back only what is still as the merge left it")
    func combineAndStrip() {
        var winner = ContactData()
        winner.name.given = "Ada"
        winner.emails = [EmailAddress(address: "ada@example.com", primary: true)]
        winner.phones = [PhoneNumber(number: "030 1234567", primary: true, e164: "+49301234567")]
        winner.tags = ["vip"]
        winner.customFields = ["tier": .string("gold")]
        var loser = ContactData()
        loser.name.given = "Adelaide"
        loser.name.middle = "M"
        loser.emails = [EmailAddress(address: "ADA@example.com", primary: true), EmailAddress(address: "a.l@example.org", primary: true)]
        loser.phones = [PhoneNumber(number: "+49 30 1234567", e164: "+49301234567"), PhoneNumber(number: "555", primary: true)]
        loser.tags = ["vip", "new"]
        loser.customFields = ["tier": .string("silver"), "source": .string("web")]

        let (data, added, changed) = MergeRules.combine(winner: winner, loser: loser)
        #expect(data.name.given == "Ada" && data.name.middle == "M")
        #expect(data.emails.map(\.address) == ["ada@example.com", "a.l@example.org"] && data.emails.map(\.primary) == [true, false])
        #expect(data.phones.map(\.number) == ["030 1234567", "555"] && data.phones.map(\.primary) == [true, false])
        #expect(data.tags == ["vip", "new"])
        #expect(data.customFields == ["tier": .string("gold"), "source": .string("web")])
        #expect(changed == ["name", "emails", "phones", "tags", "custom_fields"])
        #expect(added.emails.map(\.address) == ["a.l@example.org"] && added.tags == ["new"] && added.customFields == ["source": .string("web")])

        // Since the merge, the winner's user changed the source and dropped the tag: those stay as they are now.
        var later = data
        later.customFields["source"] = .string("manual")
        later.tags = ["vip"]
        let (stripped, strippedFields) = MergeRules.strip(later, added: added)
        #expect(stripped.name == winner.name && stripped.emails == winner.emails && stripped.phones == winner.phones)
        #expect(stripped.tags == ["vip"] && stripped.customFields == ["tier": .string("gold"), "source": .string("manual")])
        #expect(strippedFields == ["name", "emails", "phones"])
        // The winner's users made a merged-in address primary and cleared the name parts it had: the address goes back
        // (the first left becomes primary) and the name stays (a contact keeps one).
        var edited = data
        edited.emails = edited.emails.map { EmailAddress(address: $0.address, primary: $0.address == "a.l@example.org") }
        edited.name = PersonName()
        edited.name.middle = "M"
        let (kept, _) = MergeRules.strip(edited, added: added)
        #expect(kept.emails.map(\.address) == ["ada@example.com"] && kept.emails.first?.primary == true)
        #expect(kept.name.middle == "M")
        // Nothing to add: nothing changes.
        #expect(MergeRules.combine(winner: winner, loser: winner).changed.isEmpty)
    }
}

/// MergeContacts and UnmergeContact over HTTP/2 and PostgreSQL.
@Suite("Contacts service: merge and unmerge", .serialized)
final class MergeTests {
    let harness: ContactsHarness

    init() async throws { harness = try await ContactsHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private func tenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

    @Test("a merge moves the loser's addresses and tags to the winner, deletes the loser pointing at it, and publishes UPDATED and MERGED")
    func merge() async throws {
        let admin = try await harness.client(tenant: tenant(), roles: [.admin])
        let winner = try await admin.create(given: "Ada", family: "Lovelace", emails: ["ada@example.com"], tags: ["vip"])
        var loser = try await admin.create(given: "Ada", family: "", emails: ["countess@example.org"], tags: ["new"])
        loser = try await admin.phone(loser.id, ["+44 20 7946 0958"])

        #expect(await code { _ = try await admin.merge(loser.id, into: winner.id, loserETag: "\"1\"") } == .aborted)
        let merged = try await admin.merge(loser.id, into: winner.id, winnerETag: winner.etag, loserETag: loser.etag)
        #expect(merged.id == winner.id && merged.name?.family == "Lovelace")
        #expect(merged.emails.map(\.address) == ["ada@example.com", "countess@example.org"])
        #expect(merged.phones.map(\.e164) == ["+442079460958"] && merged.tags == ["vip", "new"] && merged.etag == "\"2\"")

        #expect(await code { _ = try await admin.get(loser.id) } == .notFound)
        let gone = try await admin.get(loser.id, includeDeleted: true)
        #expect(gone.mergedIntoId == winner.id && gone.audit?.deleteTime != nil)
        // The loser's address now finds the winner.
        var lookup = Switchboard_Contacts_V1_LookupContactsRequest()
        lookup.emails = ["countess@example.org"]
        let found = try await admin.stub.lookupContacts(lookup, options: admin.options)
        #expect(found.emails.first?.contactIds == [winner.id])
        // Restoring the loser by undelete would duplicate the person: refused, pointing at UnmergeContact.
        let undelete = await rpcError { _ = try await admin.undelete(loser.id) }
        #expect(undelete?.code == .failedPrecondition && undelete?.message.contains("UnmergeContact") == true)

        let history = try await admin.history(count: 5)
        let last = Array(history.suffix(2))
        #expect(last.map(\.kind) == [.merged, .updated] && last.map(\.resourceId) == [loser.id, winner.id])
        #expect(last[1].changedFields == ["emails", "phones", "tags"] && last[0].relatedIds == [winner.id])

        // Refusals: itself, a deleted contact, another tenant's, bad ids.
        #expect(await rpcError { _ = try await admin.merge(winner.id, into: winner.id) }?.fieldViolations.map(\.field) == ["loser_id"])
        #expect(await code { _ = try await admin.merge(loser.id, into: winner.id) } == .notFound)
        #expect(await rpcError { _ = try await admin.merge("x", into: winner.id) }?.fieldViolations.map(\.field) == ["loser_id"])
        let other = try await harness.client(tenant: tenant())
        let stranger = try await other.create(given: "S", family: "T")
        #expect(await code { _ = try await other.merge(stranger.id, into: winner.id) } == .notFound)
        #expect(await code { _ = try await admin.merge(stranger.id, into: winner.id) } == .notFound)
        let reader = try await harness.client(tenant: tenant(), roles: [.readOnly])
        #expect(await code { _ = try await reader.merge(stranger.id, into: winner.id) } == .permissionDenied)
    }

    @Test("an unmerge restores the loser and takes back from the winner what is still as the merge left it; UPDATED and UNMERGED")
    func unmerge() async throws {
        let client = try await harness.client(tenant: tenant())
        let winner = try await client.create(given: "Ada", family: "Lovelace", emails: ["ada@example.com"], tags: ["vip"])
        let loser = try await client.create(given: "Ada", family: "King", emails: ["king@example.com"], tags: ["new", "old"])
        _ = try await client.merge(loser.id, into: winner.id)
        // The winner's user drops one of the tags the merge brought: it stays dropped.
        _ = try await client.update(winner.id, paths: ["tags"]) { $0.tags = ["vip", "new"] }

        let restored = try await client.unmerge(loser.id)
        #expect(restored.id == loser.id && restored.mergedIntoId == "" && restored.audit?.deleteTime == nil)
        #expect(restored.emails.map(\.address) == ["king@example.com"] && restored.tags == ["new", "old"])
        let former = try await client.get(winner.id)
        #expect(former.emails.map(\.address) == ["ada@example.com"] && former.tags == ["vip"])
        // Its address is its own again.
        var lookup = Switchboard_Contacts_V1_LookupContactsRequest()
        lookup.emails = ["king@example.com"]
        #expect(try await client.stub.lookupContacts(lookup, options: client.options).emails.first?.contactIds == [loser.id])

        let history = try await client.history(count: 7)
        #expect(Array(history.suffix(2)).map(\.kind) == [.updated, .unmerged])
        #expect(history.last?.relatedIds == [winner.id] && history.last?.resourceId == loser.id)
        let published = try Switchboard_Contacts_V1_Contact(protoJSONText: try #require(history.last?.resource).protoJSONText())
        #expect(published.emails.map(\.address) == ["king@example.com"])

        let again = await rpcError { _ = try await client.unmerge(loser.id) }
        #expect(again?.code == .failedPrecondition)
        #expect(await code { _ = try await client.unmerge(winner.id) } == .failedPrecondition)
        #expect(await code { _ = try await client.unmerge(UUID().uuidString.lowercased()) } == .notFound)
    }

    @Test("an unmerge whose address another contact took meanwhile changes nothing; a merge past the contact's limits changes nothing")
    func refusals() async throws {
        let client = try await harness.client(tenant: tenant())
        let winner = try await client.create(given: "W", family: "One", emails: ["w@example.com"])
        let loser = try await client.create(given: "L", family: "Two", emails: ["l@example.com"])
        _ = try await client.merge(loser.id, into: winner.id)
        _ = try await client.update(winner.id, paths: ["emails"]) { contact in
            var e = Switchboard_Contacts_V1_Email()
            e.address = "w@example.com"
            contact.emails = [e]
        }
        let taker = try await client.create(given: "T", family: "Three", emails: ["L@example.com"])
        let taken = await rpcError { _ = try await client.unmerge(loser.id) }
        #expect(taken?.code == .alreadyExists && taken?.message.contains(taker.id) == true, "\(String(describing: taken))")
        #expect(try await client.get(loser.id, includeDeleted: true).mergedIntoId == winner.id)

        // Twenty addresses each: forty would break the limit of twenty.
        let many = { (p: String) in (0..<20).map { "\(p)\($0)@example.com" } }
        let a = try await client.create(given: "A", family: "Many", emails: many("a"))
        let b = try await client.create(given: "B", family: "Many", emails: many("b"))
        let refused = await rpcError { _ = try await client.merge(b.id, into: a.id) }
        #expect(refused?.code == .failedPrecondition && refused?.message.contains("emails") == true, "\(String(describing: refused))")
        let (stillA, stillB) = (try await client.get(a.id), try await client.get(b.id))
        #expect(stillA.emails.count == 20 && stillB.audit?.deleteTime == nil)
    }

    @Test("crmctl contacts merge, unmerge, erase and erasure")
    func crmctl() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let winner = try await client.create(given: "Ada", family: "Lovelace", emails: ["ada@example.com"])
        let loser = try await client.create(given: "Ada", family: "King", emails: ["king@example.com"])
        let binary = URL(
            fileURLWithPath: ProcessInfo.processInfo.environment["SWITCHBOARD_CONTACTS_BIN"]
                ?? repositoryRoot.appendingPathComponent(".build/debug/contacts").path
        ).deletingLastPathComponent().appendingPathComponent("crmctl").path
        let token = try await ServiceHarness.token(tenant: t, roles: [.admin])
        let env = ["CRMCTL_TOKEN": token, "CRMCTL_CONTACTS_ADDR": "127.0.0.1:\(harness.port)"]
        let (merged, mergeOut) = try await runProcess(
            binary, ["contacts", "merge", loser.id, "--into", winner.id, "--output", "json"], environment: env)
        #expect(merged == 0 && mergeOut.contains("king@example.com") && mergeOut.contains(winner.id), "\(mergeOut)")
        let (unmerged, unmergeOut) = try await runProcess(binary, ["contacts", "unmerge", loser.id], environment: env)
        #expect(unmerged == 0 && unmergeOut.contains(loser.id), "\(unmergeOut)")
        let (erased, eraseOut) = try await runProcess(binary, ["contacts", "erase", loser.id], environment: env)
        #expect(erased == 0 && eraseOut.contains("of contact \(loser.id): COMPLETE"), "\(eraseOut)")
        let erasureID = try #require(eraseOut.split(separator: " ").dropFirst().first.map(String.init))
        let (shown, showOut) = try await runProcess(binary, ["contacts", "erasure", erasureID, "--output", "json"], environment: env)
        #expect(shown == 0 && showOut.contains("STATUS_COMPLETE"), "\(showOut)")
        // The service's refusal is reported with a non-zero status.
        let (again, againOut) = try await runProcess(binary, ["contacts", "unmerge", winner.id], environment: env)
        #expect(again != 0 && againOut.contains("FAILED_PRECONDITION"), "\(againOut)")
    }
}
