import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// Protobuf ⇄ domain conversions for sends.
enum SendMapping {
    typealias Proto = Switchboard_Communication_V1_Send

    static func data(_ p: Proto, values: [String: String]) throws -> SendData {
        var violations: [Violation] = []
        var contact = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        if p.contactId.isEmpty {
            violations.append(Violation("send.contact_id", "is required", reason: "REQUIRED"))
        } else if let id = InteractionMapping.optionalID(p.contactId, field: "send.contact_id", violations: &violations) {
            contact = id
        }
        let channel = ConsentMapping.requiredChannel(p.channel, field: "send.channel", violations: &violations)
        var data = SendData(contactID: contact, channel: channel, purpose: p.purpose, toAddress: p.toAddress)
        data.subject = p.subject
        data.body = p.body
        data.templateID = InteractionMapping.optionalID(p.templateId, field: "send.template_id", violations: &violations)
        if p.templateVersion < 0 { violations.append(Violation("send.template_version", "must not be negative")) }
        if p.templateVersion > 0 {
            if data.templateID == nil { violations.append(Violation("send.template_id", "is required with template_version", reason: "REQUIRED")) }
            data.templateVersion = Int(p.templateVersion)
        }
        data.templateValues = values
        data.sendAt = p.sendAt
        data.html = TemplateMapping.bodyFormat(p.bodyFormat, field: "send.body_format", violations: &violations)
        data.ignoreQuietHours = p.ignoreQuietHours
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
        return data
    }

    static func proto(_ r: SendRecord) -> Proto {
        var p = Proto()
        p.id = r.id.lowercaseText
        p.contactId = r.contactID.lowercaseText
        p.channel = .init(protoValue: Int32(r.channel.rawValue))
        p.purpose = r.purpose
        p.toAddress = r.toAddress
        p.subject = r.subject
        p.body = r.body
        p.templateId = r.template?.id.lowercaseText ?? ""
        p.templateVersion = Int32(clamping: r.template?.version ?? 0)
        p.sendAt = r.sendAt
        p.status = .init(protoValue: Int32(r.status.rawValue))
        p.attempts = Int32(clamping: r.attempts)
        p.lastError = r.lastError
        p.providerMessageId = r.providerMessageID
        p.sentAt = r.sentAt
        p.deliveryState = .init(protoValue: Int32(r.deliveryState.rawValue))
        p.interactionId = r.status == .sent ? r.id.lowercaseText : ""
        p.campaignId = r.campaignID?.lowercaseText ?? ""
        p.bodyFormat = r.html ? .html : .text
        p.ignoreQuietHours = r.ignoreQuietHours
        var audit = Switchboard_Common_V1_AuditStamps()
        audit.createTime = r.createdAt
        audit.createdBy = r.createdBy
        audit.updateTime = r.updatedAt
        audit.updatedBy = r.updatedBy
        p.audit = audit
        return p
    }
}
