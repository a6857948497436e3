import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

/// The four source feeds' events as analytics facts: each `ChangeEvent.resource` is decoded as the proto3 JSON of the
/// source's message (fields a newer source adds are ignored).
enum FeedMapping {
    static let contactType = "switchboard.contacts.v1.Contact"
    static let organizationType = "switchboard.organization.v1.Organization"
    static let membershipType = "switchboard.organization.v1.Membership"
    static let interactionType = "switchboard.communication.v1.Interaction"
    static let noteType = "switchboard.collaboration.v1.Note"
    static let meetingType = "switchboard.collaboration.v1.Meeting"

    /// The resource types each feed is asked for (the source filters the rest out).
    static func resourceTypes(_ source: FeedSource) -> [String] {
        switch source {
        case .contacts: return [contactType]
        case .organization: return [organizationType, membershipType]
        case .communication: return [interactionType]
        case .collaboration: return [noteType, meetingType]
        }
    }

    /// What to do with an event.
    enum Outcome: Equatable {
        /// Ingest it.
        case apply(IngestEvent)
        /// Not followed (another type or kind).
        case ignore
        /// An event that cannot be applied: set aside, never retried for ever.
        case reject(String)
    }

    static func decode<M: ProtoJSONMessage>(_ type: M.Type, _ event: Switchboard_Common_V1_ChangeEvent) throws -> M {
        try event.resource(as: type)
    }

    static func uuids(_ texts: [String]) -> [UUID] {
        var seen = Set<UUID>()
        return texts.compactMap(UUID.init(text:)).filter { seen.insert($0).inserted }
    }

    static func stage(_ status: Switchboard_Contacts_V1_ContactStatus) -> String {
        switch status {
        case .prospect: return "PROSPECT"
        case .customer: return "CUSTOMER"
        case .inactive: return "INACTIVE"
        default: return "LEAD"
        }
    }

    /// The contact an event of the contacts feed carries, as analytics keeps it.
    static func contactState(_ id: UUID, _ event: Switchboard_Common_V1_ChangeEvent) throws -> ContactState {
        let contact = try decode(Switchboard_Contacts_V1_Contact.self, event)
        var state = ContactState(id: id)
        state.displayName =
            contact.name.map { $0.display.isEmpty ? [$0.given, $0.family].filter { !$0.isEmpty }.joined(separator: " ") : $0.display } ?? ""
        state.email = (contact.emails.first { $0.primary } ?? contact.emails.first)?.address ?? ""
        state.status = stage(contact.status)
        state.ownerID = contact.ownerId
        state.tags = contact.tags
        state.customFieldsJSON = try (contact.customFields ?? Google_Protobuf_Struct()).protoJSONText()
        state.hasPhone = !contact.phones.isEmpty
        state.hasAddress = !contact.addresses.isEmpty
        state.createdAt = contact.audit?.createTime
        state.deleted = event.kind == .deleted || contact.audit?.deleteTime != nil
        return state
    }

    static func entryKind(_ kind: Switchboard_Common_V1_ChangeKind) -> EntryKind? {
        switch kind {
        case .created: return .created
        case .updated: return .updated
        case .deleted: return .deleted
        case .undeleted: return .restored
        default: return nil
        }
    }

    static func outcome(_ event: Switchboard_Common_V1_ChangeEvent, source: FeedSource) -> Outcome {
        guard resourceTypes(source).contains(event.resourceType) else { return .ignore }
        guard !event.tenantId.isEmpty else { return .reject("tenant_id is empty") }
        func make(_ fact: Fact) -> Outcome {
            .apply(
                IngestEvent(
                    tenantID: event.tenantId, source: source, resourceType: event.resourceType, resourceID: event.resourceId,
                    actorID: event.actorId, time: event.commitTime ?? Date(), fact: fact))
        }
        do {
            switch event.resourceType {
            case contactType:
                guard let id = UUID(text: event.resourceId) else { return .reject("resource_id is not a UUID") }
                switch event.kind {
                case .merged:
                    guard let winner = event.relatedIds.first.flatMap(UUID.init(text:)), winner != id else {
                        return .reject("a MERGED event needs the winner's id (not the contact's own) in related_ids[0]")
                    }
                    return make(.contactMerged(loser: id, winner: winner))
                case .unmerged:
                    guard let formerWinner = event.relatedIds.first.flatMap(UUID.init(text:)), formerWinner != id else {
                        return .reject("an UNMERGED event needs the former winner's id (not the contact's own) in related_ids[0]")
                    }
                    return make(.contactUnmerged(try contactState(id, event), formerWinner: formerWinner))
                case .erased:
                    return make(.contactErased(id, request: event.relatedIds.first ?? ""))
                default:
                    guard let kind = entryKind(event.kind) else { return .ignore }
                    return make(.contact(try contactState(id, event), kind: kind, changedFields: event.changedFields))
                }
            case organizationType:
                guard let id = UUID(text: event.resourceId) else { return .reject("resource_id is not a UUID") }
                guard let kind = entryKind(event.kind) else { return .ignore }
                let organization = try decode(Switchboard_Organization_V1_Organization.self, event)
                return make(
                    .organization(
                        id: id, name: organization.name, createdAt: organization.audit?.createTime,
                        deleted: event.kind == .deleted || organization.audit?.deleteTime != nil, kind: kind, changedFields: event.changedFields))
            case membershipType:
                guard event.kind == .created || event.kind == .deleted else { return .ignore }
                let membership = try decode(Switchboard_Organization_V1_Membership.self, event)
                guard let contact = UUID(text: membership.contactId), let organization = UUID(text: membership.organizationId) else {
                    return .reject("a Membership needs contact_id and organization_id")
                }
                return make(.membership(id: event.resourceId, contact: contact, organization: organization, ended: event.kind == .deleted))
            case interactionType:
                if event.kind == .deleted { return make(.activityRemoved(resourceType: event.resourceType, resourceID: event.resourceId)) }
                guard event.kind == .created || event.kind == .updated || event.kind == .undeleted else { return .ignore }
                var interaction = try decode(Switchboard_Communication_V1_Interaction.self, event)
                if interaction.visibility == .private {
                    // The cross-tenant feed carries a private interaction whole (for the services acting for its owner),
                    // but it exists only for its owner and admins, and timelines and metrics are every reader's: it
                    // counts, about nobody, as the stub tenant readers get says (and as such events stored before
                    // communication published the whole did).
                    var stub = Switchboard_Communication_V1_Interaction()
                    stub.id = interaction.id
                    stub.visibility = .private
                    interaction = stub
                }
                let kind: String
                switch interaction.kind {
                case .email: kind = "email"
                case .call: kind = "call"
                case .sms: kind = "sms"
                case .meeting: kind = "meeting"
                default: kind = "other"
                }
                let direction: String
                switch interaction.direction {
                case .inbound: direction = ", inbound"
                case .outbound: direction = ", outbound"
                default: direction = ""
                }
                return make(
                    .activity(
                        ActivityState(
                            resourceType: event.resourceType, resourceID: event.resourceId, kind: kind,
                            actorID: interaction.ownerId.isEmpty ? event.actorId : interaction.ownerId,
                            occurredAt: interaction.occurredAt ?? event.commitTime ?? Date(), contactIDs: uuids(interaction.contactIds),
                            organizationIDs: uuids([interaction.organizationId]), entryKind: .interaction, summary: kind + direction)))
            case noteType:
                if event.kind == .deleted { return make(.activityRemoved(resourceType: event.resourceType, resourceID: event.resourceId)) }
                guard event.kind == .created || event.kind == .updated || event.kind == .undeleted else { return .ignore }
                let note = try decode(Switchboard_Collaboration_V1_Note.self, event)
                // A note that is not tenant-wide is published without its subjects: it counts, about nobody.
                return make(
                    .activity(
                        ActivityState(
                            resourceType: event.resourceType, resourceID: event.resourceId, kind: "note",
                            actorID: note.authorId.isEmpty ? event.actorId : note.authorId,
                            occurredAt: note.audit?.createTime ?? event.commitTime ?? Date(),
                            contactIDs: uuids(note.subjects.filter { $0.type == .contact }.map(\.id)),
                            organizationIDs: uuids(note.subjects.filter { $0.type == .organization }.map(\.id)), entryKind: .note, summary: "note")))
            case meetingType:
                if event.kind == .deleted { return make(.activityRemoved(resourceType: event.resourceType, resourceID: event.resourceId)) }
                guard event.kind == .created || event.kind == .updated || event.kind == .undeleted else { return .ignore }
                let meeting = try decode(Switchboard_Collaboration_V1_Meeting.self, event)
                return make(
                    .activity(
                        ActivityState(
                            resourceType: event.resourceType, resourceID: event.resourceId, kind: "scheduled_meeting",
                            actorID: meeting.organizerId.isEmpty ? event.actorId : meeting.organizerId,
                            occurredAt: meeting.audit?.createTime ?? event.commitTime ?? Date(), contactIDs: uuids(meeting.contactIds),
                            organizationIDs: [], entryKind: .meeting, summary: "meeting scheduled")))
            default:
                return .ignore
            }
        } catch {
            return .reject("the \(event.resourceType) payload does not decode: \(error)")
        }
    }
}
