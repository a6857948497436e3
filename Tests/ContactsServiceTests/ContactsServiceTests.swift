import Foundation
import JWTKit
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// Every contacts RPC over real HTTP/2 against a real PostgreSQL, as the service's own (RLS-bound) role.
@Suite("Contacts service", .serialized)
final class ContactsServiceTests {
    let harness: ContactsHarness
    init() async throws { harness = try await ContactsHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private func tenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

    @Test("create, get, update with etag, delete, undelete")
    func lifecycle() async throws {
        let client = try await harness.client(tenant: tenant())
        let created = try await client.create(emails: ["ada@example.com"], tags: ["VIP", "vip", " engines "])
        #expect(created.name?.display == "Ada Lovelace")
        #expect(created.tags == ["vip", "engines"])
        #expect(created.emails.first?.primary == true)
        #expect(created.ownerId == "user-1")
        #expect(created.audit?.createTime != nil)
        #expect(try await client.get(created.id) == created)

        let updated = try await client.update(created.id, paths: ["name.family", "status"], etag: created.etag) {
            var name = Switchboard_Contacts_V1_PersonName()
            name.family = "King"
            $0.name = name
            $0.status = .customer
        }
        #expect(updated.name?.given == "Ada")
        #expect(updated.name?.family == "King")
        #expect(updated.status == .customer)
        #expect(updated.etag != created.etag)
        // The same change again (tags as stored once normalised) changes nothing: the same etag and update time.
        let again = try await client.update(created.id, paths: ["status", "tags"], etag: updated.etag) {
            $0.status = .customer
            $0.tags = ["VIP", "engines"]
        }
        #expect(again.etag == updated.etag && again.audit?.updateTime == updated.audit?.updateTime, "\(again.etag) \(updated.etag)")

        let deleted = try await client.delete(created.id, etag: updated.etag)
        #expect(deleted.audit?.deleteTime != nil)
        #expect(await code { _ = try await client.get(created.id) } == .notFound)
        #expect(try await client.get(created.id, includeDeleted: true).id == created.id)
        #expect(try await client.list().contacts.isEmpty)
        let restored = try await client.undelete(created.id)
        #expect(restored.audit?.deleteTime == nil)
        #expect(try await client.list().contacts.map(\.id) == [created.id])
    }

    @Test("invalid input is INVALID_ARGUMENT naming each field, and stores nothing")
    func validation() async throws {
        let client = try await harness.client(tenant: tenant())
        var request = Switchboard_Contacts_V1_CreateContactRequest()
        var contact = Switchboard_Contacts_V1_Contact()
        contact.emails = [("nope", false), ("a@b.co", true), ("c@d.co", true)].map {
            var e = Switchboard_Contacts_V1_Email()
            e.address = $0.0
            e.primary = $0.1
            return e
        }
        contact.phones = ["12345"].map {
            var p = Switchboard_Contacts_V1_Phone()
            p.number = $0
            return p
        }
        request.contact = contact
        let error = await rpcError { _ = try await client.stub.createContact(request, options: client.options) }
        #expect(error?.code == .invalidArgument)
        #expect(
            Set(error?.fieldViolations.map(\.field) ?? [])
                == ["contact.name", "contact.emails[0].address", "contact.emails", "contact.phones[0].number"])
        var badType = Switchboard_Contacts_V1_Contact()
        var name = Switchboard_Contacts_V1_PersonName()
        name.given = "Typed"
        badType.name = name
        badType.type = .init(protoValue: 42)
        request.contact = badType
        let typeError = await rpcError { _ = try await client.stub.createContact(request, options: client.options) }
        #expect(typeError?.fieldViolations.map(\.field) == ["contact.type"])
        #expect(
            await code { _ = try await client.stub.createContact(Switchboard_Contacts_V1_CreateContactRequest(), options: client.options) }
                == .invalidArgument)
        #expect(await code { _ = try await client.get("not-a-uuid") } == .invalidArgument)
        #expect(await code { _ = try await client.get(UUID().uuidString) } == .notFound)
        let badMask = await rpcError {
            let c = try await client.create()
            _ = try await client.update(c.id, paths: ["name.given", "id"]) { _ in }
        }
        #expect(badMask?.fieldViolations.map(\.field) == ["update_mask.paths[1]"])
        #expect(try await client.list().contacts.count == 1)
    }

    @Test("an email already used in the tenant is ALREADY_EXISTS naming the contact that has it")
    func uniqueEmail() async throws {
        let client = try await harness.client(tenant: tenant())
        let first = try await client.create(emails: ["grace@example.com"])
        let error = await rpcError { _ = try await client.create(given: "Other", emails: ["Grace@Example.com"]) }
        #expect(error?.code == .alreadyExists)
        #expect(error?.message.contains(first.id) == true)
        // After a delete the address is free again; undeleting the first then clashes.
        _ = try await client.delete(first.id)
        let second = try await client.create(given: "Second", emails: ["grace@example.com"])
        #expect(await code { _ = try await client.undelete(first.id) } == .alreadyExists)
        // Another tenant may use the same address.
        let other = try await harness.client(tenant: tenant())
        #expect(try await other.create(emails: ["grace@example.com"]).id != second.id)
    }

    @Test("a retried mutation with the same request id returns the first response and changes nothing")
    func idempotency() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let requestID = UUID().uuidString
        let first = try await client.create(emails: ["idem@example.com"], requestID: requestID)
        let retry = try await client.create(emails: ["idem@example.com"], requestID: requestID)
        #expect(retry == first)
        #expect(try await client.list().contacts.count == 1)

        let updateID = UUID().uuidString
        let updated = try await client.update(first.id, paths: ["tags"], etag: first.etag, requestID: updateID) { $0.tags = ["once"] }
        let replayed = try await client.update(first.id, paths: ["tags"], etag: first.etag, requestID: updateID) { $0.tags = ["once"] }
        #expect(replayed == updated)
        #expect(try await client.get(first.id).etag == updated.etag)

        let reused = await rpcError { _ = try await client.update(first.id, paths: ["tags"], requestID: requestID) { $0.tags = ["x"] } }
        #expect(reused?.code == .invalidArgument)
        #expect(reused?.fieldViolations.first?.field == "request_id")

        // The id reused for a different request to the same method is refused, not answered with the first response
        // (which would lose the second write without a word); the first request still replays.
        let different = await rpcError { _ = try await client.create(emails: ["other@example.com"], requestID: requestID) }
        #expect(different?.code == .invalidArgument)
        #expect(different?.fieldViolations.first?.field == "request_id")
        #expect(different?.message.contains("different") == true, "\(String(describing: different))")
        #expect(try await client.create(emails: ["idem@example.com"], requestID: requestID) == first)
        #expect(try await client.list().contacts.count == 1)

        // Custom fields are a map: the same entries in another order are the same request.
        let fieldsID = UUID().uuidString
        let entries = (0..<12).map { ("f\($0)", string("v\($0)")) }
        var few = [String: Google_Protobuf_Value]()
        var many = [String: Google_Protobuf_Value](minimumCapacity: 256)
        for (key, value) in entries { few[key] = value }
        for (key, value) in entries.reversed() { many[key] = value }
        let admin = try await harness.client(tenant: t, roles: [.admin])
        for (key, _) in entries {
            var define = Switchboard_Contacts_V1_DefineFieldRequest()
            var definition = Switchboard_Contacts_V1_FieldDefinition()
            definition.key = key
            definition.displayName = key
            definition.type = .string
            define.definition = definition
            _ = try await admin.stub.defineField(define, options: admin.options)
        }
        let withFields = try await client.create(given: "Fields", requestID: fieldsID, custom: few)
        #expect(try await client.create(given: "Fields", requestID: fieldsID, custom: many) == withFields)
    }

    @Test("concurrent creates with one request id store one contact and all answer with it")
    func concurrentIdempotentCreates() async throws {
        let client = try await harness.client(tenant: tenant())
        let requestID = UUID().uuidString
        let responses = try await withThrowingTaskGroup(of: Switchboard_Contacts_V1_Contact.self) { group in
            for _ in 0..<8 { group.addTask { try await client.create(emails: ["race@example.com"], requestID: requestID) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(responses.map(\.id)).count == 1)
        #expect(responses.allSatisfy { $0 == responses[0] })
        #expect(try await client.list().contacts.map(\.id) == [responses[0].id])
        #expect(try await client.get(responses[0].id) == responses[0])
    }

    @Test("a request id is the user's: another user of the tenant reusing it makes a contact of their own, not a replay")
    func idempotencyPerUser() async throws {
        let t = tenant()
        let (ada, bob) = (try await harness.client(tenant: t, user: "ada"), try await harness.client(tenant: t, user: "bob"))
        let first = try await ada.create(given: "First", requestID: "same-id")
        let other = try await bob.create(given: "Other", requestID: "same-id")
        #expect(other.id != first.id && other.name?.given == "Other")
        #expect(try await ada.create(given: "First", requestID: "same-id") == first)
        #expect(try await bob.create(given: "Other", requestID: "same-id") == other)
    }

    @Test("request ids are remembered for the retention period, then pruned across tenants, and only by the purge")
    func idempotencyRetention() async throws {
        let client = try await harness.client(tenant: tenant())
        let old = try await client.create(given: "Old", requestID: "old-request")
        let recent = try await client.create(given: "Recent", requestID: "recent-request")
        // Age one key (as the administrator: the service's role cannot reach rows outside its tenant).
        let admin = PostgresPool(
            configuration: PostgresPoolConfiguration(
                conninfo: adminConninfo.replacingOccurrences(of: "dbname=postgres", with: "dbname=\(harness.database)"), maxConnections: 1))
        defer { admin.close() }
        try await admin.query(
            "UPDATE contacts.idempotency_keys SET created_at = now() - interval '25 hours' WHERE request_id LIKE $1", [.text("%old-request")])
        // Without the purge setting the service's role deletes nothing, whatever its tenant.
        let stray = try await harness.pool.query(settings: ["app.tenant_id": "someone-else"], "DELETE FROM contacts.idempotency_keys")
        #expect(stray.affectedRows == 0)
        #expect(try await Idempotency(schema: "contacts").purge(olderThan: 24, pool: harness.pool) == 1)
        // The pruned id is a new request now; the recent one still replays.
        #expect(try await client.create(given: "Old", requestID: "old-request").id != old.id)
        #expect(try await client.create(given: "Recent", requestID: "recent-request") == recent)

        // The change feed's retention works the same way.
        try await admin.query("UPDATE contacts.changes SET commit_time = now() - interval '10 days' WHERE resource_id = $1", [.text(old.id)])
        #expect(try await ChangeFeed(schema: "contacts").purge(olderThan: 9, pool: harness.pool) == 1)
    }

    @Test("a stale etag is ABORTED and the newer data survives")
    func etagConflict() async throws {
        let client = try await harness.client(tenant: tenant())
        let created = try await client.create()
        _ = try await client.update(created.id, paths: ["tags"], etag: created.etag) { $0.tags = ["first"] }
        #expect(await code { _ = try await client.update(created.id, paths: ["tags"], etag: created.etag) { $0.tags = ["second"] } } == .aborted)
        #expect(await code { _ = try await client.delete(created.id, etag: created.etag) } == .aborted)
        #expect(try await client.get(created.id).tags == ["first"])
    }

    @Test("paging returns every row exactly once while rows are inserted concurrently")
    func paginationUnderInserts() async throws {
        let client = try await harness.client(tenant: tenant())
        var original: Set<String> = []
        for i in 0..<25 { original.insert(try await client.create(given: "P\(i)").id) }
        var seen: [String] = []
        var token = ""
        var pages = 0
        repeat {
            let page = try await client.list(pageSize: 7, token: token)
            seen += page.contacts.map(\.id)
            token = page.page?.nextPageToken ?? ""
            pages += 1
            _ = try await client.create(given: "Concurrent\(pages)")
        } while !token.isEmpty && pages < 50
        #expect(Set(seen).count == seen.count, "a row appeared twice")
        #expect(original.isSubset(of: Set(seen)), "a row present before paging was skipped")
        // Descending by family name with a filter, and a token reused with other filters is refused.
        let filtered = try await client.list(pageSize: 5) {
            $0.orderBy = .familyName
            $0.descending = true
        }
        #expect(filtered.contacts.count == 5)
        let tokenForOther = filtered.page?.nextPageToken ?? ""
        #expect(await code { _ = try await client.list(pageSize: 5, token: tokenForOther) } == .invalidArgument)
        #expect(await code { _ = try await client.list(pageSize: 5, token: "garbage") } == .invalidArgument)
    }

    @Test("custom fields: admins define them, values are type-checked, required ones enforced, retired ones refused")
    func customFields() async throws {
        let t = tenant()
        let admin = try await harness.client(tenant: t, roles: [.admin])
        let user = try await harness.client(tenant: t)
        var define = Switchboard_Contacts_V1_DefineFieldRequest()
        var definition = Switchboard_Contacts_V1_FieldDefinition()
        definition.key = "tier"
        definition.displayName = "Tier"
        definition.type = .enum
        definition.allowedValues = ["gold", "silver"]
        definition.required = true
        define.definition = definition
        #expect(await code { _ = try await user.stub.defineField(define, options: user.options) } == .permissionDenied)
        _ = try await admin.stub.defineField(define, options: admin.options)
        #expect(await code { _ = try await admin.stub.defineField(define, options: admin.options) } == .alreadyExists)

        #expect(await code { _ = try await user.create() } == .invalidArgument)  // required field missing
        let bad = await rpcError { _ = try await user.create(custom: ["tier": string("bronze"), "unknown": number(1)]) }
        #expect(Set(bad?.fieldViolations.map(\.field) ?? []) == ["contact.custom_fields.tier", "contact.custom_fields.unknown"])
        let ok = try await user.create(custom: ["tier": string("gold")])
        #expect(ok.customFields?.fields["tier"] == string("gold"))

        var retire = Switchboard_Contacts_V1_RetireFieldRequest()
        retire.key = "tier"
        #expect(try await admin.stub.retireField(retire, options: admin.options).retired)
        #expect(await code { _ = try await user.create(custom: ["tier": string("gold")]) } == .invalidArgument)
        #expect(try await user.create().id.isEmpty == false)  // retired fields are no longer required
        // A contact that holds a value of the retired field keeps it, and its other fields still change; a new value
        // for the retired field is refused, and removing the value is allowed.
        let renamed = try await user.update(ok.id, paths: ["name.middle"]) {
            var name = Switchboard_Contacts_V1_PersonName()
            name.middle = "M"
            $0.name = name
        }
        #expect(renamed.name?.middle == "M" && renamed.customFields?.fields["tier"] == string("gold"))
        let changed = await rpcError {
            _ = try await user.update(ok.id, paths: ["custom_fields.tier"]) {
                var s = Google_Protobuf_Struct()
                s.fields = ["tier": string("silver")]
                $0.customFields = s
            }
        }
        #expect(changed?.fieldViolations.map(\.field) == ["contact.custom_fields.tier"], "\(String(describing: changed))")
        let cleared = try await user.update(ok.id, paths: ["custom_fields.tier"]) { _ in }
        #expect(cleared.customFields?.fields["tier"] == nil)
    }

    @Test("tenant B can neither read, list, change, delete nor watch tenant A's contacts")
    func isolation() async throws {
        let a = try await harness.client(tenant: tenant())
        let b = try await harness.client(tenant: tenant())
        let contact = try await a.create(emails: ["a@example.com"])
        #expect(await code { _ = try await b.get(contact.id) } == .notFound)
        #expect(try await b.list().contacts.isEmpty)
        #expect(await code { _ = try await b.update(contact.id, paths: ["tags"]) { $0.tags = ["stolen"] } } == .notFound)
        #expect(await code { _ = try await b.delete(contact.id) } == .notFound)
        #expect(await code { _ = try await b.undelete(contact.id) } == .notFound)
        var batch = Switchboard_Contacts_V1_BatchGetContactsRequest()
        batch.ids = [contact.id]
        #expect(try await b.stub.batchGetContacts(batch, options: b.options).missingIds == [contact.id])
        let events = try await b.stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: b.options) { events in
            try await withThrowingTaskGroup(of: Int.self) { group in
                group.addTask {
                    var n = 0
                    for try await _ in events { n += 1 }
                    return n
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(500))
                    return -1
                }
                let first = try await group.next()!
                group.cancelAll()
                return first
            }
        }
        #expect(events == -1, "tenant B's watch delivered tenant A's changes")
        #expect(try await a.get(contact.id).tags == [])
    }

    @Test("row-level security stops a query that forgets its tenant filter")
    func rowLevelSecurity() async throws {
        let a = try await harness.client(tenant: "rls-a-" + UUID().uuidString.prefix(6))
        _ = try await a.create()
        // As the service's own role, inside tenant B's transaction, a query with no tenant filter at all:
        let seen = try await harness.pool.transaction(settings: ["app.tenant_id": "rls-b"]) { c in
            try await c.query("SELECT count(*) AS n FROM contacts.contacts").first!.int("n")
        }
        #expect(seen == 0)
        // With no tenant set, nothing is visible either.
        #expect(try await harness.pool.query("SELECT count(*) AS n FROM contacts.contacts").first!.int("n") == 0)
        // Writing a row for another tenant is refused by the policy's WITH CHECK.
        await #expect(throws: PostgresError.self) {
            try await harness.pool.transaction(settings: ["app.tenant_id": "rls-b"]) { c in
                try await c.query("UPDATE contacts.contacts SET tenant_id = 'rls-b'")
                try await c.query(
                    """
                    INSERT INTO contacts.contacts (tenant_id, id, contact_type, status, owner_id, created_at, created_by, updated_at, updated_by)
                    VALUES ('someone-else', gen_random_uuid(), 1, 1, 'x', now(), 'x', now(), 'x')
                    """)
            }
        }
        // And the role cannot switch RLS off.
        let bypass = try await harness.pool.query("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user").first!
        #expect(try bypass.bool("rolbypassrls") == false)
        #expect(try bypass.bool("rolsuper") == false)
    }

    @Test("auth: missing, malformed, badly signed and expired tokens are UNAUTHENTICATED; weak roles PERMISSION_DENIED")
    func authMatrix() async throws {
        let t = tenant()
        let anonymous = Client(
            stub: Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: harness.channel)), options: CallOptions())
        #expect(await code { _ = try await anonymous.list() } == .unauthenticated)
        let garbage = try await harness.client(tenant: t, token: "not.a.jwt")
        #expect(await code { _ = try await garbage.list() } == .unauthenticated)
        let forged = try await harness.client(
            tenant: t, token: try await ContactsHarness.token(tenant: t, roles: [.admin], secret: "another-secret-0123456789abcdefghijkl"))
        #expect(await code { _ = try await forged.list() } == .unauthenticated)
        let expired = try await harness.client(
            tenant: t, token: try await ContactsHarness.token(tenant: t, roles: [.admin], expires: Date().addingTimeInterval(-60)))
        let expiredError = await rpcError { _ = try await expired.list() }
        #expect(expiredError?.code == .unauthenticated)
        #expect(expiredError?.message.contains("expired") == true)
        let reader = try await harness.client(tenant: t, roles: [.readOnly])
        #expect(try await reader.list().contacts.isEmpty)
        #expect(await code { _ = try await reader.create() } == .permissionDenied)
        let manager = try await harness.client(tenant: t, roles: [.manager])
        #expect(try await manager.create().id.isEmpty == false)

        // A service identity (no tenant) may follow the cross-tenant feed and nothing else; a token that mixes the
        // service role with a tenant or a user's role is not a valid identity.
        let service = try await harness.client(tenant: "", token: try await ServiceHarness.serviceToken())
        let denied = await rpcError { _ = try await service.list() }
        #expect(denied?.code == .permissionDenied, "\(String(describing: denied))")
        var mixed = SwitchboardClaims.service("analytics", expires: Date().addingTimeInterval(600))
        mixed.tenantID = t
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: testSecret), digestAlgorithm: .sha256)
        let mixedClient = try await harness.client(tenant: t, token: try await keys.sign(mixed))
        #expect(await code { _ = try await mixedClient.list() } == .unauthenticated)
    }

    @Test("WatchChanges replays history, then streams live changes in sequence order")
    func watchChanges() async throws {
        let client = try await harness.client(tenant: tenant())
        let first = try await client.create()
        let stub = client.stub, options = client.options
        let events = Task {
            try await stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: options) { events in
                var seen: [Switchboard_Common_V1_ChangeEvent] = []
                for try await event in events {
                    seen.append(event)
                    if seen.count == 3 { break }
                }
                return seen
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        _ = try await client.update(first.id, paths: ["tags"]) { $0.tags = ["live"] }
        _ = try await client.delete(first.id)
        let seen = try await events.value
        #expect(seen.map(\.sequence) == [1, 2, 3])
        #expect(seen.map(\.kind) == [.created, .updated, .deleted])
        #expect(seen[1].changedFields == ["tags"])
        #expect(seen.allSatisfy { $0.resourceId == first.id })
        // The payload is the contract: the Contact's proto3 JSON (carried as a Struct), which decodes into the Contact.
        let published = try Switchboard_Contacts_V1_Contact(protoJSONText: try #require(seen[1].resource).protoJSONText())
        #expect(published.id == first.id)
        #expect(published.tags == ["live"])
        #expect(published.name == first.name)
        #expect(published.etag == "\"2\"")
    }

    @Test("a stock grpcio client calls the contacts RPCs from stubs generated from Protos/")
    func grpcioClient() async throws {
        let token = try await ContactsHarness.token(tenant: tenant(), roles: [.user])
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("contacts-grpcio-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let status = await spawnAndWait(
            [
                pythonPath, repositoryRoot.appendingPathComponent("Tests/Interop/contacts_client.py").path,
                "--port", String(harness.port), "--token", token,
            ],
            environment: ["SWITCHBOARD_INTEROP_STUBS": interopStubsPath], outputPath: output)
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(log)")
        #expect(log.contains("PASS contacts_client"), "\(log)")
    }
}
