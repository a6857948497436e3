import FoundationEssentials
import SwitchboardServiceKit

/// Why a notification was sent.
public enum NotificationKind: Int, Sendable, Hashable, CaseIterable {
    /// A mention in a note.
    case mention = 1
    /// A note shared with the user or their team.
    case share = 2
    /// A comment on the user's note, or a reply to their comment.
    case comment = 3
    /// Sent with CreateNotification.
    case announcement = 4
    /// A meeting the user attends starts soon.
    case reminder = 5
    /// A follow-up of an interaction the user owns is due (from the communication feed).
    case followUp = 6
    /// A call of the user's that someone else logged or changed (from the communication feed).
    case call = 7
    /// An analytics alert the user created fired (from the analytics feed).
    case alert = 8
}

/// Who receives a notification.
public enum Audience: Sendable, Hashable {
    /// These users.
    case users([String])
    /// The team's members at the time they read.
    case team(UUID)
    /// Everyone in the tenant.
    case tenant
}

/// What a notification says.
public struct NotificationData: Sendable, Hashable {
    /// Why it was sent.
    public var kind: NotificationKind
    /// Who receives it.
    public var audience: Audience
    /// A short title.
    public var title: String
    /// The text.
    public var body: String = ""
    /// What it is about (a message type), or empty.
    public var resourceType: String = ""
    /// The id of what it is about, or empty.
    public var resourceID: String = ""
    /// The contacts of what it is about when the title copies its free text (a follow-up or call notification copies
    /// the interaction's subject): erasing one of them replaces the title with ``redactedTitle``.
    public var contactIDs: [UUID] = []
    /// The title without the copied text ("Missed call"), for an erasure.
    public var redactedTitle: String = ""

    /// Creates a notification's data.
    public init(
        kind: NotificationKind, audience: Audience, title: String, body: String = "", resourceType: String = "", resourceID: String = "",
        contactIDs: [UUID] = [], redactedTitle: String = ""
    ) {
        self.kind = kind
        self.audience = audience
        self.title = title
        self.body = body
        self.resourceType = resourceType
        self.resourceID = resourceID
        self.contactIDs = contactIDs
        self.redactedTitle = redactedTitle
    }
}

/// A stored notification, as one reader sees it.
public struct NotificationRecord: Sendable, Hashable {
    /// The tenant-wide sequence number.
    public var id: Int64
    /// The content.
    public var data: NotificationData
    /// The sender.
    public var createdBy: String
    /// When it was sent.
    public var createdAt: Date
    /// When the reader marked it read.
    public var readAt: Date?
    /// When the reader acknowledged it.
    public var acknowledgedAt: Date?

    /// Creates a record.
    public init(id: Int64, data: NotificationData, createdBy: String, createdAt: Date, readAt: Date? = nil, acknowledgedAt: Date? = nil) {
        self.id = id
        self.data = data
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.readAt = readAt
        self.acknowledgedAt = acknowledgedAt
    }
}

/// The rules of notifications.
public enum NotificationRules {
    /// Longest title.
    public static let maxTitleBytes = 200
    /// Longest body.
    public static let maxBodyBytes = 4096
    /// Longest resource type or id.
    public static let maxResourceBytes = 256
    /// Most ids one MarkNotificationsRead / AcknowledgeNotifications names.
    public static let maxIDsPerRequest = 100
    /// Most notifications one stream batch reads.
    public static let streamBatch = 200

    /// The violations of a client's notification (named under `prefix`).
    public static func check(_ data: NotificationData, prefix: String = "notification") -> [Violation] {
        var violations: [Violation] = []
        CollaborationRules.checkText(data.title, max: maxTitleBytes, required: true, field: "\(prefix).title", into: &violations)
        CollaborationRules.checkText(data.body, max: maxBodyBytes, required: false, field: "\(prefix).body", into: &violations)
        CollaborationRules.checkText(
            data.resourceType, max: maxResourceBytes, required: false, field: "\(prefix).resource_type", into: &violations)
        CollaborationRules.checkText(data.resourceID, max: maxResourceBytes, required: false, field: "\(prefix).resource_id", into: &violations)
        if case .users(let users) = data.audience {
            if users.count > TeamRules.maxMembersPerRequest {
                violations.append(Violation("\(prefix).user_ids", "at most \(TeamRules.maxMembersPerRequest) users", reason: "TOO_MANY"))
            } else {
                for (i, user) in users.enumerated() {
                    CollaborationRules.checkUserID(user, field: "\(prefix).user_ids[\(i)]", into: &violations)
                }
            }
        }
        return violations
    }

    /// Checks the ids of a MarkNotificationsRead / AcknowledgeNotifications request.
    /// - Throws: ``CollaborationError/invalid(_:)`` naming `ids`.
    public static func checkIDs(_ ids: [Int64]) throws -> [Int64] {
        guard !ids.isEmpty else { throw CollaborationError.invalid("ids", "at least one id", reason: "REQUIRED") }
        guard ids.count <= maxIDsPerRequest else {
            throw CollaborationError.invalid("ids", "at most \(maxIDsPerRequest) ids", reason: "TOO_MANY")
        }
        if let i = ids.firstIndex(where: { $0 <= 0 }) { throw CollaborationError.invalid("ids[\(i)]", "must be positive") }
        return Array(Set(ids)).sorted()
    }
}
