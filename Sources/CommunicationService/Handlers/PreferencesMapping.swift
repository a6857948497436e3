import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// Protobuf ⇄ domain conversions for contact preferences.
enum PreferencesMapping {
    typealias Proto = Switchboard_Communication_V1_ContactPreferences

    /// The preferences a request states, every field checked for shape (bad ones named under `preferences.`).
    static func data(_ p: Proto) throws -> PreferencesData {
        var violations: [Violation] = []
        var data = PreferencesData()
        if p.preferredChannel != .unspecified {
            data.preferredChannel = ConsentMapping.channel(p.preferredChannel)
            if data.preferredChannel == nil { violations.append(Violation("preferences.preferred_channel", "is not a channel")) }
        }
        data.language = p.language
        data.timeZone = p.timeZone
        data.doNotContact = p.doNotContact
        if let quiet = p.quietHours {
            let start = PreferencesRules.minutes(quiet.start), end = PreferencesRules.minutes(quiet.end)
            if start == nil {
                violations.append(
                    Violation(
                        "preferences.quiet_hours.start", "must be a time \"HH:MM\" from 00:00 to 23:59",
                        reason: quiet.start.isEmpty ? "REQUIRED" : "INVALID_FORMAT"))
            }
            if end == nil {
                violations.append(
                    Violation(
                        "preferences.quiet_hours.end", "must be a time \"HH:MM\" from 00:00 to 23:59",
                        reason: quiet.end.isEmpty ? "REQUIRED" : "INVALID_FORMAT"))
            }
            if let start, let end { data.quietHours = QuietHours(start: start, end: end) }
        }
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
        return data
    }

    static func proto(_ record: PreferencesRecord) -> Proto {
        var p = Proto()
        p.contactId = record.contactID.lowercaseText
        p.preferredChannel = .init(protoValue: Int32(record.data.preferredChannel?.rawValue ?? 0))
        p.language = record.data.language
        p.timeZone = record.data.timeZone
        if let quiet = record.data.quietHours {
            var q = Switchboard_Communication_V1_QuietHours()
            q.start = PreferencesRules.text(minutes: quiet.start)
            q.end = PreferencesRules.text(minutes: quiet.end)
            p.quietHours = q
        }
        p.doNotContact = record.data.doNotContact
        if record.version > 0 {
            var audit = Switchboard_Common_V1_AuditStamps()
            audit.createTime = record.createdAt
            audit.createdBy = record.createdBy
            audit.updateTime = record.updatedAt
            audit.updatedBy = record.updatedBy
            p.audit = audit
        }
        p.etag = record.etag
        return p
    }

    /// The change-event payload: the proto3 JSON of `switchboard.communication.v1.ContactPreferences`.
    @Sendable static func json(_ record: PreferencesRecord) throws -> String { try proto(record).protoJSONText() }
}
