import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresOrganizationStore {
    static let unitColumns = """
        id, organization_id, parent_unit_id, name, kind, version, created_at, created_by, updated_at, updated_by, deleted_at
        """

    static func unit(_ row: PostgresRow) throws -> UnitRecord {
        var parent: UUID?
        if case .uuid(let p) = row["parent_unit_id"] { parent = p }
        return UnitRecord(
            id: try row.uuid("id"),
            data: UnitData(
                organizationID: try row.uuid("organization_id"), parentUnitID: parent, name: try row.string("name"),
                kind: UnitKind(rawValue: Int(try row.int("kind"))) ?? .department),
            version: try row.int("version"), createdAt: try row.date("created_at"), createdBy: try row.string("created_by"),
            updatedAt: try row.date("updated_at"), updatedBy: try row.string("updated_by"), deletedAt: try row.optionalDate("deleted_at"))
    }

    private func recordUnitChange(_ record: UnitRecord, kind: ChangeKind, fields: [String], actor: Actor, on c: PostgresConnection) async throws {
        try await feed.record(
            ChangeRecord(
                resourceType: Self.unitType, resourceID: record.id.lowercaseText, kind: kind, changedFields: fields,
                resourceJSON: try publish.unit(record), actorID: actor.userID),
            tenantID: actor.tenantID, on: c)
    }

    private func lockUnits(actor: Actor, on c: PostgresConnection) async throws {
        try await c.query(
            "SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtextextended($1, 0))", [.text("organization.units/\(actor.tenantID)")])
    }

    /// Checks that `parent` is a live unit of `organization` under which `id` (with its sub-units) may sit.
    private func checkParentUnit(
        _ parent: UUID, organization: UUID, for id: UUID, newNode: Bool, actor: Actor, on c: PostgresConnection
    )
        async throws
    {
        let row = try await c.query(
            "SELECT organization_id, deleted_at IS NULL AS live FROM organization.units WHERE tenant_id = $1 AND id = $2",
            [.text(actor.tenantID), .uuid(parent)]
        ).first
        guard let row, try row.bool("live") else { throw OrganizationError.notFound(kind: "parent unit", id: parent.lowercaseText) }
        // The unit exists: saying "not found" would send the caller looking for the wrong mistake.
        guard try row.uuid("organization_id") == organization else {
            throw OrganizationError.invalid([
                Violation(
                    "unit.parent_unit_id", "is a unit of another organization; a parent must be in the unit's own", reason: "OTHER_ORGANIZATION")
            ])
        }
        let ancestry = try await c.query(
            """
            WITH RECURSIVE a (id, parent_unit_id, level) AS (
                SELECT id, parent_unit_id, 0 FROM organization.units WHERE tenant_id = $1 AND id = $2
                UNION ALL
                SELECT u.id, u.parent_unit_id, a.level + 1 FROM a
                JOIN organization.units u ON u.tenant_id = $1 AND u.id = a.parent_unit_id
                WHERE a.level <= $3
            )
            SELECT id FROM a ORDER BY level
            """, [.text(actor.tenantID), .uuid(parent), .int(Int64(OrganizationRules.maxUnitDepth))]
        ).rows.map { try $0.uuid("id") }
        var height = 0
        if !newNode {
            height = Int(
                try await c.query(
                    """
                    WITH RECURSIVE d (id, depth) AS (
                        SELECT $2::uuid, 0
                        UNION ALL
                        SELECT u.id, d.depth + 1 FROM d JOIN organization.units u ON u.tenant_id = $1 AND u.parent_unit_id = d.id
                        WHERE d.depth <= $3
                    )
                    SELECT max(depth) AS height FROM d
                    """, [.text(actor.tenantID), .uuid(id), .int(Int64(OrganizationRules.maxUnitDepth))]
                ).first?.int("height") ?? 0)
        }
        try OrganizationRules.checkMove(
            kind: "unit", id: id, newParentAncestry: ancestry, subtreeHeight: height, maxDepth: OrganizationRules.maxUnitDepth)
    }

    public func insertUnit(_ data: UnitData, actor: Actor, write: WriteOptions<UnitRecord>) async throws -> WriteOutcome<UnitRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let id = UUID.random()
            if data.parentUnitID != nil { try await lockUnits(actor: actor, on: c) }
            // FOR SHARE, not FOR KEY SHARE: a soft delete is a non-key update, which only FOR SHARE waits for.
            let organization = try await c.query(
                "SELECT deleted_at IS NULL AS live FROM organization.organizations WHERE tenant_id = $1 AND id = $2 FOR SHARE",
                [.text(actor.tenantID), .uuid(data.organizationID)]
            ).first
            guard let organization, try organization.bool("live") else {
                throw OrganizationError.notFound(kind: "organization", id: data.organizationID.lowercaseText)
            }
            if let parent = data.parentUnitID {
                try await checkParentUnit(parent, organization: data.organizationID, for: id, newNode: true, actor: actor, on: c)
            }
            let row = try await c.query(
                """
                INSERT INTO organization.units (tenant_id, id, organization_id, parent_unit_id, name, name_key, kind,
                    created_at, created_by, updated_at, updated_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, now(), $8)
                RETURNING \(Self.unitColumns)
                """,
                [
                    .text(actor.tenantID), .uuid(id), .uuid(data.organizationID), data.parentUnitID.map(PostgresValue.uuid) ?? .null,
                    .text(data.name), .text(data.name.lowercased()), .int(Int64(data.kind.rawValue)), .text(actor.userID),
                ]
            ).first!
            let record = try Self.unit(row)
            try await recordUnitChange(record, kind: .created, fields: [], actor: actor, on: c)
            return record
        }
    }

    public func fetchUnit(id: UUID, actor: Actor) async throws -> UnitRecord? {
        try await pool.query(
            settings: ["app.tenant_id": actor.tenantID], "SELECT \(Self.unitColumns) FROM organization.units WHERE tenant_id = $1 AND id = $2",
            [.text(actor.tenantID), .uuid(id)]
        ).first.map(Self.unit)
    }

    public func replaceUnit(
        id: UUID, expectedVersion: Int64, data: UnitData, changedFields: [String], actor: Actor, write: WriteOptions<UnitRecord>
    ) async throws -> WriteOutcome<UnitRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            if changedFields.contains("parent_unit_id") {
                try await lockUnits(actor: actor, on: c)
                if let parent = data.parentUnitID {
                    try await checkParentUnit(parent, organization: data.organizationID, for: id, newNode: false, actor: actor, on: c)
                }
            }
            guard
                let row = try await c.query(
                    """
                    UPDATE organization.units SET parent_unit_id = $4, name = $5, name_key = $6, kind = $7, version = version + 1,
                        updated_at = now(), updated_by = $8
                    WHERE tenant_id = $1 AND id = $2 AND version = $3 AND deleted_at IS NULL
                    RETURNING \(Self.unitColumns)
                    """,
                    [
                        .text(actor.tenantID), .uuid(id), .int(expectedVersion), data.parentUnitID.map(PostgresValue.uuid) ?? .null,
                        .text(data.name), .text(data.name.lowercased()), .int(Int64(data.kind.rawValue)), .text(actor.userID),
                    ]
                ).first
            else {
                let current = try await c.query(
                    "SELECT version, deleted_at FROM organization.units WHERE tenant_id = $1 AND id = $2", [.text(actor.tenantID), .uuid(id)]
                ).first
                guard let current, try current.optionalDate("deleted_at") == nil else {
                    throw OrganizationError.notFound(kind: "unit", id: id.lowercaseText)
                }
                throw OrganizationError.etagMismatch(current: "\"\(try current.int("version"))\"")
            }
            let record = try Self.unit(row)
            try await recordUnitChange(record, kind: .updated, fields: changedFields, actor: actor, on: c)
            return record
        }
    }

    public func setUnitDeleted(
        id: UUID, deleted: Bool, expectedVersion: Int64?, actor: Actor, write: WriteOptions<UnitRecord>
    ) async throws -> WriteOutcome<UnitRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            try await lockUnits(actor: actor, on: c)
            if deleted {
                let child = try await c.query(
                    "SELECT 1 AS child FROM organization.units WHERE tenant_id = $1 AND parent_unit_id = $2 AND deleted_at IS NULL LIMIT 1",
                    [.text(actor.tenantID), .uuid(id)]
                ).first
                if child != nil { throw OrganizationError.hasChildren(kind: "unit", id: id.lowercaseText) }
            } else {
                let parent = try await c.query(
                    """
                    SELECT p.id, p.deleted_at IS NULL AS live FROM organization.units u
                    JOIN organization.units p ON p.tenant_id = u.tenant_id AND p.id = u.parent_unit_id
                    WHERE u.tenant_id = $1 AND u.id = $2
                    """, [.text(actor.tenantID), .uuid(id)]
                ).first
                if let parent, try !parent.bool("live") {
                    throw OrganizationError.parentDeleted(kind: "unit", id: try parent.uuid("id").lowercaseText)
                }
            }
            guard
                let row = try await c.query(
                    """
                    UPDATE organization.units SET deleted_at = CASE WHEN $3 THEN now() ELSE NULL END, version = version + 1,
                        updated_at = now(), updated_by = $5
                    WHERE tenant_id = $1 AND id = $2 AND (deleted_at IS NULL) = $3 AND ($4::int8 IS NULL OR version = $4)
                    RETURNING \(Self.unitColumns)
                    """,
                    [.text(actor.tenantID), .uuid(id), .bool(deleted), expectedVersion.map(PostgresValue.int) ?? .null, .text(actor.userID)]
                ).first
            else {
                if expectedVersion != nil {
                    let current = try await c.query(
                        "SELECT version FROM organization.units WHERE tenant_id = $1 AND id = $2", [.text(actor.tenantID), .uuid(id)]
                    ).first
                    if let current { throw OrganizationError.etagMismatch(current: "\"\(try current.int("version"))\"") }
                }
                throw OrganizationError.notFound(kind: "unit", id: id.lowercaseText)
            }
            let record = try Self.unit(row)
            try await recordUnitChange(record, kind: deleted ? .deleted : .undeleted, fields: [], actor: actor, on: c)
            return record
        }
    }

    public func listUnits(_ query: UnitQuery, actor: Actor) async throws -> Rows<UnitRecord> {
        var conditions = ["tenant_id = $1", "organization_id = $2"]
        var binds: [PostgresValue] = [.text(actor.tenantID), .uuid(query.organizationID)]
        func bind(_ value: PostgresValue) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        if !query.includeDeleted { conditions.append("deleted_at IS NULL") }
        if let parent = query.parentUnitID { conditions.append("parent_unit_id = \(bind(.uuid(parent)))") }
        if let cursor = query.after { conditions.append("(name_key, id) > (\(bind(.text(cursor.nameKey))), \(bind(.uuid(cursor.id))))") }
        let limit = bind(.int(Int64(max(0, min(query.limit, OrganizationDomain.maxPageSize)) + 1)))
        // Only fixed column names and placeholders are spliced.
        let rows = try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            SELECT \(Self.unitColumns) FROM organization.units WHERE \(conditions.joined(separator: " AND "))
            ORDER BY name_key, id LIMIT \(limit)
            """, binds
        ).rows
        var records = try rows.map(Self.unit)
        let more = records.count > query.limit
        if more { records.removeLast(records.count - query.limit) }
        return Rows(records: records, more: more)
    }
}
