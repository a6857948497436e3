import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardServiceKit

/// The kinds of record of other services that notes, comments and files are about.
public enum SubjectType: Int, Sendable, Hashable, CaseIterable {
    /// A contact (contacts service).
    case contact = 1
    /// An organization (organization service).
    case organization = 2
    /// An interaction (communication service).
    case interaction = 3
}

/// A record of another service, by type and id.
public struct SubjectRef: Sendable, Hashable {
    /// The record's kind.
    public var type: SubjectType
    /// Its id.
    public var id: UUID

    /// Creates a reference.
    public init(type: SubjectType, id: UUID) {
        self.type = type
        self.id = id
    }
}

/// The rules shared by every collaboration resource: text lengths, user ids, subject lists, page sizes.
public enum CollaborationRules {
    /// Most subjects of one note or file.
    public static let maxSubjects = 16
    /// Longest user id (a token's `sub`).
    public static let maxUserIDBytes = 128
    /// Longest etag a request may name.
    public static let maxETagBytes = 64
    /// Page sizes: the default and the most.
    public static let defaultPageSize = 50, maxPageSize = 200

    /// Checks a list of subjects: distinct, and at most ``maxSubjects`` (at least `minimum`).
    public static func checkSubjects(_ subjects: [SubjectRef], minimum: Int, field: String, into violations: inout [Violation]) {
        if subjects.count < minimum {
            violations.append(Violation(field, "at least \(minimum) required", reason: "REQUIRED"))
        } else if subjects.count > maxSubjects {
            violations.append(Violation(field, "at most \(maxSubjects) subjects", reason: "TOO_MANY"))
        } else if Set(subjects).count != subjects.count {
            violations.append(Violation(field, "must not repeat a subject", reason: "DUPLICATE"))
        }
    }

    /// Checks a user id: 1 to ``maxUserIDBytes`` bytes with no control characters.
    public static func checkUserID(_ id: String, field: String, into violations: inout [Violation]) {
        if id.isEmpty {
            violations.append(Violation(field, "is required", reason: "REQUIRED"))
        } else if id.utf8.count > maxUserIDBytes {
            violations.append(Violation(field, "must be at most \(maxUserIDBytes) bytes", reason: "TOO_LONG"))
        } else if id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            violations.append(Violation(field, "must not contain control characters", reason: "INVALID_FORMAT"))
        }
    }

    /// Checks a text's length in bytes (1 … `max`, or 0 … `max` when not required).
    public static func checkText(_ text: String, max: Int, required: Bool, field: String, into violations: inout [Violation]) {
        if required && text.isEmpty {
            violations.append(Violation(field, "is required", reason: "REQUIRED"))
        } else if text.utf8.count > max {
            violations.append(Violation(field, "must be at most \(max) bytes", reason: "TOO_LONG"))
        }
    }

    /// The number of rows of a page.
    /// - Throws: ``CollaborationError/invalid(_:)`` naming `page.page_size` when negative.
    public static func pageLimit(_ pageSize: Int) throws -> Int {
        guard pageSize >= 0 else { throw CollaborationError.invalid("page.page_size", "must not be negative") }
        return pageSize == 0 ? defaultPageSize : min(pageSize, maxPageSize)
    }

    /// Checks an etag's length.
    /// - Throws: ``CollaborationError/invalid(_:)`` naming `etag`.
    public static func checkETag(_ etag: String) throws {
        guard etag.utf8.count <= maxETagBytes else {
            throw CollaborationError.invalid("etag", "must be at most \(maxETagBytes) bytes", reason: "TOO_LONG")
        }
    }

    /// The etag of a version.
    public static func etag(_ version: Int64) -> String { "\"\(version)\"" }
}

/// A position in a list ordered by a time and an id: the last row of the previous page.
public struct TimeCursor: Sendable, Hashable {
    /// The time, in microseconds since 1970 (exact, unlike a `Date`).
    public var micros: Int64
    /// The id.
    public var id: UUID

    /// Creates a cursor.
    public init(micros: Int64, id: UUID) {
        self.micros = micros
        self.id = id
    }

    /// The cursor of a page token, checked before it reaches SQL.
    /// - Throws: ``InvalidRequest`` naming `page.page_token`.
    public static func resume(_ token: String, fingerprint: [String]) throws -> TimeCursor? {
        guard let parts = try PageToken.resume(token, fingerprint: PageToken.fingerprint(fingerprint), parts: 2) else { return nil }
        // Microseconds of the times a stored row can have (0001-01-01 to 9999-12-31): tokens are not signed, and a value
        // out of range would fail in the database (INTERNAL) instead of here.
        guard let micros = Int64(parts[0]), (-62_135_596_800_000_000...253_402_300_799_999_999).contains(micros), let id = UUID(text: parts[1])
        else {
            throw InvalidRequest("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")
        }
        return TimeCursor(micros: micros, id: id)
    }

    /// The token continuing after this cursor.
    public func token(fingerprint: [String]) -> String {
        PageToken(cursor: [String(micros), id.lowercaseText], fingerprint: PageToken.fingerprint(fingerprint)).encoded
    }
}

/// One page read by a store: its rows, and whether more follow.
public struct Rows<Record: Sendable>: Sendable {
    /// The rows.
    public var records: [Record]
    /// Whether another page follows.
    public var more: Bool

    /// Creates a page.
    public init(records: [Record], more: Bool) {
        self.records = records
        self.more = more
    }
}

/// Audit stamps of a resource.
public struct Audit: Sendable, Hashable {
    /// When and by whom it was created.
    public var createdAt: Date
    /// The creator.
    public var createdBy: String
    /// When it last changed.
    public var updatedAt: Date
    /// Who changed it last.
    public var updatedBy: String
    /// When it was soft-deleted; nil while live.
    public var deletedAt: Date?

    /// Creates stamps.
    public init(createdAt: Date, createdBy: String, updatedAt: Date, updatedBy: String, deletedAt: Date? = nil) {
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.updatedAt = updatedAt
        self.updatedBy = updatedBy
        self.deletedAt = deletedAt
    }
}
