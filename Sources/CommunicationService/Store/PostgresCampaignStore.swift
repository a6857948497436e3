import FoundationEssentials
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardServiceKit

/// ``CampaignStore`` on PostgreSQL: `communication.campaigns` and `communication.campaign_recipients`.
public struct PostgresCampaignStore: CampaignStore {
    let pool: PostgresPool
    let idempotency: Idempotency
    /// A send's published form (the UPDATED events of the sends a cancel cancels).
    let publish: @Sendable (SendRecord) throws -> String

    static let columns = """
        c.id, c.name, c.template_id, c.template_version, c.channel, c.purpose, c.start_at, c.status, c.created_at, c.created_by, \
        c.updated_at, c.updated_by, c.audience_group_id::text AS audience_group_id, c.audience_subgroups, \
        c.audience_saved_search_id::text AS audience_saved_search_id
        """

    /// Creates the store.
    public init(
        pool: PostgresPool, idempotency: Idempotency, publish: @escaping @Sendable (SendRecord) throws -> String = CommunicationService.publishSend
    ) {
        self.pool = pool
        self.idempotency = idempotency
        self.publish = publish
    }

    /// The protocol requirement `replay<V>` (documented on the protocol).
    public func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]? {
        try await idempotency.replay(write, actor: actor, pool: pool)
    }

    static func record(_ row: PostgresRow, progress: CampaignProgress) throws -> CampaignRecord {
        let status = CampaignStatus(rawValue: Int(try row.int("status"))) ?? .cancelled
        var progress = progress
        progress.status = status
        var audience = CampaignAudience.contacts
        if let group = try row.optionalString("audience_group_id").flatMap(UUID.init(uuidString:)) {
            audience = .group(group, includeSubgroups: try row.bool("audience_subgroups"))
        } else if let search = try row.optionalString("audience_saved_search_id").flatMap(UUID.init(uuidString:)) {
            audience = .savedSearch(search)
        }
        return CampaignRecord(
            id: try row.uuid("id"), name: try row.string("name"),
            template: TemplateReference(id: try row.uuid("template_id"), version: Int(try row.int("template_version"))),
            channel: Channel(rawValue: Int(try row.int("channel"))) ?? .email, purpose: try row.string("purpose"), startAt: try row.date("start_at"),
            audience: audience, status: status, progress: progress, createdAt: try row.date("created_at"), createdBy: try row.string("created_by"),
            updatedAt: try row.date("updated_at"), updatedBy: try row.string("updated_by"))
    }

    /// The counts of a campaign, read on `c`.
    static func progress(tenant: String, campaign: UUID, on c: PostgresConnection) async throws -> CampaignProgress {
        try await progress(tenant: tenant, campaigns: [campaign], on: c)[campaign] ?? CampaignProgress()
    }

    /// The counts of campaigns, read on `c` in one statement; a campaign without recipients has none.
    static func progress(tenant: String, campaigns: [UUID], on c: PostgresConnection) async throws -> [UUID: CampaignProgress] {
        let rows = try await c.query(
            """
            SELECT r.campaign_id, count(*) AS recipients,
                count(*) FILTER (WHERE r.status = 1) AS pending,
                count(*) FILTER (WHERE r.status = 3 OR s.status = 5) AS skipped,
                count(*) FILTER (WHERE s.status IN (1, 2)) AS queued,
                count(*) FILTER (WHERE s.status = 3) AS sent,
                count(*) FILTER (WHERE s.status = 3 AND s.delivery_state > 0 AND s.delivery_state NOT IN (50, 51)) AS delivered,
                count(*) FILTER (WHERE s.status IN (4, 6)) AS failed
            FROM communication.campaign_recipients r
            LEFT JOIN communication.sends s ON s.tenant_id = r.tenant_id AND s.id = r.send_id
            WHERE r.tenant_id = $1 AND r.campaign_id = ANY($2::uuid[])
            GROUP BY r.campaign_id
            """, [.text(tenant), .array(campaigns.map(PostgresValue.uuid), elementType: .uuid)]
        ).rows
        var progress: [UUID: CampaignProgress] = [:]
        for row in rows {
            var p = CampaignProgress()
            p.recipients = Int(try row.int("recipients"))
            p.pending = Int(try row.int("pending"))
            p.skipped = Int(try row.int("skipped"))
            p.queued = Int(try row.int("queued"))
            p.sent = Int(try row.int("sent"))
            p.delivered = Int(try row.int("delivered"))
            p.failed = Int(try row.int("failed"))
            progress[try row.uuid("campaign_id")] = p
        }
        return progress
    }

    /// The protocol requirement `insert` (documented on the protocol).
    public func insert(
        _ data: CampaignData, template: TemplateReference, actor: Actor, write: WriteOptions<CampaignRecord>
    ) async throws -> WriteOutcome<CampaignRecord> {
        var (group, subgroups, search): (UUID?, Bool, UUID?) = (nil, false, nil)
        switch data.audience {
        case .contacts: break
        case .group(let id, let includeSubgroups): (group, subgroups) = (id, includeSubgroups)
        case .savedSearch(let id): search = id
        }
        return try await idempotency.transaction(write, actor: actor, pool: pool) { [group, subgroups, search] c in
            let id = UUID.random()
            let row = try await c.query(
                """
                INSERT INTO communication.campaigns AS c (tenant_id, id, name, template_id, template_version, channel, purpose, template_values,
                    start_at, created_by, updated_by, audience_group_id, audience_subgroups, audience_saved_search_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, greatest(coalesce($9, now()), now()), $10, $10, $11, $12, $13)
                RETURNING \(Self.columns)
                """,
                [
                    .text(actor.tenantID), .uuid(id), .text(data.name), .uuid(template.id), .int(Int64(template.version)),
                    .int(Int64(data.channel.rawValue)), .text(data.purpose), .jsonb(Self.json(data.values)),
                    data.startAt.map(PostgresValue.timestamp) ?? .null, .text(actor.userID), group.map(PostgresValue.uuid) ?? .null,
                    .bool(subgroups), search.map(PostgresValue.uuid) ?? .null,
                ]
            ).first!
            try await c.query(
                """
                INSERT INTO communication.campaign_recipients (tenant_id, campaign_id, contact_id)
                SELECT $1, $2, contact_id FROM unnest($3::uuid[]) AS contact_id
                """, [.text(actor.tenantID), .uuid(id), .array(data.contactIDs.map(PostgresValue.uuid), elementType: .uuid)])
            return try Self.record(row, progress: try await Self.progress(tenant: actor.tenantID, campaign: id, on: c))
        }
    }

    /// The protocol requirement `fetch` (documented on the protocol).
    public func fetch(id: UUID, actor: Actor) async throws -> CampaignRecord? {
        try await pool.transaction(settings: ["app.tenant_id": actor.tenantID]) { c in
            guard
                let row = try await c.query(
                    "SELECT \(Self.columns) FROM communication.campaigns c WHERE c.tenant_id = $1 AND c.id = $2", [.text(actor.tenantID), .uuid(id)]
                ).first
            else { return nil }
            return try Self.record(row, progress: try await Self.progress(tenant: actor.tenantID, campaign: id, on: c))
        }
    }

    /// The protocol requirement `setStatus` (documented on the protocol).
    public func setStatus(
        id: UUID, to status: CampaignStatus, from: Set<CampaignStatus>, actor: Actor, write: WriteOptions<CampaignRecord>
    ) async throws -> WriteOutcome<CampaignRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            guard
                let row = try await c.query(
                    """
                    UPDATE communication.campaigns c SET status = $3, updated_at = now(), updated_by = $5
                    WHERE c.tenant_id = $1 AND c.id = $2 AND c.status = ANY($4::int8[])
                    RETURNING \(Self.columns)
                    """,
                    [
                        .text(actor.tenantID), .uuid(id), .int(Int64(status.rawValue)),
                        .array(from.map { .int(Int64($0.rawValue)) }, elementType: .int), .text(actor.userID),
                    ]
                ).first
            else {
                let current = try await c.query(
                    "SELECT status FROM communication.campaigns WHERE tenant_id = $1 AND id = $2", [.text(actor.tenantID), .uuid(id)]
                ).first
                guard let current else { throw CommunicationError.notFound(kind: "campaign", id: id.lowercaseText) }
                let state = CampaignStatus(rawValue: Int(try current.int("status"))) ?? .cancelled
                // Asked for where it already is (a second click, another tab): nothing to do, and no error to explain.
                guard state == status else { throw CommunicationError.campaignState(state) }
                let row = try await c.query(
                    "SELECT \(Self.columns) FROM communication.campaigns c WHERE c.tenant_id = $1 AND c.id = $2", [.text(actor.tenantID), .uuid(id)]
                ).first!
                return try Self.record(row, progress: try await Self.progress(tenant: actor.tenantID, campaign: id, on: c))
            }
            if status == .cancelled {
                // Recipients first: one a runner is turning into a send right now is locked by it, so this waits for its
                // commit and leaves it queued; the sends statement after it then sees that send and cancels it too.
                // (Sends first would miss a send committed in between, and leave it SCHEDULED for ever.)
                try await c.query(
                    """
                    UPDATE communication.campaign_recipients SET status = 3, reason = 'the campaign was cancelled'
                    WHERE tenant_id = $1 AND campaign_id = $2 AND status = 1
                    """, [.text(actor.tenantID), .uuid(id)])
                // Sends no dispatcher holds yet are cancelled (a send already with the provider finishes), each published
                // as every other change of a send is, and their recipients count as skipped, with the reason.
                let cancelled = try await c.query(
                    """
                    UPDATE communication.sends SET status = 5, last_error = 'the campaign was cancelled', version = version + 1, updated_at = now(),
                        updated_by = $3
                    WHERE tenant_id = $1 AND campaign_id = $2 AND status = 1
                    RETURNING id
                    """, [.text(actor.tenantID), .uuid(id), .text(actor.userID)]
                ).rows.map { try $0.uuid("id") }
                try await c.query(
                    """
                    UPDATE communication.campaign_recipients SET status = 3, reason = 'the campaign was cancelled'
                    WHERE tenant_id = $1 AND campaign_id = $2 AND send_id = ANY($3::uuid[])
                    """, [.text(actor.tenantID), .uuid(id), .array(cancelled.map(PostgresValue.uuid), elementType: .uuid)])
                for send in cancelled {
                    try await SendChanges.record(
                        id: send, tenantID: actor.tenantID, changedFields: ["status", "last_error"], actorID: actor.userID, publish: publish, on: c)
                }
            }
            return try Self.record(row, progress: try await Self.progress(tenant: actor.tenantID, campaign: id, on: c))
        }
    }

    /// The protocol requirement `list` (documented on the protocol).
    public func list(status: CampaignStatus?, after: TimeCursor?, limit: Int, actor: Actor) async throws -> (Rows<CampaignRecord>, TimeCursor?) {
        try await pool.transaction(settings: ["app.tenant_id": actor.tenantID]) { c in
            var binds: [PostgresValue] = [.text(actor.tenantID), .int(Int64(limit + 1))]
            var conditions = ["c.tenant_id = $1"]
            if let status {
                binds.append(.int(Int64(status.rawValue)))
                conditions.append("c.status = $\(binds.count)")
            }
            if let after {
                binds += [.int(after.micros), .uuid(after.id)]
                conditions.append("(c.created_at, c.id) < (\(PostgresInteractionStore.cursorTime("$\(binds.count - 1)")), $\(binds.count))")
            }
            let rows = try await c.query(
                """
                SELECT \(Self.columns), (extract(epoch FROM c.created_at) * 1000000)::int8 AS created_micros FROM communication.campaigns c
                WHERE \(conditions.joined(separator: " AND ")) ORDER BY c.created_at DESC, c.id DESC LIMIT $2
                """, binds
            ).rows
            let page = Array(rows.prefix(limit))
            let progress = try await Self.progress(tenant: actor.tenantID, campaigns: try page.map { try $0.uuid("id") }, on: c)
            let records = try page.map { row in try Self.record(row, progress: progress[try row.uuid("id")] ?? CampaignProgress()) }
            let last = try page.last.map { TimeCursor(micros: try $0.int("created_micros"), id: try $0.uuid("id")) }
            return (Rows(records: records, more: rows.count > limit), last)
        }
    }

    /// The protocol requirement `recipients` (documented on the protocol).
    public func recipients(
        campaign: UUID, state: RecipientState?, after: UUID?, limit: Int, actor: Actor
    ) async throws -> Rows<CampaignRecipientRecord>? {
        try await pool.transaction(settings: ["app.tenant_id": actor.tenantID]) { c in
            guard
                try await c.query(
                    "SELECT 1 AS found FROM communication.campaigns WHERE tenant_id = $1 AND id = $2", [.text(actor.tenantID), .uuid(campaign)]
                ).first != nil
            else { return nil }
            let rows = try await c.query(
                """
                SELECT r.contact_id, r.status, r.reason, r.send_id, s.status AS send_status, s.last_error
                FROM communication.campaign_recipients r
                LEFT JOIN communication.sends s ON s.tenant_id = r.tenant_id AND s.id = r.send_id
                WHERE r.tenant_id = $1 AND r.campaign_id = $2 AND ($3::int8 IS NULL OR r.status = $3)
                  AND ($4::uuid IS NULL OR r.contact_id > $4)
                ORDER BY r.contact_id LIMIT $5
                """,
                [
                    .text(actor.tenantID), .uuid(campaign), state.map { .int(Int64($0.rawValue)) } ?? .null, after.map(PostgresValue.uuid) ?? .null,
                    .int(Int64(limit + 1)),
                ]
            ).rows
            let records = try rows.prefix(limit).map { row in
                var sendStatus: SendStatus?
                if case .int(let s) = row["send_status"] { sendStatus = SendStatus(rawValue: Int(s)) }
                var sendID: UUID?
                if case .uuid(let id) = row["send_id"] { sendID = id }
                return CampaignRecipientRecord(
                    contactID: try row.uuid("contact_id"), state: RecipientState(rawValue: Int(try row.int("status"))) ?? .skipped,
                    reason: try row.string("reason"), sendID: sendID, sendStatus: sendStatus, sendError: try row.optionalString("last_error") ?? "")
            }
            return Rows(records: records, more: rows.count > limit)
        }
    }

    /// Values as a JSON object text (the project's one JSON type, keys sorted).
    static func json(_ values: [String: String]) -> String {
        JSON.object(values.mapValues(JSON.string)).text
    }

    /// Values back from ``json(_:)``'s text; what is not an object of strings reads as no values (the campaign's
    /// rendering then reports them missing and skips the recipient with a reason).
    static func values(fromJSON text: String) -> [String: String] {
        guard case .object(let fields)? = try? JSON.parse(text) else { return [:] }
        return fields.compactMapValues { value in
            if case .string(let s) = value { return s }
            return nil
        }
    }
}
