import Foundation
import Glibc
import OrganizationService
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

@testable import ContactsService

/// Organization names in SearchContacts: a contacts service follows a real organization service's feed (which follows
/// the contacts feed back, as deployed), over HTTP/2 and PostgreSQL.
@Suite("Contacts search by organization name", .serialized)
final class OrganizationNamesSearchTests {
    let contacts: ServiceHarness
    let organization: ServiceHarness
    let tokenFile: String

    init() async throws {
        tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("sb-feed-token-\(UUID())").path
        try (try await ServiceHarness.serviceToken("contacts")).write(toFile: tokenFile, atomically: true, encoding: .utf8)
        (contacts, organization) = try await Self.startPair(tokenFile: tokenFile)
    }

    /// Each service follows the other's feed: organization's port is chosen first, and contacts' consumer retries until
    /// it answers. The port is free when chosen, but any socket of the test run may take it before organization binds
    /// it (a full run failed so): then both start again on another.
    private static func startPair(tokenFile: String) async throws -> (contacts: ServiceHarness, organization: ServiceHarness) {
        var attempt = 0
        while true {
            attempt += 1
            let organizationPort = try #require(freePort())
            let contacts = try await ServiceHarness.start(
                ContactsService.description(
                    limits: ContactsLimits(), organizationFeed: .init(host: "127.0.0.1", port: organizationPort, tokenFile: tokenFile)))
            do {
                let organization = try await ServiceHarness.start(
                    OrganizationService.description(
                        pageBytes: 1 << 20, contactsFeed: .init(host: "127.0.0.1", port: contacts.port, tokenFile: tokenFile)),
                    environment: ["SWITCHBOARD_GRPC_PORT": String(organizationPort)])
                return (contacts, organization)
            } catch  where attempt < 5 {
                await contacts.stop()
            }
        }
    }

    deinit {
        let (c, o, file) = (contacts, organization, tokenFile)
        Task {
            await o.stop()
            await c.stop()
            try? FileManager.default.removeItem(atPath: file)
        }
    }

    private static func newTenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

    private struct Tenant {
        let id: String
        let contacts: Switchboard_Contacts_V1_ContactsService_Client
        let organization: Switchboard_Organization_V1_OrganizationService_Client
        let contactsOptions: CallOptions
        let organizationOptions: CallOptions
    }

    private func tenant(_ id: String) async throws -> Tenant {
        Tenant(
            id: id, contacts: .init(client: RPCClient(transport: contacts.channel)),
            organization: .init(client: RPCClient(transport: organization.channel)),
            contactsOptions: try await contacts.options(tenant: id), organizationOptions: try await organization.options(tenant: id))
    }

    private func person(_ given: String, _ family: String, in t: Tenant) async throws -> String {
        var request = Switchboard_Contacts_V1_CreateContactRequest()
        var contact = Switchboard_Contacts_V1_Contact()
        var name = Switchboard_Contacts_V1_PersonName()
        name.given = given
        name.family = family
        contact.name = name
        request.contact = contact
        return try await t.contacts.createContact(request, options: t.contactsOptions).id
    }

    private func company(_ name: String, in t: Tenant) async throws -> Switchboard_Organization_V1_Organization {
        var request = Switchboard_Organization_V1_CreateOrganizationRequest()
        var organization = Switchboard_Organization_V1_Organization()
        organization.name = name
        request.organization = organization
        return try await t.organization.createOrganization(request, options: t.organizationOptions)
    }

    /// Creates a membership once organization's projection knows the contact (it follows the contacts feed).
    private func join(_ contactID: String, _ organizationID: String, in t: Tenant) async throws -> Switchboard_Organization_V1_Membership {
        var request = Switchboard_Organization_V1_CreateMembershipRequest()
        var membership = Switchboard_Organization_V1_Membership()
        membership.contactId = contactID
        membership.organizationId = organizationID
        request.membership = membership
        var created: Switchboard_Organization_V1_Membership?
        _ = try await eventually {
            do {
                created = try await t.organization.createMembership(request, options: t.organizationOptions)
                return true
            } catch let error as RPCError where error.code == .failedPrecondition || error.code == .notFound || error.code == .invalidArgument {
                return false
            }
        }
        return try #require(created)
    }

    private func found(_ query: String, in t: Tenant) async throws -> Set<String> {
        var request = Switchboard_Contacts_V1_SearchContactsRequest()
        request.query = query
        return Set(try await t.contacts.searchContacts(request, options: t.contactsOptions).hits.compactMap { $0.contact?.id })
    }

    private func eventuallyFound(_ query: String, in t: Tenant, is expected: Set<String>) async throws -> Bool {
        try await eventually { try await found(query, in: t) == expected }
    }

    @Test("a member is found by the organization's name, with typos and prefixes; a rename moves it, a deletion removes it")
    func followsOrganizations() async throws {
        let t = try await tenant(Self.newTenant())
        let ada = try await person("Ada", "Lovelace", in: t)
        let grace = try await person("Grace", "Hopper", in: t)
        let acme = try await company("Acme Robotics", in: t)
        _ = try await join(ada, acme.id, in: t)
        #expect(try await eventuallyFound("acme", in: t, is: [ada]))
        var request = Switchboard_Contacts_V1_SearchContactsRequest()
        request.query = "acme"
        let highlights = try await t.contacts.searchContacts(request, options: t.contactsOptions).hits.first?.highlights ?? []
        #expect(highlights.map(\.field) == ["organization_names[0]"])
        #expect(highlights.first?.text == "Acme Robotics" && highlights.first?.matches.map { [$0.start, $0.end] } == [[0, 4]])
        #expect(try await found("robotcs", in: t) == [ada])  // a typo
        #expect(try await found("ada robo", in: t) == [ada])  // a name and a prefix of the organization
        #expect(try await found("grace acme", in: t).isEmpty)

        // Renamed: the new name finds the member, the old one no longer does.
        var rename = Switchboard_Organization_V1_UpdateOrganizationRequest()
        var renamed = acme
        renamed.name = "Zenith Machines"
        rename.organization = renamed
        var mask = Google_Protobuf_FieldMask()
        mask.paths = ["name"]
        rename.updateMask = mask
        _ = try await t.organization.updateOrganization(rename, options: t.organizationOptions)
        #expect(try await eventuallyFound("zenith", in: t, is: [ada]))
        #expect(try await found("acme", in: t).isEmpty)

        // A second member; then the organization is deleted: neither is found by its name.
        _ = try await join(grace, acme.id, in: t)
        #expect(try await eventuallyFound("zenith", in: t, is: [ada, grace]))
        var delete = Switchboard_Organization_V1_DeleteOrganizationRequest()
        delete.id = acme.id
        _ = try await t.organization.deleteOrganization(delete, options: t.organizationOptions)
        #expect(try await eventuallyFound("zenith", in: t, is: []))
        // The people themselves are still found by their names.
        #expect(try await found("lovelace", in: t) == [ada])
    }

    @Test("a membership that ends by its date, with no event after it, leaves search at the next maintenance pass")
    func endedByDate() async throws {
        let t = try await tenant(Self.newTenant())
        let ada = try await person("Ada", "Lovelace", in: t)
        let grace = try await person("Grace", "Hopper", in: t)
        let globex = UUID.random(), current = UUID.random(), past = UUID.random()
        let tomorrow = try await contacts.pool.query("SELECT (current_date + 1)::text AS d").first!.string("d")
        // Synthetic feed changes, as the consumer applies them (organization's own rules are tested in its suite).
        try await contacts.pool.transaction { c in
            try await PostgresOrganizationNames().apply(
                [
                    .init(tenantID: t.id, sequence: 1, kind: .organization(id: globex, name: "Globex", deleted: false)),
                    .init(
                        tenantID: t.id, sequence: 2,
                        kind: .membership(id: current, contactID: UUID(text: ada)!, organizationID: globex, endDate: tomorrow)),
                    .init(
                        tenantID: t.id, sequence: 3,
                        kind: .membership(id: past, contactID: UUID(text: grace)!, organizationID: globex, endDate: "2021-03-31")),
                ], on: c)
        }
        #expect(try await found("globex", in: t) == [ada])
        // A day passes: the membership has ended, and nothing told the feed.
        _ = try await contacts.pool.query(
            settings: ["app.tenant_id": t.id],
            "UPDATE contacts.organization_memberships SET end_date = current_date - 1 WHERE tenant_id = $1 AND membership_id = $2",
            [.text(t.id), .uuid(current)])
        #expect(try await found("globex", in: t) == [ada])
        #expect(try await PostgresOrganizationNames().sweepEndedMemberships(pool: contacts.pool) >= 1)
        #expect(try await found("globex", in: t).isEmpty)
        #expect(try await PostgresOrganizationNames().sweepEndedMemberships(pool: contacts.pool) == 0)
        #expect(try await found("lovelace", in: t) == [ada])
    }

    @Test("a membership ended or removed takes the organization's name away; another tenant never finds it")
    func followsMemberships() async throws {
        let t = try await tenant(Self.newTenant())
        let other = try await tenant(Self.newTenant())
        let ada = try await person("Ada", "Lovelace", in: t)
        let grace = try await person("Grace", "Hopper", in: t)
        let stranger = try await person("Ada", "Byron", in: other)
        let initech = try await company("Initech", in: t)
        let theirs = try await company("Initech", in: other)
        let adaAtInitech = try await join(ada, initech.id, in: t)
        let graceAtInitech = try await join(grace, initech.id, in: t)
        _ = try await join(stranger, theirs.id, in: other)
        #expect(try await eventuallyFound("initech", in: t, is: [ada, grace]))
        #expect(try await eventuallyFound("initech", in: other, is: [stranger]))

        // Ended in the past: no longer the person's organization.
        var end = Switchboard_Organization_V1_UpdateMembershipRequest()
        var ended = adaAtInitech
        ended.endDate = "2020-06-30"
        end.membership = ended
        var mask = Google_Protobuf_FieldMask()
        mask.paths = ["end_date"]
        end.updateMask = mask
        _ = try await t.organization.updateMembership(end, options: t.organizationOptions)
        #expect(try await eventuallyFound("initech", in: t, is: [grace]))

        // Removed.
        var remove = Switchboard_Organization_V1_DeleteMembershipRequest()
        remove.id = graceAtInitech.id
        _ = try await t.organization.deleteMembership(remove, options: t.organizationOptions)
        #expect(try await eventuallyFound("initech", in: t, is: []))
        #expect(try await found("initech", in: other) == [stranger])

        // Row-level security: a tenant's transactions see its own projection rows and no one else's.
        func count(_ table: String, as tenant: String, of owner: String) async throws -> Int64 {
            try await contacts.pool.query(
                settings: ["app.tenant_id": tenant], "SELECT count(*) AS n FROM contacts.\(table) WHERE tenant_id = $1", [.text(owner)]
            ).rows.first?.int("n") ?? -1
        }
        #expect(try await count("organizations", as: t.id, of: t.id) == 1)
        #expect(try await count("organizations", as: other.id, of: t.id) == 0)
        #expect(try await count("organization_memberships", as: other.id, of: t.id) == 0)
        #expect(try await count("organization_memberships", as: other.id, of: other.id) == 1)
    }
}

/// The organization feed's events as projection changes (no I/O).
@Suite("Organization feed mapping")
struct OrganizationFeedMappingTests {
    @Test("organization events: names and memberships decode; broken ones are rejected with a reason, others ignored")
    func mapping() throws {
        var event = Switchboard_Common_V1_ChangeEvent()
        event.tenantId = "t"
        event.sequence = 7
        event.resourceType = OrganizationFeedMapping.membershipType
        event.resourceId = "6f1d2c3b-0000-4000-8000-000000000001"
        event.kind = .deleted
        #expect(
            OrganizationFeedMapping.outcome(event)
                == .apply(.init(tenantID: "t", sequence: 7, kind: .membershipRemoved(id: UUID(text: event.resourceId)!))))
        event.kind = .created
        event.resource = .init()
        #expect(
            { if case .reject = OrganizationFeedMapping.outcome(event) { return true } else { return false } }(),
            "a membership without a contact is rejected")
        event.resourceId = "not-a-uuid"
        #expect(OrganizationFeedMapping.outcome(event) == .reject("resource_id is not a UUID"))
        event.resourceType = "switchboard.organization.v1.Unit"
        #expect(OrganizationFeedMapping.outcome(event) == .ignore)
        for (text, valid) in [
            ("2024-02-29", true), ("2023-02-29", false), ("2020-06-31", false), ("2020-13-01", false), ("0000-01-01", false),
            ("2020-1-01", false), ("20200101xx", false), ("9999-12-31", true),
        ] {
            #expect(OrganizationFeedMapping.isDate(text) == valid, "\(text)")
        }
    }
}
