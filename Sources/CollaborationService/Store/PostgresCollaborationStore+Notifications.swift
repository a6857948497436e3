import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresCollaborationStore {
    static let notificationColumns = """
        x.id, x.kind, x.user_ids, x.team_id, x.tenant_wide, x.title, x.body, x.resource_type, x.resource_id, x.created_by, x.created_at
        """

    static func notification(_ row: PostgresRow) throws -> NotificationRecord {
        let audience: Audience
        if try row.bool("tenant_wide") {
            audience = .tenant
        } else if case .uuid(let team) = row["team_id"] {
            audience = .team(team)
        } else {
            audience = .users(try row.strings("user_ids"))
        }
        let data = NotificationData(
            kind: NotificationKind(rawValue: Int(try row.int("kind"))) ?? .announcement, audience: audience, title: try row.string("title"),
            body: try row.string("body"), resourceType: try row.string("resource_type"), resourceID: try row.string("resource_id"))
        var record = NotificationRecord(
            id: try row.int("id"), data: data, createdBy: try row.string("created_by"), createdAt: try row.date("created_at"))
        if case .timestamp(let read) = row["read_at"] { record.readAt = read }
        if case .timestamp(let acknowledged) = row["acknowledged_at"] { record.acknowledgedAt = acknowledged }
        return record
    }

    /// Numbers and stores a notification inside the caller's transaction, and wakes the tenant's streams at commit.
    /// The tenant's counter row stays locked until commit, so notifications become visible in id order.
    func appendNotification(_ data: NotificationData, principal: Principal, on c: PostgresConnection) async throws -> NotificationRecord {
        let tenant = PostgresValue.text(principal.actor.tenantID)
        let id = try await c.query(
            """
            INSERT INTO collaboration.notification_sequences AS s (tenant_id, last_id) VALUES ($1, 1)
            ON CONFLICT (tenant_id) DO UPDATE SET last_id = s.last_id + 1 RETURNING last_id
            """, [tenant]
        ).first!.int("last_id")
        var users: [String] = [], team: PostgresValue = .null, tenantWide = false
        switch data.audience {
        case .users(let u): users = u
        case .team(let t): team = .uuid(t)
        case .tenant: tenantWide = true
        }
        let row = try await c.query(
            """
            INSERT INTO collaboration.notifications AS x (tenant_id, id, kind, user_ids, team_id, tenant_wide, title, body, resource_type,
                resource_id, created_by, created_at, contact_ids, redacted_title)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now(), $12, $13)
            RETURNING \(Self.notificationColumns)
            """,
            [
                tenant, .int(id), .int(Int64(data.kind.rawValue)), .array(users.map(PostgresValue.text), elementType: .text), team, .bool(tenantWide),
                .text(data.title), .text(data.body), .text(data.resourceType), .text(data.resourceID), .text(principal.userID),
                .array(data.contactIDs.map(PostgresValue.uuid), elementType: .uuid), .text(data.redactedTitle),
            ]
        ).first!
        // The change feed's channel: the kit's notifier wakes this tenant's streams (and, harmlessly, its WatchChanges).
        try await c.query("SELECT pg_notify($1, $2)", [.text(feed.channel), tenant])
        return try Self.notification(row)
    }

    /// The protocol requirement `insertNotification` (documented on the protocol).
    public func insertNotification(
        _ data: NotificationData, principal: Principal, write: WriteOptions<NotificationRecord>
    ) async throws -> WriteOutcome<NotificationRecord> {
        try await self.write(write, principal) { c in try await appendNotification(data, principal: principal, on: c) }
    }

    /// The protocol requirement `notifications` (documented on the protocol).
    public func notifications(
        from id: Int64?, ascending: Bool, unreadOnly: Bool, limit: Int, principal: Principal
    ) async throws -> Rows<NotificationRecord> {
        var binds = Binds(values: [.text(principal.actor.tenantID), .text(principal.userID)])
        // The audience test is spelled out: the read policy also shows senders what they sent, which is not their inbox.
        var conditions = [
            "x.tenant_id = $1",
            "(x.tenant_wide OR $2 = ANY (x.user_ids) OR x.team_id IN (SELECT collaboration.caller_teams()))",
            """
            x.kind <> ALL (coalesce((SELECT p.muted_kinds FROM collaboration.notification_preferences p
                                     WHERE p.tenant_id = $1 AND p.user_id = $2), '{}'))
            """,
        ]
        if let id { conditions.append(ascending ? "x.id > \(binds.add(.int(id)))" : "x.id < \(binds.add(.int(id)))") }
        if unreadOnly { conditions.append("s.read_at IS NULL") }
        let limitPlaceholder = binds.add(.int(Int64(limit + 1)))
        // Only fixed text and placeholders are spliced.
        let rows = try await read(
            principal,
            """
            SELECT \(Self.notificationColumns), s.read_at, s.acknowledged_at FROM collaboration.notifications x
            LEFT JOIN collaboration.notification_states s ON s.tenant_id = x.tenant_id AND s.user_id = $2 AND s.notification_id = x.id
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY x.id \(ascending ? "ASC" : "DESC") LIMIT \(limitPlaceholder)
            """, binds.values)
        return Self.page(try rows.map(Self.notification), limit: limit)
    }

    /// The protocol requirement `markNotifications` (documented on the protocol).
    public func markNotifications(ids: [Int64], acknowledge: Bool, principal: Principal) async throws -> Int {
        try await pool.transaction(settings: Self.settings(principal)) { c in
            try await c.query(
                """
                INSERT INTO collaboration.notification_states AS s (tenant_id, user_id, notification_id, read_at, acknowledged_at)
                SELECT $1, $2, x.id, now(), CASE WHEN $4 THEN now() END FROM collaboration.notifications x
                WHERE x.tenant_id = $1 AND x.id = ANY ($3::int8[])
                    AND (x.tenant_wide OR $2 = ANY (x.user_ids) OR x.team_id IN (SELECT collaboration.caller_teams()))
                ON CONFLICT (tenant_id, user_id, notification_id) DO UPDATE
                    SET read_at = coalesce(s.read_at, EXCLUDED.read_at), acknowledged_at = coalesce(s.acknowledged_at, EXCLUDED.acknowledged_at)
                    WHERE s.read_at IS NULL OR ($4 AND s.acknowledged_at IS NULL)
                """,
                [.text(principal.actor.tenantID), .text(principal.userID), .array(ids.map(PostgresValue.int), elementType: .int), .bool(acknowledge)]
            ).affectedRows
        }
    }

    /// The protocol requirement `mutedKinds` (documented on the protocol).
    public func mutedKinds(principal: Principal) async throws -> [NotificationKind] {
        guard
            let row = try await read(
                principal, "SELECT muted_kinds::text[] AS kinds FROM collaboration.notification_preferences WHERE tenant_id = $1 AND user_id = $2",
                [.text(principal.actor.tenantID), .text(principal.userID)]
            ).first
        else { return [] }
        return try row.strings("kinds").compactMap { Int($0).flatMap(NotificationKind.init(rawValue:)) }
    }

    /// The protocol requirement `setMutedKinds` (documented on the protocol).
    public func setMutedKinds(_ kinds: [NotificationKind], principal: Principal) async throws {
        _ = try await pool.transaction(settings: Self.settings(principal)) { c in
            try await c.query(
                """
                INSERT INTO collaboration.notification_preferences (tenant_id, user_id, muted_kinds) VALUES ($1, $2, $3::int8[]::smallint[])
                ON CONFLICT (tenant_id, user_id) DO UPDATE SET muted_kinds = EXCLUDED.muted_kinds
                """,
                [
                    .text(principal.actor.tenantID), .text(principal.userID),
                    .array(kinds.map { .int(Int64($0.rawValue)) }, elementType: .int),
                ])
        }
    }
}
