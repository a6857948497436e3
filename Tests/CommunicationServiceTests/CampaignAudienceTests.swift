import CommunicationService
import ContactsService
import Foundation
import OrganizationService
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// Campaign audiences read from real contacts and organization services over HTTP/2: the organization follows the
/// contacts feed (so group members are real contacts), and communication follows it too (so the address directory holds
/// the contacts' real addresses) and reads groups and saved searches with the caller's token.
@Suite("Communication service: campaign audiences from groups and saved searches", .serialized)
final class CampaignAudienceTests {
    /// Small, so a too-large audience needs only a handful of contacts.
    static let maxRecipients = 4

    let contacts: ServiceHarness
    let organization: ServiceHarness
    let provider: FakeProvider
    let harness: CommunicationHarness
    let tokenFiles: [String]

    init() async throws {
        contacts = try await ServiceHarness.start(ContactsService.description)
        var files: [String] = []
        for service in ["organization", "communication"] {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(service)-feed-token-\(UUID())").path
            try (try await ServiceHarness.serviceToken(service)).write(toFile: file, atomically: true, encoding: .utf8)
            files.append(file)
        }
        tokenFiles = files
        organization = try await ServiceHarness.start(
            OrganizationService.description(pageBytes: 1 << 20, contactsFeed: .init(host: "127.0.0.1", port: contacts.port, tokenFile: files[0])))
        provider = try await FakeProvider.start()
        harness = try await CommunicationHarness.start(
            provider: CommunicationHarness.providerSettings(provider),
            contactsFeed: CommunicationService.ContactsFeed(
                host: "127.0.0.1", port: contacts.port, token: .file(files[1]), suppressionSecret: ContactsFeedTests.suppressionSecret),
            audiences: .init(
                organization: .init(host: "127.0.0.1", port: organization.port), contacts: .init(host: "127.0.0.1", port: contacts.port),
                maxRecipients: Self.maxRecipients))
    }
    deinit {
        let (h, p, o, c, files) = (harness, provider, organization, contacts, tokenFiles)
        Task {
            await h.stop()
            await p.stop()
            await o.stop()
            await c.stop()
            for file in files { try? FileManager.default.removeItem(atPath: file) }
        }
    }

    // MARK: - Fixtures in the upstream services

    private func contactsStub() -> Switchboard_Contacts_V1_ContactsService_Client {
        Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: contacts.channel))
    }

    private func organizationStub() -> Switchboard_Organization_V1_OrganizationService_Client {
        Switchboard_Organization_V1_OrganizationService_Client(client: RPCClient(transport: organization.channel))
    }

    /// A person in the contacts service with one e-mail address and `tags`; returns its id and address.
    private func person(_ t: String, _ name: String, tags: [String] = []) async throws -> (id: String, email: String) {
        var contact = Switchboard_Contacts_V1_Contact()
        var personName = Switchboard_Contacts_V1_PersonName()
        personName.given = name
        contact.name = personName
        var email = Switchboard_Contacts_V1_Email()
        email.address = "\(name.lowercased())-\(t)@example.com"
        contact.emails = [email]
        contact.tags = tags
        var request = Switchboard_Contacts_V1_CreateContactRequest()
        request.contact = contact
        let created = try await contactsStub().createContact(request, options: try await contacts.options(tenant: t))
        return (created.id, email.address)
    }

    private func group(_ t: String, _ name: String, parent: String = "") async throws -> String {
        var group = Switchboard_Organization_V1_Group()
        group.name = name
        group.parentGroupId = parent
        var request = Switchboard_Organization_V1_CreateGroupRequest()
        request.group = group
        return try await organizationStub().createGroup(request, options: try await organization.options(tenant: t)).id
    }

    /// How long a contact may take to reach organization and communication through the contacts feed: the cross-tenant
    /// feed holds back changes while any older transaction of the cluster is open, and the test cluster is shared with
    /// whatever else runs (a 30 s wait was seen once).
    static let feedPatience = Duration.seconds(90)

    /// Adds members, waiting (the organization learns contacts from the contacts feed) until every one is in.
    private func add(_ t: String, _ group: String, _ members: [String]) async throws {
        var request = Switchboard_Organization_V1_AddGroupMembersRequest()
        request.groupId = group
        request.contactIds = members
        let options = try await organization.options(tenant: t)
        let added = try await eventually(timeout: Self.feedPatience) {
            try await organizationStub().addGroupMembers(request, options: options).results.allSatisfy { $0.outcome != .contactNotFound }
        }
        #expect(added, "the organization service never learned the contacts from the feed")
    }

    private func savedSearch(_ t: String, tag: String, shared: Bool = true, user: String = "user-1") async throws -> String {
        var search = Switchboard_Contacts_V1_SearchContactsRequest()
        search.tags = [tag]
        var saved = Switchboard_Contacts_V1_SavedSearch()
        saved.name = "tagged \(tag)"
        saved.search = search
        saved.shared = shared
        var request = Switchboard_Contacts_V1_CreateSavedSearchRequest()
        request.savedSearch = saved
        return try await contactsStub().createSavedSearch(request, options: try await contacts.options(tenant: t, user: user)).id
    }

    /// A tenant with five people (e-mail, marketing consent, known to communication's address directory); `tagged` get
    /// the tag `spring`, everyone the tag `everyone`.
    private func people(_ t: String, client: CommClient, tagged: Set<String> = []) async throws -> [String: (id: String, email: String)] {
        var people: [String: (id: String, email: String)] = [:]
        for name in ["Ada", "Bob", "Cy", "Dee", "Eve"] {
            people[name] = try await person(t, name, tags: ["everyone"] + (tagged.contains(name) ? ["spring"] : []))
            _ = try await client.recordConsent(contact: people[name]!.id)
        }
        let known = try await eventually(timeout: Self.feedPatience) {
            try await harness.pool.query(
                settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM communication.contact_addresses WHERE tenant_id = $1", [.text(t)]
            ).first!.int("n") == 5
        }
        #expect(known, "the communication service never learned the addresses from the feed")
        return people
    }

    // MARK: - Campaigns

    private func create(
        _ client: CommClient, template: String, marker: String, requestID: String? = nil, configure: (inout CampaignProto) -> Void
    ) async throws -> CampaignProto {
        var campaign = CampaignProto()
        campaign.name = "Audience \(marker)"
        campaign.templateId = template
        campaign.channel = .email
        campaign.purpose = "marketing"
        campaign.templateValues = ["first": marker]
        configure(&campaign)
        var request = Switchboard_Communication_V1_CreateCampaignRequest()
        request.campaign = campaign
        request.requestId = requestID ?? UUID().uuidString
        return try await client.stub.createCampaign(request, options: client.options)
    }

    /// The addresses the provider was asked to send the campaign marked `marker` to, once the campaign is done.
    private func sentTo(_ client: CommClient, _ campaign: CampaignProto, marker: String) async throws -> [String] {
        let done = try #require(try await client.watchProgress(campaign.id).last)
        #expect(done.status == .completed && done.pending == 0 && done.queued == 0 && done.skipped == 0, "\(done)")
        // One address per message, as a provider that deduplicates by Idempotency-Key sends: delivery is at least once,
        // and under load the dispatcher may post a message again after a slow answer (a full-suite run on 2026-12-06
        // failed here with every send completed, most likely so).
        var sent: [String: String] = [:]
        for request in provider.requests {
            guard String(decoding: request.body, as: UTF8.self).contains(marker),
                let object = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any], let to = object["to"] as? String
            else { continue }
            sent[request.idempotencyKey.isEmpty ? UUID().uuidString : request.idempotencyKey] = to
        }
        return sent.values.sorted()
    }

    /// `subject:type` of each google.rpc.PreconditionFailure violation of a FAILED_PRECONDITION.
    private func preconditions(_ error: RPCError?) -> [String] {
        guard let error, error.code == .failedPrecondition, let details = error.statusDetails?.details else { return [] }
        return details.compactMap { try? $0.unpack(Google_Rpc_PreconditionFailure.self) }.flatMap { failure in
            failure.violations.map { "\($0.subject):\($0.type)" }
        }
    }

    private func campaignCount(_ t: String) async throws -> Int64 {
        try await harness.pool.query(
            settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM communication.campaigns WHERE tenant_id = $1", [.text(t)]
        ).first!.int("n")
    }

    @Test("a group audience sends to its direct members, or with include_subgroups to every nested group's too; a snapshot taken once")
    func groupAudience() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let people = try await people(t, client: client)
        let template = try await client.createTemplate("Groups", body: "Hello {{first}}")
        // Members: Ada, Bob; VIP (inside it): Bob again, Cy; Inner (inside VIP): Dee. Eve is in no group.
        let top = try await group(t, "Members")
        let vip = try await group(t, "VIP", parent: top)
        let inner = try await group(t, "Inner", parent: vip)
        try await add(t, top, [people["Ada"]!.id, people["Bob"]!.id])
        try await add(t, vip, [people["Bob"]!.id, people["Cy"]!.id])
        try await add(t, inner, [people["Dee"]!.id])

        let marker = "direct-\(UUID())"
        let requestID = UUID().uuidString
        let direct = try await create(client, template: template.id, marker: marker, requestID: requestID) { $0.groupId = top }
        #expect(direct.groupId == top && !direct.includeSubgroups && direct.contactIds.isEmpty && direct.progress?.recipients == 2)
        #expect(try await sentTo(client, direct, marker: marker) == [people["Ada"]!.email, people["Bob"]!.email].sorted())

        let nestedMarker = "nested-\(UUID())"
        let nested = try await create(client, template: template.id, marker: nestedMarker) {
            $0.groupId = top
            $0.includeSubgroups = true
        }
        #expect(nested.includeSubgroups && nested.progress?.recipients == 4)
        #expect(
            try await sentTo(client, nested, marker: nestedMarker)
                == ["Ada", "Bob", "Cy", "Dee"].map { people[$0]!.email }.sorted())
        let read = try await client.campaign(nested.id)
        #expect(read.groupId == top && read.includeSubgroups && read.savedSearchId.isEmpty)

        // The recipients were fixed when the campaign was made: a member added later, or a retry of the request, changes
        // nothing and sends nothing more.
        try await add(t, top, [people["Eve"]!.id])
        let retried = try await create(client, template: template.id, marker: marker, requestID: requestID) { $0.groupId = top }
        #expect(retried.id == direct.id && retried.progress?.recipients == 2)
        #expect(try await client.campaign(direct.id).progress?.recipients == 2)
        #expect(try await sentTo(client, direct, marker: marker).count == 2)
    }

    @Test("a saved-search audience sends to every live match of the search")
    func savedSearchAudience() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let people = try await people(t, client: client, tagged: ["Ada", "Cy", "Eve"])
        let template = try await client.createTemplate("Searches", body: "Hi {{first}}")
        let search = try await savedSearch(t, tag: "spring")
        let marker = "search-\(UUID())"
        let campaign = try await create(client, template: template.id, marker: marker) { $0.savedSearchId = search }
        #expect(campaign.savedSearchId == search && campaign.groupId.isEmpty && campaign.progress?.recipients == 3)
        #expect(try await sentTo(client, campaign, marker: marker) == ["Ada", "Cy", "Eve"].map { people[$0]!.email }.sorted())
    }

    @Test("unknown, empty and too-large audiences are FAILED_PRECONDITION naming the field; several audiences INVALID_ARGUMENT")
    func refusedAudiences() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let people = try await people(t, client: client)
        let template = try await client.createTemplate("Refused", body: "x {{first}}")
        let everyone = try await group(t, "Everyone")
        try await add(t, everyone, people.values.map { $0.id })
        let empty = try await group(t, "Empty")
        let allSearch = try await savedSearch(t, tag: "everyone")

        func refusal(_ configure: @escaping (inout CampaignProto) -> Void) async -> [String] {
            preconditions(await rpcError { _ = try await self.create(client, template: template.id, marker: "refused", configure: configure) })
        }
        #expect(await refusal { $0.groupId = newID() } == ["campaign.group_id:AUDIENCE_NOT_FOUND"])
        #expect(await refusal { $0.savedSearchId = newID() } == ["campaign.saved_search_id:AUDIENCE_NOT_FOUND"])
        #expect(await refusal { $0.groupId = empty } == ["campaign.group_id:AUDIENCE_EMPTY"])
        // Five people, at most four recipients.
        #expect(await refusal { $0.groupId = everyone } == ["campaign.group_id:AUDIENCE_TOO_LARGE"])
        #expect(await refusal { $0.savedSearchId = allSearch } == ["campaign.saved_search_id:AUDIENCE_TOO_LARGE"])
        #expect(try await campaignCount(t) == 0)

        func invalid(_ configure: @escaping (inout CampaignProto) -> Void) async -> Set<String> {
            fields(await rpcError { _ = try await self.create(client, template: template.id, marker: "invalid", configure: configure) })
        }
        #expect(
            await invalid {
                $0.contactIds = [people["Ada"]!.id]
                $0.groupId = everyone
            } == ["campaign.contact_ids", "campaign.group_id"])
        #expect(
            await invalid {
                $0.groupId = everyone
                $0.savedSearchId = allSearch
            } == ["campaign.group_id", "campaign.saved_search_id"])
        #expect(await invalid { $0.savedSearchId = "not-an-id" } == ["campaign.saved_search_id"])
        #expect(
            await invalid {
                $0.contactIds = [people["Ada"]!.id]
                $0.includeSubgroups = true
            } == ["campaign.include_subgroups"])
        #expect(await invalid { _ in } == ["campaign.contact_ids"])
        // Listed contacts are bounded by the same setting.
        #expect(await invalid { $0.contactIds = people.values.map { $0.id } } == ["campaign.contact_ids"])
        #expect(try await campaignCount(t) == 0)
    }

    @Test("another tenant's group or saved search is never expanded: the caller's own token is what the upstream checks")
    func tenantIsolation() async throws {
        let t = tenant()
        let owner = try await harness.client(tenant: t)
        let people = try await people(t, client: owner, tagged: ["Ada"])
        let members = try await group(t, "Members")
        try await add(t, members, [people["Ada"]!.id])
        let search = try await savedSearch(t, tag: "spring")

        let u = tenant()
        let stranger = try await harness.client(tenant: u)
        let template = try await stranger.createTemplate("Stranger", body: "x {{first}}")
        let asGroup = await rpcError { _ = try await self.create(stranger, template: template.id, marker: "stranger") { $0.groupId = members } }
        #expect(preconditions(asGroup) == ["campaign.group_id:AUDIENCE_NOT_FOUND"])
        let asSearch = await rpcError {
            _ = try await self.create(stranger, template: template.id, marker: "stranger") { $0.savedSearchId = search }
        }
        #expect(preconditions(asSearch) == ["campaign.saved_search_id:AUDIENCE_NOT_FOUND"])
        // Nothing was made for the stranger (so no recipient row of theirs names Ada).
        #expect(try await campaignCount(u) == 0)

        // Within the tenant too, the caller is who the contacts service checks: another user's private search is not
        // found for them, and is their owner's audience.
        let colleague = try await harness.client(tenant: t, user: "user-2")
        let privateSearch = try await savedSearch(t, tag: "spring", shared: false, user: "user-2")
        let ownTemplate = try await owner.createTemplate("Own", body: "x {{first}}")
        let notTheirs = await rpcError {
            _ = try await self.create(owner, template: ownTemplate.id, marker: "private") { $0.savedSearchId = privateSearch }
        }
        #expect(preconditions(notTheirs) == ["campaign.saved_search_id:AUDIENCE_NOT_FOUND"])
        let theirs = try await create(colleague, template: ownTemplate.id, marker: "private") { $0.savedSearchId = privateSearch }
        #expect(theirs.progress?.recipients == 1)
    }

    @Test("without the organization or contacts address the audience is FAILED_PRECONDITION naming the setting; unreachable is UNAVAILABLE")
    func notConfiguredOrUnreachable() async throws {
        let t = tenant()
        // Port 1 on the loopback refuses connections.
        let closed = CommunicationService.UpstreamAddress(host: "127.0.0.1", port: 1)
        for (organizationAddress, contactsAddress) in [(nil, closed), (closed, nil)]
            as [(CommunicationService.UpstreamAddress?, CommunicationService.UpstreamAddress?)]
        {
            let service = try await CommunicationHarness.start(audiences: .init(organization: organizationAddress, contacts: contactsAddress))
            do {
                let client = try await service.client(tenant: t)
                let template = try await client.createTemplate("T", body: "x {{first}}")
                let asGroup = await rpcError { _ = try await self.create(client, template: template.id, marker: "m") { $0.groupId = newID() } }
                let asSearch = await rpcError { _ = try await self.create(client, template: template.id, marker: "m") { $0.savedSearchId = newID() } }
                if organizationAddress == nil {
                    #expect(preconditions(asGroup) == ["campaign.group_id:NOT_CONFIGURED"])
                    #expect(asGroup?.message.contains("SWITCHBOARD_COMMUNICATION_ORGANIZATION_ADDRESS") == true)
                    #expect(asSearch?.code == .unavailable, "\(String(describing: asSearch))")
                } else {
                    #expect(asGroup?.code == .unavailable, "\(String(describing: asGroup))")
                    #expect(preconditions(asSearch) == ["campaign.saved_search_id:NOT_CONFIGURED"])
                    #expect(asSearch?.message.contains("SWITCHBOARD_COMMUNICATION_CONTACTS_ADDRESS") == true)
                }
                let made = try await service.pool.query(
                    settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM communication.campaigns WHERE tenant_id = $1", [.text(t)]
                ).first!.int("n")
                #expect(made == 0)
            }
            await service.stop()
        }
    }

    @Test("the settings: organization address as host:port, the recipient bound in range")
    func settings() throws {
        let parsed = try CommunicationService.audienceSettings([
            "SWITCHBOARD_COMMUNICATION_ORGANIZATION_ADDRESS": "organization:50062", "SWITCHBOARD_COMMUNICATION_CONTACTS_ADDRESS": "contacts:50061",
            "SWITCHBOARD_COMMUNICATION_MAX_CAMPAIGN_RECIPIENTS": "25000",
        ])
        #expect(parsed.organization == .init(host: "organization", port: 50062) && parsed.contacts == .init(host: "contacts", port: 50061))
        #expect(parsed.maxRecipients == 25000)
        let defaults = try CommunicationService.audienceSettings([:])
        #expect(defaults.organization == nil && defaults.contacts == nil && defaults.maxRecipients == 10_000)
        #expect(throws: ConfigurationError.self) {
            try CommunicationService.audienceSettings(["SWITCHBOARD_COMMUNICATION_ORGANIZATION_ADDRESS": "organization"])
        }
        #expect(throws: ConfigurationError.self) {
            try CommunicationService.audienceSettings(["SWITCHBOARD_COMMUNICATION_MAX_CAMPAIGN_RECIPIENTS": "100001"])
        }
    }
}
