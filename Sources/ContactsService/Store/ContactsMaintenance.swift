import Logging
import ServiceLifecycle
import SwitchboardPostgres

/// The contacts service's hourly upkeep beside the kit's retention: prunes import ledgers past their retention (an
/// import can be resumed until then; each imported row is one ledger row, so a ledger kept for ever would grow with
/// every import), takes the names of organizations whose memberships ended by their date out of contact search, and
/// removes search terms no live contact holds any more.
struct ContactsMaintenance: Service {
    let pool: PostgresPool
    let importRetentionDays: Int
    let logger: Logger
    /// Between two runs.
    var interval: Duration = .seconds(3600)
    /// Search terms looked at per pass: a pass walks on from where the last one stopped, so a tenant of millions of
    /// words is swept over several hours, each pass a few seconds of work.
    var termsPerPass = 200_000
    /// The first pass waits this share of the interval, drawn at random: replicas started together (a deploy, a
    /// node's restart) then do not all sweep at once, and a service's first minutes, while its clients reconnect and
    /// PostgreSQL's caches fill, are not shared with a sweep. Nothing waits for a pass: each job is hourly upkeep.
    /// (It ran at start. In a tenant of a million contacts each step of the term sweep, 2,000 terms, then took 0.9 to
    /// 1.3 s of a PostgreSQL backend under search load, and a pass has a hundred steps.)
    var firstPassShare: ClosedRange<Double> = 0.1...1.0
    /// After each step of the term sweep, a pause this many times as long as the step took, so that the sweep uses
    /// at most about half of one database connection's time however many terms a pass looks at.
    var sweepPauseRatio = 1.0

    func run() async throws {
        // The hour-long sleep must end at shutdown, so graceful shutdown cancels this loop.
        await cancelWhenGracefulShutdown {
            // Where the sweep of unused search terms goes on from (tenant, term); nil: from the start.
            var sweepPosition: (tenant: String, term: String)?
            try? await Task.sleep(for: interval * Double.random(in: firstPassShare))
            while !Task.isCancelled {
                await runOnce(sweepingTermsFrom: &sweepPosition)
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// One pass; failures are logged and tried again at the next pass.
    func runOnce(sweepingTermsFrom sweepPosition: inout (tenant: String, term: String)?) async {
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
        do {
            var seen = 0
            var removed = 0
            let clock = ContinuousClock()
            while !Task.isCancelled && seen < termsPerPass {
                let started = clock.now
                let step = try await Self.sweepTerms(after: sweepPosition, pool: pool)
                seen += step.seen
                removed += step.removed
                sweepPosition = step.next
                // The end of the terms: the next pass starts again from the first.
                if step.next == nil { break }
                try? await Task.sleep(for: (clock.now - started) * sweepPauseRatio)
            }
            if removed > 0 { logger.info("unused search terms removed", metadata: ["terms": "\(removed)"]) }
        } catch {
            logger.warning("search term sweep failed", metadata: ["error": "\(error)"])
        }
    }

    /// Removes, from the next `limit` search terms after `position` (across tenants, in (tenant, term) order), those
    /// no live contact holds. Each tenant's share is deleted in that tenant's transaction, under its row-level
    /// security, once the sweep holds the tenant's terms lock exclusively: writers hold it shared until they commit,
    /// so every contact that relies on a term has committed (and is seen by the check) or waits until the sweep's
    /// transaction ends (and then adds the term again). A tenant whose lock is busy is skipped until the next round.
    /// - Returns: how many terms were looked at and removed, and where the next call goes on from (nil: the end).
    static func sweepTerms(
        after position: (tenant: String, term: String)?, limit: Int = 2_000, pool: PostgresPool
    ) async throws -> (seen: Int, removed: Int, next: (tenant: String, term: String)?) {
        let terms = try await pool.transaction(settings: ["app.retention_purge": "on"]) { c in
            // Two statements rather than one with `$1 IS NULL OR`, whose generic plan could not use the primary key.
            let rows =
                if let position {
                    try await c.query(
                        """
                        SELECT tenant_id, term FROM contacts.search_terms
                        WHERE (tenant_id, term) > ($1, $2::text COLLATE "C") ORDER BY tenant_id, term LIMIT $3
                        """, [.text(position.tenant), .text(position.term), .int(Int64(limit))])
                } else {
                    try await c.query(
                        "SELECT tenant_id, term FROM contacts.search_terms ORDER BY tenant_id, term LIMIT $1", [.int(Int64(limit))])
                }
            return try rows.rows.map { (tenant: try $0.string("tenant_id"), term: try $0.string("term")) }
        }
        var removed = 0
        var start = terms.startIndex
        while start < terms.endIndex {
            let tenant = terms[start].tenant
            let end = terms[start...].firstIndex { $0.tenant != tenant } ?? terms.endIndex
            let words = terms[start..<end].map { PostgresValue.text($0.term) }
            removed += try await pool.transaction(settings: ["app.tenant_id": tenant, "jit": "off"]) { c in
                let locked = try await c.query("SELECT \(PostgresContactStore.termsLock("$1", shared: false)) AS locked", [.text(tenant)])
                guard try locked.first?.bool("locked") == true else { return 0 }
                // A new statement, so a new snapshot: it sees every writer that held the lock before.
                return Int(
                    try await c.query(
                        """
                        DELETE FROM contacts.search_terms t WHERE t.tenant_id = $1 AND t.term = ANY($2::text[])
                        AND NOT EXISTS (
                            SELECT 1 FROM contacts.contacts c
                            WHERE c.tenant_id = $1 AND c.deleted_at IS NULL AND c.search_words @@ quote_literal(t.term)::tsquery)
                        """, [.text(tenant), .array(words, elementType: .text)]
                    ).affectedRows)
            }
            start = end
        }
        return (terms.count, removed, terms.count < limit ? nil : terms.last)
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
