import FoundationEssentials
import SwitchboardPostgres

extension PostgresAnalyticsStore {
    /// Folds the loser into the winner and logs what moved (`analytics.merge_moves`, migration 004), so that an UNMERGED
    /// can reverse it: the loser's timeline entries go to the winner (an activity of both keeps the winner's entry
    /// only), its activities name the winner instead, its stages and firing alerts go, and it is marked deleted.
    func merge(loser: UUID, into winner: UUID, tenant: PostgresValue, on c: PostgresConnection) async throws {
        let binds: [PostgresValue] = [tenant, .uuid(loser), .uuid(winner)]
        // Activities first, locked in one order: a source's UPDATED of an activity locks the activity and then its
        // entries, so locking the loser's entries first could deadlock with it.
        try await c.query(
            """
            WITH target AS (
                SELECT resource_type, resource_id, contact_ids FROM analytics.activities
                WHERE tenant_id = $1 AND contact_ids @> ARRAY[$2::uuid]
                ORDER BY resource_type, resource_id
                FOR UPDATE
            ), moved AS (
                UPDATE analytics.activities a
                SET contact_ids = ARRAY(SELECT DISTINCT x FROM unnest(array_replace(t.contact_ids, $2, $3)) AS x ORDER BY x)
                FROM target t WHERE a.tenant_id = $1 AND a.resource_type = t.resource_type AND a.resource_id = t.resource_id
                RETURNING a.resource_type, a.resource_id, t.contact_ids AS before, a.contact_ids AS after)
            INSERT INTO analytics.merge_moves (tenant_id, loser, winner, kind, resource_type, resource_id, before, after)
            SELECT $1, $2, $3, 'activity', resource_type, resource_id, before, after FROM moved
            """, binds)
        // An activity of both has an entry on each timeline: the winner keeps its own. (Not logged: an UNMERGED gives
        // the entries of the activities it restores to the contacts they name again.) Only activities' entries: the
        // loser's own (such as an UNMERGED entry that the winner has too) move with the rest.
        try await c.query(
            """
            DELETE FROM analytics.timeline l WHERE l.tenant_id = $1 AND l.subject_type = 1 AND l.subject_id = $2
              AND EXISTS (
                  SELECT 1 FROM analytics.timeline w WHERE w.tenant_id = $1 AND w.subject_type = 1 AND w.subject_id = $3
                    AND w.resource_type = l.resource_type AND w.resource_id = l.resource_id AND w.kind = l.kind)
              AND EXISTS (
                  SELECT 1 FROM analytics.activities a WHERE a.tenant_id = $1 AND a.resource_type = l.resource_type AND a.resource_id = l.resource_id)
            """, binds)
        // A new txid: a WatchTimeline stream of the winner sees the entries it gained. Only the loser's own entries are
        // logged: an activity's follow the activity when an UNMERGED restores it.
        try await c.query(
            """
            WITH moved AS (
                UPDATE analytics.timeline SET subject_id = $3, txid = pg_current_xact_id()
                WHERE tenant_id = $1 AND subject_type = 1 AND subject_id = $2
                RETURNING id, resource_type, resource_id)
            INSERT INTO analytics.merge_moves (tenant_id, loser, winner, kind, timeline_id)
            SELECT $1, $2, $3, 'moved', id FROM moved
            WHERE NOT EXISTS (
                SELECT 1 FROM analytics.activities a WHERE a.tenant_id = $1 AND a.resource_type = moved.resource_type AND a.resource_id = moved.resource_id)
            """, binds)
        try await c.query(
            """
            WITH gone AS (DELETE FROM analytics.stage_changes WHERE tenant_id = $1 AND contact_id = $2 RETURNING id, stage, entered_at)
            INSERT INTO analytics.merge_moves (tenant_id, loser, winner, kind, row_data)
            SELECT $1, $2, $3, 'stage', jsonb_build_object('id', id, 'stage', stage, 'entered_at', entered_at) FROM gone
            """, binds)
        try await c.query(
            """
            WITH gone AS (DELETE FROM analytics.alert_states WHERE tenant_id = $1 AND contact_id = $2 RETURNING alert_id)
            INSERT INTO analytics.merge_moves (tenant_id, loser, winner, kind, row_data)
            SELECT $1, $2, $3, 'alert', jsonb_build_object('alert_id', alert_id) FROM gone
            """, binds)
        try await c.query("UPDATE analytics.contacts SET deleted = true WHERE tenant_id = $1 AND id = $2", Array(binds.prefix(2)))
    }

    /// Reverses what ``merge(loser:into:tenant:on:)`` logged for this loser and winner, then forgets the log.
    ///
    /// Activities follow their sources: communication and collaboration publish UPDATED for what they move back, and
    /// those events may arrive before or after this one. So an activity gets its contacts back only if they are still
    /// (as a set) what the merge left (as its source decides too), and its timeline entries then follow the change as
    /// they follow a source's UPDATED: a contact it names again gets a copy of its entry, one it no longer names loses
    /// it. The loser's own entries (not an activity's) go back to it wherever they are now (a later merge of the winner
    /// may have moved them on; that merge's log then no longer moves them). The stages the loser had entered come back, and
    /// so do the alerts that were firing for it (so that they do not fire again). A merge applied before the log
    /// existed moves nothing back.
    func unmerge(loser: UUID, from winner: UUID, tenant: PostgresValue, on c: PostgresConnection) async throws {
        let binds: [PostgresValue] = [tenant, .uuid(loser), .uuid(winner)]
        let log = "m.tenant_id = $1 AND m.loser = $2 AND m.winner = $3"
        // One statement: every part reads the timeline as it was before it, so the entries to copy are found even
        // where the same statement deletes them.
        try await c.query(
            """
            WITH restored AS (
                UPDATE analytics.activities a SET contact_ids = m.before
                FROM analytics.merge_moves m
                WHERE \(log) AND m.kind = 'activity' AND a.tenant_id = $1 AND a.resource_type = m.resource_type
                  AND a.resource_id = m.resource_id AND a.contact_ids @> m.after AND a.contact_ids <@ m.after
                RETURNING a.resource_type, a.resource_id, m.after AS old, m.before AS new
            ), dropped AS (
                DELETE FROM analytics.timeline t USING restored r
                WHERE t.tenant_id = $1 AND t.subject_type = 1 AND t.resource_type = r.resource_type AND t.resource_id = r.resource_id
                  AND t.subject_id = ANY(r.old) AND NOT t.subject_id = ANY(r.new)
            ), added AS (
                INSERT INTO analytics.timeline (tenant_id, subject_type, subject_id, occurred_at, kind, source, resource_type, resource_id,
                    actor_id, changed_fields, summary, activity_kind, status_from, status_to)
                SELECT DISTINCT ON (r.resource_type, r.resource_id, x.id) $1, 1, x.id, e.occurred_at, e.kind, e.source, e.resource_type,
                    e.resource_id, e.actor_id, e.changed_fields, e.summary, e.activity_kind, e.status_from, e.status_to
                FROM restored r
                CROSS JOIN LATERAL unnest(r.new) AS x(id)
                JOIN analytics.timeline e ON e.tenant_id = $1 AND e.subject_type = 1 AND e.resource_type = r.resource_type
                    AND e.resource_id = r.resource_id
                WHERE NOT x.id = ANY(r.old)
                  AND NOT EXISTS (
                      SELECT 1 FROM analytics.timeline l
                      WHERE l.tenant_id = $1 AND l.subject_type = 1 AND l.subject_id = x.id
                        AND l.resource_type = r.resource_type AND l.resource_id = r.resource_id)
                ORDER BY r.resource_type, r.resource_id, x.id, e.id DESC
            )
            SELECT 1 AS done
            """, binds)
        // The loser's own entries; a new txid, so that a WatchTimeline stream of the loser sees them come back.
        try await c.query(
            """
            WITH back AS (
                UPDATE analytics.timeline t SET subject_id = $2, txid = pg_current_xact_id()
                FROM analytics.merge_moves m
                WHERE \(log) AND m.kind = 'moved' AND t.tenant_id = $1 AND t.id = m.timeline_id AND t.subject_type = 1
                  AND t.subject_id <> $2
                RETURNING t.id, m.id AS log_id
            )
            -- The later merges that moved them on (the winner's into another: logged after this one, as the contacts
            -- consumer applies a tenant's merges in order) no longer move them; the earlier ones, which moved them into
            -- the loser (its own losers' entries), find them where they left them.
            DELETE FROM analytics.merge_moves x USING back
            WHERE x.tenant_id = $1 AND x.kind = 'moved' AND x.timeline_id = back.id AND x.id > back.log_id
            """, binds)
        // The stages keep their ids, so the history reads in the order it was entered.
        try await c.query(
            """
            INSERT INTO analytics.stage_changes (tenant_id, contact_id, id, stage, entered_at) OVERRIDING SYSTEM VALUE
            SELECT $1, $2, (m.row_data->>'id')::bigint, m.row_data->>'stage', (m.row_data->>'entered_at')::timestamptz
            FROM analytics.merge_moves m WHERE \(log) AND m.kind = 'stage'
            ON CONFLICT DO NOTHING
            """, binds)
        try await c.query(
            """
            INSERT INTO analytics.alert_states (tenant_id, alert_id, contact_id)
            SELECT $1, x.id, $2 FROM analytics.merge_moves m JOIN analytics.alerts x ON x.tenant_id = $1 AND x.id = (m.row_data->>'alert_id')::uuid
            WHERE \(log) AND m.kind = 'alert'
            ON CONFLICT DO NOTHING
            """, binds)
        try await c.query("DELETE FROM analytics.merge_moves m WHERE \(log)", binds)
    }

    /// Forgets every logged merge move that names an erased person: a merge of theirs can no longer be reversed, and
    /// an activity's logged contacts must not bring them back.
    func forgetMergeMoves(of person: UUID, tenantID: String, on c: PostgresConnection) async throws {
        let binds: [PostgresValue] = [.text(tenantID), .uuid(person)]
        try await c.query("DELETE FROM analytics.merge_moves WHERE tenant_id = $1 AND (loser = $2 OR winner = $2)", binds)
        try await c.query(
            """
            UPDATE analytics.merge_moves SET before = array_remove(before, $2), after = array_remove(after, $2)
            WHERE tenant_id = $1 AND kind = 'activity' AND (before @> ARRAY[$2::uuid] OR after @> ARRAY[$2::uuid])
            """, binds)
    }
}
