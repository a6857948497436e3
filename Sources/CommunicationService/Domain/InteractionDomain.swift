import FoundationEssentials
import SwitchboardServiceKit

/// The interaction use cases: validation, visibility and ownership rules, etags and page tokens, over an
/// ``InteractionStore``.
public struct InteractionDomain: Sendable {
    let store: any InteractionStore
    /// The clock for the bounds of client times (the database stamps the rows themselves).
    let now: @Sendable () -> Date

    /// Creates the domain.
    /// - Parameters:
    ///   - store: the persistence.
    ///   - now: the clock used to bound client-supplied times.
    public init(store: any InteractionStore, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.now = now
    }

    /// Logs an interaction (idempotent by the write's request id). The owner defaults to the caller; only an admin
    /// may log an interaction owned by someone else.
    public func log(_ data: InteractionData, viewer: Viewer, write: WriteOptions<InteractionRecord>) async throws -> WriteOutcome<InteractionRecord> {
        if let replay = try await store.replay(write, actor: viewer.actor) { return .replayed(replay) }
        var data = data
        try InteractionRules.validate(&data, now: now())
        if data.ownerID.isEmpty { data.ownerID = viewer.actor.userID }
        if data.ownerID != viewer.actor.userID, !viewer.isAdmin {
            throw CommunicationError.forbidden("interaction.owner_id: only an admin may log an interaction for another user")
        }
        return try await store.insert(data, actor: viewer.actor, write: write)
    }

    /// An interaction the viewer may see (deleted ones only when asked).
    /// - Throws: ``CommunicationError/notFound(kind:id:)`` when absent, deleted (unless asked) or private to someone else.
    public func get(id: UUID, includeDeleted: Bool = false, viewer: Viewer) async throws -> InteractionRecord {
        guard let record = try await store.fetch(id: id, actor: viewer.actor), viewer.canSee(record),
            includeDeleted || record.deletedAt == nil
        else { throw CommunicationError.notFound(kind: "interaction", id: id.uuidString.lowercased()) }
        return record
    }

    /// Updates the fields named by `paths`; owner_id and visibility only by the owner or an admin.
    public func update(
        id: UUID, from source: InteractionData, paths: [String], etag: String, viewer: Viewer, write: WriteOptions<InteractionRecord>
    ) async throws -> WriteOutcome<InteractionRecord> {
        if let replay = try await store.replay(write, actor: viewer.actor) { return .replayed(replay) }
        let current = try await get(id: id, viewer: viewer)
        if !etag.isEmpty, etag != current.etag { throw CommunicationError.etagMismatch(current: current.etag) }
        var data = current.data
        let changed = try InteractionRules.apply(paths: paths, from: source, to: &data)
        if !InteractionRules.ownerOnlyPaths.isDisjoint(with: changed), current.data.ownerID != viewer.actor.userID, !viewer.isAdmin {
            throw CommunicationError.forbidden("only the owner or an admin may change owner_id or visibility")
        }
        if changed.contains("owner_id"), data.ownerID.isEmpty {
            throw CommunicationError.invalid([Violation("interaction.owner_id", "is required", reason: "REQUIRED")])
        }
        if data.occurredAt == nil {
            // occurred_at named with no value: keep it (an interaction always happened at some time).
            data.occurredAt = current.data.occurredAt
        }
        try InteractionRules.validate(&data, now: now())
        return try await store.replace(
            id: id, expectedVersion: current.version, data: data, changedFields: changed, actor: viewer.actor, write: write)
    }

    /// Soft-deletes (`deleted`) or restores an interaction the viewer may see.
    public func setDeleted(
        id: UUID, deleted: Bool, etag: String, viewer: Viewer, write: WriteOptions<InteractionRecord>
    ) async throws -> WriteOutcome<InteractionRecord> {
        if let replay = try await store.replay(write, actor: viewer.actor) { return .replayed(replay) }
        let current = try await get(id: id, includeDeleted: true, viewer: viewer)
        if (current.deletedAt != nil) == deleted { throw CommunicationError.notFound(kind: "interaction", id: id.uuidString.lowercased()) }
        if !etag.isEmpty, etag != current.etag { throw CommunicationError.etagMismatch(current: current.etag) }
        return try await store.setDeleted(
            id: id, deleted: deleted, expectedVersion: etag.isEmpty ? nil : current.version, actor: viewer.actor, write: write)
    }

    /// A page of interactions, newest first, and the next page's token ("" at the end).
    public func list(_ query: InteractionQuery, pageSize: Int, pageToken: String, viewer: Viewer) async throws -> ([InteractionRecord], String) {
        var query = query
        if let after = query.occurredAfter, let before = query.occurredBefore, after > before {
            throw CommunicationError.invalid([Violation("occurred_after", "must not be after occurred_before")])
        }
        query.limit = try InteractionRules.pageLimit(pageSize)
        let fingerprint = PageToken.fingerprint([
            "interactions", "\(query.scope)", "\(query.kind?.rawValue ?? 0)", query.ownerID ?? "",
            "\(query.occurredAfter?.timeIntervalSince1970 ?? 0)", "\(query.occurredBefore?.timeIntervalSince1970 ?? 0)", "\(query.includeDeleted)",
        ])
        query.after = try Self.resume(pageToken, fingerprint: fingerprint)
        let rows = try await store.list(query, viewer: viewer)
        return (rows.records, Self.next(rows, fingerprint: fingerprint))
    }

    /// A page of live interactions whose subject or body hold every word of `query`, newest first.
    public func search(_ query: String, pageSize: Int, pageToken: String, viewer: Viewer) async throws -> ([InteractionRecord], String) {
        let words = try InteractionRules.searchWords(query)
        let limit = try InteractionRules.pageLimit(
            pageSize, default: InteractionRules.defaultSearchPageSize, max: InteractionRules.maxSearchPageSize)
        let fingerprint = PageToken.fingerprint(["search"] + words)
        let rows = try await store.search(
            words: words, after: try Self.resume(pageToken, fingerprint: fingerprint), limit: limit, viewer: viewer)
        return (rows.records, Self.next(rows, fingerprint: fingerprint))
    }

    /// A page of an owner's open follow-ups due by `dueBefore` (default now), earliest first. Another user's
    /// follow-ups list only the interactions the viewer may see.
    public func followUps(
        ownerID: String, dueBefore: Date?, pageSize: Int, pageToken: String, viewer: Viewer
    ) async throws
        -> ([InteractionRecord], String)
    {
        let owner = ownerID.isEmpty ? viewer.actor.userID : ownerID
        guard owner.utf8.count <= InteractionRules.maxOwnerIDBytes, !InteractionRules.hasNUL(owner) else {
            throw CommunicationError.invalid([Violation("owner_id", "must be at most 256 bytes, without NUL characters", reason: "INVALID")])
        }
        let due = dueBefore ?? now()
        guard due >= InteractionRules.earliest, due <= now().addingTimeInterval(InteractionRules.maxFollowUpFutureSeconds) else {
            throw CommunicationError.invalid([Violation("due_before", "must be between 1900-01-01 and ten years from now", reason: "OUT_OF_RANGE")])
        }
        let limit = try InteractionRules.pageLimit(pageSize)
        // Without due_before each page reads up to its own now: the cursor keeps the order, and a follow-up falling due
        // between pages simply appears in its place.
        let fingerprint = PageToken.fingerprint(["follow-ups", owner, dueBefore.map { "\($0.timeIntervalSince1970)" } ?? "now"])
        let rows = try await store.followUps(
            ownerID: owner, dueBefore: due, after: try Self.resume(pageToken, fingerprint: fingerprint), limit: limit, viewer: viewer)
        return (rows.records, Self.next(rows, fingerprint: fingerprint))
    }

    // MARK: Pages

    /// The token of the page after `rows`: the last row's sort key (microseconds, as the database computed it) and id.
    static func next(_ rows: Rows<InteractionRecord>, fingerprint: UInt64) -> String {
        guard rows.more, let last = rows.records.last else { return "" }
        return PageToken(cursor: [String(last.sortMicros), last.id.uuidString.lowercased()], fingerprint: fingerprint).encoded
    }

    /// The cursor of a page token (client input: tokens are not signed), checked before it reaches SQL.
    static func resume(_ token: String, fingerprint: UInt64) throws -> TimeCursor? {
        guard let cursor = try PageToken.resume(token, fingerprint: fingerprint, parts: 2) else { return nil }
        // Int64(exactly:) is not needed: Int64(String) fails on overflow instead of trapping.
        guard let micros = Int64(cursor[0]), let id = UUID(uuidString: cursor[1]),
            (-10_000_000_000_000_000...10_000_000_000_000_000).contains(micros)
        else {
            throw CommunicationError.invalid([Violation("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")])
        }
        return TimeCursor(micros: micros, id: id)
    }
}
