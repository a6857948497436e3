import FoundationEssentials
import SwitchboardServiceKit

/// Sort orders for listing.
public enum ContactOrder: String, Sendable {
    case createTime = "c", updateTime = "u", familyName = "f"
}

/// Where the previous page ended (keyset pagination).
public struct ContactCursor: Sendable, Hashable {
    /// The last row's sort key (a timestamp in microseconds since 1970, or a family name).
    public var key: String
    /// The last row's id, breaking ties.
    public var id: UUID
}

/// Filters, order and page of a list.
public struct ContactQuery: Sendable, Hashable {
    public var statuses: [ContactStatus] = []
    public var kinds: [ContactKind] = []
    public var tag: String?
    public var ownerID: String?
    public var createdAfter: Date?
    public var createdBefore: Date?
    public var updatedAfter: Date?
    public var updatedBefore: Date?
    public var order: ContactOrder = .createTime
    public var descending = false
    public var includeDeleted = false
    public var after: ContactCursor?
    public var limit = 50
    /// Stop reading rows once they hold about this many bytes (at least one row is read): bounds a page's memory
    /// and work before its exact encoded size is known.
    public var maxBytes = 1 << 20
    public init() {}
}

/// Rows of a list, in order.
public struct ContactRows: Sendable {
    /// At most `query.limit` rows.
    public var records: [ContactRecord]
    /// Whether more rows match after the last one (cut by the count or the byte budget).
    public var more: Bool

    /// Creates the rows.
    public init(records: [ContactRecord], more: Bool) {
        self.records = records
        self.more = more
    }
}

/// One value of a lookup and the contacts holding it.
public struct ContactMatch: Sendable, Hashable {
    /// The value as asked.
    public var query: String
    /// The form it was matched by: a lower-cased address or an E.164 number.
    public var normalized: String
    /// Live contacts holding it, ascending, at most ``ContactsDomain/maxLookupMatches``.
    public var contactIDs: [UUID]
    /// More contacts hold it than `contactIDs` lists.
    public var truncated: Bool
}

/// One item of a batch: the contact as stored, or why not.
public enum ContactBatchResult: Sendable {
    /// Stored: the contact as created, updated or deleted.
    case succeeded(ContactRecord)
    /// Not stored: invalid, or an address another contact holds.
    case failed(ContactsError)

    /// The contact's id, if it was stored.
    public var storedID: UUID? {
        if case .succeeded(let record) = self { return record.id }
        return nil
    }
}

/// What a batch does to one contact, decided from its current state.
public enum ContactModification: Sendable {
    /// New data, and the fields that changed (for the change event).
    case replace(ContactData, changedFields: [String])
    /// A soft delete.
    case delete
}

/// Persistence of contacts. Every call runs inside the actor's tenant; implementations must not see other
/// tenants' rows (the PostgreSQL store relies on row-level security for that, not only on its WHERE clauses).
public protocol ContactStore: Sendable {
    /// The first response of a request id, if the request was already made.
    func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]?
    /// The tenant's custom field definitions.
    func fieldDefinitions(actor: Actor, includeRetired: Bool) async throws -> [FieldDefinition]
    /// Stores a new contact; `ContactsError.emailTaken` when an address belongs to another live contact.
    func insert(_ data: ContactData, actor: Actor, write: WriteOptions<ContactRecord>) async throws -> WriteOutcome<ContactRecord>
    /// A contact by id, deleted or not.
    func fetch(id: UUID, actor: Actor) async throws -> ContactRecord?
    /// Changes contacts in one transaction, in order: each contact in `ids` (nil where `results` already holds the
    /// item's failure) is read and locked, `decide` turns it into a modification or throws the item's
    /// ``ContactsError``, and the modification is stored with its change event. A failure fails its item, or the whole
    /// batch (thrown) when `allOrNothing`.
    func modify(
        ids: [UUID?], results: [ContactBatchResult?], allOrNothing: Bool, actor: Actor, write: WriteOptions<[ContactBatchResult]>,
        decide: @Sendable (_ index: Int, _ current: ContactRecord) throws -> ContactModification
    ) async throws -> WriteOutcome<[ContactBatchResult]>
    /// Stores validated contacts in one transaction; `results` holds what validation already decided (nil for the
    /// items to store). An address another contact holds fails its item, or the whole batch (throwing
    /// `ContactsError.emailTaken`) when `allOrNothing`.
    func insert(
        batch: [ContactData], results: [ContactBatchResult?], allOrNothing: Bool, actor: Actor, write: WriteOptions<[ContactBatchResult]>
    ) async throws -> WriteOutcome<[ContactBatchResult]>
    /// Contacts by id, deleted ones left out.
    func fetch(ids: [UUID], actor: Actor) async throws -> [ContactRecord]
    /// The live contacts holding each lower-cased address and each E.164 number: per value, the ids in ascending order,
    /// at most `limit` + 1 of them (so the caller can tell more exist).
    func lookup(emails: [String], phones: [String], limit: Int, actor: Actor) async throws -> (emails: [String: [UUID]], phones: [String: [UUID]])
    /// Replaces a contact's data if its version is still `expectedVersion` (`ContactsError.etagMismatch` otherwise).
    func replace(
        id: UUID, expectedVersion: Int64, data: ContactData, changedFields: [String], actor: Actor,
        write: WriteOptions<ContactRecord>
    ) async throws -> WriteOutcome<ContactRecord>
    /// Soft-deletes or restores a contact.
    func setDeleted(
        id: UUID, deleted: Bool, expectedVersion: Int64?, actor: Actor, write: WriteOptions<ContactRecord>
    ) async throws -> WriteOutcome<ContactRecord>
    /// Lists contacts: up to `query.limit` rows, fewer when they pass `query.maxBytes`, and whether more follow.
    func list(_ query: ContactQuery, actor: Actor) async throws -> ContactRows
    /// Searches contacts: up to `search.limit` hits, fewer when they pass `search.maxBytes`, whether more follow, the
    /// terms the text matched and, when `search.facets` is not empty, the facet counts over every hit.
    func search(_ search: ContactSearch, actor: Actor) async throws -> ContactHits
    /// The most postal addresses a contact has among those the search matches (its text and filters, as an export's
    /// pages find them), so a CSV export of its matches has a column group for every address and no more.
    func mostAddresses(_ search: ContactSearch, actor: Actor) async throws -> Int
    /// Adds `add` and removes `remove` on every live contact `search` matches, in one transaction with a change event
    /// per contact changed; more than `limit` matches change nothing (``ContactsError/tooManyMatches(count:limit:)``).
    func bulkTag(
        _ search: ContactSearch, add: [String], remove: [String], limit: Int, actor: Actor, write: WriteOptions<BulkTagResult>
    ) async throws -> WriteOutcome<BulkTagResult>
    /// Stores a saved search of the actor (at most ``SavedSearchRules/maxPerOwner`` each).
    func insertSavedSearch(
        name: String, shared: Bool, search: [UInt8], actor: Actor, write: WriteOptions<SavedSearchRecord>
    ) async throws -> WriteOutcome<SavedSearchRecord>
    /// A saved search the actor may see: its own, or a shared one.
    func savedSearch(id: UUID, actor: Actor) async throws -> SavedSearchRecord?
    /// The actor's own and the shared saved searches, newest first, after (created_at microseconds, id).
    func savedSearches(after: (Int64, UUID)?, limit: Int, actor: Actor) async throws -> [SavedSearchRecord]
    /// Deletes a saved search of the actor's, or any the actor can see when `asAdmin`.
    func deleteSavedSearch(
        id: UUID, asAdmin: Bool, actor: Actor, write: WriteOptions<SavedSearchRecord>
    ) async throws -> WriteOutcome<SavedSearchRecord>
    /// Adds a field definition (`ContactsError.fieldExists` if the key is taken, `ContactsError.tooManyFields` if the
    /// tenant has `ContactRules.maxFieldDefinitions` already).
    func define(_ definition: FieldDefinition, actor: Actor, write: WriteOptions<FieldDefinition>) async throws -> WriteOutcome<FieldDefinition>
    /// Starts an import call: records the import id with its options' fingerprint (not in a dry run; committed before
    /// any batch), refuses (``ContactsError/importOptionsChanged(importID:)``) an id already used with other options
    /// once it has written a row or while a batch of it is being written (an id that wrote nothing takes the new ones),
    /// and returns the highest row number its ledger holds (0 for an import not seen): a resumed import's batches up to
    /// it are compared with the ledger one at a time, so that a refused one leaves no later batch writing.
    func beginImport(_ settings: ImportSettings, actor: Actor) async throws -> Int
    /// Writes one batch of an import in one transaction: reads what earlier attempts of the import wrote and who holds
    /// the batch's addresses (and numbers, when matching phones), lets `plan` decide every row, then stores the
    /// creates and updates with their change events and records the rows written. Nothing is written in a dry run.
    /// Refuses (``ContactsError/importOptionsChanged(importID:)``) an import id already used with other options, and
    /// (``ContactsError/importInputChanged(importID:row:)``) a row whose record is not the one the ledger wrote under its
    /// number. The batch asks for its connection when `turn.connect` returns, says it holds one (`turn.connected`) and
    /// keeps it until it returns, every attempt included. The new contacts' rows go in first; `turn.write` returns when
    /// the batch may take addresses and write the rest (after the import's earlier batches have ended, so an earlier row
    /// keeps an address a later one also gives; under the update policy before it locks the contacts it reads). A batch
    /// that finds an address taken since it read runs again, and may call `plan` and `turn.write` again.
    func importBatch(
        _ rows: [ImportBatchRow], settings: ImportSettings, actor: Actor, turn: ImportTurn,
        plan: @Sendable ([ImportBatchRow], ImportExisting, Date) -> ImportPlan
    ) async throws -> [ImportRowResult]
    /// Merges `loser` into `winner` in one transaction, both still at the versions read: the winner gets `data`, the
    /// loser is deleted and points at the winner, the log keeps `added`; publishes UPDATED and MERGED. The winner as
    /// merged (`ContactsError.etagMismatch` when either changed since it was read).
    func merge(
        winner: ContactRecord, loser: ContactRecord, data: ContactData, added: ContactData, changedFields: [String], actor: Actor,
        write: WriteOptions<ContactRecord>
    ) async throws -> WriteOutcome<ContactRecord>
    /// Reverses the latest merge of contact `id` in one transaction: restores it, gives its former winner the data
    /// `strip` makes of it and what the merge added, and publishes UPDATED and UNMERGED. The restored contact
    /// (`notFound`, `notMerged`, or `emailTaken` for an address another contact holds meanwhile).
    func unmerge(
        id: UUID, actor: Actor, write: WriteOptions<ContactRecord>,
        strip: @Sendable (_ winner: ContactData, _ added: ContactData) -> (data: ContactData, changed: [String])
    ) async throws -> WriteOutcome<ContactRecord>
    /// Retires a field definition.
    func retire(key: String, actor: Actor, write: WriteOptions<FieldDefinition>) async throws -> WriteOutcome<FieldDefinition>

    /// Creates a relationship between two live contacts (`contactNotFound` naming the side that is not), unless either
    /// has `maxPerContact` already (`tooManyRelationships`) or the two have it by this type or its inverse
    /// (`relationshipExists`); publishes CREATED.
    func insertRelationship(
        contact: UUID, related: UUID, kind: RelationshipKind, strength: Int, note: String, maxPerContact: Int, actor: Actor,
        write: WriteOptions<RelationshipRecord>
    ) async throws -> WriteOutcome<RelationshipRecord>
    /// A relationship by id, as stated (one a merge set aside is not found).
    func relationship(id: UUID, actor: Actor) async throws -> RelationshipRecord?
    /// Writes `record`'s type, strength and note if it is still at `expectedVersion` (`relationshipETagMismatch`,
    /// `relationshipNotFound`, or `relationshipExists` for a type the two contacts have by another relationship);
    /// publishes UPDATED.
    func updateRelationship(
        _ record: RelationshipRecord, expectedVersion: Int64, changedFields: [String], actor: Actor, write: WriteOptions<RelationshipRecord>
    ) async throws -> WriteOutcome<RelationshipRecord>
    /// Deletes a relationship (at `expectedVersion` when given); publishes DELETED.
    func deleteRelationship(
        id: UUID, expectedVersion: Int64?, actor: Actor, write: WriteOptions<RelationshipRecord>
    ) async throws -> WriteOutcome<RelationshipRecord>
    /// A contact's relationships with live contacts, seen from it, newest first, after the page's `(created_at in
    /// microseconds, id)`; `kinds` as seen from the contact (empty: all).
    func relationships(
        of contact: UUID, kinds: [RelationshipKind], after: (Int64, UUID)?, limit: Int, actor: Actor
    ) async throws -> [RelationshipRecord]
    /// One step of a walk: the relationships from the `frontier` contacts to live contacts not in `excluding`, each seen
    /// from its frontier side (`near`), of `kinds` so seen (empty: all) and at least `minStrength`; at most `limit`, by
    /// the far contact's id.
    func relationshipStep(
        from frontier: [UUID], excluding: [UUID], kinds: [RelationshipKind], minStrength: Int, limit: Int, actor: Actor
    ) async throws -> [RelationshipEdge]
    /// The relationships with these ids, as stated (those a merge set aside left out).
    func relationships(ids: [UUID], actor: Actor) async throws -> [RelationshipRecord]
}
