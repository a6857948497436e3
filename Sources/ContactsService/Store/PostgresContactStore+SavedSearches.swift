import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresContactStore {
    static let savedSearchColumns = "id, name, shared, owner_id, search, created_at"

    static func savedSearch(_ row: PostgresRow) throws -> SavedSearchRecord {
        SavedSearchRecord(
            id: try row.uuid("id"), name: try row.string("name"), shared: try row.bool("shared"), ownerID: try row.string("owner_id"),
            search: try row.bytes("search"), createdAt: try row.date("created_at"))
    }

    /// The ``ContactStore`` requirement (documented there).
    public func insertSavedSearch(
        name: String, shared: Bool, search: [UInt8], actor: Actor, write: WriteOptions<SavedSearchRecord>
    ) async throws -> WriteOutcome<SavedSearchRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            // The owner's row lock on nothing: two concurrent creates can both pass the count by one; the bound is about
            // size, not exactness (as field definitions').
            let owned =
                try await c.query(
                    "SELECT count(*) AS n FROM contacts.saved_searches WHERE tenant_id = $1 AND owner_id = $2",
                    [.text(actor.tenantID), .text(actor.userID)]
                ).first?.int("n") ?? 0
            guard owned < SavedSearchRules.maxPerOwner else { throw ContactsError.tooManySavedSearches(limit: SavedSearchRules.maxPerOwner) }
            let row = try await c.query(
                """
                INSERT INTO contacts.saved_searches (tenant_id, id, owner_id, name, shared, search, created_by)
                VALUES ($1, $2, $3, $4, $5, $6, $3) RETURNING \(Self.savedSearchColumns)
                """, [.text(actor.tenantID), .uuid(UUID.random()), .text(actor.userID), .text(name), .bool(shared), .bytes(search)]
            ).first!
            return try Self.savedSearch(row)
        }
    }

    /// The ``ContactStore`` requirement (documented there).
    public func savedSearch(id: UUID, actor: Actor) async throws -> SavedSearchRecord? {
        try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            SELECT \(Self.savedSearchColumns) FROM contacts.saved_searches
            WHERE tenant_id = $1 AND id = $2 AND (shared OR owner_id = $3)
            """, [.text(actor.tenantID), .uuid(id), .text(actor.userID)]
        ).first.map(Self.savedSearch)
    }

    /// The ``ContactStore`` requirement (documented there).
    public func savedSearches(after: (Int64, UUID)?, limit: Int, actor: Actor) async throws -> [SavedSearchRecord] {
        var binds: [PostgresValue] = [.text(actor.tenantID), .text(actor.userID), .int(Int64(limit))]
        var page = ""
        if let (micros, id) = after {
            binds += [.int(micros), .uuid(id)]
            page = "AND (created_at, id) < ('epoch'::timestamptz + $4 * interval '1 microsecond', $5)"
        }
        return try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            SELECT \(Self.savedSearchColumns) FROM contacts.saved_searches
            WHERE tenant_id = $1 AND (shared OR owner_id = $2) \(page)
            ORDER BY created_at DESC, id DESC LIMIT $3
            """, binds
        ).rows.map(Self.savedSearch)
    }

    /// The ``ContactStore`` requirement (documented there).
    public func deleteSavedSearch(
        id: UUID, asAdmin: Bool, actor: Actor, write: WriteOptions<SavedSearchRecord>
    ) async throws -> WriteOutcome<SavedSearchRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            guard
                let row = try await c.query(
                    """
                    SELECT \(Self.savedSearchColumns) FROM contacts.saved_searches
                    WHERE tenant_id = $1 AND id = $2 AND (shared OR owner_id = $3) FOR UPDATE
                    """, [.text(actor.tenantID), .uuid(id), .text(actor.userID)]
                ).first
            else { throw ContactsError.savedSearchNotFound(id.lowercaseText) }
            let found = try Self.savedSearch(row)
            guard found.ownerID == actor.userID || asAdmin else { throw ContactsError.notSavedSearchOwner(id.lowercaseText) }
            try await c.query("DELETE FROM contacts.saved_searches WHERE tenant_id = $1 AND id = $2", [.text(actor.tenantID), .uuid(id)])
            return found
        }
    }
}
