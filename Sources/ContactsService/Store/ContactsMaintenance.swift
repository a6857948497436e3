import Logging
import ServiceLifecycle
import SwitchboardPostgres

/// The contacts service's hourly upkeep beside the kit's retention: prunes import ledgers past their retention (an
/// import can be resumed until then; each imported row is one ledger row, so a ledger kept for ever would grow with
/// every import), and takes the names of organizations whose memberships ended by their date out of contact search.
struct ContactsMaintenance: Service {
    let pool: PostgresPool
    let importRetentionDays: Int
    let logger: Logger
    /// Between two runs.
    var interval: Duration = .seconds(3600)

    func run() async throws {
        // The hour-long sleep must end at shutdown, so graceful shutdown cancels this loop.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await runOnce()
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// One pass; failures are logged and tried again at the next pass.
    func runOnce() async {
        do {
            let removed = try await Self.pruneImports(olderThan: importRetentionDays, pool: pool)
            if removed > 0 { logger.info("pruned import ledgers", metadata: ["imports": "\(removed)"]) }
        } catch {
            logger.warning("import ledger pruning failed", metadata: ["error": "\(error)"])
        }
        do {
            // Bounded passes: a backlog (a service that was down for days) is worked through without one huge transaction.
            var swept = 0
            while !Task.isCancelled {
                let n = try await PostgresOrganizationNames().sweepEndedMemberships(pool: pool)
                swept += n
                if n < 10_000 { break }
            }
            if swept > 0 { logger.info("ended memberships left contact search", metadata: ["memberships": "\(swept)"]) }
        } catch {
            logger.warning("ended membership sweep failed", metadata: ["error": "\(error)"])
        }
    }

    /// Deletes the ledgers (imports and their rows) of imports started more than `days` ago, across tenants, a few
    /// imports per transaction (an import's ledger may hold a million rows).
    /// - Returns: the imports removed.
    static func pruneImports(olderThan days: Int, pool: PostgresPool) async throws -> Int {
        var removed = 0
        while !Task.isCancelled {
            let n = try await pool.transaction(settings: ["app.retention_purge": "on"]) { c in
                let expired = try await c.query(
                    """
                    SELECT tenant_id, import_id FROM contacts.imports
                    WHERE created_at < now() - $1::int8 * interval '1 day' ORDER BY created_at LIMIT 10
                    """, [.int(Int64(days))]
                ).rows.map { (try $0.string("tenant_id"), try $0.string("import_id")) }
                guard !expired.isEmpty else { return 0 }
                let tenants = PostgresValue.array(expired.map { .text($0.0) }, elementType: .text)
                let ids = PostgresValue.array(expired.map { .text($0.1) }, elementType: .text)
                try await c.query(
                    """
                    DELETE FROM contacts.import_rows r USING unnest($1::text[], $2::text[]) AS e (tenant_id, import_id)
                    WHERE r.tenant_id = e.tenant_id AND r.import_id = e.import_id
                    """, [tenants, ids])
                try await c.query(
                    """
                    DELETE FROM contacts.imports i USING unnest($1::text[], $2::text[]) AS e (tenant_id, import_id)
                    WHERE i.tenant_id = e.tenant_id AND i.import_id = e.import_id
                    """, [tenants, ids])
                return expired.count
            }
            removed += n
            if n == 0 { break }
        }
        return removed
    }
}
