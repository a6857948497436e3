import FoundationEssentials
import SwitchboardServiceKit

/// A tenant-defined membership role.
public struct MembershipRole: Sendable, Hashable {
    /// Lower-case letters, digits and `_`, starting with a letter, at most 64 bytes.
    public var key: String
    public var displayName: String
    /// The most current memberships of one organization that may hold the role; 0 for no limit.
    public var maxPerOrganization: Int
    public var retired: Bool

    /// Creates a role.
    public init(key: String, displayName: String, maxPerOrganization: Int = 0, retired: Bool = false) {
        self.key = key
        self.displayName = displayName
        self.maxPerOrganization = maxPerOrganization
        self.retired = retired
    }
}

/// Everything about a membership that callers set.
public struct MembershipData: Sendable, Hashable {
    /// Fixed at create.
    public var contactID: UUID
    /// Fixed at create.
    public var organizationID: UUID
    public var unitID: UUID?
    public var title = ""
    /// Role keys, distinct.
    public var roles: [String] = []
    public var primary = false
    /// `YYYY-MM-DD`, or nil when unknown.
    public var startDate: String?
    /// `YYYY-MM-DD`, the last day; nil while it lasts.
    public var endDate: String?

    /// Creates membership data.
    public init(contactID: UUID, organizationID: UUID) {
        self.contactID = contactID
        self.organizationID = organizationID
    }
}

/// A stored membership, with the contact's name from the projection.
public struct MembershipRecord: Sendable, Hashable {
    public var id: UUID
    public var data: MembershipData
    public var contactDisplayName: String
    public var version: Int64
    public var createdAt: Date
    public var createdBy: String
    public var updatedAt: Date
    public var updatedBy: String

    /// The etag clients pass back for conditional updates.
    public var etag: String { "\"\(version)\"" }
}

/// Filters and page of a membership list (an organization's members, or a contact's memberships).
public struct MembershipQuery: Sendable, Hashable {
    /// Members of this organization…
    public var organizationID: UUID?
    /// …and of every organization below it.
    public var includeDescendants = false
    /// Memberships of this contact.
    public var contactID: UUID?
    public var role: String?
    public var unitID: UUID?
    /// Also memberships ended before `asOf`.
    public var includeEnded = false
    /// `YYYY-MM-DD`; nil for today (UTC).
    public var asOf: String?
    public var afterID: UUID?
    public var limit = 50
    /// No filters.
    public init() {}
}

/// The membership rules. Pure: no I/O.
public enum MembershipRules {
    static let titleBound = TextBound(characters: 200, bytes: 800)
    static let maxRoles = 20
    /// Most membership roles of a tenant.
    public static let maxRoleDefinitions = 200
    /// The largest per-organization limit a role may have.
    public static let maxLimit = 100_000

    /// Validates membership data against the tenant's roles (every role defined and not retired, no duplicates),
    /// and its dates (`YYYY-MM-DD`, the end not before the start).
    /// - Throws: ``OrganizationError/invalid(_:)`` naming each field under `prefix`.
    public static func validate(_ data: inout MembershipData, roles: [MembershipRole], prefix: String = "membership") throws {
        var violations: [Violation] = []
        if !titleBound.allows(data.title) {
            violations.append(Violation("\(prefix).title", titleBound.description, reason: "TOO_LONG"))
        } else {
            data.title = data.title.trimmingSpaces
        }
        if data.roles.count > maxRoles {
            violations.append(Violation("\(prefix).roles", "at most \(maxRoles) roles", reason: "TOO_MANY"))
        } else {
            let live = Set(roles.filter { !$0.retired }.map(\.key))
            var seen = Set<String>()
            for (i, role) in data.roles.enumerated() {
                if !live.contains(role) {
                    violations.append(
                        Violation("\(prefix).roles[\(i)]", "\(CustomFieldRules.excerpt(role)) is not a defined role", reason: "UNKNOWN_ROLE"))
                } else if !seen.insert(role).inserted {
                    violations.append(Violation("\(prefix).roles[\(i)]", "appears twice", reason: "DUPLICATE"))
                }
            }
        }
        for (date, field) in [(data.startDate, "start_date"), (data.endDate, "end_date")] {
            if let date, !CustomFieldRules.isValidDate(date) {
                violations.append(Violation("\(prefix).\(field)", "must be a date as YYYY-MM-DD", reason: "INVALID_FORMAT"))
            }
        }
        // ISO dates of valid form compare as text.
        if violations.isEmpty, let start = data.startDate, let end = data.endDate, end < start {
            violations.append(Violation("\(prefix).end_date", "must not be before start_date", reason: "OUT_OF_RANGE"))
        }
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
    }

    /// Validates a role definition.
    public static func validate(_ role: MembershipRole, prefix: String = "role") throws {
        var violations: [Violation] = []
        if !CustomFieldRules.isValidKey(role.key) {
            violations.append(
                Violation(
                    "\(prefix).key", "must be lower-case letters, digits and _, start with a letter, at most 64 characters", reason: "INVALID_FORMAT")
            )
        }
        if !OrganizationRules.industryBound.allows(role.displayName) || role.displayName.trimmingSpaces.isEmpty {
            violations.append(Violation("\(prefix).display_name", "must be 1 to 100 characters (400 bytes of UTF-8)", reason: "REQUIRED"))
        }
        if !(0...maxLimit).contains(role.maxPerOrganization) {
            violations.append(Violation("\(prefix).max_per_organization", "must be from 0 to \(maxLimit)", reason: "OUT_OF_RANGE"))
        }
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
    }

    /// The membership update paths callers may name.
    public static func apply(paths: [String], from source: MembershipData, to target: inout MembershipData) throws -> [String] {
        var violations: [Violation] = []
        if paths.isEmpty { violations.append(Violation("update_mask", "must name at least one field", reason: "REQUIRED")) }
        guard paths.count <= OrganizationRules.maxUpdatePaths else {
            throw OrganizationError.invalid([Violation("update_mask.paths", "at most 128 paths", reason: "TOO_MANY")])
        }
        for (i, path) in paths.enumerated() {
            switch path {
            case "unit_id": target.unitID = source.unitID
            case "title": target.title = source.title
            case "roles": target.roles = source.roles
            case "primary": target.primary = source.primary
            case "start_date": target.startDate = source.startDate
            case "end_date": target.endDate = source.endDate
            default:
                violations.append(
                    Violation("update_mask.paths[\(i)]", "\(CustomFieldRules.excerpt(path)) is not an updatable field", reason: "UNKNOWN_FIELD"))
            }
        }
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        return paths
    }
}
