import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresContactStore {
    static let relationshipType = "switchboard.contacts.v1.Relationship"
    static let relationshipColumns = "id, contact_id, related_id, type, strength, note, version, created_at, created_by, updated_at, updated_by"

    static let qualifiedRelationshipColumns = relationshipColumns.split(separator: ", ").map { "r.\($0)" }.joined(separator: ", ")

    /// A row's `type` as stated.
    static func kind(_ row: PostgresRow) throws -> RelationshipKind {
        guard let kind = RelationshipKind(rawValue: Int(try row.int("type"))) else {
            throw PostgresError(kind: .decoding, message: "contacts.relationships holds an unknown type \(try row.int("type"))")
        }
        return kind
    }

    static func relationship(_ row: PostgresRow) throws -> RelationshipRecord {
        RelationshipRecord(
            id: try row.uuid("id"), contactID: try row.uuid("contact_id"), relatedID: try row.uuid("related_id"), kind: try kind(row),
            strength: Int(try row.int("strength")), note: try row.string("note"), version: try row.int("version"),
            createdAt: try row.date("created_at"), createdBy: try row.string("created_by"), updatedAt: try row.date("updated_at"),
            updatedBy: try row.string("updated_by"))
    }

    /// A relationship's change event: both contacts in `related_ids`, so a consumer can follow either, and an erasure's
    /// redaction finds it by either id.
    func recordRelationship(
        _ record: RelationshipRecord, kind: ChangeKind, fields: [String] = [], actor: Actor, on c: PostgresConnection
    )
        async throws
    {
        try await feed.record(
            ChangeRecord(
                resourceType: Self.relationshipType, resourceID: record.id.lowercaseText, kind: kind, changedFields: fields,
                resourceJSON: try publishRelationship(record), actorID: actor.userID,
                relatedIDs: [record.contactID.lowercaseText, record.relatedID.lowercaseText]),
            tenantID: actor.tenantID, on: c)
    }

    /// The ``ContactStore`` requirement (documented there).
    public func insertRelationship(
        contact: UUID, related: UUID, kind: RelationshipKind, strength: Int, note: String, maxPerContact: Int, actor: Actor,
        write: WriteOptions<RelationshipRecord>
    ) async throws -> WriteOutcome<RelationshipRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let tenant = PostgresValue.text(actor.tenantID)
            // Both contacts' rows locked, in id order: a delete, merge or erasure of either waits for this transaction (the
            // relationship never names a contact that went away while it was made), and so does another create naming
            // either (the count below is exact).
            let live = Set(
                try await c.query(
                    """
                    SELECT id FROM contacts.contacts WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND deleted_at IS NULL
                    ORDER BY id FOR NO KEY UPDATE
                    """, [tenant, .array([.uuid(contact), .uuid(related)], elementType: .uuid)]
                ).rows.map { try $0.uuid("id") })
            for (id, field) in [(contact, "relationship.contact_id"), (related, "relationship.related_contact_id")] where !live.contains(id) {
                throw ContactsError.contactNotFound(field: field, id: id.lowercaseText)
            }
            // Relationships with live contacts, as listed: one with a deleted contact cannot be seen to be deleted. (An
            // undelete or a merge may take a contact past the bound; nothing is dropped then.)
            let counts = try await c.query(
                """
                SELECT s.id, (SELECT count(*) FROM contacts.relationships r
                              JOIN contacts.contacts o ON o.tenant_id = r.tenant_id AND o.deleted_at IS NULL
                                  AND o.id = CASE WHEN r.contact_id = s.id THEN r.related_id ELSE r.contact_id END
                              WHERE r.tenant_id = $1 AND r.hidden_by IS NULL AND (r.contact_id = s.id OR r.related_id = s.id)) AS n
                FROM unnest($2::uuid[]) AS s(id)
                """, [tenant, .array([.uuid(contact), .uuid(related)], elementType: .uuid)])
            for row in counts.rows where try row.int("n") >= Int64(maxPerContact) {
                throw ContactsError.tooManyRelationships(contact: try row.uuid("id").lowercaseText, limit: maxPerContact)
            }
            guard
                let row = try await c.query(
                    """
                    INSERT INTO contacts.relationships (tenant_id, id, contact_id, related_id, type, strength, note, created_by, updated_by)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                    ON CONFLICT (tenant_id, key_type, key_first, key_second) WHERE hidden_by IS NULL DO NOTHING
                    RETURNING \(Self.relationshipColumns)
                    """,
                    [
                        tenant, .uuid(UUID.random()), .uuid(contact), .uuid(related), .int(Int64(kind.rawValue)), .int(Int64(strength)),
                        .text(note), .text(actor.userID),
                    ]
                ).first
            else {
                guard let existing = try await holder(contact: contact, related: related, kind: kind, actor: actor, on: c) else {
                    throw ContactsError.concurrentChange("the relationship was changed by another request while this one ran; retry")
                }
                throw ContactsError.relationshipExists(existing: existing)
            }
            let created = try Self.relationship(row)
            try await recordRelationship(created, kind: .created, actor: actor, on: c)
            return created
        }
    }

    /// The relationship (other than `excluding`, one not set aside) that ties the two contacts by this type or its
    /// inverse, if any.
    private func holder(
        contact: UUID, related: UUID, kind: RelationshipKind, excluding: UUID? = nil, actor: Actor, on c: PostgresConnection
    ) async throws -> UUID? {
        let key = RelationshipRules.key(contact: contact, related: related, kind: kind)
        return try await c.query(
            """
            SELECT id FROM contacts.relationships
            WHERE tenant_id = $1 AND key_type = $2 AND key_first = $3 AND key_second = $4 AND hidden_by IS NULL
              AND ($5::uuid IS NULL OR id <> $5)
            """, [.text(actor.tenantID), .int(Int64(key.kind.rawValue)), .uuid(key.first), .uuid(key.second), excluding.map { .uuid($0) } ?? .null]
        ).first?.uuid("id")
    }

    /// The ``ContactStore`` requirement (documented there).
    public func relationship(id: UUID, actor: Actor) async throws -> RelationshipRecord? {
        try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            "SELECT \(Self.relationshipColumns) FROM contacts.relationships WHERE tenant_id = $1 AND id = $2 AND hidden_by IS NULL",
            [.text(actor.tenantID), .uuid(id)]
        ).first.map(Self.relationship)
    }

    /// The ``ContactStore`` requirement (documented there).
    public func updateRelationship(
        _ record: RelationshipRecord, expectedVersion: Int64, changedFields: [String], actor: Actor, write: WriteOptions<RelationshipRecord>
    ) async throws -> WriteOutcome<RelationshipRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let tenant = PostgresValue.text(actor.tenantID)
            // Another relationship of the two contacts by the new type (or its inverse): ALREADY_EXISTS naming it.
            if let other = try await holder(
                contact: record.contactID, related: record.relatedID, kind: record.kind, excluding: record.id, actor: actor, on: c)
            {
                throw ContactsError.relationshipExists(existing: other)
            }
            let row: PostgresRow?
            do {
                row = try await c.query(
                    """
                    UPDATE contacts.relationships SET type = $4, strength = $5, note = $6, version = version + 1, updated_at = now(),
                        updated_by = $7
                    WHERE tenant_id = $1 AND id = $2 AND version = $3 AND hidden_by IS NULL
                    RETURNING \(Self.relationshipColumns)
                    """,
                    [
                        tenant, .uuid(record.id), .int(expectedVersion), .int(Int64(record.kind.rawValue)), .int(Int64(record.strength)),
                        .text(record.note), .text(actor.userID),
                    ]
                ).first
            } catch let error as PostgresError where error.sqlState == "23505" {
                throw ContactsError.concurrentChange("another request gave the two contacts this relationship while this one ran; retry")
            }
            guard let row else { try await throwRelationshipConflict(id: record.id, actor: actor, on: c) }
            let updated = try Self.relationship(row)
            try await recordRelationship(updated, kind: .updated, fields: changedFields, actor: actor, on: c)
            return updated
        }
    }

    /// The ``ContactStore`` requirement (documented there).
    public func deleteRelationship(
        id: UUID, expectedVersion: Int64?, actor: Actor, write: WriteOptions<RelationshipRecord>
    ) async throws -> WriteOutcome<RelationshipRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            guard
                let row = try await c.query(
                    """
                    DELETE FROM contacts.relationships
                    WHERE tenant_id = $1 AND id = $2 AND ($3::int8 IS NULL OR version = $3) AND hidden_by IS NULL
                    RETURNING \(Self.relationshipColumns)
                    """, [.text(actor.tenantID), .uuid(id), expectedVersion.map { .int($0) } ?? .null]
                ).first
            else { try await throwRelationshipConflict(id: id, actor: actor, on: c) }
            let deleted = try Self.relationship(row)
            try await recordRelationship(deleted, kind: .deleted, actor: actor, on: c)
            return deleted
        }
    }

    private func throwRelationshipConflict(id: UUID, actor: Actor, on c: PostgresConnection) async throws -> Never {
        guard
            let row = try await c.query(
                "SELECT version FROM contacts.relationships WHERE tenant_id = $1 AND id = $2 AND hidden_by IS NULL",
                [.text(actor.tenantID), .uuid(id)]
            ).first
        else { throw ContactsError.relationshipNotFound(id.lowercaseText) }
        throw ContactsError.relationshipETagMismatch(current: "\"\(try row.int("version"))\"")
    }

    /// The ``ContactStore`` requirement (documented there).
    public func relationships(
        of contact: UUID, kinds: [RelationshipKind], after: (Int64, UUID)?, limit: Int, actor: Actor
    ) async throws -> [RelationshipRecord] {
        // A type as seen from the contact is stored as itself where the contact is the stated side, as its inverse where
        // it is the related one.
        var binds: [PostgresValue] = [
            .text(actor.tenantID), .uuid(contact), .array(kinds.map { .int(Int64($0.rawValue)) }, elementType: .int),
            .array(kinds.map { .int(Int64($0.inverse.rawValue)) }, elementType: .int), .int(Int64(limit)),
        ]
        var page = ""
        if let (micros, id) = after {
            binds += [.int(micros), .uuid(id)]
            page = "AND (r.created_at, r.id) < ('epoch'::timestamptz + $6 * interval '1 microsecond', $7)"
        }
        return try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            SELECT \(Self.qualifiedRelationshipColumns)
            FROM contacts.relationships r
            JOIN contacts.contacts o ON o.tenant_id = r.tenant_id AND o.deleted_at IS NULL
                AND o.id = CASE WHEN r.contact_id = $2 THEN r.related_id ELSE r.contact_id END
            WHERE r.tenant_id = $1 AND (r.contact_id = $2 OR r.related_id = $2) AND r.hidden_by IS NULL
              AND (cardinality($3::int8[]) = 0
                   OR (r.contact_id = $2 AND r.type = ANY($3::int8[])) OR (r.related_id = $2 AND r.type = ANY($4::int8[])))
              \(page)
            ORDER BY r.created_at DESC, r.id DESC LIMIT $5
            """, binds
        ).rows.map { try Self.relationship($0).seen(from: contact) }
    }

    /// The ``ContactStore`` requirement (documented there).
    public func relationshipStep(
        from frontier: [UUID], excluding seen: [UUID], kinds: [RelationshipKind], minStrength: Int, limit: Int, actor: Actor
    ) async throws -> [RelationshipEdge] {
        // Both directions, each as seen from the frontier's side; only to live contacts not reached yet. Only what ranks
        // a path is read (no note): a step reads up to thousands of rows.
        let columns = "r.id, r.type, r.strength"
        return try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            SELECT * FROM (
                SELECT \(columns), r.contact_id AS near, r.related_id AS far, true AS forward FROM contacts.relationships r
                WHERE r.tenant_id = $1 AND r.contact_id = ANY($2::uuid[]) AND r.hidden_by IS NULL AND r.strength >= $5
                  AND (cardinality($4::int8[]) = 0 OR r.type = ANY($4::int8[])) AND NOT r.related_id = ANY($3::uuid[])
                UNION ALL
                SELECT \(columns), r.related_id AS near, r.contact_id AS far, false AS forward FROM contacts.relationships r
                WHERE r.tenant_id = $1 AND r.related_id = ANY($2::uuid[]) AND r.hidden_by IS NULL AND r.strength >= $5
                  AND (cardinality($6::int8[]) = 0 OR r.type = ANY($6::int8[])) AND NOT r.contact_id = ANY($3::uuid[])
            ) s
            WHERE EXISTS (SELECT 1 FROM contacts.contacts o WHERE o.tenant_id = $1 AND o.id = s.far AND o.deleted_at IS NULL)
            ORDER BY s.far, s.id LIMIT $7
            """,
            [
                .text(actor.tenantID), .array(frontier.map(PostgresValue.uuid), elementType: .uuid),
                .array(seen.map(PostgresValue.uuid), elementType: .uuid), .array(kinds.map { .int(Int64($0.rawValue)) }, elementType: .int),
                .int(Int64(minStrength)), .array(kinds.map { .int(Int64($0.inverse.rawValue)) }, elementType: .int), .int(Int64(limit)),
            ]
        ).rows.map { row in
            let near = try row.uuid("near"), far = try row.uuid("far")
            let stated = try Self.kind(row)
            // Stated from `near` (its contact_id) or from `far`: seen from near, the inverse then.
            let stepForward = try row.bool("forward")
            return RelationshipEdge(
                id: try row.uuid("id"), near: near, far: far, kind: stepForward ? stated : stated.inverse, strength: Int(try row.int("strength")))
        }
    }

    /// The ``ContactStore`` requirement (documented there).
    public func relationships(ids: [UUID], actor: Actor) async throws -> [RelationshipRecord] {
        guard !ids.isEmpty else { return [] }
        return try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            SELECT \(Self.relationshipColumns) FROM contacts.relationships
            WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND hidden_by IS NULL
            """, [.text(actor.tenantID), .array(ids.map(PostgresValue.uuid), elementType: .uuid)]
        ).rows.map(Self.relationship)
    }

    // MARK: Merges

    /// Moves the loser's relationships to the winner, in the merge's transaction (`mergeID`: its log row): one with the
    /// winner itself, or one the winner already has, is set aside (hidden) instead. Each move is logged for the unmerge,
    /// and each moved relationship publishes UPDATED.
    func moveRelationships(loser: UUID, winner: UUID, mergeID: UUID, actor: Actor, on c: PostgresConnection) async throws {
        let tenant = PostgresValue.text(actor.tenantID)
        let theirs = try await c.query(
            """
            SELECT \(Self.relationshipColumns) FROM contacts.relationships
            WHERE tenant_id = $1 AND (contact_id = $2 OR related_id = $2) AND hidden_by IS NULL ORDER BY id FOR UPDATE
            """, [tenant, .uuid(loser)]
        ).rows.map(Self.relationship)
        guard !theirs.isEmpty else { return }
        var taken = Set(
            try await c.query(
                """
                SELECT key_type, key_first, key_second FROM contacts.relationships
                WHERE tenant_id = $1 AND (contact_id = $2 OR related_id = $2) AND hidden_by IS NULL
                """, [tenant, .uuid(winner)]
            ).rows.map { "\(try $0.int("key_type"))/\(try $0.uuid("key_first"))/\(try $0.uuid("key_second"))" })
        for original in theirs {
            var relationship = original
            let side = relationship.contactID == loser ? "contact" : "related"
            if side == "contact" { relationship.contactID = winner } else { relationship.relatedID = winner }
            let key = RelationshipRules.key(contact: relationship.contactID, related: relationship.relatedID, kind: relationship.kind)
            let keyText = "\(key.kind.rawValue)/\(key.first)/\(key.second)"
            if relationship.contactID == relationship.relatedID || taken.contains(keyText) {
                try await c.query(
                    "UPDATE contacts.relationships SET hidden_by = $3 WHERE tenant_id = $1 AND id = $2",
                    [tenant, .uuid(relationship.id), .uuid(mergeID)])
                try await logMove(relationship.id, side: "hidden", mergeID: mergeID, actor: actor, on: c)
                // Set aside, it is gone for whoever follows relationships (CREATED again if an unmerge brings it back).
                try await recordRelationship(original, kind: .deleted, actor: actor, on: c)
                continue
            }
            taken.insert(keyText)
            let row: PostgresRow
            do {
                // Locked above (FOR UPDATE): the row is there.
                row = try await c.query(
                    """
                    UPDATE contacts.relationships SET \(side == "contact" ? "contact_id" : "related_id") = $3, version = version + 1,
                        updated_at = now(), updated_by = $4
                    WHERE tenant_id = $1 AND id = $2 RETURNING \(Self.relationshipColumns)
                    """, [tenant, .uuid(relationship.id), .uuid(winner), .text(actor.userID)]
                ).first!
            } catch let error as PostgresError where error.sqlState == "23505" {
                // The winner's relationships are read unlocked: another merge committed one with the same key meanwhile.
                throw ContactsError.concurrentChange("another request gave the winner one of the loser's relationships while this merge ran; retry")
            }
            try await logMove(relationship.id, side: side, mergeID: mergeID, actor: actor, on: c)
            try await recordRelationship(
                try Self.relationship(row), kind: .updated, fields: [side == "contact" ? "contact_id" : "related_contact_id"], actor: actor, on: c)
        }
    }

    private func logMove(_ id: UUID, side: String, mergeID: UUID, actor: Actor, on c: PostgresConnection) async throws {
        try await c.query(
            "INSERT INTO contacts.relationship_moves (tenant_id, merge_id, relationship_id, side) VALUES ($1, $2, $3, $4)",
            [.text(actor.tenantID), .uuid(mergeID), .uuid(id), .text(side)])
    }

    /// Undoes what merge `mergeID` did to relationships, in the unmerge's transaction: a moved one goes back to `loser`
    /// where it still names `winner` on the side it was moved on (and the loser has no relationship with the same key by
    /// then: otherwise it stays with the winner); then one set aside comes back, unless the two contacts have the same
    /// relationship by then (the one set aside is dropped: it would be a duplicate). Moved ones first, so that one set
    /// aside never takes a key a moved one needs.
    func restoreRelationships(loser: UUID, winner: UUID, mergeID: UUID, actor: Actor, on c: PostgresConnection) async throws {
        let tenant = PostgresValue.text(actor.tenantID)
        let moves = try await c.query(
            """
            SELECT relationship_id, side FROM contacts.relationship_moves WHERE tenant_id = $1 AND merge_id = $2
            ORDER BY side = 'hidden', relationship_id
            """, [tenant, .uuid(mergeID)]
        ).rows.map { (try $0.uuid("relationship_id"), try $0.string("side")) }
        for (id, side) in moves {
            if side == "hidden" {
                if let row = try await c.query(
                    """
                    UPDATE contacts.relationships r SET hidden_by = NULL
                    WHERE r.tenant_id = $1 AND r.id = $2 AND r.hidden_by = $3 AND NOT EXISTS (
                        SELECT 1 FROM contacts.relationships o WHERE o.tenant_id = r.tenant_id AND o.key_type = r.key_type
                          AND o.key_first = r.key_first AND o.key_second = r.key_second AND o.hidden_by IS NULL)
                    RETURNING \(Self.relationshipColumns)
                    """, [tenant, .uuid(id), .uuid(mergeID)]
                ).first {
                    try await recordRelationship(try Self.relationship(row), kind: .created, actor: actor, on: c)
                } else {
                    // Its DELETED was published when it was set aside.
                    try await c.query(
                        "DELETE FROM contacts.relationships WHERE tenant_id = $1 AND id = $2 AND hidden_by = $3", [tenant, .uuid(id), .uuid(mergeID)])
                }
                continue
            }
            let column = side == "contact" ? "contact_id" : "related_id"
            guard
                let current = try await c.query(
                    """
                    SELECT \(Self.relationshipColumns) FROM contacts.relationships
                    WHERE tenant_id = $1 AND id = $2 AND \(column) = $3 AND hidden_by IS NULL FOR UPDATE
                    """, [tenant, .uuid(id), .uuid(winner)]
                ).first.map(Self.relationship)
            else { continue }
            var back = current
            if side == "contact" { back.contactID = loser } else { back.relatedID = loser }
            let clash = try await holder(contact: back.contactID, related: back.relatedID, kind: back.kind, excluding: id, actor: actor, on: c)
            // Defensive: the loser was merged away, so nothing new could name it, and the winner's keys are unique; a
            // clash here would mean another path made one, and the relationship then stays with the winner.
            guard back.contactID != back.relatedID, clash == nil else { continue }
            let row = try await c.query(
                """
                UPDATE contacts.relationships SET \(column) = $3, version = version + 1, updated_at = now(), updated_by = $4
                WHERE tenant_id = $1 AND id = $2 RETURNING \(Self.relationshipColumns)
                """, [tenant, .uuid(id), .uuid(loser), .text(actor.userID)]
            ).first!
            try await recordRelationship(
                try Self.relationship(row), kind: .updated, fields: [side == "contact" ? "contact_id" : "related_contact_id"], actor: actor, on: c)
        }
        try await c.query("DELETE FROM contacts.relationship_moves WHERE tenant_id = $1 AND merge_id = $2", [tenant, .uuid(mergeID)])
    }
}
