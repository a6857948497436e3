import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardServiceKit
import Testing

@testable import ContactsService

/// A contact with a value in every field the search words read, a London phone number among them.
func sampleContact(given: String, family: String, display: String, email: String, tags: [String], note: String) -> ContactData {
    var data = ContactData()
    data.name.given = given
    data.name.family = family
    data.name.display = display
    data.emails = [EmailAddress(address: email)]
    data.phones = [PhoneNumber(number: "+44 20 7946 0018", e164: "+442079460018")]
    data.tags = tags
    data.customFields = ["note": .string(note)]
    return data
}

@Suite("Search words split in the service")
struct SearchWordsTests {
    let utf8 = SearchWords(ctype: "C.UTF-8")!

    @Test("words are lower-cased runs of letters or digits, split between the two, each run cut to 64")
    func splitting() {
        #expect(utf8.words(of: ["John SMITH jo.smith+crm@Example.COM ab12cd 3rd"]) == "john smith jo smith crm example com ab 12 cd 3 rd")
        #expect(utf8.words(of: ["", "  ", "x", "", "Y-z"]) == "x y z")
        let long = String(repeating: "Q", count: 70) + "7" + String(repeating: "5", count: 66) + "z"
        #expect(utf8.words(of: [long]) == String(repeating: "q", count: 64) + " 7" + String(repeating: "5", count: 63) + " z")
        // The cut counts one run: a separator or the other kind starts a new one.
        let runs = String(repeating: "a", count: 64) + "1" + String(repeating: "b", count: 64)
        #expect(utf8.words(of: [runs]) == String(repeating: "a", count: 64) + " 1 " + String(repeating: "b", count: 64))
    }

    @Test("beyond ASCII the C library's classes decide, as in PostgreSQL: marks and signs split, other scripts' digits do not")
    func wideCharacters() {
        #expect(utf8.words(of: ["Straße ΣΟΦΙΑ İstanbul x²y e\u{301}x"]) == "straße σοφια istanbul x y e x")
        #expect(utf8.words(of: ["日本語 ٣٤ 😀x"]) == "日本語 ٣٤ x")
    }

    @Test("the C locale knows ASCII only, as PostgreSQL's regular expressions there")
    func cLocale() {
        let c = SearchWords(ctype: "C")!
        #expect(c.words(of: ["Straße AB1"]) == "stra e ab 1")
        #expect(SearchWords(ctype: "xx_NOT.A-LOCALE") == nil)
    }

    @Test("the terms of word lists: distinct words that begin with a letter")
    func termWords() {
        var terms = SearchWords.Terms(collect: true)
        var out: [UInt8] = []
        for text in ["Ada 12 Lovelace ada", "ǅemal ٣٤ 7x", "", "x"] { utf8.appendWords(of: text, to: &out, terms: &terms) }
        #expect(terms.words == ["ada", "lovelace", "ǆemal", "٣٤", "x"])
        #expect(String(decoding: out, as: UTF8.self) == "ada 12 lovelace ada ǆemal ٣٤ 7 x x")
    }

    @Test("a contact's words: every field the trigger reads, names in their own order")
    func contactWords() {
        var data = sampleContact(
            given: "Ada", family: "Lovelace", display: "Countess Ada", email: "ada@Example.org", tags: ["vip"], note: "Analytical Engine")
        data.customFields["count"] = .number(3)
        data.customFields["flag"] = .bool(true)
        var terms = SearchWords.Terms(collect: false)
        let (words, names) = utf8.contactWords(data, organizationNames: ["Babbage & Co"], terms: &terms)
        #expect(
            Set(words.split(separator: " ")) == [
                "countess", "ada", "lovelace", "example", "org", "44", "20", "7946", "0018", "442079460018", "analytical", "engine", "vip",
                "babbage", "co",
            ])
        #expect(names == "ada lovelace countess ada")
    }
}

@Suite("Search words given with an insert", .serialized)
struct SearchWordsDatabaseTests {
    let harness: ContactsHarness
    init() async throws { harness = try await ContactsHarness.start() }

    private func tenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

    @Test("the test database's locale passes the probe")
    func probe() async throws {
        let probed = try await harness.pool.transaction(settings: [:]) { try await SearchWordsSource.probe(on: $0) }
        #expect(probed.words != nil, "\(probed.reason)")
    }

    /// Random text from the characters word splitting treats apart, as the trigger's own comparison test uses.
    private static let parts = [
        "a", "Z", "ß", "é", "É", "İ", "ǅ", "ﬁ", "Σ", "日", "語", "😀", "٣", "²", "Ⅻ", "１", "0", "7", "9", " ", ".", "-", "_", "@", "'", "\"",
        "\\", "/", "\n", "\t", "\u{1}", "\u{7F}", "\u{301}", "\u{200D}", String(repeating: "q", count: 70), String(repeating: "5", count: 70),
        "u0041", "\\u0041", "n",
    ]

    private static func text<G: RandomNumberGenerator>(_ generator: inout G) -> String {
        (0..<Int.random(in: 0...9, using: &generator)).map { _ in parts.randomElement(using: &generator)! }.joined()
    }

    @Test("an import's insert with the service's words stores what the trigger computes, on awkward text")
    func wordsMatchTrigger() async throws {
        // The database's own locale, without the probe (which would hide a difference this test must show).
        let ctype = try await harness.pool.query(settings: [:], "SELECT datctype FROM pg_database WHERE datname = current_database()", [])
            .first?.string("datctype")
        let database = try #require(ctype)
        let words = try #require(SearchWords(ctype: database))
        var generator = SystemRandomNumberGenerator()
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        let records = (0..<2000).map { i -> ContactRecord in
            var data = ContactData()
            data.name.given = Self.text(&generator)
            data.name.family = Self.text(&generator)
            data.name.middle = i % 3 == 0 ? Self.text(&generator) : ""
            data.name.display = Self.text(&generator)
            data.name.prefix = i % 5 == 0 ? Self.text(&generator) : ""
            data.name.suffix = i % 7 == 0 ? Self.text(&generator) : ""
            data.emails = (0..<(i % 3)).map { _ in EmailAddress(address: Self.text(&generator)) }
            data.phones = (0..<(i % 3)).map { k in PhoneNumber(number: Self.text(&generator), e164: k == 0 ? "+1555\(i)" : "") }
            data.tags = (0..<(i % 4)).map { _ in Self.text(&generator) }
            data.customFields = ["s": .string(Self.text(&generator)), "n": .number(Double(i)), "a": .array([.string(Self.text(&generator))])]
            return ContactRecord(id: UUID(), data: data, version: 1, createdAt: now, createdBy: "u", updatedAt: now, updatedBy: "u", deletedAt: nil)
        }
        let (given, computed) = (tenant(), tenant())
        var termWords = SearchWords.Terms(collect: true)
        let contactWords = records.map { words.contactWords($0.data, terms: &termWords) }
        for (tenantID, splitting) in [(given, contactWords as [(words: String, names: String)]?), (computed, nil)] {
            let insert = PostgresContactStore.insertStatement(records, actor: Actor(tenantID: tenantID, userID: "u"), words: splitting)
            // The terms: from the words given, or read back from what the trigger stored.
            let terms =
                splitting == nil
                ? PostgresContactStore.termsStatement(records.map(\.id), tenantID: tenantID)
                : PostgresContactStore.termsStatement([], words: Array(termWords.words), tenantID: tenantID)
            try await harness.pool.transaction(settings: ["app.tenant_id": tenantID]) { c in
                _ = try await c.query(insert.sql, insert.binds)
                _ = try await c.query(terms.sql, terms.binds)
            }
        }
        // Row-level security shows one tenant per transaction: each tenant's columns are read in id order, then compared.
        func columns(_ tenantID: String) async throws -> [String] {
            try await harness.pool.query(
                settings: ["app.tenant_id": tenantID],
                "SELECT id::text || ' ' || search_words::text || ' | ' || search_names::text || ' | ' || phone_numbers::text AS c FROM contacts.contacts WHERE tenant_id = $1 ORDER BY id",
                [.text(tenantID)]
            ).rows.map { try $0.string("c") }
        }
        let (mine, theirs) = (try await columns(given), try await columns(computed))
        #expect(mine.count == records.count)
        let differing = zip(mine, theirs).filter { $0 != $1 }.prefix(3).map { "given: \($0)\ntrigger: \($1)" }
        #expect(differing.isEmpty, "\(differing.joined(separator: "\n"))")
        #expect(mine.filter { !$0.contains(" | {}") }.count > records.count / 2)
        // A contact the service gave no words gets the trigger's: the comparison above would not see the service
        // missing words, so it must give words exactly where the trigger finds some.
        let worded = try await harness.pool.query(
            settings: ["app.tenant_id": computed],
            "SELECT count(*) FILTER (WHERE search_words <> '') AS n FROM contacts.contacts WHERE tenant_id = $1",
            [.text(computed)]
        ).first?.int("n")
        #expect(contactWords.filter { !$0.words.isEmpty }.count == worded.map(Int.init))
        func terms(_ tenantID: String) async throws -> String {
            try await harness.pool.query(
                settings: ["app.tenant_id": tenantID],
                "SELECT string_agg(term, ' ' ORDER BY term) AS t FROM contacts.search_terms WHERE tenant_id = $1",
                [.text(tenantID)]
            ).first?.string("t") ?? ""
        }
        let (myTerms, theirTerms) = (try await terms(given), try await terms(computed))
        #expect(myTerms.split(separator: " ").count > 100)
        #expect(myTerms == theirTerms)
    }

    @Test("CreateContact and BatchCreateContacts store the same words and terms whether the service or the trigger splits them")
    func storesAgree() async throws {
        func store(_ source: SearchWordsSource) -> PostgresContactStore {
            PostgresContactStore(
                pool: harness.pool, feed: ChangeFeed(schema: "contacts"), idempotency: Idempotency(schema: "contacts"),
                publish: { try ContactsMapping.proto($0).protoJSONText() }, searchWords: source)
        }
        let data = sampleContact(
            given: "Zoë-Ann", family: "O'Brien2nd", display: "ǅemal İlkay", email: "Zoe.Ann+crm@Example.COM", tags: ["vip", "straße"],
            note: "Analytical Engine ٣٤")
        var other = data
        other.emails = [EmailAddress(address: "second@example.com")]
        let write = try WriteOptions<ContactRecord>(requestID: "", method: "create", fingerprint: []) { _ in [] }
        let batchWrite = try WriteOptions<[ContactBatchResult]>(requestID: "", method: "batch", fingerprint: []) { _ in [] }
        var rows: [String] = []
        let splitting = SearchWordsSource()
        #expect(await splitting.words(pool: harness.pool) != nil)
        for source in [splitting, SearchWordsSource(decided: nil)] {
            let t = tenant()
            let actor = Actor(tenantID: t, userID: "u")
            _ = try await store(source).insert(data, actor: actor, write: write)
            _ = try await store(source).insert(batch: [other], results: [nil], allOrNothing: false, actor: actor, write: batchWrite)
            rows.append(
                try await harness.pool.query(
                    settings: ["app.tenant_id": t],
                    """
                    SELECT (SELECT string_agg(search_words::text || ' | ' || search_names::text, ' / ' ORDER BY emails::text)
                            FROM contacts.contacts WHERE tenant_id = $1)
                        || ' # ' || (SELECT string_agg(term, ' ' ORDER BY term) FROM contacts.search_terms WHERE tenant_id = $1) AS w
                    """, [.text(t)]
                ).first?.string("w") ?? "")
        }
        #expect(rows[0].contains("'analytical'") && rows[0].contains("straße") && rows[0].contains("ǆemal"))
        #expect(rows[0] == rows[1])
    }

    @Test("the trigger keeps words an insert gives, computes those it does not, and computes again on update")
    func triggerKeepsGivenWords() async throws {
        let t = tenant()
        let row = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                """
                INSERT INTO contacts.contacts (tenant_id, id, given_name, family_name, contact_type, status, owner_id, created_at,
                    created_by, updated_at, updated_by, search_words, search_names)
                VALUES ($1, gen_random_uuid(), 'Ada', 'Lovelace', 1, 1, 'o', now(), 'u', now(), 'u', 'given', '{given}'),
                       ($1, gen_random_uuid(), 'Grace', 'Hopper', 1, 1, 'o', now(), 'u', now(), 'u', '', '{}')
                """, [.text(t)])
            let inserted = try await c.query(
                "SELECT string_agg(search_words::text || '/' || search_names::text, ' ' ORDER BY given_name) AS w FROM contacts.contacts WHERE tenant_id = $1",
                [.text(t)]
            ).first?.string("w")
            try await c.query("UPDATE contacts.contacts SET status = 2 WHERE tenant_id = $1", [.text(t)])
            let updated = try await c.query(
                "SELECT string_agg(search_words::text || '/' || search_names::text, ' ' ORDER BY given_name) AS w FROM contacts.contacts WHERE tenant_id = $1",
                [.text(t)]
            ).first?.string("w")
            return (inserted, updated)
        }
        #expect(row.0 == "'given'/{given} 'grace' 'hopper'/{grace,hopper}")
        #expect(row.1 == "'ada' 'lovelace'/{ada,lovelace} 'grace' 'hopper'/{grace,hopper}")
    }
}
