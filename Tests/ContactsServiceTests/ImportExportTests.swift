import Foundation
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import Synchronization
import Testing

@testable import ContactsService

typealias ImportRequest = Switchboard_Contacts_V1_ImportContactsRequest
typealias ImportResponse = Switchboard_Contacts_V1_ImportContactsResponse

/// ImportContacts and ExportContacts over HTTP/2 and PostgreSQL: per-row results, dry runs, duplicates, resuming an
/// interrupted import, tenant isolation, bounds, and export → import round trips between tenants.
@Suite("Contacts import and export", .serialized)
final class ImportExportTests {
    let harness: ContactsHarness
    static let limits: ContactsLimits = {
        var limits = ContactsLimits()
        limits.importLimits.batchRows = 5
        limits.importLimits.maxRows = 200
        limits.importLimits.maxRecordBytes = 2048
        limits.importLimits.maxBytesWithoutRow = 32 << 10
        limits.importLimits.maxPreviewBytes = 16384
        limits.exportChunkBytes = 1024
        return limits
    }()

    init() async throws { harness = try await ContactsHarness.start(limits: Self.limits) }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private func tenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

    static func options(
        _ format: Switchboard_Contacts_V1_ContactFileFormat = .csv, id: String = "", dryRun: Bool = false,
        policy: Switchboard_Contacts_V1_DuplicatePolicy = .skip, mapping: [(String, String)] = []
    ) -> Switchboard_Contacts_V1_ImportOptions {
        var options = Switchboard_Contacts_V1_ImportOptions()
        options.format = format
        options.importId = id
        options.dryRun = dryRun
        options.duplicatePolicy = policy
        options.mapping = mapping.map {
            var m = Switchboard_Contacts_V1_ImportFieldMapping()
            m.source = $0.0
            m.target = $0.1
            return m
        }
        return options
    }

    /// Runs an import: sends the options and the chunks while reading the responses (so neither side waits on the
    /// other's flow control). With `stopAfter`, the request stream is left open (the input is not over) and after that
    /// many responses the call is cancelled: an interruption, as a client that dies mid-upload causes.
    func runImport(
        _ client: Client, _ options: Switchboard_Contacts_V1_ImportOptions, _ chunks: [[UInt8]], stopAfter: Int? = nil,
        received: ResponseLog? = nil
    ) async throws -> [ImportResponse] {
        try await Self.runImport(client, options, chunks, stopAfter: stopAfter, received: received)
    }

    /// ``runImport(_:_:_:stopAfter:received:)``, for other suites.
    static func runImport(
        _ client: Client, _ options: Switchboard_Contacts_V1_ImportOptions, _ chunks: [[UInt8]], stopAfter: Int? = nil,
        received: ResponseLog? = nil
    ) async throws -> [ImportResponse] {
        var callOptions = client.options
        callOptions.timeout = .seconds(120)
        return try await client.stub.importContacts(options: callOptions) { call in
            try await withThrowingTaskGroup(of: [ImportResponse]?.self) { group in
                group.addTask {
                    var first = ImportRequest()
                    first.part = .options(options)
                    try await call.send(first)
                    for chunk in chunks {
                        var message = ImportRequest()
                        message.part = .chunk(chunk)
                        try await call.send(message)
                    }
                    if stopAfter != nil { try await Task.sleep(for: .seconds(120)) }
                    try await call.finishSending()
                    return nil
                }
                var responses: [ImportResponse] = []
                for try await response in call.responses {
                    responses.append(response)
                    received?.responses.withLock { $0.append(response) }
                    if let stopAfter, responses.count >= stopAfter {
                        group.cancelAll()
                        return responses
                    }
                }
                for try await _ in group {}
                return responses
            }
        }
    }

    /// The responses of a call that may end in an error.
    final class ResponseLog: Sendable {
        let responses = Mutex<[ImportResponse]>([])
    }

    static func results(_ responses: [ImportResponse]) -> [Switchboard_Contacts_V1_ImportRowResult] { responses.flatMap(\.results) }

    static func csv(_ text: String) -> [[UInt8]] {
        // Chunks of 7 bytes: records span chunks.
        let bytes = Array(text.utf8)
        return stride(from: 0, to: bytes.count, by: 7).map { Array(bytes[$0..<min(bytes.count, $0 + 7)]) }
    }

    func all(_ client: Client) async throws -> [Switchboard_Contacts_V1_Contact] {
        var contacts: [Switchboard_Contacts_V1_Contact] = []
        var token = ""
        repeat {
            let page = try await client.list(pageSize: 500, token: token)
            contacts += page.contacts
            token = page.page?.nextPageToken ?? ""
        } while !token.isEmpty
        return contacts
    }

    func define(_ tenant: String) async throws {
        let admin = try await harness.client(tenant: tenant, roles: [.admin])
        for (key, type) in [("age", Switchboard_Contacts_V1_FieldDefinition.FieldType.number), ("title", .string), ("vip", .bool)] {
            var request = Switchboard_Contacts_V1_DefineFieldRequest()
            var definition = Switchboard_Contacts_V1_FieldDefinition()
            definition.key = key
            definition.displayName = key
            definition.type = type
            request.definition = definition
            _ = try await admin.stub.defineField(request, options: admin.options)
        }
    }

    static let mixed = """
        name.given,name.family,emails,custom_fields.age,type,notes
        Ada,Lovelace,ada@example.com,36,PERSON,kept out
        Bad,Mail,not-an-address,1,PERSON,
        Old,Number,old@example.com,ancient,PERSON,
        Grace,Hopper,grace@example.com,,company,
        Alan,Turing,alan@example.com,41,robot,

        """

    @Test("each row gets a result: created with its contact, or invalid naming the fields; progress counts them; ignored columns listed")
    func rowsAndViolations() async throws {
        let tenant = tenant()
        try await define(tenant)
        let client = try await harness.client(tenant: tenant)
        let responses = try await runImport(client, Self.options(), Self.csv(Self.mixed))
        let results = Self.results(responses)
        #expect(results.map(\.row) == [1, 2, 3, 4, 5])
        #expect(results.map(\.outcome) == [.created, .invalid, .invalid, .created, .invalid])
        #expect(results[1].violations.map(\.field) == ["contact.emails[0].address"])
        #expect(results[2].violations.map(\.field) == ["contact.custom_fields.age"])
        #expect(results[4].violations.map(\.field) == ["contact.type"])
        #expect(responses.first?.ignoredSources == ["notes"] && !(responses.first?.importId.isEmpty ?? true))
        let last = try #require(responses.last?.progress)
        #expect(last.done && last.rows == 5 && last.created == 2 && last.invalid == 3)
        #expect(last.bytesProcessed == Int64(Self.mixed.utf8.count))
        let stored = try await all(client)
        #expect(Set(stored.map(\.id)) == Set([results[0].contactId, results[3].contactId]))
        let grace = try #require(stored.first { $0.id == results[3].contactId })
        #expect(grace.type == .company && grace.emails.first?.primary == true)
        let ada = try #require(stored.first { $0.id == results[0].contactId })
        #expect(ada.customFields?.fields["age"]?.kind == .numberValue(36))
        // Each created contact has its CREATED change event.
        let events = try await harness.pool.query(
            settings: ["app.tenant_id": tenant], "SELECT count(*) AS n FROM contacts.changes WHERE tenant_id = $1 AND kind = 1", [.text(tenant)])
        #expect(try events.rows.first?.int("n") == 2)
    }

    @Test("a dry run reports what would happen and writes nothing: no contact, no event, no ledger row")
    func dryRun() async throws {
        let tenant = tenant()
        try await define(tenant)
        let client = try await harness.client(tenant: tenant)
        let results = Self.results(try await runImport(client, Self.options(id: "dry-1", dryRun: true), Self.csv(Self.mixed)))
        #expect(results.map(\.outcome) == [.created, .invalid, .invalid, .created, .invalid])
        #expect(results.allSatisfy { $0.contactId.isEmpty })
        #expect(try await all(client).isEmpty)
        for table in ["changes", "import_rows", "imports"] {
            let rows = try await harness.pool.query(
                settings: ["app.tenant_id": tenant], "SELECT count(*) AS n FROM contacts.\(table) WHERE tenant_id = $1", [.text(tenant)])
            #expect(try rows.rows.first?.int("n") == 0, "\(table)")
        }
    }

    /// Twelve rows over three batches of five: duplicates of an existing contact, and of rows in earlier batches (by
    /// address, an address in another case, a second address, a phone number).
    static let crossBatch = """
        name.given,emails,phones,tags
        One,one@example.com,,a
        Two,two@example.com,,b
        Ada,ADA@example.com,,c
        Four,four@example.com,,d
        Five,five@example.com,,e
        Six,TWO@example.com,,f
        Seven,seven@example.com,+49 30 12345007,g
        Eight,ada@example.com,,h
        Nine,nine@example.com;one@example.com,,i
        Ten,ten@example.com,,j
        Eleven,eleven@example.com,+49 30 12345007,k
        Twelve,FOUR@example.com,,l

        """

    @Test(
        "a dry run previews rows that duplicate earlier batches' rows as the import then does, under every policy and with phone matching",
        arguments: [
            (Switchboard_Contacts_V1_DuplicatePolicy.skip, false), (.update, false), (.create, false), (.skip, true), (.update, true),
        ])
    func dryRunAcrossBatches(policy: Switchboard_Contacts_V1_DuplicatePolicy, phones: Bool) async throws {
        let tenant = tenant()
        let client = try await harness.client(tenant: tenant)
        let ada = try await client.create(given: "Ada", family: "Lovelace", emails: ["ada@example.com"], tags: ["x"])
        var options = Self.options(policy: policy)
        if phones { options.matchOn = [.email, .phone] }
        var dry = options
        dry.dryRun = true
        let preview = Self.results(try await runImport(client, dry, Self.csv(Self.crossBatch)))
        #expect(try await all(client).count == 1)
        let imported = Self.results(try await runImport(client, options, Self.csv(Self.crossBatch)))
        #expect(preview.map(\.row) == Array(1...12) && imported.map(\.row) == Array(1...12))
        #expect(preview.map(\.outcome) == imported.map(\.outcome))
        #expect(preview.map { $0.violations.map(\.reason) } == imported.map { $0.violations.map(\.reason) })
        // An id only where the contact exists before the import; never one that only the preview has.
        #expect(preview.map(\.contactId) == imported.map { $0.contactId == ada.id ? ada.id : "" })
        let expected: [Switchboard_Contacts_V1_ImportOutcome]
        switch policy {
        case .skip:
            expected = [
                .created, .created, .skippedDuplicate, .created, .created, .skippedDuplicate, .created, .skippedDuplicate, .skippedDuplicate,
                .created,
                phones ? .skippedDuplicate : .created, .skippedDuplicate,
            ]
        case .update:
            expected = [
                .created, .created, .updated, .created, .created, .updated, .created, .updated, .updated, .created,
                phones ? .updated : .created, .updated,
            ]
        default:
            expected = [.created, .created, .invalid, .created, .created, .invalid, .created, .invalid, .invalid, .created, .created, .invalid]
        }
        #expect(imported.map(\.outcome) == expected)
    }

    @Test("a dry run under an import id already written reports those rows as resumed with their contacts and previews the rest")
    func dryRunResumed() async throws {
        let client = try await harness.client(tenant: tenant())
        let first = "name.given,emails\nA,a@example.com\nB,b@example.com\n"
        let written = Self.results(try await runImport(client, Self.options(id: "res-dry"), Self.csv(first)))
        #expect(written.map(\.outcome) == [.created, .created])
        let preview = Self.results(
            try await runImport(client, Self.options(id: "res-dry", dryRun: true), Self.csv(first + "C,c@example.com\nD,A@example.com\n")))
        #expect(preview.map(\.outcome) == [.created, .created, .created, .skippedDuplicate])
        #expect(preview.map(\.resumed) == [true, true, false, false])
        #expect(preview.map(\.contactId) == [written[0].contactId, written[1].contactId, "", written[0].contactId])
        #expect(try await all(client).count == 2)
    }

    @Test("a dry run whose memory of earlier rows passes its bound ends with RESOURCE_EXHAUSTED after the rows it previewed exactly")
    func dryRunMemoryBound() async throws {
        let tenant = tenant()
        let client = try await harness.client(tenant: tenant)
        // 96 bytes an address, two a row: the suite's 16 KiB bound is passed at the 86th row, in the batch of rows 86-90.
        var file = "name.given,emails\n"
        for i in 1...200 { file += "R\(i),r\(i)@example.com;s\(i)@example.com\n" }
        var dry = Self.options(dryRun: true)
        dry.importId = "dry-bound"
        let log = ResponseLog()
        let error = await #expect(throws: RPCError.self) { _ = try await self.runImport(client, dry, Self.csv(file), received: log) }
        let seen = Self.results(log.responses.withLock { $0 })
        #expect(error?.code == .resourceExhausted)
        #expect(error?.message.contains("rows up to 90") == true && error?.message.contains("SWITCHBOARD_CONTACTS_IMPORT_PREVIEW_BYTES") == true)
        #expect(seen.map(\.row) == Array(1...90) && seen.allSatisfy { $0.outcome == .created })
        #expect(try await all(client).isEmpty)
    }

    @Test("duplicates by email: skip names the contact and changes nothing, update adds the row's values, create makes the row invalid")
    func duplicates() async throws {
        let tenant = tenant()
        let client = try await harness.client(tenant: tenant)
        let existing = try await client.create(given: "Ada", family: "Lovelace", emails: ["ada@example.com"], tags: ["a"])
        let file = "name.given,emails,tags\nAugusta,ADA@example.com,b\nNew,new@example.com,c\nTwin,new@example.com,d\n"

        let skipped = Self.results(try await runImport(client, Self.options(policy: .skip), Self.csv(file)))
        #expect(skipped.map(\.outcome) == [.skippedDuplicate, .created, .skippedDuplicate])
        #expect(skipped[0].contactId == existing.id && skipped[2].contactId == skipped[1].contactId)
        #expect(try await client.get(existing.id).tags == ["a"])

        let updated = Self.results(try await runImport(client, Self.options(policy: .update), Self.csv(file)))
        #expect(updated.map(\.outcome) == [.updated, .updated, .updated])
        let ada = try await client.get(existing.id)
        #expect(ada.tags == ["a", "b"] && ada.name?.given == "Augusta" && ada.etag != existing.etag)
        #expect(try await client.get(skipped[1].contactId).tags == ["c", "d"])

        let created = Self.results(try await runImport(client, Self.options(policy: .create), Self.csv("name.given,emails\nX,ada@example.com\n")))
        #expect(created.map(\.outcome) == [.invalid])
        #expect(created[0].violations.map(\.reason) == ["ALREADY_EXISTS"])
        #expect(try await all(client).count == 2)
    }

    @Test(
        "the address reservations are exactly the live contacts' addresses after creates, updates, deletes, batch creates, updates and deletes, and imports"
    )
    func reservationsFollowContacts() async throws {
        let tenant = tenant()
        let client = try await harness.client(tenant: tenant)
        let ada = try await client.create(given: "Ada", emails: ["Ada@Example.com", "ada2@example.com"])
        let grace = try await client.create(given: "Grace", emails: ["grace@example.com"])
        // An address moved from one contact to another; an address taken is refused and reserves nothing.
        _ = try await client.update(ada.id, paths: ["emails"]) {
            var e = Switchboard_Contacts_V1_Email()
            e.address = "ada3@example.com"
            $0.emails = [e]
        }
        _ = try await client.update(grace.id, paths: ["emails"]) {
            $0.emails = ["grace@example.com", "ada2@example.com"].map {
                var e = Switchboard_Contacts_V1_Email()
                e.address = $0
                return e
            }
        }
        #expect(
            await rpcError { _ = try await client.create(given: "Copy", emails: ["GRACE@example.com", "fresh@example.com"]) }?.code == .alreadyExists)
        let deleted = try await client.create(given: "Gone", emails: ["gone@example.com"])
        _ = try await client.delete(deleted.id)
        let back = try await client.create(given: "Back", emails: ["back@example.com"])
        _ = try await client.delete(back.id)
        _ = try await client.undelete(back.id)
        var batch = Switchboard_Contacts_V1_BatchCreateContactsRequest()
        batch.contacts = ["batch1@example.com", "ada3@example.com", "batch2@example.com"].map {
            var contact = Switchboard_Contacts_V1_Contact()
            var name = Switchboard_Contacts_V1_PersonName()
            name.given = "Batch"
            contact.name = name
            var e = Switchboard_Contacts_V1_Email()
            e.address = $0
            contact.emails = [e]
            return contact
        }
        let made = try await client.stub.batchCreateContacts(batch, options: client.options)
        // A batch update moves an address, one of its items fails on a taken address; a batch delete releases.
        let batchIDs = made.results.compactMap { $0.contact?.id }
        var updates = Switchboard_Contacts_V1_BatchUpdateContactsRequest()
        updates.requests = zip(batchIDs, ["moved@example.com", "grace@example.com"]).map { id, address in
            var request = Switchboard_Contacts_V1_UpdateContactRequest()
            var contact = Switchboard_Contacts_V1_Contact()
            contact.id = id
            var e = Switchboard_Contacts_V1_Email()
            e.address = address
            contact.emails = [e]
            request.contact = contact
            request.updateMask = Google_Protobuf_FieldMask(paths: ["emails"])
            return request
        }
        _ = try await client.stub.batchUpdateContacts(updates, options: client.options)
        let toDelete = try await client.create(given: "Doomed", emails: ["doomed@example.com"])
        var deletes = Switchboard_Contacts_V1_BatchDeleteContactsRequest()
        var deleteRequest = Switchboard_Contacts_V1_DeleteContactRequest()
        deleteRequest.id = toDelete.id
        deletes.requests = [deleteRequest]
        _ = try await client.stub.batchDeleteContacts(deletes, options: client.options)
        let file = "name.given,emails\nAugusta,ADA3@example.com; augusta@example.com\nNew,new@example.com\nTwin,new@example.com\n"
        _ = try await runImport(client, Self.options(policy: .update), Self.csv(file))
        _ = try await runImport(
            client, Self.options(policy: .skip), Self.csv("name.given,emails\nLate,late@example.com; grace@example.com\nLater,later@example.com\n"))

        let live = Set(try await all(client).flatMap { contact in contact.emails.map { "\($0.address.lowercased()) \(contact.id)" } })
        let reserved = Set(
            try await harness.pool.query(
                settings: ["app.tenant_id": tenant], "SELECT address || ' ' || contact_id AS r FROM contacts.contact_emails WHERE tenant_id = $1",
                [.text(tenant)]
            ).rows.map { try $0.string("r") })
        #expect(batchIDs.count == 2)
        #expect(live.count == 9)  // Ada 2, Grace 2, Back, the batch's two (one moved, one kept), New, Later
        #expect(reserved == live)
    }

    static func numbered(_ count: Int, prefix: String = "p") -> String {
        "name.given,emails\n" + (1...count).map { "Person \($0),\(prefix)\($0)@example.com\n" }.joined()
    }

    @Test("a written batch is answered while the client is silent: a client may wait for progress before it sends more")
    func answeredWhileSilent() async throws {
        let client = try await harness.client(tenant: tenant())
        var callOptions = client.options
        callOptions.timeout = .seconds(30)
        // One batch (5 rows) and a sixth row: the batch is written while the sixth waits for more input.
        let text = Self.numbered(11)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let head = Array((lines.prefix(7).joined(separator: "\n") + "\n").utf8)
        let rest = Array(text.utf8.dropFirst(head.count))
        let (first, final) = try await client.stub.importContacts(options: callOptions) { call in
            var options = ImportRequest()
            options.part = .options(Self.options())
            try await call.send(options)
            var chunk = ImportRequest()
            chunk.part = .chunk(head)
            try await call.send(chunk)
            var responses = call.responses.makeAsyncIterator()
            // Nothing more is sent until the first batch is answered.
            let first = try await responses.next()
            chunk.part = .chunk(rest)
            try await call.send(chunk)
            try await call.finishSending()
            var last = first
            while let response = try await responses.next() { last = response }
            return (first, last)
        }
        #expect(first?.results.map(\.row) == [1, 2, 3, 4, 5])
        #expect(first?.results.allSatisfy { $0.outcome == .created } == true)
        #expect(first?.importId.isEmpty == false)
        #expect(final?.progress?.done == true && final?.progress?.created == 11)
        #expect(try await all(client).count == 11)
    }

    @Test("an import interrupted mid-way and sent again in full with its id writes nothing twice")
    func resume() async throws {
        let tenant = tenant()
        let client = try await harness.client(tenant: tenant)
        let file = Self.numbered(60)
        let chunks = Self.csv(file)
        // The first attempt sends a third of the file, sees one written batch, and goes away.
        let partial = try await runImport(client, Self.options(id: "resume-1"), Array(chunks.prefix(chunks.count / 3)), stopAfter: 1)
        let seen = Self.results(partial)
        #expect(!seen.isEmpty && seen.allSatisfy { $0.outcome == .created })
        // The batch in flight when the call was cancelled commits or rolls back on its own: wait until the count holds.
        var before = try await all(client).count
        while true {
            try await Task.sleep(for: .milliseconds(500))
            let now = try await all(client).count
            if now == before { break }
            before = now
        }
        #expect(before >= seen.count && before < 60)

        let again = try await runImport(client, Self.options(id: "resume-1"), chunks)
        let results = Self.results(again)
        #expect(results.map(\.row) == Array(1...60))
        #expect(results.allSatisfy { $0.outcome == .created })
        #expect(results.filter(\.resumed).count == before)
        for earlier in seen { #expect(results[Int(earlier.row) - 1].contactId == earlier.contactId && results[Int(earlier.row) - 1].resumed) }
        let stored = try await all(client)
        #expect(stored.count == 60)
        #expect(Set(stored.map(\.id)) == Set(results.map(\.contactId)))
        #expect(again.last?.progress?.resumed == Int64(before))

        // Once more: everything is resumed, nothing written.
        let third = Self.results(try await runImport(client, Self.options(id: "resume-1"), chunks))
        #expect(third.allSatisfy(\.resumed) && third.count == 60)
        #expect(try await all(client).count == 60)

        // Other options under the same id are refused (they would read other rows).
        let error = await rpcError {
            _ = try await self.runImport(client, Self.options(id: "resume-1", mapping: [("name.given", "name.family")]), chunks)
        }
        #expect(error?.code == .failedPrecondition)

        // Another input under the same id: the rest of the file sent on its own (numbered from 1 again) would have
        // its rows taken for the first ones and skipped. It is refused, naming the first row that differs, and
        // writes nothing; so is the same file with one row edited.
        let rest = "name.given,emails\n" + (41...70).map { "Person \($0),p\($0)@example.com\n" }.joined()
        let shifted = await rpcError { _ = try await self.runImport(client, Self.options(id: "resume-1"), Self.csv(rest)) }
        #expect(shifted?.code == .failedPrecondition && shifted?.message.contains("row 1 ") == true, "\(String(describing: shifted))")
        let edited = file.replacingOccurrences(of: "Person 7,", with: "Person Seven,")
        let changed = await rpcError { _ = try await self.runImport(client, Self.options(id: "resume-1"), Self.csv(edited)) }
        #expect(changed?.code == .failedPrecondition && changed?.message.contains("row 7 ") == true, "\(String(describing: changed))")
        #expect(try await all(client).count == 60)

        // A ledger of one batch (5 rows), then the rest of the file on its own: its first batch is refused, and no
        // later batch is written beside it (batches past the ledger start only once the ones within it passed).
        let head = Self.numbered(5, prefix: "q")
        #expect(Self.results(try await runImport(client, Self.options(id: "resume-2"), Self.csv(head))).count == 5)
        let tail = "name.given,emails\n" + (6...30).map { "Person \($0),q\($0)@example.com\n" }.joined()
        let refused = await rpcError { _ = try await self.runImport(client, Self.options(id: "resume-2"), Self.csv(tail)) }
        #expect(refused?.code == .failedPrecondition, "\(String(describing: refused))")
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await all(client).count == 65)
        // The same input from its start still resumes: the ledger holds only what the first call wrote.
        let whole = Self.results(try await runImport(client, Self.options(id: "resume-2"), Self.csv(Self.numbered(30, prefix: "q"))))
        #expect(whole.count == 30 && whole.filter(\.resumed).count == 5 && whole.allSatisfy { $0.outcome == .created })
    }

    @Test("an import id that wrote nothing takes other options (a mapping corrected after every row was invalid)")
    func optionsOfAnImportThatWroteNothing() async throws {
        let client = try await harness.client(tenant: tenant())
        let file = "who,contact\n" + (1...6).map { "Person \($0),w\($0)@example.com\n" }.joined()
        let wrong = Self.options(id: "fix-1", mapping: [("who", "name.given"), ("contact", "phones")])
        let right = Self.options(id: "fix-1", mapping: [("who", "name.given"), ("contact", "emails")])
        // Addresses mapped to phone numbers: every row invalid, nothing written.
        let first = Self.results(try await runImport(client, wrong, Self.csv(file)))
        #expect(first.count == 6 && first.allSatisfy { $0.outcome == .invalid }, "\(first)")
        // The corrected mapping under the same id imports the file.
        let fixed = Self.results(try await runImport(client, right, Self.csv(file)))
        #expect(fixed.count == 6 && fixed.allSatisfy { $0.outcome == .created && !$0.resumed }, "\(fixed)")
        // It has written rows now: the first options are refused, the second resume.
        let back = await rpcError { _ = try await self.runImport(client, wrong, Self.csv(file)) }
        #expect(back?.code == .failedPrecondition, "\(String(describing: back))")
        #expect(back?.message.contains("import fix-1 is recorded with other options") == true, "\(String(describing: back))")
        let again = Self.results(try await runImport(client, right, Self.csv(file)))
        #expect(again.count == 6 && again.allSatisfy(\.resumed))
        #expect(try await all(client).count == 6)
    }

    @Test("other options for an import id are refused at once while a batch of it is in flight, and replace them before")
    func optionsWhileABatchIsInFlight() async throws {
        let tenant = tenant()
        let domain = ContactsDomain(
            store: PostgresContactStore(
                pool: harness.pool, feed: ChangeFeed(schema: "contacts"), idempotency: Idempotency(schema: "contacts"),
                publish: { try ContactsMapping.proto($0).protoJSONText() },
                publishRelationship: { try ContactsMapping.proto($0).protoJSONText() }))
        let actor = SwitchboardServiceKit.Actor(tenantID: tenant, userID: "importer")
        let first = ImportSettings(importID: "race-1", fingerprint: "first")
        let second = ImportSettings(importID: "race-1", fingerprint: "second")
        #expect(try await domain.beginImport(first, actor: actor) == 0)

        // A batch under the first options, held in its transaction (before it takes addresses) until released.
        let (entered, enter) = AsyncStream<Void>.makeStream()
        let (released, release) = AsyncStream<Void>.makeStream()
        let turn = ImportTurn(
            connect: {}, connected: {},
            write: {
                enter.yield()
                for await _ in released { break }
            })
        let batch = Task {
            // A batch that ends before its turn (a failure) ends the wait below too.
            defer { enter.finish() }
            return try await domain.writeImportBatch(
                [ImportMappingTests.row(1, ["held@example.com"])], settings: first, definitions: [], actor: actor, turn: turn)
        }
        for await _ in entered { break }
        // Its options are in use: other options are refused without waiting for the batch.
        await #expect(throws: ContactsError.importOptionsChanged(importID: "race-1")) {
            _ = try await domain.beginImport(second, actor: actor)
        }
        release.yield()
        #expect(try await batch.value.map(\.outcome) == [.created])
        // Written now: refused for good; the same options resume after row 1.
        await #expect(throws: ContactsError.importOptionsChanged(importID: "race-1")) {
            _ = try await domain.beginImport(second, actor: actor)
        }
        #expect(try await domain.beginImport(first, actor: actor) == 1)

        // An id that wrote nothing takes the new options, and a batch under the old ones is then refused.
        let old = ImportSettings(importID: "race-2", fingerprint: "old")
        let new = ImportSettings(importID: "race-2", fingerprint: "new")
        #expect(try await domain.beginImport(old, actor: actor) == 0)
        #expect(try await domain.beginImport(new, actor: actor) == 0)
        await #expect(throws: ContactsError.importOptionsChanged(importID: "race-2")) {
            _ = try await domain.writeImportBatch(
                [ImportMappingTests.row(1, ["old@example.com"])], settings: old, definitions: [], actor: actor)
        }
        let written = try await domain.writeImportBatch(
            [ImportMappingTests.row(1, ["new@example.com"])], settings: new, definitions: [], actor: actor)
        #expect(written.map(\.outcome) == [.created])
        let contacts = try await harness.pool.query(
            settings: ["app.tenant_id": tenant], "SELECT count(*) AS n FROM contacts.contacts WHERE tenant_id = $1", [.text(tenant)])
        #expect(try contacts.first?.int("n") == 2)
    }

    @Test("a batch that loses an address race runs again on the connection it holds, not after the next batch took it")
    func raceRunsAgainOnItsConnection() async throws {
        let tenant = tenant()
        let client = try await harness.client(tenant: tenant)
        // One connection: the next batch of the import waits for it while the first holds it. Had the first given it
        // back to run again, the next would take it and wait for the first to end: the first would wait out the pool.
        var configuration = PostgresPoolConfiguration(conninfo: harness.service.serviceConninfo, maxConnections: 1)
        configuration.acquireTimeout = .seconds(3)
        let pool = PostgresPool(configuration: configuration)
        defer { pool.close() }
        let domain = ContactsDomain(
            store: PostgresContactStore(
                pool: pool, feed: ChangeFeed(schema: "contacts"), idempotency: Idempotency(schema: "contacts"),
                publish: { try ContactsMapping.proto($0).protoJSONText() },
                publishRelationship: { try ContactsMapping.proto($0).protoJSONText() }))
        let actor = SwitchboardServiceKit.Actor(tenantID: tenant, userID: "importer")
        let settings = ImportSettings(importID: "race-3", fingerprint: "f")
        #expect(try await domain.beginImport(settings, actor: actor) == 0)

        // The first batch reads that nobody holds taken@example.com and inserts its contacts; before it takes the
        // address (its first attempt only), a contact made through the service takes it.
        let turns = ImportTurns()
        let first = turns.turn(0)
        let other = Mutex<String?>(nil)
        let racing = ImportTurn(
            connect: first.connect, connected: first.connected,
            write: {
                if other.withLock({ $0 == nil }) {
                    // Time for the second batch to reach the pool's queue.
                    try? await Task.sleep(for: .milliseconds(100))
                    let made = try? await client.create(given: "Other", emails: ["taken@example.com"])
                    other.withLock { $0 = made?.id ?? "" }
                }
                await first.write()
            })
        let batches = [
            (racing, [ImportMappingTests.row(1, ["taken@example.com"]), ImportMappingTests.row(2, ["free@example.com"])]),
            (turns.turn(1), [ImportMappingTests.row(3, ["late@example.com"])]),
        ].enumerated().map { index, batch in
            Task {
                defer { turns.end(index) }
                return try await domain.writeImportBatch(batch.1, settings: settings, definitions: [], actor: actor, turn: batch.0)
            }
        }
        let written = [try await batches[0].value, try await batches[1].value]
        let otherID = try #require(other.withLock { $0 })
        #expect(written[0].map(\.outcome) == [.skippedDuplicate, .created])
        #expect(written[0].first?.contactID?.lowercaseText == otherID)
        #expect(written[1].map(\.outcome) == [.created])
    }

    @Test("an import ledger past its retention is pruned (re-sending the import then imports again); a recent one stays")
    func ledgerRetention() async throws {
        let tenant = tenant()
        let client = try await harness.client(tenant: tenant)
        let old = Self.results(try await runImport(client, Self.options(id: "kept-long"), Self.csv(Self.numbered(3, prefix: "old"))))
        _ = try await runImport(client, Self.options(id: "recent"), Self.csv(Self.numbered(2, prefix: "new")))
        #expect(old.allSatisfy { $0.outcome == .created })
        func ledger(_ id: String) async throws -> Int64 {
            try await harness.pool.query(
                settings: ["app.tenant_id": tenant], "SELECT count(*) AS n FROM contacts.import_rows WHERE tenant_id = $1 AND import_id = $2",
                [.text(tenant), .text(id)]
            ).first?.int("n") ?? -1
        }
        #expect(try await ledger("kept-long") == 3)
        #expect(try await ledger("recent") == 2)
        _ = try await harness.pool.query(
            settings: ["app.tenant_id": tenant],
            "UPDATE contacts.imports SET created_at = now() - interval '31 days' WHERE tenant_id = $1 AND import_id = 'kept-long'",
            [.text(tenant)])
        #expect(try await ContactsMaintenance.pruneImports(olderThan: 30, pool: harness.pool) == 1)
        #expect(try await ledger("kept-long") == 0)
        #expect(try await ledger("recent") == 2)
        // Sent again: not resumed (the ledger is gone), so the rows are matched as duplicates of what the first run made.
        let again = Self.results(try await runImport(client, Self.options(id: "kept-long"), Self.csv(Self.numbered(3, prefix: "old"))))
        #expect(again.allSatisfy { $0.outcome == .skippedDuplicate && !$0.resumed })
        #expect(try await all(client).count == 5)
    }

    @Test("tenant isolation: another tenant's import of the same id resumes nothing and sees neither the ledger nor the contacts")
    func tenantIsolation() async throws {
        let a = tenant(), b = tenant()
        let clientA = try await harness.client(tenant: a)
        let clientB = try await harness.client(tenant: b)
        let file = Self.csv(Self.numbered(7))
        let resultsA = Self.results(try await runImport(clientA, Self.options(id: "shared"), file))
        let resultsB = Self.results(try await runImport(clientB, Self.options(id: "shared"), file))
        #expect(resultsB.allSatisfy { $0.outcome == .created && !$0.resumed })
        #expect(Set(resultsA.map(\.contactId)).isDisjoint(with: resultsB.map(\.contactId)))
        #expect(Set(try await all(clientB).map(\.id)) == Set(resultsB.map(\.contactId)))
        // Row-level security: in B's transactions, A's ledger and imports do not exist, even when asked for by tenant.
        for table in ["import_rows", "imports"] {
            let rows = try await harness.pool.query(
                settings: ["app.tenant_id": b], "SELECT count(*) AS n FROM contacts.\(table) WHERE tenant_id = $1", [.text(a)])
            #expect(try rows.rows.first?.int("n") == 0, "\(table)")
        }
        let own = try await harness.pool.query(settings: ["app.tenant_id": a], "SELECT count(*) AS n FROM contacts.import_rows", [])
        #expect(try own.rows.first?.int("n") == 7)
    }

    @Test("bounds: a record past the byte bound is an invalid row; more rows than a call may send, or a chunk past 1 MiB, end the call")
    func bounds() async throws {
        let client = try await harness.client(tenant: tenant())
        let long = "name.given,emails\nLong,\(String(repeating: "x", count: 3000))@example.com\nShort,s@example.com\n"
        let results = Self.results(try await runImport(client, Self.options(), Self.csv(long)))
        #expect(results.map(\.outcome) == [.invalid, .created])
        #expect(results[0].violations.map(\.reason) == ["TOO_LONG"])

        let tooMany = await rpcError { _ = try await self.runImport(client, Self.options(), [Array(Self.numbered(201, prefix: "m").utf8)]) }
        #expect(tooMany?.code == .invalidArgument)
        #expect(tooMany?.fieldViolations.map(\.field) == ["chunk"])

        let huge = await rpcError { _ = try await self.runImport(client, Self.options(), [Array(repeating: 0x41, count: (1 << 20) + 1)]) }
        #expect(huge?.code == .invalidArgument)

        // Input that makes no row never ends a call by the row bound: past its own bound (32 KiB here) the call ends,
        // the rows before it written.
        let blank = Self.csv("name.given,emails\nBlank,blank@example.com\n") + Array(repeating: Array(repeating: 0x0A, count: 4096), count: 12)
        let endless = await rpcError { _ = try await self.runImport(client, Self.options(id: "blank"), blank) }
        #expect(endless?.code == .invalidArgument)
        #expect(endless?.fieldViolations.map(\.field) == ["chunk"])
        #expect(endless?.message.contains("make no row") == true, "\(endless?.message ?? "")")
        #expect(try await all(client).contains { $0.emails.first?.address == "blank@example.com" })

        let noOptions = await rpcError {
            var options = client.options
            options.timeout = .seconds(30)
            _ = try await client.stub.importContacts(options: options) { call in
                var message = ImportRequest()
                message.part = .chunk([1, 2, 3])
                try await call.send(message)
                try await call.finishSending()
                for try await _ in call.responses {}
            }
        }
        #expect(noOptions?.code == .invalidArgument)
    }

    func export(
        _ client: Client, _ format: Switchboard_Contacts_V1_ContactFileFormat,
        configure: (inout Switchboard_Contacts_V1_ExportContactsRequest) -> Void = { _ in }
    ) async throws -> (bytes: [UInt8], messages: Int, count: Int64) {
        var request = Switchboard_Contacts_V1_ExportContactsRequest()
        request.format = format
        configure(&request)
        var options = client.options
        options.timeout = .seconds(60)
        return try await client.stub.exportContacts(request, options: options) { chunks in
            var bytes: [UInt8] = []
            var messages = 0
            var count: Int64 = 0
            for try await chunk in chunks {
                bytes += chunk.chunk
                messages += 1
                count = chunk.contacts
            }
            return (bytes, messages, count)
        }
    }

    /// Contacts as comparable text: their proto3 JSON without id, audit and etag.
    static func comparable(_ contacts: [Switchboard_Contacts_V1_Contact]) throws -> [String] {
        try contacts.map { contact in
            var c = contact
            c.id = ""
            c.audit = nil
            c.etag = ""
            return try c.protoJSONText()
        }.sorted()
    }

    func seed(_ client: Client, count: Int) async throws {
        for i in 0..<count {
            var request = Switchboard_Contacts_V1_CreateContactRequest()
            var contact = Switchboard_Contacts_V1_Contact()
            var name = Switchboard_Contacts_V1_PersonName()
            name.given = "Given \(i)"
            name.family = "Fämily, \"\(i)\""
            name.display = i % 3 == 0 ? "Shown \(i)" : ""
            contact.name = name
            var work = Switchboard_Contacts_V1_Email()
            work.address = "work\(i)@example.com"
            work.label = "work"
            var home = Switchboard_Contacts_V1_Email()
            home.address = "home\(i)@example.com"
            home.primary = true
            contact.emails = [home, work]
            var phone = Switchboard_Contacts_V1_Phone()
            phone.number = "+49 30 1234\(1000 + i)"
            phone.label = "office"
            contact.phones = [phone]
            var address = Switchboard_Common_V1_PostalAddress()
            address.addressLines = ["Street \(i)", "Floor 2"]
            address.locality = "Berlin"
            address.postalCode = "10115"
            address.regionCode = "DE"
            // Up to three addresses: CSV writes each past the first in its own columns (address2.*, address3.*).
            var second = Switchboard_Common_V1_PostalAddress()
            second.label = "work"
            second.addressLines = ["Zweite; Straße \(i)"]
            second.locality = "Hamburg"
            second.regionCode = "DE"
            var third = Switchboard_Common_V1_PostalAddress()
            third.label = "holiday"
            third.locality = "Nice"
            third.regionCode = "FR"
            contact.addresses = Array([address, second, third].prefix(1 + i % 3))
            contact.tags = ["t\(i % 2)", "all"]
            contact.status = .customer
            contact.type = i % 4 == 0 ? .company : .person
            var fields = Google_Protobuf_Struct()
            fields.fields = [
                "age": number(Double(20 + i)), "title": string("Title; line one\nline two"),
                "vip": {
                    var v = Google_Protobuf_Value()
                    v.kind = .boolValue(i % 2 == 0)
                    return v
                }(),
            ]
            contact.customFields = fields
            request.contact = contact
            _ = try await client.stub.createContact(request, options: client.options)
        }
    }

    @Test("export then import into another tenant gives the same contacts: JSON lines, CSV and vCard 4.0 and 3.0")
    func roundTrip() async throws {
        let source = tenant()
        try await define(source)
        let from = try await harness.client(tenant: source)
        try await seed(from, count: 12)
        let original = try Self.comparable(try await all(from))
        for (format, version) in [(Switchboard_Contacts_V1_ContactFileFormat.jsonLines, 0), (.csv, 0), (.vcard, 4), (.vcard, 3)] {
            let exported = try await export(from, format) { $0.vcardVersion = Int32(version) }
            #expect(exported.count == 12 && exported.messages > 1, "\(format) in chunks")
            let target = tenant()
            try await define(target)
            let to = try await harness.client(tenant: target)
            let chunks = stride(from: 0, to: exported.bytes.count, by: 500).map { Array(exported.bytes[$0..<min(exported.bytes.count, $0 + 500)]) }
            let results = Self.results(try await runImport(to, Self.options(format), chunks))
            #expect(
                results.count == 12 && results.allSatisfy { $0.outcome == .created },
                "\(format) \(version): \(results.filter { $0.outcome != .created })")
            var copied = try await all(to)
            if format == .csv {
                // CSV writes the primary address first.
                copied = copied.map { c in
                    var c = c
                    c.emails.sort { $0.address.hasPrefix("home") && !$1.address.hasPrefix("home") }
                    return c
                }
            }
            var expected = original
            if format == .csv {
                expected = try Self.comparable(
                    try await all(from).map { c in
                        var c = c
                        c.emails.sort { $0.address.hasPrefix("home") && !$1.address.hasPrefix("home") }
                        return c
                    })
            }
            #expect(try Self.comparable(copied) == expected, "\(format) \(version)")
        }
    }

    @Test("a CSV export that meets a contact with more addresses than its columns (gained during the export) ends ABORTED naming it")
    func exportAbortedWhenAddressesGrow() async throws {
        let client = try await harness.client(tenant: tenant())
        // 2,000 contacts without addresses (one column group), about 900 KB of CSV: far more than the slow reader's
        // window and what the service queues per stream (256 KiB), so the export waits for the reader long before its
        // last page.
        var last = ""
        for part in 0..<10 {
            let rows = (0..<200).map { i in "\(String(repeating: "n", count: 400))\(part * 200 + i),a\(part * 200 + i)@example.com\n" }
            let results = Self.results(try await runImport(client, Self.options(), [Array(("name.given,emails\n" + rows.joined()).utf8)]))
            #expect(results.count == 200 && results.allSatisfy { $0.outcome == .created })
            last = results.last?.contactId ?? ""
        }
        let channel = GRPCChannel(
            host: "127.0.0.1", port: harness.service.port,
            configuration: {
                var c = ClientConfiguration()
                c.initialWindowSize = 65_535
                return c
            }())
        let slow = Client(stub: Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: channel)), options: client.options)
        var request = Switchboard_Contacts_V1_ExportContactsRequest()
        request.format = .csv
        let lastID = last
        let received = Mutex(0)
        let error = await rpcError {
            try await slow.stub.exportContacts(request, options: slow.options) { chunks in
                var iterator = chunks.makeAsyncIterator()
                let first = try await iterator.next()?.chunk.count ?? 0
                received.withLock { $0 += first }
                // Counted and begun: the export now waits for the window. The last contact (the export's last row)
                // gains two addresses meanwhile.
                try await Task.sleep(for: .milliseconds(300))
                _ = try await client.update(lastID, paths: ["addresses"]) { contact in
                    contact.addresses = ["Berlin", "Paris"].map {
                        var address = Switchboard_Common_V1_PostalAddress()
                        address.locality = $0
                        address.regionCode = $0 == "Berlin" ? "DE" : "FR"
                        return address
                    }
                }
                while let chunk = try await iterator.next() { received.withLock { $0 += chunk.chunk.count } }
            }
        }
        await channel.close()
        #expect(error?.code == .aborted && error?.message.contains(last) == true, "\(String(describing: error)) \(received.withLock { $0 })")
        // It ended at that row: the rows before it were sent (about 450 bytes each).
        #expect(received.withLock { $0 } > 800_000, "\(received.withLock { $0 })")
    }

    @Test("export: a filter picks the contacts, fields pick the columns, vCard 3.0 on request; an empty export still answers")
    func exportFilterAndFields() async throws {
        let name = tenant()
        try await define(name)
        let client = try await harness.client(tenant: name)
        try await seed(client, count: 4)
        let tagged = try await export(client, .jsonLines) {
            var filter = Switchboard_Contacts_V1_SearchContactsRequest()
            filter.tags = ["t1"]
            $0.filter = filter
            $0.fields = ["name", "tags"]
        }
        let lines = String(decoding: tagged.bytes, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2)
        for line in lines {
            let contact = try Switchboard_Contacts_V1_Contact(protoJSONText: String(line))
            #expect(contact.tags.contains("t1") && contact.emails.isEmpty && contact.id.isEmpty && contact.name != nil)
        }
        let csv = String(decoding: try await export(client, .csv) { $0.fields = ["id", "emails"] }.bytes, as: UTF8.self)
        #expect(csv.hasPrefix("id,emails\r\n"))
        // A column group per address the matches have: the tenant's most (three), or one for the two contacts the text
        // finds ("Shown 0" and "Shown 3", one address each).
        let header = { (bytes: [UInt8]) in String(decoding: bytes, as: UTF8.self).split(separator: "\r\n").first.map(String.init) ?? "" }
        let every = header(try await export(client, .csv).bytes)
        #expect(every.contains("address3.label") && !every.contains("address4."), "\(every)")
        let shown = try await export(client, .csv) {
            var filter = Switchboard_Contacts_V1_SearchContactsRequest()
            filter.query = "shown"
            $0.filter = filter
        }
        #expect(
            shown.count == 2 && header(shown.bytes).contains("address.label") && !header(shown.bytes).contains("address2."), "\(header(shown.bytes))")
        let card = String(decoding: try await export(client, .vcard) { $0.vcardVersion = 3 }.bytes, as: UTF8.self)
        #expect(card.contains("VERSION:3.0\r\n") && card.components(separatedBy: "BEGIN:VCARD").count == 5)
        let empty = try await export(try await harness.client(tenant: tenant()), .csv)
        #expect(empty.count == 0 && empty.messages == 1 && String(decoding: empty.bytes, as: UTF8.self).hasPrefix("id,name.given,"))
        let bad = await rpcError { _ = try await self.export(client, .unspecified) }
        #expect(bad?.code == .invalidArgument)
    }
}
