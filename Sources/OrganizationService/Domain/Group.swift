import FoundationEssentials
import SwitchboardServiceKit

/// Everything about a group that callers set.
public struct GroupData: Sendable, Hashable {
    public var name: String
    public var description = ""
    /// The enclosing group; nil at the top.
    public var parentGroupID: UUID?

    /// Creates group data.
    public init(name: String, description: String = "", parentGroupID: UUID? = nil) {
        self.name = name
        self.description = description
        self.parentGroupID = parentGroupID
    }
}

/// A stored group.
public struct GroupRecord: Sendable, Hashable {
    public var id: UUID
    public var data: GroupData
    public var version: Int64
    public var createdAt: Date
    public var createdBy: String
    public var updatedAt: Date
    public var updatedBy: String
    public var deletedAt: Date?

    /// The etag clients pass back for conditional updates.
    public var etag: String { "\"\(version)\"" }
}

/// What a bulk add or remove did to one requested contact.
public enum GroupMemberOutcome: Int, Sendable, Hashable {
    case added = 1, removed, unchanged, contactNotFound, invalidID
}

/// One requested contact of a bulk add or remove and its outcome.
public struct GroupMemberResult: Sendable, Hashable {
    /// The id as the request gave it.
    public var contactID: String
    public var outcome: GroupMemberOutcome

    /// Creates a result.
    public init(contactID: String, outcome: GroupMemberOutcome) {
        self.contactID = contactID
        self.outcome = outcome
    }
}

/// A member of a group listing.
public struct GroupMember: Sendable, Hashable {
    public var contactID: UUID
    public var displayName: String
    /// The group the contact was added to (the asked group, or one below it).
    public var groupID: UUID
}

/// Filters and page of ListGroups.
public struct GroupQuery: Sendable, Hashable {
    public var parentGroupID: UUID?
    public var namePrefix: String?
    public var includeDeleted = false
    public var after: NameCursor?
    public var limit = 50
    /// No filters.
    public init() {}
}

/// The group rules. Pure: no I/O.
public enum GroupRules {
    static let descriptionBound = TextBound(characters: 2000, bytes: 8000)
    /// Most contact ids of one bulk add or remove.
    public static let maxBulkContacts = 1000
    /// Deepest nesting of groups.
    public static let maxDepth = 16

    /// Validates and normalises group data.
    public static func validate(_ data: inout GroupData, prefix: String = "group") throws {
        var violations: [Violation] = []
        if let violation = OrganizationRules.nameViolation(&data.name, field: "\(prefix).name") { violations.append(violation) }
        if !descriptionBound.allows(data.description) {
            violations.append(Violation("\(prefix).description", descriptionBound.description, reason: "TOO_LONG"))
        }
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
    }

    /// Applies a group update mask.
    public static func apply(paths: [String], from source: GroupData, to target: inout GroupData) throws -> [String] {
        var violations: [Violation] = []
        if paths.isEmpty { violations.append(Violation("update_mask", "must name at least one field", reason: "REQUIRED")) }
        guard paths.count <= OrganizationRules.maxUpdatePaths else {
            throw OrganizationError.invalid([Violation("update_mask.paths", "at most 128 paths", reason: "TOO_MANY")])
        }
        for (i, path) in paths.enumerated() {
            switch path {
            case "name": target.name = source.name
            case "description": target.description = source.description
            case "parent_group_id": target.parentGroupID = source.parentGroupID
            default:
                violations.append(
                    Violation("update_mask.paths[\(i)]", "\(CustomFieldRules.excerpt(path)) is not an updatable field", reason: "UNKNOWN_FIELD"))
            }
        }
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        return paths
    }

    /// The outcome of each requested id of a bulk change, in request order: ids that are not UUIDs are `invalidID`;
    /// an id asked for twice is `unchanged` the second time; the rest come from `decide`.
    public static func results(
        for requested: [String], parse: (String) -> UUID?, decide: (UUID) -> GroupMemberOutcome
    ) -> [GroupMemberResult] {
        var seen = Set<UUID>()
        return requested.map { text in
            guard let id = parse(text) else { return GroupMemberResult(contactID: text, outcome: .invalidID) }
            guard seen.insert(id).inserted else { return GroupMemberResult(contactID: text, outcome: .unchanged) }
            return GroupMemberResult(contactID: text, outcome: decide(id))
        }
    }
}

/// What a bulk add or remove found and changed, from which each requested id's outcome follows.
public struct GroupBulkChange: Sendable, Hashable {
    /// Requested contacts live in the tenant's projection.
    public var live: Set<UUID>
    /// Requested contacts added (or removed).
    public var changed: Set<UUID>

    /// Creates the change.
    public init(live: Set<UUID>, changed: Set<UUID>) {
        self.live = live
        self.changed = changed
    }

    /// The outcome of each requested id, in request order.
    public func results(for requested: [String], adding: Bool) -> [GroupMemberResult] {
        GroupRules.results(for: requested, parse: { UUID(uuidString: $0) }) { id in
            if changed.contains(id) { return adding ? .added : .removed }
            return live.contains(id) ? .unchanged : .contactNotFound
        }
    }
}

/// Persistence of groups and their members. Every call runs inside the actor's tenant; members whose contact is
/// deleted or merged away (in the projection) are hidden from listings.
public protocol GroupStore: Sendable {
    /// The first response of a request id, if the request was already made.
    func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]?
    /// Stores a group; its parent must be a live group, and the nesting within ``GroupRules/maxDepth``.
    func insertGroup(_ data: GroupData, actor: Actor, write: WriteOptions<GroupRecord>) async throws -> WriteOutcome<GroupRecord>
    /// A group by id, deleted or not.
    func fetchGroup(id: UUID, actor: Actor) async throws -> GroupRecord?
    /// Replaces a group's data; a new parent is checked for cycles and depth under the tenant's group lock.
    func replaceGroup(
        id: UUID, expectedVersion: Int64, data: GroupData, changedFields: [String], actor: Actor, write: WriteOptions<GroupRecord>
    ) async throws -> WriteOutcome<GroupRecord>
    /// Soft-deletes (refused while live subgroups remain) or restores (refused under a deleted parent) a group.
    func setGroupDeleted(
        id: UUID, deleted: Bool, expectedVersion: Int64?, actor: Actor, write: WriteOptions<GroupRecord>
    ) async throws -> WriteOutcome<GroupRecord>
    /// Groups in name order.
    func listGroups(_ query: GroupQuery, actor: Actor) async throws -> Rows<GroupRecord>
    /// Adds live contacts to a live group (others are left out).
    func addMembers(
        group: UUID, contacts: [UUID], actor: Actor, write: WriteOptions<GroupBulkChange>
    ) async throws
        -> WriteOutcome<GroupBulkChange>
    /// Removes contacts from a live group.
    func removeMembers(
        group: UUID, contacts: [UUID], actor: Actor, write: WriteOptions<GroupBulkChange>
    ) async throws
        -> WriteOutcome<GroupBulkChange>
    /// Visible members of a group (and of every group below it), each contact once, in contact id order.
    func listGroupMembers(group: UUID, includeSubgroups: Bool, after: UUID?, limit: Int, actor: Actor) async throws -> Rows<GroupMember>
    /// Live groups a contact was added to, in name order; nil when the contact is not known in the tenant, is deleted
    /// or was merged away (checked in the same round trip).
    func contactGroups(contact: UUID, after: NameCursor?, limit: Int, actor: Actor) async throws -> Rows<GroupRecord>?
}
