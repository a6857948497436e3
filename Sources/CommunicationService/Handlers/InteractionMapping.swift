import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// Protobuf ⇄ domain conversions for interactions.
enum InteractionMapping {
    typealias Proto = Switchboard_Communication_V1_Interaction

    static func kind(_ kind: Switchboard_Communication_V1_InteractionKind) -> InteractionKind? {
        InteractionKind(rawValue: Int(kind.protoValue))
    }

    static func direction(_ direction: Switchboard_Communication_V1_Direction) -> Direction? {
        Direction(rawValue: Int(direction.protoValue))
    }

    /// VISIBILITY_UNSPECIFIED means the default, tenant.
    static func visibility(_ visibility: Switchboard_Communication_V1_Visibility) -> Visibility? {
        visibility == .unspecified ? .tenant : Visibility(rawValue: Int(visibility.protoValue))
    }

    /// An id a request names: nil when empty, a violation when malformed.
    static func optionalID(_ text: String, field: String, violations: inout [Violation]) -> UUID? {
        guard !text.isEmpty else { return nil }
        guard let id = UUID(text: text) else {
            violations.append(Violation(field, "\(CustomFieldRules.excerpt(text)) is not an id (UUID)", reason: "INVALID_FORMAT"))
            return nil
        }
        return id
    }

    /// An id a request must name.
    static func requiredID(_ text: String, field: String) throws -> UUID {
        guard let id = UUID(text: text) else {
            throw CommunicationError.invalid([
                Violation(
                    field, text.isEmpty ? "is required" : "\(CustomFieldRules.excerpt(text)) is not an id (UUID)",
                    reason: text.isEmpty ? "REQUIRED" : "INVALID_FORMAT")
            ])
        }
        return id
    }

    /// Domain data from a request's interaction. The kind is required on create; on update an unnamed kind is
    /// ignored (the domain copies only the masked fields).
    static func data(_ p: Proto, create: Bool, prefix: String = "interaction") throws -> InteractionData {
        var violations: [Violation] = []
        var kind = InteractionKind.other
        if let k = self.kind(p.kind) {
            kind = k
        } else if p.kind == .unspecified {
            if create { violations.append(Violation("\(prefix).kind", "is required", reason: "REQUIRED")) }
        } else {
            violations.append(Violation("\(prefix).kind", "is not an interaction kind"))
        }
        var data = InteractionData(kind: kind)
        if let d = direction(p.direction) {
            data.direction = d
        } else {
            violations.append(Violation("\(prefix).direction", "is not a direction"))
        }
        if let v = visibility(p.visibility) {
            data.visibility = v
        } else {
            violations.append(Violation("\(prefix).visibility", "is not a visibility"))
        }
        if p.contactIds.count > InteractionRules.maxContacts {
            violations.append(Violation("\(prefix).contact_ids", "at most \(InteractionRules.maxContacts) contacts", reason: "TOO_MANY"))
        } else {
            for (i, text) in p.contactIds.enumerated() {
                if let id = optionalID(text, field: "\(prefix).contact_ids[\(i)]", violations: &violations) { data.contactIDs.append(id) }
                if text.isEmpty { violations.append(Violation("\(prefix).contact_ids[\(i)]", "must not be empty", reason: "REQUIRED")) }
            }
        }
        data.addresses = p.addresses
        data.organizationID = optionalID(p.organizationId, field: "\(prefix).organization_id", violations: &violations)
        data.threadID = optionalID(p.threadId, field: "\(prefix).thread_id", violations: &violations)
        data.subject = p.subject
        data.body = p.body
        data.occurredAt = p.occurredAt
        data.durationSeconds = p.durationSeconds
        data.outcome = p.outcome
        data.followUpAt = p.followUpAt
        data.followUpDone = p.followUpDone
        data.ownerID = p.ownerId
        if let template = optionalID(p.templateId, field: "\(prefix).template_id", violations: &violations) {
            if p.templateVersion < 1 {
                violations.append(Violation("\(prefix).template_version", "is required (from 1) with template_id", reason: "REQUIRED"))
            } else {
                data.template = TemplateReference(id: template, version: Int(p.templateVersion))
            }
        } else if p.templateId.isEmpty, p.templateVersion != 0 {
            violations.append(Violation("\(prefix).template_id", "is required with template_version", reason: "REQUIRED"))
        }
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
        return data
    }

    static func proto(_ record: InteractionRecord) -> Proto {
        var p = Proto()
        let d = record.data
        p.id = record.id.lowercaseText
        p.kind = .init(protoValue: Int32(d.kind.rawValue))
        p.direction = .init(protoValue: Int32(d.direction.rawValue))
        p.contactIds = d.contactIDs.map(\.lowercaseText)
        p.addresses = d.addresses
        p.organizationId = d.organizationID?.lowercaseText ?? ""
        p.threadId = d.threadID?.lowercaseText ?? ""
        p.subject = d.subject
        p.body = d.body
        p.occurredAt = record.occurredAt
        p.durationSeconds = d.durationSeconds
        p.outcome = d.outcome
        p.followUpAt = d.followUpAt
        p.followUpDone = d.followUpDone
        p.visibility = .init(protoValue: Int32(d.visibility.rawValue))
        p.ownerId = d.ownerID
        p.templateId = d.template?.id.lowercaseText ?? ""
        p.templateVersion = Int32(clamping: d.template?.version ?? 0)
        p.deliveryState = .init(protoValue: Int32(record.deliveryState.rawValue))
        var audit = Switchboard_Common_V1_AuditStamps()
        audit.createTime = record.createdAt
        audit.createdBy = record.createdBy
        audit.updateTime = record.updatedAt
        audit.updatedBy = record.updatedBy
        audit.deleteTime = record.deletedAt
        p.audit = audit
        p.etag = record.etag
        return p
    }

    /// The change-event payloads of an interaction. WatchChanges is open to every reader of the tenant, and a private
    /// interaction does not exist for anyone but its owner and admins: tenant readers get a stub (id, visibility,
    /// audit stamps, etag) that says only that something private changed, not with whom, when or about what. The
    /// cross-tenant feed, read only by services, carries the rest of it (all but the body), so that the services acting
    /// for its owner (collaboration's follow-up and call notifications) can; each keeps it from other users itself.
    static func published(_ record: InteractionRecord) throws -> (tenant: String, service: String?) {
        let full = proto(record)
        guard record.data.visibility == .private else { return (try full.protoJSONText(), nil) }
        var stub = Switchboard_Communication_V1_Interaction()
        stub.id = full.id
        stub.visibility = full.visibility
        stub.audit = full.audit
        stub.etag = full.etag
        // Without its body, which no service acts on: what a consumer sets aside or logs holds less of it.
        var whole = full
        whole.body = ""
        return (try stub.protoJSONText(), try whole.protoJSONText())
    }
}
