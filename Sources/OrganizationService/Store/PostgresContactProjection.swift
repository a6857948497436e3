import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// The projection of contacts (`organization.contacts`) kept from the contacts feed. ``apply(_:on:)`` runs inside the
/// feed consumer's transaction, which also stores the feed's cursor: a batch's effects and its cursor commit together.
/// The consumer's transaction has no tenant; each change sets its own (`set_config(..., true)`) before touching
/// tenant tables, so row-level security holds for every write.
public struct PostgresContactProjection: Sendable {
    let feed: ChangeFeed
    /// The erasure receipt's proto3 JSON, made by the handlers' mapping.
    let publishReceipt: @Sendable (ErasureReceiptData) throws -> String
    /// A membership's proto3 JSON, for the changes a merge or an unmerge makes to memberships.
    let publishMembership: @Sendable (MembershipRecord) throws -> String
    /// A group's proto3 JSON, for the member changes a merge or an unmerge makes.
    let publishGroup: @Sendable (GroupRecord) throws -> String
    static let receiptType = "switchboard.organization.v1.ErasureReceipt"
    /// The actor recorded on changes the service makes by itself.
    static let actor = "organization"

    /// Creates the projection.
    public init(
        feed: ChangeFeed, publishMembership: @escaping @Sendable (MembershipRecord) throws -> String = { _ in "{}" },
        publishGroup: @escaping @Sendable (GroupRecord) throws -> String = { _ in "{}" },
        publishReceipt: @escaping @Sendable (ErasureReceiptData) throws -> String
    ) {
        self.feed = feed
        self.publishMembership = publishMembership
        self.publishGroup = publishGroup
        self.publishReceipt = publishReceipt
    }

    /// Applies changes in feed order. A state change older than the one applied (by the contacts feed's sequence)
    /// changes nothing, so a redelivered event cannot undo a newer one.
    public func apply(_ changes: [ContactChange], on c: PostgresConnection) async throws {
        for change in changes {
            try await c.query("SELECT set_config('app.tenant_id', $1, true) AS tenant", [.text(change.tenantID)])
            let tenant = PostgresValue.text(change.tenantID), id = PostgresValue.uuid(change.contactID)
            let sequence = PostgresValue.int(change.sequence)
            switch change.kind {
            case .state(let displayName, let deleted):
                try await c.query(
                    """
                    INSERT INTO organization.contacts AS p (tenant_id, contact_id, display_name, deleted, last_sequence)
                    VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (tenant_id, contact_id) DO UPDATE
                    SET display_name = EXCLUDED.display_name, deleted = EXCLUDED.deleted, last_sequence = EXCLUDED.last_sequence,
                        updated_at = now()
                    WHERE p.last_sequence < EXCLUDED.last_sequence
                    """, [tenant, id, .text(displayName), .bool(deleted), sequence])
            case .merged(let winner):
                try await lockContacts([change.contactID, winner], tenantID: change.tenantID, on: c)
                // The loser stays in the projection (an unmerge brings it back) but is hidden like a deleted contact.
                let applied = try await c.query(
                    """
                    INSERT INTO organization.contacts AS p (tenant_id, contact_id, merged_into, last_sequence) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (tenant_id, contact_id) DO UPDATE
                    SET merged_into = EXCLUDED.merged_into, last_sequence = EXCLUDED.last_sequence, updated_at = now()
                    WHERE p.last_sequence < EXCLUDED.last_sequence
                    RETURNING 1 AS applied
                    """, [tenant, id, .uuid(winner), sequence]
                ).first
                if applied != nil { try await merge(change.contactID, into: winner, tenantID: change.tenantID, on: c) }
            case .unmerged(let formerWinner):
                try await lockContacts([change.contactID, formerWinner], tenantID: change.tenantID, on: c)
                let applied = try await c.query(
                    """
                    UPDATE organization.contacts SET merged_into = NULL, last_sequence = $3, updated_at = now()
                    WHERE tenant_id = $1 AND contact_id = $2 AND last_sequence < $3
                    RETURNING 1 AS applied
                    """, [tenant, id, sequence]
                ).first
                if applied != nil { try await unmerge(change.contactID, tenantID: change.tenantID, on: c) }
            case .erased(let request):
                // Erasure wins over any order: the row goes whatever its sequence, and nothing personal is kept.
                try await lockContacts([change.contactID], tenantID: change.tenantID, on: c)
                try await c.query("DELETE FROM organization.contacts WHERE tenant_id = $1 AND contact_id = $2", [tenant, id])
                let memberships = try await c.query(
                    "DELETE FROM organization.memberships WHERE tenant_id = $1 AND contact_id = $2", [tenant, id]
                ).affectedRows
                let groupEntries = try await c.query(
                    "DELETE FROM organization.group_members WHERE tenant_id = $1 AND contact_id = $2", [tenant, id]
                ).affectedRows
                // What a merge logged about the person (snapshots of their memberships) goes too.
                try await c.query("DELETE FROM organization.merge_moves WHERE tenant_id = $1 AND (loser = $2 OR winner = $2)", [tenant, id])
                // So do the person's events that were set aside.
                try await FeedConsumer.forgetSetAside(
                    tenantID: change.tenantID, resourceID: change.contactID.lowercaseText, schema: "organization", on: c)
                // The stored change events and idempotent responses that mention the person (a membership's contact id and
                // display name) keep nothing of them.
                let mentioning = [change.contactID.lowercaseText]
                let changes = try await feed.redact(tenantID: change.tenantID, resourceIDs: [], mentioning: mentioning, on: c)
                let responses = try await Idempotency(schema: "organization").forget(tenantID: change.tenantID, mentioning: mentioning, on: c)
                let receipt = ErasureReceiptData(
                    contactID: change.contactID, erasureRequestID: request, membershipsRemoved: memberships, groupEntriesRemoved: groupEntries,
                    changesRedacted: changes, storedResponsesRemoved: responses)
                try await feed.record(
                    ChangeRecord(
                        resourceType: Self.receiptType, resourceID: change.contactID.lowercaseText, kind: .erased,
                        resourceJSON: try publishReceipt(receipt), actorID: Self.actor, relatedIDs: request.isEmpty ? [] : [request]),
                    tenantID: change.tenantID, on: c)
            }
        }
    }

    /// Takes the contacts' locks (the ones a primary membership's writer takes, `organization.contact/<id>/<tenant>`),
    /// in id order so two merges cannot deadlock: a merge and a membership write of the same contact run one after
    /// the other, so neither commits to a contact the other has just moved away from or made primary.
    private func lockContacts(_ ids: [UUID], tenantID: String, on c: PostgresConnection) async throws {
        for id in Set(ids).sorted(by: { $0.lowercaseText < $1.lowercaseText }) {
            try await c.query(
                "SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtextextended($1, 0))",
                [.text("organization.contact/\(id.lowercaseText)/\(tenantID)")])
        }
    }

    private func recordMemberships(_ rows: [PostgresRow], kind: ChangeKind, fields: [String], tenantID: String, on c: PostgresConnection) async throws
    {
        for row in rows {
            var record = try PostgresOrganizationStore.membership(row)
            record.contactDisplayName = ""
            try await feed.record(
                ChangeRecord(
                    resourceType: PostgresOrganizationStore.membershipType, resourceID: record.id.lowercaseText, kind: kind,
                    changedFields: fields, resourceJSON: try publishMembership(record), actorID: Self.actor),
                tenantID: tenantID, on: c)
        }
    }

    /// Moves the loser's memberships and group entries to the winner without making duplicates (a membership at the
    /// same organization and unit over an overlapping period, or an entry in the same group, that the winner already
    /// has is removed instead), keeps
    /// one primary membership (the winner's, if it has one), and logs every move for ``unmerge(_:tenantID:on:)``.
    private func merge(_ loser: UUID, into winner: UUID, tenantID: String, on c: PostgresConnection) async throws {
        let binds: [PostgresValue] = [.text(tenantID), .uuid(loser), .uuid(winner)]
        let m = PostgresOrganizationStore.membershipColumns
        let removed = try await c.query(
            """
            WITH dup AS (
                SELECT m.* FROM organization.memberships m
                WHERE m.tenant_id = $1 AND m.contact_id = $2 AND EXISTS (
                    SELECT 1 FROM organization.memberships w WHERE w.tenant_id = $1 AND w.contact_id = $3
                      AND w.organization_id = m.organization_id AND w.unit_id IS NOT DISTINCT FROM m.unit_id
                      -- Only when their periods overlap: an ended stint and a current one are both history.
                      AND coalesce(w.start_date, '-infinity'::date) <= coalesce(m.end_date, 'infinity'::date)
                      AND coalesce(m.start_date, '-infinity'::date) <= coalesce(w.end_date, 'infinity'::date))
            ), logged AS (
                INSERT INTO organization.merge_moves (tenant_id, loser, winner, kind, row_id, action, was_primary, snapshot)
                SELECT $1, $2, $3, 'membership', dup.id, 'removed', dup.is_primary, to_jsonb(dup) FROM dup
                ON CONFLICT DO NOTHING
            )
            DELETE FROM organization.memberships m USING dup WHERE m.tenant_id = $1 AND m.id = dup.id
            RETURNING \(m)
            """, binds
        ).rows
        try await c.query(
            """
            INSERT INTO organization.merge_moves (tenant_id, loser, winner, kind, row_id, action, was_primary)
            SELECT $1, $2, $3, 'membership', id, 'repointed', is_primary FROM organization.memberships WHERE tenant_id = $1 AND contact_id = $2
            ON CONFLICT DO NOTHING
            """, binds)
        let moved = try await c.query(
            """
            UPDATE organization.memberships m SET contact_id = $3, version = version + 1, updated_at = now(), updated_by = 'organization',
                is_primary = m.is_primary AND NOT EXISTS (
                    SELECT 1 FROM organization.memberships w WHERE w.tenant_id = $1 AND w.contact_id = $3 AND w.is_primary)
            WHERE m.tenant_id = $1 AND m.contact_id = $2
            RETURNING \(m)
            """, binds
        ).rows
        try await c.query(
            """
            INSERT INTO organization.merge_moves (tenant_id, loser, winner, kind, row_id, action)
            SELECT $1, $2, $3, 'group_member', g.group_id,
                CASE WHEN EXISTS (SELECT 1 FROM organization.group_members w WHERE w.tenant_id = $1 AND w.group_id = g.group_id AND w.contact_id = $3)
                     THEN 'removed' ELSE 'repointed' END
            FROM organization.group_members g WHERE g.tenant_id = $1 AND g.contact_id = $2
            ON CONFLICT DO NOTHING
            """, binds)
        try await c.query(
            """
            DELETE FROM organization.group_members g WHERE g.tenant_id = $1 AND g.contact_id = $2 AND EXISTS (
                SELECT 1 FROM organization.group_members w WHERE w.tenant_id = $1 AND w.group_id = g.group_id AND w.contact_id = $3)
            """, binds)
        try await c.query("UPDATE organization.group_members SET contact_id = $3 WHERE tenant_id = $1 AND contact_id = $2", binds)
        try await recordMemberships(removed, kind: .deleted, fields: [], tenantID: tenantID, on: c)
        try await recordMemberships(moved, kind: .updated, fields: ["contact_id", "primary"], tenantID: tenantID, on: c)
        try await recordGroupMoves(loser: loser, winner: winner, tenantID: tenantID, on: c)
    }

    /// One UPDATED change (`members`, with both contacts in `related_ids`) per group whose entries a merge or an
    /// unmerge moved, read from the merge log.
    private func recordGroupMoves(loser: UUID, winner: UUID, tenantID: String, on c: PostgresConnection) async throws {
        let groups = try await c.query(
            """
            SELECT \(PostgresOrganizationStore.groupColumns) FROM organization.merge_moves mm
            JOIN organization.groups g ON g.tenant_id = mm.tenant_id AND g.id = mm.row_id
            WHERE mm.tenant_id = $1 AND mm.loser = $2 AND mm.kind = 'group_member'
            """, [.text(tenantID), .uuid(loser)]
        ).rows
        for row in groups {
            let group = try PostgresOrganizationStore.group(row)
            try await feed.record(
                ChangeRecord(
                    resourceType: PostgresOrganizationStore.groupType, resourceID: group.id.lowercaseText, kind: .updated,
                    changedFields: ["members"], resourceJSON: try publishGroup(group), actorID: Self.actor,
                    relatedIDs: [loser.lowercaseText, winner.lowercaseText]),
                tenantID: tenantID, on: c)
        }
    }

    /// Puts back what ``merge(_:into:tenantID:on:)`` moved for `loser`, as far as it still exists, and forgets the log.
    private func unmerge(_ loser: UUID, tenantID: String, on c: PostgresConnection) async throws {
        let binds: [PostgresValue] = [.text(tenantID), .uuid(loser)]
        let m = PostgresOrganizationStore.membershipColumns
        let returned = try await c.query(
            """
            UPDATE organization.memberships m SET contact_id = mm.loser, is_primary = mm.was_primary, version = m.version + 1,
                updated_at = now(), updated_by = 'organization'
            FROM organization.merge_moves mm
            WHERE mm.tenant_id = $1 AND mm.loser = $2 AND mm.kind = 'membership' AND mm.action = 'repointed'
              AND m.tenant_id = $1 AND m.id = mm.row_id AND m.contact_id = mm.winner
            RETURNING \(m)
            """, binds
        ).rows
        let restored = try await c.query(
            """
            INSERT INTO organization.memberships AS m (tenant_id, id, contact_id, organization_id, unit_id, title, roles, is_primary,
                start_date, end_date, version, created_at, created_by, updated_at, updated_by)
            SELECT r.tenant_id, r.id, r.contact_id, r.organization_id, r.unit_id, r.title, r.roles,
                r.is_primary AND NOT EXISTS (
                    SELECT 1 FROM organization.memberships p WHERE p.tenant_id = $1 AND p.contact_id = $2 AND p.is_primary),
                r.start_date, r.end_date, r.version + 1, r.created_at, r.created_by, now(), 'organization'
            FROM organization.merge_moves mm, jsonb_populate_record(NULL::organization.memberships, mm.snapshot) r
            WHERE mm.tenant_id = $1 AND mm.loser = $2 AND mm.kind = 'membership' AND mm.action = 'removed'
            ON CONFLICT DO NOTHING
            RETURNING \(m)
            """, binds
        ).rows
        try await c.query(
            """
            UPDATE organization.group_members g SET contact_id = mm.loser FROM organization.merge_moves mm
            WHERE mm.tenant_id = $1 AND mm.loser = $2 AND mm.kind = 'group_member' AND mm.action = 'repointed'
              AND g.tenant_id = $1 AND g.group_id = mm.row_id AND g.contact_id = mm.winner
            """, binds)
        try await c.query(
            """
            INSERT INTO organization.group_members (tenant_id, group_id, contact_id, added_by)
            SELECT $1, mm.row_id, mm.loser, 'organization' FROM organization.merge_moves mm
            WHERE mm.tenant_id = $1 AND mm.loser = $2 AND mm.kind = 'group_member' AND mm.action = 'removed'
            ON CONFLICT DO NOTHING
            """, binds)
        if let winner = try await c.query(
            "SELECT winner FROM organization.merge_moves WHERE tenant_id = $1 AND loser = $2 LIMIT 1", binds
        ).first?.uuid("winner") {
            try await recordGroupMoves(loser: loser, winner: winner, tenantID: tenantID, on: c)
        }
        try await c.query("DELETE FROM organization.merge_moves WHERE tenant_id = $1 AND loser = $2", binds)
        try await recordMemberships(returned, kind: .updated, fields: ["contact_id", "primary"], tenantID: tenantID, on: c)
        try await recordMemberships(restored, kind: .created, fields: [], tenantID: tenantID, on: c)
    }
}
