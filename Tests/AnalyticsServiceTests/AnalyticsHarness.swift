import AnalyticsService
import CollaborationService
import CommunicationService
import ContactsService
import Foundation
import OrganizationService
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport

typealias AnalyticsStub = Switchboard_Analytics_V1_AnalyticsService_Client
typealias Entry = Switchboard_Analytics_V1_TimelineEntry

/// The four source services in-process (each on its own fresh database, organization following contacts), and
/// analytics following all four feeds with self-signed service tokens; or analytics alone, fed events directly.
final class AnalyticsHarness: Sendable {
    let analytics: ServiceHarness
    let sources: Sources?

    /// The source services.
    struct Sources: Sendable {
        let contacts: ServiceHarness
        let organization: ServiceHarness
        let communication: ServiceHarness
        let collaboration: ServiceHarness

        func feeds() -> [AnalyticsService.SourceFeed] {
            [(FeedSource.contacts, contacts), (.organization, organization), (.communication, communication), (.collaboration, collaboration)].map {
                AnalyticsService.SourceFeed(source: $0.0, host: "127.0.0.1", port: $0.1.port, token: AnalyticsHarness.token("analytics"))
            }
        }
    }

    static func token(_ service: String) -> ServiceTokenSource {
        .selfSigned(service: service, hs256Secret: testSecret, issuer: nil, audience: nil)
    }

    /// Starts the sources (when `withSources`) and analytics.
    /// - Parameters:
    ///   - withSources: run the four source services and follow their feeds.
    ///   - followFeeds: analytics follows the sources' feeds itself (false: the test runs its own consumers).
    ///   - limits: analytics' bounds.
    static func start(
        withSources: Bool = false, followFeeds: Bool = true, limits: AnalyticsLimits = AnalyticsLimits()
    ) async throws
        -> AnalyticsHarness
    {
        var sources: Sources?
        if withSources {
            let contacts = try await ServiceHarness.start(ContactsService.description)
            let organization = try await ServiceHarness.start(
                OrganizationService.description(
                    pageBytes: 1 << 20, contactsFeed: .init(host: "127.0.0.1", port: contacts.port, token: token("organization"))))
            let communication = try await ServiceHarness.start(CommunicationService.description)
            let collaboration = try await ServiceHarness.start(CollaborationService.description())
            sources = Sources(contacts: contacts, organization: organization, communication: communication, collaboration: collaboration)
        }
        let analytics = try await ServiceHarness.start(
            AnalyticsService.description(limits: limits, feeds: followFeeds ? sources?.feeds() ?? [] : []))
        return AnalyticsHarness(analytics: analytics, sources: sources)
    }

    private init(analytics: ServiceHarness, sources: Sources?) {
        self.analytics = analytics
        self.sources = sources
    }

    func stop() async {
        await analytics.stop()
        if let sources {
            await sources.collaboration.stop()
            await sources.communication.stop()
            await sources.organization.stop()
            await sources.contacts.stop()
        }
    }

    var pool: PostgresPool { analytics.pool }

    /// An analytics client calling as `user` of `tenant` with `roles`.
    func client(tenant: String, user: String = "user-1", roles: [Role] = [.user], token: String? = nil) async throws -> AnalyticsClient {
        AnalyticsClient(
            stub: AnalyticsStub(client: RPCClient(transport: analytics.channel)),
            options: try await analytics.options(tenant: tenant, user: user, roles: roles, token: token))
    }

    /// Applies events to analytics as one source's consumer does (one batch, one transaction).
    func apply(_ events: [Switchboard_Common_V1_ChangeEvent], source: FeedSource) async throws {
        let store = AnalyticsService.store(pool: pool)
        _ = try await pool.transaction { c in
            try await AnalyticsService.applyEvents(events, source: source, store: store, logger: .init(label: "test"), on: c)
        }
    }

    // MARK: Source calls

    func sourceOptions(_ harness: ServiceHarness, tenant: String, user: String = "user-1") async throws -> CallOptions {
        try await harness.options(tenant: tenant, user: user, roles: [.admin])
    }

    func createContact(tenant: String, given: String, family: String = "Lovelace", email: String = "") async throws -> Switchboard_Contacts_V1_Contact
    {
        let s = sources!.contacts
        var contact = Switchboard_Contacts_V1_Contact()
        var name = Switchboard_Contacts_V1_PersonName()
        name.given = given
        name.family = family
        contact.name = name
        if !email.isEmpty {
            var e = Switchboard_Contacts_V1_Email()
            e.address = email
            contact.emails = [e]
        }
        var request = Switchboard_Contacts_V1_CreateContactRequest()
        request.contact = contact
        return try await Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: s.channel))
            .createContact(request, options: try await sourceOptions(s, tenant: tenant))
    }

    func renameContact(tenant: String, _ id: String, given: String) async throws -> Switchboard_Contacts_V1_Contact {
        let s = sources!.contacts
        var contact = Switchboard_Contacts_V1_Contact()
        contact.id = id
        var name = Switchboard_Contacts_V1_PersonName()
        name.given = given
        name.family = "Lovelace"
        contact.name = name
        var request = Switchboard_Contacts_V1_UpdateContactRequest()
        request.contact = contact
        request.updateMask = Google_Protobuf_FieldMask(paths: ["name"])
        return try await Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: s.channel))
            .updateContact(request, options: try await sourceOptions(s, tenant: tenant))
    }

    func setStatus(tenant: String, _ id: String, _ status: Switchboard_Contacts_V1_ContactStatus) async throws {
        let s = sources!.contacts
        var contact = Switchboard_Contacts_V1_Contact()
        contact.id = id
        contact.status = status
        var request = Switchboard_Contacts_V1_UpdateContactRequest()
        request.contact = contact
        request.updateMask = Google_Protobuf_FieldMask(paths: ["status"])
        _ = try await Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: s.channel))
            .updateContact(request, options: try await sourceOptions(s, tenant: tenant))
    }

    @discardableResult
    func logInteraction(
        tenant: String, contacts: [String], kind: Switchboard_Communication_V1_InteractionKind = .call, organization: String = "",
        user: String = "user-1", occurredAt: Date? = nil
    ) async throws -> Switchboard_Communication_V1_Interaction {
        let s = sources!.communication
        var interaction = Switchboard_Communication_V1_Interaction()
        interaction.kind = kind
        interaction.direction = .outbound
        interaction.contactIds = contacts
        interaction.organizationId = organization
        interaction.subject = "Intro call"
        interaction.occurredAt = occurredAt
        var request = Switchboard_Communication_V1_LogInteractionRequest()
        request.interaction = interaction
        return try await Switchboard_Communication_V1_CommunicationService_Client(client: RPCClient(transport: s.channel))
            .logInteraction(request, options: try await sourceOptions(s, tenant: tenant, user: user))
    }

    @discardableResult
    func addNote(tenant: String, contact: String) async throws -> Switchboard_Collaboration_V1_Note {
        let s = sources!.collaboration
        var note = Switchboard_Collaboration_V1_Note()
        var subject = Switchboard_Collaboration_V1_Subject()
        subject.type = .contact
        subject.id = contact
        note.subjects = [subject]
        note.body = "Interested in the enterprise plan"
        note.visibility = .tenant
        var request = Switchboard_Collaboration_V1_CreateNoteRequest()
        request.note = note
        return try await Switchboard_Collaboration_V1_CollaborationService_Client(client: RPCClient(transport: s.channel))
            .createNote(request, options: try await sourceOptions(s, tenant: tenant))
    }

    @discardableResult
    func scheduleMeeting(tenant: String, contact: String) async throws -> Switchboard_Collaboration_V1_Meeting {
        let s = sources!.collaboration
        var meeting = Switchboard_Collaboration_V1_Meeting()
        meeting.title = "Demo"
        meeting.startTime = Date().addingTimeInterval(86_400 * 3)
        meeting.endTime = Date().addingTimeInterval(86_400 * 3 + 3600)
        meeting.timeZone = "UTC"
        meeting.contactIds = [contact]
        var request = Switchboard_Collaboration_V1_CreateMeetingRequest()
        request.meeting = meeting
        return try await Switchboard_Collaboration_V1_CollaborationService_Client(client: RPCClient(transport: s.channel))
            .createMeeting(request, options: try await sourceOptions(s, tenant: tenant))
    }

    func createOrganization(tenant: String, name: String) async throws -> Switchboard_Organization_V1_Organization {
        let s = sources!.organization
        var organization = Switchboard_Organization_V1_Organization()
        organization.name = name
        var request = Switchboard_Organization_V1_CreateOrganizationRequest()
        request.organization = organization
        return try await Switchboard_Organization_V1_OrganizationService_Client(client: RPCClient(transport: s.channel))
            .createOrganization(request, options: try await sourceOptions(s, tenant: tenant))
    }

    /// Adds a membership once organization's projection has the contact.
    func addMembership(tenant: String, contact: String, organization: String) async throws {
        let s = sources!.organization
        var membership = Switchboard_Organization_V1_Membership()
        membership.contactId = contact
        membership.organizationId = organization
        var request = Switchboard_Organization_V1_CreateMembershipRequest()
        request.membership = membership
        let stub = Switchboard_Organization_V1_OrganizationService_Client(client: RPCClient(transport: s.channel))
        let options = try await sourceOptions(s, tenant: tenant)
        _ = try await eventually {
            do {
                _ = try await stub.createMembership(request, options: options)
                return true
            } catch let error as RPCError where error.code == .notFound || error.code == .failedPrecondition {
                return false
            }
        }
    }
}

/// The typed client plus the call options carrying the token.
struct AnalyticsClient: Sendable {
    let stub: AnalyticsStub
    let options: CallOptions

    func timeline(
        _ id: String, type: Switchboard_Analytics_V1_SubjectType = .contact, pageSize: Int32 = 0, token: String = "",
        configure: (inout Switchboard_Analytics_V1_GetTimelineRequest) -> Void = { _ in }
    ) async throws -> Switchboard_Analytics_V1_GetTimelineResponse {
        var request = Switchboard_Analytics_V1_GetTimelineRequest()
        request.subjectType = type
        request.subjectId = id
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        configure(&request)
        return try await stub.getTimeline(request, options: options)
    }

    /// Every entry, following page tokens.
    func allEntries(_ id: String, type: Switchboard_Analytics_V1_SubjectType = .contact, pageSize: Int32 = 3) async throws -> [Entry] {
        var entries: [Entry] = []
        var token = ""
        repeat {
            let page = try await timeline(id, type: type, pageSize: pageSize, token: token)
            entries += page.entries
            token = page.page?.nextPageToken ?? ""
        } while !token.isEmpty
        return entries
    }

    func metrics(_ id: String) async throws -> Switchboard_Analytics_V1_ContactMetrics {
        var request = Switchboard_Analytics_V1_GetContactMetricsRequest()
        request.contactId = id
        return try await stub.getContactMetrics(request, options: options)
    }

    func score(_ id: String) async throws -> Switchboard_Analytics_V1_EngagementScore {
        var request = Switchboard_Analytics_V1_GetEngagementScoreRequest()
        request.contactId = id
        return try await stub.getEngagementScore(request, options: options)
    }

    func setModel(_ weights: [String: Double], halfLife: Double, requestID: String = "") async throws -> Switchboard_Analytics_V1_ScoringModel {
        var model = Switchboard_Analytics_V1_ScoringModel()
        model.weights = weights.sorted { $0.key < $1.key }.map {
            var w = Switchboard_Analytics_V1_KindWeight()
            w.kind = $0.key
            w.weight = $0.value
            return w
        }
        model.halfLifeDays = halfLife
        var request = Switchboard_Analytics_V1_SetScoringModelRequest()
        request.model = model
        request.requestId = requestID
        return try await stub.setScoringModel(request, options: options)
    }

    func createReport(
        _ name: String, columns: [String], filters: [(String, String, String)] = [], groupBy: String = ""
    ) async throws -> Switchboard_Analytics_V1_ReportDefinition {
        var report = Switchboard_Analytics_V1_ReportDefinition()
        report.name = name
        report.columns = columns
        report.filters = filters.map {
            var f = Switchboard_Analytics_V1_ReportFilter()
            f.column = $0.0
            f.op = $0.1
            f.value = $0.2
            return f
        }
        report.groupBy = groupBy
        var request = Switchboard_Analytics_V1_CreateReportRequest()
        request.report = report
        return try await stub.createReport(request, options: options)
    }

    func runReport(_ id: String) async throws -> [Switchboard_Analytics_V1_ReportRow] {
        var request = Switchboard_Analytics_V1_RunReportRequest()
        request.reportId = id
        return try await stub.runReport(request, options: options) { rows in
            var all: [Switchboard_Analytics_V1_ReportRow] = []
            for try await row in rows { all.append(row) }
            return all
        }
    }

    func exportReport(_ id: String, spreadsheetSafe: Bool = false) async throws -> [[UInt8]] {
        var request = Switchboard_Analytics_V1_ExportReportRequest()
        request.reportId = id
        request.spreadsheetSafe = spreadsheetSafe
        return try await stub.exportReport(request, options: options) { chunks in
            var all: [[UInt8]] = []
            for try await chunk in chunks { all.append(chunk.data) }
            return all
        }
    }
}

/// A contacts/communication/collaboration/organization ChangeEvent for feeding analytics directly.
func event(
    _ tenant: String, _ type: String, _ id: String, _ kind: Switchboard_Common_V1_ChangeKind, json: String = "{}", related: [String] = [],
    time: Date = Date(), actor: String = "user-1", changed: [String] = []
) throws -> Switchboard_Common_V1_ChangeEvent {
    var e = Switchboard_Common_V1_ChangeEvent()
    e.sequence = Int64.random(in: 1...Int64.max / 2)
    e.tenantId = tenant
    e.resourceType = type
    e.resourceId = id
    e.kind = kind
    e.commitTime = time
    e.actorId = actor
    e.relatedIds = related
    e.changedFields = changed
    e.resource = try Google_Protobuf_Struct(protoJSONText: json)
    return e
}

/// A Contact's JSON as contacts publishes it.
func contactJSON(
    _ id: String, given: String = "Ada", email: String = "", status: String = "CONTACT_STATUS_LEAD", custom: String = "{}", tags: [String] = []
) -> String {
    let emails = email.isEmpty ? "" : ",\"emails\":[{\"address\":\"\(email)\",\"primary\":true}]"
    let tagList = tags.isEmpty ? "" : ",\"tags\":[" + tags.map { "\"\($0)\"" }.joined(separator: ",") + "]"
    return
        "{\"id\":\"\(id)\",\"name\":{\"given\":\"\(given)\",\"family\":\"Lovelace\"},\"status\":\"\(status)\",\"customFields\":\(custom)\(emails)\(tagList)}"
}

/// An Interaction's JSON as communication publishes it.
func interactionJSON(_ id: String, kind: String = "INTERACTION_KIND_CALL", contacts: [String], occurredAt: Date, owner: String = "user-1") -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    let ids = contacts.map { "\"\($0)\"" }.joined(separator: ",")
    return
        "{\"id\":\"\(id)\",\"kind\":\"\(kind)\",\"contactIds\":[\(ids)],\"occurredAt\":\"\(formatter.string(from: occurredAt))\",\"ownerId\":\"\(owner)\"}"
}

func rpcError(_ body: () async throws -> Void) async -> RPCError? {
    do {
        try await body()
        return nil
    } catch let error as RPCError {
        return error
    } catch {
        return RPCError(code: .unknown, message: "\(error)")
    }
}

func fields(_ error: RPCError?) -> Set<String> { Set(error?.fieldViolations.map(\.field) ?? []) }

func tenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

func newID() -> String { UUID().uuidString.lowercased() }

let contactType = "switchboard.contacts.v1.Contact"
let interactionType = "switchboard.communication.v1.Interaction"
