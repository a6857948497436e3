import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// Protobuf ⇄ domain conversions for the consent ledger.
enum ConsentMapping {
    typealias Proto = Switchboard_Communication_V1_ConsentRecord

    static func channel(_ channel: Switchboard_Communication_V1_Channel) -> Channel? { Channel(rawValue: Int(channel.protoValue)) }

    /// A required channel, or a violation naming `field`.
    static func requiredChannel(_ channel: Switchboard_Communication_V1_Channel, field: String, violations: inout [Violation]) -> Channel {
        if let c = self.channel(channel) { return c }
        violations.append(
            Violation(field, channel == .unspecified ? "is required" : "is not a channel", reason: channel == .unspecified ? "REQUIRED" : "INVALID"))
        return .email
    }

    /// A statement from a request's record.
    static func statement(_ p: Proto) throws -> ConsentStatement {
        var violations: [Violation] = []
        var contact = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        if p.contactId.isEmpty {
            violations.append(Violation("consent.contact_id", "is required", reason: "REQUIRED"))
        } else if let id = InteractionMapping.optionalID(p.contactId, field: "consent.contact_id", violations: &violations) {
            contact = id
        }
        let channel = requiredChannel(p.channel, field: "consent.channel", violations: &violations)
        var status = ConsentStatus.withdrawn
        if let s = ConsentStatus(rawValue: Int(p.status.protoValue)) {
            status = s
        } else {
            violations.append(
                Violation(
                    "consent.status", p.status == .unspecified ? "is required" : "is not a consent status",
                    reason: p.status == .unspecified ? "REQUIRED" : "INVALID"))
        }
        var basis: LegalBasis?
        if p.legalBasis != .unspecified {
            basis = LegalBasis(rawValue: Int(p.legalBasis.protoValue))
            if basis == nil { violations.append(Violation("consent.legal_basis", "is not a legal basis")) }
        }
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
        return ConsentStatement(
            contactID: contact, channel: channel, purpose: p.purpose, status: status, legalBasis: basis, source: p.source, statedAt: p.statedAt)
    }

    static func proto(_ record: ConsentRecord) -> Proto {
        var p = Proto()
        let s = record.statement
        p.id = record.id.lowercaseText
        p.contactId = s.contactID.lowercaseText
        p.channel = .init(protoValue: Int32(s.channel.rawValue))
        p.purpose = s.purpose
        p.status = .init(protoValue: Int32(s.status.rawValue))
        p.legalBasis = .init(protoValue: Int32(s.legalBasis?.rawValue ?? 0))
        p.source = s.source
        p.statedAt = s.statedAt
        p.recordedAt = record.recordedAt
        p.recordedBy = record.recordedBy
        p.sequence = record.sequence
        return p
    }

    static func proto(_ decision: ConsentDecision) -> Switchboard_Communication_V1_CheckConsentResponse {
        var p = Switchboard_Communication_V1_CheckConsentResponse()
        p.allowed = decision.allowed
        p.reason = .init(protoValue: Int32(decision.reason.rawValue))
        p.decidedBy = decision.decidedBy.map(proto)
        return p
    }
}
