import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// ``ConsentStore`` on PostgreSQL: `communication.consent_ledger`, which the database keeps append-only (no UPDATE,
/// DELETE or TRUNCATE privilege, triggers refusing them, no RLS policy admitting them).
public struct PostgresConsentStore: ConsentStore {
    let pool: PostgresPool
    let feed: ChangeFeed
    let idempotency: Idempotency
    /// The published form of an entry in change events (its proto3 JSON), made by the handlers' mapping.
    let publish: @Sendable (ConsentRecord) throws -> String

    static let consentType = "switchboard.communication.v1.ConsentRecord"
    static let columns = """
        id, sequence, contact_id, channel, purpose, status, legal_basis, source, stated_at, recorded_at, recorded_by
        """

    /// Creates the store.
    /// - Parameters:
    ///   - pool: the service's pool.
    ///   - feed: the change feed written in each append's transaction.
    ///   - idempotency: the kit's idempotency keys.
    ///   - publish: the change-event payload of an entry.
    public init(pool: PostgresPool, feed: ChangeFeed, idempotency: Idempotency, publish: @escaping @Sendable (ConsentRecord) throws -> String) {
        self.pool = pool
        self.feed = feed
        self.idempotency = idempotency
        self.publish = publish
    }

    /// The protocol requirement `replay<V>` (documented on the protocol).
    public func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]? {
        try await idempotency.replay(write, actor: actor, pool: pool)
    }

    static func record(_ row: PostgresRow) throws -> ConsentRecord {
        let statement = ConsentStatement(
            contactID: try row.uuid("contact_id"), channel: Channel(rawValue: Int(try row.int("channel"))) ?? .email,
            purpose: try row.string("purpose"), status: ConsentStatus(rawValue: Int(try row.int("status"))) ?? .withdrawn,
            legalBasis: LegalBasis(rawValue: Int(try row.int("legal_basis"))), source: try row.string("source"),
            statedAt: try row.date("stated_at"))
        return ConsentRecord(
            id: try row.uuid("id"), sequence: try row.int("sequence"), statement: statement, recordedAt: try row.date("recorded_at"),
            recordedBy: try row.string("recorded_by"))
    }

    /// The protocol requirement `append` (documented on the protocol).
    public func append(_ statement: ConsentStatement, actor: Actor, write: WriteOptions<ConsentRecord>) async throws -> WriteOutcome<ConsentRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let row = try await c.query(
                """
                INSERT INTO communication.consent_ledger (tenant_id, id, contact_id, channel, purpose, status, legal_basis, source, stated_at,
                    recorded_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, least(coalesce($9, now()), now()), $10)
                RETURNING \(Self.columns)
                """,
                [
                    .text(actor.tenantID), .uuid(UUID.random()), .uuid(statement.contactID), .int(Int64(statement.channel.rawValue)),
                    .text(statement.purpose), .int(Int64(statement.status.rawValue)), .int(Int64(statement.legalBasis?.rawValue ?? 0)),
                    .text(statement.source), statement.statedAt.map(PostgresValue.timestamp) ?? .null, .text(actor.userID),
                ]
            ).first!
            let record = try Self.record(row)
            try await feed.record(
                ChangeRecord(
                    resourceType: Self.consentType, resourceID: record.id.lowercaseText, kind: .created, resourceJSON: try publish(record),
                    actorID: actor.userID, relatedIDs: [statement.contactID.lowercaseText]),
                tenantID: actor.tenantID, on: c)
            return record
        }
    }

    /// The protocol requirement `history` (documented on the protocol).
    public func history(
        contactID: UUID, channel: Channel?, purpose: String?, afterSequence: Int64?, limit: Int, actor: Actor
    ) async throws -> Rows<ConsentRecord> {
        let rows = try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            SELECT \(Self.columns) FROM communication.consent_ledger
            WHERE tenant_id = $1 AND contact_id = $2 AND ($3::int8 IS NULL OR channel = $3) AND ($4::text IS NULL OR purpose = $4)
              AND sequence > $5
            ORDER BY sequence LIMIT $6
            """,
            [
                .text(actor.tenantID), .uuid(contactID), channel.map { .int(Int64($0.rawValue)) } ?? .null, purpose.map(PostgresValue.text) ?? .null,
                .int(afterSequence ?? 0), .int(Int64(limit + 1)),
            ]
        ).rows
        var records = try rows.map(Self.record)
        let more = records.count > limit
        if more { records.removeLast(records.count - limit) }
        return Rows(records: records, more: more)
    }

    /// The protocol requirement `latest` (documented on the protocol).
    public func latest(contactID: UUID, channel: Channel, purpose: String, actor: Actor) async throws -> ConsentRecord? {
        try await Self.latest(pool: pool, contactID: contactID, channel: channel, purpose: purpose, tenantID: actor.tenantID)
    }

    /// The latest entry for a contact, channel and purpose (or all purposes) in a tenant: the check the request side
    /// and the dispatcher share.
    static func latest(pool: PostgresPool, contactID: UUID, channel: Channel, purpose: String, tenantID: String) async throws -> ConsentRecord? {
        let actor = Actor(tenantID: tenantID, userID: "")
        return try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            SELECT \(Self.columns) FROM communication.consent_ledger
            WHERE tenant_id = $1 AND contact_id = $2 AND channel = $3 AND purpose IN ($4, 'all')
            ORDER BY stated_at DESC, status DESC, sequence DESC LIMIT 1
            """, [.text(actor.tenantID), .uuid(contactID), .int(Int64(channel.rawValue)), .text(purpose)]
        ).first.map(Self.record)
    }
}
