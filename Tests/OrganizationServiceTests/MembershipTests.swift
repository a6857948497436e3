import Foundation
import OrganizationService
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

typealias Membership = Switchboard_Organization_V1_Membership

/// Memberships and membership roles, with contacts put into the projection as the contacts feed would.
@Suite("Organization memberships", .serialized)
final class MembershipTests {
    let harness: OrganizationHarness
    let projection = PostgresContactProjection(feed: ChangeFeed(schema: "organization")) { receipt in
        var r = Switchboard_Organization_V1_ErasureReceipt()
        r.contactId = receipt.contactID.uuidString.lowercased()
        r.membershipsRemoved = Int32(receipt.membershipsRemoved)
        r.groupEntriesRemoved = Int32(receipt.groupEntriesRemoved)
        return try r.protoJSONText()
    }
    private let sequence = Sequence()

    init() async throws { harness = try await OrganizationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    /// Feed sequence numbers, increasing across a test.
    private final class Sequence: @unchecked Sendable {
        // Tests of a suite run one at a time (.serialized); the counter is touched by one task at once.
        var value: Int64 = 0
        func next() -> Int64 {
            value += 1
            return value
        }
    }

    /// Applies a contacts-feed change to the projection, as the consumer does.
    private func feed(_ tenant: String, _ contact: UUID, _ kind: ContactChange.Kind) async throws {
        let change = ContactChange(tenantID: tenant, contactID: contact, sequence: sequence.next(), kind: kind)
        try await harness.pool.transaction { c in try await projection.apply([change], on: c) }
    }

    /// A contact known in the tenant.
    private func contact(_ tenant: String, _ name: String) async throws -> String {
        let id = UUID()
        try await feed(tenant, id, .state(displayName: name, deleted: false))
        return id.uuidString.lowercased()
    }

    private static func member(
        _ client: OrgClient, contact: String, organization: String, unit: String = "", title: String = "", roles: [String] = [],
        primary: Bool = false, start: String = "", end: String = "", requestID: String = ""
    ) async throws -> Membership {
        var m = Membership()
        m.contactId = contact
        m.organizationId = organization
        m.unitId = unit
        m.title = title
        m.roles = roles
        m.primary = primary
        m.startDate = start
        m.endDate = end
        var request = Switchboard_Organization_V1_CreateMembershipRequest()
        request.membership = m
        request.requestId = requestID
        return try await client.stub.createMembership(request, options: client.options)
    }

    private static func members(
        _ client: OrgClient, _ organization: String, configure: (inout Switchboard_Organization_V1_ListOrganizationMembersRequest) -> Void = { _ in }
    ) async throws -> [String] {
        var request = Switchboard_Organization_V1_ListOrganizationMembersRequest()
        request.organizationId = organization
        configure(&request)
        return try await client.stub.listOrganizationMembers(request, options: client.options).memberships.map(\.id)
    }

    private static func contactMemberships(_ client: OrgClient, _ contact: String) async throws -> [Membership] {
        var request = Switchboard_Organization_V1_ListContactMembershipsRequest()
        request.contactId = contact
        return try await client.stub.listContactMemberships(request, options: client.options).memberships
    }

    private static func defineRole(_ client: OrgClient, _ key: String, limit: Int32 = 0) async throws -> Switchboard_Organization_V1_MembershipRole {
        var request = Switchboard_Organization_V1_DefineMembershipRoleRequest()
        var role = Switchboard_Organization_V1_MembershipRole()
        role.key = key
        role.displayName = key.uppercased()
        role.maxPerOrganization = limit
        request.role = role
        return try await client.stub.defineMembershipRole(request, options: client.options)
    }

    private static func update(
        _ client: OrgClient, _ id: String, paths: [String], etag: String = "", change: (inout Membership) -> Void
    ) async throws -> Membership {
        var m = Membership()
        m.id = id
        change(&m)
        var request = Switchboard_Organization_V1_UpdateMembershipRequest()
        request.membership = m
        request.updateMask = Google_Protobuf_FieldMask(paths: paths)
        request.etag = etag
        return try await client.stub.updateMembership(request, options: client.options)
    }

    private static func get(_ client: OrgClient, _ id: String) async throws -> Membership {
        var request = Switchboard_Organization_V1_GetMembershipRequest()
        request.id = id
        return try await client.stub.getMembership(request, options: client.options)
    }

    @Test("create, get, update with etag and delete a membership; the contact's name comes from the projection")
    func lifecycle() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let admin = try await harness.client(tenant: t, roles: [.admin])
        _ = try await Self.defineRole(admin, "engineer")
        let ada = try await contact(t, "Ada Lovelace")
        let acme = try await client.create("Acme")
        let unit = try await client.createUnit("Engines", organization: acme.id)
        let created = try await Self.member(
            client, contact: ada, organization: acme.id, unit: unit.id, title: " Lead ", roles: ["engineer"], start: "2020-01-01")
        #expect(created.title == "Lead")
        #expect(created.contactDisplayName == "Ada Lovelace")
        #expect(created.unitId == unit.id)
        #expect(try await Self.get(client, created.id) == created)
        let updated = try await Self.update(client, created.id, paths: ["title", "end_date"], etag: created.etag) {
            $0.title = "Chief"
            $0.endDate = "2099-12-31"
        }
        #expect(updated.title == "Chief")
        #expect(updated.endDate == "2099-12-31")
        #expect(updated.roles == ["engineer"])
        #expect(await code { _ = try await Self.update(client, created.id, paths: ["title"], etag: created.etag) { $0.title = "x" } } == .aborted)
        #expect(try await Self.contactMemberships(client, ada).map(\.id) == [created.id])
        var delete = Switchboard_Organization_V1_DeleteMembershipRequest()
        delete.id = created.id
        _ = try await client.stub.deleteMembership(delete, options: client.options)
        #expect(await code { _ = try await Self.get(client, created.id) } == .notFound)
        #expect(try await Self.members(client, acme.id).isEmpty)
    }

    @Test("a contact unknown in the tenant, an unknown organization or a unit of another one is NOT_FOUND; bad fields are named")
    func validation() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let ada = try await contact(t, "Ada")
        let acme = try await client.create("Acme")
        let other = try await client.create("Other")
        let foreignUnit = try await client.createUnit("Elsewhere", organization: other.id)
        #expect(await code { _ = try await Self.member(client, contact: UUID().uuidString, organization: acme.id) } == .notFound)
        let elsewhere = try await contact(tenant(), "In another tenant")
        let unknown = await rpcError { _ = try await Self.member(client, contact: elsewhere, organization: acme.id) }
        #expect(unknown?.code == .notFound)
        // The missing resource is named in a google.rpc.ResourceInfo detail, not only in the message.
        let info = try unknown?.statusDetails?.details.first?.unpack(Google_Rpc_ResourceInfo.self)
        #expect(info?.resourceType == "switchboard.contacts.v1.Contact")
        #expect(info?.resourceName == elsewhere)
        #expect(await code { _ = try await Self.member(client, contact: ada, organization: UUID().uuidString) } == .notFound)
        #expect(await code { _ = try await Self.member(client, contact: ada, organization: acme.id, unit: foreignUnit.id) } == .notFound)
        // A membership whose unit was deleted since can still change what it does not move: its title, say; moving it
        // into the deleted unit again, or into another missing one, is NOT_FOUND.
        let sales = try await client.createUnit("Sales", organization: acme.id)
        let placed = try await Self.member(client, contact: ada, organization: acme.id, unit: sales.id)
        _ = try await client.deleteUnit(sales.id)
        let retitled = try await Self.update(client, placed.id, paths: ["title"]) { $0.title = "Lead" }
        #expect(retitled.title == "Lead" && retitled.unitId == sales.id)
        #expect(await code { _ = try await Self.update(client, placed.id, paths: ["unit_id"]) { $0.unitId = sales.id } } == .notFound)
        let missing = await rpcError { _ = try await Self.member(client, contact: "", organization: "nope") }
        #expect(fields(missing) == ["membership.contact_id", "membership.organization_id"])
        let bad = await rpcError {
            _ = try await Self.member(client, contact: ada, organization: acme.id, roles: ["ghost"], start: "2020-13-01", end: "2019-01-01")
        }
        #expect(fields(bad) == ["membership.roles[0]", "membership.start_date"])
        let backwards = await rpcError {
            _ = try await Self.member(client, contact: ada, organization: acme.id, start: "2020-01-02", end: "2020-01-01")
        }
        #expect(fields(backwards) == ["membership.end_date"])
        var list = Switchboard_Organization_V1_ListOrganizationMembersRequest()
        list.organizationId = acme.id
        list.asOf = "yesterday"
        #expect(fields(await rpcError { _ = try await client.stub.listOrganizationMembers(list, options: client.options) }) == ["as_of"])
        #expect(await code { _ = try await Self.contactMemberships(client, UUID().uuidString) } == .notFound)
    }

    @Test("a role's per-organization limit counts current memberships only; role definitions need the admin role")
    func roleLimits() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let admin = try await harness.client(tenant: t, roles: [.admin])
        #expect(await code { _ = try await Self.defineRole(client, "ceo", limit: 1) } == .permissionDenied)
        _ = try await Self.defineRole(admin, "ceo", limit: 1)
        #expect(await code { _ = try await Self.defineRole(admin, "ceo", limit: 2) } == .alreadyExists)
        #expect(
            fields(await rpcError { _ = try await Self.defineRole(admin, "Bad Key", limit: -1) }) == ["role.key", "role.max_per_organization"])
        let roles = try await client.stub.listMembershipRoles(.init(), options: client.options).roles
        #expect(roles.map(\.key) == ["ceo"])
        #expect(roles.first?.maxPerOrganization == 1)
        let acme = try await client.create("Acme")
        let (ada, grace, alan) = (try await contact(t, "Ada"), try await contact(t, "Grace"), try await contact(t, "Alan"))
        let former = try await Self.member(client, contact: alan, organization: acme.id, roles: ["ceo"], start: "2001-01-01", end: "2010-12-31")
        let ceo = try await Self.member(client, contact: ada, organization: acme.id, roles: ["ceo"])
        let second = await rpcError { _ = try await Self.member(client, contact: grace, organization: acme.id, roles: ["ceo"]) }
        #expect(second?.code == .failedPrecondition)
        #expect(second?.message.contains("membership.roles") == true)
        // Another organization has its own CEO; an ended CEO membership may be edited freely.
        let other = try await client.create("Other")
        _ = try await Self.member(client, contact: grace, organization: other.id, roles: ["ceo"])
        _ = try await Self.update(client, former.id, paths: ["title"]) { $0.title = "Founder" }
        // Ending the current CEO frees the place.
        _ = try await Self.update(client, ceo.id, paths: ["end_date"]) { $0.endDate = "2020-01-01" }
        _ = try await Self.member(client, contact: grace, organization: acme.id, roles: ["ceo"])
    }

    @Test("a role's limit holds on every day from today: a successor can be entered ahead, an overlapping one cannot")
    func roleLimitPeriods() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        _ = try await Self.defineRole(try await harness.client(tenant: t, roles: [.admin]), "ceo", limit: 1)
        _ = try await Self.defineRole(try await harness.client(tenant: t, roles: [.admin]), "board", limit: 2)
        func day(_ offset: Int) -> String {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let date = calendar.date(byAdding: .day, value: offset, to: Date())!
            let c = calendar.dateComponents([.year, .month, .day], from: date)
            return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
        }
        let acme = try await client.create("Acme")
        var people: [String] = []
        for i in 0..<7 { people.append(try await contact(t, "Person \(i)")) }
        // The current CEO leaves in 30 days; the successor starts the day after.
        _ = try await Self.member(client, contact: people[0], organization: acme.id, roles: ["ceo"], end: day(30))
        _ = try await Self.member(client, contact: people[1], organization: acme.id, roles: ["ceo"], start: day(31))
        // Anyone overlapping either of them is refused, even for a single day.
        #expect(
            await code { _ = try await Self.member(client, contact: people[2], organization: acme.id, roles: ["ceo"], start: day(30)) }
                == .failedPrecondition)
        #expect(
            await code { _ = try await Self.member(client, contact: people[2], organization: acme.id, roles: ["ceo"], start: day(5), end: day(10)) }
                == .failedPrecondition)
        // History does not count: a past CEO's period may be recorded.
        _ = try await Self.member(client, contact: people[2], organization: acme.id, roles: ["ceo"], start: "1990-01-01", end: "1999-12-31")
        // A limit of 2 counts the busiest day, not every overlapping membership: two seats, three people in turn.
        _ = try await Self.member(client, contact: people[3], organization: acme.id, roles: ["board"], end: day(10))
        _ = try await Self.member(client, contact: people[4], organization: acme.id, roles: ["board"], start: day(11))
        _ = try await Self.member(client, contact: people[5], organization: acme.id, roles: ["board"])
        #expect(
            await code { _ = try await Self.member(client, contact: people[6], organization: acme.id, roles: ["board"], start: day(20)) }
                == .failedPrecondition)
    }

    @Test("concurrent creates of a limited role admit exactly the limit")
    func concurrentRoleLimit() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        _ = try await Self.defineRole(try await harness.client(tenant: t, roles: [.admin]), "chair", limit: 1)
        let acme = try await client.create("Acme")
        var people: [String] = []
        for i in 0..<6 { people.append(try await contact(t, "Person \(i)")) }
        let outcomes = await withTaskGroup(of: StatusCode?.self) { group in
            for person in people {
                group.addTask { await code { _ = try await Self.member(client, contact: person, organization: acme.id, roles: ["chair"]) } }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == nil }.count == 1)
        #expect(outcomes.filter { $0 == .failedPrecondition }.count == 5)
    }

    @Test("a second primary membership demotes the first, also under concurrency, and records the demotion")
    func primary() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let ada = try await contact(t, "Ada")
        let (acme, other) = (try await client.create("Acme"), try await client.create("Other"))
        let first = try await Self.member(client, contact: ada, organization: acme.id, primary: true)
        let second = try await Self.member(client, contact: ada, organization: other.id, primary: true)
        #expect(try await Self.get(client, first.id).primary == false)
        #expect(try await Self.get(client, second.id).primary == true)
        _ = try await Self.update(client, first.id, paths: ["primary"]) { $0.primary = true }
        #expect(try await Self.contactMemberships(client, ada).filter(\.primary).map(\.id) == [first.id])

        let grace = try await contact(t, "Grace")
        var organizations: [String] = []
        for i in 0..<6 { organizations.append(try await client.create("Org \(i)").id) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for organization in organizations {
                group.addTask { _ = try await Self.member(client, contact: grace, organization: organization, primary: true) }
            }
            try await group.waitForAll()
        }
        let graces = try await Self.contactMemberships(client, grace)
        #expect(graces.count == 6)
        #expect(graces.filter(\.primary).count == 1)

        let stub = client.stub, options = client.options
        let demotions = try await stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: options) { events in
            var seen: [Switchboard_Common_V1_ChangeEvent] = []
            for try await event in events where event.resourceType == "switchboard.organization.v1.Membership" {
                seen.append(event)
                if seen.count == 3 { break }
            }
            return seen
        }
        #expect(demotions.map(\.kind) == [.created, .updated, .created])
        #expect(demotions[1].resourceId == first.id)
        #expect(demotions[1].changedFields == ["primary"])
        // The feed keeps no contact names.
        #expect(try Membership(protoJSONText: try #require(demotions[0].resource).protoJSONText()).contactDisplayName.isEmpty)
    }

    @Test("as_of, ended memberships, roles, units and descendants filter an organization's members")
    func listing() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        _ = try await Self.defineRole(try await harness.client(tenant: t, roles: [.admin]), "sales")
        let parent = try await client.create("Parent")
        let child = try await client.create("Child", parent: parent.id)
        let grandchild = try await client.create("Grandchild", parent: child.id)
        let unit = try await client.createUnit("Desk", organization: parent.id)
        let (a, b, c, d, e) = (
            try await contact(t, "A"), try await contact(t, "B"), try await contact(t, "C"), try await contact(t, "D"), try await contact(t, "E")
        )
        let past = try await Self.member(client, contact: a, organization: parent.id, start: "2020-01-01", end: "2020-12-31")
        let current = try await Self.member(client, contact: b, organization: parent.id, unit: unit.id, roles: ["sales"], start: "2021-01-01")
        let future = try await Self.member(client, contact: c, organization: parent.id, start: "2999-01-01")
        let inChild = try await Self.member(client, contact: d, organization: child.id)
        let inGrandchild = try await Self.member(client, contact: e, organization: grandchild.id, roles: ["sales"])
        #expect(try await Self.members(client, parent.id) == [current.id])
        #expect(Set(try await Self.members(client, parent.id) { $0.includeEnded = true }) == [past.id, current.id])
        #expect(try await Self.members(client, parent.id) { $0.asOf = "2020-06-15" } == [past.id])
        #expect(try await Self.members(client, parent.id) { $0.asOf = "2999-06-01" } == [current.id, future.id].sorted())
        #expect(Set(try await Self.members(client, parent.id) { $0.includeDescendants = true }) == [current.id, inChild.id, inGrandchild.id])
        #expect(
            Set(
                try await Self.members(client, parent.id) {
                    $0.includeDescendants = true
                    $0.role = "sales"
                }) == [current.id, inGrandchild.id])
        #expect(try await Self.members(client, parent.id) { $0.unitId = unit.id } == [current.id])
        #expect(try await Self.members(client, child.id) { $0.includeDescendants = true }.sorted() == [inChild.id, inGrandchild.id].sorted())
        // Pages of one.
        var seen: [String] = []
        var token = ""
        repeat {
            var request = Switchboard_Organization_V1_ListOrganizationMembersRequest()
            request.organizationId = parent.id
            request.includeDescendants = true
            var page = Switchboard_Common_V1_PageRequest()
            page.pageSize = 1
            page.pageToken = token
            request.page = page
            let response = try await client.stub.listOrganizationMembers(request, options: client.options)
            seen += response.memberships.map(\.id)
            token = response.page?.nextPageToken ?? ""
        } while !token.isEmpty && seen.count < 10
        #expect(seen.count == 3)
        #expect(Set(seen).count == 3)
    }

    @Test("a deleted contact's memberships are hidden and shown again on undelete; an erased one's are removed with a receipt")
    func followsContacts() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let person = UUID()
        try await feed(t, person, .state(displayName: "Ada", deleted: false))
        let acme = try await client.create("Acme")
        let membership = try await Self.member(client, contact: person.uuidString, organization: acme.id)
        var group = Switchboard_Organization_V1_CreateGroupRequest()
        group.group = Switchboard_Organization_V1_Group()
        group.group?.name = "Friends"
        var add = Switchboard_Organization_V1_AddGroupMembersRequest()
        add.groupId = try await client.stub.createGroup(group, options: client.options).id
        add.contactIds = [person.uuidString]
        _ = try await client.stub.addGroupMembers(add, options: client.options)
        try await feed(t, person, .state(displayName: "Ada", deleted: true))
        #expect(try await Self.members(client, acme.id).isEmpty)
        #expect(await code { _ = try await Self.get(client, membership.id) } == .notFound)
        #expect(await code { _ = try await Self.member(client, contact: person.uuidString, organization: acme.id) } == .notFound)
        try await feed(t, person, .state(displayName: "Ada K.", deleted: false))
        #expect(try await Self.members(client, acme.id) == [membership.id])
        #expect(try await Self.get(client, membership.id).contactDisplayName == "Ada K.")
        try await feed(t, person, .erased(request: "erasure-7"))
        #expect(try await Self.members(client, acme.id) { $0.includeEnded = true }.isEmpty)
        let rows = try await harness.pool.query(
            settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM organization.memberships WHERE tenant_id = $1", [.text(t)])
        #expect(try rows.first?.int("n") == 0)
        let stub = client.stub, options = client.options
        let receipt = try await stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: options) {
            events -> Switchboard_Common_V1_ChangeEvent? in
            for try await event in events where event.kind == .erased { return event }
            return nil
        }
        let published = try Switchboard_Organization_V1_ErasureReceipt(protoJSONText: try #require(receipt?.resource).protoJSONText())
        #expect(published.membershipsRemoved == 1)
        #expect(published.groupEntriesRemoved == 1)
        #expect(published.contactId == person.uuidString.lowercased())
    }

    @Test("tenant B can neither read, list, change nor delete tenant A's memberships, nor use A's contacts")
    func isolation() async throws {
        let (ta, tb) = (tenant(), tenant())
        let a = try await harness.client(tenant: ta)
        let b = try await harness.client(tenant: tb)
        let ada = try await contact(ta, "Ada")
        let acme = try await a.create("Acme")
        let membership = try await Self.member(a, contact: ada, organization: acme.id)
        let mine = try await b.create("Mine")
        #expect(await code { _ = try await Self.get(b, membership.id) } == .notFound)
        #expect(await code { _ = try await Self.members(b, acme.id) } == .notFound)
        #expect(await code { _ = try await Self.contactMemberships(b, ada) } == .notFound)
        #expect(await code { _ = try await Self.update(b, membership.id, paths: ["title"]) { $0.title = "x" } } == .notFound)
        var delete = Switchboard_Organization_V1_DeleteMembershipRequest()
        delete.id = membership.id
        #expect(await code { _ = try await b.stub.deleteMembership(delete, options: b.options) } == .notFound)
        #expect(await code { _ = try await Self.member(b, contact: ada, organization: mine.id) } == .notFound)
        #expect(try await b.stub.listMembershipRoles(.init(), options: b.options).roles.isEmpty)
        #expect(try await Self.get(a, membership.id).title.isEmpty)
    }

    @Test("ExportSubject streams every membership (ended ones too) and group entry of a person, to admins of the tenant only")
    func exportSubject() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let admin = try await harness.client(tenant: t, roles: [.admin])
        let ada = try await contact(t, "Ada")
        let acme = try await client.create("Acme")
        let past = try await Self.member(client, contact: ada, organization: acme.id, start: "2001-01-01", end: "2002-01-01")
        let now = try await Self.member(client, contact: ada, organization: acme.id)
        var group = Switchboard_Organization_V1_CreateGroupRequest()
        group.group = Switchboard_Organization_V1_Group()
        group.group?.name = "Friends"
        let friends = try await client.stub.createGroup(group, options: client.options)
        var add = Switchboard_Organization_V1_AddGroupMembersRequest()
        add.groupId = friends.id
        add.contactIds = [ada]
        _ = try await client.stub.addGroupMembers(add, options: client.options)
        func export(_ caller: OrgClient, _ contact: String) async throws -> [Switchboard_Organization_V1_SubjectRecord] {
            var request = Switchboard_Organization_V1_ExportSubjectRequest()
            request.contactId = contact
            return try await caller.stub.exportSubject(request, options: caller.options) { records in
                var all: [Switchboard_Organization_V1_SubjectRecord] = []
                for try await record in records { all.append(record) }
                return all
            }
        }
        let records = try await export(admin, ada)
        let memberships = records.compactMap { if case .membership(let m)? = $0.record { return m } else { return nil } }
        let groups = records.compactMap { if case .group(let g)? = $0.record { return g } else { return nil } }
        #expect(Set(memberships.map(\.id)) == [past.id, now.id])
        #expect(memberships.allSatisfy { $0.contactDisplayName == "Ada" })
        #expect(groups.map(\.id) == [friends.id])
        #expect(await code { _ = try await export(client, ada) } == .permissionDenied)
        #expect(try await export(try await harness.client(tenant: tenant(), roles: [.admin]), ada).isEmpty)
        #expect(fields(await rpcError { _ = try await export(admin, "nope") }) == ["contact_id"])
    }

    @Test("a retried create with the same request id returns the first membership; read-only callers cannot write")
    func idempotencyAndRoles() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let ada = try await contact(t, "Ada")
        let acme = try await client.create("Acme")
        let requestID = UUID().uuidString
        let first = try await Self.member(client, contact: ada, organization: acme.id, requestID: requestID)
        #expect(try await Self.member(client, contact: ada, organization: acme.id, requestID: requestID) == first)
        #expect(try await Self.members(client, acme.id) == [first.id])
        let reader = try await harness.client(tenant: t, roles: [.readOnly])
        #expect(try await Self.members(reader, acme.id) == [first.id])
        #expect(try await Self.get(reader, first.id).id == first.id)
        #expect(await code { _ = try await Self.member(reader, contact: ada, organization: acme.id) } == .permissionDenied)
        #expect(await code { _ = try await Self.update(reader, first.id, paths: ["title"]) { $0.title = "x" } } == .permissionDenied)
    }
}

/// MERGED and UNMERGED move memberships and group entries, and put them back.
@Suite("Organization merges", .serialized)
final class MergeTests {
    let harness: OrganizationHarness
    let projection = PostgresContactProjection(
        feed: ChangeFeed(schema: "organization"), publishMembership: { _ in "{}" }, publishReceipt: { _ in "{}" })
    init() async throws { harness = try await OrganizationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private func apply(_ tenant: String, _ contact: UUID, _ sequence: Int64, _ kind: ContactChange.Kind) async throws {
        let change = ContactChange(tenantID: tenant, contactID: contact, sequence: sequence, kind: kind)
        try await harness.pool.transaction { c in try await self.projection.apply([change], on: c) }
    }

    private static func member(_ client: OrgClient, _ contact: UUID, _ organization: String, primary: Bool = false) async throws -> Membership {
        var m = Membership()
        m.contactId = contact.uuidString
        m.organizationId = organization
        m.primary = primary
        var request = Switchboard_Organization_V1_CreateMembershipRequest()
        request.membership = m
        return try await client.stub.createMembership(request, options: client.options)
    }

    private static func memberships(_ client: OrgClient, _ contact: UUID) async throws -> [Membership] {
        var request = Switchboard_Organization_V1_ListContactMembershipsRequest()
        request.contactId = contact.uuidString
        return try await client.stub.listContactMemberships(request, options: client.options).memberships
    }

    private static func groupMembers(_ client: OrgClient, _ group: String) async throws -> Set<String> {
        var request = Switchboard_Organization_V1_ListGroupMembersRequest()
        request.groupId = group
        return Set(try await client.stub.listGroupMembers(request, options: client.options).members.map(\.contactId))
    }

    @Test("MERGED re-points the loser's memberships and group entries to the winner without duplicates; UNMERGED undoes it")
    func mergeAndUnmerge() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (loser, winner) = (UUID(), UUID())
        try await apply(t, loser, 1, .state(displayName: "Loser", deleted: false))
        try await apply(t, winner, 2, .state(displayName: "Winner", deleted: false))
        let (shared, onlyLoser, winnersPrimary) = (
            try await client.create("Shared"), try await client.create("Only loser"), try await client.create("W")
        )
        let loserShared = try await Self.member(client, loser, shared.id)
        // An ended stint at the same organization does not overlap the winner's current one: it moves, not goes.
        // At an organization where the winner is a member since 2015, the loser's stint of 2001-2010 does not overlap:
        // it moves to the winner as history instead of being removed as a duplicate.
        let history = try await client.create("History")
        func dated(_ contact: UUID, start: String, end: String) async throws -> Membership {
            var request = Switchboard_Organization_V1_CreateMembershipRequest()
            request.membership = Membership()
            request.membership?.contactId = contact.uuidString
            request.membership?.organizationId = history.id
            request.membership?.startDate = start
            request.membership?.endDate = end
            return try await client.stub.createMembership(request, options: client.options)
        }
        let winnerHistory = try await dated(winner, start: "2015-01-01", end: "")
        let loserPast = try await dated(loser, start: "2001-01-01", end: "2010-12-31")
        let loserOnly = try await Self.member(client, loser, onlyLoser.id, primary: true)
        let winnerShared = try await Self.member(client, winner, shared.id)
        let winnerPrimary = try await Self.member(client, winner, winnersPrimary.id, primary: true)
        var createGroup = Switchboard_Organization_V1_CreateGroupRequest()
        createGroup.group = Switchboard_Organization_V1_Group()
        createGroup.group?.name = "Both"
        let both = try await client.stub.createGroup(createGroup, options: client.options).id
        createGroup.group?.name = "Loser only"
        let loserGroup = try await client.stub.createGroup(createGroup, options: client.options).id
        var add = Switchboard_Organization_V1_AddGroupMembersRequest()
        add.groupId = both
        add.contactIds = [loser.uuidString, winner.uuidString]
        _ = try await client.stub.addGroupMembers(add, options: client.options)
        add.groupId = loserGroup
        add.contactIds = [loser.uuidString]
        _ = try await client.stub.addGroupMembers(add, options: client.options)

        try await apply(t, loser, 3, .merged(winner: winner))
        let merged = try await Self.memberships(client, winner)
        #expect(Set(merged.map(\.id)) == [winnerShared.id, winnerPrimary.id, loserOnly.id, winnerHistory.id])
        #expect(merged.filter(\.primary).map(\.id) == [winnerPrimary.id])
        var get = Switchboard_Organization_V1_GetMembershipRequest()
        get.id = loserPast.id
        #expect(try await client.stub.getMembership(get, options: client.options).contactId.lowercased() == winner.uuidString.lowercased())
        #expect(await code { _ = try await Self.memberships(client, loser) } == .notFound)
        #expect(try await Self.groupMembers(client, both) == [winner.uuidString.lowercased()])
        #expect(try await Self.groupMembers(client, loserGroup) == [winner.uuidString.lowercased()])
        let stub = client.stub, options = client.options
        let groupChanges = try await stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: options) { events in
            var seen: [Switchboard_Common_V1_ChangeEvent] = []
            for try await event in events where event.resourceType == "switchboard.organization.v1.Group" && event.actorId == "organization" {
                seen.append(event)
                if seen.count == 2 { break }
            }
            return seen
        }
        #expect(Set(groupChanges.map(\.resourceId)) == [both, loserGroup])
        #expect(groupChanges.allSatisfy { $0.changedFields == ["members"] && $0.relatedIds.count == 2 })

        try await apply(t, loser, 4, .unmerged(formerWinner: winner))
        let restored = try await Self.memberships(client, loser)
        #expect(Set(restored.map(\.id)) == [loserShared.id, loserOnly.id])
        #expect(restored.first { $0.id == loserOnly.id }?.primary == true)
        #expect(Set(try await Self.memberships(client, winner).map(\.id)) == [winnerShared.id, winnerPrimary.id, winnerHistory.id])
        var getPast = Switchboard_Organization_V1_GetMembershipRequest()
        getPast.id = loserPast.id
        #expect(try await client.stub.getMembership(getPast, options: client.options).contactId.lowercased() == loser.uuidString.lowercased())
        #expect(try await Self.groupMembers(client, both) == [loser.uuidString.lowercased(), winner.uuidString.lowercased()])
        #expect(try await Self.groupMembers(client, loserGroup) == [loser.uuidString.lowercased()])
        // Erasing a person after a merge also drops what the merge logged about them.
        try await apply(t, loser, 5, .merged(winner: winner))
        try await apply(t, winner, 6, .erased(request: "erasure-9"))
        let logged = try await harness.pool.query(
            settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM organization.merge_moves WHERE tenant_id = $1", [.text(t)])
        #expect(try logged.first?.int("n") == 0)
        #expect(await code { _ = try await Self.memberships(client, winner) } == .notFound)
    }
}
