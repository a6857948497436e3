import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

/// Protobuf ⇄ domain conversions for campaigns.
enum CampaignMapping {
    static func data(_ p: Switchboard_Communication_V1_Campaign) throws -> CampaignData {
        var violations: [Violation] = []
        let template =
            p.templateId.isEmpty ? nil : InteractionMapping.optionalID(p.templateId, field: "campaign.template_id", violations: &violations)
        if p.templateId.isEmpty { violations.append(Violation("campaign.template_id", "is required", reason: "REQUIRED")) }
        if p.templateVersion < 0 { violations.append(Violation("campaign.template_version", "must not be negative")) }
        let channel = ConsentMapping.requiredChannel(p.channel, field: "campaign.channel", violations: &violations)
        var contacts: [UUID] = []
        var audience = CampaignAudience.contacts
        // Exactly one audience: naming every one that is set says which to drop.
        let named = [
            ("campaign.contact_ids", !p.contactIds.isEmpty), ("campaign.group_id", !p.groupId.isEmpty),
            ("campaign.saved_search_id", !p.savedSearchId.isEmpty),
        ].filter(\.1).map(\.0)
        if named.count > 1 {
            for field in named {
                violations.append(
                    Violation(field, "only one of contact_ids, group_id and saved_search_id may be set", reason: "MUTUALLY_EXCLUSIVE"))
            }
        } else if !p.groupId.isEmpty {
            if let id = InteractionMapping.optionalID(p.groupId, field: "campaign.group_id", violations: &violations) {
                audience = .group(id, includeSubgroups: p.includeSubgroups)
            }
        } else if !p.savedSearchId.isEmpty,
            let id = InteractionMapping.optionalID(p.savedSearchId, field: "campaign.saved_search_id", violations: &violations)
        {
            audience = .savedSearch(id)
        }
        if p.includeSubgroups && p.groupId.isEmpty {
            violations.append(Violation("campaign.include_subgroups", "applies only with group_id", reason: "INVALID"))
        }
        if p.contactIds.count > CampaignRules.maxRecipients {
            violations.append(Violation("campaign.contact_ids", "at most \(CampaignRules.maxRecipients) recipients", reason: "TOO_MANY"))
        } else {
            for (i, text) in p.contactIds.enumerated() {
                if let id = InteractionMapping.optionalID(text, field: "campaign.contact_ids[\(i)]", violations: &violations) { contacts.append(id) }
            }
        }
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
        var data = CampaignData(name: p.name, templateID: template!, channel: channel, purpose: p.purpose, contactIDs: contacts)
        data.audience = audience
        data.templateVersion = p.templateVersion == 0 ? nil : Int(p.templateVersion)
        data.values = p.templateValues
        data.startAt = p.startAt
        return data
    }

    static func proto(_ p: CampaignProgress) -> Switchboard_Communication_V1_CampaignProgress {
        var m = Switchboard_Communication_V1_CampaignProgress()
        m.recipients = Int32(clamping: p.recipients)
        m.pending = Int32(clamping: p.pending)
        m.queued = Int32(clamping: p.queued)
        m.sent = Int32(clamping: p.sent)
        m.delivered = Int32(clamping: p.delivered)
        m.failed = Int32(clamping: p.failed)
        m.skipped = Int32(clamping: p.skipped)
        m.status = .init(protoValue: Int32(p.status.rawValue))
        return m
    }

    static func proto(_ r: CampaignRecipientRecord) -> Switchboard_Communication_V1_CampaignRecipient {
        var p = Switchboard_Communication_V1_CampaignRecipient()
        p.contactId = r.contactID.lowercaseText
        p.state = .init(protoValue: Int32(r.state.rawValue))
        p.reason = r.reason
        p.sendId = r.sendID?.lowercaseText ?? ""
        p.sendStatus = .init(protoValue: Int32(r.sendStatus?.rawValue ?? 0))
        p.sendError = r.sendError
        return p
    }

    static func proto(_ r: CampaignRecord) -> Switchboard_Communication_V1_Campaign {
        var p = Switchboard_Communication_V1_Campaign()
        p.id = r.id.lowercaseText
        p.name = r.name
        p.templateId = r.template.id.lowercaseText
        p.templateVersion = Int32(clamping: r.template.version)
        p.channel = .init(protoValue: Int32(r.channel.rawValue))
        p.purpose = r.purpose
        p.startAt = r.startAt
        switch r.audience {
        case .contacts: break
        case .group(let id, let includeSubgroups):
            p.groupId = id.lowercaseText
            p.includeSubgroups = includeSubgroups
        case .savedSearch(let id): p.savedSearchId = id.lowercaseText
        }
        p.status = .init(protoValue: Int32(r.status.rawValue))
        p.progress = proto(r.progress)
        var audit = Switchboard_Common_V1_AuditStamps()
        audit.createTime = r.createdAt
        audit.createdBy = r.createdBy
        audit.updateTime = r.updatedAt
        audit.updatedBy = r.updatedBy
        p.audit = audit
        return p
    }
}

extension CommunicationHandler {
    private static func campaignWrite(
        _ request: some ProtoJSONMessage, _ requestID: String, _ method: MethodDescriptor
    ) throws -> IdempotentWrite<CampaignRecord, Switchboard_Communication_V1_Campaign> {
        try IdempotentWrite(request: request, requestID: requestID, method: method, response: { CampaignMapping.proto($0) })
    }

    /// The `CreateCampaign` RPC (see `communication.proto`).
    public func createCampaign(
        request: Switchboard_Communication_V1_CreateCampaignRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_Campaign {
        guard let campaign = request.campaign else { throw CommunicationError.invalid([Violation("campaign", "is required", reason: "REQUIRED")]) }
        let data = try CampaignMapping.data(campaign)
        let write = try Self.campaignWrite(request, request.requestId, Methods.createCampaign)
        return try write.response(
            try await campaigns.create(
                data, actor: try context.actor(), write: write.options, call: context.forwardedCall(budget: Self.defaultAudienceBudget)))
    }

    /// How long an audience may take to read when the caller set no deadline.
    static let defaultAudienceBudget = Duration.seconds(30)

    /// The `GetCampaign` RPC (see `communication.proto`).
    public func getCampaign(
        request: Switchboard_Communication_V1_CampaignRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_Campaign {
        CampaignMapping.proto(try await campaigns.get(id: try InteractionMapping.requiredID(request.id, field: "id"), actor: try context.actor()))
    }

    /// The `ListCampaigns` RPC (see `communication.proto`).
    public func listCampaigns(
        request: Switchboard_Communication_V1_ListCampaignsRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_ListCampaignsResponse {
        var status: CampaignStatus?
        if request.status != .unspecified {
            status = CampaignStatus(rawValue: Int(request.status.protoValue))
            if status == nil { throw CommunicationError.invalid([Violation("status", "is not a campaign status", reason: "INVALID")]) }
        }
        let (records, next) = try await campaigns.list(
            status: status, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Communication_V1_ListCampaignsResponse()
        response.campaigns = records.map { CampaignMapping.proto($0) }
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        response.page = page
        return response
    }

    /// The `ListCampaignRecipients` RPC (see `communication.proto`).
    public func listCampaignRecipients(
        request: Switchboard_Communication_V1_ListCampaignRecipientsRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_ListCampaignRecipientsResponse {
        let campaign = try InteractionMapping.requiredID(request.campaignId, field: "campaign_id")
        var state: RecipientState?
        if request.state != .unspecified {
            state = RecipientState(rawValue: Int(request.state.protoValue))
            if state == nil { throw CommunicationError.invalid([Violation("state", "is not a recipient state", reason: "INVALID")]) }
        }
        let (records, next) = try await campaigns.recipients(
            campaign: campaign, state: state, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "",
            actor: try context.actor())
        var response = Switchboard_Communication_V1_ListCampaignRecipientsResponse()
        response.recipients = records.map { CampaignMapping.proto($0) }
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        response.page = page
        return response
    }

    private func change(
        _ request: Switchboard_Communication_V1_CampaignRequest, to status: CampaignStatus, method: MethodDescriptor, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_Campaign {
        let id = try InteractionMapping.requiredID(request.id, field: "id")
        let write = try Self.campaignWrite(request, request.requestId, method)
        return try write.response(try await campaigns.set(id: id, to: status, actor: try context.actor(), write: write.options))
    }

    /// The `PauseCampaign` RPC (see `communication.proto`).
    public func pauseCampaign(
        request: Switchboard_Communication_V1_CampaignRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_Campaign {
        try await change(request, to: .paused, method: Methods.pauseCampaign, context: context)
    }

    /// The `ResumeCampaign` RPC (see `communication.proto`).
    public func resumeCampaign(
        request: Switchboard_Communication_V1_CampaignRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_Campaign {
        try await change(request, to: .active, method: Methods.resumeCampaign, context: context)
    }

    /// The `CancelCampaign` RPC (see `communication.proto`).
    public func cancelCampaign(
        request: Switchboard_Communication_V1_CampaignRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_Campaign {
        try await change(request, to: .cancelled, method: Methods.cancelCampaign, context: context)
    }

    /// The `WatchCampaignProgress` RPC (see `communication.proto`).
    public func watchCampaignProgress(
        request: Switchboard_Communication_V1_CampaignRequest, responses: RPCWriter<Switchboard_Communication_V1_CampaignProgress>,
        context: ServerContext
    ) async throws {
        let id = try InteractionMapping.requiredID(request.id, field: "id")
        let actor = try context.actor()
        var last: CampaignProgress?
        while !Task.isCancelled {
            let progress = try await campaigns.get(id: id, actor: actor).progress
            if progress != last {
                try await responses.write(CampaignMapping.proto(progress))
                last = progress
            }
            if progress.status == .cancelled || (progress.status == .completed && progress.queued == 0 && progress.pending == 0) { return }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}
