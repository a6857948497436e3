import ContactsService
import Foundation
import Logging
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Synchronization
import Testing

@testable import OrganizationService

/// The projection of contacts, kept from the contacts service's feed: the organization service follows a real contacts
/// service over HTTP/2, and the projection's rules are checked on synthetic changes.
@Suite("Contacts feed consumer", .serialized)
final class ContactsFeedTests {
    let contacts: ServiceHarness
    let organization: ServiceHarness
    let tokenFile: String

    init() async throws {
        contacts = try await ServiceHarness.start(ContactsService.description)
        tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("org-feed-token-\(UUID())").path
        try (try await ServiceHarness.serviceToken("organization")).write(toFile: tokenFile, atomically: true, encoding: .utf8)
        organization = try await ServiceHarness.start(
            OrganizationService.description(
                pageBytes: 1 << 20,
                contactsFeed: .init(host: "127.0.0.1", port: contacts.port, tokenFile: tokenFile)))
    }

    deinit {
        let (c, o, file) = (contacts, organization, tokenFile)
        Task {
            await o.stop()
            await c.stop()
            try? FileManager.default.removeItem(atPath: file)
        }
    }

    private struct Projected: Equatable {
        var name: String
        var deleted: Bool
        var mergedInto: String?
    }

    private func projected(_ id: String, tenant: String) async throws -> Projected? {
        let row = try await organization.pool.query(
            settings: ["app.tenant_id": tenant],
            "SELECT display_name, deleted, merged_into::text AS merged_into FROM organization.contacts WHERE tenant_id = $1 AND contact_id = $2::uuid",
            [.text(tenant), .text(id)]
        ).first
        guard let row else { return nil }
        return Projected(name: try row.string("display_name"), deleted: try row.bool("deleted"), mergedInto: try row.optionalString("merged_into"))
    }

    /// Waits (up to 30 s: the suite runs beside every other one in CI) until the projection of `id` is `expected`.
    private func eventually(_ id: String, tenant: String, is expected: Projected?) async throws -> Bool {
        try await SwitchboardTestSupport.eventually { try await projected(id, tenant: tenant) == expected }
    }

    @Test("contacts created, renamed, deleted and undeleted in the contacts service show in the projection, per tenant")
    func followsContacts() async throws {
        let t = tenant()
        let stub = Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: contacts.channel))
        let options = try await contacts.options(tenant: t)
        var create = Switchboard_Contacts_V1_CreateContactRequest()
        var contact = Switchboard_Contacts_V1_Contact()
        var name = Switchboard_Contacts_V1_PersonName()
        name.given = "Ada"
        name.family = "Lovelace"
        contact.name = name
        create.contact = contact
        let created = try await stub.createContact(create, options: options)
        #expect(try await eventually(created.id, tenant: t, is: Projected(name: "Ada Lovelace", deleted: false)))
        // Another tenant does not see it.
        #expect(try await projected(created.id, tenant: tenant()) == nil)

        var update = Switchboard_Contacts_V1_UpdateContactRequest()
        var changed = Switchboard_Contacts_V1_Contact()
        changed.id = created.id
        var newName = Switchboard_Contacts_V1_PersonName()
        newName.family = "King"
        changed.name = newName
        update.contact = changed
        update.updateMask = Google_Protobuf_FieldMask(paths: ["name.family"])
        _ = try await stub.updateContact(update, options: options)
        #expect(try await eventually(created.id, tenant: t, is: Projected(name: "Ada King", deleted: false)))

        // The contact is known to organization now: it can become a member, and its name shows.
        let org = OrganizationStub(client: RPCClient(transport: organization.channel))
        let orgOptions = try await organization.options(tenant: t)
        var createOrganization = Switchboard_Organization_V1_CreateOrganizationRequest()
        var acme = Organization()
        acme.name = "Acme"
        createOrganization.organization = acme
        let acmeID = try await org.createOrganization(createOrganization, options: orgOptions).id
        var createMembership = Switchboard_Organization_V1_CreateMembershipRequest()
        var membership = Switchboard_Organization_V1_Membership()
        membership.contactId = created.id
        membership.organizationId = acmeID
        createMembership.membership = membership
        #expect(try await org.createMembership(createMembership, options: orgOptions).contactDisplayName == "Ada King")
        var members = Switchboard_Organization_V1_ListOrganizationMembersRequest()
        members.organizationId = acmeID

        var delete = Switchboard_Contacts_V1_DeleteContactRequest()
        delete.id = created.id
        _ = try await stub.deleteContact(delete, options: options)
        #expect(try await eventually(created.id, tenant: t, is: Projected(name: "Ada King", deleted: true)))
        #expect(try await org.listOrganizationMembers(members, options: orgOptions).memberships.isEmpty)
        // A contact the organization service has never heard of is NOT_FOUND.
        membership.contactId = UUID().uuidString
        createMembership.membership = membership
        #expect(await code { _ = try await org.createMembership(createMembership, options: orgOptions) } == .notFound)
        var undelete = Switchboard_Contacts_V1_UndeleteContactRequest()
        undelete.id = created.id
        _ = try await stub.undeleteContact(undelete, options: options)
        #expect(try await eventually(created.id, tenant: t, is: Projected(name: "Ada King", deleted: false)))
        #expect(try await org.listOrganizationMembers(members, options: orgOptions).memberships.map(\.contactId) == [created.id])
        // The cursor is stored with the effects.
        let cursor = try await organization.pool.query("SELECT cursor FROM organization.feed_cursors WHERE feed = 'contacts'").first
        #expect(try cursor?.string("cursor").isEmpty == false)
    }

    @Test("MERGED hides the loser and UNMERGED shows it again; a redelivered older event changes nothing")
    func mergeAndOrder() async throws {
        let t = tenant()
        let projection = PostgresContactProjection(feed: ChangeFeed(schema: "organization")) { _ in "{}" }
        let (loser, winner) = (UUID(), UUID())
        func apply(_ changes: [ContactChange]) async throws {
            try await organization.pool.transaction { c in try await projection.apply(changes, on: c) }
        }
        try await apply([
            ContactChange(tenantID: t, contactID: loser, sequence: 1, kind: .state(displayName: "Loser", deleted: false)),
            ContactChange(tenantID: t, contactID: winner, sequence: 2, kind: .state(displayName: "Winner", deleted: false)),
            ContactChange(tenantID: t, contactID: loser, sequence: 3, kind: .merged(winner: winner)),
        ])
        #expect(try await projected(loser.lowercaseText, tenant: t) == Projected(name: "Loser", deleted: false, mergedInto: winner.lowercaseText))
        try await apply([ContactChange(tenantID: t, contactID: loser, sequence: 4, kind: .unmerged(formerWinner: winner))])
        #expect(try await projected(loser.lowercaseText, tenant: t) == Projected(name: "Loser", deleted: false))
        // Sequence 1 again (at-least-once delivery): the newer state stays.
        try await apply([ContactChange(tenantID: t, contactID: loser, sequence: 1, kind: .state(displayName: "Stale", deleted: true))])
        #expect(try await projected(loser.lowercaseText, tenant: t) == Projected(name: "Loser", deleted: false))
    }

    @Test("ERASED removes the person's row and publishes an erasure receipt in the tenant's feed, with no personal data")
    func erasure() async throws {
        let t = tenant()
        let projection = PostgresContactProjection(feed: ChangeFeed(schema: "organization")) { receipt in
            var json = Switchboard_Organization_V1_ErasureReceipt()
            json.contactId = receipt.contactID.lowercaseText
            json.erasureRequestId = receipt.erasureRequestID
            return try json.protoJSONText()
        }
        let person = UUID()
        // A change the service published earlier that names the person (as a membership's does).
        _ = try await organization.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await ChangeFeed(schema: "organization").record(
                ChangeRecord(
                    resourceType: "switchboard.organization.v1.Membership", resourceID: "m-1", kind: .created,
                    resourceJSON: #"{"id": "m-1", "contactId": "\#(person.lowercaseText)", "contactDisplayName": "Private Person"}"#, actorID: "u"),
                tenantID: t, on: c)
        }
        try await organization.pool.transaction { c in
            try await projection.apply(
                [
                    ContactChange(tenantID: t, contactID: person, sequence: 1, kind: .state(displayName: "Private Person", deleted: false)),
                    ContactChange(tenantID: t, contactID: person, sequence: 2, kind: .erased(request: "erasure-1")),
                ], on: c)
        }
        #expect(try await projected(person.lowercaseText, tenant: t) == nil)
        let client = OrganizationStub(client: RPCClient(transport: organization.channel))
        let options = try await organization.options(tenant: t, roles: [.readOnly])
        let events = try await client.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: options) { events in
            var seen: [Switchboard_Common_V1_ChangeEvent] = []
            for try await event in events {
                seen.append(event)
                if seen.count == 2 { break }
            }
            return seen
        }
        let membershipEvent = try await organization.pool.query(
            settings: ["app.tenant_id": t], "SELECT resource::text AS r FROM organization.changes WHERE tenant_id = $1 AND resource_id = 'm-1'",
            [.text(t)]
        ).first?.string("r")
        #expect(membershipEvent == #"{"id": "m-1"}"#)
        #expect(events.map(\.kind) == [.created, .erased])
        #expect(events.last?.resourceType == "switchboard.organization.v1.ErasureReceipt")
        #expect(events.last?.resourceId == person.lowercaseText)
        #expect(events.last?.relatedIds == ["erasure-1"])
        let stub = try #require(events.first?.resource).protoJSONText()
        #expect(stub.contains("m-1") && !stub.contains("Private Person") && !stub.contains(person.lowercaseText), "\(stub)")
        let text = try #require(events.last?.resource).protoJSONText()
        #expect(!text.contains("Private Person"))
    }

    @Test("events that cannot be applied are set aside in their tenant's rows; the rest of the batch applies; erasure forgets them")
    func poisonedEvents() async throws {
        let (t, other) = (tenant(), tenant())
        let projection = PostgresContactProjection(feed: ChangeFeed(schema: "organization")) { _ in "{}" }
        let (good, broken, selfMerged, later) = (UUID(), UUID(), UUID(), UUID())
        func event(
            _ id: UUID, _ sequence: Int64, _ kind: Switchboard_Common_V1_ChangeKind, name: Google_Protobuf_Value, related: [String] = []
        )
            -> Switchboard_Common_V1_ChangeEvent
        {
            var e = Switchboard_Common_V1_ChangeEvent()
            e.tenantId = t
            e.sequence = sequence
            e.resourceType = ContactsFeedMapping.contactType
            e.resourceId = id.lowercaseText
            e.kind = kind
            e.relatedIds = related
            var resource = Google_Protobuf_Struct()
            resource.fields["id"] = string(id.lowercaseText)
            resource.fields["name"] = name
            e.resource = resource
            return e
        }
        func object(_ fields: Google_Protobuf_Struct) -> Google_Protobuf_Value {
            var v = Google_Protobuf_Value()
            v.kind = .structValue(fields)
            return v
        }
        var display = Google_Protobuf_Struct()
        display.fields["display"] = string("Good Person")
        var laterName = Google_Protobuf_Struct()
        laterName.fields["display"] = string("Later Person")
        let batch = [
            event(good, 1, .created, name: object(display)),
            // `name` must be a PersonName object: this payload does not decode.
            event(broken, 2, .created, name: string("not an object")),
            event(selfMerged, 3, .merged, name: object(display), related: [selfMerged.lowercaseText]),
            event(later, 4, .created, name: object(laterName)),
        ]
        let logger = Logger(label: "test")
        try await organization.pool.transaction { c in
            try await OrganizationService.applyContactsEvents(batch, projection: projection, logger: logger, on: c)
        }
        // Redelivered: applied and set aside once.
        try await organization.pool.transaction { c in
            try await OrganizationService.applyContactsEvents(batch, projection: projection, logger: logger, on: c)
        }
        #expect(try await projected(good.lowercaseText, tenant: t)?.name == "Good Person")
        #expect(try await projected(later.lowercaseText, tenant: t)?.name == "Later Person")
        #expect(try await projected(broken.lowercaseText, tenant: t) == nil)
        func setAside(as viewer: String) async throws -> [String] {
            try await organization.pool.query(
                settings: ["app.tenant_id": viewer],
                "SELECT resource_id || ':' || sequence AS key FROM organization.feed_dead_letters WHERE feed = 'contacts' ORDER BY sequence"
            ).rows.map { try $0.string("key") }
        }
        #expect(try await setAside(as: t) == ["\(broken.lowercaseText):2", "\(selfMerged.lowercaseText):3"])
        #expect(try await setAside(as: other).isEmpty)
        // Erasing the person also deletes their events that were set aside.
        try await organization.pool.transaction { c in
            try await projection.apply([ContactChange(tenantID: t, contactID: broken, sequence: 5, kind: .erased(request: "e-1"))], on: c)
        }
        #expect(try await setAside(as: t) == ["\(selfMerged.lowercaseText):3"])
        // Retention: only events older than the period are pruned, across tenants, and only by the purge.
        #expect(try await FeedConsumer.purgeSetAside(olderThan: 90, schema: "organization", pool: organization.pool) == 0)
        _ = try await organization.pool.query(
            settings: ["app.tenant_id": t], "UPDATE organization.feed_dead_letters SET recorded_at = now() - interval '91 days'")
        let stray = try await organization.pool.query(settings: ["app.tenant_id": other], "DELETE FROM organization.feed_dead_letters")
        #expect(stray.affectedRows == 0)
        #expect(try await FeedConsumer.purgeSetAside(olderThan: 90, schema: "organization", pool: organization.pool) == 1)
        #expect(try await setAside(as: t).isEmpty)
    }

    @Test("a consumer killed mid-batch leaves only whole batches behind; the next one resumes and loses nothing")
    func killedMidBatch() async throws {
        // A database of its own for the projection (the suite's organization service follows the same feed).
        let sink = try await ServiceHarness.start(OrganizationService.description)
        defer { Task { await sink.stop() } }
        let stub = Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: contacts.channel))
        let tenants = [tenant(), tenant()]
        var created: [String: [String]] = [:]
        for i in 0..<30 {
            let t = tenants[i % 2]
            var create = Switchboard_Contacts_V1_CreateContactRequest()
            var contact = Switchboard_Contacts_V1_Contact()
            var name = Switchboard_Contacts_V1_PersonName()
            name.given = "Person \(i)"
            contact.name = name
            create.contact = contact
            created[t, default: []].append(try await stub.createContact(create, options: try await contacts.options(tenant: t)).id)
        }
        // Tokens the consumer signs itself with the platform's HS256 secret (the suite's service reads a token file).
        let signer = ServiceTokenSource.selfSigned(service: "organization", hs256Secret: testSecret, issuer: nil, audience: nil)
        let source = FeedConsumer.Source(
            transport: contacts.channel, token: { try await signer.token() }, resourceTypes: [ContactsFeedMapping.contactType])
        let projection = PostgresContactProjection(feed: ChangeFeed(schema: "organization")) { _ in "{}" }
        let applied = Atomic<Int>(0)
        func consumer(killAfter: Int?) -> FeedConsumer {
            var made = FeedConsumer(feed: "contacts", schema: "organization", source: source, pool: sink.pool, logger: Logger(label: "test")) {
                events, c in
                for event in events {
                    try await OrganizationService.applyContactsEvents([event], projection: projection, logger: Logger(label: "test"), on: c)
                    let total = applied.add(1, ordering: .relaxed).newValue
                    if let killAfter, total >= killAfter {
                        // Killed after applying part of the batch, before the transaction with the cursor commits.
                        withUnsafeCurrentTask { $0?.cancel() }
                        throw CancellationError()
                    }
                }
            }
            made.initialBackoff = .milliseconds(10)
            return made
        }
        func projected() async throws -> Int {
            var n = 0
            for t in tenants {
                n += Int(
                    try await sink.pool.query(
                        settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM organization.contacts WHERE tenant_id = $1", [.text(t)]
                    ).first?.int("n") ?? 0)
            }
            return n
        }
        let doomed = consumer(killAfter: 1)
        await Task { await doomed.follow() }.value
        // The first batch was interrupted: nothing of it stayed, and the cursor did not move.
        #expect(try await projected() == 0)
        #expect(try await doomed.storedCursor().isEmpty)
        let survivor = consumer(killAfter: nil)
        let running = Task { await survivor.follow() }
        _ = try await SwitchboardTestSupport.eventually { try await projected() >= 30 }
        running.cancel()
        _ = await running.value
        #expect(try await projected() == 30)
        #expect(try await survivor.storedCursor().isEmpty == false)
    }
}
