import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// The contacts feed's events (`switchboard.common.v1.ChangeEvent` of `switchboard.contacts.v1.Contact`) as projection
/// changes. The resource is the Contact's proto3 JSON, decoded with the Contact message (fields a newer contacts adds
/// are ignored).
enum ContactsFeedMapping {
    static let contactType = "switchboard.contacts.v1.Contact"

    /// What the projection does with an event.
    enum Outcome: Equatable {
        /// Applies the change.
        case apply(ContactChange)
        /// Not for the projection: another resource type, or a kind this version does not follow.
        case ignore
        /// A Contact event that cannot be applied (the reason says why): set aside, not retried forever, so that one
        /// broken event does not stop the projection for every tenant.
        case reject(String)
    }

    /// What to do with an event. The Contact's fields a newer contacts adds are ignored.
    static func outcome(_ event: Switchboard_Common_V1_ChangeEvent) -> Outcome {
        guard event.resourceType == contactType else { return .ignore }
        guard let id = UUID(text: event.resourceId) else { return .reject("resource_id is not a UUID") }
        guard !event.tenantId.isEmpty else { return .reject("tenant_id is empty") }
        let kind: ContactChange.Kind
        switch event.kind {
        case .created, .updated, .deleted, .undeleted:
            let contact: Switchboard_Contacts_V1_Contact
            do {
                contact = try event.resource(as: Switchboard_Contacts_V1_Contact.self)
            } catch {
                return .reject("the Contact payload does not decode: \(error)")
            }
            kind = .state(displayName: contact.name?.display ?? "", deleted: event.kind == .deleted || contact.audit?.deleteTime != nil)
        case .merged, .unmerged:
            guard let other = event.relatedIds.first.flatMap(UUID.init(text:)) else {
                return .reject("a \(event.kind == .merged ? "MERGED" : "UNMERGED") event needs the other contact's id in related_ids[0]")
            }
            // A contact merged into itself would make every membership its own duplicate (and delete it).
            guard other != id else { return .reject("related_ids[0] is the contact itself") }
            kind = event.kind == .merged ? .merged(winner: other) : .unmerged(formerWinner: other)
        case .erased:
            kind = .erased(request: event.relatedIds.first ?? "")
        default:
            return .ignore
        }
        return .apply(ContactChange(tenantID: event.tenantId, contactID: id, sequence: event.sequence, kind: kind))
    }

    static func proto(_ receipt: ErasureReceiptData) -> Switchboard_Organization_V1_ErasureReceipt {
        var r = Switchboard_Organization_V1_ErasureReceipt()
        r.contactId = receipt.contactID.lowercaseText
        r.erasureRequestId = receipt.erasureRequestID
        r.membershipsRemoved = Int32(clamping: receipt.membershipsRemoved)
        r.groupEntriesRemoved = Int32(clamping: receipt.groupEntriesRemoved)
        r.changesRedacted = Int32(clamping: receipt.changesRedacted)
        r.storedResponsesRemoved = Int32(clamping: receipt.storedResponsesRemoved)
        return r
    }
}
