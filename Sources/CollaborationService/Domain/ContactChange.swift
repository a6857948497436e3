import FoundationEssentials

/// One event of the contacts feed that the collaboration service follows.
public struct ContactChange: Sendable, Hashable {
    /// What happened.
    public enum Kind: Sendable, Hashable {
        /// Merged into `winner`: notes, files, comments and meetings about the loser move to the winner.
        case merged(winner: UUID)
        /// Erased: what was only about the person is deleted; the person leaves everything else.
        case erased
    }

    /// The tenant.
    public var tenantID: String
    /// The contact.
    public var contactID: UUID
    /// What happened.
    public var kind: Kind

    /// Creates a change.
    public init(tenantID: String, contactID: UUID, kind: Kind) {
        self.tenantID = tenantID
        self.contactID = contactID
        self.kind = kind
    }
}
