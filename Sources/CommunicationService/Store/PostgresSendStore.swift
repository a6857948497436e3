import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// ``SendStore`` on PostgreSQL: `communication.sends`, written by requests within their tenant.
public struct PostgresSendStore: SendStore {
    let pool: PostgresPool
    let feed: ChangeFeed
    let idempotency: Idempotency
    /// The published form of a send in change events (its proto3 JSON), made by the handlers' mapping.
    let publish: @Sendable (SendRecord) throws -> String

    static let sendType = "switchboard.communication.v1.Send"
    static let columns = """
        id, contact_id, channel, purpose, to_address, subject, body, template_id, template_version, send_at, status, attempts, last_error, \
        provider_message_id, sent_at, created_at, created_by, updated_at, updated_by, delivery_state, campaign_id, body_format, ignore_quiet_hours
        """

    /// Creates the store.
    /// - Parameters:
    ///   - pool: the service's pool.
    ///   - feed: the change feed.
    ///   - idempotency: the kit's idempotency keys.
    ///   - publish: the change-event payload of a send.
    public init(pool: PostgresPool, feed: ChangeFeed, idempotency: Idempotency, publish: @escaping @Sendable (SendRecord) throws -> String) {
        self.pool = pool
        self.feed = feed
        self.idempotency = idempotency
        self.publish = publish
    }

    /// The protocol requirement `replay<V>` (documented on the protocol).
    public func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]? {
        try await idempotency.replay(write, actor: actor, pool: pool)
    }

    static func record(_ row: PostgresRow) throws -> SendRecord {
        var template: TemplateReference?
        if case .uuid(let id) = row["template_id"], case .int(let version) = row["template_version"] {
            template = TemplateReference(id: id, version: Int(version))
        }
        var record = SendRecord(
            id: try row.uuid("id"), contactID: try row.uuid("contact_id"), channel: Channel(rawValue: Int(try row.int("channel"))) ?? .email,
            purpose: try row.string("purpose"), toAddress: try row.string("to_address"), subject: try row.string("subject"),
            body: try row.string("body"), template: template, sendAt: try row.date("send_at"),
            status: SendStatus(rawValue: Int(try row.int("status"))) ?? .failed, attempts: Int(try row.int("attempts")),
            lastError: try row.string("last_error"), providerMessageID: try row.string("provider_message_id"),
            sentAt: try row.optionalDate("sent_at"),
            createdAt: try row.date("created_at"), createdBy: try row.string("created_by"), updatedAt: try row.date("updated_at"),
            updatedBy: try row.string("updated_by"))
        record.deliveryState = DeliveryState(rawValue: Int(try row.int("delivery_state"))) ?? .none
        if case .uuid(let campaign) = row["campaign_id"] { record.campaignID = campaign }
        record.html = try row.int("body_format") == 2
        record.ignoreQuietHours = try row.bool("ignore_quiet_hours")
        return record
    }

    private func recordChange(_ record: SendRecord, kind: ChangeKind, actor: Actor, on c: PostgresConnection) async throws {
        try await feed.record(
            ChangeRecord(
                resourceType: Self.sendType, resourceID: record.id.lowercaseText, kind: kind, resourceJSON: try publish(record),
                actorID: actor.userID,
                relatedIDs: [record.contactID.lowercaseText]),
            tenantID: actor.tenantID, on: c)
    }

    /// The protocol requirement `insert` (documented on the protocol).
    public func insert(
        id: UUID, _ data: SendData, subject: String, body: String, template: TemplateReference?, payload: [UInt8], maxAttempts: Int, actor: Actor,
        write: WriteOptions<SendRecord>
    ) async throws -> WriteOutcome<SendRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            // send_at in the past or absent means now, by the database's clock (the dispatcher compares with it).
            let row = try await c.query(
                """
                INSERT INTO communication.sends (tenant_id, id, contact_id, channel, purpose, to_address, subject, body, template_id,
                    template_version, payload, send_at, max_attempts, next_attempt_at, created_by, updated_by, body_format, ignore_quiet_hours)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, greatest(coalesce($12, now()), now()), $13,
                    greatest(coalesce($12, now()), now()), $14, $14, $15, $16)
                RETURNING \(Self.columns)
                """,
                [
                    .text(actor.tenantID), .uuid(id), .uuid(data.contactID), .int(Int64(data.channel.rawValue)), .text(data.purpose),
                    .text(data.toAddress), .text(subject), .text(body), template.map { .uuid($0.id) } ?? .null,
                    template.map { .int(Int64($0.version)) } ?? .null, .bytes(payload), data.sendAt.map(PostgresValue.timestamp) ?? .null,
                    .int(Int64(maxAttempts)), .text(actor.userID), .int(data.html == true ? 2 : 1), .bool(data.ignoreQuietHours),
                ]
            ).first!
            let record = try Self.record(row)
            try await recordChange(record, kind: .created, actor: actor, on: c)
            return record
        }
    }

    /// The protocol requirement `fetch` (documented on the protocol).
    public func fetch(id: UUID, actor: Actor) async throws -> SendRecord? {
        try await pool.query(
            settings: ["app.tenant_id": actor.tenantID], "SELECT \(Self.columns) FROM communication.sends WHERE tenant_id = $1 AND id = $2",
            [.text(actor.tenantID), .uuid(id)]
        ).first.map(Self.record)
    }

    /// The protocol requirement `list` (documented on the protocol).
    public func list(_ query: SendQuery, after: TimeCursor?, limit: Int, actor: Actor) async throws -> (Rows<SendRecord>, TimeCursor?) {
        var binds: [PostgresValue] = [.text(actor.tenantID)]
        func bind(_ value: PostgresValue) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        var conditions = ["tenant_id = $1"]
        if let contact = query.contactID { conditions.append("contact_id = \(bind(.uuid(contact)))") }
        if let campaign = query.campaignID { conditions.append("campaign_id = \(bind(.uuid(campaign)))") }
        if let status = query.status { conditions.append("status = \(bind(.int(Int64(status.rawValue))))") }
        if let after {
            conditions.append("(created_at, id) < (\(PostgresInteractionStore.cursorTime(bind(.int(after.micros)))), \(bind(.uuid(after.id))))")
        }
        let rows = try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            SELECT \(Self.columns), (extract(epoch FROM created_at) * 1000000)::int8 AS created_micros FROM communication.sends
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY created_at DESC, id DESC LIMIT \(bind(.int(Int64(limit + 1))))
            """, binds
        ).rows
        let page = rows.prefix(limit)
        let last = try page.last.map { TimeCursor(micros: try $0.int("created_micros"), id: try $0.uuid("id")) }
        return (Rows(records: try page.map(Self.record), more: rows.count > limit), last)
    }

    /// The protocol requirement `isSuppressed` (documented on the protocol).
    public func isSuppressed(kind: String, hash: String, actor: Actor) async throws -> Bool {
        try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            "SELECT 1 AS hit FROM communication.suppressions WHERE tenant_id = $1 AND kind = $2 AND address_hash = $3",
            [.text(actor.tenantID), .text(kind), .text(hash)]
        ).first != nil
    }

    /// The protocol requirement `doNotContact` (documented on the protocol).
    public func doNotContact(contactID: UUID, actor: Actor) async throws -> Bool {
        try await PostgresPreferencesStore.doNotContact(pool: pool, contactID: contactID, tenantID: actor.tenantID)
    }

    /// The protocol requirement `isListed` (documented on the protocol).
    public func isListed(address: String, kind: String, contactID: UUID, actor: Actor) async throws -> Bool {
        try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            "SELECT 1 AS hit FROM communication.contact_addresses WHERE tenant_id = $1 AND kind = $2 AND address = $3 AND contact_id = $4",
            [.text(actor.tenantID), .text(kind), .text(address), .uuid(contactID)]
        ).first != nil
    }

    /// The protocol requirement `cancel` (documented on the protocol).
    public func cancel(id: UUID, actor: Actor, write: WriteOptions<SendRecord>) async throws -> WriteOutcome<SendRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            // status = 1 means no dispatcher holds it: the claim sets 2 in the same row under its lock, so a cancel and
            // a claim cannot both succeed.
            guard
                let row = try await c.query(
                    """
                    UPDATE communication.sends SET status = 5, version = version + 1, updated_at = now(), updated_by = $3
                    WHERE tenant_id = $1 AND id = $2 AND status = 1
                    RETURNING \(Self.columns)
                    """, [.text(actor.tenantID), .uuid(id), .text(actor.userID)]
                ).first
            else {
                let current = try await c.query(
                    "SELECT status FROM communication.sends WHERE tenant_id = $1 AND id = $2", [.text(actor.tenantID), .uuid(id)]
                ).first
                guard let current else { throw CommunicationError.notFound(kind: "send", id: id.lowercaseText) }
                throw CommunicationError.notCancellable(SendStatus(rawValue: Int(try current.int("status"))) ?? .failed)
            }
            let record = try Self.record(row)
            try await recordChange(record, kind: .updated, actor: actor, on: c)
            return record
        }
    }
}
