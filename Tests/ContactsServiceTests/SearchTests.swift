import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

@testable import ContactsService

typealias SearchRequest = Switchboard_Contacts_V1_SearchContactsRequest

extension Client {
    /// Defines the enum custom field `region` with these values (the caller must be an admin).
    func defineRegion(_ values: [String]) async throws {
        var definition = Switchboard_Contacts_V1_FieldDefinition()
        definition.key = "region"
        definition.displayName = "Region"
        definition.type = .enum
        definition.allowedValues = values
        var define = Switchboard_Contacts_V1_DefineFieldRequest()
        define.definition = definition
        _ = try await stub.defineField(define, options: options)
    }

    func search(
        _ text: String, pageSize: Int32 = 0, token: String = "", configure: (inout SearchRequest) -> Void = { _ in }
    ) async throws -> Switchboard_Contacts_V1_SearchContactsResponse {
        var request = SearchRequest()
        request.query = text
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        configure(&request)
        return try await stub.searchContacts(request, options: options)
    }

    /// Every hit of a search (contact id and score), page by page until the last page, in order.
    func allHits(
        _ text: String, pageSize: Int32, configure: (inout SearchRequest) -> Void = { _ in }
    ) async throws -> [(id: String, score: Double)] {
        var hits: [(id: String, score: Double)] = []
        var token = ""
        repeat {
            let page = try await search(text, pageSize: pageSize, token: token, configure: configure)
            hits += page.hits.map { ($0.contact?.id ?? "", $0.score) }
            token = page.page?.nextPageToken ?? ""
        } while !token.isEmpty
        return hits
    }

    /// Every hit's contact id of a search, page by page until the last page, in order.
    func allIDs(_ text: String, pageSize: Int32, sort: SearchRequest.SortBy) async throws -> [String] {
        try await allHits(text, pageSize: pageSize) { $0.sortBy = sort }.map(\.id)
    }
}

/// Hits in relevance order as scored: best first, then by id.
func byRelevance(_ hits: [(id: String, score: Double)]) -> [(id: String, score: Double)] {
    hits.sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
}

extension Client {

    /// The display names of a search's hits, in order.
    func names(_ text: String, configure: (inout SearchRequest) -> Void = { _ in }) async throws -> [String] {
        try await search(text, configure: configure).hits.map { $0.contact?.name?.display ?? "" }
    }
}

/// SearchContacts over HTTP/2 and PostgreSQL: ranking, prefixes and typos, filters and facets, highlights, pages,
/// read-your-writes, tenant isolation and bounds.
@Suite("Contacts search", .serialized)
final class SearchTests {
    let harness: ContactsHarness
    init() async throws { harness = try await ContactsHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private func tenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

    @Test("\"jon smth\" finds John Smith and Jon Smyth, best first, and not Jane Doe; prefixes and typos match words")
    func typosAndRanking() async throws {
        let client = try await harness.client(tenant: tenant())
        _ = try await client.create(given: "Jane", family: "Doe", emails: ["jane@doe.org"])
        _ = try await client.create(given: "John", family: "Smith", emails: ["john.smith@example.com"])
        _ = try await client.create(given: "Jon", family: "Smyth")
        _ = try await client.create(given: "Smith", family: "Jonas", emails: ["works@smithery.io"])
        let hits = try await client.names("jon smth")
        // The exact first name counts more than a typo of it; the words in the name's order more than out of it.
        #expect(hits == ["Jon Smyth", "John Smith", "Smith Jonas"], "\(hits)")
        // A prefix of a word, in any field: "smi" begins Smith (a name) and smithery (an address).
        let prefixed = try await client.names("smi")
        #expect(Set(prefixed) == ["John Smith", "Smith Jonas"], "\(prefixed)")
        #expect(try await client.names("lovelace").isEmpty)
        // Case and punctuation do not matter; every word must match.
        #expect(try await client.names("JOHN.SMITH@EXAMPLE.COM") == ["John Smith"])
        #expect(try await client.names("john zzzz").isEmpty)
        // Scores are best first.
        let scores = try await client.search("jon smth").hits.map(\.score)
        #expect(scores == scores.sorted(by: >) && scores.allSatisfy { $0 > 0 })
        // Two neighbouring letters swapped, or one letter too many: trigrams barely see these ("jhon" shares one of nine
        // with "john"), one edit finds them.
        #expect(try await client.names("jhon smtih") == ["John Smith"])
        // ("Smith Jonas" matches too: "jonh" resembles "jonas"; the names in order rank first.)
        let doubled = try await client.names("jonh smiith")
        #expect(doubled.first == "John Smith" && !doubled.contains("Jane Doe"), "\(doubled)")
        let swapped = try await client.names("smtih")
        #expect(Set(swapped) == ["John Smith", "Smith Jonas"], "\(swapped)")
        // A swap does not stand for the word itself: the exact word still scores more.
        let exact = try await client.search("smith").hits.map(\.score).max() ?? 0
        let edited = try await client.search("smtih").hits.map(\.score).max() ?? 0
        #expect(exact > edited, "\(exact) \(edited)")
    }

    @Test("highlights name the fields and the matched words' places")
    func highlights() async throws {
        let client = try await harness.client(tenant: tenant())
        _ = try await client.create(given: "Ada", family: "Lovelace", emails: ["ada@analytical.engine"], tags: ["mathematics"])
        let hit = try #require(try await client.search("ada math").hits.first)
        let byField = Dictionary(uniqueKeysWithValues: hit.highlights.map { ($0.field, $0) })
        #expect(byField["name.given"]?.matches.map { [$0.start, $0.end] } == [[0, 3]])
        #expect(byField["name.display"]?.text == "Ada Lovelace")
        #expect(byField["emails[0].address"]?.matches.map { [$0.start, $0.end] } == [[0, 3]])
        #expect(byField["tags[0]"]?.matches.map { [$0.start, $0.end] } == [[0, 11]])
        #expect(byField["name.family"] == nil)
    }

    @Test("a word of digits finds every contact with a word it begins, the word itself first, under any sort, and marks them")
    func digitPrefixes() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        // 40 distinct numbers beginning 5550 (a word of digits could stand for 32 words before), the word 5550 itself,
        // and a number that has 5550 inside it but does not begin with it.
        for i in 0..<40 { _ = try await client.create(given: "Num", family: "Ber \(i)", emails: ["n\(55_500_100 + i)@example.com"]) }
        let exact = try await client.create(given: "Exact", family: "Digits", emails: ["desk.5550@example.com"])
        _ = try await client.create(given: "Inner", family: "Digits", emails: ["x1555099@example.com"])
        for sort in [SearchRequest.SortBy.relevance, .createTime] {
            let seen = try await client.allIDs("5550", pageSize: 15, sort: sort)
            #expect(seen.count == 41 && Set(seen).count == 41, "\(sort): \(seen.count)")
            if sort == .relevance { #expect(seen.first == exact.id) }
        }
        // The word is marked where it stands whole, and so is a word it begins.
        let hits = try await client.search("5550", pageSize: 2).hits
        #expect(hits.first?.highlights.first { $0.field == "emails[0].address" }?.matches.map { [$0.start, $0.end] } == [[5, 9]])
        #expect(hits.last?.highlights.first { $0.field == "emails[0].address" }?.matches.map { [$0.start, $0.end] } == [[1, 9]])
        #expect(hits.first!.score > hits.last!.score)
        // With a word of letters, and under a facet: both words narrow.
        let both = try await client.search("ber 5550010") { $0.facets = ["type"] }
        #expect(both.hits.count == 10, "\(both.hits.map { $0.contact?.name?.display ?? "" })")
        #expect(both.facets.first?.counts.map(\.count) == [10])
        #expect(try await client.search("5551").hits.isEmpty)
        // The tenant's terms hold no word of digits (they are matched in the contacts' own index).
        let digitTerms = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query("SELECT count(*) AS n FROM contacts.search_terms WHERE tenant_id = $1 AND term ~ '^[0-9]'", [.text(t)]).first?.int("n")
        }
        #expect(digitTerms == 0)
    }

    @Test("filters narrow the hits and facets count every hit under the filters, not only the page")
    func filtersAndFacets() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let admin = try await harness.client(tenant: t, roles: [.admin])
        try await admin.defineRegion(["north", "south"])
        func region(_ value: String) -> [String: Google_Protobuf_Value] {
            var v = Google_Protobuf_Value()
            v.kind = .stringValue(value)
            return ["region": v]
        }
        for i in 0..<5 { _ = try await client.create(given: "Maria \(i)", family: "Garcia", custom: region("north"), tags: ["vip", "emea"]) }
        for i in 0..<3 { _ = try await client.create(given: "Mario \(i)", family: "Garcia", custom: region("south"), tags: ["emea"]) }
        _ = try await client.create(given: "Other", family: "Person", tags: ["vip"])
        let all = try await client.search("garcia", pageSize: 2) { $0.facets = ["tag", "custom_fields.region", "status", "type"] }
        #expect(all.hits.count == 2 && !(all.page?.nextPageToken ?? "").isEmpty)
        let facets = Dictionary(uniqueKeysWithValues: all.facets.map { ($0.field, $0.counts.map { "\($0.value)=\($0.count)" }) })
        #expect(facets["tag"] == ["emea=8", "vip=5"], "\(facets)")
        #expect(facets["custom_fields.region"] == ["north=5", "south=3"])
        #expect(facets["type"] == ["CONTACT_TYPE_PERSON=8"])
        // Under a filter, the facets follow it.
        let north = try await client.search("garcia") {
            $0.customFields = ["region": "south"]
            $0.facets = ["tag"]
        }
        #expect(north.hits.count == 3)
        #expect(north.facets.first?.counts.map { "\($0.value)=\($0.count)" } == ["emea=3"])
        #expect(try await client.search("") { $0.tags = ["vip", "emea"] }.hits.count == 5)
        #expect(try await client.search("garcia") { $0.tags = ["vip"] }.hits.count == 5)
        // Bad facet names and filters are INVALID_ARGUMENT naming the field.
        let bad = await code { _ = try await client.search("x") { $0.facets = ["colour"] } }
        #expect(bad == .invalidArgument)
        // A custom field the tenant has not defined: no contact can hold it, so a misspelt key is refused, not an
        // empty facet or no hits; for a search, an export, a bulk tag and a saved search alike.
        let undefined = await rpcError {
            _ = try await client.search("garcia") {
                $0.facets = ["tag", "custom_fields.regoin"]
                $0.customFields = ["colour": "red", "region": "north"]
            }
        }
        #expect(undefined?.code == .invalidArgument)
        #expect(undefined?.fieldViolations.map(\.field) == ["facets[1]", "custom_fields[colour]"], "\(String(describing: undefined))")
        var export = Switchboard_Contacts_V1_ExportContactsRequest()
        export.format = .csv
        var filter = SearchRequest()
        filter.customFields = ["colour": "red"]
        export.filter = filter
        let exported = await rpcError {
            try await client.stub.exportContacts(export, options: client.options) { chunks in for try await _ in chunks {} }
        }
        #expect(exported?.fieldViolations.map(\.field) == ["filter.custom_fields[colour]"], "\(String(describing: exported))")
        var misspelt = SearchRequest()
        misspelt.facets = ["custom_fields.regoin"]
        var savedSearch = Switchboard_Contacts_V1_SavedSearch()
        savedSearch.name = "misspelt"
        savedSearch.search = misspelt
        var saved = Switchboard_Contacts_V1_CreateSavedSearchRequest()
        saved.savedSearch = savedSearch
        let savedError = await rpcError { _ = try await client.stub.createSavedSearch(saved, options: client.options) }
        #expect(savedError?.fieldViolations.map(\.field) == ["saved_search.search.facets[0]"], "\(String(describing: savedError))")
        var bulk = Switchboard_Contacts_V1_BulkTagContactsRequest()
        bulk.filter = filter
        bulk.addTags = ["x"]
        let bulkError = await rpcError { _ = try await client.stub.bulkTagContacts(bulk, options: client.options) }
        #expect(bulkError?.fieldViolations.map(\.field) == ["filter.custom_fields[colour]"], "\(String(describing: bulkError))")
        // An export ignores facets (so does a bulk tag): an undefined one there is not refused.
        var facetOnly = SearchRequest()
        facetOnly.facets = ["custom_fields.regoin"]
        export.filter = facetOnly
        try await client.stub.exportContacts(export, options: client.options) { chunks in for try await _ in chunks {} }
        // A retired field still counts: contacts keep its values.
        var retire = Switchboard_Contacts_V1_RetireFieldRequest()
        retire.key = "region"
        _ = try await admin.stub.retireField(retire, options: admin.options)
        let retired = try await client.search("garcia") { $0.facets = ["custom_fields.region"] }
        #expect(retired.facets.first?.counts.map { "\($0.value)=\($0.count)" } == ["north=5", "south=3"])
    }

    @Test("pages: by relevance and by a field, every hit once, with no ceiling; a changed query refuses the token")
    func pages() async throws {
        let client = try await harness.client(tenant: tenant())
        var ids: Set<String> = []
        var created: [(id: String, family: String)] = []
        for i in 0..<25 {
            let contact = try await client.create(given: "Sam\(i % 3 == 0 ? "" : "my")", family: "Page \(i)")
            ids.insert(contact.id)
            created.append((contact.id, "Page \(i)"))
        }
        for sort in [SearchRequest.SortBy.relevance, .createTime, .familyName] {
            let seen = try await client.allIDs("sam", pageSize: 4, sort: sort)
            #expect(seen.count == 25 && Set(seen) == ids, "\(sort)")
        }
        // By a field, in both directions, with text and without (then each page is a range of the sort's index): pages
        // of 4 give exactly the sort's order, the order the contacts were made in, or their family names' (in bytes,
        // as the tests' collation orders these).
        let byFamily = created.sorted { $0.family.utf8.lexicographicallyPrecedes($1.family.utf8) }.map(\.id)
        for descending in [false, true] {
            for (sort, ascending) in [(SearchRequest.SortBy.createTime, created.map(\.id)), (.familyName, byFamily)] {
                for text in ["sam", ""] {
                    let paged = try await client.allHits(text, pageSize: 4) {
                        $0.sortBy = sort
                        $0.descending = descending
                    }.map(\.id)
                    #expect(paged == (descending ? ascending.reversed() : ascending), "\(sort) descending \(descending) text \"\(text)\"")
                }
            }
        }
        // Without text, by relevance: every score is 0 and the pages go by id, every contact once.
        let unranked = try await client.allHits("", pageSize: 4)
        #expect(unranked.count == 25 && Set(unranked.map(\.id)) == ids && unranked.allSatisfy { $0.score == 0 })
        #expect(unranked.map(\.id) == unranked.map(\.id).sorted())
        let first = try await client.search("sam", pageSize: 4)
        let changed = await code { _ = try await client.search("samy", pageSize: 4, token: first.page?.nextPageToken ?? "") }
        #expect(changed == .invalidArgument)
    }

    @Test("the maintenance removes terms no live contact holds, per tenant; a restore brings them back; a writer's lock defers it")
    func unusedTermsSwept() async throws {
        let t = tenant(), u = tenant()
        let client = try await harness.client(tenant: t)
        let other = try await harness.client(tenant: u)
        let gone = try await client.create(given: "Zorbulon", family: "Quixby")
        _ = try await client.create(given: "Zorbaline", family: "Kept")
        _ = try await other.create(given: "Zorbulon", family: "Elsewhere")
        func has(_ tenant: String, _ term: String) async throws -> Bool {
            try await harness.pool.query(
                settings: ["app.tenant_id": tenant], "SELECT count(*) AS n FROM contacts.search_terms WHERE tenant_id = $1 AND term = $2",
                [.text(tenant), .text(term)]
            ).first?.int("n") == 1
        }
        func sweep() async throws -> Int {
            var position: (tenant: String, term: String)?
            var removed = 0
            repeat {
                let step = try await ContactsMaintenance.sweepTerms(after: position, limit: 50, pool: harness.pool)
                removed += step.removed
                position = step.next
            } while position != nil
            return removed
        }
        // A writer of the tenant's terms holds the lock until it commits: the sweep leaves the tenant alone meanwhile.
        // Taken before the delete, so that the service's own maintenance pass (it runs once at start, concurrently
        // with the first tests) cannot remove the terms before this test looks at them either.
        let (held, hold) = AsyncStream.makeStream(of: Void.self)
        let (release, releaser) = AsyncStream.makeStream(of: Void.self)
        let pool = harness.pool
        let writer = Task {
            try await pool.transaction(settings: ["app.tenant_id": t]) { c in
                try await c.query("SELECT pg_advisory_xact_lock_shared(hashtext('contacts.search_terms'), hashtext($1)) AS locked", [.text(t)])
                hold.yield()
                for await _ in release { break }
            }
        }
        for await _ in held { break }
        _ = try await client.delete(gone.id)
        #expect(try await has(t, "zorbulon"))
        #expect(try await has(t, "quixby"))
        _ = try await sweep()
        #expect(try await has(t, "zorbulon"))
        releaser.yield()
        try await writer.value

        // Removed once the lock is free. Swept again until then: in the full test run other contacts services run
        // their start-up pass at the same time, and one that holds this tenant's lock for a page of terms it read
        // before these existed makes this sweep skip the tenant (a busy tenant waits for the next round, by design).
        #expect(
            try await eventually {
                _ = try await sweep()
                let zorbulon = try await has(t, "zorbulon"), quixby = try await has(t, "quixby")
                return !zorbulon && !quixby
            })
        // Held by a live contact of the tenant, or by another tenant's contact: kept.
        #expect(try await has(t, "zorbaline"))
        #expect(try await has(u, "zorbulon"))
        #expect(try await client.names("zorb") == ["Zorbaline Kept"])
        // Restored: its words are terms again, and a search finds it by them.
        _ = try await client.undelete(gone.id)
        #expect(try await has(t, "zorbulon"))
        #expect(try await client.names("quixby") == ["Zorbulon Quixby"])
    }

    @Test("the trigger's words, name words and phone numbers are those of the reference definition, on awkward text")
    func triggerMatchesReference() async throws {
        let t = tenant()
        // The reference is the definition of migrations 006, 008 and 010 (one query per part; 014 made the trigger one
        // expression per column): rows of random text from letters, digits, marks, escapes JSON must write, long runs
        // and separators, in every field the trigger reads, are inserted and updated, then compared column by column.
        let mismatches = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c -> [String] in
            try await c.query(
                """
                CREATE TEMP TABLE pool ON COMMIT DROP AS SELECT regexp_split_to_array(
                    'a|Z|ß|é|É|İ|ǅ|ﬁ|日|語|😀|٣|²|0|7|9| |.|-|_|@|''|"|\\|/|' || chr(10) || '|' || chr(9) || '|' || chr(1) || '|' || chr(127)
                    || '|' || chr(769) || '|' || repeat('q', 70) || '|' || repeat('5', 70) || '|u0041|\\u0041|n', '\\|') AS parts
                """)
            try await c.query(
                """
                CREATE TEMP TABLE words ON COMMIT DROP AS
                SELECT g, k, (SELECT string_agg(parts[1 + floor(random() * cardinality(parts))::int + 0 * i], '') FROM generate_series(1, 1 + (g * k) % 9) AS s (i)) AS w
                FROM pool, generate_series(1, 3000) g, generate_series(1, 12) k
                """)
            try await c.query(
                """
                INSERT INTO contacts.contacts (tenant_id, id, given_name, family_name, middle_name, name_prefix, name_suffix, display_name,
                    emails, phones, contact_type, status, tags, owner_id, custom_fields, organization_names, created_at, created_by,
                    updated_at, updated_by)
                SELECT $1, gen_random_uuid(), w[1], w[2], w[3], w[4], '', w[5],
                    CASE g % 3 WHEN 0 THEN '[]' WHEN 1 THEN jsonb_build_array(jsonb_build_object('address', w[6]))
                        ELSE jsonb_build_array(jsonb_build_object('address', w[6]), jsonb_build_object('label', 'x'), jsonb_build_object('address', w[7])) END,
                    CASE g % 4 WHEN 0 THEN '[]' WHEN 1 THEN jsonb_build_array(jsonb_build_object('number', w[8], 'e164', '+' || g))
                        WHEN 2 THEN jsonb_build_array(jsonb_build_object('number', w[8], 'e164', ''))
                        ELSE jsonb_build_array(jsonb_build_object('number', w[8], 'e164', '+' || g), jsonb_build_object('number', 'x', 'e164', '+' || g),
                            jsonb_build_object('number', w[9], 'e164', '+9' || g)) END,
                    1, 1, ARRAY[w[10], 'vip'], 'o',
                    jsonb_build_object('s', w[11], 'n', g, 'b', true, 'a', jsonb_build_array(w[12]), 'o', jsonb_build_object('k', w[12])),
                    CASE WHEN g % 5 = 0 THEN ARRAY[w[12], 'Acme Corp'] ELSE '{}' END, now(), 'u', now(), 'u'
                FROM (SELECT g, array_agg(w ORDER BY k) AS w FROM words GROUP BY g) x
                """, [.text(t)])
            // An update recomputes them as well.
            try await c.query(
                "UPDATE contacts.contacts SET given_name = given_name || ' Über2x' WHERE tenant_id = $1 AND display_name > 'm'", [.text(t)])
            return try await c.query(
                """
                SELECT id::text, search_words::text AS got, ref_words::text AS want, search_names::text AS got_names,
                    ref_names::text AS want_names, phone_numbers::text AS got_phones, ref_phones::text AS want_phones
                FROM (
                    SELECT c.id, c.search_words, c.search_names, c.phone_numbers,
                        array_to_tsvector(coalesce((SELECT array_agg(DISTINCT left(w[1], 64)) FROM regexp_matches(lower(concat_ws(' ',
                            c.display_name, c.given_name, c.middle_name, c.family_name, c.name_prefix, c.name_suffix,
                            (SELECT string_agg(e ->> 'address', ' ') FROM jsonb_array_elements(c.emails) AS e),
                            (SELECT string_agg(concat_ws(' ', p ->> 'number', p ->> 'e164'), ' ') FROM jsonb_array_elements(c.phones) AS p),
                            array_to_string(c.tags, ' '),
                            (SELECT string_agg(v #>> '{}', ' ') FROM jsonb_each(c.custom_fields) AS f (k, v) WHERE jsonb_typeof(v) = 'string'),
                            array_to_string(c.organization_names, ' '))), '([[:alpha:]]+|[[:digit:]]+)', 'g') AS w), '{}')) AS ref_words,
                        ARRAY(SELECT left(w[1], 64) FROM regexp_matches(lower(concat_ws(' ', c.given_name, c.family_name, c.middle_name,
                            c.display_name, c.name_prefix, c.name_suffix)), '([[:alpha:]]+|[[:digit:]]+)', 'g') AS w) AS ref_names,
                        ARRAY(SELECT DISTINCT p ->> 'e164' FROM jsonb_array_elements(c.phones) AS p WHERE coalesce(p ->> 'e164', '') <> '') AS ref_phones
                    FROM contacts.contacts c WHERE c.tenant_id = $1
                ) x
                WHERE search_words IS DISTINCT FROM ref_words OR search_names IS DISTINCT FROM ref_names
                   OR ARRAY(SELECT unnest(phone_numbers) ORDER BY 1) IS DISTINCT FROM ARRAY(SELECT unnest(ref_phones) ORDER BY 1)
                LIMIT 3
                """, [.text(t)]
            ).rows.map { row in
                try ["id", "got", "want", "got_names", "want_names", "got_phones", "want_phones"].map { "\($0)=\(try row.string($0))" }.joined(
                    separator: " ")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
        let count = try await harness.pool.query(
            settings: ["app.tenant_id": t],
            "SELECT count(*) AS n, count(*) FILTER (WHERE search_words <> '') AS worded FROM contacts.contacts WHERE tenant_id = $1",
            [.text(t)]
        ).first
        #expect(try count?.int("n") == 3000)
        #expect(try count?.int("worded") == 3000)
    }

    @Test("read-your-writes: a contact is found by the next search after it is created, changed or deleted")
    func readYourWrites() async throws {
        let client = try await harness.client(tenant: tenant())
        let made = try await client.create(given: "Quentin", family: "Zyxwvut")
        #expect(try await client.names("zyxwvu") == ["Quentin Zyxwvut"])
        #expect(try await client.names("zyxvwut") == ["Quentin Zyxwvut"])  // A typo of a word written a moment ago.
        let changed = try await client.update(made.id, paths: ["name.family"]) {
            var name = Switchboard_Contacts_V1_PersonName()
            name.family = "Abcdefg"
            $0.name = name
        }
        #expect(try await client.names("abcdefg") == [changed.name?.display ?? "?"])
        #expect(try await client.names("zyxwvut").isEmpty)
        _ = try await client.delete(made.id)
        #expect(try await client.names("abcdefg").isEmpty)
    }

    @Test("a tenant's search never sees another tenant's contacts or words; readers may search")
    func tenants() async throws {
        let (a, b) = (tenant(), tenant())
        _ = try await harness.client(tenant: a).create(given: "Secretive", family: "Person")
        let other = try await harness.client(tenant: b, roles: [.readOnly])
        #expect(try await other.names("secretive").isEmpty)
        #expect(try await other.names("secretiv").isEmpty)
        #expect(try await other.search("secretive").hits.isEmpty)
        let reader = try await harness.client(tenant: a, roles: [.readOnly])
        #expect(try await reader.names("secretive") == ["Secretive Person"])
    }

    @Test("two words rank as when every match is scored: a page from the name pairs equals the field sort's scores ordered")
    func twoWordsExact() async throws {
        let client = try await harness.client(tenant: tenant())
        // First and last names from a few words that are candidates of one another ("jon": jon, john, jonas, jones;
        // "smth": smith, smyth, smithers), also in middle and display names, addresses and tags, so that a pair's
        // contacts may hold a better candidate elsewhere; a fixed generator.
        var seed: UInt64 = 0x2545_F491_4F6C_DD1D
        func pick<T>(_ options: [T]) -> T {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return options[Int((seed >> 33) % UInt64(options.count))]
        }
        let first = ["jon", "john", "jonas", "jones", "smith"], last = ["smith", "smyth", "smithers", "jones", "jon", "lee"]
        for i in 0..<70 {
            var request = Switchboard_Contacts_V1_CreateContactRequest()
            var contact = Switchboard_Contacts_V1_Contact()
            var name = Switchboard_Contacts_V1_PersonName()
            name.given = pick(first).capitalized
            name.family = pick(last).capitalized
            if i % 6 == 0 { name.middle = pick(first + last) }
            if i % 7 == 0 { name.display = pick(["\(name.given) \(name.family)", "\(pick(last)) \(pick(first))"]) }
            contact.name = name
            var email = Switchboard_Contacts_V1_Email()
            email.address = "\(pick(first + last)).\(pick(first + last))\(i)@example.com"
            contact.emails = [email]
            if i % 5 == 0 { contact.tags = [pick(first + last)] }
            request.contact = contact
            _ = try await client.stub.createContact(request, options: client.options)
        }
        for text in ["jon smith", "john smyth", "jon smth", "smith jon", "jonas smithers", "jones lee", "jon nobody"] {
            let expected = byRelevance(try await client.allHits(text, pageSize: 9) { $0.sortBy = .createTime })
            let ranked = try await client.allHits(text, pageSize: 2)
            #expect(ranked.map(\.id) == expected.map(\.id), "\(text): \(ranked.count) ranked, \(expected.count) matches")
            #expect(ranked.map(\.score) == expected.map(\.score), "\(text)")
        }
    }

    @Test("under row-level security, as the service's role, search, typo, phone, tag and name-word conditions are answered by their indexes")
    func indexesUnderRowLevelSecurity() async throws {
        let t = tenant()
        // 5,000 contacts and 50,000 words of the tenant (written as the service writes them), so an index is worth using.
        try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                """
                INSERT INTO contacts.contacts (tenant_id, id, given_name, family_name, phones, contact_type, status, tags, owner_id,
                    created_at, created_by, updated_at, updated_by)
                SELECT $1, gen_random_uuid(), 'Filler' || g, 'Person', jsonb_build_array(jsonb_build_object('number', '+1555' || g,
                    'e164', '+1555' || g)), 1, 1, ARRAY['common'], 'o', now(), 'u', now(), 'u'
                FROM generate_series(1, 5000) g
                """, [.text(t)])
            try await c.query(
                "INSERT INTO contacts.search_terms (tenant_id, term) SELECT $1, md5(g::text) FROM generate_series(1, 50000) g", [.text(t)])
            try await c.query("ANALYZE contacts.contacts")
            try await c.query("ANALYZE contacts.search_terms")
        }
        // With a table scan priced out, the rare value's index is the plan, which PostgreSQL allows under a policy only
        // for a leakproof operator (provision.sql); without it, every tenant row is read and filtered.
        func plan(_ sql: String) async throws -> String {
            try await harness.pool.transaction(settings: ["app.tenant_id": t, "enable_seqscan": "off"]) { c in
                try await c.query("EXPLAIN (COSTS OFF) " + sql).rows.map { try $0.string("QUERY PLAN") }.joined(separator: "\n")
            }
        }
        let search = try await plan("SELECT id FROM contacts.contacts WHERE deleted_at IS NULL AND search_words @@ 'rare'::tsquery")
        #expect(search.contains("contacts_search"), "\(search)")
        let typo = try await plan("SELECT term FROM contacts.search_terms WHERE term ~ '^[[:alpha:]]' AND contacts.term_resembles(term, 'rarety')")
        #expect(typo.contains("search_terms_trigram"), "\(typo)")
        let phone = try await plan("SELECT id FROM contacts.contacts WHERE deleted_at IS NULL AND phone_numbers && ARRAY['+15550100']")
        #expect(phone.contains("contacts_by_phone_number"), "\(phone)")
        let tag = try await plan("SELECT id FROM contacts.contacts WHERE tags @> ARRAY['rare']")
        #expect(tag.contains("contacts_by_tag"), "\(tag)")
        // A one-word search's name tiers (migration 016) and a two-word search's name pairs (017), as the search writes them.
        for (index, condition) in [
            ("contacts_name_first", "search_names[1] = 'rare'"), ("contacts_name_second", "search_names[2] = 'rare'"),
            ("contacts_name_pair", "search_names[1] = 'rare' AND search_names[2] = 'person'"),
            (
                "contacts_name_rest",
                "cardinality(search_names) > 2 AND array_remove(array_remove(search_names[3:], search_names[1]), search_names[2]) @> ARRAY['rare']"
            ),
        ] {
            let name = try await plan("SELECT id FROM contacts.contacts WHERE deleted_at IS NULL AND \(condition) ORDER BY id LIMIT 21")
            #expect(name.contains(index), "\(name)")
        }
    }

    @Test("statements whose values cannot change their plan are planned once per connection; a tsquery's and a filter's at every execution")
    func plannedOnce() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        for i in 0..<3 { _ = try await client.create(given: "Plato", family: "Planner \(i)", tags: ["plans"]) }
        // One who holds "plato" outside the name: a one-word page of 5 reads the word tiers too.
        _ = try await client.create(given: "Someone", family: "Else", emails: ["plato@example.com"], tags: ["plans"])
        // The settings a search's transaction starts with (a plan per execution), on one connection throughout.
        let plans = try await harness.pool.transaction(settings: ["app.tenant_id": t, "plan_cache_mode": "force_custom_plan"]) { c in
            var statements = SearchStatements(connection: c)
            for _ in 0..<3 {
                for (text, tag) in [("plato", ""), ("plato planner", ""), ("plato", "plans"), ("plato planner", "plans")] {
                    var search = ContactSearch()
                    search.text = text
                    search.limit = 5
                    search.facets = [.status]
                    if !tag.isEmpty { search.tags = [tag] }
                    let (_, conditions, binds) = PostgresContactStore.filter(search, tenantID: t)
                    let (hits, query) = try await PostgresContactStore.ranked(search, conditions: conditions, binds: binds, on: &statements)
                    #expect(hits.hits.count == 4, "\(text) \(tag)")  // "planner" also stands for the tag "plans"
                    let facets = PostgresContactStore.FacetStatements(
                        counts: "SELECT 0 AS facet, 'x' AS value, count(*) AS n FROM contacts.contacts c WHERE c.search_words @@ $1::tsquery",
                        probe: "SELECT 0 AS n", binds: [.text(try #require(query))], probeBinds: [])
                    _ = try await PostgresContactStore.facets(search, facets, on: &statements)
                }
            }
            return try await c.query("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements").rows.map {
                (sql: try $0.string("statement"), generic: try $0.int("generic_plans"), custom: try $0.int("custom_plans"))
            }
        }
        func planned(_ marker: String, filtered: Bool? = nil) -> [(generic: Int64, custom: Int64)] {
            plans.filter { plan in
                plan.sql.contains(marker) && (filtered.map { plan.sql.contains("c.tags @>") == $0 } ?? true)
            }.map { ($0.generic, $0.custom) }
        }
        // The candidates by prefix (a range of a key), the page's rows, and the name tiers and pairs without a filter:
        // one generic plan each, reused.
        let byPrefix = plans.filter { $0.sql == PostgresContactStore.candidateStatements.prefix }.map { (generic: $0.generic, custom: $0.custom) }
        let byResemblance = plans.filter { $0.sql == PostgresContactStore.candidateStatements.typo }.map { (generic: $0.generic, custom: $0.custom) }
        for (marker, found) in [
            (
                "c.organization_names FROM contacts.contacts c WHERE c.tenant_id = $1 AND c.id = ANY",
                planned("c.organization_names FROM contacts.contacts c WHERE c.tenant_id = $1 AND c.id = ANY")
            ),
            ("tiers AS", planned("tiers AS", filtered: false)), ("pairs AS", planned("pairs AS", filtered: false)),
            ("candidates by prefix", byPrefix),
        ] {
            #expect(!found.isEmpty && found.allSatisfy { $0.custom == 0 && $0.generic >= 3 }, "\(marker): \(found)")
        }
        // With a filter, the tiers and pairs; the candidates by resemblance (the tenant's size decides their plan) and
        // the facets (their tsquery): planned at every execution.
        for (marker, found) in [
            ("tiers AS", planned("tiers AS", filtered: true)), ("pairs AS", planned("pairs AS", filtered: true)),
            ("candidates by resemblance", byResemblance), ("$1::tsquery", planned("$1::tsquery")),
        ] {
            #expect(!found.isEmpty && found.allSatisfy { $0.generic == 0 && $0.custom >= 3 }, "\(marker): \(found)")
        }
        // The word tiers' statements, whose text varies with the tiers, are not kept prepared.
        #expect(!plans.contains { $0.sql.contains("walk AS MATERIALIZED") || $0.sql.contains("OFFSET 0") })
    }

    @Test("crmctl contacts search prints ranked hits with what matched, facets, and the response as proto3 JSON")
    func crmctl() async throws {
        let t = tenant()
        let made = try await harness.client(tenant: t).create(given: "Grace", family: "Hopper", tags: ["navy"])
        let binary = URL(
            fileURLWithPath: ProcessInfo.processInfo.environment["SWITCHBOARD_CONTACTS_BIN"]
                ?? repositoryRoot.appendingPathComponent(".build/debug/contacts").path
        ).deletingLastPathComponent().appendingPathComponent("crmctl").path
        let env = [
            "CRMCTL_TOKEN": try await ServiceHarness.token(tenant: t, roles: [.readOnly]), "CRMCTL_CONTACTS_ADDR": "127.0.0.1:\(harness.port)",
        ]
        let (status, table) = try await runProcess(binary, ["contacts", "search", "grce", "hop", "--facet", "tag"], environment: env)
        #expect(status == 0, "\(table)")
        let lines = table.split(separator: "\n").map(String.init)
        #expect(
            lines.count == 3 && lines[1].contains(made.id) && lines[1].contains("name.given=Grace") && lines[1].contains("name.family=Hopper"),
            "\(table)")
        #expect(lines[2] == "facet tag: navy=1")
        let (jsonStatus, json) = try await runProcess(binary, ["contacts", "search", "hopper", "--output", "json"], environment: env)
        #expect(jsonStatus == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect((object["hits"] as? [[String: Any]])?.count == 1)
        let (badStatus, bad) = try await runProcess(binary, ["contacts", "search", "x", "--facet", "colour"], environment: env)
        #expect(badStatus != 0 && bad.contains("INVALID_ARGUMENT"), "\(bad)")
    }

    @Test("bounds: query length and words, tags, custom-field conditions, facets and page size are checked")
    func bounds() async throws {
        let client = try await harness.client(tenant: tenant())
        #expect(await code { _ = try await client.search(String(repeating: "a", count: 257)) } == .invalidArgument)
        #expect(await code { _ = try await client.search("a b c d e f g h i") } == .invalidArgument)
        #expect(await code { _ = try await client.search("a") { $0.tags = (0..<11).map { "t\($0)" } } } == .invalidArgument)
        #expect(await code { _ = try await client.search("a") { $0.customFields = ["Bad Key": "x"] } } == .invalidArgument)
        #expect(await code { _ = try await client.search("a") { $0.facets = Array(repeating: "tag", count: 9) } } == .invalidArgument)
        #expect(await code { _ = try await client.search("a", token: "not-a-token") } == .invalidArgument)
        // Eight words of any length are fine, and so is a page size above the largest (it is capped).
        _ = try await client.search("a b c d e f g h", pageSize: 10_000)
        // Operators of PostgreSQL's text search in the query are words like any other.
        #expect(try await client.search("a & !b | c:* <-> 'd'").hits.isEmpty)
    }

    @Test(
        "facets are the same whether the service counts the combinations of values or PostgreSQL ranks each facet: 20 values, ties by bytes"
    )
    func facetsCountedEitherWay() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let admin = try await harness.client(tenant: t, roles: [.admin])
        try await admin.defineRegion(["north", "South"])
        // 26 tags of one contact each and two of everyone's (a tie), a region on all but two (no value is not a value),
        // half of them "north" and half "South" (a tie, "South" first in bytes), and one contact without the word.
        for i in 0..<26 {
            var region = Google_Protobuf_Value()
            region.kind = .stringValue((i / 2) % 2 == 0 ? "north" : "South")
            _ = try await client.create(
                given: "Facet", family: "Count \(i)", custom: i >= 24 ? [:] : ["region": region],
                tags: ["solo-\(String(UnicodeScalar(UInt8(97 + i))))", "zed", "apple"].shuffled())
        }
        _ = try await client.create(given: "Other", family: "Person", tags: ["apple"])
        let store = PostgresContactStore(
            pool: harness.pool, feed: ChangeFeed(schema: "contacts"), idempotency: Idempotency(schema: "contacts"),
            publish: { try ContactsMapping.proto($0).protoJSONText() },
            publishRelationship: { try ContactsMapping.proto($0).protoJSONText() })
        var results: [[[String]]] = []
        for combinations in [2_000, 26, 25, 0] {
            for text in ["facet", ""] {
                var search = ContactSearch()
                search.text = text
                search.limit = 3
                search.facets = [.tag, .customField("region"), .status, .owner, .type, .tag]
                search.facetCombinations = combinations
                let hits = try await store.search(search, actor: SwitchboardServiceKit.Actor(tenantID: t, userID: "u"))
                #expect(!hits.facetsPartial)
                results.append(hits.facets.map { $0.map { "\($0.value)=\($0.count)" } })
            }
        }
        let facet = results[0]
        #expect(facet[0].count == 20 && facet[0].prefix(4) == ["apple=26", "zed=26", "solo-a=1", "solo-b=1"], "\(facet[0])")
        #expect(facet[0] == facet[5])
        #expect(facet[1] == ["South=12", "north=12"], "\(facet[1])")
        #expect(facet[2].count == 1 && facet[3].count == 1 && facet[4].count == 1 && facet[2].first?.hasSuffix("=26") == true)
        #expect(results[1][0].prefix(3) == ["apple=27", "zed=26", "solo-a=1"], "\(results[1][0])")
        for (index, result) in results.enumerated() {
            #expect(result == results[index % 2], "\(index)")
        }
        // The two ways are both taken: under the threshold the statement returns the combinations (facet -2), past it
        // each facet's ranked values (facet -1 and up) and no combination. The tenant's 27 contacts (26 with a tag of
        // their own) are 27 combinations.
        let cte = "WITH matched AS NOT MATERIALIZED (SELECT c.status, c.facet_tags FROM contacts.contacts c WHERE c.tenant_id = $1)"
        var kinds: [Set<Int64>] = []
        for combinations in [27, 26] {
            let (sql, binds) = PostgresContactStore.facetStatement([.status, .tag], combinations: combinations, cte: cte, binds: [.text(t)])
            let rows = try await harness.pool.query(settings: ["app.tenant_id": t], sql, binds).rows
            kinds.append(Set(try rows.map { try $0.int("facet") }))
        }
        #expect(kinds == [[-2], [-1, 0, 1]], "\(kinds)")
    }

    /// The tag facet groups matches by their tags as one text (`facet_tags`, an array's text form) and reads them back
    /// as a list: a tag with that form's own characters must come back whole.
    @Test("tags with quotes, commas, braces, backslashes, spaces or the word null come back whole in the tag facet, either way")
    func facetTagsWithArraySyntax() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let odd = [#"say "hi", bye"#, #"back\slash"#, "{braces}", "null", "two words", "comma,tag"]
        _ = try await client.create(given: "Odd", family: "Tags", tags: odd)
        let again = try await client.create(given: "Odd", family: "Again", tags: ["old"])
        // The text the facets group by follows a change of the tags (a stored generated column; a stale one would
        // still count "old").
        _ = try await client.update(again.id, paths: ["tags"]) { $0.tags = ["null", "plain"] }
        let store = PostgresContactStore(
            pool: harness.pool, feed: ChangeFeed(schema: "contacts"), idempotency: Idempotency(schema: "contacts"),
            publish: { try ContactsMapping.proto($0).protoJSONText() },
            publishRelationship: { try ContactsMapping.proto($0).protoJSONText() })
        for combinations in [2_000, 0] {
            var search = ContactSearch()
            search.text = "odd"
            search.facets = [.tag]
            search.facetCombinations = combinations
            let hits = try await store.search(search, actor: SwitchboardServiceKit.Actor(tenantID: t, userID: "u"))
            let counts = Dictionary(uniqueKeysWithValues: hits.facets[0].map { ($0.value, $0.count) })
            var expected = Dictionary(uniqueKeysWithValues: odd.map { ($0, 1) })
            expected["null"] = 2
            expected["plain"] = 1
            #expect(counts == expected, "combinations \(combinations): \(counts)")
        }
    }

    /// The facet statement is planned under its own costs (``PostgresContactStore/facetPlanCosts``), set in the statement
    /// that sets the plan mode: before the statement is planned, for the rest of the transaction only.
    @Test("a search statement's settings are made before it is planned, in the plan mode's statement, for its transaction only")
    func statementSettings() async throws {
        let t = tenant()
        let before = try await harness.pool.query(settings: ["app.tenant_id": t], "SELECT current_setting('random_page_cost') AS v", [])
        let settings = PostgresContactStore.facetPlanCosts
        let seen = try await harness.pool.transaction(settings: ["app.tenant_id": t, "plan_cache_mode": "force_custom_plan"]) { c in
            var statements = SearchStatements(connection: c)
            let probe =
                "SELECT current_setting('random_page_cost') AS r, current_setting('cpu_index_tuple_cost') AS i,"
                + " current_setting('plan_cache_mode') AS m"
            let first = try await statements.query(probe, [], planOnce: true, settings: settings)
            // Later statements of the transaction keep them; a switch of the plan mode alone changes only the mode.
            let later = try await statements.query(probe, [], planOnce: false)
            return try [first, later].map { try [$0.first?.string("r"), $0.first?.string("i"), $0.first?.string("m")] }
        }
        #expect(seen[0] == ["1.1", "0.1", "force_generic_plan"])
        #expect(seen[1] == ["1.1", "0.1", "force_custom_plan"])
        let after = try await harness.pool.query(settings: ["app.tenant_id": t], "SELECT current_setting('random_page_cost') AS v", [])
        #expect(try after.first?.string("v") == before.first?.string("v"))
        #expect(try before.first?.string("v") != "1.1")

        // The facet statement runs under its statements' settings: a statement reporting the cost it was planned
        // under as a facet value.
        var search = ContactSearch()
        search.facets = [.status]
        for (given, expected) in [(settings, "1.1"), ([], try before.first?.string("v") ?? "")] {
            let facets = try await harness.pool.transaction(settings: ["app.tenant_id": t, "plan_cache_mode": "force_custom_plan"]) { c in
                var statements = SearchStatements(connection: c)
                let reporting = PostgresContactStore.FacetStatements(
                    counts: "SELECT 0 AS facet, current_setting('random_page_cost') AS value, 1::int8 AS n", probe: "SELECT 0 AS n",
                    binds: [], probeBinds: [], settings: given)
                return try await PostgresContactStore.facets(search, reporting, on: &statements).facets
            }
            #expect(facets.first?.first?.value == expected)
        }
    }
}

/// Saved searches: private to their owner or shared in the tenant, run by id with a page of the caller's, deleted by
/// their owner or an admin.
@Suite("Contacts saved searches", .serialized)
final class SavedSearchTests {
    let harness: ContactsHarness
    init() async throws { harness = try await ContactsHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private func save(
        _ client: Client, name: String, shared: Bool, query: String, requestID: String = ""
    ) async throws -> Switchboard_Contacts_V1_SavedSearch {
        var request = Switchboard_Contacts_V1_CreateSavedSearchRequest()
        var saved = Switchboard_Contacts_V1_SavedSearch()
        saved.name = name
        saved.shared = shared
        var search = SearchRequest()
        search.query = query
        search.tags = ["vip"]
        search.facets = ["tag"]
        saved.search = search
        request.savedSearch = saved
        request.requestId = requestID
        return try await client.stub.createSavedSearch(request, options: client.options)
    }

    @Test("a saved search runs by id as saved, with the caller's page; private ones are their owner's; lists show own and shared")
    func saveAndRun() async throws {
        let t = "tenant-" + UUID().uuidString.prefix(8).lowercased()
        let (ada, bob) = (try await harness.client(tenant: t, user: "ada"), try await harness.client(tenant: t, user: "bob"))
        for i in 0..<3 { _ = try await ada.create(given: "Vera \(i)", family: "Important", tags: ["vip"]) }
        _ = try await ada.create(given: "Vera", family: "Ordinary")
        let mine = try await save(ada, name: "  My VIPs ", shared: false, query: "vera", requestID: "save-1")
        #expect(mine.name == "My VIPs" && mine.ownerId == "ada" && mine.search?.query == "vera")
        // A retried create returns the first response; the id reused for another search is refused.
        #expect(try await save(ada, name: "  My VIPs ", shared: false, query: "vera", requestID: "save-1").id == mine.id)
        #expect(
            await rpcError { _ = try await save(ada, name: "My VIPs", shared: false, query: "vera", requestID: "save-1") }?.code == .invalidArgument)
        let team = try await save(ada, name: "Team VIPs", shared: true, query: "important")

        let first = try await ada.search("", pageSize: 2) { $0.savedSearchId = mine.id }
        #expect(first.hits.count == 2 && first.facets.first?.counts.map(\.value) == ["vip"])
        let rest = try await ada.search("", pageSize: 2, token: first.page?.nextPageToken ?? "") { $0.savedSearchId = mine.id }
        #expect(rest.hits.count == 1)
        // Bob sees the shared one, not Ada's private one (NOT_FOUND, as if it did not exist).
        #expect(try await bob.search("") { $0.savedSearchId = team.id }.hits.count == 3)
        #expect(await code { _ = try await bob.search("") { $0.savedSearchId = mine.id } } == .notFound)
        var get = Switchboard_Contacts_V1_GetSavedSearchRequest()
        get.id = mine.id
        #expect(await code { _ = try await bob.stub.getSavedSearch(get, options: bob.options) } == .notFound)
        let listed = try await bob.stub.listSavedSearches(Switchboard_Contacts_V1_ListSavedSearchesRequest(), options: bob.options)
        #expect(listed.savedSearches.map(\.id) == [team.id])
        let own = try await ada.stub.listSavedSearches(Switchboard_Contacts_V1_ListSavedSearchesRequest(), options: ada.options)
        #expect(Set(own.savedSearches.map(\.id)) == [mine.id, team.id])
        // Another tenant sees none of it.
        let stranger = try await harness.client(tenant: t + "-other", user: "ada")
        #expect(await code { _ = try await stranger.search("") { $0.savedSearchId = team.id } } == .notFound)
        // A saved search runs as saved: other search fields with it are refused.
        #expect(await code { _ = try await ada.search("other") { $0.savedSearchId = mine.id } } == .invalidArgument)
    }

    @Test("only the owner or an admin deletes; a bad search is refused when saved, naming its field")
    func deleteAndValidate() async throws {
        let t = "tenant-" + UUID().uuidString.prefix(8).lowercased()
        let (ada, bob) = (try await harness.client(tenant: t, user: "ada"), try await harness.client(tenant: t, user: "bob"))
        let admin = try await harness.client(tenant: t, user: "root", roles: [.admin])
        let shared = try await save(ada, name: "Shared", shared: true, query: "x")
        var delete = Switchboard_Contacts_V1_DeleteSavedSearchRequest()
        delete.id = shared.id
        #expect(await code { _ = try await bob.stub.deleteSavedSearch(delete, options: bob.options) } == .permissionDenied)
        #expect(try await admin.stub.deleteSavedSearch(delete, options: admin.options).id == shared.id)
        #expect(await code { _ = try await ada.stub.deleteSavedSearch(delete, options: ada.options) } == .notFound)
        let reader = try await harness.client(tenant: t, user: "ada", roles: [.readOnly])
        #expect(await code { _ = try await self.save(reader, name: "No", shared: false, query: "x") } == .permissionDenied)

        var request = Switchboard_Contacts_V1_CreateSavedSearchRequest()
        var saved = Switchboard_Contacts_V1_SavedSearch()
        saved.name = "Bad"
        var search = SearchRequest()
        search.facets = ["colour"]
        saved.search = search
        request.savedSearch = saved
        let error = await rpcError { _ = try await ada.stub.createSavedSearch(request, options: ada.options) }
        #expect(error?.code == .invalidArgument && error?.message.contains("saved_search.search.facets[0]") == true, "\(String(describing: error))")
        saved.name = " "
        saved.search = SearchRequest()
        request.savedSearch = saved
        #expect(await code { _ = try await ada.stub.createSavedSearch(request, options: ada.options) } == .invalidArgument)
    }
}

/// The bounds a broad search runs within: a relevance order ranks a bounded sample, best words first; facets count a
/// bounded number of matches and say when they did.
@Suite("Contacts search bounds", .serialized)
final class SearchBoundsTests {
    let harness: ContactsHarness
    init() async throws {
        var limits = ContactsLimits()
        limits.searchRankedMatches = 3
        limits.searchFacetMatches = 4
        // The word tiers' first read ends inside the tenant, so their pages come from both reads.
        limits.searchWordTierWalk = 8
        harness = try await ContactsHarness.start(limits: limits)
    }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test(
        "a broad query of several words ranks at most the sample, the contacts holding its first word's best words first; facets over more are partial"
    )
    func bounded() async throws {
        let client = try await harness.client(tenant: "tenant-" + UUID().uuidString.prefix(8).lowercased())
        for i in 0..<4 { _ = try await client.create(given: "Marcellus", family: "Number \(i)", tags: ["bound"]) }
        for i in 0..<2 { _ = try await client.create(given: "Mar", family: "Exact \(i)", tags: ["bound"]) }
        let ranked = try await client.search("mar bound") { $0.facets = ["type"] }
        // The exact word's contacts come first, and no more than the sample is ranked: the matches it left out follow,
        // in id order.
        #expect(ranked.hits.count == 6)
        #expect(ranked.hits.prefix(2).allSatisfy { $0.contact?.name?.given == "Mar" }, "\(ranked.hits.map { $0.contact?.name?.display ?? "" })")
        #expect(ranked.hits[0].score >= ranked.hits[1].score && ranked.hits[1].score >= ranked.hits[2].score)
        let tail = ranked.hits.suffix(3).map { $0.contact?.id ?? "" }
        #expect(tail == tail.sorted() && Set(tail).isDisjoint(with: ranked.hits.prefix(3).map { $0.contact?.id ?? "" }))
        #expect(ranked.facets.first?.partial == true && ranked.facets.first?.counts.first?.count == 4)
        // Relevance pages have no ceiling: pages of one and of two, across the sample's end, give the same hits once each.
        for size: Int32 in [1, 2] {
            let paged = try await client.allHits("mar bound", pageSize: size)
            #expect(paged.map(\.id) == ranked.hits.map { $0.contact?.id ?? "" }, "page size \(size)")
            #expect(paged.map(\.score) == ranked.hits.map(\.score), "page size \(size)")
        }
        // Sorted by a field, every match is reachable; a narrow search's facets are whole.
        #expect(try await client.allIDs("mar", pageSize: 2, sort: .createTime).count == 6)
        let narrow = try await client.search("exact") { $0.facets = ["type"] }
        #expect(narrow.facets.first?.partial == false && narrow.facets.first?.counts.first?.count == 2)
    }

    @Test("sorted by a field, a word finds every word it begins, past the shortest ones a ranked search reads; and marks them")
    func everyPrefixByField() async throws {
        let client = try await harness.client(tenant: "tenant-" + UUID().uuidString.prefix(8).lowercased())
        // More words of five letters begin with "mar" than a word's prefix candidates: the 32 shortest.
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let short = (0..<PostgresContactStore.prefixCandidates + 1).map { "Mar\(letters[$0 / 26])\(letters[$0 % 26])" }
        for (i, given) in short.enumerated() { _ = try await client.create(given: given, family: "Short \(i)") }
        let long = try await client.create(given: "Marguerite", family: "Long")
        for sort in [SearchRequest.SortBy.createTime, .familyName] {
            let seen = try await client.allIDs("mar", pageSize: 10, sort: sort)
            #expect(seen.count == short.count + 1 && seen.contains(long.id), "\(sort): \(seen.count)")
        }
        let last = try await client.search("mar", pageSize: 1) {
            $0.sortBy = .createTime
            $0.descending = true
        }
        #expect(last.hits.first?.contact?.id == long.id)
        #expect(last.hits.first?.highlights.contains { $0.field == "name.given" } == true)
        // A bulk tag by the same text changes exactly those contacts.
        var bulk = Switchboard_Contacts_V1_BulkTagContactsRequest()
        var filter = SearchRequest()
        filter.query = "mar"
        bulk.filter = filter
        bulk.addTags = ["m"]
        let tagged = try await client.stub.bulkTagContacts(bulk, options: client.options)
        #expect(tagged.matched == Int64(short.count + 1) && tagged.changed == Int64(short.count + 1), "\(tagged)")
    }

    @Test("one word ranks every match exactly, page after page past the sample: the order of the scores a field sort computes")
    func oneWordExact() async throws {
        let client = try await harness.client(tenant: "tenant-" + UUID().uuidString.prefix(8).lowercased())
        // Names from a few words that begin one another ("mar", "marc", "marcus") or resemble them, at every place a
        // word can be: first and second name word, a middle name, a display name that repeats the name or not, an
        // address, a tag; some contacts without a name at all, one deleted. A fixed generator: the same data each run.
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func pick<T>(_ options: [T]) -> T {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return options[Int((seed >> 33) % UInt64(options.count))]
        }
        let vocabulary = ["mar", "marc", "mark", "marcus", "mary", "maria", "ann", "anna", "garcia", "smith", "rose"]
        var created: [String] = []
        for i in 0..<60 {
            var request = Switchboard_Contacts_V1_CreateContactRequest()
            var contact = Switchboard_Contacts_V1_Contact()
            var name = Switchboard_Contacts_V1_PersonName()
            if i % 9 == 8 {
                name.display = "— · —"  // no word: search_names is empty
            } else {
                name.given = pick(vocabulary).capitalized
                name.family = pick(vocabulary + ["lee", "young"]).capitalized
                if i % 4 == 0 { name.middle = pick(vocabulary) }
                if i % 5 == 0 { name.display = pick(["\(name.given) \(name.family)", "Dr \(pick(vocabulary)) X"]) }
            }
            contact.name = name
            var email = Switchboard_Contacts_V1_Email()
            email.address = "\(pick(vocabulary)).\(i)@\(pick(["example", "mark"])).com"
            contact.emails = [email]
            if i % 3 == 0 { contact.tags = [pick(vocabulary)] }
            request.contact = contact
            created.append(try await client.stub.createContact(request, options: client.options).id)
        }
        _ = try await client.delete(created[1])
        // Also under a filter (a tag), which the tiers apply while they walk.
        for (text, tag) in ["mar", "marc", "mark", "maria", "ann", "garcia", "smith", "rose", "example", "lee", "young", "nobody"].map({ ($0, "") })
            + [("mar", "mary"), ("ann", "anna"), ("smith", "garcia")]
        {
            func filter(_ request: inout SearchRequest) { if !tag.isEmpty { request.tags = [tag] } }
            // Every match with its score, from the field-sorted path (which scores in SQL and pages by creation time).
            let expected = byRelevance(
                try await client.allHits(text, pageSize: 7) {
                    $0.sortBy = .createTime
                    filter(&$0)
                })
            // The relevance pages, small enough that ties straddle them: the same contacts, scores and order.
            let ranked = try await client.allHits(text, pageSize: 4) { filter(&$0) }
            #expect(ranked.map(\.id) == expected.map(\.id), "\(text) [\(tag)]: \(ranked.count) ranked, \(expected.count) matches")
            #expect(ranked.map(\.score) == expected.map(\.score), "\(text) [\(tag)]")
            #expect(!ranked.contains { $0.id == created[1] }, "\(text): a deleted contact")
        }
        // More matches than the ranked sample (3 in these tests) are ranked and paged, not cut at it.
        #expect(try await client.allIDs("mar", pageSize: 2, sort: .relevance).count > 3)
    }

    @Test("a word held outside names ranks exactly whether its tier fills inside the first contacts by id (8 here) or past them")
    func wordTiersInAndPastTheWalk() async throws {
        let client = try await harness.client(tenant: "tenant-" + UUID().uuidString.prefix(8).lowercased())
        // Ids are time-ordered: the first eight created are the walk. Six of them hold "zeta" outside the name (a page
        // of 4 and one more fill inside it), then four more past it; one of the first six is named Zeta (a name tier).
        for i in 0..<14 {
            let inWalk = i < 6
            let holds = inWalk || (i >= 9 && i < 13)
            _ = try await client.create(
                given: i == 2 ? "Zeta" : "Person", family: "Number \(i)", emails: holds ? ["someone.\(i)@zeta.example"] : ["x\(i)@other.example"],
                tags: i % 2 == 0 ? ["even"] : [])
        }
        for tag in ["", "even"] {
            func filter(_ request: inout SearchRequest) { if !tag.isEmpty { request.tags = [tag] } }
            let expected = byRelevance(
                try await client.allHits("zeta", pageSize: 7) {
                    $0.sortBy = .createTime
                    filter(&$0)
                })
            #expect(expected.count == (tag.isEmpty ? 10 : 5))
            for size in [Int32(1), 2, 4] {
                let ranked = try await client.allHits("zeta", pageSize: size) { filter(&$0) }
                #expect(ranked.map(\.id) == expected.map(\.id), "[\(tag)] pages of \(size)")
                #expect(ranked.map(\.score) == expected.map(\.score), "[\(tag)] pages of \(size)")
            }
        }
    }

    @Test("two words whose name pairs fill the page rank it exactly though the sample (3) is smaller than the page")
    func twoWordsByNamePairs() async throws {
        let client = try await harness.client(tenant: "tenant-" + UUID().uuidString.prefix(8).lowercased())
        // Five of each of the best pairs, and contacts that hold the words elsewhere and score less.
        var made: [String: [String]] = [:]
        for (given, family) in [("Jon", "Smith"), ("Jon", "Smyth"), ("John", "Smith")] {
            for _ in 0..<5 { made["\(given) \(family)", default: []].append(try await client.create(given: given, family: family).id) }
        }
        _ = try await client.create(given: "Smith", family: "Jon")
        _ = try await client.create(given: "Ann", family: "Jon", emails: ["smith@example.com"])
        _ = try await client.create(given: "Jon", family: "Lee", tags: ["smith"])
        // "jon smth": Jon Smith and Jon Smyth score alike (smith and smyth are the same distance from "smth"), above
        // every other contact; a sample of 3 could not fill a page of 6.
        let page = try await client.search("jon smth", pageSize: 6)
        let best = Set(made["Jon Smith"]! + made["Jon Smyth"]!).sorted()
        #expect(page.hits.map { $0.contact?.id ?? "" } == Array(best.prefix(6)), "\(page.hits.map { $0.contact?.name?.display ?? "" })")
        #expect(Set(page.hits.map(\.score)).count == 1 && page.page?.nextPageToken.isEmpty == false)
    }

    @Test("facets at the bound: exactly as many matches are whole, one more is partial (without text, the newest counted)")
    func facetsAtTheBound() async throws {
        let client = try await harness.client(tenant: "tenant-" + UUID().uuidString.prefix(8).lowercased())
        // Four (the bound) Quinns tagged a, b and a; owners alternate; one more contact not a Quinn.
        for i in 0..<4 { _ = try await client.create(given: "Quinn", family: "Bound \(i)", tags: i % 2 == 0 ? ["a", "b"] : ["a"]) }
        func counts(_ response: Switchboard_Contacts_V1_SearchContactsResponse) -> [String: [String]] {
            Dictionary(uniqueKeysWithValues: response.facets.map { ($0.field, $0.counts.map { "\($0.value)=\($0.count)" }) })
        }
        for sort in [SearchRequest.SortBy.relevance, .createTime] {
            let whole = try await client.search("quinn") {
                $0.facets = ["tag", "status", "tag"]
                $0.sortBy = sort
            }
            #expect(whole.facets.map(\.partial) == [false, false, false], "\(sort)")
            #expect(whole.facets.first?.counts.map { "\($0.value)=\($0.count)" } == ["a=4", "b=2"], "\(sort)")
            #expect(whole.facets.last?.counts.map { "\($0.value)=\($0.count)" } == ["a=4", "b=2"], "\(sort)")
            #expect(whole.facets[1].counts.map(\.count) == [4], "\(sort)")
        }
        _ = try await client.create(given: "Other", family: "Person", tags: ["c"])
        // Five contacts, no text: the facets count four of them, the newest (the other person and the last three
        // Quinns, whatever the table's order), and say so, the same at every search.
        for _ in 0..<3 {
            let all = try await client.search("") { $0.facets = ["tag", "type"] }
            #expect(all.facets.map(\.partial) == [true, true], "\(counts(all))")
            #expect(all.facets.last?.counts.map(\.count) == [4], "\(counts(all))")
            #expect(all.facets.first?.counts.map { "\($0.value)=\($0.count)" } == ["a=3", "b=1", "c=1"], "\(counts(all))")
        }
        // A filter that leaves four: whole again.
        let tagged = try await client.search("") {
            $0.tags = ["a"]
            $0.facets = ["tag"]
        }
        #expect(tagged.facets.first?.partial == false && tagged.facets.first?.counts.map { "\($0.value)=\($0.count)" } == ["a=4", "b=2"])
    }

    @Test("pages that start from the name pairs go on through the sample and its tail without repeating a pair's contact")
    func pairsThenTail() async throws {
        let client = try await harness.client(tenant: "tenant-" + UUID().uuidString.prefix(8).lowercased())
        // Three contacts hold "mar" and "exact" outside the pair's places (3.0 each) and come first in the table, so the
        // sample of three is theirs; two "Mar Exact" (3.6, above the 3.3 any other contact can score) are the pairs.
        for i in 0..<3 { _ = try await client.create(given: "Exact", family: "Mar", emails: ["e\(i)@example.com"]) }
        let pairs = [
            try await client.create(given: "Mar", family: "Exact", emails: ["p0@example.com"]).id,
            try await client.create(given: "Mar", family: "Exact", emails: ["p1@example.com"]).id,
        ]
        let whole = try await client.search("mar exact", pageSize: 50)
        #expect(whole.hits.count == 5 && whole.hits.prefix(2).map { $0.contact?.id ?? "" } == pairs, "\(whole.hits.map(\.score))")
        // A page of one: the first comes from the pairs, the next from the sample path, which must rank the pairs too.
        for size: Int32 in [1, 2] {
            let paged = try await client.allHits("mar exact", pageSize: size)
            #expect(paged.map(\.id) == whole.hits.map { $0.contact?.id ?? "" }, "page size \(size)")
        }
    }

    @Test("two words with more matches than the sample rank a sample too; a name's prefix outranks an exact word elsewhere")
    func twoWordsAndNameFactor() async throws {
        let client = try await harness.client(tenant: "tenant-" + UUID().uuidString.prefix(8).lowercased())
        for i in 0..<4 { _ = try await client.create(given: "Marcellus", family: "Exact", emails: ["m\(i)@example.com"]) }
        _ = try await client.create(given: "Mar", family: "Exact")
        // Five matches, a sample of three: the exact first word's contact first, then two of the others, ranked; the
        // two the sample left out follow in id order.
        let two = try await client.search("mar exact")
        #expect(two.hits.count == 5)
        #expect(two.hits.first?.contact?.name?.given == "Mar", "\(two.hits.map { $0.contact?.name?.display ?? "" })")
        #expect(two.hits.prefix(3).map(\.score) == two.hits.prefix(3).map(\.score).sorted(by: >))
        let rest = two.hits.suffix(2).map { $0.contact?.id ?? "" }
        #expect(rest == rest.sorted())

        // One word: "mar" only in an address (weight 1 × 1) against "mar" beginning a given name (0.6 + 0.3 × 3/9 = 0.7,
        // × 1.8 = 1.26); and a contact with both scores the better of them.
        let other = try await harness.client(tenant: "tenant-" + UUID().uuidString.prefix(8).lowercased())
        let address = try await other.create(given: "Ann", family: "Lee", emails: ["mar@example.com"])
        let name = try await other.create(given: "Marcellus", family: "Ro")
        let both = try await other.create(given: "Marcellus", family: "Po", emails: ["mar@example.org"])
        let one = try await other.search("mar")
        #expect(
            Set(one.hits.prefix(2).map { $0.contact?.id ?? "" }) == [name.id, both.id],
            "\(one.hits.map { ($0.contact?.name?.display ?? "", $0.score) })")
        #expect(one.hits.last?.contact?.id == address.id)
        #expect(abs((one.hits.first?.score ?? 0) - 1.26) < 1e-9 && one.hits[0].score == one.hits[1].score)
        #expect(abs((one.hits.last?.score ?? 0) - 1.0) < 1e-9)
    }
}

/// BulkTagContacts: tags added and removed on every contact a search matches, in one transaction, idempotent, bounded.
@Suite("Contacts bulk tagging", .serialized)
final class BulkTagTests {
    let harness: ContactsHarness
    init() async throws {
        var limits = ContactsLimits()
        limits.bulkTagMaxContacts = 4
        harness = try await ContactsHarness.start(limits: limits)
    }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private func bulk(
        _ client: Client, query: String, add: [String] = [], remove: [String] = [], requestID: String = ""
    ) async throws -> Switchboard_Contacts_V1_BulkTagContactsResponse {
        var request = Switchboard_Contacts_V1_BulkTagContactsRequest()
        var filter = SearchRequest()
        filter.query = query
        request.filter = filter
        request.addTags = add
        request.removeTags = remove
        request.requestId = requestID
        return try await client.stub.bulkTagContacts(request, options: client.options)
    }

    @Test("every match gets the tags added and loses the removed ones, once; events, search and retries follow")
    func tags() async throws {
        let t = "tenant-" + UUID().uuidString.prefix(8).lowercased()
        let client = try await harness.client(tenant: t)
        var ids: [String] = []
        for i in 0..<3 { ids.append(try await client.create(given: "Zed \(i)", family: "Bulk", tags: ["keep", "old"]).id) }
        let bystander = try await client.create(given: "Other", family: "Person", tags: ["old"])
        let done = try await bulk(client, query: "zed", add: [" VIP ", "new", "vip"], remove: ["OLD"], requestID: "bulk-1")
        #expect(done.matched == 3 && done.changed == 3 && done.skippedTooManyTags == 0)
        for id in ids { #expect(try await client.get(id).tags == ["keep", "vip", "new"]) }
        #expect(try await client.get(bystander.id).tags == ["old"])
        // Found by the new tag at once; a retry replays the first answer and changes nothing more.
        #expect(try await client.search("", configure: { $0.tags = ["vip"] }).hits.count == 3)
        let events = { () async throws -> Int in
            Int(
                try await self.harness.pool.query(
                    settings: ["app.tenant_id": t],
                    "SELECT count(*) AS n FROM contacts.changes WHERE tenant_id = $1 AND kind = 2 AND changed_fields = '{tags}'", [.text(t)]
                ).first?.int("n") ?? 0)
        }
        #expect(try await events() == 3)
        #expect(try await bulk(client, query: "zed", add: [" VIP ", "new", "vip"], remove: ["OLD"], requestID: "bulk-1") == done)
        #expect(
            await code { _ = try await self.bulk(client, query: "zed", add: ["vip", "new"], remove: ["old"], requestID: "bulk-1") }
                == .invalidArgument)
        // Nothing left to change: matched, unchanged.
        let again = try await bulk(client, query: "zed", add: ["vip"])
        #expect(again.matched == 3 && again.changed == 0)
        #expect(try await events() == 3)
    }

    @Test("bounds: too many matches change nothing; tags are checked; a contact past 50 tags is skipped; readers may not")
    func bounds() async throws {
        let t = "tenant-" + UUID().uuidString.prefix(8).lowercased()
        let client = try await harness.client(tenant: t)
        for i in 0..<5 { _ = try await client.create(given: "Many \(i)", family: "Bulk") }
        let tooMany = await rpcError { _ = try await self.bulk(client, query: "many", add: ["x"]) }
        #expect(tooMany?.code == .failedPrecondition, "\(String(describing: tooMany))")
        #expect(try await client.search("", configure: { $0.tags = ["x"] }).hits.isEmpty)
        #expect(await code { _ = try await self.bulk(client, query: "many") } == .invalidArgument)
        #expect(await code { _ = try await self.bulk(client, query: "many", add: [""]) } == .invalidArgument)
        #expect(await code { _ = try await self.bulk(client, query: "many", add: (0..<21).map { "t\($0)" }) } == .invalidArgument)
        let full = try await client.create(given: "Full", family: "Tags", tags: (0..<50).map { "t\($0)" })
        let skipped = try await bulk(client, query: "full", add: ["extra"])
        #expect(skipped.matched == 1 && skipped.changed == 0 && skipped.skippedTooManyTags == 1)
        #expect(try await client.get(full.id).tags.count == 50)
        let reader = try await harness.client(tenant: t, roles: [.readOnly])
        #expect(await code { _ = try await self.bulk(reader, query: "full", remove: ["t1"]) } == .permissionDenied)
    }
}

/// Searches with facets take turns (`SWITCHBOARD_CONTACTS_FACET_SEARCHES_AT_ONCE`): one at once here, waiting at most
/// 150 ms.
@Suite("Contacts search turns", .serialized)
final class SearchGateTests {
    let harness: ContactsHarness
    init() async throws {
        var limits = ContactsLimits()
        limits.facetSearchesAtOnce = 1
        limits.facetSearchWaitMilliseconds = 150
        // The first search waits on a lock for as long as the test takes (a loaded machine's test run included).
        limits.searchTimeoutMilliseconds = 30_000
        harness = try await ContactsHarness.start(limits: limits)
    }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test("a search with facets waits while another runs, is RESOURCE_EXHAUSTED after its wait; one without does not wait")
    func searchesWaitTheirTurn() async throws {
        let t = "tenant-" + UUID().uuidString.prefix(8).lowercased()
        let client = try await harness.client(tenant: t)
        _ = try await client.create(given: "Gate", family: "Keeper")
        let admin = PostgresPool(
            configuration: PostgresPoolConfiguration(
                conninfo: adminConninfo.replacingOccurrences(of: "dbname=postgres", with: "dbname=\(harness.database)"), maxConnections: 1))
        defer { admin.close() }
        let first = try await admin.transaction { c in
            // The first search's statement on the contacts waits for this lock, holding the one place.
            _ = try await c.query("LOCK TABLE contacts.contacts IN ACCESS EXCLUSIVE MODE")
            let first = Task { try await client.names("keeper") { $0.facets = ["tag"] } }
            var waiting = false
            for _ in 0..<500 where !waiting {
                try await Task.sleep(for: .milliseconds(10))
                waiting =
                    try await c.query(
                        "SELECT count(*) AS n FROM pg_locks WHERE relation = 'contacts.contacts'::regclass AND NOT granted"
                    ).first?.int("n") ?? 0 > 0
            }
            #expect(waiting)
            // Another tenant's search too: one place, no share to spare.
            let other = try await harness.client(tenant: t + "-other")
            for caller in [client, other] {
                let started = ContinuousClock.now
                let error = await #expect(throws: RPCError.self) { _ = try await caller.names("keeper") { $0.facets = ["tag"] } }
                #expect(error?.code == .resourceExhausted, "\(String(describing: error))")
                #expect(error?.message.contains("1 searches with facets run at once and this one waited") == true, "\(String(describing: error))")
                #expect(ContinuousClock.now - started >= .milliseconds(150))
            }
            // A search without facets does not take a turn: it reaches the database, and waits there for the lock.
            let plain = Task { try await client.names("keeper") }
            var waiters = 0
            for _ in 0..<500 where waiters < 2 {
                try await Task.sleep(for: .milliseconds(10))
                waiters = Int(
                    try await c.query(
                        "SELECT count(*) AS n FROM pg_locks WHERE relation = 'contacts.contacts'::regclass AND NOT granted"
                    ).first?.int("n") ?? 0)
            }
            #expect(waiters == 2)
            plain.cancel()
            return first
        }
        #expect(try await first.value == ["Gate Keeper"])
        #expect(try await client.names("keeper") == ["Gate Keeper"])
    }
}
