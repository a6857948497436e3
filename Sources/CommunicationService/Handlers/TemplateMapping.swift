import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// Protobuf ⇄ domain conversions for templates.
enum TemplateMapping {
    typealias Proto = Switchboard_Communication_V1_Template

    static func data(_ p: Proto) throws -> TemplateData {
        var violations: [Violation] = []
        let channel = ConsentMapping.requiredChannel(p.channel, field: "template.channel", violations: &violations)
        let html = bodyFormat(p.bodyFormat, field: "template.body_format", violations: &violations)
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
        return TemplateData(name: p.name, channel: channel, subject: p.subject, body: p.body, html: html ?? false)
    }

    /// Whether a body format is HTML: nil for UNSPECIFIED, a violation naming `field` for a value this version does not
    /// know.
    static func bodyFormat(_ format: Switchboard_Communication_V1_BodyFormat, field: String, violations: inout [Violation]) -> Bool? {
        switch format {
        case .unspecified: return nil
        case .text: return false
        case .html: return true
        case .unrecognized:
            violations.append(Violation(field, "must be TEXT or HTML", reason: "INVALID"))
            return nil
        }
    }

    static func proto(_ record: TemplateRecord) -> Proto {
        var p = Proto()
        p.id = record.id.lowercaseText
        p.version = Int32(clamping: record.version)
        p.name = record.data.name
        p.channel = .init(protoValue: Int32(record.data.channel.rawValue))
        p.subject = record.data.subject
        p.body = record.data.body
        p.variables = record.variables
        p.bodyFormat = record.data.html ? .html : .text
        var audit = Switchboard_Common_V1_AuditStamps()
        audit.createTime = record.createdAt
        audit.createdBy = record.createdBy
        audit.updateTime = record.createdAt
        audit.updatedBy = record.createdBy
        p.audit = audit
        return p
    }
}
