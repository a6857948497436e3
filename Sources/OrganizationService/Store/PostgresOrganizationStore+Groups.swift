import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresOrganizationStore: GroupStore {
    static let groupColumns = """
        g.id, g.name, g.description, g.parent_group_id, g.version, g.created_at, g.created_by, g.updated_at, g.updated_by, g.deleted_at
        """

    static func group(_ row: PostgresRow) throws -> GroupRecord {
        var parent: UUID?
        if case .uuid(let p) = row["parent_group_id"] { parent = p }
        return GroupRecord(
            id: try row.uuid("id"), data: GroupData(name: try row.string("name"), description: try row.string("description"), parentGroupID: parent),
            version: try row.int("version"), createdAt: try row.date("created_at"), createdBy: try row.string("created_by"),
            updatedAt: try row.date("updated_at"), updatedBy: try row.string("updated_by"), deletedAt: try row.optionalDate("deleted_at"))
    }

    private func recordGroupChange(
        _ record: GroupRecord, kind: ChangeKind, fields: [String], related: [String] = [], actor: Actor, on c: PostgresConnection
    ) async throws {
        try await feed.record(
            ChangeRecord(
                resourceType: Self.groupType, resourceID: record.id.lowercaseText, kind: kind, changedFields: fields,
                resourceJSON: try publish.group(record), actorID: actor.userID, relatedIDs: related),
            tenantID: actor.tenantID, on: c)
    }

    private func lockGroups(actor: Actor, on c: PostgresConnection) async throws {
        try await c.query(
            "SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtextextended($1, 0))", [.text("organization.groups/\(actor.tenantID)")])
    }

    /// Checks that `parent` is a live group under which `id` (with its subgroups) may sit, after the group lock.
    private func checkParentGroup(_ parent: UUID, for id: UUID, newNode: Bool, actor: Actor, on c: PostgresConnection) async throws {
        let live = try await c.query(
            "SELECT 1 AS live FROM organization.groups WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            [.text(actor.tenantID), .uuid(parent)]
        ).first
        guard live != nil else { throw OrganizationError.notFound(kind: "parent group", id: parent.lowercaseText) }
        let ancestry = try await c.query(
            """
            WITH RECURSIVE a (id, parent_group_id, level) AS (
                SELECT id, parent_group_id, 0 FROM organization.groups WHERE tenant_id = $1 AND id = $2
                UNION ALL
                SELECT g.id, g.parent_group_id, a.level + 1 FROM a JOIN organization.groups g ON g.tenant_id = $1 AND g.id = a.parent_group_id
                WHERE a.level <= $3
            )
            SELECT id FROM a ORDER BY level
            """, [.text(actor.tenantID), .uuid(parent), .int(Int64(GroupRules.maxDepth))]
        ).rows.map { try $0.uuid("id") }
        var height = 0
        if !newNode {
            height = Int(
                try await c.query(
                    """
                    WITH RECURSIVE d (id, depth) AS (
                        SELECT $2::uuid, 0
                        UNION ALL
                        SELECT g.id, d.depth + 1 FROM d JOIN organization.groups g ON g.tenant_id = $1 AND g.parent_group_id = d.id
                        WHERE d.depth <= $3
                    )
                    SELECT max(depth) AS height FROM d
                    """, [.text(actor.tenantID), .uuid(id), .int(Int64(GroupRules.maxDepth))]
                ).first?.int("height") ?? 0)
        }
        try OrganizationRules.checkMove(kind: "group", id: id, newParentAncestry: ancestry, subtreeHeight: height, maxDepth: GroupRules.maxDepth)
    }

    public func insertGroup(_ data: GroupData, actor: Actor, write: WriteOptions<GroupRecord>) async throws -> WriteOutcome<GroupRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let id = UUID.random()
            if let parent = data.parentGroupID {
                try await lockGroups(actor: actor, on: c)
                try await checkParentGroup(parent, for: id, newNode: true, actor: actor, on: c)
            }
            let row = try await c.query(
                """
                INSERT INTO organization.groups AS g (tenant_id, id, name, name_key, description, parent_group_id, created_at, created_by,
                    updated_at, updated_by)
                VALUES ($1, $2, $3, $4, $5, $6, now(), $7, now(), $7)
                RETURNING \(Self.groupColumns)
                """,
                [
                    .text(actor.tenantID), .uuid(id), .text(data.name), .text(data.name.lowercased()), .text(data.description),
                    data.parentGroupID.map(PostgresValue.uuid) ?? .null, .text(actor.userID),
                ]
            ).first!
            let record = try Self.group(row)
            try await recordGroupChange(record, kind: .created, fields: [], actor: actor, on: c)
            return record
        }
    }

    public func fetchGroup(id: UUID, actor: Actor) async throws -> GroupRecord? {
        try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            "SELECT \(Self.groupColumns) FROM organization.groups g WHERE g.tenant_id = $1 AND g.id = $2",
            [.text(actor.tenantID), .uuid(id)]
        ).first.map(Self.group)
    }

    private func throwGroupConflict(id: UUID, actor: Actor, on c: PostgresConnection) async throws -> Never {
        let current = try await c.query(
            "SELECT version, deleted_at FROM organization.groups WHERE tenant_id = $1 AND id = $2", [.text(actor.tenantID), .uuid(id)]
        ).first
        guard let current, try current.optionalDate("deleted_at") == nil else {
            throw OrganizationError.notFound(kind: "group", id: id.lowercaseText)
        }
        throw OrganizationError.etagMismatch(current: "\"\(try current.int("version"))\"")
    }

    public func replaceGroup(
        id: UUID, expectedVersion: Int64, data: GroupData, changedFields: [String], actor: Actor, write: WriteOptions<GroupRecord>
    ) async throws -> WriteOutcome<GroupRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            if changedFields.contains("parent_group_id") {
                try await lockGroups(actor: actor, on: c)
                if let parent = data.parentGroupID { try await checkParentGroup(parent, for: id, newNode: false, actor: actor, on: c) }
            }
            guard
                let row = try await c.query(
                    """
                    UPDATE organization.groups g SET name = $4, name_key = $5, description = $6, parent_group_id = $7, version = version + 1,
                        updated_at = now(), updated_by = $8
                    WHERE g.tenant_id = $1 AND g.id = $2 AND g.version = $3 AND g.deleted_at IS NULL
                    RETURNING \(Self.groupColumns)
                    """,
                    [
                        .text(actor.tenantID), .uuid(id), .int(expectedVersion), .text(data.name), .text(data.name.lowercased()),
                        .text(data.description), data.parentGroupID.map(PostgresValue.uuid) ?? .null, .text(actor.userID),
                    ]
                ).first
            else { try await throwGroupConflict(id: id, actor: actor, on: c) }
            let record = try Self.group(row)
            try await recordGroupChange(record, kind: .updated, fields: changedFields, actor: actor, on: c)
            return record
        }
    }

    public func setGroupDeleted(
        id: UUID, deleted: Bool, expectedVersion: Int64?, actor: Actor, write: WriteOptions<GroupRecord>
    ) async throws -> WriteOutcome<GroupRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            try await lockGroups(actor: actor, on: c)
            if deleted {
                let child = try await c.query(
                    "SELECT 1 AS child FROM organization.groups WHERE tenant_id = $1 AND parent_group_id = $2 AND deleted_at IS NULL LIMIT 1",
                    [.text(actor.tenantID), .uuid(id)]
                ).first
                if child != nil { throw OrganizationError.hasChildren(kind: "group", id: id.lowercaseText) }
            } else {
                let parent = try await c.query(
                    """
                    SELECT p.id, p.deleted_at IS NULL AS live FROM organization.groups g
                    JOIN organization.groups p ON p.tenant_id = g.tenant_id AND p.id = g.parent_group_id
                    WHERE g.tenant_id = $1 AND g.id = $2
                    """, [.text(actor.tenantID), .uuid(id)]
                ).first
                if let parent, try !parent.bool("live") {
                    throw OrganizationError.parentDeleted(kind: "group", id: try parent.uuid("id").lowercaseText)
                }
            }
            guard
                let row = try await c.query(
                    """
                    UPDATE organization.groups g SET deleted_at = CASE WHEN $3 THEN now() ELSE NULL END, version = version + 1,
                        updated_at = now(), updated_by = $5
                    WHERE g.tenant_id = $1 AND g.id = $2 AND (g.deleted_at IS NULL) = $3 AND ($4::int8 IS NULL OR g.version = $4)
                    RETURNING \(Self.groupColumns)
                    """,
                    [.text(actor.tenantID), .uuid(id), .bool(deleted), expectedVersion.map(PostgresValue.int) ?? .null, .text(actor.userID)]
                ).first
            else {
                if expectedVersion != nil { try await throwGroupConflict(id: id, actor: actor, on: c) }
                throw OrganizationError.notFound(kind: "group", id: id.lowercaseText)
            }
            let record = try Self.group(row)
            try await recordGroupChange(record, kind: deleted ? .deleted : .undeleted, fields: [], actor: actor, on: c)
            return record
        }
    }

    public func listGroups(_ query: GroupQuery, actor: Actor) async throws -> Rows<GroupRecord> {
        var conditions = ["g.tenant_id = $1"]
        var binds: [PostgresValue] = [.text(actor.tenantID)]
        func bind(_ value: PostgresValue) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        if !query.includeDeleted { conditions.append("g.deleted_at IS NULL") }
        if let parent = query.parentGroupID { conditions.append("g.parent_group_id = \(bind(.uuid(parent)))") }
        if let prefix = query.namePrefix {
            conditions.append("g.name_key >= \(bind(.text(prefix))) AND g.name_key < \(bind(.text(prefix + "\u{10FFFF}")))")
        }
        if let after = query.after { conditions.append("(g.name_key, g.id) > (\(bind(.text(after.nameKey))), \(bind(.uuid(after.id))))") }
        let limit = bind(.int(Int64(max(0, min(query.limit, OrganizationDomain.maxPageSize)) + 1)))
        // Only fixed SQL and placeholders are spliced.
        let rows = try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            "SELECT \(Self.groupColumns) FROM organization.groups g WHERE \(conditions.joined(separator: " AND ")) ORDER BY g.name_key, g.id LIMIT \(limit)",
            binds
        ).rows
        return Self.page(try rows.map(Self.group), limit: query.limit)
    }

    static func page<Record>(_ records: [Record], limit: Int) -> Rows<Record> {
        var records = records
        let more = records.count > limit
        if more { records.removeLast(records.count - limit) }
        return Rows(records: records, more: more)
    }

    /// The group, locked against a concurrent delete for the rest of the transaction (FOR SHARE: a soft delete is a
    /// non-key update, which FOR KEY SHARE would not wait for): nil unless live.
    private func liveGroup(_ id: UUID, actor: Actor, on c: PostgresConnection) async throws -> GroupRecord? {
        try await c.query(
            "SELECT \(Self.groupColumns) FROM organization.groups g WHERE g.tenant_id = $1 AND g.id = $2 AND g.deleted_at IS NULL FOR SHARE",
            [.text(actor.tenantID), .uuid(id)]
        ).first.map(Self.group)
    }

    private func liveContacts(_ ids: [UUID], actor: Actor, on c: PostgresConnection) async throws -> Set<UUID> {
        Set(
            try await c.query(
                """
                SELECT contact_id FROM organization.contacts
                WHERE tenant_id = $1 AND contact_id = ANY($2) AND NOT deleted AND merged_into IS NULL ORDER BY contact_id FOR SHARE
                """, [.text(actor.tenantID), .array(ids.map(PostgresValue.uuid), elementType: .uuid)]
            ).rows.map { try $0.uuid("contact_id") })
    }

    public func addMembers(
        group: UUID, contacts: [UUID], actor: Actor, write: WriteOptions<GroupBulkChange>
    ) async throws -> WriteOutcome<GroupBulkChange> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            guard let record = try await liveGroup(group, actor: actor, on: c) else {
                throw OrganizationError.notFound(kind: "group", id: group.lowercaseText)
            }
            let live = try await liveContacts(contacts, actor: actor, on: c)
            let added = Set(
                try await c.query(
                    """
                    INSERT INTO organization.group_members (tenant_id, group_id, contact_id, added_by)
                    SELECT $1, $2, unnest($3::uuid[]), $4 ON CONFLICT DO NOTHING RETURNING contact_id
                    """, [.text(actor.tenantID), .uuid(group), .array(live.map(PostgresValue.uuid), elementType: .uuid), .text(actor.userID)]
                ).rows.map { try $0.uuid("contact_id") })
            if !added.isEmpty {
                try await recordGroupChange(
                    record, kind: .updated, fields: ["members"], related: added.map(\.lowercaseText).sorted(), actor: actor, on: c)
            }
            return GroupBulkChange(live: live, changed: added)
        }
    }

    public func removeMembers(
        group: UUID, contacts: [UUID], actor: Actor, write: WriteOptions<GroupBulkChange>
    ) async throws -> WriteOutcome<GroupBulkChange> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            guard let record = try await liveGroup(group, actor: actor, on: c) else {
                throw OrganizationError.notFound(kind: "group", id: group.lowercaseText)
            }
            let live = try await liveContacts(contacts, actor: actor, on: c)
            let removed = Set(
                try await c.query(
                    "DELETE FROM organization.group_members WHERE tenant_id = $1 AND group_id = $2 AND contact_id = ANY($3) RETURNING contact_id",
                    [.text(actor.tenantID), .uuid(group), .array(contacts.map(PostgresValue.uuid), elementType: .uuid)]
                ).rows.map { try $0.uuid("contact_id") })
            if !removed.isEmpty {
                try await recordGroupChange(
                    record, kind: .updated, fields: ["members"], related: removed.map(\.lowercaseText).sorted(), actor: actor, on: c)
            }
            return GroupBulkChange(live: live, changed: removed)
        }
    }

    public func listGroupMembers(group: UUID, includeSubgroups: Bool, after: UUID?, limit: Int, actor: Actor) async throws -> Rows<GroupMember> {
        // The live groups below (bounded by the nesting limit); each contact once, with the asked group first when the
        // contact is in it directly.
        let rows = try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            WITH RECURSIVE below (id, depth) AS (
                SELECT $2::uuid, 0
                UNION ALL
                SELECT g.id, b.depth + 1 FROM below b
                JOIN organization.groups g ON g.tenant_id = $1 AND g.parent_group_id = b.id AND g.deleted_at IS NULL
                WHERE $3 AND b.depth < $4
            )
            SELECT DISTINCT ON (gm.contact_id) gm.contact_id, gm.group_id, p.display_name
            FROM organization.group_members gm
            JOIN below ON below.id = gm.group_id
            JOIN organization.contacts p ON p.tenant_id = gm.tenant_id AND p.contact_id = gm.contact_id AND NOT p.deleted AND p.merged_into IS NULL
            WHERE gm.tenant_id = $1 AND ($5::uuid IS NULL OR gm.contact_id > $5)
            ORDER BY gm.contact_id, (gm.group_id = $2) DESC, gm.group_id
            LIMIT $6
            """,
            [
                .text(actor.tenantID), .uuid(group), .bool(includeSubgroups), .int(Int64(GroupRules.maxDepth)),
                after.map(PostgresValue.uuid) ?? .null, .int(Int64(max(0, min(limit, OrganizationDomain.maxPageSize)) + 1)),
            ]
        ).rows
        let members = try rows.map {
            GroupMember(contactID: try $0.uuid("contact_id"), displayName: try $0.string("display_name"), groupID: try $0.uuid("group_id"))
        }
        return Self.page(members, limit: limit)
    }

    public func contactGroups(contact: UUID, after: NameCursor?, limit: Int, actor: Actor) async throws -> Rows<GroupRecord>? {
        // Whether the contact is live, in the same round trip as its page.
        let results = try await pool.pipeline(
            settings: ["app.tenant_id": actor.tenantID],
            [
                Self.liveContact(contact, actor: actor),
                (
                    """
                    SELECT \(Self.groupColumns) FROM organization.group_members gm
                    JOIN organization.groups g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id AND g.deleted_at IS NULL
                    WHERE gm.tenant_id = $1 AND gm.contact_id = $2 AND ($3::text IS NULL OR (g.name_key, g.id) > ($3::text, $4::uuid))
                    ORDER BY g.name_key, g.id LIMIT $5
                    """,
                    [
                        .text(actor.tenantID), .uuid(contact), after.map { .text($0.nameKey) } ?? .null, after.map { .uuid($0.id) } ?? .null,
                        .int(Int64(max(0, min(limit, OrganizationDomain.maxPageSize)) + 1)),
                    ]
                ),
            ])
        guard !results[0].rows.isEmpty else { return nil }
        return Self.page(try results[1].rows.map(Self.group), limit: limit)
    }
}
