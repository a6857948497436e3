import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresContactStore {
    /// The protocol requirement `merge` (documented on the protocol).
    public func merge(
        winner: ContactRecord, loser: ContactRecord, data: ContactData, added: ContactData, changedFields: [String], actor: Actor,
        write: WriteOptions<ContactRecord>
    ) async throws -> WriteOutcome<ContactRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let tenant = PostgresValue.text(actor.tenantID)
            // The loser first: its addresses are released before the winner takes them.
            guard
                let loserRow = try await c.query(
                    """
                    UPDATE contacts.contacts SET deleted_at = now(), merged_into = $4, version = version + 1, updated_at = now(), updated_by = $5
                    WHERE tenant_id = $1 AND id = $2 AND version = $3 AND deleted_at IS NULL
                    RETURNING \(Self.columns)
                    """, [tenant, .uuid(loser.id), .int(loser.version), .uuid(winner.id), .text(actor.userID)]
                ).first
            else { try await throwVersionConflict(id: loser.id, actor: actor, on: c) }
            try await releaseEmails(id: loser.id, actor: actor, on: c)
            guard
                let winnerRow = try await c.query(
                    Self.dataUpdate(live: true), [tenant, .uuid(winner.id), .int(winner.version)] + Self.dataBinds(data) + [.text(actor.userID)]
                ).first
            else { try await throwVersionConflict(id: winner.id, actor: actor, on: c) }
            try await releaseEmails(id: winner.id, actor: actor, on: c)
            try await reserveEmails(data, id: winner.id, actor: actor, on: c)
            let mergeID = UUID.random()
            try await c.query(
                """
                INSERT INTO contacts.merges (tenant_id, id, winner_id, loser_id, given_name, family_name, middle_name, name_prefix, name_suffix,
                    display_name, emails, phones, addresses, tags, custom_fields, merged_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                """,
                [
                    tenant, .uuid(mergeID), .uuid(winner.id), .uuid(loser.id), .text(added.name.given), .text(added.name.family),
                    .text(added.name.middle), .text(added.name.prefix), .text(added.name.suffix), .text(added.name.display),
                    .jsonb(JSONText.emails(added.emails)), .jsonb(JSONText.phones(added.phones)), .jsonb(JSONText.addresses(added.addresses)),
                    .array(added.tags.map(PostgresValue.text), elementType: .text), .jsonb(JSONText.object(added.customFields)),
                    .text(actor.userID),
                ])
            let merged = try Self.record(winnerRow), gone = try Self.record(loserRow)
            // MERGED first: a consumer moves the loser's rows to the winner, then the winner's UPDATED gives its whole
            // state (the communication directory then ranks the winner's addresses as the winner orders them).
            try await feed.record(
                ChangeRecord(
                    resourceType: Self.resourceType, resourceID: gone.id.lowercaseText, kind: .merged, resourceJSON: try publish(gone),
                    actorID: actor.userID, relatedIDs: [winner.id.lowercaseText]),
                tenantID: actor.tenantID, on: c)
            try await recordChange(merged, kind: .updated, fields: changedFields, actor: actor, on: c)
            try await recordTerms([winner.id], actor: actor, on: c)
            try await moveRelationships(loser: loser.id, winner: winner.id, mergeID: mergeID, actor: actor, on: c)
            return merged
        }
    }

    /// The protocol requirement `unmerge` (documented on the protocol).
    public func unmerge(
        id: UUID, actor: Actor, write: WriteOptions<ContactRecord>,
        strip: @Sendable (_ winner: ContactData, _ added: ContactData) -> (data: ContactData, changed: [String])
    ) async throws -> WriteOutcome<ContactRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let tenant = PostgresValue.text(actor.tenantID)
            guard
                let current = try await c.query(
                    "SELECT \(Self.columns) FROM contacts.contacts WHERE tenant_id = $1 AND id = $2 FOR UPDATE", [tenant, .uuid(id)]
                ).first.map(Self.record)
            else { throw ContactsError.notFound(id.uuidString.lowercased()) }
            guard let winnerID = current.mergedInto,
                let log = try await c.query(
                    """
                    SELECT id, given_name, family_name, middle_name, name_prefix, name_suffix, display_name, emails::text AS emails,
                        phones::text AS phones, addresses::text AS addresses, tags, custom_fields::text AS custom_fields
                    FROM contacts.merges WHERE tenant_id = $1 AND loser_id = $2 AND winner_id = $3 AND unmerged_at IS NULL
                    ORDER BY merged_at DESC LIMIT 1 FOR UPDATE
                    """, [tenant, .uuid(id), .uuid(winnerID)]
                ).first
            else { throw ContactsError.notMerged(id.uuidString.lowercased()) }
            var added = ContactData()
            added.name.given = try log.string("given_name")
            added.name.family = try log.string("family_name")
            added.name.middle = try log.string("middle_name")
            added.name.prefix = try log.string("name_prefix")
            added.name.suffix = try log.string("name_suffix")
            added.name.display = try log.string("display_name")
            added.emails = try JSONText.emails(try log.string("emails"))
            added.phones = try JSONText.phones(try log.string("phones"))
            added.addresses = try JSONText.addresses(try log.string("addresses"))
            added.tags = try log.strings("tags")
            added.customFields = try JSONText.object(try log.string("custom_fields"))

            // The former winner gives back what the merge added and is still there; first, so that the addresses it
            // gives back are free for the restored contact. (It may have been erased since: then there is nothing.)
            var winnerChange: (record: ContactRecord, changed: [String])?
            if let winner = try await c.query(
                "SELECT \(Self.columns) FROM contacts.contacts WHERE tenant_id = $1 AND id = $2 FOR UPDATE", [tenant, .uuid(winnerID)]
            ).first.map(Self.record) {
                let (data, changed) = strip(winner.data, added)
                if !changed.isEmpty {
                    // Locked above: still at the version read. (A deleted former winner is stripped too.)
                    let row = try await c.query(
                        Self.dataUpdate(live: false), [tenant, .uuid(winnerID), .int(winner.version)] + Self.dataBinds(data) + [.text(actor.userID)]
                    ).first!
                    try await releaseEmails(id: winnerID, actor: actor, on: c)
                    // A deleted former winner holds no addresses.
                    if winner.deletedAt == nil { try await reserveEmails(data, id: winnerID, actor: actor, on: c) }
                    winnerChange = (try Self.record(row), changed)
                }
            }
            let restoredRow = try await c.query(
                """
                UPDATE contacts.contacts SET deleted_at = NULL, merged_into = NULL, version = version + 1, updated_at = now(), updated_by = $3
                WHERE tenant_id = $1 AND id = $2
                RETURNING \(Self.columns)
                """, [tenant, .uuid(id), .text(actor.userID)]
            ).first!
            let restored = try Self.record(restoredRow)
            // An address another contact took meanwhile: ALREADY_EXISTS naming it, and the transaction changes nothing.
            try await reserveEmails(restored.data, id: id, actor: actor, on: c)
            try await c.query(
                "UPDATE contacts.merges SET unmerged_at = now(), unmerged_by = $3 WHERE tenant_id = $1 AND id = $2",
                [tenant, .uuid(try log.uuid("id")), .text(actor.userID)])
            if let winnerChange { try await recordChange(winnerChange.record, kind: .updated, fields: winnerChange.changed, actor: actor, on: c) }
            try await feed.record(
                ChangeRecord(
                    resourceType: Self.resourceType, resourceID: id.lowercaseText, kind: .unmerged, resourceJSON: try publish(restored),
                    actorID: actor.userID, relatedIDs: [winnerID.lowercaseText]),
                tenantID: actor.tenantID, on: c)
            // Its words may have been swept from the terms while it was merged away.
            try await recordTerms([id], actor: actor, on: c)
            try await restoreRelationships(loser: id, winner: winnerID, mergeID: try log.uuid("id"), actor: actor, on: c)
            return restored
        }
    }
}
