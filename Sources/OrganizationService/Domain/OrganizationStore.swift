import FoundationEssentials
import SwitchboardServiceKit

/// Where the previous page ended (keyset pagination): the last row's name key (its lower-cased name) and id.
public struct NameCursor: Sendable, Hashable {
    public var nameKey: String
    public var id: UUID
}

/// Filters and page of ListOrganizations.
public struct OrganizationQuery: Sendable, Hashable {
    public var parentID: UUID?
    public var topLevelOnly = false
    public var industry: String?
    public var size: SizeBand?
    public var tag: String?
    public var namePrefix: String?
    public var domain: String?
    public var includeDeleted = false
    public var after: NameCursor?
    public var limit = 50
    /// Stop reading rows once they hold about this many bytes (at least one row is read).
    public var maxBytes = 1 << 20
    /// No filters.
    public init() {}
}

/// Filters and page of ListUnits.
public struct UnitQuery: Sendable, Hashable {
    public var organizationID: UUID
    public var parentUnitID: UUID?
    public var includeDeleted = false
    public var after: NameCursor?
    public var limit = 50
    /// Units of one organization.
    public init(organizationID: UUID) { self.organizationID = organizationID }
}

/// Rows of a list, in order, and whether more follow.
public struct Rows<Record: Sendable>: Sendable {
    public var records: [Record]
    public var more: Bool
    /// Creates the rows.
    public init(records: [Record], more: Bool) {
        self.records = records
        self.more = more
    }
}

/// Persistence of organizations and units. Every call runs inside the actor's tenant; implementations must not see
/// other tenants' rows (the PostgreSQL store relies on row-level security for that, not only on its WHERE clauses).
///
/// The hierarchy's invariants (no cycles, bounded depth, no live organization below a deleted one) are checked by
/// the store inside the writing transaction, after taking the tenant's hierarchy lock, with the pure rules of
/// ``OrganizationRules``: a check made before the transaction could be overtaken by a concurrent move.
public protocol OrganizationStore: Sendable {
    /// The first response of a request id, if the request was already made.
    func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]?

    /// The tenant's organization field definitions.
    func fieldDefinitions(actor: Actor, includeRetired: Bool) async throws -> [CustomFieldDefinition]
    /// Adds a field definition (`fieldExists`, `tooManyFields`).
    func define(
        _ definition: CustomFieldDefinition, actor: Actor, write: WriteOptions<CustomFieldDefinition>
    ) async throws
        -> WriteOutcome<CustomFieldDefinition>
    /// Retires a field definition (`fieldNotFound`).
    func retire(key: String, actor: Actor, write: WriteOptions<CustomFieldDefinition>) async throws -> WriteOutcome<CustomFieldDefinition>

    /// Stores a new organization: its parent must be live (`notFound`) and not at the deepest level (`tooDeep`);
    /// its domains must be free (`domainTaken`).
    func insert(_ data: OrganizationData, actor: Actor, write: WriteOptions<OrganizationRecord>) async throws -> WriteOutcome<OrganizationRecord>
    /// An organization by id, deleted or not.
    func fetch(id: UUID, actor: Actor) async throws -> OrganizationRecord?
    /// Live organizations by id.
    func fetch(ids: [UUID], actor: Actor) async throws -> [OrganizationRecord]
    /// Replaces an organization's data if its version is still `expectedVersion` (`etagMismatch`); a new parent is
    /// checked for cycles and depth (`cycle`, `tooDeep`, `notFound`).
    func replace(
        id: UUID, expectedVersion: Int64, data: OrganizationData, changedFields: [String], actor: Actor,
        write: WriteOptions<OrganizationRecord>
    ) async throws -> WriteOutcome<OrganizationRecord>
    /// Soft-deletes (refused while live children remain: `hasChildren`) or restores (refused under a deleted parent:
    /// `parentDeleted`) an organization.
    func setDeleted(
        id: UUID, deleted: Bool, expectedVersion: Int64?, actor: Actor, write: WriteOptions<OrganizationRecord>
    ) async throws -> WriteOutcome<OrganizationRecord>
    /// Lists organizations in name order.
    func list(_ query: OrganizationQuery, actor: Actor) async throws -> Rows<OrganizationRecord>
    /// Walks the live tree below `root` (included) to `maxDepth` levels, depth-first in name order, handing the
    /// nodes over in batches of at most `batchSize`.
    /// - Returns: false when the root is not a live organization of the tenant (nothing was delivered).
    func tree(root: UUID, maxDepth: Int, batchSize: Int, actor: Actor, deliver: ([TreeNode]) async throws -> Void) async throws -> Bool
    /// The ancestors of an organization, parent first.
    func ancestors(of id: UUID, actor: Actor) async throws -> [OrganizationRecord]

    /// Stores a new unit: its organization must be live, its parent unit live and of the same organization.
    func insertUnit(_ data: UnitData, actor: Actor, write: WriteOptions<UnitRecord>) async throws -> WriteOutcome<UnitRecord>
    /// A unit by id, deleted or not.
    func fetchUnit(id: UUID, actor: Actor) async throws -> UnitRecord?
    /// Replaces a unit's data (its organization never changes); a new parent unit is checked for cycles and depth.
    func replaceUnit(
        id: UUID, expectedVersion: Int64, data: UnitData, changedFields: [String], actor: Actor, write: WriteOptions<UnitRecord>
    ) async throws -> WriteOutcome<UnitRecord>
    /// Soft-deletes (refused while live sub-units remain) or restores (refused under a deleted parent) a unit.
    func setUnitDeleted(
        id: UUID, deleted: Bool, expectedVersion: Int64?, actor: Actor, write: WriteOptions<UnitRecord>
    ) async throws -> WriteOutcome<UnitRecord>
    /// Lists units of an organization in name order.
    func listUnits(_ query: UnitQuery, actor: Actor) async throws -> Rows<UnitRecord>
}
