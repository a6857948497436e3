import Foundation
import OrganizationService
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

typealias Group = Switchboard_Organization_V1_Group

/// Groups: nesting, bulk member changes with a result per contact, members with subgroups, a contact's groups.
@Suite("Organization groups", .serialized)
final class GroupTests {
    let harness: OrganizationHarness
    let projection = PostgresContactProjection(feed: ChangeFeed(schema: "organization")) { _ in "{}" }
    init() async throws { harness = try await OrganizationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private func contact(_ tenant: String, _ name: String, deleted: Bool = false) async throws -> String {
        let id = UUID()
        let change = ContactChange(tenantID: tenant, contactID: id, sequence: 1, kind: .state(displayName: name, deleted: deleted))
        try await harness.pool.transaction { c in try await projection.apply([change], on: c) }
        return id.uuidString.lowercased()
    }

    private static func create(_ client: OrgClient, _ name: String, parent: String = "", requestID: String = "") async throws -> Group {
        var g = Group()
        g.name = name
        g.parentGroupId = parent
        var request = Switchboard_Organization_V1_CreateGroupRequest()
        request.group = g
        request.requestId = requestID
        return try await client.stub.createGroup(request, options: client.options)
    }

    private static func add(
        _ client: OrgClient, _ group: String, _ contacts: [String], requestID: String = ""
    ) async throws
        -> [Switchboard_Organization_V1_GroupMemberResult.Outcome]
    {
        var request = Switchboard_Organization_V1_AddGroupMembersRequest()
        request.groupId = group
        request.contactIds = contacts
        request.requestId = requestID
        return try await client.stub.addGroupMembers(request, options: client.options).results.map(\.outcome)
    }

    private static func remove(
        _ client: OrgClient, _ group: String, _ contacts: [String]
    ) async throws
        -> [Switchboard_Organization_V1_GroupMemberResult.Outcome]
    {
        var request = Switchboard_Organization_V1_RemoveGroupMembersRequest()
        request.groupId = group
        request.contactIds = contacts
        return try await client.stub.removeGroupMembers(request, options: client.options).results.map(\.outcome)
    }

    private static func members(
        _ client: OrgClient, _ group: String, subgroups: Bool = false, pageSize: Int32 = 0, token: String = ""
    )
        async throws -> Switchboard_Organization_V1_ListGroupMembersResponse
    {
        var request = Switchboard_Organization_V1_ListGroupMembersRequest()
        request.groupId = group
        request.includeSubgroups = subgroups
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        return try await client.stub.listGroupMembers(request, options: client.options)
    }

    private static func update(_ client: OrgClient, _ id: String, paths: [String], change: (inout Group) -> Void) async throws -> Group {
        var g = Group()
        g.id = id
        change(&g)
        var request = Switchboard_Organization_V1_UpdateGroupRequest()
        request.group = g
        request.updateMask = Google_Protobuf_FieldMask(paths: paths)
        return try await client.stub.updateGroup(request, options: client.options)
    }

    @Test("bulk add and remove answer per contact: added, removed, unchanged, unknown contact, invalid id")
    func bulk() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let group = try await Self.create(client, "Newsletter")
        let (ada, grace) = (try await contact(t, "Ada"), try await contact(t, "Grace"))
        let gone = try await contact(t, "Gone", deleted: true)
        let stranger = try await contact(tenant(), "Elsewhere")
        let outcomes = try await Self.add(client, group.id, [ada, "not-an-id", grace, ada, UUID().uuidString, gone, stranger])
        #expect(outcomes == [.added, .invalidId, .added, .unchanged, .contactNotFound, .contactNotFound, .contactNotFound])
        #expect(try await Self.add(client, group.id, [ada]) == [.unchanged])
        #expect(Set(try await Self.members(client, group.id).members.map(\.contactId)) == [ada, grace])
        #expect(try await Self.members(client, group.id).members.first { $0.contactId == ada }?.contactDisplayName == "Ada")
        #expect(try await Self.remove(client, group.id, [ada, ada, "x", grace]) == [.removed, .unchanged, .invalidId, .removed])
        #expect(try await Self.remove(client, group.id, [ada]) == [.unchanged])
        #expect(try await Self.members(client, group.id).members.isEmpty)
        // At most 1,000 ids.
        let tooMany = Array(repeating: ada, count: 1001)
        #expect(fields(await rpcError { _ = try await Self.add(client, group.id, tooMany) }) == ["contact_ids"])
        #expect(fields(await rpcError { _ = try await Self.add(client, group.id, []) }) == ["contact_ids"])
        // An id far longer than an id is refused before anything is written (it would be echoed in the results).
        let long = String(repeating: "x", count: 3000)
        #expect(fields(await rpcError { _ = try await Self.add(client, group.id, [grace, long]) }) == ["contact_ids[1]"])
        #expect(try await Self.members(client, group.id).members.isEmpty)
        let thousand = (0..<1000).map { _ in UUID().uuidString }
        #expect(try await Self.add(client, group.id, thousand).allSatisfy { $0 == .contactNotFound })
        #expect(await code { _ = try await Self.add(client, UUID().uuidString, [ada]) } == .notFound)
    }

    @Test("a retried bulk add with the same request id returns the first results")
    func idempotentBulk() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let group = try await Self.create(client, "G")
        let ada = try await contact(t, "Ada")
        let requestID = UUID().uuidString
        #expect(try await Self.add(client, group.id, [ada], requestID: requestID) == [.added])
        #expect(try await Self.add(client, group.id, [ada], requestID: requestID) == [.added])
        let first = try await Self.create(client, "Once", requestID: "group-once")
        #expect(try await Self.create(client, "Once", requestID: "group-once") == first)
    }

    @Test("nested groups: members with subgroups once each; cycles refused; delete rules; a contact's groups")
    func nesting() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let top = try await Self.create(client, "All customers")
        let middle = try await Self.create(client, "Europe", parent: top.id)
        let bottom = try await Self.create(client, "Germany", parent: middle.id)
        let (a, b, c) = (try await contact(t, "A"), try await contact(t, "B"), try await contact(t, "C"))
        _ = try await Self.add(client, top.id, [a])
        _ = try await Self.add(client, middle.id, [a, b])
        _ = try await Self.add(client, bottom.id, [c])
        #expect(try await Self.members(client, top.id).members.map(\.contactId) == [a])
        let all = try await Self.members(client, top.id, subgroups: true).members
        #expect(Set(all.map(\.contactId)) == [a, b, c])
        #expect(all.count == 3)
        #expect(all.first { $0.contactId == a }?.groupId == top.id)
        #expect(all.first { $0.contactId == c }?.groupId == bottom.id)
        // Pages of one.
        var seen: [String] = []
        var token = ""
        repeat {
            let page = try await Self.members(client, top.id, subgroups: true, pageSize: 1, token: token)
            seen += page.members.map(\.contactId)
            token = page.page?.nextPageToken ?? ""
        } while !token.isEmpty && seen.count < 10
        #expect(seen.sorted() == [a, b, c].sorted())

        for parent in [top.id, middle.id, bottom.id] {
            #expect(
                await code { _ = try await Self.update(client, top.id, paths: ["parent_group_id"]) { $0.parentGroupId = parent } }
                    == .failedPrecondition)
        }
        var contactGroups = Switchboard_Organization_V1_ListContactGroupsRequest()
        contactGroups.contactId = a
        #expect(try await client.stub.listContactGroups(contactGroups, options: client.options).groups.map(\.name) == ["All customers", "Europe"])
        var deleteMiddle = Switchboard_Organization_V1_DeleteGroupRequest()
        deleteMiddle.id = middle.id
        #expect(await code { _ = try await client.stub.deleteGroup(deleteMiddle, options: client.options) } == .failedPrecondition)
        var deleteBottom = Switchboard_Organization_V1_DeleteGroupRequest()
        deleteBottom.id = bottom.id
        _ = try await client.stub.deleteGroup(deleteBottom, options: client.options)
        _ = try await client.stub.deleteGroup(deleteMiddle, options: client.options)
        #expect(try await Self.members(client, top.id, subgroups: true).members.map(\.contactId) == [a])
        #expect(try await client.stub.listContactGroups(contactGroups, options: client.options).groups.map(\.name) == ["All customers"])
        var undeleteBottom = Switchboard_Organization_V1_UndeleteGroupRequest()
        undeleteBottom.id = bottom.id
        #expect(await code { _ = try await client.stub.undeleteGroup(undeleteBottom, options: client.options) } == .failedPrecondition)
        var list = Switchboard_Organization_V1_ListGroupsRequest()
        list.namePrefix = "ALL"
        #expect(try await client.stub.listGroups(list, options: client.options).groups.map(\.id) == [top.id])
        list.namePrefix = ""
        list.includeDeleted = true
        #expect(try await client.stub.listGroups(list, options: client.options).groups.count == 3)
        let renamed = try await Self.update(client, top.id, paths: ["name", "description"]) {
            $0.name = "Customers"
            $0.description = "Everyone who pays"
        }
        #expect(renamed.description == "Everyone who pays")
    }

    @Test("groups are per tenant; a deleted contact's entries are hidden; bad input names fields; read-only cannot write")
    func isolationAndValidation() async throws {
        let (ta, tb) = (tenant(), tenant())
        let a = try await harness.client(tenant: ta)
        let b = try await harness.client(tenant: tb)
        let group = try await Self.create(a, "Private")
        let ada = try await contact(ta, "Ada")
        _ = try await Self.add(a, group.id, [ada])
        var get = Switchboard_Organization_V1_GetGroupRequest()
        get.id = group.id
        #expect(await code { _ = try await b.stub.getGroup(get, options: b.options) } == .notFound)
        #expect(await code { _ = try await Self.add(b, group.id, [ada]) } == .notFound)
        #expect(await code { _ = try await Self.members(b, group.id) } == .notFound)
        #expect(await code { _ = try await Self.update(b, group.id, paths: ["name"]) { $0.name = "x" } } == .notFound)
        #expect(try await b.stub.listGroups(.init(), options: b.options).groups.isEmpty)
        var contactGroups = Switchboard_Organization_V1_ListContactGroupsRequest()
        contactGroups.contactId = ada
        #expect(await code { _ = try await b.stub.listContactGroups(contactGroups, options: b.options) } == .notFound)
        let mine = try await Self.create(b, "Mine")
        #expect(try await Self.add(b, mine.id, [ada]) == [.contactNotFound])

        let change = ContactChange(tenantID: ta, contactID: UUID(uuidString: ada)!, sequence: 2, kind: .state(displayName: "Ada", deleted: true))
        try await harness.pool.transaction { c in try await self.projection.apply([change], on: c) }
        #expect(try await Self.members(a, group.id).members.isEmpty)

        #expect(fields(await rpcError { _ = try await Self.create(a, " ") }) == ["group.name"])
        #expect(fields(await rpcError { _ = try await Self.create(a, "X", parent: "nope") }) == ["group.parent_group_id"])
        #expect(await code { _ = try await Self.create(a, "X", parent: UUID().uuidString) } == .notFound)
        let reader = try await harness.client(tenant: ta, roles: [.readOnly])
        #expect(await code { _ = try await Self.create(reader, "X") } == .permissionDenied)
        #expect(await code { _ = try await Self.add(reader, group.id, [ada]) } == .permissionDenied)
        #expect(try await Self.members(reader, group.id).members.isEmpty)
    }
}
