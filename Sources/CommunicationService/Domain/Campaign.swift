import FoundationEssentials
import SwitchboardServiceKit

/// Where a campaign is (the values of `switchboard.communication.v1.CampaignStatus`).
public enum CampaignStatus: Int, Sendable, Hashable {
    case active = 1, paused, cancelled, completed
}

/// Who a campaign goes to, as the caller named them.
public enum CampaignAudience: Sendable, Hashable {
    /// The contact ids in ``CampaignData/contactIDs``.
    case contacts
    /// The members of an organization group, and with `includeSubgroups` those of every group below it.
    case group(UUID, includeSubgroups: Bool)
    /// The live matches of a contacts saved search.
    case savedSearch(UUID)

    /// The request field that names this audience, for errors about it.
    public var field: String {
        switch self {
        case .contacts: "campaign.contact_ids"
        case .group: "campaign.group_id"
        case .savedSearch: "campaign.saved_search_id"
        }
    }
}

/// Expands group and saved-search audiences to contact ids by asking the services that own them.
public protocol CampaignAudienceSource: Sendable {
    /// The contact ids of `audience` (not `.contacts`), in the upstream's order, possibly repeated; reading stops once
    /// more than `limit` distinct ids were read, so a too-large audience costs at most `limit + 1` of them.
    /// - Throws: ``CommunicationError/audienceRefused(field:type:description:)`` when the group or search does not exist
    ///   for the caller, or the service that holds it is not configured; ``CommunicationError/upstreamUnavailable(_:)``
    ///   when it cannot be reached or fails.
    func contacts(of audience: CampaignAudience, limit: Int, call: ForwardedCall) async throws -> [UUID]
}

/// What a caller sets on a campaign.
public struct CampaignData: Sendable, Hashable {
    /// A name for people.
    public var name: String
    /// The template.
    public var templateID: UUID
    /// Its version; nil: the latest when the campaign is made.
    public var templateVersion: Int?
    /// The channel.
    public var channel: Channel
    /// The purpose consent is checked for.
    public var purpose: String
    /// The recipients (for a group or saved search audience: empty until it is expanded).
    public var contactIDs: [UUID]
    /// Where the recipients come from.
    public var audience: CampaignAudience = .contacts
    /// The template's values, shared by every recipient.
    public var values: [String: String] = [:]
    /// When sending starts; nil: now.
    public var startAt: Date?

    /// Creates campaign data.
    public init(name: String, templateID: UUID, channel: Channel, purpose: String, contactIDs: [UUID]) {
        self.name = name
        self.templateID = templateID
        self.channel = channel
        self.purpose = purpose
        self.contactIDs = contactIDs
    }
}

/// Counts of a campaign's recipients.
public struct CampaignProgress: Sendable, Hashable {
    /// Recipients.
    public var recipients = 0
    /// Not yet a send.
    public var pending = 0
    /// Sends scheduled or with a dispatcher.
    public var queued = 0
    /// Sent.
    public var sent = 0
    /// Sent and delivered (or further).
    public var delivered = 0
    /// Failed or refused sends.
    public var failed = 0
    /// Skipped recipients and cancelled sends.
    public var skipped = 0
    /// The campaign's status.
    public var status: CampaignStatus = .active

    /// No counts.
    public init() {}
}

/// A stored campaign.
public struct CampaignRecord: Sendable, Hashable {
    /// Its id.
    public var id: UUID
    /// Its name.
    public var name: String
    /// The template version sent.
    public var template: TemplateReference
    /// The channel.
    public var channel: Channel
    /// The purpose.
    public var purpose: String
    /// When sending starts.
    public var startAt: Date
    /// Where its recipients came from (they were expanded when it was made).
    public var audience: CampaignAudience
    /// Where it is.
    public var status: CampaignStatus
    /// Its counts.
    public var progress: CampaignProgress
    /// When it was made.
    public var createdAt: Date
    /// Who made it.
    public var createdBy: String
    /// When it last changed.
    public var updatedAt: Date
    /// Who changed it last.
    public var updatedBy: String
}

/// Where one recipient of a campaign is (the values of `CampaignRecipient.State`).
public enum RecipientState: Int, Sendable, Hashable {
    case pending = 1, queued, skipped
}

/// One recipient of a campaign and, once it has one, its send.
public struct CampaignRecipientRecord: Sendable, Hashable {
    /// The contact.
    public var contactID: UUID
    /// Where it is.
    public var state: RecipientState
    /// Why it was skipped (empty otherwise).
    public var reason: String
    /// Its send, once queued.
    public var sendID: UUID?
    /// Its send's status, once queued.
    public var sendStatus: SendStatus?
    /// Its send's last error.
    public var sendError: String
}

/// Bounds of campaigns, pure.
public enum CampaignRules {
    /// Recipients a page of ``CampaignDomain/recipients(campaign:state:pageSize:pageToken:actor:)`` holds by default.
    public static let defaultRecipientPageSize = 100
    /// The most recipients a page may hold.
    public static let maxRecipientPageSize = 1_000

    /// Most contact ids one request may list (a bound on the request's size; a larger audience is a group or a saved
    /// search), and the default of ``CampaignDomain``'s `maxRecipients`.
    public static let maxRecipients = 10_000
    /// The range of the `SWITCHBOARD_COMMUNICATION_MAX_CAMPAIGN_RECIPIENTS` setting: every recipient becomes a row
    /// written in the campaign's one transaction.
    public static let maxRecipientsRange = 1...100_000

    /// Checks campaign data and deduplicates its recipients (listed ones; a group or search is expanded later).
    /// - Parameters:
    ///   - data: the campaign.
    ///   - now: the current time.
    ///   - maxRecipients: the most recipients of one campaign.
    /// - Throws: ``CommunicationError/invalid(_:)`` naming each bad field.
    public static func validate(_ data: inout CampaignData, now: Date, maxRecipients: Int = maxRecipients) throws {
        var violations: [Violation] = []
        let name = InteractionRules.trimmed(data.name)
        if name.isEmpty { violations.append(Violation("campaign.name", "is required", reason: "REQUIRED")) }
        if data.name.utf8.count > TemplateRules.maxNameBytes || InteractionRules.hasNUL(data.name) {
            violations.append(Violation("campaign.name", "must be at most \(TemplateRules.maxNameBytes) bytes", reason: "TOO_LONG"))
        }
        data.name = name
        if !ConsentRules.isPurposeKey(data.purpose) || data.purpose == ConsentRules.allPurposes {
            violations.append(
                Violation("campaign.purpose", "must be a purpose key (not \"all\")", reason: data.purpose.isEmpty ? "REQUIRED" : "INVALID_FORMAT"))
        }
        var seen = Set<UUID>()
        data.contactIDs = data.contactIDs.filter { seen.insert($0).inserted }
        if data.audience == .contacts {
            if data.contactIDs.isEmpty {
                violations.append(
                    Violation("campaign.contact_ids", "at least one recipient (or a group_id or saved_search_id instead)", reason: "REQUIRED"))
            }
            if data.contactIDs.count > maxRecipients {
                violations.append(Violation("campaign.contact_ids", "at most \(maxRecipients) recipients", reason: "TOO_MANY"))
            }
        }
        if let at = data.startAt, at > now.addingTimeInterval(SendRules.maxScheduleSeconds) {
            violations.append(Violation("campaign.start_at", "must be at most a year ahead", reason: "OUT_OF_RANGE"))
        }
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
        try TemplateRules.validate(values: data.values)
    }
}

/// Persistence of campaigns on the request side.
public protocol CampaignStore: Sendable {
    /// The first response of a request id, if the request was already made.
    func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]?
    /// Stores a campaign, where its recipients came from, and its recipients, in one transaction.
    func insert(
        _ data: CampaignData, template: TemplateReference, actor: Actor, write: WriteOptions<CampaignRecord>
    ) async throws
        -> WriteOutcome<CampaignRecord>
    /// A campaign with its progress.
    func fetch(id: UUID, actor: Actor) async throws -> CampaignRecord?
    /// Moves a campaign to `status` from one of `from` (`notFound`, or `campaignState` when it is elsewhere; one already
    /// at `status` is returned unchanged); a cancel also cancels its scheduled sends and skips its pending recipients.
    func setStatus(
        id: UUID, to status: CampaignStatus, from: Set<CampaignStatus>, actor: Actor, write: WriteOptions<CampaignRecord>
    ) async throws -> WriteOutcome<CampaignRecord>
    /// Campaigns newest first (created, then id, descending) after `after`, at most `limit`, with their progress, and
    /// the last one's cursor.
    func list(status: CampaignStatus?, after: TimeCursor?, limit: Int, actor: Actor) async throws -> (Rows<CampaignRecord>, TimeCursor?)
    /// A campaign's recipients in contact id order after `after`, at most `limit`; nil when the tenant has no such
    /// campaign.
    func recipients(
        campaign: UUID, state: RecipientState?, after: UUID?, limit: Int, actor: Actor
    ) async throws -> Rows<CampaignRecipientRecord>?
}

/// The campaign use cases.
public struct CampaignDomain: Sendable {
    let store: any CampaignStore
    let templates: TemplateDomain
    let audiences: any CampaignAudienceSource
    let maxRecipients: Int
    let now: @Sendable () -> Date

    /// Creates the domain.
    /// - Parameters:
    ///   - store: where campaigns are kept.
    ///   - templates: the templates campaigns send.
    ///   - audiences: expands groups and saved searches.
    ///   - maxRecipients: the most recipients of one campaign, however named.
    ///   - now: the clock.
    public init(
        store: any CampaignStore, templates: TemplateDomain, audiences: any CampaignAudienceSource, maxRecipients: Int = CampaignRules.maxRecipients,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.templates = templates
        self.audiences = audiences
        self.maxRecipients = maxRecipients
        self.now = now
    }

    /// Creates a campaign (request id required: it makes sends). A group or saved search audience is expanded here,
    /// once, with the caller's credentials, and the snapshot is stored with the campaign: nothing expands it again.
    /// - Parameters:
    ///   - data: the campaign.
    ///   - actor: the caller.
    ///   - write: the request id and response encoding.
    ///   - call: the caller's credentials, forwarded to the organization or contacts service.
    /// - Throws: ``CommunicationError`` (invalid fields, a refused audience, an unreachable upstream: nothing is made).
    public func create(
        _ data: CampaignData, actor: Actor, write: WriteOptions<CampaignRecord>, call: ForwardedCall
    ) async throws -> WriteOutcome<CampaignRecord> {
        guard !write.requestID.isEmpty else {
            throw CommunicationError.invalid([
                Violation("request_id", "is required: a retried CreateCampaign must not send twice", reason: "REQUIRED")
            ])
        }
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var data = data
        try CampaignRules.validate(&data, now: now(), maxRecipients: maxRecipients)
        let template = try await templates.get(id: data.templateID, version: data.templateVersion, actor: actor)
        guard template.data.channel == data.channel else {
            throw CommunicationError.invalid([
                Violation(
                    "campaign.template_id", "is written for \(template.data.channel), not the campaign's \(data.channel)", reason: "CHANNEL_MISMATCH")
            ])
        }
        // The values every recipient shares: checked once, now, rather than skipping everyone later. A recipient's own
        // fields (`contact.…`, `custom.…`) are filled per recipient when the runner reaches them; one whose record lacks
        // a field the campaign gives no fallback for is skipped with the reason.
        try TemplateRules.checkRenderable(template)
        let missing = try TemplateRules.render(template, values: data.values).missing.filter { !TemplateRules.isContactField($0) }
        guard missing.isEmpty else {
            throw CommunicationError.invalid(
                missing.prefix(InvalidRequest.maxReported).map {
                    Violation("campaign.template_values[\($0)]", "is required by the template and missing or empty", reason: "REQUIRED")
                })
        }
        if data.audience != .contacts {
            // After every local check: an upstream read is the expensive part, and a bad request should not cost one.
            var seen = Set<UUID>()
            data.contactIDs = try await audiences.contacts(of: data.audience, limit: maxRecipients, call: call).filter { seen.insert($0).inserted }
            if data.contactIDs.count > maxRecipients {
                throw CommunicationError.audienceRefused(
                    field: data.audience.field, type: "AUDIENCE_TOO_LARGE",
                    description: "has more than \(maxRecipients) contacts (SWITCHBOARD_COMMUNICATION_MAX_CAMPAIGN_RECIPIENTS)")
            }
            if data.contactIDs.isEmpty {
                throw CommunicationError.audienceRefused(field: data.audience.field, type: "AUDIENCE_EMPTY", description: "has no contacts")
            }
        }
        return try await store.insert(data, template: TemplateReference(id: template.id, version: template.version), actor: actor, write: write)
    }

    /// A campaign with its progress.
    public func get(id: UUID, actor: Actor) async throws -> CampaignRecord {
        guard let record = try await store.fetch(id: id, actor: actor) else {
            throw CommunicationError.notFound(kind: "campaign", id: id.uuidString.lowercased())
        }
        return record
    }

    /// A page of campaigns and the next page's token (empty on the last page).
    public func list(status: CampaignStatus?, pageSize: Int, pageToken: String, actor: Actor) async throws -> ([CampaignRecord], String) {
        let limit = try InteractionRules.pageLimit(pageSize)
        let fingerprint = PageToken.fingerprint(["campaigns", "\(status?.rawValue ?? 0)"])
        let after = try InteractionDomain.resume(pageToken, fingerprint: fingerprint)
        let (rows, last) = try await store.list(status: status, after: after, limit: limit, actor: actor)
        return (rows.records, SendDomain.token(after: last, more: rows.more, fingerprint: fingerprint))
    }

    /// A page of a campaign's recipients and the next page's token (empty on the last page).
    public func recipients(
        campaign: UUID, state: RecipientState?, pageSize: Int, pageToken: String, actor: Actor
    ) async throws -> ([CampaignRecipientRecord], String) {
        let limit = try InteractionRules.pageLimit(
            pageSize, default: CampaignRules.defaultRecipientPageSize, max: CampaignRules.maxRecipientPageSize)
        let fingerprint = PageToken.fingerprint(["recipients", campaign.uuidString, "\(state?.rawValue ?? 0)"])
        var after: UUID?
        if let cursor = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 1) {
            guard let id = UUID(uuidString: cursor[0]) else {
                throw CommunicationError.invalid([Violation("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")])
            }
            after = id
        }
        guard let rows = try await store.recipients(campaign: campaign, state: state, after: after, limit: limit, actor: actor) else {
            throw CommunicationError.notFound(kind: "campaign", id: campaign.uuidString.lowercased())
        }
        var next = ""
        if rows.more, let last = rows.records.last {
            next = PageToken(cursor: [last.contactID.uuidString.lowercased()], fingerprint: fingerprint).encoded
        }
        return (rows.records, next)
    }

    /// Pauses, resumes or cancels a campaign.
    public func set(
        id: UUID, to status: CampaignStatus, actor: Actor, write: WriteOptions<CampaignRecord>
    ) async throws -> WriteOutcome<CampaignRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let from: Set<CampaignStatus> =
            switch status {
            case .paused: [.active]
            case .active: [.paused]
            case .cancelled: [.active, .paused]
            case .completed: []
            }
        return try await store.setStatus(id: id, to: status, from: from, actor: actor, write: write)
    }
}
