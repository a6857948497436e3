import ContactsService
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import Testing

/// Hostile sizes and numbers over real HTTP/2 against a real PostgreSQL: each is refused with the field it came in,
/// stores nothing, and leaves the service, its pages and its change feed working.
@Suite("Contacts service limits", .serialized)
final class ContactsLimitsTests {
    let harness: ContactsHarness
    init() async throws { harness = try await ContactsHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private func tenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

    private func fields(_ error: RPCError?) -> [String] { error?.fieldViolations.map(\.field) ?? [] }

    /// Every change of the tenant, straight from the outbox.
    private func changes(_ tenant: String) async throws -> [Switchboard_Common_V1_ChangeEvent] {
        try await ChangeFeed(schema: "contacts").events(tenantID: tenant, after: 0, resourceTypes: [], limit: 500, pool: harness.pool).events
    }

    @Test("timestamps outside 0001..9999, or with nanos outside 0..999,999,999, are INVALID_ARGUMENT naming the field")
    func timestampRange() async throws {
        let reader = try await harness.client(tenant: tenant(), roles: [.readOnly])
        // These two made the process trap converting a Double to Int64.
        let future = await rpcError { _ = try await reader.list { $0.createdAfter = Date(timeIntervalSince1970: 1e13) } }
        #expect(future?.code == .invalidArgument)
        #expect(fields(future) == ["created_after"])
        let past = await rpcError { _ = try await reader.list { $0.updatedBefore = Date(timeIntervalSince1970: -0x1p62) } }
        #expect(fields(past) == ["updated_before"])
        let justOutside = await rpcError {
            _ = try await reader.list { $0.createdBefore = Date(timeIntervalSince1970: -62_135_596_801) }
        }
        #expect(fields(justOutside) == ["created_before"])

        // nanos = 1,000,000,000 as a client puts it on the wire (field 8, updated_after: { nanos: 1e9 }).
        let bytes: [UInt8] = [0x42, 0x06, 0x10, 0x80, 0x94, 0xEB, 0xDC, 0x03]
        // The decoder refuses it, naming the field (the service answers INVALID_ARGUMENT with it, as for `future`).
        do {
            _ = try Switchboard_Contacts_V1_ListContactsRequest(serializedBytes: bytes)
            Issue.record("nanos of 10^9 decoded")
        } catch let error as ProtoDecodingError {
            #expect(error.invalidField == "updated_after")
        }

        // The edges themselves are valid, and the service is still up.
        let edges = try await reader.list {
            $0.createdAfter = Date(timeIntervalSince1970: -62_135_596_800)
            $0.createdBefore = Date(timeIntervalSince1970: 253_402_300_799.999)
        }
        #expect(edges.contacts.isEmpty)
        // A range that ends where it starts, or before, is a mistake (the bounds are exclusive): named, in lists and
        // searches alike.
        let now = Date()
        let swapped = await rpcError {
            _ = try await reader.list {
                $0.createdAfter = now
                $0.createdBefore = now.addingTimeInterval(-60)
                $0.updatedAfter = now
                $0.updatedBefore = now
            }
        }
        #expect(fields(swapped) == ["created_before", "updated_before"])
        var search = Switchboard_Contacts_V1_SearchContactsRequest()
        search.createdAfter = now
        search.createdBefore = now.addingTimeInterval(-1)
        let searched = await rpcError { _ = try await reader.stub.searchContacts(search, options: reader.options) }
        #expect(fields(searched).count == 1 && fields(searched).first?.hasSuffix("created_before") == true, "\(fields(searched))")
    }

    @Test("a 4 MB contact, a 2 MB single Character and an over-long owner_id are INVALID_ARGUMENT and store nothing")
    func oversizedFields() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        func create(_ change: (inout Switchboard_Contacts_V1_Contact) -> Void) async -> RPCError? {
            var request = Switchboard_Contacts_V1_CreateContactRequest()
            var contact = Switchboard_Contacts_V1_Contact()
            var name = Switchboard_Contacts_V1_PersonName()
            name.given = "Big"
            contact.name = name
            change(&contact)
            request.contact = contact
            return await rpcError { _ = try await client.stub.createContact(request, options: client.options) }
        }
        let fourMB = await create {
            var address = Switchboard_Common_V1_PostalAddress()
            address.addressLines = [String(repeating: "x", count: 4_000_000)]
            $0.addresses = [address]
        }
        #expect(fourMB?.code == .invalidArgument)
        #expect(fields(fourMB) == ["contact.addresses[0].address_lines[0]"])
        // One Character: "e" and a million combining acute accents (2 MB of UTF-8).
        let character = "e" + String(repeating: "\u{301}", count: 1_000_000)
        #expect(character.count == 1)
        let oneCharacter = await create { $0.name?.given = character }
        #expect(fields(oneCharacter) == ["contact.name.given"])
        let owner = await create { $0.ownerId = String(repeating: "o", count: 1000) }
        #expect(fields(owner) == ["contact.owner_id"])
        let label = await create {
            var email = Switchboard_Contacts_V1_Email()
            email.address = "big@example.com"
            email.label = String(repeating: "l", count: 100_000)
            $0.emails = [email]
        }
        #expect(fields(label) == ["contact.emails[0].label"])
        // A list over its bound is one violation, however long: not one per element.
        let tags = await create { $0.tags = Array(repeating: "", count: 100_000) }
        #expect(fields(tags) == ["contact.tags"])
        // An error never echoes a client's megabytes.
        let email = await create {
            var e = Switchboard_Contacts_V1_Email()
            e.address = String(repeating: "@", count: 200_000)
            $0.emails = [e]
        }
        #expect(fields(email) == ["contact.emails[0].address"])
        #expect((email?.message.utf8.count ?? .max) < 1000)

        #expect(try await client.list().contacts.isEmpty)
        #expect(try await changes(t).isEmpty)
    }

    @Test("a contact within every field bound but over the total size is INVALID_ARGUMENT naming the contact")
    func totalSize() async throws {
        let t = tenant()
        let keys = try await defineStringFields(tenant: t, count: 50)
        let user = try await harness.client(tenant: t)
        // 50 values of 2000 three-byte characters: 300 KB, over the 256 KiB default.
        let value = String(repeating: "€", count: 2000)
        let error = await rpcError { _ = try await user.create(custom: Dictionary(uniqueKeysWithValues: keys.map { ($0, string(value)) })) }
        #expect(error?.code == .invalidArgument)
        #expect(fields(error) == ["contact"])
        #expect(error?.fieldViolations.first?.reason == "TOO_LARGE")
        #expect(try await user.list().contacts.isEmpty)
        #expect(try await changes(t).isEmpty)
        // An update that would grow a contact past the bound is refused the same way.
        let small = try await user.create(custom: Dictionary(uniqueKeysWithValues: keys.prefix(10).map { ($0, string(value)) }))
        let grow = await rpcError {
            _ = try await user.update(small.id, paths: ["custom_fields"]) {
                var s = Google_Protobuf_Struct()
                s.fields = Dictionary(uniqueKeysWithValues: keys.map { ($0, string(value)) })
                $0.customFields = s
            }
        }
        #expect(fields(grow) == ["contact"])
        #expect(try await user.get(small.id) == small)
    }

    @Test("contacts near the size bound: default pages stay under the byte budget, paging and WatchChanges see each once")
    func largeContactsPageAndFeed() async throws {
        let t = tenant()
        let keys = try await defineStringFields(tenant: t, count: 40)
        let user = try await harness.client(tenant: t)
        // 40 × 6000 bytes: about 240 KB each, 18 of them 4.3 MB — more than one 4 MiB response.
        let value = String(repeating: "€", count: 2000)
        var created: [String] = []
        for i in 0..<18 {
            created.append(try await user.create(given: "Large\(i)", custom: Dictionary(uniqueKeysWithValues: keys.map { ($0, string(value)) })).id)
        }
        var seen: [String] = []
        var token = ""
        var pages = 0
        repeat {
            let page = try await user.list(token: token)
            #expect(page.serializedBytes().count <= ContactsLimits().pageBytes + 4096)
            #expect(!page.contacts.isEmpty)
            seen += page.contacts.map(\.id)
            token = page.page?.nextPageToken ?? ""
            pages += 1
        } while !token.isEmpty && pages < 40
        #expect(seen == created)
        #expect(pages > 1)

        let stub = user.stub, options = user.options
        let events = try await stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: options) { events in
            var ids: [String] = []
            for try await event in events {
                ids.append(event.resourceId)
                if ids.count == 18 { break }
            }
            return ids
        }
        #expect(events == created)

        // The outbox read stops at the byte budget and says more follow.
        let batch = try await ChangeFeed(schema: "contacts").events(
            tenantID: t, after: 0, resourceTypes: [], limit: 500, maxBytes: 500_000, pool: harness.pool)
        #expect((1...3).contains(batch.events.count))
        #expect(batch.more)
    }

    @Test("request ids longer than 128 bytes or not printable ASCII are INVALID_ARGUMENT, not INTERNAL from PostgreSQL")
    func requestIDs() async throws {
        let t = tenant()
        let user = try await harness.client(tenant: t)
        let admin = try await harness.client(tenant: t, roles: [.admin])
        // 100 Characters of 100 bytes each passed the old Character count and broke PostgreSQL's index.
        let wide = String(repeating: "e" + String(repeating: "\u{301}", count: 50), count: 100)
        for requestID in [wide, String(repeating: "r", count: 129), String(repeating: "r", count: 10_000), "tab\there"] {
            let created = await rpcError { _ = try await user.create(requestID: requestID) }
            #expect(created?.code == .invalidArgument)
            #expect(fields(created) == ["request_id"])
            var define = Switchboard_Contacts_V1_DefineFieldRequest()
            var definition = Switchboard_Contacts_V1_FieldDefinition()
            definition.key = "tier"
            definition.displayName = "Tier"
            definition.type = .string
            define.definition = definition
            define.requestId = requestID
            let defined = await rpcError { _ = try await admin.stub.defineField(define, options: admin.options) }
            #expect(defined?.code == .invalidArgument)
            #expect(fields(defined) == ["request_id"])
        }
        // UUIDs and the 128-byte maximum still work.
        _ = try await user.create(requestID: UUID().uuidString)
        _ = try await user.create(requestID: String(repeating: "k", count: 128))
        #expect(try await user.list().contacts.count == 2)
    }

    @Test("repeated filters, masks and tokens are bounded: too many, duplicates and forged numbers are INVALID_ARGUMENT")
    func boundedRequestLists() async throws {
        let client = try await harness.client(tenant: tenant())
        let manyStatuses = await rpcError { _ = try await client.list { $0.statuses = Array(repeating: .lead, count: 100_000) } }
        #expect(fields(manyStatuses) == ["statuses"])
        let duplicate = await rpcError { _ = try await client.list { $0.statuses = [.lead, .customer, .lead] } }
        #expect(fields(duplicate) == ["statuses[2]"])
        let manyTypes = await rpcError { _ = try await client.list { $0.types = Array(repeating: .init(protoValue: 9), count: 50_000) } }
        #expect(fields(manyTypes) == ["types"])
        let tag = await rpcError { _ = try await client.list { $0.tag = String(repeating: "t", count: 100_000) } }
        #expect(fields(tag) == ["tag"])
        #expect(
            try await client.list {
                $0.statuses = [.lead, .customer]
                $0.types = [.person]
            }.contacts.isEmpty)

        var watch = Switchboard_Common_V1_WatchChangesRequest()
        watch.resourceTypes = Array(repeating: "switchboard.contacts.v1.Contact", count: 1000)
        let stub = client.stub, options = client.options
        let watchError = await rpcError {
            _ = try await stub.watchChanges(watch, options: options) { events in for try await _ in events {} }
        }
        #expect(fields(watchError) == ["resource_types"])

        let contact = try await client.create()
        let paths = await rpcError { _ = try await client.update(contact.id, paths: Array(repeating: "tags", count: 10_000)) { _ in } }
        #expect(fields(paths) == ["update_mask.paths"])
        let etag = await rpcError { _ = try await client.delete(contact.id, etag: String(repeating: "\"", count: 100_000)) }
        #expect(fields(etag) == ["etag"])

        // A page token is not signed: a forged cursor time beyond any timestamp reached SQL and came back INTERNAL.
        for _ in 0..<2 { _ = try await client.create() }
        let first = try await client.list(pageSize: 1)
        let issued = try #require(first.page?.nextPageToken)
        var token = try #require(PageToken.decode(issued))
        token.cursor[0] = String(Int64.max)
        let forged = token.encoded
        let forgedError = await rpcError { _ = try await client.list(pageSize: 1, token: forged) }
        #expect(forgedError?.code == .invalidArgument)
        #expect(fields(forgedError) == ["page.page_token"])
        let longToken = await rpcError { _ = try await client.list(token: String(repeating: "A", count: 100_000)) }
        #expect(fields(longToken) == ["page.page_token"])
        #expect(try await client.list(pageSize: 1, token: issued).contacts.count == 1)
    }

    @Test("an error lists at most 10 field violations, however many fields are wrong")
    func violationsAreCapped() async throws {
        let client = try await harness.client(tenant: tenant())
        let error = await rpcError { _ = try await client.create(emails: (0..<20).map { "not-an-address-\($0)" }) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.fieldViolations.count == 10)
    }

    @Test("field definitions are bounded: allowed values by count and bytes, and the definitions of a tenant")
    func fieldDefinitionBounds() async throws {
        let t = tenant()
        let admin = try await harness.client(tenant: t, roles: [.admin])
        var define = Switchboard_Contacts_V1_DefineFieldRequest()
        var definition = Switchboard_Contacts_V1_FieldDefinition()
        definition.key = "tier"
        definition.displayName = "Tier"
        definition.type = .enum
        definition.allowedValues = (0..<10_000).map { "v\($0)" }
        define.definition = definition
        let many = await rpcError { _ = try await admin.stub.defineField(define, options: admin.options) }
        #expect(fields(many) == ["definition.allowed_values"])
        definition.allowedValues = ["gold", String(repeating: "€", count: 100)]
        define.definition = definition
        let long = await rpcError { _ = try await admin.stub.defineField(define, options: admin.options) }
        #expect(fields(long) == ["definition.allowed_values[1]"])
        var retire = Switchboard_Contacts_V1_RetireFieldRequest()
        retire.key = String(repeating: "k", count: 100_000)
        let key = await rpcError { _ = try await admin.stub.retireField(retire, options: admin.options) }
        #expect(fields(key) == ["key"])

        _ = try await defineStringFields(tenant: t, count: ContactRules.maxFieldDefinitions)
        definition.allowedValues = ["gold"]
        define.definition = definition
        let full = await rpcError { _ = try await admin.stub.defineField(define, options: admin.options) }
        #expect(full?.code == .failedPrecondition)
        let listed = try await admin.stub.listFieldDefinitions(Switchboard_Contacts_V1_ListFieldDefinitionsRequest(), options: admin.options)
        #expect(listed.definitions.count == ContactRules.maxFieldDefinitions)
    }

    /// Defines `count` string custom fields in the tenant; returns their keys.
    private func defineStringFields(tenant: String, count: Int) async throws -> [String] {
        let admin = try await harness.client(tenant: tenant, roles: [.admin])
        var keys: [String] = []
        for i in 0..<count {
            var define = Switchboard_Contacts_V1_DefineFieldRequest()
            var definition = Switchboard_Contacts_V1_FieldDefinition()
            definition.key = "note_\(i)"
            definition.displayName = "Note \(i)"
            definition.type = .string
            define.definition = definition
            _ = try await admin.stub.defineField(define, options: admin.options)
            keys.append(definition.key)
        }
        return keys
    }
}
