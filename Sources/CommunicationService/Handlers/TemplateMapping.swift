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
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
        return TemplateData(name: p.name, channel: channel, subject: p.subject, body: p.body)
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
        var audit = Switchboard_Common_V1_AuditStamps()
        audit.createTime = record.createdAt
        audit.createdBy = record.createdBy
        audit.updateTime = record.createdAt
        audit.updatedBy = record.createdBy
        p.audit = audit
        return p
    }
}
