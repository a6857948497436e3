import FoundationEssentials
import SwitchboardServiceKit

/// What a unit is (the values of `switchboard.organization.v1.UnitKind`).
public enum UnitKind: Int, Sendable, Hashable, CaseIterable {
    case department = 1, team = 2, other = 3
}

/// Everything about a unit that callers set.
public struct UnitData: Sendable, Hashable {
    /// The organization; fixed at create.
    public var organizationID: UUID
    /// The enclosing unit of the same organization; nil at the top.
    public var parentUnitID: UUID?
    public var name: String
    public var kind: UnitKind

    /// Creates unit data.
    public init(organizationID: UUID, parentUnitID: UUID? = nil, name: String, kind: UnitKind = .department) {
        self.organizationID = organizationID
        self.parentUnitID = parentUnitID
        self.name = name
        self.kind = kind
    }
}

/// A stored unit.
public struct UnitRecord: Sendable, Hashable {
    public var id: UUID
    public var data: UnitData
    public var version: Int64
    public var createdAt: Date
    public var createdBy: String
    public var updatedAt: Date
    public var updatedBy: String
    public var deletedAt: Date?

    /// The etag clients pass back for conditional updates.
    public var etag: String { "\"\(version)\"" }
}
