import SwitchboardPostgres

/// The table every service keeps its idempotency keys in (`<schema>.idempotency_keys`: tenant_id, request_id, method,
/// response, created_at), and its pruning: a retry is recognised for the retention period, after which the key (and
/// the response kept for replays) is deleted, so the table does not grow without bound.
public enum IdempotencyKeys {
    /// Deletes keys older than `hours`, across tenants (through the table's `retention_purge` policy).
    /// - Returns: rows removed.
    @discardableResult
    public static func purge(schema: String, olderThan hours: Int, pool: PostgresPool) async throws -> Int {
        try await pool.transaction(settings: ["app.retention_purge": "on"]) { connection in
            try await connection.query(
                "DELETE FROM \(schema).idempotency_keys WHERE created_at < now() - make_interval(hours => $1::int)", [.int(Int64(hours))]
            ).affectedRows
        }
    }
}
