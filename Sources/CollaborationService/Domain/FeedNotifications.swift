import FoundationEssentials

/// What the communication feed says about an interaction: the parts that decide its notifications.
public struct InteractionFacts: Sendable, Hashable {
    /// Which way a call went.
    public enum Direction: Sendable, Hashable {
        /// Not directional.
        case none
        /// To us.
        case inbound
        /// From us.
        case outbound
    }

    /// The owning user, whom its notifications go to.
    public var ownerID: String
    /// A call (the only kind with call notifications).
    public var isCall: Bool
    /// The kind in words ("call", "email"), for titles.
    public var kindName: String
    /// Its direction.
    public var direction: Direction
    /// Its subject (may be empty).
    public var subject: String
    /// Its outcome, free text ("connected", "no answer").
    public var outcome: String
    /// When it happened.
    public var occurredAt: Date?
    /// When someone should follow up; nil: no follow-up.
    public var followUpAt: Date?
    /// The follow-up is done.
    public var followUpDone: Bool
    /// The interaction is deleted.
    public var deleted: Bool
    /// The contacts it involves (whom its subject may name).
    public var contactIDs: [UUID]

    /// Creates the facts.
    public init(
        ownerID: String, isCall: Bool, kindName: String, direction: Direction, subject: String = "", outcome: String = "",
        occurredAt: Date? = nil, followUpAt: Date? = nil, followUpDone: Bool = false, deleted: Bool = false, contactIDs: [UUID] = []
    ) {
        self.ownerID = ownerID
        self.isCall = isCall
        self.kindName = kindName
        self.direction = direction
        self.subject = subject
        self.outcome = outcome
        self.occurredAt = occurredAt
        self.followUpAt = followUpAt
        self.followUpDone = followUpDone
        self.deleted = deleted
        self.contactIDs = contactIDs
    }
}

/// One event of the communication feed about an interaction.
public struct InteractionChange: Sendable, Hashable {
    /// What happened.
    public enum Kind: Sendable, Hashable {
        /// Logged.
        case created
        /// Changed (`changedFields` say which fields).
        case updated
        /// Soft-deleted.
        case deleted
        /// Restored.
        case undeleted
    }

    /// The tenant.
    public var tenantID: String
    /// The interaction.
    public var interactionID: UUID
    /// The event's per-tenant sequence in the communication feed: a follow-up only moves forward in it.
    public var sequence: Int64
    /// What happened.
    public var kind: Kind
    /// Who made the change.
    public var actorID: String
    /// The fields an update changed.
    public var changedFields: [String]
    /// When the change committed.
    public var commitTime: Date
    /// The interaction after the change; nil for a private interaction, which communication publishes as a stub (id and
    /// visibility only).
    public var facts: InteractionFacts?

    /// Creates a change.
    public init(
        tenantID: String, interactionID: UUID, sequence: Int64, kind: Kind, actorID: String, changedFields: [String] = [], commitTime: Date,
        facts: InteractionFacts?
    ) {
        self.tenantID = tenantID
        self.interactionID = interactionID
        self.sequence = sequence
        self.kind = kind
        self.actorID = actorID
        self.changedFields = changedFields
        self.commitTime = commitTime
        self.facts = facts
    }
}

/// What one change does to its interaction's scheduled follow-up notification.
public enum FollowUpPlan: Sendable, Hashable {
    /// The follow-up as the event describes it (`due` nil: none). A new time or a new owner re-arms it.
    case set(owner: String, due: Date?, done: Bool, deleted: Bool, title: String)
    /// Only the interaction's deletion changed (a private interaction deleted or restored).
    case setDeleted(Bool)
    /// The follow-up changed in a way the event does not show (a private interaction's follow-up fields): cancelled.
    case unknown
    /// Nothing changes.
    case unchanged
}

/// A call notification for an interaction's owner.
public struct CallNotice: Sendable, Hashable {
    /// Why.
    public enum Reason: String, Sendable, Hashable {
        /// Someone else logged an inbound call for the owner.
        case inbound
        /// Someone else recorded that a call of the owner's was missed or not answered.
        case missed
        /// Someone else handed the call to the owner.
        case assigned
    }

    /// Who is told (the interaction's owner).
    public var ownerID: String
    /// Why.
    public var reason: Reason
    /// The notification's title.
    public var title: String
    /// The title without the interaction's subject, for an erasure of one of its contacts.
    public var redactedTitle: String
}

/// An analytics alert that fired, from analytics' feed.
public struct AlertNotice: Sendable, Hashable {
    /// The tenant.
    public var tenantID: String
    /// The firing's id (AlertFired.id): one notification per firing.
    public var firingID: String
    /// The alert's creator, whom it notifies.
    public var ownerID: String
    /// The contact that crossed the threshold.
    public var contactID: UUID
    /// The alert's name.
    public var alertName: String
    /// The metric in words ("interactions", "engagement score").
    public var metricName: String
    /// The value reached and the threshold.
    public var value: Double, threshold: Double
    /// When it fired, and when analytics committed it.
    public var firedAt: Date?, commitTime: Date

    /// Creates a notice.
    public init(
        tenantID: String, firingID: String, ownerID: String, contactID: UUID, alertName: String, metricName: String, value: Double,
        threshold: Double, firedAt: Date?, commitTime: Date
    ) {
        self.tenantID = tenantID
        self.firingID = firingID
        self.ownerID = ownerID
        self.contactID = contactID
        self.alertName = alertName
        self.metricName = metricName
        self.value = value
        self.threshold = threshold
        self.firedAt = firedAt
        self.commitTime = commitTime
    }
}

/// Which feed events become notifications, and what they say.
///
/// Call notifications (kind CALL), for CALL interactions only, to the interaction's owner, and never for what the owner
/// did themselves (the actor is the owner: they know):
/// - an INBOUND call logged (CREATED) by someone else (a colleague who took it, a telephony integration);
/// - a call whose outcome is a missed one (``missedOutcomes``) when logged (CREATED) or when an update sets `outcome`,
///   in either direction (an inbound call you missed; your outbound call a dialer recorded as unanswered);
/// - a call handed to the owner (an update of `owner_id`).
/// A call that happened (or whose event committed) longer than the age limit ago notifies nobody: a feed replayed
/// from its start, or a bulk import of old calls, must not flood inboxes with stale news.
public enum FeedNotificationRules {
    /// Outcomes that mean nobody answered, compared after lower-casing, trimming and turning `-` and `_` into spaces.
    public static let missedOutcomes: Set<String> = ["missed", "missed call", "no answer", "noanswer", "not answered", "unanswered"]
    /// The update paths that change a follow-up.
    static let followUpFields: Set<String> = ["follow_up_at", "follow_up_done", "owner_id"]

    /// Whether an outcome says the call was not answered.
    public static func isMissed(_ outcome: String) -> Bool {
        let spaced = outcome.lowercased().map { (c: Character) -> Character in c == "-" || c == "_" ? " " : c }
        let words = spaced.split(whereSeparator: { $0.isWhitespace })
        return missedOutcomes.contains(words.map { String($0) }.joined(separator: " "))
    }

    /// What a change does to the interaction's follow-up.
    public static func followUpPlan(_ change: InteractionChange) -> FollowUpPlan {
        guard let facts = change.facts else {
            switch change.kind {
            case .created: return .unchanged
            case .deleted: return .setDeleted(true)
            case .undeleted: return .setDeleted(false)
            case .updated:
                // A private interaction's update names its fields but not their values: a follow-up whose time, state or
                // owner changed out of sight is cancelled rather than sent at a time that may no longer hold.
                return followUpFields.isDisjoint(with: change.changedFields) ? .unchanged : .unknown
            }
        }
        let subject = facts.subject.oneLine
        let title = subject.isEmpty ? redactedFollowUpTitle(facts) : "Follow up: \(subject)"
        return .set(
            owner: facts.ownerID, due: facts.followUpAt, done: facts.followUpDone, deleted: change.kind == .deleted || facts.deleted,
            title: clip(title, bytes: NotificationRules.maxTitleBytes))
    }

    /// A follow-up's title without the interaction's subject.
    public static func redactedFollowUpTitle(_ facts: InteractionFacts) -> String {
        "Follow up on your \(facts.kindName)"
    }

    /// The call notification a change makes, if any.
    /// - Parameters:
    ///   - change: the change.
    ///   - now: the time of ingestion.
    ///   - maxAge: how old a call (or its event) may be and still notify.
    public static func callNotice(_ change: InteractionChange, now: Date, maxAge: Duration) -> CallNotice? {
        guard let facts = change.facts, facts.isCall, !facts.deleted, !facts.ownerID.isEmpty, change.actorID != facts.ownerID else { return nil }
        guard isTimely([change.commitTime, facts.occurredAt], now: now, maxAge: maxAge) else { return nil }
        let missed = isMissed(facts.outcome)
        let reason: CallNotice.Reason
        switch change.kind {
        case .created:
            if missed {
                reason = .missed
            } else if facts.direction == .inbound {
                reason = .inbound
            } else {
                return nil
            }
        case .updated:
            if missed, change.changedFields.contains("outcome") {
                reason = .missed
            } else if change.changedFields.contains("owner_id") {
                reason = .assigned
            } else {
                return nil
            }
        case .deleted, .undeleted:
            return nil
        }
        let prefix: String
        switch reason {
        case .inbound: prefix = "Inbound call"
        case .missed: prefix = facts.direction == .inbound ? "Missed call" : "Call not answered"
        case .assigned: prefix = "Call assigned to you"
        }
        let subject = facts.subject.oneLine
        return CallNotice(
            ownerID: facts.ownerID, reason: reason,
            title: clip(subject.isEmpty ? prefix : "\(prefix): \(subject)", bytes: NotificationRules.maxTitleBytes), redactedTitle: prefix)
    }

    /// The notification an alert firing makes.
    public static func alertNotification(_ notice: AlertNotice) -> NotificationData {
        let name = notice.alertName.oneLine
        return NotificationData(
            kind: .alert, audience: .users([notice.ownerID]),
            title: clip(name.isEmpty ? "Alert fired" : "Alert \"\(name)\" fired", bytes: NotificationRules.maxTitleBytes),
            body: clip(
                "\(notice.metricName): \(number(notice.value)) (threshold \(number(notice.threshold)))", bytes: NotificationRules.maxBodyBytes),
            resourceType: "switchboard.contacts.v1.Contact", resourceID: notice.contactID.uuidString.lowercased())
    }

    /// Whether every known time is within `maxAge` before `now` (a future time is timely).
    public static func isTimely(_ times: [Date?], now: Date, maxAge: Duration) -> Bool {
        let limit = Double(maxAge.components.seconds)
        return times.allSatisfy { time in time.map { now.timeIntervalSince($0) <= limit } ?? true }
    }

    /// A number as people read it: whole numbers without a fraction, others to two decimals.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "\(value)" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\((value * 100).rounded() / 100)"
    }

    /// The longest prefix of `text` of at most `bytes` UTF-8 bytes, cut at a character boundary.
    static func clip(_ text: String, bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var result = ""
        var count = 0
        for character in text {
            let size = character.utf8.count
            if count + size > bytes { break }
            result.append(character)
            count += size
        }
        return result
    }
}

extension String {
    /// The text on one line (line breaks and other control characters as spaces), without leading or trailing spaces:
    /// a title is shown on one line.
    fileprivate var oneLine: String {
        let flat = String(
            self.map { (c: Character) -> Character in c.unicodeScalars.contains { $0.properties.generalCategory == .control } ? " " : c })
        return String(flat.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
