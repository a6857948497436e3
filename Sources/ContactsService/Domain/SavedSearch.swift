import FoundationEssentials
import SwitchboardServiceKit

/// A saved search: a name, who may see it, and the search itself as the contract's bytes (a SearchContactsRequest
/// without page), which the handlers encode and decode.
public struct SavedSearchRecord: Sendable, Hashable {
    /// The id.
    public var id: UUID
    /// The name.
    public var name: String
    /// Shared with the tenant; otherwise only its owner sees it.
    public var shared: Bool
    /// Who created it.
    public var ownerID: String
    /// The search's bytes.
    public var search: [UInt8]
    /// When it was created.
    public var createdAt: Date

    /// Creates a record.
    public init(id: UUID, name: String, shared: Bool, ownerID: String, search: [UInt8], createdAt: Date) {
        self.id = id
        self.name = name
        self.shared = shared
        self.ownerID = ownerID
        self.search = search
        self.createdAt = createdAt
    }
}

/// Saved searches' rules.
public enum SavedSearchRules {
    /// Longest name.
    public static let nameLimit = TextLimit(characters: 200, bytes: 800)
    /// Most saved searches one user owns.
    public static let maxPerOwner = 100
    /// Largest page of a list.
    public static let maxPageSize = 100
}

extension ContactsDomain {
    /// Saves a search for the caller.
    public func saveSearch(
        name: String, shared: Bool, search: [UInt8], actor: Actor, write: WriteOptions<SavedSearchRecord>
    ) async throws -> WriteOutcome<SavedSearchRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        let trimmed = name.trimmingSpaces
        if trimmed.isEmpty { throw ContactsError.invalid([Violation("saved_search.name", "is required", reason: "REQUIRED")]) }
        if !SavedSearchRules.nameLimit.allows(trimmed) {
            throw ContactsError.invalid([Violation("saved_search.name", SavedSearchRules.nameLimit.description, reason: "TOO_LONG")])
        }
        return try await store.insertSavedSearch(name: trimmed, shared: shared, search: search, actor: actor, write: write)
    }

    /// A saved search the caller may see (its own, or shared): NOT_FOUND otherwise.
    public func savedSearch(id: UUID, actor: Actor) async throws -> SavedSearchRecord {
        guard let found = try await store.savedSearch(id: id, actor: actor) else { throw ContactsError.savedSearchNotFound(id.lowercaseText) }
        return found
    }

    /// The caller's own and the tenant's shared saved searches, newest first.
    public func savedSearches(pageSize: Int, pageToken: String, actor: Actor) async throws -> ([SavedSearchRecord], String) {
        guard pageSize >= 0 else { throw ContactsError.invalid([Violation("page.page_size", "must not be negative")]) }
        let limit = pageSize == 0 ? 50 : min(pageSize, SavedSearchRules.maxPageSize)
        let fingerprint = PageToken.fingerprint(["saved-searches"])
        var after: (Int64, UUID)?
        if let cursor = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 2) {
            guard let micros = Int64(cursor[0]), ContactCursor.validMicroseconds.contains(micros), let id = UUID(uuidString: cursor[1]) else {
                throw ContactsError.invalid([Violation("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")])
            }
            after = (micros, id)
        }
        let rows = try await store.savedSearches(after: after, limit: limit + 1, actor: actor)
        let page = Array(rows.prefix(limit))
        var next = ""
        if rows.count > limit, let last = page.last {
            next =
                PageToken(cursor: [String(ContactCursor.microseconds(last.createdAt)), last.id.lowercaseText], fingerprint: fingerprint)
                .encoded
        }
        return (page, next)
    }

    /// Deletes a saved search: its owner, or an admin (`asAdmin`); PERMISSION_DENIED for anyone else who can see it,
    /// NOT_FOUND for whoever cannot.
    public func deleteSavedSearch(
        id: UUID, asAdmin: Bool, actor: Actor, write: WriteOptions<SavedSearchRecord>
    ) async throws -> WriteOutcome<SavedSearchRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        return try await store.deleteSavedSearch(id: id, asAdmin: asAdmin, actor: actor, write: write)
    }
}
