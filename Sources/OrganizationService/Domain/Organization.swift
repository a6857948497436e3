import FoundationEssentials
import SwitchboardProtos
import SwitchboardServiceKit

/// An amount of money in a currency.
public struct Money: Sendable, Hashable {
    /// ISO 4217 code, upper-case.
    public var currencyCode: String
    /// Whole units.
    public var units: Int64
    /// Nano units, with the sign of `units`.
    public var nanos: Int32

    /// Creates an amount.
    public init(currencyCode: String, units: Int64, nanos: Int32) {
        self.currencyCode = currencyCode
        self.units = units
        self.nanos = nanos
    }
}

/// A postal address.
public struct PostalAddress: Sendable, Hashable {
    public var label = "", lines: [String] = [], locality = "", administrativeArea = "", postalCode = "", regionCode = ""
    /// An empty address.
    public init() {}
}

/// Head count bands (the values of `switchboard.organization.v1.SizeBand`).
public enum SizeBand: Int, Sendable, Hashable, CaseIterable {
    case oneToTen = 1, elevenToFifty, fiftyOneTo200, twoHundredOneTo1000, thousandOneTo5000, over5000
}

/// Everything about an organization that callers set.
public struct OrganizationData: Sendable, Hashable {
    public var name = ""
    /// Lower-cased domains, unique per tenant among live organizations.
    public var domains: [String] = []
    public var industry = ""
    public var size: SizeBand?
    public var annualRevenue: Money?
    public var addresses: [PostalAddress] = []
    public var tags: [String] = []
    public var ownerID = ""
    public var customFields: [String: JSON] = [:]
    /// The parent organization; nil at the top.
    public var parentID: UUID?
    /// Empty data.
    public init() {}
}

/// A stored organization.
public struct OrganizationRecord: Sendable, Hashable {
    public var id: UUID
    public var data: OrganizationData
    /// Incremented by every change; the etag is derived from it.
    public var version: Int64
    public var createdAt: Date
    public var createdBy: String
    public var updatedAt: Date
    public var updatedBy: String
    public var deletedAt: Date?

    /// The etag clients pass back for conditional updates.
    public var etag: String { "\"\(version)\"" }
}

/// One organization of a tree: its depth below the root and the ids from the root to it.
public struct TreeNode: Sendable, Hashable {
    public var record: OrganizationRecord
    public var depth: Int
    public var path: [UUID]
}

/// What can go wrong in the organization domain; handlers map each case to a gRPC status.
public enum OrganizationError: Error, Sendable, Equatable {
    case invalid([Violation])
    /// No such (live) resource: its kind ("organization", "unit", …) and id.
    case notFound(kind: String, id: String)
    case domainTaken(domain: String, existingOrganizationID: UUID)
    case etagMismatch(current: String)
    case fieldExists(key: String)
    case fieldNotFound(key: String)
    case tooManyFields(limit: Int)
    /// The parent change would put the organization (or unit) below itself.
    case cycle(kind: String, id: String, parentID: String)
    /// The hierarchy would be deeper than ``OrganizationRules/maxHierarchyDepth``.
    case tooDeep(limit: Int)
    /// The organization still has live child organizations.
    case hasChildren(kind: String, id: String)
    /// The parent is deleted: restore it first.
    case parentDeleted(kind: String, id: String)
    /// A membership role with this key exists.
    case roleExists(key: String)
    /// The tenant has as many membership roles as it may.
    case tooManyRoles(limit: Int)
    /// The organization already has `limit` current memberships holding `role`.
    case roleLimitReached(role: String, limit: Int, organizationID: String)
}
