import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// ``TemplateStore`` on PostgreSQL: `communication.templates` (one row per version, never updated) and
/// `communication.template_heads` (the latest version of each, for lists and for serialising new versions).
public struct PostgresTemplateStore: TemplateStore {
    let pool: PostgresPool
    let feed: ChangeFeed
    let idempotency: Idempotency
    /// The published form of a version in change events (its proto3 JSON), made by the handlers' mapping.
    let publish: @Sendable (TemplateRecord) throws -> String

    static let templateType = "switchboard.communication.v1.Template"
    static let columns = "t.id, t.version, t.name, t.channel, t.subject, t.body, t.body_format, t.variables, t.created_at, t.created_by"

    /// Creates the store.
    /// - Parameters:
    ///   - pool: the service's pool.
    ///   - feed: the change feed written in each version's transaction.
    ///   - idempotency: the kit's idempotency keys.
    ///   - publish: the change-event payload of a version.
    public init(pool: PostgresPool, feed: ChangeFeed, idempotency: Idempotency, publish: @escaping @Sendable (TemplateRecord) throws -> String) {
        self.pool = pool
        self.feed = feed
        self.idempotency = idempotency
        self.publish = publish
    }

    /// The protocol requirement `replay<V>` (documented on the protocol).
    public func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]? {
        try await idempotency.replay(write, actor: actor, pool: pool)
    }

    static func record(_ row: PostgresRow) throws -> TemplateRecord {
        TemplateRecord(
            id: try row.uuid("id"), version: Int(try row.int("version")),
            data: TemplateData(
                name: try row.string("name"), channel: Channel(rawValue: Int(try row.int("channel"))) ?? .email, subject: try row.string("subject"),
                body: try row.string("body"), html: try row.int("body_format") == 2),
            variables: try row.strings("variables"), createdAt: try row.date("created_at"), createdBy: try row.string("created_by"))
    }

    private func insertVersion(
        id: UUID, version: Int, _ data: TemplateData, variables: [String], kind: ChangeKind, actor: Actor, on c: PostgresConnection
    ) async throws -> TemplateRecord {
        let row = try await c.query(
            """
            INSERT INTO communication.templates AS t (tenant_id, id, version, name, name_key, channel, subject, body, variables, created_by,
                body_format)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            RETURNING \(Self.columns)
            """,
            [
                .text(actor.tenantID), .uuid(id), .int(Int64(version)), .text(data.name), .text(data.name.lowercased()),
                .int(Int64(data.channel.rawValue)), .text(data.subject), .text(data.body),
                .array(variables.map(PostgresValue.text), elementType: .text),
                .text(actor.userID), .int(data.html ? 2 : 1),
            ]
        ).first!
        let record = try Self.record(row)
        try await feed.record(
            ChangeRecord(
                resourceType: Self.templateType, resourceID: id.lowercaseText, kind: kind, resourceJSON: try publish(record), actorID: actor.userID),
            tenantID: actor.tenantID, on: c)
        return record
    }

    /// The protocol requirement `create` (documented on the protocol).
    public func create(
        _ data: TemplateData, variables: [String], actor: Actor, write: WriteOptions<TemplateRecord>
    ) async throws -> WriteOutcome<TemplateRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let id = UUID.random()
            let record = try await insertVersion(id: id, version: 1, data, variables: variables, kind: .created, actor: actor, on: c)
            try await c.query(
                "INSERT INTO communication.template_heads (tenant_id, id, version, name_key, created_by) VALUES ($1, $2, 1, $3, $4)",
                [.text(actor.tenantID), .uuid(id), .text(data.name.lowercased()), .text(actor.userID)])
            return record
        }
    }

    /// The protocol requirement `addVersion` (documented on the protocol).
    public func addVersion(
        id: UUID, _ data: TemplateData, variables: [String], expectedVersion: Int?, actor: Actor, write: WriteOptions<TemplateRecord>
    ) async throws -> WriteOutcome<TemplateRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            // The head's row lock serialises versions of one template: two concurrent updates cannot both make N+1.
            guard
                let head = try await c.query(
                    "SELECT version FROM communication.template_heads WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                    [.text(actor.tenantID), .uuid(id)]
                ).first
            else { throw CommunicationError.notFound(kind: "template", id: id.lowercaseText) }
            let current = Int(try head.int("version"))
            if let expectedVersion, expectedVersion != current { throw CommunicationError.etagMismatch(current: String(current)) }
            let record = try await insertVersion(id: id, version: current + 1, data, variables: variables, kind: .updated, actor: actor, on: c)
            try await c.query(
                "UPDATE communication.template_heads SET version = $3, name_key = $4 WHERE tenant_id = $1 AND id = $2",
                [.text(actor.tenantID), .uuid(id), .int(Int64(current + 1)), .text(data.name.lowercased())])
            return record
        }
    }

    /// The protocol requirement `fetch` (documented on the protocol).
    public func fetch(id: UUID, version: Int?, actor: Actor) async throws -> TemplateRecord? {
        let sql =
            version == nil
            ? """
            SELECT \(Self.columns) FROM communication.template_heads h
            JOIN communication.templates t ON t.tenant_id = h.tenant_id AND t.id = h.id AND t.version = h.version
            WHERE h.tenant_id = $1 AND h.id = $2
            """
            : "SELECT \(Self.columns) FROM communication.templates t WHERE t.tenant_id = $1 AND t.id = $2 AND t.version = $3"
        var binds: [PostgresValue] = [.text(actor.tenantID), .uuid(id)]
        if let version { binds.append(.int(Int64(version))) }
        return try await pool.query(settings: ["app.tenant_id": actor.tenantID], sql, binds).first.map(Self.record)
    }

    /// The protocol requirement `contactFields` (documented on the protocol).
    public func contactFields(contactID: UUID, actor: Actor) async throws -> [String: String] {
        try await Self.contactFields(
            try await pool.query(
                settings: ["app.tenant_id": actor.tenantID],
                "SELECT names, field_values FROM communication.contact_fields WHERE tenant_id = $1 AND contact_id = $2",
                [.text(actor.tenantID), .uuid(contactID)]
            ).first)
    }

    /// The fields of a `contact_fields` row (names, field_values); empty for none.
    static func contactFields(_ row: PostgresRow?) throws -> [String: String] {
        guard let row else { return [:] }
        return Dictionary(zip(try row.strings("names"), try row.strings("field_values")), uniquingKeysWith: { first, _ in first })
    }

    /// The protocol requirement `list` (documented on the protocol).
    public func list(after: (nameKey: String, id: UUID)?, limit: Int, actor: Actor) async throws -> Rows<TemplateRecord> {
        let rows = try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            """
            SELECT \(Self.columns) FROM communication.template_heads h
            JOIN communication.templates t ON t.tenant_id = h.tenant_id AND t.id = h.id AND t.version = h.version
            WHERE h.tenant_id = $1 AND ($2::text IS NULL OR (h.name_key, h.id) > ($2, $3::uuid))
            ORDER BY h.name_key, h.id LIMIT $4
            """,
            [
                .text(actor.tenantID), after.map { .text($0.nameKey) } ?? .null, after.map { .uuid($0.id) } ?? .null, .int(Int64(limit + 1)),
            ]
        ).rows
        var records = try rows.map(Self.record)
        let more = records.count > limit
        if more { records.removeLast(records.count - limit) }
        return Rows(records: records, more: more)
    }
}
