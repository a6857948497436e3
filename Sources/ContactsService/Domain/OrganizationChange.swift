import FoundationEssentials

/// A change the organization feed brings to the projections that put organization names into contact search.
public struct OrganizationChange: Sendable, Equatable {
    /// What changed.
    public enum Kind: Sendable, Equatable {
        /// An organization's name, and whether it is deleted.
        case organization(id: UUID, name: String, deleted: Bool)
        /// A membership as it now is (`endDate` "YYYY-MM-DD" or empty while it lasts).
        case membership(id: UUID, contactID: UUID, organizationID: UUID, endDate: String)
        /// A membership removed.
        case membershipRemoved(id: UUID)
    }

    /// The tenant.
    public var tenantID: String
    /// The organization feed's sequence of the event.
    public var sequence: Int64
    /// What changed.
    public var kind: Kind

    /// Creates a change.
    public init(tenantID: String, sequence: Int64, kind: Kind) {
        self.tenantID = tenantID
        self.sequence = sequence
        self.kind = kind
    }
}
