import FoundationEssentials
import SwitchboardServiceKit

/// The contacts use cases: validation and rules here, persistence behind ``ContactStore``.
public struct ContactsDomain: Sendable {
    let store: any ContactStore
    let limits: ContactsLimits
    /// Where searches with facets wait for their turn (``ContactsLimits/facetSearchesAtOnce``).
    let facetSearchGate: CallGate
    /// Largest page.
    public static let maxPageSize = 500
    /// Page size when the caller gives none.
    public static let defaultPageSize = 50

    /// Creates the domain over a store.
    public init(store: any ContactStore, limits: ContactsLimits = ContactsLimits()) {
        self.store = store
        self.limits = limits
        self.facetSearchGate = CallGate(
            name: "contacts_facet_searches", limit: limits.facetSearchesAtOnce,
            timeout: .milliseconds(limits.facetSearchWaitMilliseconds ?? limits.searchTimeoutMilliseconds))
    }

    /// Creates a contact.
    public func create(_ data: ContactData, actor: Actor, write: WriteOptions<ContactRecord>) async throws -> WriteOutcome<ContactRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var data = data
        if data.ownerID.isEmpty { data.ownerID = actor.userID }
        let definitions = try await store.fieldDefinitions(actor: actor, includeRetired: true)
        try ContactRules.validate(&data, definitions: definitions, requireAllRequiredFields: true, maxContactBytes: limits.maxContactBytes)
        return try await store.insert(data, actor: actor, write: write)
    }

    /// Most emails and phones one lookup may ask for, together.
    public static let maxLookupValues = 100
    /// Most contact ids returned for one value (a shared phone number).
    public static let maxLookupMatches = 20

    /// The live contacts holding each email address (case-insensitively) and each phone number (by its E.164 form),
    /// one match per value in the order asked. A value that is not an email address or an international phone number
    /// is INVALID_ARGUMENT naming it.
    public func lookup(emails: [String], phones: [String], actor: Actor) async throws -> (emails: [ContactMatch], phones: [ContactMatch]) {
        let count = emails.count + phones.count
        guard count > 0 else {
            throw ContactsError.invalid([Violation("emails", "give at least one email address or phone number", reason: "REQUIRED")])
        }
        guard count <= Self.maxLookupValues else {
            throw ContactsError.invalid([
                Violation("emails", "at most \(Self.maxLookupValues) emails and phones together (\(count) given)", reason: "TOO_MANY")
            ])
        }
        var violations: [Violation] = []
        let addresses = emails.enumerated().map { i, email in
            let address = email.trimmingSpaces
            guard ContactRules.isValidEmail(address) else {
                violations.append(Violation("emails[\(i)]", "\(ContactRules.excerpt(email)) is not an email address", reason: "INVALID_FORMAT"))
                return ""
            }
            return address.lowercased()
        }
        let numbers = phones.enumerated().map { i, phone in
            // The same bound as a stored number's, before any work on the text.
            guard phone.utf8.count <= 64, let e164 = ContactRules.normalizePhone(phone) else {
                violations.append(
                    Violation(
                        "phones[\(i)]", "\(ContactRules.excerpt(phone)) is not a phone number with its country code (e.g. +49 30 1234567)",
                        reason: "INVALID_FORMAT"))
                return ""
            }
            return e164
        }
        guard violations.isEmpty else { throw ContactsError.invalid(violations) }
        let found = try await store.lookup(
            emails: Array(Set(addresses)).sorted(), phones: Array(Set(numbers)).sorted(), limit: Self.maxLookupMatches, actor: actor)
        func match(_ query: String, _ normalized: String, _ ids: [UUID]?) -> ContactMatch {
            let ids = ids ?? []
            return ContactMatch(
                query: query, normalized: normalized, contactIDs: Array(ids.prefix(Self.maxLookupMatches)),
                truncated: ids.count > Self.maxLookupMatches)
        }
        return (
            zip(emails, addresses).map { match($0, $1, found.emails[$1]) },
            zip(phones, numbers).map { match($0, $1, found.phones[$1]) }
        )
    }

    /// Most contacts one batch may create.
    public static let maxBatchItems = 1000

    /// Creates contacts in one transaction. `items` are the contacts as mapped from the request (a mapping failure is
    /// that item's). Each item is validated as CreateContact validates it, its violations named `contacts[i]…`; with
    /// `allOrNothing` any failure fails the batch and nothing is stored.
    public func batchCreate(
        _ items: [Result<ContactData, ContactsError>], allOrNothing: Bool, actor: Actor, write: WriteOptions<[ContactBatchResult]>
    ) async throws -> WriteOutcome<[ContactBatchResult]> {
        guard !items.isEmpty else { throw ContactsError.invalid([Violation("contacts", "give at least one contact", reason: "REQUIRED")]) }
        guard items.count <= Self.maxBatchItems else {
            throw ContactsError.invalid([
                Violation("contacts", "at most \(Self.maxBatchItems) contacts per batch (\(items.count) given)", reason: "TOO_MANY")
            ])
        }
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let definitions = try await store.fieldDefinitions(actor: actor, includeRetired: true)
        var batch: [ContactData] = []
        var results: [ContactBatchResult?] = []
        for (i, item) in items.enumerated() {
            do {
                var data = try item.get()
                if data.ownerID.isEmpty { data.ownerID = actor.userID }
                try ContactRules.validate(
                    &data, definitions: definitions, prefix: "contacts[\(i)]", requireAllRequiredFields: true,
                    maxContactBytes: limits.maxContactBytes)
                batch.append(data)
                results.append(nil)
            } catch let error as ContactsError {
                batch.append(ContactData())
                results.append(.failed(error))
            }
        }
        // Checked before anything is stored: past the response limit the batch would commit and its caller see an error.
        let bytes = zip(batch, results).reduce(0) { $0 + ($1.1 == nil ? ContactRules.estimatedSize($1.0) : 0) }
        guard bytes <= limits.maxBatchBytes else {
            throw ContactsError.invalid([
                Violation(
                    "contacts", "the contacts take about \(bytes) bytes, more than the \(limits.maxBatchBytes) a batch may hold; split the batch",
                    reason: "TOO_LARGE")
            ])
        }
        if allOrNothing {
            let violations = results.flatMap { result -> [Violation] in
                if case .failed(.invalid(let violations))? = result { return violations }
                return []
            }
            if !violations.isEmpty { throw ContactsError.invalid(violations) }
        }
        return try await store.insert(batch: batch, results: results, allOrNothing: allOrNothing, actor: actor, write: write)
    }

    /// One update of a batch, as mapped from the request.
    public struct UpdateItem: Sendable {
        /// The contact.
        public var id: UUID
        /// The new values of the fields in `paths`.
        public var source: ContactData
        /// The update mask's paths.
        public var paths: [String]
        /// The etag the contact must still have; empty for any.
        public var etag: String

        /// Creates the item.
        public init(id: UUID, source: ContactData, paths: [String], etag: String) {
            self.id = id
            self.source = source
            self.paths = paths
            self.etag = etag
        }
    }

    /// Updates contacts in one transaction, each as ``update(id:from:paths:etag:actor:write:)`` would (violations named
    /// `requests[i]…`), in order.
    public func batchUpdate(
        _ items: [Result<UpdateItem, ContactsError>], allOrNothing: Bool, actor: Actor, write: WriteOptions<[ContactBatchResult]>
    ) async throws -> WriteOutcome<[ContactBatchResult]> {
        try Self.checkBatch(count: items.count, field: "requests")
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let (ids, results) = try Self.predecide(items.map { $0.map(\.id) }, allOrNothing: allOrNothing)
        let definitions = try await store.fieldDefinitions(actor: actor, includeRetired: true)
        let maxContactBytes = limits.maxContactBytes
        return try await store.modify(ids: ids, results: results, allOrNothing: allOrNothing, actor: actor, write: write) { index, current in
            let item = try items[index].get()
            let prefix = "requests[\(index)]"
            do {
                if !item.etag.isEmpty, item.etag != current.etag { throw ContactsError.etagMismatch(current: current.etag) }
                var data = current.data
                let changed = try ContactRules.apply(paths: item.paths, from: item.source, to: &data)
                try ContactRules.validate(
                    &data, definitions: definitions, prefix: "\(prefix).contact", requireAllRequiredFields: false, maxContactBytes: maxContactBytes,
                    storedFields: current.data.customFields)
                if data.ownerID.isEmpty {
                    throw ContactsError.invalid([Violation("\(prefix).contact.owner_id", "must not be empty", reason: "REQUIRED")])
                }
                return .replace(data, changedFields: changed)
            } catch let error as ContactsError {
                throw error.prefixed(prefix)
            }
        }
    }

    /// Soft-deletes contacts in one transaction, each as ``setDeleted(id:deleted:etag:actor:write:)`` would, in order.
    public func batchDelete(
        _ items: [Result<(id: UUID, etag: String), ContactsError>], allOrNothing: Bool, actor: Actor, write: WriteOptions<[ContactBatchResult]>
    ) async throws -> WriteOutcome<[ContactBatchResult]> {
        try Self.checkBatch(count: items.count, field: "requests")
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let (ids, results) = try Self.predecide(items.map { $0.map(\.id) }, allOrNothing: allOrNothing)
        return try await store.modify(ids: ids, results: results, allOrNothing: allOrNothing, actor: actor, write: write) { index, current in
            let etag = try items[index].get().etag
            if !etag.isEmpty, etag != current.etag { throw ContactsError.etagMismatch(current: current.etag) }
            return .delete
        }
    }

    private static func checkBatch(count: Int, field: String) throws {
        guard count > 0 else { throw ContactsError.invalid([Violation(field, "give at least one", reason: "REQUIRED")]) }
        guard count <= maxBatchItems else {
            throw ContactsError.invalid([Violation(field, "at most \(maxBatchItems) per batch (\(count) given)", reason: "TOO_MANY")])
        }
    }

    /// The ids of the items that mapped, and the failures of those that did not; with `allOrNothing`, any failure is
    /// thrown (every item's violations together).
    private static func predecide(
        _ items: [Result<UUID, ContactsError>], allOrNothing: Bool
    ) throws -> (ids: [UUID?], results: [ContactBatchResult?]) {
        var ids: [UUID?] = []
        var results: [ContactBatchResult?] = []
        var violations: [Violation] = []
        for item in items {
            switch item {
            case .success(let id):
                ids.append(id)
                results.append(nil)
            case .failure(let error):
                ids.append(nil)
                results.append(.failed(error))
                if case .invalid(let v) = error { violations += v } else if allOrNothing { throw error }
            }
        }
        if allOrNothing, !violations.isEmpty { throw ContactsError.invalid(violations) }
        return (ids, results)
    }

    /// A live contact (or a deleted one when asked).
    public func get(id: UUID, includeDeleted: Bool, actor: Actor) async throws -> ContactRecord {
        guard let record = try await store.fetch(id: id, actor: actor), includeDeleted || record.deletedAt == nil else {
            throw ContactsError.notFound(id.uuidString.lowercased())
        }
        return record
    }

    /// Updates the fields named by `paths`, if `etag` (when given) still matches.
    public func update(
        id: UUID, from source: ContactData, paths: [String], etag: String, actor: Actor, write: WriteOptions<ContactRecord>
    ) async throws -> WriteOutcome<ContactRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let current = try await get(id: id, includeDeleted: false, actor: actor)
        if !etag.isEmpty, etag != current.etag { throw ContactsError.etagMismatch(current: current.etag) }
        var data = current.data
        let changed = try ContactRules.apply(paths: paths, from: source, to: &data)
        let definitions = try await store.fieldDefinitions(actor: actor, includeRetired: true)
        try ContactRules.validate(
            &data, definitions: definitions, requireAllRequiredFields: false, maxContactBytes: limits.maxContactBytes,
            storedFields: current.data.customFields)
        if data.ownerID.isEmpty {
            throw ContactsError.invalid([Violation("contact.owner_id", "must not be empty", reason: "REQUIRED")])
        }
        // Nothing changes (the fields as they were, once normalised): no new version, etag or UPDATED event.
        if data == current.data { return .fresh(current) }
        return try await store.replace(
            id: id, expectedVersion: current.version, data: data, changedFields: changed, actor: actor, write: write)
    }

    /// Merges `loserID` into `winnerID` (see ``MergeRules``), if the etags (when given) still match.
    public func merge(
        winnerID: UUID, loserID: UUID, winnerETag: String, loserETag: String, actor: Actor, write: WriteOptions<ContactRecord>
    ) async throws -> WriteOutcome<ContactRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        guard winnerID != loserID else {
            throw ContactsError.invalid([Violation("loser_id", "must not be the winner", reason: "INVALID")])
        }
        let winner = try await get(id: winnerID, includeDeleted: true, actor: actor)
        if let root = winner.mergedInto {
            throw ContactsError.mergedAway(
                id: winnerID.uuidString.lowercased(), into: root.uuidString.lowercased(), action: "merge into that contact instead")
        }
        guard winner.deletedAt == nil else { throw ContactsError.notFound(winnerID.uuidString.lowercased()) }
        let loser = try await get(id: loserID, includeDeleted: false, actor: actor)
        if !winnerETag.isEmpty, winnerETag != winner.etag { throw ContactsError.etagMismatch(current: winner.etag) }
        if !loserETag.isEmpty, loserETag != loser.etag { throw ContactsError.etagMismatch(current: loser.etag) }
        var (data, added, changed) = MergeRules.combine(winner: winner.data, loser: loser.data)
        let definitions = try await store.fieldDefinitions(actor: actor, includeRetired: true)
        // Values both contacts hold as stored are not checked again (a retired field's value moves with its contact).
        let stored = winner.data.customFields.merging(loser.data.customFields) { mine, _ in mine }
        do {
            try ContactRules.validate(
                &data, definitions: definitions, requireAllRequiredFields: false, maxContactBytes: limits.maxContactBytes, storedFields: stored)
        } catch ContactsError.invalid(let violations) {
            throw ContactsError.mergeRefused(violations)
        }
        return try await store.merge(winner: winner, loser: loser, data: data, added: added, changedFields: changed, actor: actor, write: write)
    }

    /// Reverses the latest merge of a contact.
    public func unmerge(id: UUID, actor: Actor, write: WriteOptions<ContactRecord>) async throws -> WriteOutcome<ContactRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        return try await store.unmerge(id: id, actor: actor, write: write) { winner, added in MergeRules.strip(winner, added: added) }
    }

    /// Soft-deletes (`deleted`) or restores a contact.
    public func setDeleted(
        id: UUID, deleted: Bool, etag: String, actor: Actor, write: WriteOptions<ContactRecord>
    ) async throws -> WriteOutcome<ContactRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let current = try await get(id: id, includeDeleted: true, actor: actor)
        if deleted, current.deletedAt != nil { throw ContactsError.notFound(id.uuidString.lowercased()) }
        if !deleted, let winner = current.mergedInto {
            throw ContactsError.mergedAway(
                id: id.uuidString.lowercased(), into: winner.uuidString.lowercased(), action: "UnmergeContact restores it")
        }
        if !etag.isEmpty, etag != current.etag { throw ContactsError.etagMismatch(current: current.etag) }
        return try await store.setDeleted(
            id: id, deleted: deleted, expectedVersion: etag.isEmpty ? nil : current.version, actor: actor, write: write)
    }

    /// A page of contacts and the token for the next one.
    ///
    /// A page ends at `pageSize` contacts or before the contact that would take the contacts' encoded size past
    /// ``ContactsLimits/pageBytes`` (a first contact always fits), so no page outgrows the response limit however
    /// large its rows; the token continues after the last contact returned.
    /// - Parameters:
    ///   - encodedSize: the bytes a contact adds to the response.
    public func list(
        _ query: ContactQuery, pageSize: Int, pageToken: String, actor: Actor, encodedSize: (ContactRecord) -> Int
    ) async throws -> ([ContactRecord], String) {
        var query = query
        guard pageSize >= 0 else { throw ContactsError.invalid([Violation("page.page_size", "must not be negative")]) }
        query.limit = pageSize == 0 ? Self.defaultPageSize : min(pageSize, Self.maxPageSize)
        query.maxBytes = limits.pageBytes
        let fingerprint = Self.fingerprint(of: query)
        // Tokens are not signed: the cursor is client input, checked before it reaches SQL.
        if let cursor = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 2) {
            guard let id = UUID(uuidString: cursor[1]), case let after = ContactCursor(key: cursor[0], id: id), after.isValid(for: query.order) else {
                throw ContactsError.invalid([Violation("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")])
            }
            query.after = after
        }
        let rows = try await store.list(query, actor: actor)
        var page: [ContactRecord] = []
        var bytes = 0
        for record in rows.records {
            let size = encodedSize(record)
            if !page.isEmpty, size > limits.pageBytes - bytes { break }
            page.append(record)
            bytes += size
        }
        var next = ""
        if let last = page.last, rows.more || page.count < rows.records.count {
            let key: String
            switch query.order {
            case .createTime: key = String(ContactCursor.microseconds(last.createdAt))
            case .updateTime: key = String(ContactCursor.microseconds(last.updatedAt))
            case .familyName: key = last.data.name.family
            }
            next = PageToken(cursor: [key, last.id.uuidString.lowercased()], fingerprint: fingerprint).encoded
        }
        return (page, next)
    }

    /// Defines a custom field.
    public func define(
        _ definition: FieldDefinition, actor: Actor, write: WriteOptions<FieldDefinition>
    ) async throws -> WriteOutcome<FieldDefinition> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var definition = definition
        definition.retired = false
        try ContactRules.validate(definition)
        return try await store.define(definition, actor: actor, write: write)
    }

    /// Retires a custom field.
    public func retire(key: String, actor: Actor, write: WriteOptions<FieldDefinition>) async throws -> WriteOutcome<FieldDefinition> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        return try await store.retire(key: key, actor: actor, write: write)
    }
}

extension ContactCursor {
    /// The microseconds since 1970 a time cursor holds: whole microseconds are what PostgreSQL stores, and a
    /// double of seconds would lose the last digit. Saturates rather than trapping (stored times are in range).
    static func microseconds(_ date: Date) -> Int64 {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        if let exact = Int64(exactly: micros) { return exact }
        return micros < 0 ? .min : .max
    }

    /// Microseconds of the times a stored contact can have (those of a valid google.protobuf.Timestamp).
    static let validMicroseconds: ClosedRange<Int64> = -62_135_596_800_000_000...253_402_300_799_999_999

    /// Whether a decoded cursor (client-supplied bytes: tokens are not signed) is one this service could have
    /// issued for `order`, so nothing out of range reaches SQL.
    func isValid(for order: ContactOrder) -> Bool {
        switch order {
        case .familyName: return ContactRules.nameLimit.allows(key)
        case .createTime, .updateTime: return Int64(key).map(Self.validMicroseconds.contains) ?? false
        }
    }
}

extension ContactsDomain {
    /// The fingerprint a page token carries: the filters and order of the query it continues.
    static func fingerprint(of query: ContactQuery) -> UInt64 {
        var q = query
        q.after = nil
        q.limit = 0
        let parts: [String] = [
            q.statuses.map { String($0.rawValue) }.joined(separator: ","), q.kinds.map { String($0.rawValue) }.joined(separator: ","),
            q.tag ?? "", q.ownerID ?? "", "\(q.createdAfter?.timeIntervalSince1970 ?? 0)", "\(q.createdBefore?.timeIntervalSince1970 ?? 0)",
            "\(q.updatedAfter?.timeIntervalSince1970 ?? 0)", "\(q.updatedBefore?.timeIntervalSince1970 ?? 0)", q.order.rawValue,
            "\(q.descending)", "\(q.includeDeleted)",
        ]
        return PageToken.fingerprint(parts)
    }
}
