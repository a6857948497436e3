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

/// The duplicate scoring alone, no I/O.
@Suite("Contacts: duplicate rules")
struct DuplicateRulesTests {
    private func data(_ given: String, _ family: String, emails: [String] = [], phones: [String] = []) -> ContactData {
        var data = ContactData()
        data.name.given = given
        data.name.family = family
        data.emails = emails.map { EmailAddress(address: $0) }
        data.phones = phones.map { PhoneNumber(number: $0, e164: $0) }
        return data
    }

    @Test("names fold case, punctuation and spacing; the display name stands in when given and family are empty")
    func folding() {
        var name = PersonName()
        name.given = "  JOHN-paul "
        name.family = "O'Neil"
        #expect(DuplicateRules.foldedName(name) == "john paul o neil")
        var display = PersonName()
        display.display = "Acme, Inc."
        #expect(DuplicateRules.foldedName(display) == "acme inc")
        // Accents fold away, typed precomposed or decomposed (e + U+0301); ß, æ and ł have their ASCII spellings.
        var accented = PersonName()
        accented.given = "Jos\u{E9}"
        accented.family = "Garc\u{0069}\u{0301}a-M\u{FC}ller"
        #expect(DuplicateRules.foldedName(accented) == "jose garcia muller")
        var others = PersonName()
        others.given = "Stra\u{DF}e"
        others.family = "\u{C6}sir \u{141}ukasz"
        #expect(DuplicateRules.foldedName(others) == "strasse aesir lukasz")
    }

    @Test("signals, strongest first, and scores combined as independent evidence")
    func signals() throws {
        let john = data("John", "Smith", emails: ["john.smith@acme.com"], phones: ["+49301234567"])
        let phone = try #require(DuplicateRules.compare(john, with: data("Mary", "Jones", phones: ["+49301234567"])))
        #expect(phone.signals == [.samePhone] && abs(phone.score - 0.6) < 1e-9)
        let name = try #require(DuplicateRules.compare(john, with: data("john", "SMITH")))
        #expect(name.signals == [.sameName] && abs(name.score - 0.5) < 1e-9 && name.nameSimilarity == 1)
        let both = try #require(DuplicateRules.compare(john, with: data("John", "Smith", phones: ["+49301234567"])))
        #expect(both.signals == [.samePhone, .sameName] && abs(both.score - 0.8) < 1e-9)
        let typo = try #require(DuplicateRules.compare(john, with: data("Jon", "Smith")))
        #expect(typo.signals == [.similarName] && typo.nameSimilarity >= DuplicateRules.similarNameThreshold && typo.nameSimilarity < 1)
        #expect(abs(typo.score - 0.4 * typo.nameSimilarity) < 1e-9)
        let mailbox = try #require(DuplicateRules.compare(john, with: data("Mary", "Jones", emails: ["John.Smith+crm@gmail.com"])))
        #expect(mailbox.signals == [.sameEmailName])
        let accents = try #require(DuplicateRules.compare(data("José", "García"), with: data("Jose", "Garcia")))
        #expect(accents.signals == [.sameName])
        // A shared mailbox name that is no name of the person ("sales@" at two companies) is no signal.
        #expect(
            DuplicateRules.compare(data("John", "Smith", emails: ["sales@acme.com"]), with: data("Mary", "Jones", emails: ["sales@globex.com"]))
                == nil)
        #expect(
            DuplicateRules.searches(for: data("Ada", "King", emails: ["sales@acme.com", "ada.lovelace@home.org"])) == ["ada king", "ada lovelace"])
        // Nothing shared, a short mailbox name, the same mailbox name at the same domain (not one address twice in a
        // tenant, but in a pure comparison it is no second mailbox): no signal.
        #expect(DuplicateRules.compare(john, with: data("Jane", "Doe")) == nil)
        #expect(DuplicateRules.compare(data("Al", "Bo", emails: ["info@a.com"]), with: data("Cy", "Dee", emails: ["info@b.com"])) == nil)
        #expect(DuplicateRules.compare(data("Ann", "Lee"), with: data("Anna", "Leeds")) == nil)
        #expect(DuplicateRules.compare(john, with: data("Mary", "Jones", emails: ["john.smith@acme.com"])) == nil)
        // Empty names are not the same name.
        #expect(DuplicateRules.compare(data("", ""), with: data("", "")) == nil)
    }
}

extension Switchboard_Contacts_V1_DuplicateCandidate {
    /// The candidate's contact id.
    fileprivate var id: String { contact?.id ?? "" }
}

/// FindDuplicateContacts over HTTP/2 against PostgreSQL.
@Suite("Contacts service: duplicates", .serialized)
final class DuplicateTests {
    let harness: ContactsHarness
    init() async throws { harness = try await ContactsHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private func tenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

    private func create(_ client: Client, _ given: String, _ family: String, emails: [String] = [], phones: [String] = []) async throws -> String {
        try await client.create(given: given, family: family, emails: emails, phones: phones).id
    }

    private func duplicates(_ client: Client, _ id: String, max: Int32 = 0) async throws -> [Switchboard_Contacts_V1_DuplicateCandidate] {
        var request = Switchboard_Contacts_V1_FindDuplicateContactsRequest()
        request.contactId = id
        request.maxResults = max
        return try await client.stub.findDuplicateContacts(request, options: client.options).candidates
    }

    @Test("phone, name, typo and mailbox matches, best first; not the contact, deleted ones, strangers or another tenant's")
    func candidates() async throws {
        let (t, other) = (tenant(), tenant())
        let client = try await harness.client(tenant: t)
        let target = try await create(client, "John", "Smith", emails: ["john.smith@acme.com"], phones: ["+49 30 1234567"])
        let phone = try await create(client, "Mary", "Jones", phones: ["0049 30 1234567"])
        let name = try await create(client, "john", "SMITH", emails: ["js@example.org"])
        let both = try await create(client, "John", "Smith", phones: ["+49301234567"])
        let typo = try await create(client, "Jon", "Smith")
        let mailbox = try await create(client, "Mary", "Jones", emails: ["john.smith@gmail.com"])
        _ = try await create(client, "Jane", "Doe")
        let deleted = try await create(client, "John", "Smith")
        _ = try await client.delete(deleted)
        _ = try await create(try await harness.client(tenant: other), "John", "Smith", phones: ["+49 30 1234567"])

        let found = try await duplicates(client, target)
        // Same name and same mailbox name score alike (0.5): they come in id order.
        let tied = [name, mailbox].sorted { $0.uppercased() < $1.uppercased() }
        #expect(found.map(\.id) == [both, phone] + tied + [typo], "\(found.map { $0.contact?.name?.given ?? "" })")
        let typoSimilarity = DuplicateRules.similarity("john smith", "jon smith")
        let scores = [0.8, 0.6, 0.5, 0.5, 0.4 * typoSimilarity]
        #expect(zip(found.map(\.score), scores).allSatisfy { abs($0 - $1) < 1e-9 } && found.count == scores.count, "\(found.map(\.score))")
        let by = Dictionary(uniqueKeysWithValues: found.map { ($0.id, $0) })
        #expect(by[both]?.signals == [.samePhone, .sameName])
        #expect(by[phone]?.signals == [.samePhone])
        #expect(by[name]?.signals == [.sameName])
        #expect(by[mailbox]?.signals == [.sameEmailName])
        #expect(by[typo]?.signals == [.similarName])
        #expect(found.first?.id == both && found.last?.id == typo)
        #expect(zip(found, found.dropFirst()).allSatisfy { $0.score >= $1.score })
        #expect(try await duplicates(client, target, max: 2).map(\.id) == found.prefix(2).map(\.id))
    }

    @Test("the names' similarity is pg_trgm's")
    func similarityIsPostgres() async throws {
        let pairs = [("john smith", "jon smith"), ("ada lovelace", "ada king"), ("anna leeds", "ann lee"), ("acme inc", "acme")]
        for (a, b) in pairs {
            let expected = try await harness.pool.query("SELECT similarity($1, $2)::float8 AS s", [.text(a), .text(b)]).first!.double("s")
            #expect(abs(DuplicateRules.similarity(a, b) - expected) < 1e-6, "\(a) / \(b): \(expected)")
        }
    }

    @Test("a personal mailbox name at another domain finds a contact the name search does not")
    func mailboxSearch() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let target = try await create(client, "Ada", "Lovelace", emails: ["ada.king@home.org"])
        let work = try await create(client, "Augusta", "King", emails: ["ada.king@work.example"])
        _ = try await create(client, "Bob", "Sales", emails: ["sales@work.example"])
        let found = try await duplicates(client, target)
        #expect(found.map(\.id) == [work] && found.first?.signals == [.sameEmailName], "\(found)")
    }

    @Test("after a merge the loser is no candidate; bad requests name their field")
    func mergeAndErrors() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let target = try await create(client, "Ada", "Lovelace", phones: ["+44 20 7946 0000"])
        let twin = try await create(client, "Ada", "Lovelace", phones: ["+442079460000"])
        #expect(try await duplicates(client, target).map(\.id) == [twin])
        _ = try await client.merge(twin, into: target)
        #expect(try await duplicates(client, target).isEmpty)
        #expect(await rpcError { _ = try await self.duplicates(client, twin) }?.code == .notFound)
        #expect(await rpcError { _ = try await self.duplicates(client, UUID().uuidString.lowercased()) }?.code == .notFound)
        let invalid = await rpcError { _ = try await self.duplicates(client, "nope") }
        #expect(invalid?.code == .invalidArgument && invalid?.fieldViolations.map(\.field) == ["contact_id"])
        let tooMany = await rpcError { _ = try await self.duplicates(client, target, max: 51) }
        #expect(tooMany?.code == .invalidArgument && tooMany?.fieldViolations.map(\.field) == ["max_results"])
        // Another tenant's contact is not found.
        let stranger = try await harness.client(tenant: tenant())
        #expect(await rpcError { _ = try await self.duplicates(stranger, target) }?.code == .notFound)
    }

    @Test("crmctl contacts duplicates: a table for people, JSON on request")
    func crmctl() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let target = try await create(client, "Ada", "Lovelace", phones: ["+44 20 7946 0000"])
        let twin = try await create(client, "Ada", "Lovelace", phones: ["+442079460000"])
        let binary = URL(
            fileURLWithPath: ProcessInfo.processInfo.environment["SWITCHBOARD_CONTACTS_BIN"]
                ?? repositoryRoot.appendingPathComponent(".build/debug/contacts").path
        ).deletingLastPathComponent().appendingPathComponent("crmctl").path
        let env = [
            "CRMCTL_TOKEN": try await ServiceHarness.token(tenant: t, roles: [.readOnly]), "CRMCTL_CONTACTS_ADDR": "127.0.0.1:\(harness.port)",
        ]
        let (status, table) = try await runProcess(binary, ["contacts", "duplicates", target], environment: env)
        #expect(status == 0, "\(table)")
        let rows = table.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(rows == [["ID", "NAME", "SCORE", "SIGNALS"], [twin, "Ada Lovelace", "80%", "same phone, same name"]], "\(table)")
        let (jsonStatus, json) = try await runProcess(binary, ["contacts", "duplicates", target, "--output", "json"], environment: env)
        #expect(jsonStatus == 0 && json.contains("DUPLICATE_SIGNAL_SAME_PHONE") && json.contains(twin), "\(json)")
        let (bad, badOut) = try await runProcess(binary, ["contacts", "duplicates", target, "--max", "99"], environment: env)
        #expect(bad != 0 && badOut.contains("max_results"), "\(badOut)")
    }
}
