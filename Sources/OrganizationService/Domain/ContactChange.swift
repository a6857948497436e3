import FoundationEssentials

/// One event of the contacts feed, as the organization service applies it to its projection of contacts.
public struct ContactChange: Sendable, Hashable {
    /// What happened.
    public enum Kind: Sendable, Hashable {
        /// Created, updated, deleted or undeleted: the contact's state after the change.
        case state(displayName: String, deleted: Bool)
        /// Merged into `winner`: its memberships and group entries move to the winner.
        case merged(winner: UUID)
        /// A merge into `formerWinner` was reversed: what moved comes back.
        case unmerged(formerWinner: UUID)
        /// The person was erased (`request` is the erasure request): everything held about them goes, and a receipt
        /// is published.
        case erased(request: String)
    }

    public var tenantID: String
    public var contactID: UUID
    /// The contacts feed's per-tenant sequence number.
    public var sequence: Int64
    public var kind: Kind

    /// Creates a change.
    public init(tenantID: String, contactID: UUID, sequence: Int64, kind: Kind) {
        self.tenantID = tenantID
        self.contactID = contactID
        self.sequence = sequence
        self.kind = kind
    }
}

/// What the service published after erasing a person.
public struct ErasureReceiptData: Sendable, Hashable {
    /// The person.
    public var contactID: UUID
    /// The erasure request, from the contacts feed's ERASED event.
    public var erasureRequestID: String
    /// Memberships removed.
    public var membershipsRemoved: Int
    /// Group entries removed.
    public var groupEntriesRemoved: Int
    /// Stored change events reduced to their resource id.
    public var changesRedacted = 0
    /// Stored idempotent responses deleted.
    public var storedResponsesRemoved = 0
}
