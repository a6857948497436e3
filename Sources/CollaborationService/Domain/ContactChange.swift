import FoundationEssentials

/// One event of the contacts feed that the collaboration service follows.
public struct ContactChange: Sendable, Hashable {
    /// What happened.
    public enum Kind: Sendable, Hashable {
        /// Merged into `winner`: notes, files, comments and meetings about the loser move to the winner.
        case merged(winner: UUID)
        /// Erased (by the erasure request `request`, which the receipt names): what was only about the person is
        /// deleted; the person leaves everything else.
        case erased(request: String)
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

/// What an erasure removed, published as the service's erasure receipt (no personal data).
public struct ErasureReceiptData: Sendable, Hashable {
    /// The person.
    public var contactID: UUID
    /// The erasure request, from the contacts feed's ERASED event.
    public var erasureRequestID: String
    /// Notes, files and comments only about the person, deleted.
    public var notesDeleted = 0, filesDeleted = 0, commentsDeleted = 0
    /// Notes, files and meetings the person left.
    public var notesChanged = 0, filesChanged = 0, meetingsChanged = 0
    /// Stored change events reduced to their resource id.
    public var changesRedacted = 0
    /// Stored idempotent responses deleted.
    public var storedResponsesRemoved = 0

    /// Creates an empty receipt.
    public init(contactID: UUID, erasureRequestID: String) {
        self.contactID = contactID
        self.erasureRequestID = erasureRequestID
    }
}
