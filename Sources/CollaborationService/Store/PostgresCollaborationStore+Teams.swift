import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresCollaborationStore {
    static let teamColumns = """
        t.id, t.name, t.version, t.created_at, t.created_by, t.updated_at, t.updated_by, NULL::timestamptz AS deleted_at, \
        coalesce((SELECT array_agg(m.user_id ORDER BY m.user_id) FROM collaboration.team_members m
                  WHERE m.tenant_id = t.tenant_id AND m.team_id = t.id), '{}') AS members
        """

    static func team(_ row: PostgresRow) throws -> TeamRecord {
        TeamRecord(
            id: try row.uuid("id"), name: try row.string("name"), members: try row.strings("members"), version: try row.int("version"),
            audit: try audit(row))
    }

    func fetchTeam(id: UUID, principal: Principal, on c: PostgresConnection) async throws -> TeamRecord? {
        try await c.query(
            "SELECT \(Self.teamColumns) FROM collaboration.teams t WHERE t.tenant_id = $1 AND t.id = $2",
            [.text(principal.actor.tenantID), .uuid(id)]
        ).first.map(Self.team)
    }

    /// The protocol requirement `insertTeam` (documented on the protocol).
    public func insertTeam(
        name: String, members: [String], principal: Principal, write: WriteOptions<TeamRecord>
    ) async throws
        -> WriteOutcome<TeamRecord>
    {
        try await self.write(write, principal) { c in
            let tenant = PostgresValue.text(principal.actor.tenantID)
            let taken = try await c.query(
                "SELECT 1 AS taken FROM collaboration.teams WHERE tenant_id = $1 AND lower(name) = lower($2)", [tenant, .text(name)]
            ).first
            if taken != nil { throw CollaborationError.alreadyExists("a team named \(CustomFieldRules.excerpt(name)) exists") }
            let id = UUID.random()
            do {
                try await c.query(
                    """
                    INSERT INTO collaboration.teams (tenant_id, id, name, created_at, created_by, updated_at, updated_by)
                    VALUES ($1, $2, $3, now(), $4, now(), $4)
                    """, [tenant, .uuid(id), .text(name), .text(principal.userID)])
            } catch let error as PostgresError where error.isUniqueViolation {
                // Another create with the name committed between the check and this insert.
                throw CollaborationError.alreadyExists("a team named \(CustomFieldRules.excerpt(name)) exists")
            }
            try await c.query(
                "INSERT INTO collaboration.team_members (tenant_id, team_id, user_id) SELECT $1, $2, unnest($3::text[])",
                [tenant, .uuid(id), .array(members.map(PostgresValue.text), elementType: .text)])
            let team = try await fetchTeam(id: id, principal: principal, on: c)!
            try await recordChange(Self.teamType, id: id.lowercaseText, kind: .created, json: try publish.team(team), principal: principal, on: c)
            return team
        }
    }

    /// The protocol requirement `renameTeam` (documented on the protocol).
    public func renameTeam(
        id: UUID, name: String, expectedVersion: Int64?, principal: Principal, write: WriteOptions<TeamRecord>
    )
        async throws -> WriteOutcome<TeamRecord>
    {
        try await self.write(write, principal) { c in
            let tenant = PostgresValue.text(principal.actor.tenantID)
            let taken = try await c.query(
                "SELECT 1 AS taken FROM collaboration.teams WHERE tenant_id = $1 AND lower(name) = lower($2) AND id <> $3",
                [tenant, .text(name), .uuid(id)]
            ).first
            if taken != nil { throw CollaborationError.alreadyExists("a team named \(CustomFieldRules.excerpt(name)) exists") }
            let updated: Int
            do {
                updated = try await c.query(
                    """
                    UPDATE collaboration.teams SET name = $3, version = version + 1, updated_at = now(), updated_by = $5
                    WHERE tenant_id = $1 AND id = $2 AND ($4::int8 IS NULL OR version = $4)
                    """, [tenant, .uuid(id), .text(name), expectedVersion.map(PostgresValue.int) ?? .null, .text(principal.userID)]
                ).affectedRows
            } catch let error as PostgresError where error.isUniqueViolation {
                throw CollaborationError.alreadyExists("a team named \(CustomFieldRules.excerpt(name)) exists")
            }
            guard let team = try await fetchTeam(id: id, principal: principal, on: c) else {
                throw CollaborationError.notFound(kind: "team", id: id.lowercaseText)
            }
            guard updated == 1 else { throw CollaborationError.etagMismatch(current: team.etag) }
            try await recordChange(
                Self.teamType, id: id.lowercaseText, kind: .updated, fields: ["name"], json: try publish.team(team), principal: principal, on: c)
            return team
        }
    }

    /// The protocol requirement `fetchTeam` (documented on the protocol).
    public func fetchTeam(id: UUID, principal: Principal) async throws -> TeamRecord? {
        try await read(
            principal, "SELECT \(Self.teamColumns) FROM collaboration.teams t WHERE t.tenant_id = $1 AND t.id = $2",
            [.text(principal.actor.tenantID), .uuid(id)]
        ).first.map(Self.team)
    }

    /// The protocol requirement `listTeams` (documented on the protocol).
    public func listTeams(member: String?, after: (name: String, id: UUID)?, limit: Int, principal: Principal) async throws -> Rows<TeamRecord> {
        var binds = Binds(values: [.text(principal.actor.tenantID)])
        var conditions = ["t.tenant_id = $1"]
        if let member {
            conditions.append(
                "EXISTS (SELECT 1 FROM collaboration.team_members m WHERE m.tenant_id = t.tenant_id AND m.team_id = t.id AND m.user_id = \(binds.add(.text(member))))"
            )
        }
        if let after { conditions.append("(lower(t.name), t.id) > (\(binds.add(.text(after.name))), \(binds.add(.uuid(after.id))))") }
        let limitPlaceholder = binds.add(.int(Int64(limit + 1)))
        // Only fixed text and placeholders are spliced.
        let rows = try await read(
            principal,
            """
            SELECT \(Self.teamColumns) FROM collaboration.teams t WHERE \(conditions.joined(separator: " AND "))
            ORDER BY lower(t.name), t.id LIMIT \(limitPlaceholder)
            """, binds.values)
        return Self.page(try rows.map(Self.team), limit: limit)
    }

    /// The protocol requirement `changeMembers` (documented on the protocol).
    public func changeMembers(
        teamID: UUID, add: [String], remove: [String], principal: Principal, write: WriteOptions<TeamRecord>
    ) async throws -> WriteOutcome<TeamRecord> {
        try await self.write(write, principal) { c in
            let tenant = PostgresValue.text(principal.actor.tenantID)
            // The team's row lock serialises membership changes, so the size check below cannot be raced past.
            guard
                try await c.query("SELECT 1 AS found FROM collaboration.teams WHERE tenant_id = $1 AND id = $2 FOR UPDATE", [tenant, .uuid(teamID)])
                    .first != nil
            else { throw CollaborationError.notFound(kind: "team", id: teamID.lowercaseText) }
            var changed = 0
            if !add.isEmpty {
                changed += try await c.query(
                    """
                    INSERT INTO collaboration.team_members (tenant_id, team_id, user_id) SELECT $1, $2, unnest($3::text[])
                    ON CONFLICT DO NOTHING
                    """, [tenant, .uuid(teamID), .array(add.map(PostgresValue.text), elementType: .text)]
                ).affectedRows
                let size = try await c.query(
                    "SELECT count(*) AS size FROM collaboration.team_members WHERE tenant_id = $1 AND team_id = $2", [tenant, .uuid(teamID)]
                ).first!.int("size")
                if size > Int64(TeamRules.maxMembers) {
                    throw CollaborationError.failedPrecondition("a team has at most \(TeamRules.maxMembers) members; nothing was added")
                }
            }
            if !remove.isEmpty {
                changed += try await c.query(
                    "DELETE FROM collaboration.team_members WHERE tenant_id = $1 AND team_id = $2 AND user_id = ANY($3::text[])",
                    [tenant, .uuid(teamID), .array(remove.map(PostgresValue.text), elementType: .text)]
                ).affectedRows
            }
            if changed > 0 {
                try await c.query(
                    "UPDATE collaboration.teams SET version = version + 1, updated_at = now(), updated_by = $3 WHERE tenant_id = $1 AND id = $2",
                    [tenant, .uuid(teamID), .text(principal.userID)])
            }
            let team = try await fetchTeam(id: teamID, principal: principal, on: c)!
            if changed > 0 {
                try await recordChange(
                    Self.teamType, id: teamID.lowercaseText, kind: .updated, fields: ["member_user_ids"], json: try publish.team(team),
                    principal: principal, on: c)
            }
            return team
        }
    }

    // MARK: Grants

    static let grantColumns = "g.id, g.note_id, g.user_id, g.team_id, g.permission, g.granted_by, g.created_at"

    static func grant(_ row: PostgresRow) throws -> GrantRecord {
        let grantee: Grantee
        if case .uuid(let team) = row["team_id"] { grantee = .team(team) } else { grantee = .user(try row.string("user_id")) }
        return GrantRecord(
            id: try row.uuid("id"), noteID: try row.uuid("note_id"), grantee: grantee,
            permission: Permission(rawValue: Int(try row.int("permission"))) ?? .view, grantedBy: try row.string("granted_by"),
            createdAt: try row.date("created_at"))
    }

    /// The protocol requirement `upsertGrant` (documented on the protocol).
    public func upsertGrant(
        noteID: UUID, grantee: Grantee, permission: Permission, principal: Principal, write: WriteOptions<GrantRecord>
    ) async throws -> WriteOutcome<GrantRecord> {
        try await self.write(write, principal) { c in
            let tenant = PostgresValue.text(principal.actor.tenantID)
            // The note's row lock serialises its grants, so the count below cannot be raced past.
            _ = try await c.query("SELECT 1 AS locked FROM collaboration.notes WHERE tenant_id = $1 AND id = $2 FOR UPDATE", [tenant, .uuid(noteID)])
            let count = try await c.query(
                "SELECT count(*) AS grants FROM collaboration.grants WHERE tenant_id = $1 AND note_id = $2", [tenant, .uuid(noteID)]
            ).first!.int("grants")
            var user: PostgresValue = .null, team: PostgresValue = .null, target = ""
            switch grantee {
            case .user(let u):
                user = .text(u)
                target = "(tenant_id, note_id, user_id) WHERE user_id IS NOT NULL"
            case .team(let t):
                team = .uuid(t)
                target = "(tenant_id, note_id, team_id) WHERE team_id IS NOT NULL"
            }
            // A new grant past the limit is refused; replacing an existing grantee's permission is not.
            let row = try await c.query(
                """
                INSERT INTO collaboration.grants AS g (tenant_id, id, note_id, user_id, team_id, permission, granted_by, created_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, now())
                ON CONFLICT \(target) DO UPDATE SET permission = EXCLUDED.permission, granted_by = EXCLUDED.granted_by
                RETURNING \(Self.grantColumns), (xmax = 0) AS inserted
                """,
                [tenant, .uuid(UUID.random()), .uuid(noteID), user, team, .int(Int64(permission.rawValue)), .text(principal.userID)]
            ).first!
            if try row.bool("inserted"), count >= Int64(TeamRules.maxGrantsPerNote) {
                throw CollaborationError.failedPrecondition("a note has at most \(TeamRules.maxGrantsPerNote) grants; revoke one first")
            }
            let grant = try Self.grant(row)
            let audience: Audience
            switch grantee {
            case .user(let u): audience = .users([u])
            case .team(let t): audience = .team(t)
            }
            if audience != .users([principal.userID]) {
                _ = try await appendNotification(
                    NotificationData(
                        kind: .share, audience: audience, title: "\(principal.userID) shared a note", resourceType: Self.noteType,
                        resourceID: noteID.lowercaseText), principal: principal, on: c)
            }
            try await recordChange(
                Self.grantType, id: grant.id.lowercaseText, kind: try row.bool("inserted") ? .created : .updated, json: try publish.grant(grant),
                principal: principal, on: c)
            return grant
        }
    }

    /// The protocol requirement `deleteGrant` (documented on the protocol).
    public func deleteGrant(id: UUID, principal: Principal, write: WriteOptions<GrantRecord>) async throws -> WriteOutcome<GrantRecord> {
        try await self.write(write, principal) { c in
            let tenant = PostgresValue.text(principal.actor.tenantID)
            guard
                let row = try await c.query(
                    "DELETE FROM collaboration.grants g WHERE tenant_id = $1 AND id = $2 RETURNING \(Self.grantColumns)", [tenant, .uuid(id)]
                ).first
            else {
                // The delete policy hides grants of others' notes: tell "not yours" from "not there".
                let exists = try await c.query("SELECT 1 AS found FROM collaboration.grants WHERE tenant_id = $1 AND id = $2", [tenant, .uuid(id)])
                    .first
                if exists != nil { throw CollaborationError.forbidden("only the note's author or an admin may revoke its grants") }
                throw CollaborationError.notFound(kind: "grant", id: id.lowercaseText)
            }
            let grant = try Self.grant(row)
            try await recordChange(Self.grantType, id: id.lowercaseText, kind: .deleted, json: try publish.grant(grant), principal: principal, on: c)
            return grant
        }
    }

    /// The protocol requirement `listGrants` (documented on the protocol).
    public func listGrants(noteID: UUID, principal: Principal) async throws -> [GrantRecord] {
        try await read(
            principal,
            "SELECT \(Self.grantColumns) FROM collaboration.grants g WHERE g.tenant_id = $1 AND g.note_id = $2 ORDER BY g.created_at, g.id LIMIT $3",
            [.text(principal.actor.tenantID), .uuid(noteID), .int(Int64(TeamRules.maxGrantsPerNote))]
        ).map(Self.grant)
    }
}
