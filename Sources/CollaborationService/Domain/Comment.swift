import FoundationEssentials
import SwitchboardServiceKit

/// Where a comment thread hangs: a note, or a record directly.
public enum CommentThread: Sendable, Hashable {
    /// A note's thread (readable by the note's readers).
    case note(UUID)
    /// A record's thread (readable by the tenant).
    case subject(SubjectRef)
}

/// A stored comment.
public struct CommentRecord: Sendable, Hashable {
    /// The id.
    public var id: UUID
    /// The thread.
    public var thread: CommentThread
    /// The comment replied to.
    public var parentID: UUID?
    /// The text.
    public var body: String
    /// The writer.
    public var authorID: String
    /// Increases with every change.
    public var version: Int64
    /// Audit stamps.
    public var audit: Audit
    /// The list order's time in microseconds, for page tokens.
    public var sortMicros: Int64 = 0

    /// Creates a record.
    public init(id: UUID, thread: CommentThread, parentID: UUID?, body: String, authorID: String, version: Int64, audit: Audit) {
        self.id = id
        self.thread = thread
        self.parentID = parentID
        self.body = body
        self.authorID = authorID
        self.version = version
        self.audit = audit
    }

    /// The etag of this version.
    public var etag: String { CollaborationRules.etag(version) }
}

/// The rules of comments.
public enum CommentRules {
    /// Longest body.
    public static let maxBodyBytes = 16_384

    /// The violations of a comment's body.
    public static func checkBody(_ body: String, field: String = "comment.body") -> [Violation] {
        var violations: [Violation] = []
        CollaborationRules.checkText(body, max: maxBodyBytes, required: true, field: field, into: &violations)
        return violations
    }
}
