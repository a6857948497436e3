import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresOrganizationStore: MembershipStore {
    static let membershipColumns = """
        m.id, m.contact_id, m.organization_id, m.unit_id, m.title, m.roles, m.is_primary, m.start_date::text AS start_date, \
        m.end_date::text AS end_date, m.version, m.created_at, m.created_by, m.updated_at, m.updated_by
        """
    /// Memberships whose contact is live in the projection (a deleted or merged-away contact's are hidden).
    static let visibleMemberships = """
        organization.memberships m JOIN organization.contacts p
            ON p.tenant_id = m.tenant_id AND p.contact_id = m.contact_id AND NOT p.deleted AND p.merged_into IS NULL
        """
    /// Today in UTC, the default `as_of` and what "current" means for role limits.
    static let todayUTC = "(now() AT TIME ZONE 'UTC')::date"

    static func membership(_ row: PostgresRow) throws -> MembershipRecord {
        var data = MembershipData(contactID: try row.uuid("contact_id"), organizationID: try row.uuid("organization_id"))
        if case .uuid(let unit) = row["unit_id"] { data.unitID = unit }
        data.title = try row.string("title")
        data.roles = try row.strings("roles")
        data.primary = try row.bool("is_primary")
        data.startDate = try row.optionalString("start_date")
        data.endDate = try row.optionalString("end_date")
        return MembershipRecord(
            id: try row.uuid("id"), data: data, contactDisplayName: try row.optionalString("contact_display_name") ?? "",
            version: try row.int("version"), createdAt: try row.date("created_at"), createdBy: try row.string("created_by"),
            updatedAt: try row.date("updated_at"), updatedBy: try row.string("updated_by"))
    }

    // MARK: Roles

    static func role(_ row: PostgresRow) throws -> MembershipRole {
        MembershipRole(
            key: try row.string("key"), displayName: try row.string("display_name"),
            maxPerOrganization: Int(try row.int("max_per_organization")), retired: try row.bool("retired"))
    }

    public func membershipRoles(actor: Actor, includeRetired: Bool) async throws -> [MembershipRole] {
        try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            SELECT key, display_name, max_per_organization, retired_at IS NOT NULL AS retired FROM organization.membership_roles
            WHERE tenant_id = $1 AND ($2 OR retired_at IS NULL) ORDER BY key
            """, [.text(actor.tenantID), .bool(includeRetired)]
        ).rows.map(Self.role)
    }

    public func defineRole(_ role: MembershipRole, actor: Actor, write: WriteOptions<MembershipRole>) async throws -> WriteOutcome<MembershipRole> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let existing =
                try await c.query("SELECT count(*) AS n FROM organization.membership_roles WHERE tenant_id = $1", [.text(actor.tenantID)])
                .first?.int("n") ?? 0
            guard existing < MembershipRules.maxRoleDefinitions else {
                throw OrganizationError.tooManyRoles(limit: MembershipRules.maxRoleDefinitions)
            }
            let inserted = try await c.query(
                """
                INSERT INTO organization.membership_roles (tenant_id, key, display_name, max_per_organization) VALUES ($1, $2, $3, $4)
                ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key
                """, [.text(actor.tenantID), .text(role.key), .text(role.displayName), .int(Int64(role.maxPerOrganization))])
            guard !inserted.rows.isEmpty else { throw OrganizationError.roleExists(key: role.key) }
            return role
        }
    }

    // MARK: Checks inside a write

    private func lock(_ name: String, actor: Actor, on c: PostgresConnection) async throws {
        try await c.query("SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtextextended($1, 0))", [.text("organization.\(name)/\(actor.tenantID)")])
    }

    /// The contact's display name, if it is live in the projection.
    private func liveContactName(_ id: UUID, actor: Actor, on c: PostgresConnection) async throws -> String? {
        try await c.query(
            """
            SELECT display_name FROM organization.contacts
            WHERE tenant_id = $1 AND contact_id = $2 AND NOT deleted AND merged_into IS NULL FOR SHARE
            """, [.text(actor.tenantID), .uuid(id)]
        ).first?.string("display_name")
    }

    /// Locks, then checks everything a membership's data refers to; returns the contact's display name.
    /// Lock order: the contact's (primary flag), then the organization's (role limits).
    /// - Parameter checkUnit: whether the unit must be live (not on an update that leaves it as it was: a unit deleted
    ///   since would otherwise make every change of the membership, a title or an end date, fail naming the unit).
    private func prepare(_ data: MembershipData, id: UUID, actor: Actor, checkUnit: Bool = true, on c: PostgresConnection) async throws -> String {
        if data.primary { try await lock("contact/\(data.contactID.lowercaseText)", actor: actor, on: c) }
        let roles = try await membershipRoles(on: c, actor: actor).filter { data.roles.contains($0.key) && $0.maxPerOrganization > 0 }
        if !roles.isEmpty { try await lock("members/\(data.organizationID.lowercaseText)", actor: actor, on: c) }
        guard let name = try await liveContactName(data.contactID, actor: actor, on: c) else {
            throw OrganizationError.notFound(kind: "contact", id: data.contactID.lowercaseText)
        }
        let organization = try await c.query(
            "SELECT 1 AS live FROM organization.organizations WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR SHARE",
            [.text(actor.tenantID), .uuid(data.organizationID)]
        ).first
        guard organization != nil else { throw OrganizationError.notFound(kind: "organization", id: data.organizationID.lowercaseText) }
        if checkUnit, let unit = data.unitID {
            let row = try await c.query(
                """
                SELECT 1 AS live FROM organization.units WHERE tenant_id = $1 AND id = $2 AND organization_id = $3 AND deleted_at IS NULL
                FOR SHARE
                """, [.text(actor.tenantID), .uuid(unit), .uuid(data.organizationID)]
            ).first
            guard row != nil else { throw OrganizationError.notFound(kind: "unit", id: unit.lowercaseText) }
        }
        // A role's limit holds at every day from today on: the memberships with the role that would be active on the
        // same day as this one, counted at the day most of them overlap, stay below the limit. So a successor can be
        // entered ahead of time (a CEO from the day after the current one's end date), a past period takes no place,
        // and a membership that has already ended is history, not checked.
        for role in roles {
            let busiest =
                try await c.query(
                    """
                    WITH window_ AS (
                        SELECT greatest(coalesce($5::date, '-infinity'::date), \(Self.todayUTC)) AS s, coalesce($6::date, 'infinity'::date) AS e
                    ), others AS (
                        SELECT greatest(coalesce(m.start_date, '-infinity'::date), w.s) AS s, coalesce(m.end_date, 'infinity'::date) AS e
                        FROM \(Self.visibleMemberships), window_ w
                        WHERE m.tenant_id = $1 AND m.organization_id = $2 AND m.roles @> ARRAY[$3]::text[] AND m.id <> $4
                          AND coalesce(m.end_date, 'infinity'::date) >= w.s AND coalesce(m.start_date, '-infinity'::date) <= w.e
                    ), days AS (
                        SELECT s AS d FROM window_ WHERE s <= e
                        UNION SELECT o.s FROM others o, window_ w WHERE o.s <= w.e
                    )
                    SELECT coalesce(max((SELECT count(*) FROM others o WHERE o.s <= days.d AND o.e >= days.d)), 0) AS n FROM days
                    """,
                    [
                        .text(actor.tenantID), .uuid(data.organizationID), .text(role.key), .uuid(id),
                        data.startDate.map(PostgresValue.text) ?? .null, data.endDate.map(PostgresValue.text) ?? .null,
                    ]
                ).first?.int("n") ?? 0
            if busiest >= role.maxPerOrganization {
                throw OrganizationError.roleLimitReached(
                    role: role.key, limit: role.maxPerOrganization, organizationID: data.organizationID.lowercaseText)
            }
        }
        if data.primary {
            // A second primary demotes the first (each demotion is a change of its own).
            let demoted = try await c.query(
                """
                UPDATE organization.memberships m SET is_primary = false, version = version + 1, updated_at = now(), updated_by = $3
                WHERE m.tenant_id = $1 AND m.contact_id = $2 AND m.is_primary AND m.id <> $4
                RETURNING \(Self.membershipColumns)
                """, [.text(actor.tenantID), .uuid(data.contactID), .text(actor.userID), .uuid(id)])
            for row in demoted.rows {
                try await recordMembershipChange(try Self.membership(row), kind: .updated, fields: ["primary"], actor: actor, on: c)
            }
        }
        return name
    }

    private func membershipRoles(on c: PostgresConnection, actor: Actor) async throws -> [MembershipRole] {
        try await c.query(
            """
            SELECT key, display_name, max_per_organization, retired_at IS NOT NULL AS retired FROM organization.membership_roles
            WHERE tenant_id = $1
            """, [.text(actor.tenantID)]
        ).rows.map(Self.role)
    }

    func recordMembershipChange(_ record: MembershipRecord, kind: ChangeKind, fields: [String], actor: Actor, on c: PostgresConnection) async throws {
        var published = record
        published.contactDisplayName = ""
        try await feed.record(
            ChangeRecord(
                resourceType: Self.membershipType, resourceID: record.id.lowercaseText, kind: kind, changedFields: fields,
                resourceJSON: try publish.membership(published), actorID: actor.userID),
            tenantID: actor.tenantID, on: c)
    }

    private static func dataBinds(_ data: MembershipData) -> [PostgresValue] {
        [
            data.unitID.map(PostgresValue.uuid) ?? .null, .text(data.title), .array(data.roles.map(PostgresValue.text), elementType: .text),
            .bool(data.primary), data.startDate.map(PostgresValue.text) ?? .null, data.endDate.map(PostgresValue.text) ?? .null,
        ]
    }

    // MARK: Memberships

    public func insertMembership(
        _ data: MembershipData, actor: Actor, write: WriteOptions<MembershipRecord>
    ) async throws -> WriteOutcome<MembershipRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let id = UUID.random()
            let name = try await prepare(data, id: id, actor: actor, on: c)
            let row = try await c.query(
                """
                INSERT INTO organization.memberships AS m (tenant_id, id, contact_id, organization_id, unit_id, title, roles, is_primary,
                    start_date, end_date, created_at, created_by, updated_at, updated_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::date, $10::date, now(), $11, now(), $11)
                RETURNING \(Self.membershipColumns)
                """,
                [.text(actor.tenantID), .uuid(id), .uuid(data.contactID), .uuid(data.organizationID)] + Self.dataBinds(data)
                    + [.text(actor.userID)]
            ).first!
            var record = try Self.membership(row)
            record.contactDisplayName = name
            try await recordMembershipChange(record, kind: .created, fields: [], actor: actor, on: c)
            return record
        }
    }

    public func fetchMembership(id: UUID, actor: Actor) async throws -> MembershipRecord? {
        try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            SELECT \(Self.membershipColumns), p.display_name AS contact_display_name FROM \(Self.visibleMemberships)
            WHERE m.tenant_id = $1 AND m.id = $2
            """, [.text(actor.tenantID), .uuid(id)]
        ).first.map(Self.membership)
    }

    public func replaceMembership(
        id: UUID, expectedVersion: Int64, data: MembershipData, changedFields: [String], actor: Actor, write: WriteOptions<MembershipRecord>
    ) async throws -> WriteOutcome<MembershipRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let name = try await prepare(data, id: id, actor: actor, checkUnit: changedFields.contains("unit_id"), on: c)
            guard
                let row = try await c.query(
                    """
                    UPDATE organization.memberships m SET unit_id = $4, title = $5, roles = $6, is_primary = $7, start_date = $8::date,
                        end_date = $9::date, version = version + 1, updated_at = now(), updated_by = $10
                    WHERE m.tenant_id = $1 AND m.id = $2 AND m.version = $3
                    RETURNING \(Self.membershipColumns)
                    """, [.text(actor.tenantID), .uuid(id), .int(expectedVersion)] + Self.dataBinds(data) + [.text(actor.userID)]
                ).first
            else {
                try await throwMembershipConflict(id: id, actor: actor, on: c)
            }
            var record = try Self.membership(row)
            record.contactDisplayName = name
            try await recordMembershipChange(record, kind: .updated, fields: changedFields, actor: actor, on: c)
            return record
        }
    }

    private func throwMembershipConflict(id: UUID, actor: Actor, on c: PostgresConnection) async throws -> Never {
        let current = try await c.query(
            "SELECT version FROM organization.memberships WHERE tenant_id = $1 AND id = $2", [.text(actor.tenantID), .uuid(id)]
        ).first
        guard let current else { throw OrganizationError.notFound(kind: "membership", id: id.lowercaseText) }
        throw OrganizationError.etagMismatch(current: "\"\(try current.int("version"))\"")
    }

    public func deleteMembership(
        id: UUID, expectedVersion: Int64?, actor: Actor, write: WriteOptions<MembershipRecord>
    ) async throws -> WriteOutcome<MembershipRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            guard
                let row = try await c.query(
                    """
                    DELETE FROM organization.memberships m WHERE m.tenant_id = $1 AND m.id = $2 AND ($3::int8 IS NULL OR m.version = $3)
                    RETURNING \(Self.membershipColumns)
                    """, [.text(actor.tenantID), .uuid(id), expectedVersion.map(PostgresValue.int) ?? .null]
                ).first
            else {
                try await throwMembershipConflict(id: id, actor: actor, on: c)
            }
            let record = try Self.membership(row)
            try await recordMembershipChange(record, kind: .deleted, fields: [], actor: actor, on: c)
            return record
        }
    }

    public func listMemberships(_ query: MembershipQuery, actor: Actor) async throws -> Rows<MembershipRecord>? {
        var conditions = ["m.tenant_id = $1"]
        var binds: [PostgresValue] = [.text(actor.tenantID)]
        func bind(_ value: PostgresValue) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        var with = ""
        var settings = ["app.tenant_id": actor.tenantID]
        if let organization = query.organizationID {
            let subtree = query.includeDescendants ? try await subtreeIDs(of: organization, upTo: Self.maxBoundSubtree, actor: actor) : nil
            if let subtree, subtree.count <= Self.maxBoundSubtree {
                // The subtree as a bound array rather than a recursive CTE in the same statement: PostgreSQL cannot
                // estimate a recursive CTE's size (it guessed 141 rows for 11,111) and so sorted every membership of a
                // large subtree to return one page (590 ms for 90,000); with the ids bound, a custom plan (forced:
                // a generic one could not know the array's length) walks memberships in id order through a hashed
                // membership test and stops at the page (under a millisecond), or uses the per-organization index
                // for a small subtree.
                conditions.append("m.organization_id = ANY(\(bind(.array(subtree.map(PostgresValue.uuid), elementType: .uuid))))")
                settings["plan_cache_mode"] = "force_custom_plan"
            } else if query.includeDescendants {
                // The live subtree, bounded by the hierarchy's depth limit.
                with = """
                    WITH RECURSIVE subtree (id, depth) AS (
                        SELECT id, 0 FROM organization.organizations WHERE tenant_id = $1 AND id = \(bind(.uuid(organization))) AND deleted_at IS NULL
                        UNION ALL
                        SELECT o.id, s.depth + 1 FROM subtree s
                        JOIN organization.organizations o ON o.tenant_id = $1 AND o.parent_id = s.id AND o.deleted_at IS NULL
                        WHERE s.depth < \(bind(.int(Int64(OrganizationRules.maxHierarchyDepth))))
                    )
                    """
                conditions.append("m.organization_id IN (SELECT id FROM subtree)")
            } else {
                conditions.append("m.organization_id = \(bind(.uuid(organization)))")
            }
        }
        if let contact = query.contactID {
            conditions.append("m.contact_id = \(bind(.uuid(contact)))")
            // A contact's memberships of deleted organizations are hidden with them.
            conditions.append(
                "EXISTS (SELECT 1 FROM organization.organizations o WHERE o.tenant_id = m.tenant_id AND o.id = m.organization_id AND o.deleted_at IS NULL)"
            )
        }
        if let role = query.role { conditions.append("m.roles @> ARRAY[\(bind(.text(role)))]::text[]") }
        if let unit = query.unitID { conditions.append("m.unit_id = \(bind(.uuid(unit)))") }
        let asOf = "coalesce(\(bind(query.asOf.map(PostgresValue.text) ?? .null))::date, \(Self.todayUTC))"
        conditions.append("(m.start_date IS NULL OR m.start_date <= \(asOf))")
        if !query.includeEnded { conditions.append("(m.end_date IS NULL OR m.end_date >= \(asOf))") }
        if let after = query.afterID { conditions.append("m.id > \(bind(.uuid(after)))") }
        let limit = bind(.int(Int64(max(0, min(query.limit, OrganizationDomain.maxPageSize)) + 1)))
        // Only fixed SQL and placeholders are spliced; every value is bound.
        let list = (
            sql: """
            \(with)
            SELECT \(Self.membershipColumns), p.display_name AS contact_display_name FROM \(Self.visibleMemberships)
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY m.id LIMIT \(limit)
            """,
            binds: binds
        )
        let rows: [PostgresRow]
        if let contact = query.contactID {
            // Whether the contact is live, in the same round trip as its page.
            let results = try await pool.pipeline(settings: settings, [Self.liveContact(contact, actor: actor), list])
            guard !results[0].rows.isEmpty else { return nil }
            rows = results[1].rows
        } else {
            rows = try await pool.query(settings: settings, list.sql, list.binds).rows
        }
        var records = try rows.map(Self.membership)
        let more = records.count > query.limit
        if more { records.removeLast(records.count - query.limit) }
        return Rows(records: records, more: more)
    }

    /// Largest subtree bound as an array in a member listing; a larger one is joined as a recursive CTE instead.
    static let maxBoundSubtree = 50_000

    /// The ids of the live subtree below (and including) a live organization, at most `limit` + 1 of them (one more
    /// than `limit` says "larger"), bounded by the hierarchy's depth limit.
    private func subtreeIDs(of root: UUID, upTo limit: Int, actor: Actor) async throws -> [UUID] {
        try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            WITH RECURSIVE subtree (id, depth) AS (
                SELECT id, 0 FROM organization.organizations WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL
                UNION ALL
                SELECT o.id, s.depth + 1 FROM subtree s
                JOIN organization.organizations o ON o.tenant_id = $1 AND o.parent_id = s.id AND o.deleted_at IS NULL
                WHERE s.depth < $3
            )
            SELECT id FROM subtree LIMIT $4
            """, [.text(actor.tenantID), .uuid(root), .int(Int64(OrganizationRules.maxHierarchyDepth)), .int(Int64(limit + 1))]
        ).rows.map { try $0.uuid("id") }
    }

    /// The statement that returns one row when the contact is known in the tenant, not deleted and not merged away,
    /// and none otherwise: sent in front of a read of the contact's lists.
    static func liveContact(_ id: UUID, actor: Actor) -> (sql: String, binds: [PostgresValue]) {
        (
            "SELECT 1 AS live FROM organization.contacts WHERE tenant_id = $1 AND contact_id = $2 AND NOT deleted AND merged_into IS NULL",
            [.text(actor.tenantID), .uuid(id)]
        )
    }
}
