import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// The contacts feed's events (`switchboard.common.v1.ChangeEvent` of `switchboard.contacts.v1.Contact`) as the
/// collaboration service applies them: MERGED, UNMERGED and ERASED; the other kinds change nothing here.
enum ContactsFeedMapping {
    static let contactType = "switchboard.contacts.v1.Contact"

    /// What to do with an event.
    enum Outcome: Equatable {
        /// Apply it.
        case apply(ContactChange)
        /// Not followed (another type or kind).
        case ignore
        /// A Contact event that cannot be applied: set aside, never retried for ever.
        case reject(String)
    }

    static func outcome(_ event: Switchboard_Common_V1_ChangeEvent) -> Outcome {
        guard event.resourceType == contactType else { return .ignore }
        switch event.kind {
        case .merged, .unmerged, .erased: break
        default: return .ignore
        }
        guard let id = UUID(text: event.resourceId) else { return .reject("resource_id is not a UUID") }
        guard !event.tenantId.isEmpty else { return .reject("tenant_id is empty") }
        if event.kind == .erased {
            return .apply(ContactChange(tenantID: event.tenantId, contactID: id, kind: .erased(request: event.relatedIds.first ?? "")))
        }
        guard let winner = event.relatedIds.first.flatMap(UUID.init(text:)) else {
            return .reject(
                event.kind == .merged
                    ? "a MERGED event needs the winner's id in related_ids[0]" : "an UNMERGED event needs the former winner's id in related_ids[0]")
        }
        guard winner != id else { return .reject("related_ids[0] is the contact itself") }
        return .apply(
            ContactChange(
                tenantID: event.tenantId, contactID: id, kind: event.kind == .merged ? .merged(winner: winner) : .unmerged(formerWinner: winner)))
    }
}
