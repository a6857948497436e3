import Foundation
import SwitchboardProtos
import SwitchboardRuntime
import SwitchboardServiceKit
import Synchronization
import Testing

@testable import ContactsService

/// Mapping records to contacts, planning a batch, and the export writers, pure.
@Suite("Import mapping, planning and export writers")
struct ImportMappingTests {
    static let definitions = [
        FieldDefinition(key: "age", displayName: "Age", type: .number), FieldDefinition(key: "vip", displayName: "VIP", type: .bool),
        FieldDefinition(key: "tier", displayName: "Tier", type: .enumeration, allowedValues: ["gold", "silver"]),
        FieldDefinition(key: "title", displayName: "Title", type: .string),
    ]

    static func csvContacts(_ text: String, mapping: [(String, String)] = []) throws -> [Result<ImportedContact, ContactsError>] {
        var mapper = try ImportMapper(format: .csv, mapping: mapping.map { (source: $0.0, target: $0.1) }, definitions: definitions)
        var reader = CSVReader()
        let records = reader.read(Array(text.utf8)) + reader.finish()
        mapper.setHeader(reader.header ?? [])
        return records.map { mapper.contact(from: $0) }
    }

    static func fields(_ result: Result<ImportedContact, ContactsError>) -> [String] {
        if case .failure(.invalid(let violations)) = result { return violations.map(\.field) }
        return []
    }

    @Test("CSV with an export's header maps without a mapping: names, labelled lists, type, status, tags, address, typed custom fields")
    func defaultHeader() throws {
        let rows = try Self.csvContacts(
            """
            id,name.given,name.family,emails,phones,type,status,tags,owner_id,address.lines,address.locality,custom_fields.age,custom_fields.vip,unknown
            x,Ada,Lovelace,work:ada@example.com; ada@home.example,+44 20 7946 0018,PERSON,customer,math; poetry,u-1,12 St James Sq; Flat 2,London,36,yes,?

            """)
        let ada = try rows[0].get()
        #expect(ada.data.name.given == "Ada" && ada.data.name.family == "Lovelace")
        #expect(ada.data.emails == [EmailAddress(address: "ada@example.com", label: "work"), EmailAddress(address: "ada@home.example")])
        #expect(ada.data.phones.map(\.number) == ["+44 20 7946 0018"])
        #expect(ada.data.status == .customer && ada.data.tags == ["math", "poetry"] && ada.data.ownerID == "u-1")
        #expect(ada.data.addresses.first?.lines == ["12 St James Sq", "Flat 2"] && ada.data.addresses.first?.locality == "London")
        #expect(ada.data.customFields == ["age": .number(36), "vip": .bool(true)])
        #expect(ada.givenFields.contains("custom_fields.age") && !ada.givenFields.contains("name.display"))
    }

    @Test("CSV: a record with text past the last column is invalid (the text would be lost); empty extra fields and short records pass")
    func recordWiderThanHeader() throws {
        let rows = try Self.csvContacts(
            "name.given,emails,tags\nTooMany,x@x.example,a,b,c\nTrailing,t@x.example,a,,\nShort\nJust,j@x.example,a\n")
        #expect(Self.fields(rows[0]) == ["row"])
        if case .failure(.invalid(let violations)) = rows[0] {
            #expect(violations.first?.reason == "TOO_MANY" && violations.first?.description.contains("field 4 holds text") == true, "\(violations)")
        }
        #expect(try rows[1].get().data.tags == ["a"])
        #expect(try rows[2].get().data.name.given == "Short")
        #expect(try rows[3].get().data.emails.map(\.address) == ["j@x.example"])
    }

    @Test("a mapping names its columns; values that are not their field's type are violations naming the contact field")
    func explicitMapping() throws {
        let rows = try Self.csvContacts(
            "First,Mail,Age,Kind,VIP\nAda,ada@example.com,old,robot,maybe\nBob,bob@example.com,41,company,no\n",
            mapping: [("First", "name.given"), ("Mail", "email:work"), ("Age", "custom_fields.age"), ("Kind", "type"), ("VIP", "custom_fields.vip")])
        #expect(Self.fields(rows[0]) == ["contact.custom_fields.age", "contact.type", "contact.custom_fields.vip"])
        let bob = try rows[1].get()
        #expect(bob.data.kind == .company && bob.data.emails == [EmailAddress(address: "bob@example.com", label: "work")])
        #expect(bob.data.customFields == ["age": .number(41), "vip": .bool(false)])
    }

    @Test("a mapping to an unknown target or an undefined custom field is refused before any row")
    func badMapping() {
        #expect(throws: ContactsError.invalid([Violation("options.mapping[0].target", "\"nickname\" is not a contact field an import fills")])) {
            _ = try ImportMapper(format: .csv, mapping: [(source: "a", target: "nickname")], definitions: [])
        }
        do {
            _ = try ImportMapper(format: .csv, mapping: [(source: "a", target: "custom_fields.nope")], definitions: Self.definitions)
            Issue.record("expected a refusal")
        } catch ContactsError.invalid(let violations) {
            #expect(violations.map(\.field) == ["options.mapping[0].target"])
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test("vCard: the standard properties map by themselves, a mapping adds others (TITLE), a company takes ORG as its name")
    func vcardMapping() throws {
        let mapper = try ImportMapper(format: .vcard, mapping: [(source: "title", target: "custom_fields.title")], definitions: Self.definitions)
        var reader = VCardReader()
        let records = reader.read(ImportReaderTests.vcard3) + reader.finish()
        let ada = try mapper.contact(from: records[0]).get()
        #expect(ada.data.name.given == "Ada" && ada.data.name.family == "Lovelace" && ada.data.name.prefix == "Lady")
        #expect(ada.data.name.display == "Ada Lovelace", "FN differs from the parts' name (it has no prefix): kept as the display name")
        #expect(ada.data.emails == [EmailAddress(address: "ada@example.com", label: "work", primary: true)])
        #expect(ada.data.phones.first?.label == "cell")
        #expect(ada.data.addresses.first?.regionCode == "GB" && ada.data.addresses.first?.lines == ["12 St James", "Square"])
        #expect(ada.data.tags == ["math", "poetry, early"])
        #expect(ada.data.customFields["title"] == .string("Countess"))
        let engines = try mapper.contact(from: records[1]).get()
        #expect(engines.data.kind == .company && engines.data.name.display == "Analytical Engines Ltd")
    }

    @Test("JSON lines with a mapping: dotted paths into objects, arrays as several values")
    func jsonMapping() throws {
        let mapper = try ImportMapper(
            format: .jsonLines, mapping: [(source: "person.first", target: "name.given"), (source: "mails", target: "emails")],
            definitions: [])
        let json = try JSON.parse(#"{"person":{"first":"Ada"},"mails":["a@example.com","b@example.com"],"other":1}"#)
        let ada = try mapper.contact(from: SourceRecord(row: 1, endOffset: 0, content: .json(json))).get()
        #expect(ada.data.name.given == "Ada" && ada.data.emails.map(\.address) == ["a@example.com", "b@example.com"])
    }

    // MARK: Planning

    static let actor = Actor(tenantID: "t", userID: "importer")

    static func row(_ n: Int, _ emails: [String], phones: [String] = [], tags: [String] = [], given: String = "Row") -> ImportBatchRow {
        var data = ContactData()
        data.name.given = given
        data.emails = emails.map { EmailAddress(address: $0) }
        data.phones = phones.map { PhoneNumber(number: $0) }
        data.tags = tags
        try? ContactRules.validate(&data, definitions: [], requireAllRequiredFields: false)
        var fields: Set<String> = emails.isEmpty ? [] : ["emails"]
        if !tags.isEmpty { fields.insert("tags") }
        if !phones.isEmpty { fields.insert("phones") }
        if given != "Row" { fields.insert("name.given") }
        return ImportBatchRow(row: n, contact: ImportedContact(data: data, givenFields: fields), failure: nil)
    }

    static func planner(_ policy: DuplicatePolicy, phone: Bool = false) -> ImportPlanner {
        var settings = ImportSettings(importID: "i", fingerprint: "f")
        settings.policy = policy
        settings.matchPhone = phone
        return ImportPlanner(settings: settings, definitions: [], maxContactBytes: 1 << 18, actor: actor)
    }

    static func record(_ id: UUID, email: String, tags: [String] = []) -> ContactRecord {
        var data = ContactData()
        data.name.given = "Stored"
        data.emails = [EmailAddress(address: email, primary: true)]
        data.tags = tags
        data.ownerID = "someone"
        return ContactRecord(id: id, data: data, version: 3, createdAt: Date(), createdBy: "x", updatedAt: Date(), updatedBy: "x", deletedAt: nil)
    }

    @Test("skip: a row whose address an earlier row of the batch or a stored contact holds is a duplicate of that contact")
    func planSkip() {
        let stored = UUID.random()
        var existing = ImportExisting()
        existing.emailHolders["old@example.com"] = stored
        let plan = Self.planner(.skip).plan(
            [Self.row(1, ["new@example.com"]), Self.row(2, ["NEW@example.com"]), Self.row(3, ["old@example.com"]), Self.row(4, [])],
            existing: existing, now: Date(), newID: { UUID.random() })
        #expect(plan.results.map(\.outcome) == [.created, .skippedDuplicate, .skippedDuplicate, .created])
        #expect(plan.results[1].contactID == plan.results[0].contactID)
        #expect(plan.results[2].contactID == stored)
        #expect(plan.creates.count == 2 && plan.creates.allSatisfy { $0.data.ownerID == "importer" })
    }

    @Test("update: the stored contact gains the row's tags and addresses; a later row updates a contact an earlier row created")
    func planUpdate() {
        let (stored, existing) = Self.storedHolder()
        let plan = Self.planner(.update).plan(
            [
                Self.row(1, ["old@example.com", "second@example.com"], tags: ["b"]), Self.row(2, ["fresh@example.com"], given: "Ann"),
                Self.row(3, ["fresh@example.com"], tags: ["c"]),
            ], existing: existing, now: Date(), newID: { UUID.random() })
        #expect(plan.results.map(\.outcome) == [.updated, .created, .updated], "\(plan.results[0].violations)")
        #expect(plan.updates.count == 1)
        #expect(plan.updates[0].record.data.tags == ["a", "b"] && plan.updates[0].record.data.emails.count == 2)
        #expect(plan.updates[0].expectedVersion == 3 && plan.updates[0].changedFields == ["emails", "tags"])
        #expect(plan.creates.count == 1 && plan.creates[0].data.tags == ["c"] && plan.creates[0].data.name.given == "Ann")
        #expect(plan.results[2].contactID == plan.creates[0].id)
    }

    @Test("create: no matching, so a row with a held address is invalid naming the address; the ledger's rows are reported as resumed")
    func planCreate() {
        var existing = ImportExisting()
        existing.emailHolders["old@example.com"] = UUID.random()
        let done = UUID.random()
        existing.ledger[1] = (.created, done)
        let plan = Self.planner(.create).plan(
            [Self.row(1, ["x@example.com"]), Self.row(2, ["a@example.com", "old@example.com"])], existing: existing, now: Date(),
            newID: { UUID.random() })
        #expect(plan.results[0] == ImportRowResult(row: 1, outcome: .created, contactID: done, resumed: true))
        #expect(plan.results[1].outcome == .invalid && plan.results[1].violations.map(\.field) == ["contact.emails[1].address"])
        #expect(plan.creates.isEmpty)
    }

    @Test("phones: a number exactly one contact holds matches it; a number two contacts share matches neither")
    func planPhones() {
        let one = UUID.random()
        var existing = ImportExisting()
        existing.phoneHolders["+442079460018"] = [one]
        existing.phoneHolders["+442079460019"] = [UUID.random(), UUID.random()]
        let plan = Self.planner(.skip, phone: true).plan(
            [Self.row(1, [], phones: ["+44 20 7946 0018"]), Self.row(2, [], phones: ["+44 20 7946 0019"])], existing: existing, now: Date(),
            newID: { UUID.random() })
        #expect(plan.results.map(\.outcome) == [.skippedDuplicate, .created])
        #expect(plan.results[0].contactID == one)
    }

    /// Plans `batches` in order as a dry run does, each on top of what the earlier ones would write.
    static func preview(
        _ batches: [[ImportBatchRow]], policy: DuplicatePolicy, phone: Bool = false, existing: ImportExisting = ImportExisting(),
        maxBytes: Int = 1 << 20
    ) -> (results: [[ImportRowResult]], plans: [ImportPlan], preview: ImportPreview) {
        var settings = ImportSettings(importID: "i", fingerprint: "f")
        settings.policy = policy
        settings.matchPhone = phone
        settings.dryRun = true
        let planner = Self.planner(policy, phone: phone)
        let preview = ImportPreview(maxBytes: maxBytes)
        let plans = batches.map { rows in
            preview.plan(rows, existing: existing, settings: settings) { seen, newID in planner.plan(rows, existing: seen, now: Date(), newID: newID)
            }
        }
        return (plans.map(\.results), plans, preview)
    }

    /// What the store reads for a contact holding "old@example.com", tagged "a".
    static func storedHolder() -> (id: UUID, existing: ImportExisting) {
        let stored = UUID.random()
        var existing = ImportExisting()
        existing.emailHolders["old@example.com"] = stored
        existing.records[stored] = Self.record(stored, email: "old@example.com", tags: ["a"])
        return (stored, existing)
    }

    @Test("a dry run's later batch sees what its earlier batches would create: duplicates by address and number, taken addresses")
    func previewAcrossBatches() {
        let stored = UUID.random()
        var existing = ImportExisting()
        existing.emailHolders["old@example.com"] = stored
        let first = [Self.row(1, ["a@example.com"], phones: ["+44 20 7946 0018"]), Self.row(2, ["old@example.com"])]
        let second = [Self.row(3, ["A@example.com"]), Self.row(4, ["b@example.com"], phones: ["+44 20 7946 0018"]), Self.row(5, ["old@example.com"])]

        let skip = Self.preview([first, second], policy: .skip, phone: true, existing: existing).results
        #expect(skip.map { $0.map(\.outcome) } == [[.created, .skippedDuplicate], [.skippedDuplicate, .skippedDuplicate, .skippedDuplicate]])
        // Only a stored contact's id is given; the would-be contact of row 1 has none.
        #expect(skip.joined().map(\.contactID) == [nil, stored, nil, nil, stored])

        let create = Self.preview([first, second], policy: .create, existing: existing).results
        #expect(create.map { $0.map(\.outcome) } == [[.created, .invalid], [.invalid, .created, .invalid]])
        #expect(create[1][0].violations.map(\.reason) == ["ALREADY_EXISTS"])

        // Without phone matching a shared number is no duplicate.
        let unmatched = Self.preview([first, second], policy: .skip, existing: existing).results
        #expect(unmatched[1].map(\.outcome) == [.skippedDuplicate, .created, .skippedDuplicate])
    }

    @Test("update: a later batch's row merges into the state an earlier batch would leave, of a new contact and of a stored one")
    func previewUpdates() {
        let (stored, existing) = Self.storedHolder()
        let plans = Self.preview(
            [
                [Self.row(1, ["old@example.com", "extra@example.com"], tags: ["b"]), Self.row(2, ["new@example.com"], tags: ["n"])],
                [Self.row(3, ["extra@example.com"], tags: ["c"]), Self.row(4, ["NEW@example.com"], tags: ["m"])],
            ], policy: .update, existing: existing
        ).plans
        #expect(plans[0].results.map(\.outcome) == [.updated, .created])
        // The address row 1 would add to the stored contact is its, and the tags row 1 would add are kept.
        let two = plans[1]
        #expect(two.results.map(\.outcome) == [.updated, .updated])
        #expect(two.results.map(\.contactID) == [stored, nil])
        #expect(two.updates.map(\.record.data.tags) == [["a", "b", "c"], ["n", "m"]])
        #expect(two.updates[0].changedFields == ["tags"])
    }

    @Test("the memory is bounded: the batch that passes it is previewed in full and marks where previews stop")
    func previewBound() {
        let batches = (0..<4).map { b in (1...5).map { Self.row(b * 5 + $0, ["r\(b * 5 + $0)@example.com"]) } }
        // 96 bytes an address: 10 rows fit in 960 bytes, the 11th passes it.
        let (results, _, preview) = Self.preview(Array(batches.prefix(3)), policy: .skip, maxBytes: 960)
        #expect(results.joined().allSatisfy { $0.outcome == .created })
        #expect(preview.fullAfterRow == 15)
        #expect(Self.preview(Array(batches.prefix(2)), policy: .skip, maxBytes: 960).preview.fullAfterRow == nil)
    }

    @Test("turns: a batch goes on once every batch before it has ended, whatever order they end in")
    func turns() async throws {
        let turns = ImportTurns()
        await turns.wait(for: 0)
        let gone = Gone()
        func settled(_ expected: Set<Int>) async throws -> Set<Int> { try await gone.settled(expected) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 1...3 {
                group.addTask {
                    await turns.wait(for: index)
                    gone.list.withLock { $0.append(index) }
                }
            }
            // Batch 2 ends before 0 and 1: no later batch may go.
            turns.end(2)
            #expect(try await settled([]) == [])
            // 0 ends: 1 goes; 2 waits for 1.
            turns.end(0)
            #expect(try await settled([1]) == [1])
            // 1 ends: 2 goes, and so does 3, since 2 has ended already.
            turns.end(1)
            #expect(try await settled([1, 2, 3]) == [1, 2, 3])
            try await group.waitForAll()
        }
        // A batch asking again (a transaction run again) goes at once.
        await turns.wait(for: 3)
    }

    @Test("turns: a batch asks for a connection once every batch before it holds one or has ended")
    func connectionTurns() async throws {
        let turns = ImportTurns()
        await turns.turn(0).connect()
        let gone = Gone()
        func settled(_ expected: Set<Int>) async throws -> Set<Int> { try await gone.settled(expected) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 1...3 {
                group.addTask {
                    await turns.turn(index).connect()
                    gone.list.withLock { $0.append(index) }
                }
            }
            #expect(try await settled([]) == [])
            // 0 holds its connection: 1 may ask; 2 waits for 1.
            turns.turn(0).connected()
            #expect(try await settled([1]) == [1])
            // 1 ends without a connection (its pool wait failed): 2 may ask; 3 waits for 2.
            turns.end(1)
            #expect(try await settled([1, 2]) == [1, 2])
            turns.turn(2).connected()
            #expect(try await settled([1, 2, 3]) == [1, 2, 3])
            try await group.waitForAll()
        }
        // Holding a connection is not an end: 1 may not write until 0 has ended.
        let wrote = Gone()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await turns.turn(1).write()
                wrote.list.withLock { $0.append(1) }
            }
            try await Task.sleep(for: .milliseconds(50))
            #expect(wrote.list.withLock { $0 }.isEmpty)
            turns.end(0)
            try await group.waitForAll()
        }
        #expect(wrote.list.withLock { $0 } == [1])
        // An end after the batch connected, or a second end, changes nothing.
        turns.end(2)
        turns.end(2)
        turns.turn(2).connected()
        turns.end(3)
        await turns.turn(4).connect()
        await turns.turn(4).write()
    }

    @Test("a would-be contact's id is never a stored contact's")
    func wouldBeIDs() {
        var memory = ImportPreviewMemory(maxBytes: 0)
        let ids = (0..<3).map { _ in memory.newID() }
        #expect(Set(ids).count == 3 && ids.allSatisfy(ImportPreviewMemory.isWouldBe))
        #expect(!ImportPreviewMemory.isWouldBe(UUID.timeOrdered()) && !ImportPreviewMemory.isWouldBe(UUID.random()))
    }

    // MARK: Writers

    static func sample() -> ContactRecord {
        var data = ContactData()
        data.name.given = "Ada"
        data.name.family = "Love, \"lace\""
        data.emails = [EmailAddress(address: "ada@example.com", label: "work"), EmailAddress(address: "a@home.example", primary: true)]
        data.phones = [PhoneNumber(number: "+44 20 7946 0018", label: "cell", primary: true, e164: "+442079460018")]
        var address = PostalAddress()
        address.lines = ["12 St James Sq", "Flat 2"]
        address.locality = "London"
        address.regionCode = "GB"
        data.addresses = [address]
        data.tags = ["math", "poetry"]
        data.status = .customer
        data.ownerID = "u-1"
        data.customFields = ["age": .number(36), "vip": .bool(true), "title": .string("Countess of Lovelace; mathematician\nand writer")]
        return ContactRecord(
            id: UUID.random(), data: data, version: 1, createdAt: Date(), createdBy: "u", updatedAt: Date(), updatedBy: "u", deletedAt: nil)
    }

    @Test("CSV export reads back through the CSV reader and the default mapping as the same contact (primary first)")
    func csvRoundTrip() throws {
        let record = Self.sample()
        let writer = ContactCSVWriter(fields: .all, customKeys: ["age", "title", "vip", "tier"])
        let text = writer.header + writer.row(record)
        let back = try #require(try Self.csvContacts(text).first).get()
        var expected = record.data
        expected.emails = [expected.emails[1], expected.emails[0]]
        var data = back.data
        try ContactRules.validate(&data, definitions: Self.definitions, requireAllRequiredFields: false)
        try ContactRules.validate(&expected, definitions: Self.definitions, requireAllRequiredFields: false)
        #expect(data == expected)
    }

    @Test("spreadsheet-safe CSV writes a cell that would run as a formula as text; the default file is unchanged")
    func csvSpreadsheetSafe() throws {
        var record = Self.sample()
        record.data.name.given = #"=HYPERLINK("http://x.example","Click")"#
        record.data.name.family = "@SUM(A1)"
        record.data.tags = ["-2+3", "plain"]
        let safe = ContactCSVWriter(fields: .all, customKeys: [], spreadsheetSafe: true).row(record)
        #expect(safe.contains(#""'=HYPERLINK(""http://x.example"",""Click"")""#), "\(safe)")
        #expect(safe.contains(",'@SUM(A1),") && safe.contains("'-2+3; plain"), "\(safe)")
        let plain = ContactCSVWriter(fields: .all, customKeys: []).row(record)
        #expect(!plain.contains("'=") && !plain.contains("'@") && plain.contains(",@SUM(A1),"))
        for (cell, expected) in [
            ("=1", "'=1"), ("+1", "'+1"), ("-1", "'-1"), ("@a", "'@a"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("a=1", "a=1"), ("", ""),
        ] {
            #expect(SpreadsheetSafety.defused(cell) == expected)
        }
        // The one CSV line writer every export uses (contacts' export, analytics' reports).
        #expect(
            CSV.line(["a", "b,c", "say \"hi\"", "x\ny", " lead", "trail ", "=1"])
                == "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\",\" lead\",\"trail \",=1\r\n")
        #expect(CSV.line(["=1", "-2,3"], spreadsheetSafe: true) == "'=1,\"'-2,3\"\r\n")
    }

    @Test("CSV lists keep a ';' in a tag, address line or label, a ':' in a label and backslashes, through export and import")
    func csvListEscapes() throws {
        var record = Self.sample()
        record.data.tags = ["a;b", "c\\", "d\\;e", "x:y", "back\\slash", "end;"]
        record.data.emails = [
            EmailAddress(address: "ada@example.com", label: "home; office", primary: true),
            EmailAddress(address: "\"a:b;c\"@example.com", label: ""),
            EmailAddress(address: "c@example.com", label: "a:b\\"),
            EmailAddress(address: "d@example.com", label: "me@work"),
        ]
        record.data.phones = [PhoneNumber(number: "+44 20 7946 0018", label: "desk:2;b", primary: true, e164: "+442079460018")]
        record.data.addresses[0].lines = ["12; St James Sq", "C:\\Flat 2\\"]
        let writer = ContactCSVWriter(fields: .all, customKeys: ["age", "title", "vip", "tier"])
        let text = writer.header + writer.row(record)
        #expect(text.contains("a\\;b; c\\\\; d\\\\\\;e; x:y; back\\slash; end\\;"), "\(text)")
        var data = try #require(try Self.csvContacts(text).first).get().data
        var expected = record.data
        try ContactRules.validate(&data, definitions: Self.definitions, requireAllRequiredFields: false)
        try ContactRules.validate(&expected, definitions: Self.definitions, requireAllRequiredFields: false)
        #expect(data == expected)
        #expect(data.tags.contains("a;b") && data.emails[2].label == "a:b\\" && data.addresses[0].lines[0] == "12; St James Sq")
    }

    @Test("CSV writes a column group per address (address.*, address2.* …) and reads them back in order; a missing one is skipped")
    func csvAddresses() throws {
        var record = Self.sample()
        var second = PostalAddress()
        second.label = "work"
        second.lines = ["1; Main St"]
        second.locality = "Leeds"
        var third = PostalAddress()
        third.locality = "York"
        record.data.addresses += [second, third]
        let writer = ContactCSVWriter(fields: .all, customKeys: [], addresses: 4)
        #expect(writer.header.contains("address.region_code,address2.label,") && writer.header.contains("address4.region_code"))
        #expect(!writer.header.contains("address5"))
        var data = try #require(try Self.csvContacts(writer.header + writer.row(record)).first).get().data
        #expect(data.addresses == record.data.addresses)
        // One address, one group; a file giving only the third group's columns gives one address.
        #expect(!ContactCSVWriter(fields: .all, customKeys: [], addresses: 1).header.contains("address2"))
        data = try #require(try Self.csvContacts("name.given,address3.locality\r\nAda,Bath\r\n").first).get().data
        #expect(data.addresses.map(\.locality) == ["Bath"])
        // One spelling per number, 2 to 10.
        #expect(ImportTarget.parse("address10.postal_code") == .address(.postalCode, number: 10))
        for name in ["address1.label", "address02.label", "address11.label", "address+2.label", "address2.street", "address2"] {
            #expect(ImportTarget.parse(name) == nil, "\(name)")
        }
    }

    @Test("a record's digest is FNV-1a over its kind, values, list lengths and a CSV header's: fixed across releases (a ledger holds it)")
    func recordDigest() {
        func digest(_ content: SourceRecord.Content) -> Int64 { SourceRecord(row: 1, endOffset: 0, content: content).digest() }
        // Computed outside Swift: FNV-1a 64 over each text's bytes and 0xFF ("csv", the header's digest in hex, "0"
        // without one, then the cells).
        #expect(digest(.cells(["a", "bc"])) == -1_242_884_422_310_013_741)
        // A CSV row's digest holds its header's: the same cells under other column names are another row.
        #expect(SourceRecord.headerDigest(["x"]) == 644_517_256_638_675_560)
        let named = SourceRecord(row: 1, endOffset: 0, content: .cells(["a", "bc"])).digest(header: SourceRecord.headerDigest(["x"]))
        #expect(named == 5_631_846_600_918_826_790)
        #expect(digest(.cells(["ab", "c"])) != digest(.cells(["a", "bc"])))
        #expect(digest(.cells(["a"])) != digest(.fields([SourceField(key: "a", value: "")])))
        #expect(digest(.json(.object(["b": .string("1"), "a": .null]))) == digest(.json(.object(["a": .null, "b": .string("1")]))))
        #expect(digest(.unreadable(Violation("row", "x"))) == 0)
    }

    @Test("a list cell from another program: a backslash before other text stays, an unlabelled ':' reads as before")
    func listCellsFromElsewhere() {
        #expect(ListCell.items(#"C:\dir; a\;b ;; \n"#).map { ListCell.unescaped($0) } == [#"C:\dir"#, "a;b", #"\n"#])
        #expect(ListCell.labelled("work: a@example.com")! == ("work", "a@example.com"))
        #expect(ListCell.labelled(#"a\:b:c"#)! == ("a:b", "c"))
        #expect(ListCell.labelled("x@y:z", isLabel: { label, _ in !label.contains("@") }) == nil)
        #expect(ListCell.unescaped(#"trailing\"#) == #"trailing\"#)
        // Backslashes before anything but `;`, a label's `:` or the end are themselves, however many.
        #expect(ListCell.items(#"\\server\share; C:\\dir\\x"#).map { ListCell.unescaped($0) } == [#"\\server\share"#, #"C:\\dir\\x"#])
        #expect(ListCell.escaped(#"\\server\share"#) == #"\\server\share"#)
        for text in ["", "plain", ";", "\\", "\\\\;", "a:b;c\\", "é;ü\\:", "\\\\x\\", ":\\:\\\\;"] {
            #expect(ListCell.unescaped(ListCell.escaped(text, colons: true), colons: true) == text)
            #expect(ListCell.items(ListCell.escaped(text) + "; z").map { ListCell.unescaped($0) } == (text.isEmpty ? [] : [text]) + ["z"])
        }
    }

    @Test("vCard export (3.0 and 4.0): lines folded at 75 octets, and read back as the same contact")
    func vcardRoundTrip() throws {
        var record = Self.sample()
        record.data.name.middle = String(repeating: "Ünïcödé ", count: 20) + "x"
        for version in [3, 4] {
            let text = VCardWriter(version: version, fields: .all).card(record)
            for line in text.components(separatedBy: "\r\n") { #expect(line.utf8.count <= 75) }
            var reader = VCardReader()
            let records = reader.read(Array(text.utf8)) + reader.finish()
            let mapper = try ImportMapper(format: .vcard, mapping: [], definitions: Self.definitions)
            var data = try mapper.contact(from: try #require(records.first)).get().data
            var expected = record.data
            try ContactRules.validate(&data, definitions: Self.definitions, requireAllRequiredFields: false)
            try ContactRules.validate(&expected, definitions: Self.definitions, requireAllRequiredFields: false)
            #expect(data == expected, "vCard \(version)")
        }
    }
}

/// The batches that went on, in the turns test.
private final class Gone: Sendable {
    let list = Mutex<[Int]>([])

    /// The batches gone on, once they are `expected` or after a second of waiting for them to be.
    func settled(_ expected: Set<Int>) async throws -> Set<Int> {
        for _ in 0..<200 where Set(list.withLock { $0 }) != expected { try await Task.sleep(for: .milliseconds(5)) }
        return Set(list.withLock { $0 })
    }
}
