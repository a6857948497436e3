import Foundation
import OrganizationService
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// GetContactSummary: a contact's first pages of ListContactMemberships and ListContactGroups, and the memberships'
/// organizations, in one call, over HTTP/2 and PostgreSQL.
@Suite("Organization contact summary", .serialized)
final class ContactSummaryTests {
    let harness: OrganizationHarness
    let projection = PostgresContactProjection(feed: ChangeFeed(schema: "organization")) { _ in "{}" }
    init() async throws { harness = try await OrganizationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    /// A contact known in `tenant` (as the contacts feed would put it in the projection), `id` a fresh one by default.
    private func contact(_ tenant: String, _ name: String, id: UUID = UUID()) async throws -> String {
        let change = ContactChange(tenantID: tenant, contactID: id, sequence: 1, kind: .state(displayName: name, deleted: false))
        try await harness.pool.transaction { c in try await projection.apply([change], on: c) }
        return id.uuidString.lowercased()
    }

    private static func member(_ client: OrgClient, _ contact: String, _ organization: String) async throws -> Membership {
        var request = Switchboard_Organization_V1_CreateMembershipRequest()
        request.membership = Membership()
        request.membership?.contactId = contact
        request.membership?.organizationId = organization
        return try await client.stub.createMembership(request, options: client.options)
    }

    private static func group(_ client: OrgClient, _ name: String, members: [String]) async throws -> Group {
        var create = Switchboard_Organization_V1_CreateGroupRequest()
        create.group = Group()
        create.group?.name = name
        let group = try await client.stub.createGroup(create, options: client.options)
        var add = Switchboard_Organization_V1_AddGroupMembersRequest()
        add.groupId = group.id
        add.contactIds = members
        _ = try await client.stub.addGroupMembers(add, options: client.options)
        return group
    }

    private static func summary(
        _ client: OrgClient, _ contact: String, pageSize: Int32 = 0
    ) async throws -> Switchboard_Organization_V1_ContactSummary {
        var request = Switchboard_Organization_V1_GetContactSummaryRequest()
        request.contactId = contact
        request.pageSize = pageSize
        return try await client.stub.getContactSummary(request, options: client.options)
    }

    private static func page(_ size: Int32, _ token: String = "") -> Switchboard_Common_V1_PageRequest {
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = size
        page.pageToken = token
        return page
    }

    private static func memberships(
        _ client: OrgClient, _ contact: String, pageSize: Int32, token: String = ""
    ) async throws -> Switchboard_Organization_V1_ListContactMembershipsResponse {
        var request = Switchboard_Organization_V1_ListContactMembershipsRequest()
        request.contactId = contact
        request.page = page(pageSize, token)
        return try await client.stub.listContactMemberships(request, options: client.options)
    }

    private static func groups(
        _ client: OrgClient, _ contact: String, pageSize: Int32, token: String = ""
    ) async throws -> Switchboard_Organization_V1_ListContactGroupsResponse {
        var request = Switchboard_Organization_V1_ListContactGroupsRequest()
        request.contactId = contact
        request.page = page(pageSize, token)
        return try await client.stub.listContactGroups(request, options: client.options)
    }

    @Test("the summary is the lists' first pages (10 by default) plus the memberships' live organizations in their order")
    func matchesLists() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (ada, grace) = (try await contact(t, "Ada"), try await contact(t, "Grace"))
        let (acme, globex, gone) = (try await client.create("Acme"), try await client.create("Globex"), try await client.create("Gone"))
        let (m1, m2) = (try await Self.member(client, ada, acme.id), try await Self.member(client, ada, globex.id))
        _ = try await Self.member(client, ada, gone.id)
        _ = try await Self.member(client, grace, acme.id)
        _ = try await client.delete(gone.id)
        let friends = try await Self.group(client, "Friends", members: [ada, grace])
        let clients = try await Self.group(client, "Clients", members: [ada])
        _ = try await Self.group(client, "Others", members: [grace])

        let summary = try await Self.summary(client, ada)
        #expect(summary.memberships == (try await Self.memberships(client, ada, pageSize: 10)))
        #expect(summary.groups == (try await Self.groups(client, ada, pageSize: 10)))
        #expect(Set(summary.memberships?.memberships.map(\.id) ?? []) == [m1.id, m2.id])
        #expect(summary.groups?.groups.map(\.id) == [clients.id, friends.id])
        let order = summary.memberships?.memberships.map(\.organizationId) ?? []
        #expect(summary.organizations.map(\.id) == order)
        let names = [acme.id: "Acme", globex.id: "Globex"]
        #expect(summary.organizations.map(\.name) == order.map { names[$0] ?? "?" })
        #expect(summary.organizations == [try await client.get(order[0]), try await client.get(order[1])])
        // A read-only caller gets the same answer.
        #expect(try await Self.summary(try await harness.client(tenant: t, roles: [.readOnly]), ada) == summary)
    }

    @Test("page_size bounds each list and its tokens continue through the list RPCs; bad page_size or contact_id is INVALID_ARGUMENT")
    func pagingAndValidation() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let ada = try await contact(t, "Ada")
        let (acme, globex) = (try await client.create("Acme"), try await client.create("Globex"))
        let (m1, m2) = (try await Self.member(client, ada, acme.id), try await Self.member(client, ada, globex.id))
        let (g1, g2) = (try await Self.group(client, "Alpha", members: [ada]), try await Self.group(client, "Beta", members: [ada]))

        let one = try await Self.summary(client, ada, pageSize: 1)
        #expect(one.memberships == (try await Self.memberships(client, ada, pageSize: 1)))
        #expect(one.groups == (try await Self.groups(client, ada, pageSize: 1)))
        let firstMembership = try #require(one.memberships?.memberships.first)
        #expect(one.memberships?.memberships.count == 1)
        #expect(one.organizations.map(\.id) == [firstMembership.organizationId])
        #expect(one.groups?.groups.map(\.id) == [g1.id])
        let membershipToken = one.memberships?.page?.nextPageToken ?? ""
        let groupToken = one.groups?.page?.nextPageToken ?? ""
        #expect(!membershipToken.isEmpty && !groupToken.isEmpty)
        let rest = try await Self.memberships(client, ada, pageSize: 1, token: membershipToken).memberships.map(\.id)
        #expect(Set([firstMembership.id] + rest) == [m1.id, m2.id] && rest.count == 1)
        #expect(try await Self.groups(client, ada, pageSize: 1, token: groupToken).groups.map(\.id) == [g2.id])
        #expect(try await Self.summary(client, ada, pageSize: 50).memberships?.memberships.count == 2)

        for size: Int32 in [51, -1, .max, .min] {
            let error = await rpcError { _ = try await Self.summary(client, ada, pageSize: size) }
            #expect(error?.code == .invalidArgument && fields(error) == ["page_size"], "page_size \(size): \(String(describing: error))")
        }
        for id in ["", "nope", "12345678-1234-1234-1234-12345678901z"] {
            let error = await rpcError { _ = try await Self.summary(client, id) }
            #expect(error?.code == .invalidArgument && fields(error) == ["contact_id"], "contact_id \(id): \(String(describing: error))")
        }
        // An unknown contact is NOT_FOUND, as the lists answer.
        let stranger = UUID().uuidString
        #expect(await code { _ = try await Self.memberships(client, stranger, pageSize: 0) } == .notFound)
        #expect(await code { _ = try await Self.summary(client, stranger) } == .notFound)
    }

    @Test("another tenant gets NOT_FOUND as from the lists, and with the same contact id of its own, none of the first tenant's data")
    func tenantIsolation() async throws {
        let (ta, tb) = (tenant(), tenant())
        let (a, b) = (try await harness.client(tenant: ta), try await harness.client(tenant: tb, roles: [.admin]))
        let id = UUID()
        let ada = try await contact(ta, "Ada", id: id)
        let acme = try await a.create("Acme")
        _ = try await Self.member(a, ada, acme.id)
        _ = try await Self.group(a, "Friends", members: [ada])
        #expect(try await Self.summary(a, ada).organizations.map(\.name) == ["Acme"])

        #expect(await code { _ = try await Self.memberships(b, ada, pageSize: 0) } == .notFound)
        #expect(await code { _ = try await Self.groups(b, ada, pageSize: 0) } == .notFound)
        #expect(await code { _ = try await Self.summary(b, ada) } == .notFound)
        // The same id known in tenant B too: B's summary is B's own, empty.
        _ = try await contact(tb, "Ada B", id: id)
        let theirs = try await Self.summary(b, ada)
        #expect(theirs.memberships == (try await Self.memberships(b, ada, pageSize: 10)))
        #expect(theirs.groups == (try await Self.groups(b, ada, pageSize: 10)))
        #expect(theirs.memberships?.memberships.isEmpty == true && theirs.groups?.groups.isEmpty == true && theirs.organizations.isEmpty)
        #expect(try await Self.summary(a, ada).memberships?.memberships.count == 1)
    }
}
