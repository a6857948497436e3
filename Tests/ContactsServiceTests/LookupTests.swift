import ContactsService
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// LookupContacts over HTTP/2 and PostgreSQL: matching by normalised email and phone, live contacts only, per
/// tenant, bounded.
@Suite("Contacts lookup by email and phone", .serialized)
final class LookupTests {
    let harness: ContactsHarness
    init() async throws { harness = try await ContactsHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private func tenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

    private func create(_ client: Client, given: String, emails: [String] = [], phones: [String] = []) async throws -> String {
        var request = Switchboard_Contacts_V1_CreateContactRequest()
        var contact = Switchboard_Contacts_V1_Contact()
        var name = Switchboard_Contacts_V1_PersonName()
        name.given = given
        contact.name = name
        contact.emails = emails.map {
            var e = Switchboard_Contacts_V1_Email()
            e.address = $0
            return e
        }
        contact.phones = phones.map {
            var p = Switchboard_Contacts_V1_Phone()
            p.number = $0
            return p
        }
        request.contact = contact
        return try await client.stub.createContact(request, options: client.options).id
    }

    private func lookup(_ client: Client, emails: [String] = [], phones: [String] = []) async throws -> Switchboard_Contacts_V1_LookupContactsResponse
    {
        var request = Switchboard_Contacts_V1_LookupContactsRequest()
        request.emails = emails
        request.phones = phones
        return try await client.stub.lookupContacts(request, options: client.options)
    }

    @Test("emails match case-insensitively and phones by their E.164 form, one answer per value in the order asked")
    func matches() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let ada = try await create(client, given: "Ada", emails: ["Ada@Example.com"], phones: ["+49 (30) 123-4567"])
        let bob = try await create(client, given: "Bob", emails: ["bob@example.com"], phones: ["+1 415 555 0100", "+49 30 1234567"])
        let reader = try await harness.client(tenant: t, roles: [.readOnly])
        let found = try await lookup(
            reader, emails: [" ADA@example.COM ", "nobody@example.com", "bob@example.com", "ada@example.com"],
            phones: ["0049 30 1234567", "+14155550100", "+44 20 7946 0000", "+49 (0)30 1234567"])
        #expect(found.emails.map(\.query) == [" ADA@example.COM ", "nobody@example.com", "bob@example.com", "ada@example.com"])
        #expect(found.emails.map(\.normalized) == ["ada@example.com", "nobody@example.com", "bob@example.com", "ada@example.com"])
        #expect(found.emails.map(\.contactIds) == [[ada], [], [bob], [ada]])
        // The bracketed trunk zero of "+49 (0)30 …" is left out, as it is when dialled from abroad.
        #expect(found.phones.map(\.normalized) == ["+49301234567", "+14155550100", "+442079460000", "+49301234567"])
        #expect(found.phones.map(\.contactIds) == [[ada, bob].sorted(), [bob], [], [ada, bob].sorted()])
        #expect(found.phones.allSatisfy { !$0.truncated })

        // Deleted contacts are not matched; restored ones are again.
        _ = try await client.delete(bob)
        let afterDelete = try await lookup(client, emails: ["bob@example.com"], phones: ["+49301234567"])
        #expect(afterDelete.emails[0].contactIds.isEmpty)
        #expect(afterDelete.phones[0].contactIds == [ada])
        _ = try await client.undelete(bob)
        let afterUndelete = try await lookup(client, emails: ["bob@example.com"], phones: ["+14155550100"])
        #expect(afterUndelete.emails[0].contactIds == [bob])
        #expect(afterUndelete.phones[0].contactIds == [bob])

        // A changed number is found by its new form only.
        _ = try await client.update(ada, paths: ["phones"]) {
            var p = Switchboard_Contacts_V1_Phone()
            p.number = "+33 1 23 45 67 89"
            $0.phones = [p]
        }
        let afterUpdate = try await lookup(client, phones: ["+49301234567", "+33123456789"])
        #expect(afterUpdate.phones.map(\.contactIds) == [[bob], [ada]])
    }

    @Test("a search that is one phone number finds its contacts however either side wrote it")
    func phoneSearch() async throws {
        let client = try await harness.client(tenant: tenant())
        let plain = try await create(client, given: "Plain", phones: ["+14155550100"])
        let spaced = try await create(client, given: "Spaced", phones: ["+49 30 1234567"])
        _ = try await create(client, given: "Other", phones: ["+14155550199"])
        func found(_ query: String) async throws -> [String] {
            var request = Switchboard_Contacts_V1_SearchContactsRequest()
            request.query = query
            return try await client.stub.searchContacts(request, options: client.options).hits.compactMap { $0.contact?.id }
        }
        for query in ["+1 415 555 0100", "+1 (415) 555-0100", "001 415 555 0100", "+14155550100"] {
            #expect(try await found(query) == [plain], "\(query)")
        }
        for query in ["0049 30 1234567", "+49 (0)30 1234567", "+49301234567", "+49 30 1234567"] {
            #expect(try await found(query) == [spaced], "\(query)")
        }
        #expect(SearchRules.phoneQuery("ada 415 555 0100") == nil && SearchRules.phoneQuery("+1 415") == nil)
    }

    @Test("another tenant's contacts are never matched, and a shared number lists at most 20 contacts")
    func isolationAndBound() async throws {
        let mine = try await harness.client(tenant: tenant())
        let theirs = try await harness.client(tenant: tenant())
        _ = try await create(theirs, given: "Theirs", emails: ["shared@example.com"], phones: ["+49 30 7654321"])
        let nobody = try await lookup(mine, emails: ["shared@example.com"], phones: ["+49307654321"])
        #expect(nobody.emails[0].contactIds.isEmpty && nobody.phones[0].contactIds.isEmpty)

        var ids: [String] = []
        for i in 0..<21 { ids.append(try await create(mine, given: "Desk \(i)", phones: ["+49 40 1111111"])) }
        let desk = try await lookup(mine, phones: ["+49401111111"])
        #expect(desk.phones[0].contactIds == Array(ids.sorted().prefix(20)))
        #expect(desk.phones[0].truncated)
        #expect(try await lookup(theirs, phones: ["+49401111111"]).phones[0].contactIds.isEmpty)
    }

    @Test("crmctl contacts lookup prints each value's contacts, and the response as proto3 JSON")
    func crmctl() async throws {
        let t = tenant()
        let ada = try await create(try await harness.client(tenant: t), given: "Ada", emails: ["ada@example.com"], phones: ["+49 30 1234567"])
        // crmctl sits beside the service's executable (scripts/test.sh builds both).
        let binary = URL(
            fileURLWithPath: ProcessInfo.processInfo.environment["SWITCHBOARD_CONTACTS_BIN"]
                ?? repositoryRoot.appendingPathComponent(".build/debug/contacts").path
        ).deletingLastPathComponent().appendingPathComponent("crmctl").path
        let token = try await ServiceHarness.token(tenant: t, roles: [.readOnly])
        let env = ["CRMCTL_TOKEN": token, "CRMCTL_CONTACTS_ADDR": "127.0.0.1:\(harness.port)"]
        let (status, table) = try await runProcess(
            binary, ["contacts", "lookup", "--email", "ADA@example.com", "--phone", "0049 30 1234567", "--email", "x@example.com"],
            environment: env)
        #expect(status == 0, "\(table)")
        let rows = table.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(
            rows.dropFirst().map { $0 } == [
                ["ADA@example.com", "ada@example.com", ada], ["x@example.com", "x@example.com", "-"], ["0049 30 1234567", "+49301234567", ada],
            ])
        let (jsonStatus, json) = try await runProcess(
            binary, ["contacts", "lookup", "--phone", "+49301234567", "--output", "json"], environment: env)
        #expect(jsonStatus == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let phones = try #require(object["phones"] as? [[String: Any]])
        #expect(phones.first?["contactIds"] as? [String] == [ada])
        // Nothing to look up is the service's INVALID_ARGUMENT, reported with a non-zero status.
        let (emptyStatus, empty) = try await runProcess(binary, ["contacts", "lookup"], environment: env)
        #expect(emptyStatus != 0 && empty.contains("INVALID_ARGUMENT"), "\(empty)")
    }

    @Test("bad lookups are INVALID_ARGUMENT naming the value: none, too many, not an address, not a number")
    func invalid() async throws {
        let client = try await harness.client(tenant: tenant())
        func fields(_ emails: [String] = [], _ phones: [String] = []) async -> [String]? {
            let error = await rpcError { _ = try await self.lookup(client, emails: emails, phones: phones) }
            guard let error, error.code == .invalidArgument else { return nil }
            return error.fieldViolations.map(\.field)
        }
        #expect(await fields() == ["emails"])
        #expect(await fields(Array(repeating: "a@example.com", count: 60), Array(repeating: "+49301234567", count: 41)) == ["emails"])
        #expect(await fields(Array(repeating: "a@example.com", count: 60), Array(repeating: "+49301234567", count: 40)) == nil)
        #expect(
            await fields(["a@example.com", "not an address", ""], ["030 1234567", "+49301234567", String(repeating: "1", count: 100_000)])
                == ["emails[1]", "emails[2]", "phones[0]", "phones[2]"])
    }
}
