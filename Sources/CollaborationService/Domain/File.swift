import FoundationEssentials
import SwitchboardServiceKit

/// What an upload declares of a file before its content.
public struct FileData: Sendable, Hashable {
    /// The file name.
    public var name: String = ""
    /// The media type.
    public var contentType: String = ""
    /// The size the content must have.
    public var sizeBytes: Int64 = 0
    /// The lower-case hex SHA-256 the content must have.
    public var sha256: String = ""
    /// The records it belongs to.
    public var subjects: [SubjectRef] = []

    /// Creates empty data.
    public init() {}
}

/// A stored file's metadata.
public struct FileRecord: Sendable, Hashable {
    /// The id.
    public var id: UUID
    /// The metadata.
    public var data: FileData
    /// When it was uploaded.
    public var createdAt: Date
    /// Who uploaded it.
    public var createdBy: String
    /// The list order's time in microseconds, for page tokens.
    public var sortMicros: Int64 = 0
    /// When it was deleted; nil while live.
    public var deletedAt: Date?

    /// Creates a record.
    public init(id: UUID, data: FileData, createdAt: Date, createdBy: String) {
        self.id = id
        self.data = data
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
}

/// The rules of files.
public enum FileRules {
    /// Longest name.
    public static let maxNameBytes = 255
    /// Longest content type.
    public static let maxContentTypeBytes = 255
    /// Largest chunk message of an upload.
    public static let maxChunkBytes = 1 << 20
    /// Bytes of one stored chunk row (and of one DownloadFile message): the content is re-cut to this size, so a
    /// client's tiny chunks cannot multiply rows.
    public static let storedChunkBytes = 256 << 10
    /// The default largest file (SWITCHBOARD_COLLABORATION_MAX_FILE_BYTES).
    public static let defaultMaxFileBytes: Int64 = 100 << 20

    /// The violations of an upload's metadata (named under `file.`); fills in the default content type.
    public static func check(_ data: inout FileData, maxFileBytes: Int64) -> [Violation] {
        var violations: [Violation] = []
        CollaborationRules.checkText(data.name, max: maxNameBytes, required: true, field: "metadata.file.name", into: &violations)
        if data.name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == "/" }) {
            violations.append(Violation("metadata.file.name", "must not contain control characters or '/'", reason: "INVALID_FORMAT"))
        }
        if data.contentType.isEmpty { data.contentType = "application/octet-stream" }
        CollaborationRules.checkText(
            data.contentType, max: maxContentTypeBytes, required: true, field: "metadata.file.content_type", into: &violations)
        if data.sizeBytes < 0 {
            violations.append(Violation("metadata.file.size_bytes", "must not be negative"))
        } else if data.sizeBytes > maxFileBytes {
            violations.append(Violation("metadata.file.size_bytes", "must be at most \(maxFileBytes) bytes", reason: "TOO_LARGE"))
        }
        data.sha256 = data.sha256.lowercased()
        if data.sha256.utf8.count != 64 || !data.sha256.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) {
            violations.append(Violation("metadata.file.sha256", "must be 64 hex digits (the content's SHA-256)", reason: "INVALID_FORMAT"))
        }
        CollaborationRules.checkSubjects(data.subjects, minimum: 0, field: "metadata.file.subjects", into: &violations)
        return violations
    }
}
