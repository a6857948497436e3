import FoundationEssentials
import SwitchboardPostgres  // UUID text only (UUID(text:)): no pool or database types here
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

/// `switchboard.communication.v1.CommunicationService`: turns protobuf requests into domain calls and domain errors
/// into precise gRPC statuses. No SQL here.
public struct CommunicationHandler: Switchboard_Communication_V1_CommunicationService_ServiceProtocol {
    /// The interaction message.
    public typealias Proto = Switchboard_Communication_V1_Interaction
    typealias Methods = Switchboard_Communication_V1_CommunicationService.Method
    let interactions: InteractionDomain
    /// The consent ledger.
    let ledger: ConsentDomain
    /// The templates.
    let templates: TemplateDomain
    /// The sends.
    let sends: SendDomain
    /// What is held about a person (ExportSubject).
    let subjects: PostgresSubjectStore
    /// The campaigns.
    let campaigns: CampaignDomain
    /// Contacts' communication preferences.
    let preferences: PreferencesDomain
    let changes: TenantChangeWatcher
    /// Whether the contacts a write names are live (asked of the contacts service).
    let references: ContactReferences
    /// Longest etag a request may name.
    static let maxETagBytes = 64

    /// Creates the handler.
    /// - Parameters:
    ///   - interactions: the interaction use cases.
    ///   - consent: the consent ledger's use cases.
    ///   - templates: the template use cases.
    ///   - sends: the send use cases.
    ///   - subjects: what is held about a person.
    ///   - campaigns: the campaign use cases.
    ///   - preferences: the preferences use cases.
    ///   - changes: the kit's `WatchChanges`.
    ///   - references: the check of the contacts a write names.
    public init(
        interactions: InteractionDomain, consent: ConsentDomain, templates: TemplateDomain, sends: SendDomain, subjects: PostgresSubjectStore,
        campaigns: CampaignDomain, preferences: PreferencesDomain, changes: TenantChangeWatcher, references: ContactReferences
    ) {
        self.references = references
        self.preferences = preferences
        self.subjects = subjects
        self.campaigns = campaigns
        self.interactions = interactions
        self.ledger = consent
        self.templates = templates
        self.sends = sends
        self.changes = changes
    }

    /// The verified caller, with whether they hold the admin role (which sees and changes private interactions).
    private static func viewer(_ context: ServerContext) throws -> Viewer {
        Viewer(actor: try context.actor(), isAdmin: try context.caller().has(atLeast: .admin))
    }

    private static func checkETag(_ etag: String) throws {
        guard etag.utf8.count <= maxETagBytes else {
            throw CommunicationError.invalid([Violation("etag", "must be at most \(maxETagBytes) bytes", reason: "TOO_LONG")])
        }
    }

    private static func write(
        _ request: some ProtoJSONMessage, _ requestID: String, _ method: MethodDescriptor
    ) throws -> IdempotentWrite<InteractionRecord, Proto> {
        try IdempotentWrite(request: request, requestID: requestID, method: method, response: { InteractionMapping.proto($0) })
    }

    private static func pageResponse(_ next: String) -> Switchboard_Common_V1_PageResponse {
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        return page
    }

    // MARK: Interactions

    /// The `LogInteraction` RPC (see `communication.proto`).
    public func logInteraction(request: Switchboard_Communication_V1_LogInteractionRequest, context: ServerContext) async throws -> Proto {
        guard let interaction = request.interaction else {
            throw CommunicationError.invalid([Violation("interaction", "is required", reason: "REQUIRED")])
        }
        let data = try InteractionMapping.data(interaction, create: true)
        let write = try Self.write(request, request.requestId, Methods.logInteraction)
        let named = data.contactIDs.enumerated().map { ContactReference(field: "interaction.contact_ids[\($0)]", id: $1) }
        if let replay = try await references.check(named, for: write, context: context) { return replay }
        return try write.response(try await interactions.log(data, viewer: try Self.viewer(context), write: write.options))
    }

    /// The `GetInteraction` RPC (see `communication.proto`).
    public func getInteraction(request: Switchboard_Communication_V1_GetInteractionRequest, context: ServerContext) async throws -> Proto {
        InteractionMapping.proto(
            try await interactions.get(
                id: try InteractionMapping.requiredID(request.id, field: "id"), includeDeleted: request.includeDeleted,
                viewer: try Self.viewer(context)))
    }

    /// The `UpdateInteraction` RPC (see `communication.proto`).
    public func updateInteraction(request: Switchboard_Communication_V1_UpdateInteractionRequest, context: ServerContext) async throws -> Proto {
        guard let interaction = request.interaction else {
            throw CommunicationError.invalid([Violation("interaction", "is required", reason: "REQUIRED")])
        }
        let id = try InteractionMapping.requiredID(interaction.id, field: "interaction.id")
        let paths = request.updateMask?.paths ?? []
        if paths.contains("kind"), interaction.kind == .unspecified {
            throw CommunicationError.invalid([Violation("interaction.kind", "must be EMAIL, CALL, SMS, MEETING or OTHER", reason: "REQUIRED")])
        }
        let source = try InteractionMapping.data(interaction, create: false)
        try Self.checkETag(request.etag)
        let write = try Self.write(request, request.requestId, Methods.updateInteraction)
        if paths.contains("contact_ids"), references.isEnabled, !source.contactIDs.isEmpty {
            // Only contacts the update adds must be live: one deleted since the interaction named it may stay named.
            // The interaction's own errors (not found, not the caller's to read) are the update's too.
            let named = Set(try await interactions.get(id: id, includeDeleted: false, viewer: try Self.viewer(context)).data.contactIDs)
            let added = source.contactIDs.enumerated().filter { !named.contains($1) }
            let references = added.map { ContactReference(field: "interaction.contact_ids[\($0)]", id: $1) }
            if let replay = try await self.references.check(references, for: write, context: context) { return replay }
        }
        return try write.response(
            try await interactions.update(
                id: id, from: source, paths: paths, etag: request.etag, viewer: try Self.viewer(context), write: write.options))
    }

    /// The `DeleteInteraction` RPC (see `communication.proto`).
    public func deleteInteraction(request: Switchboard_Communication_V1_DeleteInteractionRequest, context: ServerContext) async throws -> Proto {
        try Self.checkETag(request.etag)
        let write = try Self.write(request, request.requestId, Methods.deleteInteraction)
        return try write.response(
            try await interactions.setDeleted(
                id: try InteractionMapping.requiredID(request.id, field: "id"), deleted: true, etag: request.etag,
                viewer: try Self.viewer(context), write: write.options))
    }

    /// The `UndeleteInteraction` RPC (see `communication.proto`).
    public func undeleteInteraction(
        request: Switchboard_Communication_V1_UndeleteInteractionRequest, context: ServerContext
    ) async throws -> Proto {
        let write = try Self.write(request, request.requestId, Methods.undeleteInteraction)
        return try write.response(
            try await interactions.setDeleted(
                id: try InteractionMapping.requiredID(request.id, field: "id"), deleted: false, etag: "", viewer: try Self.viewer(context),
                write: write.options))
    }

    /// The `ListInteractions` RPC (see `communication.proto`).
    public func listInteractions(
        request: Switchboard_Communication_V1_ListInteractionsRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_ListInteractionsResponse {
        var violations: [Violation] = []
        var query = InteractionQuery()
        let contact = InteractionMapping.optionalID(request.contactId, field: "contact_id", violations: &violations)
        let organization = InteractionMapping.optionalID(request.organizationId, field: "organization_id", violations: &violations)
        let thread = InteractionMapping.optionalID(request.threadId, field: "thread_id", violations: &violations)
        let scopes = [contact.map(InteractionScope.contact), organization.map(InteractionScope.organization), thread.map(InteractionScope.thread)]
            .compactMap { $0 }
        if scopes.count > 1 {
            violations.append(Violation("contact_id", "at most one of contact_id, organization_id and thread_id may be set"))
        }
        query.scope = scopes.first ?? .all
        if request.kind != .unspecified {
            if let kind = InteractionMapping.kind(request.kind) {
                query.kind = kind
            } else {
                violations.append(Violation("kind", "is not an interaction kind"))
            }
        }
        if !request.ownerId.isEmpty {
            if request.ownerId.utf8.count > InteractionRules.maxOwnerIDBytes || InteractionRules.hasNUL(request.ownerId) {
                violations.append(Violation("owner_id", "must be at most \(InteractionRules.maxOwnerIDBytes) bytes, without NUL characters"))
            }
            query.ownerID = request.ownerId
        }
        // An out-of-range Timestamp arrives as -infinity: refused, or the filter would silently match everything.
        for (field, date) in [("occurred_after", request.occurredAfter), ("occurred_before", request.occurredBefore)] {
            if let date, !date.timeIntervalSince1970.isFinite {
                violations.append(
                    Violation(field, "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z", reason: "OUT_OF_RANGE"))
            }
        }
        query.occurredAfter = request.occurredAfter
        query.occurredBefore = request.occurredBefore
        query.includeDeleted = request.includeDeleted
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
        let (records, next) = try await interactions.list(
            query, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", viewer: try Self.viewer(context))
        var response = Switchboard_Communication_V1_ListInteractionsResponse()
        response.interactions = records.map(InteractionMapping.proto)
        response.page = Self.pageResponse(next)
        return response
    }

    /// The `SearchInteractions` RPC (see `communication.proto`).
    public func searchInteractions(
        request: Switchboard_Communication_V1_SearchInteractionsRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_SearchInteractionsResponse {
        let (records, next) = try await interactions.search(
            request.query, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "",
            viewer: try Self.viewer(context))
        var response = Switchboard_Communication_V1_SearchInteractionsResponse()
        response.interactions = records.map(InteractionMapping.proto)
        response.page = Self.pageResponse(next)
        return response
    }

    /// The `ListFollowUpsDue` RPC (see `communication.proto`).
    public func listFollowUpsDue(
        request: Switchboard_Communication_V1_ListFollowUpsDueRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_ListFollowUpsDueResponse {
        let (records, next) = try await interactions.followUps(
            ownerID: request.ownerId, dueBefore: request.dueBefore, pageSize: Int(request.page?.pageSize ?? 0),
            pageToken: request.page?.pageToken ?? "", viewer: try Self.viewer(context))
        var response = Switchboard_Communication_V1_ListFollowUpsDueResponse()
        response.interactions = records.map(InteractionMapping.proto)
        response.page = Self.pageResponse(next)
        return response
    }

    // MARK: Changes

    /// The `WatchChanges` RPC (see `communication.proto`).
    public func watchChanges(
        request: Switchboard_Common_V1_WatchChangesRequest, responses: RPCWriter<Switchboard_Common_V1_ChangeEvent>, context: ServerContext
    ) async throws {
        try await changes.watch(request, responses: responses, context: context)
    }
}
