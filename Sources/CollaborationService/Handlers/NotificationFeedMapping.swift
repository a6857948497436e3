import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// The communication and analytics feeds' events as the collaboration service applies them: each
/// `ChangeEvent.resource` is decoded as the proto3 JSON of the source's message (fields a newer source adds are
/// ignored), never as an ad-hoc shape.
enum NotificationFeedMapping {
    static let interactionType = "switchboard.communication.v1.Interaction"
    static let alertFiredType = "switchboard.analytics.v1.AlertFired"

    /// What to do with an event.
    enum Outcome<Value: Equatable>: Equatable {
        /// Apply it.
        case apply(Value)
        /// Not followed (another type or kind).
        case ignore
        /// An event that cannot be applied: set aside, never retried for ever.
        case reject(String)
    }

    static func decode<M: ProtoJSONMessage>(_ type: M.Type, _ event: Switchboard_Common_V1_ChangeEvent) throws -> M {
        try event.resource(as: type)
    }

    static func kindName(_ kind: Switchboard_Communication_V1_InteractionKind) -> String {
        switch kind {
        case .email: return "email"
        case .call: return "call"
        case .sms: return "SMS"
        case .meeting: return "meeting"
        default: return "interaction"
        }
    }

    /// An Interaction event of the communication feed.
    static func interaction(_ event: Switchboard_Common_V1_ChangeEvent) -> Outcome<InteractionChange> {
        guard event.resourceType == interactionType else { return .ignore }
        let kind: InteractionChange.Kind
        switch event.kind {
        case .created: kind = .created
        case .updated: kind = .updated
        case .deleted: kind = .deleted
        case .undeleted: kind = .undeleted
        default: return .ignore
        }
        guard !event.tenantId.isEmpty else { return .reject("tenant_id is empty") }
        guard let id = UUID(text: event.resourceId) else { return .reject("resource_id is not a UUID") }
        let interaction: Switchboard_Communication_V1_Interaction
        do {
            interaction = try decode(Switchboard_Communication_V1_Interaction.self, event)
        } catch {
            return .reject("resource is not a switchboard.communication.v1.Interaction in proto3 JSON: \(error)")
        }
        var facts: InteractionFacts?
        // Communication's cross-tenant feed carries a private interaction whole (its tenant readers get a stub); events
        // it stored before it did so are stubs (id, visibility, audit, etag: no kind, no owner), which say nothing to
        // act on.
        if !(interaction.visibility == .private && interaction.kind == .unspecified) {
            guard !interaction.ownerId.isEmpty else { return .reject("owner_id is empty") }
            let direction: InteractionFacts.Direction
            switch interaction.direction {
            case .inbound: direction = .inbound
            case .outbound: direction = .outbound
            default: direction = .none
            }
            facts = InteractionFacts(
                ownerID: interaction.ownerId, isCall: interaction.kind == .call, kindName: kindName(interaction.kind), direction: direction,
                subject: interaction.subject, outcome: interaction.outcome, occurredAt: interaction.occurredAt,
                followUpAt: interaction.followUpAt, followUpDone: interaction.followUpDone, deleted: interaction.audit?.deleteTime != nil,
                contactIDs: interaction.contactIds.compactMap { UUID(text: $0) })
        }
        return .apply(
            InteractionChange(
                tenantID: event.tenantId, interactionID: id, sequence: event.sequence, kind: kind, actorID: event.actorId,
                changedFields: event.changedFields, commitTime: event.commitTime ?? Date(), facts: facts))
    }

    static func metricName(_ metric: Switchboard_Analytics_V1_Metric) -> String {
        switch metric {
        case .engagementScore: return "engagement score"
        case .interactions: return "interactions"
        case .activities: return "activities"
        default: return "value"
        }
    }

    /// An AlertFired event of analytics' feed.
    static func alert(_ event: Switchboard_Common_V1_ChangeEvent) -> Outcome<AlertNotice> {
        guard event.resourceType == alertFiredType, event.kind == .created else { return .ignore }
        guard !event.tenantId.isEmpty else { return .reject("tenant_id is empty") }
        let fired: Switchboard_Analytics_V1_AlertFired
        do {
            fired = try decode(Switchboard_Analytics_V1_AlertFired.self, event)
        } catch {
            return .reject("resource is not a switchboard.analytics.v1.AlertFired in proto3 JSON: \(error)")
        }
        // An analytics older than AlertFired.owner_id names nobody to tell; set aside where an operator sees it.
        guard !fired.ownerId.isEmpty else { return .reject("owner_id is empty: nobody to notify (analytics predates AlertFired.owner_id)") }
        guard let contact = UUID(text: fired.contactId) else { return .reject("contact_id is not a UUID") }
        let firing = fired.id.isEmpty ? event.resourceId : fired.id
        guard !firing.isEmpty else { return .reject("the firing has no id") }
        return .apply(
            AlertNotice(
                tenantID: event.tenantId, firingID: firing, ownerID: fired.ownerId, contactID: contact, alertName: fired.alertName,
                metricName: metricName(fired.metric), value: fired.value, threshold: fired.threshold, firedAt: fired.time,
                commitTime: event.commitTime ?? Date()))
    }
}
