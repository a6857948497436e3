import FoundationEssentials
import SwitchboardServiceKit

/// Who may read a note, beyond admins and grantees.
public enum Visibility: Int, Sendable, Hashable {
    /// The author only.
    case `private` = 1
    /// The members of the note's team.
    case team = 2
    /// Everyone in the tenant.
    case tenant = 3
}

/// What a client writes of a note.
public struct NoteData: Sendable, Hashable {
    /// What the note is about.
    public var subjects: [SubjectRef] = []
    /// The text.
    public var body: String = ""
    /// Who may read it.
    public var visibility: Visibility = .private
    /// The team of a TEAM note.
    public var teamID: UUID?
    /// Users mentioned (notified).
    public var mentionedUserIDs: [String] = []

    /// Creates empty data.
    public init() {}
}

/// A stored note.
public struct NoteRecord: Sendable, Hashable {
    /// The id.
    public var id: UUID
    /// The content.
    public var data: NoteData
    /// The creator.
    public var authorID: String
    /// Increases with every change.
    public var version: Int64
    /// Audit stamps.
    public var audit: Audit
    /// The list order's time in microseconds (the creation time), for page tokens.
    public var sortMicros: Int64 = 0

    /// Creates a record.
    public init(id: UUID, data: NoteData, authorID: String, version: Int64, audit: Audit) {
        self.id = id
        self.data = data
        self.authorID = authorID
        self.version = version
        self.audit = audit
    }

    /// The etag of this version.
    public var etag: String { CollaborationRules.etag(version) }
}

/// The rules of notes.
public enum NoteRules {
    /// Longest body.
    public static let maxBodyBytes = 65_536
    /// Most mentioned users.
    public static let maxMentions = 32
    /// The fields UpdateNote may name.
    public static let updatableFields: Set<String> = ["body", "subjects", "visibility", "team_id", "mentioned_user_ids"]

    /// The violations of a note's data (named under `prefix`); mentions are deduplicated in place.
    public static func check(_ data: inout NoteData, prefix: String = "note") -> [Violation] {
        var violations: [Violation] = []
        CollaborationRules.checkSubjects(data.subjects, minimum: 1, field: "\(prefix).subjects", into: &violations)
        CollaborationRules.checkText(data.body, max: maxBodyBytes, required: true, field: "\(prefix).body", into: &violations)
        if data.visibility == .team, data.teamID == nil {
            violations.append(Violation("\(prefix).team_id", "is required for a TEAM note", reason: "REQUIRED"))
        } else if data.visibility != .team, data.teamID != nil {
            violations.append(Violation("\(prefix).team_id", "is only for a TEAM note"))
        }
        var seen = Set<String>()
        data.mentionedUserIDs = data.mentionedUserIDs.filter { seen.insert($0).inserted }
        if data.mentionedUserIDs.count > maxMentions {
            violations.append(Violation("\(prefix).mentioned_user_ids", "at most \(maxMentions) users", reason: "TOO_MANY"))
        } else {
            for (i, user) in data.mentionedUserIDs.enumerated() {
                CollaborationRules.checkUserID(user, field: "\(prefix).mentioned_user_ids[\(i)]", into: &violations)
            }
        }
        if data.visibility == .private, !data.mentionedUserIDs.isEmpty {
            // A mention would notify someone of a note they can never open.
            violations.append(Violation("\(prefix).mentioned_user_ids", "a PRIVATE note mentions nobody"))
        }
        return violations
    }

    /// The current note with the masked fields of `source` copied in.
    /// - Throws: ``CollaborationError/invalid(_:)`` naming `update_mask` for an empty mask or an unknown field.
    public static func merge(_ current: NoteData, from source: NoteData, paths: [String]) throws -> (NoteData, [String]) {
        guard !paths.isEmpty else { throw CollaborationError.invalid("update_mask", "names no field", reason: "REQUIRED") }
        var data = current
        var changed: [String] = []
        for path in paths {
            switch path {
            case "body": data.body = source.body
            case "subjects": data.subjects = source.subjects
            case "visibility": data.visibility = source.visibility
            case "team_id": data.teamID = source.teamID
            case "mentioned_user_ids": data.mentionedUserIDs = source.mentionedUserIDs
            default:
                throw CollaborationError.invalid(
                    "update_mask", "\(CustomFieldRules.excerpt(path)) is not one of \(updatableFields.sorted().joined(separator: ", "))")
            }
            if !changed.contains(path) { changed.append(path) }
        }
        return (data, changed)
    }
}
