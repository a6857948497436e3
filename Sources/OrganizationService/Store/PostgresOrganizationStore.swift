import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// ``OrganizationStore`` on PostgreSQL. Every statement binds its values; every transaction sets `app.tenant_id`, and
/// the tables' row-level security admits only that tenant's rows.
///
/// The hierarchy is an adjacency list (`parent_id`) walked with bounded recursive queries (services/organization/
/// README.md says why, against a closure table). Every write that can change the shape of the live tree (a create
/// under a parent, a parent change, a delete, an undelete) first takes the tenant's hierarchy lock (a transaction
/// advisory lock), then reads the ancestry it checks: two concurrent moves can therefore never each pass a cycle
/// check that the other one invalidates.
public struct PostgresOrganizationStore: OrganizationStore {
    let pool: PostgresPool
    let feed: ChangeFeed
    let idempotency: Idempotency
    /// The published forms of resources in change events (the proto3 JSON of their messages), made by the handlers'
    /// mapping so that this store never sees protobuf.
    let publish: Publishers
    static let organizationType = "switchboard.organization.v1.Organization"
    static let unitType = "switchboard.organization.v1.Unit"
    static let membershipType = "switchboard.organization.v1.Membership"
    static let groupType = "switchboard.organization.v1.Group"
    static let columns = """
        id, name, domains, industry, size_band, revenue_currency, revenue_units, revenue_nanos, addresses::text AS addresses, tags, \
        owner_id, custom_fields::text AS custom_fields, parent_id, version, created_at, created_by, updated_at, updated_by, deleted_at
        """

    /// ``columns`` of the table aliased `o`.
    static let qualifiedColumns = columns.split(separator: ",").map { "o." + String($0).trimmingSpaces }.joined(separator: ", ")

    /// How each resource is published in change events.
    public struct Publishers: Sendable {
        /// An organization's proto3 JSON.
        public var organization: @Sendable (OrganizationRecord) throws -> String
        /// A unit's proto3 JSON.
        public var unit: @Sendable (UnitRecord) throws -> String
        /// A membership's proto3 JSON (without the contact's name: the feed keeps no personal data of contacts).
        public var membership: @Sendable (MembershipRecord) throws -> String
        /// A group's proto3 JSON.
        public var group: @Sendable (GroupRecord) throws -> String
        /// Creates the publishers.
        public init(
            organization: @escaping @Sendable (OrganizationRecord) throws -> String, unit: @escaping @Sendable (UnitRecord) throws -> String,
            membership: @escaping @Sendable (MembershipRecord) throws -> String, group: @escaping @Sendable (GroupRecord) throws -> String
        ) {
            self.organization = organization
            self.unit = unit
            self.membership = membership
            self.group = group
        }
    }

    /// Creates the store.
    /// - Parameters:
    ///   - pool: the service's pool.
    ///   - feed: the change feed written in each change's transaction.
    ///   - idempotency: the kit's idempotency keys.
    ///   - publish: the change-event payloads.
    public init(pool: PostgresPool, feed: ChangeFeed, idempotency: Idempotency, publish: Publishers) {
        self.pool = pool
        self.feed = feed
        self.idempotency = idempotency
        self.publish = publish
    }

    public func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]? {
        try await idempotency.replay(write, actor: actor, pool: pool)
    }

    private func read(_ actor: Actor, _ sql: String, _ binds: [PostgresValue]) async throws -> [PostgresRow] {
        try await pool.query(settings: ["app.tenant_id": actor.tenantID], sql, binds).rows
    }

    // MARK: Field definitions

    public func fieldDefinitions(actor: Actor, includeRetired: Bool) async throws -> [CustomFieldDefinition] {
        try await read(
            actor,
            """
            SELECT key, display_name, field_type, allowed_values, required, retired_at IS NOT NULL AS retired
            FROM organization.field_definitions WHERE tenant_id = $1 AND ($2 OR retired_at IS NULL) ORDER BY key
            """, [.text(actor.tenantID), .bool(includeRetired)]
        ).map(Self.definition)
    }

    static func definition(_ row: PostgresRow) throws -> CustomFieldDefinition {
        CustomFieldDefinition(
            key: try row.string("key"), displayName: try row.string("display_name"),
            type: CustomFieldType(rawValue: Int(try row.int("field_type"))) ?? .string, allowedValues: try row.strings("allowed_values"),
            required: try row.bool("required"), retired: try row.bool("retired"))
    }

    public func define(
        _ definition: CustomFieldDefinition, actor: Actor, write: WriteOptions<CustomFieldDefinition>
    ) async throws -> WriteOutcome<CustomFieldDefinition> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            // Two concurrent defines can both pass this count by one; the bound is about size, not exactness.
            let existing =
                try await c.query(
                    "SELECT count(*) AS n FROM organization.field_definitions WHERE tenant_id = $1", [.text(actor.tenantID)]
                ).first?.int("n") ?? 0
            guard existing < CustomFieldRules.maxDefinitions else { throw OrganizationError.tooManyFields(limit: CustomFieldRules.maxDefinitions) }
            let inserted = try await c.query(
                """
                INSERT INTO organization.field_definitions (tenant_id, key, display_name, field_type, allowed_values, required)
                VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key
                """,
                [
                    .text(actor.tenantID), .text(definition.key), .text(definition.displayName), .int(Int64(definition.type.rawValue)),
                    .array(definition.allowedValues.map(PostgresValue.text), elementType: .text), .bool(definition.required),
                ])
            guard !inserted.rows.isEmpty else { throw OrganizationError.fieldExists(key: definition.key) }
            return definition
        }
    }

    public func retire(key: String, actor: Actor, write: WriteOptions<CustomFieldDefinition>) async throws -> WriteOutcome<CustomFieldDefinition> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            guard
                let row = try await c.query(
                    """
                    UPDATE organization.field_definitions SET retired_at = coalesce(retired_at, now()) WHERE tenant_id = $1 AND key = $2
                    RETURNING key, display_name, field_type, allowed_values, required, true AS retired
                    """, [.text(actor.tenantID), .text(key)]
                ).first
            else { throw OrganizationError.fieldNotFound(key: key) }
            return try Self.definition(row)
        }
    }

    // MARK: Rows

    static func record(_ row: PostgresRow) throws -> OrganizationRecord {
        var data = OrganizationData()
        data.name = try row.string("name")
        data.domains = try row.strings("domains")
        data.industry = try row.string("industry")
        data.size = SizeBand(rawValue: Int(try row.int("size_band")))
        let currency = try row.string("revenue_currency")
        if !currency.isEmpty {
            data.annualRevenue = Money(
                currencyCode: currency, units: try row.int("revenue_units"), nanos: Int32(truncatingIfNeeded: try row.int("revenue_nanos")))
        }
        data.addresses = try ColumnJSON.addresses(try row.string("addresses"))
        data.tags = try row.strings("tags")
        data.ownerID = try row.string("owner_id")
        data.customFields = try ColumnJSON.object(try row.string("custom_fields"))
        if case .uuid(let parent) = row["parent_id"] { data.parentID = parent }
        return OrganizationRecord(
            id: try row.uuid("id"), data: data, version: try row.int("version"), createdAt: try row.date("created_at"),
            createdBy: try row.string("created_by"), updatedAt: try row.date("updated_at"), updatedBy: try row.string("updated_by"),
            deletedAt: try row.optionalDate("deleted_at"))
    }

    /// Binds $4 … $17 of the insert and update statements, in column order.
    private static func dataBinds(_ data: OrganizationData) -> [PostgresValue] {
        [
            .text(data.name), .text(data.name.lowercased()), .array(data.domains.map(PostgresValue.text), elementType: .text),
            .text(data.industry), .int(Int64(data.size?.rawValue ?? 0)), .text(data.annualRevenue?.currencyCode ?? ""),
            .int(data.annualRevenue?.units ?? 0), .int(Int64(data.annualRevenue?.nanos ?? 0)), .jsonb(ColumnJSON.addresses(data.addresses)),
            .array(data.tags.map(PostgresValue.text), elementType: .text), .text(data.ownerID), .jsonb(ColumnJSON.object(data.customFields)),
            data.parentID.map(PostgresValue.uuid) ?? .null,
        ]
    }

    // MARK: Hierarchy

    /// Serialises the tenant's changes to the shape of a hierarchy until the transaction ends.
    private func lockHierarchy(_ name: String, actor: Actor, on c: PostgresConnection) async throws {
        try await c.query(
            "SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtextextended($1, 0))", [.text("organization.\(name)/\(actor.tenantID)")])
    }

    /// An organization and its ancestors, nearest first (empty when it does not exist). Bounded: a cycle (which the
    /// writes never make) would end the walk past the depth limit rather than loop.
    private func ancestry(of id: UUID, actor: Actor, on c: PostgresConnection) async throws -> [UUID] {
        try await c.query(
            """
            WITH RECURSIVE a (id, parent_id, level) AS (
                SELECT id, parent_id, 0 FROM organization.organizations WHERE tenant_id = $1 AND id = $2
                UNION ALL
                SELECT o.id, o.parent_id, a.level + 1 FROM a
                JOIN organization.organizations o ON o.tenant_id = $1 AND o.id = a.parent_id
                WHERE a.level <= $3
            )
            SELECT id FROM a ORDER BY level
            """, [.text(actor.tenantID), .uuid(id), .int(Int64(OrganizationRules.maxHierarchyDepth))]
        ).rows.map { try $0.uuid("id") }
    }

    /// Levels below an organization, deleted descendants included (an undelete brings them back), at most the
    /// depth limit plus one.
    private func subtreeHeight(of id: UUID, actor: Actor, on c: PostgresConnection) async throws -> Int {
        let row = try await c.query(
            """
            WITH RECURSIVE d (id, depth) AS (
                SELECT $2::uuid, 0
                UNION ALL
                SELECT o.id, d.depth + 1 FROM d
                JOIN organization.organizations o ON o.tenant_id = $1 AND o.parent_id = d.id
                WHERE d.depth <= $3
            )
            SELECT max(depth) AS height FROM d
            """, [.text(actor.tenantID), .uuid(id), .int(Int64(OrganizationRules.maxHierarchyDepth))]
        ).first
        return Int(try row?.int("height") ?? 0)
    }

    /// Checks that `parent` is a live organization under which `id` (with its subtree) may sit.
    private func checkParent(_ parent: UUID, for id: UUID, newNode: Bool, actor: Actor, on c: PostgresConnection) async throws {
        let live = try await c.query(
            "SELECT deleted_at IS NULL AS live FROM organization.organizations WHERE tenant_id = $1 AND id = $2",
            [.text(actor.tenantID), .uuid(parent)]
        ).first
        guard let live, try live.bool("live") else {
            throw OrganizationError.notFound(kind: "parent organization", id: parent.uuidString.lowercased())
        }
        let ancestry = try await ancestry(of: parent, actor: actor, on: c)
        let height = newNode ? 0 : try await subtreeHeight(of: id, actor: actor, on: c)
        try OrganizationRules.checkMove(id: id, newParentAncestry: ancestry, subtreeHeight: height)
    }

    // MARK: Domains

    /// Reserves the organization's domains; a clash names the organization that holds the domain. One statement, in
    /// sorted order: two organizations reserving the same domains in opposite orders would otherwise deadlock.
    private func reserveDomains(_ data: OrganizationData, id: UUID, actor: Actor, on c: PostgresConnection) async throws {
        guard !data.domains.isEmpty else { return }
        let wanted = Set(data.domains).sorted()
        let reserved = Set(
            try await c.query(
                """
                INSERT INTO organization.organization_domains (tenant_id, domain, organization_id)
                SELECT $1, d, $3 FROM unnest($2::text[]) AS d ORDER BY d
                ON CONFLICT (tenant_id, domain) DO NOTHING RETURNING domain
                """, [.text(actor.tenantID), .array(wanted.map(PostgresValue.text), elementType: .text), .uuid(id)]
            ).rows.map { try $0.string("domain") })
        guard let domain = wanted.first(where: { !reserved.contains($0) }) else { return }
        let holder = try await c.query(
            "SELECT organization_id FROM organization.organization_domains WHERE tenant_id = $1 AND domain = $2",
            [.text(actor.tenantID), .text(domain)]
        ).first
        throw OrganizationError.domainTaken(domain: domain, existingOrganizationID: try holder?.uuid("organization_id") ?? id)
    }

    private func releaseDomains(id: UUID, actor: Actor, on c: PostgresConnection) async throws {
        try await c.query(
            "DELETE FROM organization.organization_domains WHERE tenant_id = $1 AND organization_id = $2", [.text(actor.tenantID), .uuid(id)])
    }

    private func recordChange(_ record: OrganizationRecord, kind: ChangeKind, fields: [String], actor: Actor, on c: PostgresConnection) async throws {
        try await feed.record(
            ChangeRecord(
                resourceType: Self.organizationType, resourceID: record.id.lowercaseText, kind: kind, changedFields: fields,
                resourceJSON: try publish.organization(record), actorID: actor.userID),
            tenantID: actor.tenantID, on: c)
    }

    // MARK: Organizations

    public func insert(
        _ data: OrganizationData, actor: Actor, write: WriteOptions<OrganizationRecord>
    ) async throws -> WriteOutcome<OrganizationRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let id = UUID.random()
            if let parent = data.parentID {
                try await lockHierarchy("hierarchy", actor: actor, on: c)
                try await checkParent(parent, for: id, newNode: true, actor: actor, on: c)
            }
            let row = try await c.query(
                """
                INSERT INTO organization.organizations (tenant_id, id, created_by, name, name_key, domains, industry, size_band,
                    revenue_currency, revenue_units, revenue_nanos, addresses, tags, owner_id, custom_fields, parent_id,
                    created_at, updated_at, updated_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, now(), now(), $3)
                RETURNING \(Self.columns)
                """, [.text(actor.tenantID), .uuid(id), .text(actor.userID)] + Self.dataBinds(data)
            ).first!
            try await reserveDomains(data, id: id, actor: actor, on: c)
            let record = try Self.record(row)
            try await recordChange(record, kind: .created, fields: [], actor: actor, on: c)
            return record
        }
    }

    /// One organization by id, deleted or not. Concurrent fetches for one tenant share one statement.
    static let byID = CoalescedRead(
        one: "SELECT \(columns) FROM organization.organizations WHERE tenant_id = $1 AND id = $2",
        many: "SELECT \(columns) FROM organization.organizations WHERE tenant_id = $1 AND id = ANY($2)", keyColumn: "id",
        elementType: .uuid)

    public func fetch(id: UUID, actor: Actor) async throws -> OrganizationRecord? {
        try await pool.query(Self.byID, settings: ["app.tenant_id": actor.tenantID], [.text(actor.tenantID)], key: .uuid(id))
            .first.map(Self.record)
    }

    public func fetch(ids: [UUID], actor: Actor) async throws -> [OrganizationRecord] {
        try await read(
            actor,
            "SELECT \(Self.columns) FROM organization.organizations WHERE tenant_id = $1 AND id = ANY($2) AND deleted_at IS NULL",
            [.text(actor.tenantID), .array(ids.map(PostgresValue.uuid), elementType: .uuid)]
        ).map(Self.record)
    }

    public func replace(
        id: UUID, expectedVersion: Int64, data: OrganizationData, changedFields: [String], actor: Actor,
        write: WriteOptions<OrganizationRecord>
    ) async throws -> WriteOutcome<OrganizationRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            // The hierarchy lock before any row lock, in every transaction that takes both.
            if changedFields.contains("parent_id") {
                try await lockHierarchy("hierarchy", actor: actor, on: c)
                if let parent = data.parentID { try await checkParent(parent, for: id, newNode: false, actor: actor, on: c) }
            }
            guard
                let row = try await c.query(
                    """
                    UPDATE organization.organizations SET name = $4, name_key = $5, domains = $6, industry = $7, size_band = $8,
                        revenue_currency = $9, revenue_units = $10, revenue_nanos = $11, addresses = $12, tags = $13, owner_id = $14,
                        custom_fields = $15, parent_id = $16, version = version + 1, updated_at = now(), updated_by = $17
                    WHERE tenant_id = $1 AND id = $2 AND version = $3 AND deleted_at IS NULL
                    RETURNING \(Self.columns)
                    """, [.text(actor.tenantID), .uuid(id), .int(expectedVersion)] + Self.dataBinds(data) + [.text(actor.userID)]
                ).first
            else {
                try await throwVersionConflict(table: "organizations", kind: "organization", id: id, actor: actor, on: c)
            }
            // Only a change of the domains touches their reservations (and their locks).
            if changedFields.contains("domains") {
                try await releaseDomains(id: id, actor: actor, on: c)
                try await reserveDomains(data, id: id, actor: actor, on: c)
            }
            let record = try Self.record(row)
            try await recordChange(record, kind: .updated, fields: changedFields, actor: actor, on: c)
            return record
        }
    }

    private func throwVersionConflict(table: String, kind: String, id: UUID, actor: Actor, on c: PostgresConnection) async throws -> Never {
        // `table` is one of this file's fixed table names, never client input.
        let current = try await c.query(
            "SELECT version, deleted_at FROM organization.\(table) WHERE tenant_id = $1 AND id = $2", [.text(actor.tenantID), .uuid(id)]
        ).first
        guard let current, try current.optionalDate("deleted_at") == nil else {
            throw OrganizationError.notFound(kind: kind, id: id.lowercaseText)
        }
        throw OrganizationError.etagMismatch(current: "\"\(try current.int("version"))\"")
    }

    public func setDeleted(
        id: UUID, deleted: Bool, expectedVersion: Int64?, actor: Actor, write: WriteOptions<OrganizationRecord>
    ) async throws -> WriteOutcome<OrganizationRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            try await lockHierarchy("hierarchy", actor: actor, on: c)
            if deleted {
                let child = try await c.query(
                    """
                    SELECT 1 AS child FROM organization.organizations WHERE tenant_id = $1 AND parent_id = $2 AND deleted_at IS NULL LIMIT 1
                    """, [.text(actor.tenantID), .uuid(id)]
                ).first
                if child != nil { throw OrganizationError.hasChildren(kind: "organization", id: id.lowercaseText) }
            } else {
                let parent = try await c.query(
                    """
                    SELECT p.id, p.deleted_at IS NULL AS live FROM organization.organizations o
                    JOIN organization.organizations p ON p.tenant_id = o.tenant_id AND p.id = o.parent_id
                    WHERE o.tenant_id = $1 AND o.id = $2
                    """, [.text(actor.tenantID), .uuid(id)]
                ).first
                if let parent, try !parent.bool("live") {
                    throw OrganizationError.parentDeleted(kind: "organization", id: try parent.uuid("id").lowercaseText)
                }
            }
            guard
                let row = try await c.query(
                    """
                    UPDATE organization.organizations SET deleted_at = CASE WHEN $3 THEN now() ELSE NULL END, version = version + 1,
                        updated_at = now(), updated_by = $5
                    WHERE tenant_id = $1 AND id = $2 AND (deleted_at IS NULL) = $3 AND ($4::int8 IS NULL OR version = $4)
                    RETURNING \(Self.columns)
                    """,
                    [.text(actor.tenantID), .uuid(id), .bool(deleted), expectedVersion.map(PostgresValue.int) ?? .null, .text(actor.userID)]
                ).first
            else {
                if expectedVersion != nil {
                    try await throwVersionConflict(table: "organizations", kind: "organization", id: id, actor: actor, on: c)
                }
                throw OrganizationError.notFound(kind: "organization", id: id.lowercaseText)
            }
            let record = try Self.record(row)
            if deleted {
                try await releaseDomains(id: id, actor: actor, on: c)
            } else {
                try await reserveDomains(record.data, id: id, actor: actor, on: c)
            }
            try await recordChange(record, kind: deleted ? .deleted : .undeleted, fields: [], actor: actor, on: c)
            return record
        }
    }

    public func list(_ query: OrganizationQuery, actor: Actor) async throws -> Rows<OrganizationRecord> {
        var conditions = ["tenant_id = $1"]
        var binds: [PostgresValue] = [.text(actor.tenantID)]
        func bind(_ value: PostgresValue) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        if !query.includeDeleted { conditions.append("deleted_at IS NULL") }
        if let parent = query.parentID { conditions.append("parent_id = \(bind(.uuid(parent)))") }
        if query.topLevelOnly { conditions.append("parent_id IS NULL") }
        if let industry = query.industry { conditions.append("industry = \(bind(.text(industry)))") }
        if let size = query.size { conditions.append("size_band = \(bind(.int(Int64(size.rawValue))))") }
        if let tag = query.tag { conditions.append("tags @> ARRAY[\(bind(.text(tag)))]::text[]") }
        if let domain = query.domain { conditions.append("domains @> ARRAY[\(bind(.text(domain)))]::text[]") }
        if let prefix = query.namePrefix {
            // A range on the byte-ordered name key: the index serves it whatever the plan (LIKE with a bound pattern
            // would not under a generic plan). U+10FFFF is the largest scalar, so every key with the prefix is below
            // the bound except keys continuing with U+10FFFF itself, a noncharacter.
            conditions.append("name_key >= \(bind(.text(prefix))) AND name_key < \(bind(.text(prefix + "\u{10FFFF}")))")
        }
        if let cursor = query.after {
            conditions.append("(name_key, id) > (\(bind(.text(cursor.nameKey))), \(bind(.uuid(cursor.id))))")
        }
        let limit = bind(.int(Int64(max(0, min(query.limit, OrganizationDomain.maxPageSize)) + 1)))
        let maxBytes = bind(.int(Int64(max(0, query.maxBytes))))
        // Only fixed column names and placeholders are spliced; every value above is bound. Around the index scan,
        // each row's text size and those before it: rows that start past the byte budget stay in the database.
        let sql = """
            SELECT * FROM (
                SELECT r.*, count(*) OVER () AS candidates,
                       coalesce(sum(octet_length(r::text)) OVER (ORDER BY name_key, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                           AS bytes_before
                FROM (
                    SELECT \(Self.columns), name_key FROM organization.organizations WHERE \(conditions.joined(separator: " AND "))
                    ORDER BY name_key, id LIMIT \(limit)
                ) r
            ) w WHERE bytes_before < \(maxBytes) ORDER BY name_key, id
            """
        let rows = try await read(actor, sql, binds)
        let candidates = try rows.first?.int("candidates") ?? 0
        var records = try rows.map(Self.record)
        if records.count > query.limit { records.removeLast(records.count - max(0, query.limit)) }
        return Rows(records: records, more: candidates > records.count)
    }

    public func tree(
        root: UUID, maxDepth: Int, batchSize: Int, actor: Actor, deliver: ([TreeNode]) async throws -> Void
    ) async throws -> Bool {
        try await pool.transaction(isolation: .repeatableRead, settings: ["app.tenant_id": actor.tenantID]) { c in
            let live = try await c.query(
                "SELECT 1 AS live FROM organization.organizations WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                [.text(actor.tenantID), .uuid(root)]
            ).first
            guard live != nil else { return false }
            // Depth-first in name order: each node's sort path is its ancestors' (name key, id) pairs and its own, and
            // a path sorts after its prefix. A cursor keeps memory bounded by one batch whatever the tree's size.
            try await c.query(
                """
                DECLARE org_tree NO SCROLL CURSOR FOR
                WITH RECURSIVE t (id, depth, path, sort_path) AS (
                    SELECT o.id, 0, ARRAY[o.id], ARRAY[o.name_key || chr(1) || o.id::text]
                    FROM organization.organizations o WHERE o.tenant_id = $1 AND o.id = $2
                    UNION ALL
                    SELECT c.id, t.depth + 1, t.path || c.id, t.sort_path || (c.name_key || chr(1) || c.id::text)
                    FROM t JOIN organization.organizations c ON c.tenant_id = $1 AND c.parent_id = t.id AND c.deleted_at IS NULL
                    WHERE t.depth < $3
                )
                SELECT \(Self.qualifiedColumns),
                    t.depth AS tree_depth, t.path AS tree_path
                FROM t JOIN organization.organizations o ON o.tenant_id = $1 AND o.id = t.id
                ORDER BY t.sort_path
                """, [.text(actor.tenantID), .uuid(root), .int(Int64(maxDepth))], prepared: false)
            while true {
                // The count is this code's constant, not client input.
                let rows = try await c.query("FETCH \(max(1, batchSize)) FROM org_tree", prepared: false).rows
                if rows.isEmpty { break }
                try await deliver(
                    try rows.map { row in
                        TreeNode(
                            record: try Self.record(row), depth: Int(try row.int("tree_depth")),
                            path: try Self.uuids(row["tree_path"]))
                    })
                if rows.count < batchSize { break }
            }
            try await c.query("CLOSE org_tree", prepared: false)
            return true
        }
    }

    static func uuids(_ value: PostgresValue) throws -> [UUID] {
        guard case .array(let elements, _) = value else { throw PostgresError(kind: .decoding, message: "not a uuid array") }
        return try elements.map {
            guard case .uuid(let id) = $0 else { throw PostgresError(kind: .decoding, message: "not a uuid array") }
            return id
        }
    }

    public func ancestors(of id: UUID, actor: Actor) async throws -> [OrganizationRecord] {
        try await read(
            actor,
            """
            WITH RECURSIVE a (id, parent_id, level) AS (
                SELECT id, parent_id, 0 FROM organization.organizations WHERE tenant_id = $1 AND id = $2
                UNION ALL
                SELECT o.id, o.parent_id, a.level + 1 FROM a
                JOIN organization.organizations o ON o.tenant_id = $1 AND o.id = a.parent_id
                WHERE a.level <= $3
            )
            SELECT \(Self.qualifiedColumns)
            FROM a JOIN organization.organizations o ON o.tenant_id = $1 AND o.id = a.id
            WHERE a.level > 0 ORDER BY a.level
            """, [.text(actor.tenantID), .uuid(id), .int(Int64(OrganizationRules.maxHierarchyDepth))]
        ).map(Self.record)
    }
}
