/// The contacts service's size bounds that an operator may need to change (fixed per-field bounds live in
/// ``ContactRules``).
public struct ContactsLimits: Sendable, Hashable {
    /// The most a contact may take (``ContactRules/estimatedSize(_:)``).
    public var maxContactBytes = ContactRules.defaultMaxContactBytes
    /// The encoded bytes of contacts in one `ListContacts` page, and the stored bytes of one `WatchChanges` replay
    /// batch; a page always holds at least one contact, so a page is at most the larger of this and one contact.
    public var pageBytes = 1 << 20

    /// The most the contacts of one `BatchCreateContacts` may take together (``ContactRules/estimatedSize(_:)``, an
    /// overestimate): the response repeats every contact, and must fit the 4 MiB response limit with room to spare.
    public var maxBatchBytes = 3 << 20

    /// The statement timeout of one search (its page, terms and facets each): a search the indexes cannot narrow enough
    /// is RESOURCE_EXHAUSTED instead of holding a connection.
    public var searchTimeoutMilliseconds = 2000
    /// The most matches a relevance-ordered search of several words (or of one word of digits) ranks: the contacts
    /// holding the query's best-matching words first (a broad query ranks that many and no more). A word of letters
    /// alone ranks every match, by the name-word indexes.
    public var searchRankedMatches = 2000
    /// The most matches facets count; beyond it the facets say `partial`.
    public var searchFacetMatches = 10_000
    /// The contacts (deleted ones included), in id order, among which a one-word search first reads those holding a
    /// candidate word outside their names (before reading all of the word's holders): a word held that way by one
    /// contact in ten fills a page there.
    public var searchWordTierWalk = 256
    /// Searches with facets that run at once (while another tenant's waits, one tenant's at most half, rounded up); the
    /// others wait their turn in order, at most ``facetSearchWaitMilliseconds``, then are RESOURCE_EXHAUSTED. Counting
    /// facets costs the database CPU, not waiting: more at once than it has cores to spare only makes each slower (see
    /// ``CallGate``).
    public var facetSearchesAtOnce = 4
    /// The longest a search with facets waits for its turn; nil: ``searchTimeoutMilliseconds``.
    public var facetSearchWaitMilliseconds: Int?

    /// The most contacts one BulkTagContacts changes (one transaction).
    public var bulkTagMaxContacts = BulkTagRules.maxContacts

    /// The bounds of one import (record, line and field sizes, rows per call, rows per transaction).
    public var importLimits = ImportLimits()

    /// Days an import's ledger is kept (from its start): re-sending it later creates its contacts again.
    public var importRetentionDays = 30
    /// Hours an erasure's receipts have before it is overdue.
    public var erasureDeadlineHours = 24

    /// The most relationships one contact may have (CreateRelationship's bound; a merge may pass it).
    public var maxRelationshipsPerContact = 1000

    /// Contacts one ExportContacts response chunk holds about this many bytes of.
    public var exportChunkBytes = 256 * 1024

    /// The defaults: 256 KiB contacts, 1 MiB pages, 3 MiB batches (the response limit is 4 MiB).
    public init() {}
}
