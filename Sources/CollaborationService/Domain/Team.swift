import FoundationEssentials
import SwitchboardServiceKit

/// A stored team.
public struct TeamRecord: Sendable, Hashable {
    /// The id.
    public var id: UUID
    /// The name.
    public var name: String
    /// Member user ids, sorted.
    public var members: [String]
    /// Increases with every change.
    public var version: Int64
    /// Audit stamps.
    public var audit: Audit

    /// Creates a record.
    public init(id: UUID, name: String, members: [String], version: Int64, audit: Audit) {
        self.id = id
        self.name = name
        self.members = members
        self.version = version
        self.audit = audit
    }

    /// The etag of this version.
    public var etag: String { CollaborationRules.etag(version) }
}

/// Who a grant is for.
public enum Grantee: Sendable, Hashable {
    /// A user.
    case user(String)
    /// The members of a team.
    case team(UUID)
}

/// What a grant allows.
public enum Permission: Int, Sendable, Hashable {
    /// Read the note and its comments.
    case view = 1
    /// Read and update the note.
    case edit = 2
}

/// A stored grant of a note.
public struct GrantRecord: Sendable, Hashable {
    /// The id.
    public var id: UUID
    /// The note shared.
    public var noteID: UUID
    /// Who it is shared with.
    public var grantee: Grantee
    /// What they may do.
    public var permission: Permission
    /// Who shared it.
    public var grantedBy: String
    /// When.
    public var createdAt: Date

    /// Creates a record.
    public init(id: UUID, noteID: UUID, grantee: Grantee, permission: Permission, grantedBy: String, createdAt: Date) {
        self.id = id
        self.noteID = noteID
        self.grantee = grantee
        self.permission = permission
        self.grantedBy = grantedBy
        self.createdAt = createdAt
    }
}

/// The rules of teams and grants.
public enum TeamRules {
    /// Longest team name.
    public static let maxNameBytes = 200
    /// Most members of one team (a Team message lists them all).
    public static let maxMembers = 1000
    /// Most user ids one request adds or removes.
    public static let maxMembersPerRequest = 100
    /// Most grants of one note (ListGrants returns them all).
    public static let maxGrantsPerNote = 1000

    /// Checks the user ids of a request: 1 (or 0 when `allowEmpty`) to ``maxMembersPerRequest``, each a user id;
    /// returns them deduplicated.
    public static func checkUsers(_ users: [String], field: String, allowEmpty: Bool) throws -> [String] {
        var violations: [Violation] = []
        if users.isEmpty && !allowEmpty {
            violations.append(Violation(field, "at least one user", reason: "REQUIRED"))
        } else if users.count > maxMembersPerRequest {
            violations.append(Violation(field, "at most \(maxMembersPerRequest) users", reason: "TOO_MANY"))
        } else {
            for (i, user) in users.enumerated() { CollaborationRules.checkUserID(user, field: "\(field)[\(i)]", into: &violations) }
        }
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        var seen = Set<String>()
        return users.filter { seen.insert($0).inserted }
    }
}
