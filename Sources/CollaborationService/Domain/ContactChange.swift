import FoundationEssentials

/// One event of the contacts feed that the collaboration service follows.
public struct ContactChange: Sendable, Hashable {
    /// What happened.
    public enum Kind: Sendable, Hashable {
        /// Merged into `winner`: notes, files, comments and meetings about the loser move to the winner.
        case merged(winner: UUID)
        /// A merge into `formerWinner` was reversed: what the merge moved and nobody moved since comes back
        /// (``MergeLog/restored(before:after:current:loser:winner:)``).
        case unmerged(formerWinner: UUID)
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

/// How an unmerge puts back what a merge moved, pure.
public enum MergeLog {
    /// What a list (a note's or file's subjects, a meeting's contacts) becomes when the merge of `loser` into `winner`
    /// is reversed, or nil to leave it: unchanged since the merge, it gets its list from before back exactly; changed
    /// since but still naming the winner and not the loser, it gets the loser back beside the winner if the winner
    /// was there before the merge, in the winner's place otherwise; one that no longer names the winner, or names the
    /// loser again, is left as it is.
    public static func restored<E: Equatable>(before: [E], after: [E], current: [E], loser: E, winner: E) -> [E]? {
        if current == after { return before == current ? nil : before }
        guard current.contains(winner), !current.contains(loser) else { return nil }
        if before.contains(winner) { return current + [loser] }
        return current.map { $0 == winner ? loser : $0 }
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
