import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// ``InteractionStore`` on PostgreSQL. Every statement binds its values; every transaction sets `app.tenant_id`, and
/// the tables' row-level security admits only that tenant's rows.
///
/// A contact's history is read from `interaction_contacts` (one row per interaction and contact, keyed by tenant,
/// contact, occurred_at, id), so a page of a long history is one index range scan plus a primary-key lookup per row;
/// the store rewrites those rows in the transaction of every write that changes contacts or occurred_at.
public struct PostgresInteractionStore: InteractionStore {
    let pool: PostgresPool
    let feed: ChangeFeed
    let idempotency: Idempotency
    /// The published form of an interaction in change events (the proto3 JSON of its message), made by the handlers'
    /// mapping so that this store never sees protobuf.
    let publish: @Sendable (InteractionRecord) throws -> (tenant: String, service: String?)
    /// How long one search may run (milliseconds) before PostgreSQL cancels it.
    let searchTimeoutMilliseconds: Int

    static let interactionType = "switchboard.communication.v1.Interaction"
    static let columns = """
        i.id, i.kind, i.direction, i.contact_ids::text[] AS contact_ids, i.addresses, i.organization_id, i.thread_id, i.subject, \
        i.body, i.occurred_at, i.duration_seconds, i.outcome, i.follow_up_at, i.follow_up_done, i.visibility, i.owner_id, i.version, \
        i.created_at, i.created_by, i.updated_at, i.updated_by, i.deleted_at, i.template_id, i.template_version, i.delivery_state
        """

    /// Creates the store.
    /// - Parameters:
    ///   - pool: the service's pool.
    ///   - feed: the change feed written in each change's transaction.
    ///   - idempotency: the kit's idempotency keys.
    ///   - searchTimeoutMilliseconds: the statement timeout of a search.
    ///   - publish: the change-event payloads of an interaction: for tenant readers, and for the cross-tenant feed when it
    ///     differs.
    public init(
        pool: PostgresPool, feed: ChangeFeed, idempotency: Idempotency, searchTimeoutMilliseconds: Int = 2000,
        publish: @escaping @Sendable (InteractionRecord) throws -> (tenant: String, service: String?)
    ) {
        self.pool = pool
        self.feed = feed
        self.idempotency = idempotency
        self.searchTimeoutMilliseconds = searchTimeoutMilliseconds
        self.publish = publish
    }

    /// The protocol requirement `replay<V>` (documented on the protocol).
    public func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]? {
        try await idempotency.replay(write, actor: actor, pool: pool)
    }

    static func record(_ row: PostgresRow) throws -> InteractionRecord {
        var data = InteractionData(kind: InteractionKind(rawValue: Int(try row.int("kind"))) ?? .other)
        data.direction = Direction(rawValue: Int(try row.int("direction"))) ?? .none
        data.contactIDs = try row.strings("contact_ids").compactMap { UUID(text: $0) }
        data.addresses = try row.strings("addresses")
        if case .uuid(let o) = row["organization_id"] { data.organizationID = o }
        if case .uuid(let t) = row["thread_id"] { data.threadID = t }
        data.subject = try row.string("subject")
        data.body = try row.string("body")
        data.occurredAt = try row.date("occurred_at")
        data.durationSeconds = try row.int("duration_seconds")
        data.outcome = try row.string("outcome")
        data.followUpAt = try row.optionalDate("follow_up_at")
        data.followUpDone = try row.bool("follow_up_done")
        data.visibility = Visibility(rawValue: Int(try row.int("visibility"))) ?? .private
        data.ownerID = try row.string("owner_id")
        if case .uuid(let template) = row["template_id"], case .int(let version) = row["template_version"] {
            data.template = TemplateReference(id: template, version: Int(version))
        }
        var record = InteractionRecord(
            id: try row.uuid("id"), data: data, version: try row.int("version"), createdAt: try row.date("created_at"),
            createdBy: try row.string("created_by"), updatedAt: try row.date("updated_at"), updatedBy: try row.string("updated_by"),
            deletedAt: try row.optionalDate("deleted_at"))
        if case .int(let micros) = row["sort_micros"] { record.sortMicros = micros }
        record.deliveryState = DeliveryState(rawValue: Int(try row.int("delivery_state"))) ?? .none
        return record
    }

    /// Binds $3 … $19 of the insert and update statements, in column order.
    private static func dataBinds(_ data: InteractionData) -> [PostgresValue] {
        [
            .int(Int64(data.kind.rawValue)), .int(Int64(data.direction.rawValue)),
            .array(data.contactIDs.map(PostgresValue.uuid), elementType: .uuid),
            .array(data.addresses.map(PostgresValue.text), elementType: .text), data.organizationID.map(PostgresValue.uuid) ?? .null,
            data.threadID.map(PostgresValue.uuid) ?? .null, .text(data.subject), .text(data.body),
            data.occurredAt.map(PostgresValue.timestamp) ?? .null,
            .int(data.durationSeconds), .text(data.outcome), data.followUpAt.map(PostgresValue.timestamp) ?? .null, .bool(data.followUpDone),
            .int(Int64(data.visibility.rawValue)), .text(data.ownerID), data.template.map { .uuid($0.id) } ?? .null,
            data.template.map { .int(Int64($0.version)) } ?? .null,
        ]
    }

    private func recordChange(_ record: InteractionRecord, kind: ChangeKind, fields: [String], actor: Actor, on c: PostgresConnection) async throws {
        let payload = try publish(record)
        try await feed.record(
            ChangeRecord(
                resourceType: Self.interactionType, resourceID: record.id.lowercaseText, kind: kind, changedFields: fields,
                resourceJSON: payload.tenant, actorID: actor.userID, serviceResourceJSON: payload.service),
            tenantID: actor.tenantID, on: c)
    }

    /// Checks that a template version exists in the tenant (`notFound`); versions are never deleted, so the check
    /// holds after it (the foreign key backs it anyway).
    private func checkTemplate(_ template: TemplateReference?, actor: Actor, on c: PostgresConnection) async throws {
        guard let template else { return }
        let found = try await c.query(
            "SELECT 1 AS found FROM communication.templates WHERE tenant_id = $1 AND id = $2 AND version = $3",
            [.text(actor.tenantID), .uuid(template.id), .int(Int64(template.version))]
        ).first
        if found == nil { throw CommunicationError.notFound(kind: "template", id: "\(template.id.lowercaseText) version \(template.version)") }
    }

    /// Rewrites the contact index rows of an interaction.
    private func linkContacts(_ record: InteractionRecord, replacing: Bool, actor: Actor, on c: PostgresConnection) async throws {
        if replacing {
            try await c.query(
                "DELETE FROM communication.interaction_contacts WHERE tenant_id = $1 AND interaction_id = $2",
                [.text(actor.tenantID), .uuid(record.id)])
        }
        guard !record.data.contactIDs.isEmpty else { return }
        try await c.query(
            """
            INSERT INTO communication.interaction_contacts (tenant_id, contact_id, occurred_at, interaction_id)
            SELECT $1, contact_id, i.occurred_at, i.id FROM unnest($2::uuid[]) AS contact_id, communication.interactions i
            WHERE i.tenant_id = $1 AND i.id = $3
            """,
            // occurred_at is copied in SQL: a round trip through a Date could move it by a microsecond.
            [.text(actor.tenantID), .array(record.data.contactIDs.map(PostgresValue.uuid), elementType: .uuid), .uuid(record.id)])
    }

    /// The protocol requirement `insert` (documented on the protocol).
    public func insert(_ data: InteractionData, actor: Actor, write: WriteOptions<InteractionRecord>) async throws -> WriteOutcome<InteractionRecord>
    {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            try await checkTemplate(data.template, actor: actor, on: c)
            let row = try await c.query(
                """
                INSERT INTO communication.interactions AS i (tenant_id, id, kind, direction, contact_ids, addresses, organization_id,
                    thread_id, subject, body, occurred_at, duration_seconds, outcome, follow_up_at, follow_up_done, visibility, owner_id,
                    template_id, template_version, created_at, created_by, updated_at, updated_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, coalesce($11, now()), $12, $13, $14, $15, $16, $17, $18, $19, now(), $20, now(),
                    $20)
                RETURNING \(Self.columns)
                """, [.text(actor.tenantID), .uuid(UUID.random())] + Self.dataBinds(data) + [.text(actor.userID)]
            ).first!
            let record = try Self.record(row)
            try await linkContacts(record, replacing: false, actor: actor, on: c)
            try await recordChange(record, kind: .created, fields: [], actor: actor, on: c)
            return record
        }
    }

    /// The protocol requirement `fetch` (documented on the protocol).
    public func fetch(id: UUID, actor: Actor) async throws -> InteractionRecord? {
        try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            "SELECT \(Self.columns) FROM communication.interactions i WHERE i.tenant_id = $1 AND i.id = $2", [.text(actor.tenantID), .uuid(id)]
        ).first.map(Self.record)
    }

    /// The protocol requirement `replace` (documented on the protocol).
    public func replace(
        id: UUID, expectedVersion: Int64, data: InteractionData, changedFields: [String], actor: Actor, write: WriteOptions<InteractionRecord>
    ) async throws -> WriteOutcome<InteractionRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            if changedFields.contains("template_id") || changedFields.contains("template_version") {
                try await checkTemplate(data.template, actor: actor, on: c)
            }
            guard
                let row = try await c.query(
                    """
                    UPDATE communication.interactions AS i SET kind = $4, direction = $5, contact_ids = $6, addresses = $7,
                        organization_id = $8, thread_id = $9, subject = $10, body = $11, occurred_at = coalesce($12, occurred_at),
                        duration_seconds = $13, outcome = $14, follow_up_at = $15, follow_up_done = $16, visibility = $17, owner_id = $18,
                        template_id = $19, template_version = $20, version = version + 1, updated_at = now(), updated_by = $21
                    WHERE tenant_id = $1 AND id = $2 AND version = $3 AND deleted_at IS NULL
                    RETURNING \(Self.columns)
                    """,
                    [.text(actor.tenantID), .uuid(id), .int(expectedVersion)] + Self.dataBinds(data) + [.text(actor.userID)]
                ).first
            else {
                let current = try await c.query(
                    "SELECT version, deleted_at FROM communication.interactions WHERE tenant_id = $1 AND id = $2",
                    [.text(actor.tenantID), .uuid(id)]
                ).first
                guard let current, try current.optionalDate("deleted_at") == nil else {
                    throw CommunicationError.notFound(kind: "interaction", id: id.lowercaseText)
                }
                throw CommunicationError.etagMismatch(current: "\"\(try current.int("version"))\"")
            }
            let record = try Self.record(row)
            if changedFields.contains("contact_ids") || changedFields.contains("occurred_at") {
                try await linkContacts(record, replacing: true, actor: actor, on: c)
            }
            try await recordChange(record, kind: .updated, fields: changedFields, actor: actor, on: c)
            if changedFields.contains("visibility"), record.data.visibility == .private {
                // Made private: what the tenant's feed already holds of it (its text, in the events written while it was
                // visible) is cut to the stub a private interaction publishes, so a reader of the feed's history sees no
                // more of it than a reader of the interaction. (What a consumer read before cannot be recalled.) Its events
                // are all since it was made: the commit-time bound keeps the search to them, not the tenant's history.
                try await c.query(
                    """
                    UPDATE communication.changes SET resource = $4::json, service_resource = NULL, changed_fields = '{}'
                    WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3 AND resource::jsonb <> $4::jsonb
                      AND commit_time >= $5::timestamptz - interval '1 minute'
                    """,
                    [
                        .text(actor.tenantID), .text(Self.interactionType), .text(record.id.lowercaseText), .text(try publish(record).tenant),
                        .timestamp(record.createdAt),
                    ])
            }
            return record
        }
    }

    /// The protocol requirement `setDeleted` (documented on the protocol).
    public func setDeleted(
        id: UUID, deleted: Bool, expectedVersion: Int64?, actor: Actor, write: WriteOptions<InteractionRecord>
    ) async throws -> WriteOutcome<InteractionRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            guard
                let row = try await c.query(
                    """
                    UPDATE communication.interactions AS i SET deleted_at = CASE WHEN $3 THEN now() ELSE NULL END, version = version + 1,
                        updated_at = now(), updated_by = $5
                    WHERE tenant_id = $1 AND id = $2 AND (deleted_at IS NULL) = $3 AND ($4::int8 IS NULL OR version = $4)
                    RETURNING \(Self.columns)
                    """,
                    [.text(actor.tenantID), .uuid(id), .bool(deleted), expectedVersion.map(PostgresValue.int) ?? .null, .text(actor.userID)]
                ).first
            else {
                if expectedVersion != nil {
                    let current = try await c.query(
                        "SELECT version FROM communication.interactions WHERE tenant_id = $1 AND id = $2", [.text(actor.tenantID), .uuid(id)]
                    ).first
                    if let current { throw CommunicationError.etagMismatch(current: "\"\(try current.int("version"))\"") }
                }
                throw CommunicationError.notFound(kind: "interaction", id: id.lowercaseText)
            }
            let record = try Self.record(row)
            try await recordChange(record, kind: deleted ? .deleted : .undeleted, fields: [], actor: actor, on: c)
            return record
        }
    }

    /// A statement's binds, with a helper that appends a value and returns its placeholder.
    private struct Binds {
        var values: [PostgresValue]
        mutating func add(_ value: PostgresValue) -> String {
            values.append(value)
            return "$\(values.count)"
        }
    }

    /// The visibility condition on `i` for a viewer: tenant-visible rows, the viewer's own, or everything for admins.
    private static func visible(_ viewer: Viewer, _ binds: inout Binds) -> String {
        viewer.isAdmin ? "true" : "(i.visibility = 1 OR i.owner_id = \(binds.add(.text(viewer.actor.userID))))"
    }

    /// The timestamp a cursor's microseconds stand for, computed exactly by the database.
    private static func cursorTime(_ micros: Int64, _ binds: inout Binds) -> String {
        cursorTime(binds.add(.int(micros)))
    }

    /// The timestamp the microseconds in `placeholder` stand for, computed exactly by the database (a round trip
    /// through a Date could move it by one): the time of every keyset cursor in this service's lists.
    static func cursorTime(_ placeholder: String) -> String {
        "(timestamptz 'epoch' + \(placeholder)::int8 * interval '1 microsecond')"
    }

    private static func page(_ rows: [PostgresRow], limit: Int) throws -> Rows<InteractionRecord> {
        var records = try rows.map(Self.record)
        let more = records.count > limit
        if more { records.removeLast(records.count - limit) }
        return Rows(records: records, more: more)
    }

    /// The protocol requirement `list` (documented on the protocol).
    public func list(_ query: InteractionQuery, viewer: Viewer) async throws -> Rows<InteractionRecord> {
        var binds = Binds(values: [.text(viewer.actor.tenantID)])
        // The relation decides the index: the contact link table, or one of the interaction indexes, all of which
        // lead with tenant_id and end in (occurred_at, id).
        var from = "communication.interactions i"
        var time = "i.occurred_at", id = "i.id"
        var conditions = ["i.tenant_id = $1"]
        switch query.scope {
        case .all: break
        case .contact(let contact):
            from = """
                communication.interaction_contacts ic JOIN communication.interactions i ON i.tenant_id = ic.tenant_id AND i.id = ic.interaction_id
                """
            time = "ic.occurred_at"
            id = "ic.interaction_id"
            conditions = ["ic.tenant_id = $1", "ic.contact_id = \(binds.add(.uuid(contact)))"]
        case .organization(let organization):
            conditions.append("i.organization_id = \(binds.add(.uuid(organization)))")
        case .thread(let thread):
            conditions.append("i.thread_id = \(binds.add(.uuid(thread)))")
        }
        if let kind = query.kind { conditions.append("i.kind = \(binds.add(.int(Int64(kind.rawValue))))") }
        if let owner = query.ownerID { conditions.append("i.owner_id = \(binds.add(.text(owner)))") }
        if let after = query.occurredAfter { conditions.append("\(time) >= \(binds.add(.timestamp(after)))") }
        if let before = query.occurredBefore { conditions.append("\(time) < \(binds.add(.timestamp(before)))") }
        if !query.includeDeleted { conditions.append("i.deleted_at IS NULL") }
        conditions.append(Self.visible(viewer, &binds))
        if let cursor = query.after {
            conditions.append("(\(time), \(id)) < (\(Self.cursorTime(cursor.micros, &binds)), \(binds.add(.uuid(cursor.id))))")
        }
        let limit = binds.add(.int(Int64(query.limit + 1)))
        // Only fixed column names and placeholders are spliced.
        let rows = try await pool.query(
            settings: ["app.tenant_id": viewer.actor.tenantID],
            """
            SELECT \(Self.columns), (extract(epoch FROM \(time)) * 1000000)::int8 AS sort_micros FROM \(from)
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(time) DESC, \(id) DESC LIMIT \(limit)
            """, binds.values
        ).rows
        return try Self.page(rows, limit: query.limit)
    }

    /// The protocol requirement `search` (documented on the protocol).
    public func search(words: [String], after: TimeCursor?, limit: Int, viewer: Viewer) async throws -> Rows<InteractionRecord> {
        var binds = Binds(values: [.text(viewer.actor.tenantID)])
        // plainto_tsquery ANDs the words and ignores tsquery operators in them: client text is never query syntax.
        var conditions = [
            "i.tenant_id = $1", "i.search @@ plainto_tsquery('simple', \(binds.add(.text(words.joined(separator: " ")))))", "i.deleted_at IS NULL",
        ]
        conditions.append(Self.visible(viewer, &binds))
        if let after {
            conditions.append("(i.occurred_at, i.id) < (\(Self.cursorTime(after.micros, &binds)), \(binds.add(.uuid(after.id))))")
        }
        let limitPlaceholder = binds.add(.int(Int64(limit + 1)))
        do {
            let rows = try await pool.query(
                settings: ["app.tenant_id": viewer.actor.tenantID, "statement_timeout": String(searchTimeoutMilliseconds)],
                """
                SELECT \(Self.columns), (extract(epoch FROM i.occurred_at) * 1000000)::int8 AS sort_micros
                FROM communication.interactions i WHERE \(conditions.joined(separator: " AND "))
                ORDER BY i.occurred_at DESC, i.id DESC LIMIT \(limitPlaceholder)
                """, binds.values
            ).rows
            return try Self.page(rows, limit: limit)
        } catch let error as PostgresError where error.sqlState == "57014" {
            // query_canceled: the statement timeout fired.
            throw CommunicationError.searchTooExpensive
        }
    }

    /// The protocol requirement `followUps` (documented on the protocol).
    public func followUps(
        ownerID: String, dueBefore: Date, after: TimeCursor?, limit: Int, viewer: Viewer
    ) async throws -> Rows<InteractionRecord> {
        var binds = Binds(values: [.text(viewer.actor.tenantID), .text(ownerID), .timestamp(dueBefore)])
        // The conditions repeat the partial index's predicate so the planner can use it.
        var conditions = [
            "i.tenant_id = $1", "i.owner_id = $2", "i.follow_up_at IS NOT NULL", "NOT i.follow_up_done", "i.deleted_at IS NULL",
            "i.follow_up_at <= $3",
        ]
        conditions.append(Self.visible(viewer, &binds))
        if let after {
            conditions.append("(i.follow_up_at, i.id) > (\(Self.cursorTime(after.micros, &binds)), \(binds.add(.uuid(after.id))))")
        }
        let limitPlaceholder = binds.add(.int(Int64(limit + 1)))
        let rows = try await pool.query(
            settings: ["app.tenant_id": viewer.actor.tenantID],
            """
            SELECT \(Self.columns), (extract(epoch FROM i.follow_up_at) * 1000000)::int8 AS sort_micros
            FROM communication.interactions i WHERE \(conditions.joined(separator: " AND "))
            ORDER BY i.follow_up_at, i.id LIMIT \(limitPlaceholder)
            """, binds.values
        ).rows
        return try Self.page(rows, limit: limit)
    }
}
