import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// ``PreferencesStore`` on PostgreSQL: `communication.preferences` (migration 017), one row per contact written in
/// place, each write with its change event in the same transaction.
public struct PostgresPreferencesStore: PreferencesStore {
    let pool: PostgresPool
    let feed: ChangeFeed
    let idempotency: Idempotency
    /// The published form of preferences in change events (their proto3 JSON), made by the handlers' mapping.
    let publish: @Sendable (PreferencesRecord) throws -> String

    static let preferencesType = "switchboard.communication.v1.ContactPreferences"
    /// The columns a record is read from (quiet hours as minutes after midnight).
    static let columns = """
        p.contact_id, p.preferred_channel, p.language, p.time_zone, (EXTRACT(EPOCH FROM p.quiet_start) / 60)::int8 AS quiet_start,
        (EXTRACT(EPOCH FROM p.quiet_end) / 60)::int8 AS quiet_end, p.do_not_contact, p.version, p.created_at, p.created_by, p.updated_at,
        p.updated_by
        """

    /// Creates the store.
    /// - Parameters:
    ///   - pool: the service's pool.
    ///   - feed: the change feed written in each write's transaction.
    ///   - idempotency: the kit's idempotency keys.
    ///   - publish: the change-event payload of preferences.
    public init(pool: PostgresPool, feed: ChangeFeed, idempotency: Idempotency, publish: @escaping @Sendable (PreferencesRecord) throws -> String) {
        self.pool = pool
        self.feed = feed
        self.idempotency = idempotency
        self.publish = publish
    }

    static func record(_ row: PostgresRow) throws -> PreferencesRecord {
        var data = PreferencesData()
        data.preferredChannel = Channel(rawValue: Int(try row.int("preferred_channel")))
        data.language = try row.string("language")
        data.timeZone = try row.string("time_zone")
        if let start = try row.optionalInt("quiet_start"), let end = try row.optionalInt("quiet_end") {
            data.quietHours = QuietHours(start: Int(start), end: Int(end))
        }
        data.doNotContact = try row.bool("do_not_contact")
        var record = PreferencesRecord(contactID: try row.uuid("contact_id"), data: data, version: try row.int("version"))
        record.createdAt = try row.date("created_at")
        record.createdBy = try row.string("created_by")
        record.updatedAt = try row.date("updated_at")
        record.updatedBy = try row.string("updated_by")
        return record
    }

    /// The protocol requirement `replay<V>` (documented on the protocol).
    public func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]? {
        try await idempotency.replay(write, actor: actor, pool: pool)
    }

    /// The protocol requirement `fetch` (documented on the protocol).
    public func fetch(contactID: UUID, actor: Actor) async throws -> PreferencesRecord? {
        try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            "SELECT \(Self.columns) FROM communication.preferences p WHERE p.tenant_id = $1 AND p.contact_id = $2",
            [.text(actor.tenantID), .uuid(contactID)]
        ).first.map(Self.record)
    }

    /// The protocol requirement `update` (documented on the protocol).
    public func update(
        contactID: UUID, from source: PreferencesData, paths: [String], etag: String, actor: Actor, write: WriteOptions<PreferencesRecord>
    ) async throws -> WriteOutcome<PreferencesRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let tenant = PostgresValue.text(actor.tenantID)
            // The contact is locked before the mask is applied, so two partial updates at once both land, the first two
            // writes of a contact with nothing stored included (a row lock would find no row to lock).
            try await Self.lock(tenantID: actor.tenantID, contactID: contactID, on: c)
            let current = try await c.query(
                "SELECT \(Self.columns) FROM communication.preferences p WHERE p.tenant_id = $1 AND p.contact_id = $2 FOR UPDATE",
                [tenant, .uuid(contactID)]
            ).first.map(Self.record)
            let currentETag = current?.etag ?? ""
            if !etag.isEmpty, etag != currentETag { throw CommunicationError.etagMismatch(current: currentETag) }
            let data = PreferencesRules.apply(source, paths: paths, to: current?.data ?? PreferencesData())
            try PreferencesRules.validate(data)
            if !data.timeZone.isEmpty, data.timeZone != current?.data.timeZone {
                let known = try await c.query(
                    "SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1) AS known", [.text(data.timeZone)]
                ).first!
                guard try known.bool("known") else {
                    throw CommunicationError.invalid([
                        Violation(
                            "preferences.time_zone", "is not a time zone this service knows (an IANA name such as \"Europe/Berlin\")",
                            reason: "INVALID")
                    ])
                }
            }
            let row = try await c.query(
                """
                INSERT INTO communication.preferences AS p (tenant_id, contact_id, preferred_channel, language, time_zone, quiet_start, quiet_end,
                    do_not_contact, created_by, updated_by)
                VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::int8 IS NULL THEN NULL ELSE make_time(($6 / 60)::int4, ($6 % 60)::int4, 0) END,
                    CASE WHEN $7::int8 IS NULL THEN NULL ELSE make_time(($7 / 60)::int4, ($7 % 60)::int4, 0) END, $8, $9, $9)
                ON CONFLICT (tenant_id, contact_id) DO UPDATE SET
                    preferred_channel = excluded.preferred_channel, language = excluded.language, time_zone = excluded.time_zone,
                    quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end, do_not_contact = excluded.do_not_contact,
                    version = p.version + 1, updated_at = now(), updated_by = excluded.updated_by
                RETURNING \(Self.columns)
                """,
                [
                    tenant, .uuid(contactID), .int(Int64(data.preferredChannel?.rawValue ?? 0)), .text(data.language), .text(data.timeZone),
                    data.quietHours.map { .int(Int64($0.start)) } ?? .null, data.quietHours.map { .int(Int64($0.end)) } ?? .null,
                    .bool(data.doNotContact), .text(actor.userID),
                ]
            ).first!
            let record = try Self.record(row)
            let changed = Self.changedFields(current?.data, record.data)
            try await feed.record(
                ChangeRecord(
                    resourceType: Self.preferencesType, resourceID: contactID.lowercaseText, kind: current == nil ? .created : .updated,
                    changedFields: current == nil ? [] : changed, resourceJSON: try publish(record), actorID: actor.userID,
                    relatedIDs: [contactID.lowercaseText]),
                tenantID: actor.tenantID, on: c)
            return record
        }
    }

    /// The fields that differ between two versions, in the mask's names.
    static func changedFields(_ before: PreferencesData?, _ after: PreferencesData) -> [String] {
        let old = before ?? PreferencesData()
        var fields: [String] = []
        if old.preferredChannel != after.preferredChannel { fields.append("preferred_channel") }
        if old.language != after.language { fields.append("language") }
        if old.timeZone != after.timeZone { fields.append("time_zone") }
        if old.quietHours != after.quietHours { fields.append("quiet_hours") }
        if old.doNotContact != after.doNotContact { fields.append("do_not_contact") }
        return fields
    }

    /// Serialises the writers of one contact's preferences (requests and the contacts feed) until the transaction ends.
    static func lock(tenantID: String, contactID: UUID, on c: PostgresConnection) async throws {
        try await c.query(
            "SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtextextended($1, 0))",
            [.text("communication.preferences/\(tenantID)/\(contactID.lowercaseText)")])
    }

    /// The columns of a preferences row kept as jsonb (`to_jsonb` of the row, in the merge log) under `prefix`, as
    /// ``data(_:prefix:)`` reads them.
    static func jsonColumns(_ column: String, prefix: String) -> String {
        """
        (\(column)->>'preferred_channel')::int8 AS \(prefix)channel, \(column)->>'language' AS \(prefix)language,
        \(column)->>'time_zone' AS \(prefix)zone, (EXTRACT(EPOCH FROM (\(column)->>'quiet_start')::time) / 60)::int8 AS \(prefix)start,
        (EXTRACT(EPOCH FROM (\(column)->>'quiet_end')::time) / 60)::int8 AS \(prefix)end, (\(column)->>'do_not_contact')::bool AS \(prefix)dnc
        """
    }

    /// The preferences ``jsonColumns(_:prefix:)`` selected; nil when the jsonb was NULL.
    static func data(_ row: PostgresRow, prefix: String) throws -> PreferencesData? {
        guard let channel = try row.optionalInt(prefix + "channel") else { return nil }
        var data = PreferencesData()
        data.preferredChannel = Channel(rawValue: Int(channel))
        data.language = try row.optionalString(prefix + "language") ?? ""
        data.timeZone = try row.optionalString(prefix + "zone") ?? ""
        if let start = try row.optionalInt(prefix + "start"), let end = try row.optionalInt(prefix + "end") {
            data.quietHours = QuietHours(start: Int(start), end: Int(end))
        }
        data.doNotContact = try row.bool(prefix + "dnc")
        return data
    }

    /// Whether the contact asked not to be contacted, read in `tenantID` (the send side and the dispatcher share it).
    static func doNotContact(pool: PostgresPool, contactID: UUID, tenantID: String) async throws -> Bool {
        try await pool.query(
            settings: ["app.tenant_id": tenantID],
            "SELECT do_not_contact FROM communication.preferences WHERE tenant_id = $1 AND contact_id = $2",
            [.text(tenantID), .uuid(contactID)]
        ).first?.bool("do_not_contact") ?? false
    }
}
