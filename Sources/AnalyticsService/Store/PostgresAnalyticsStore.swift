import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// ``AnalyticsStore`` on PostgreSQL (schema `analytics`). Every value is a bound parameter; every read sets the
/// caller's tenant, and row-level security admits only its rows.
public struct PostgresAnalyticsStore: AnalyticsStore {
    /// The change-event payloads of what analytics publishes, as the handlers' mapping makes them (the store never
    /// sees protobuf).
    public struct Publish: Sendable {
        /// A lifecycle transition's JSON.
        public var transition: @Sendable (LifecycleTransitionData) throws -> String
        /// An alert crossing's JSON.
        public var alertFired: @Sendable (AlertFiring) throws -> String
        /// An erasure receipt's JSON.
        public var receipt: @Sendable (ErasureReceiptData) throws -> String
        /// A scoring model's JSON.
        public var model: @Sendable (ScoringModelValue) throws -> String
        /// An alert's JSON.
        public var alert: @Sendable (AlertValue) throws -> String
        /// A scheduled run's JSON.
        public var reportRun: @Sendable (ReportRunData) throws -> String

        /// Creates the payload makers.
        public init(
            transition: @escaping @Sendable (LifecycleTransitionData) throws -> String,
            alertFired: @escaping @Sendable (AlertFiring) throws -> String,
            receipt: @escaping @Sendable (ErasureReceiptData) throws -> String, model: @escaping @Sendable (ScoringModelValue) throws -> String,
            alert: @escaping @Sendable (AlertValue) throws -> String, reportRun: @escaping @Sendable (ReportRunData) throws -> String
        ) {
            self.transition = transition
            self.alertFired = alertFired
            self.receipt = receipt
            self.model = model
            self.alert = alert
            self.reportRun = reportRun
        }
    }

    let pool: PostgresPool
    let feed: ChangeFeed
    let idempotency: Idempotency
    let publish: Publish

    /// Creates the store.
    public init(pool: PostgresPool, feed: ChangeFeed, idempotency: Idempotency, publish: Publish) {
        self.pool = pool
        self.feed = feed
        self.idempotency = idempotency
        self.publish = publish
    }

    static let entryColumns = """
        id, subject_type, subject_id, occurred_at, kind, source, resource_type, resource_id, actor_id, changed_fields, summary,
        activity_kind, status_from, status_to
        """

    static func entry(_ row: PostgresRow) throws -> TimelineEntry {
        var entry = TimelineEntry(
            id: try row.int("id"),
            subject: SubjectRef(SubjectKind(rawValue: Int16(try row.int("subject_type"))) ?? .contact, try row.uuid("subject_id")),
            kind: EntryKind(rawValue: Int16(try row.int("kind"))) ?? .updated,
            source: FeedSource(rawValue: Int16(try row.int("source"))) ?? .contacts,
            resourceType: try row.string("resource_type"), resourceID: try row.string("resource_id"), actorID: try row.string("actor_id"),
            time: try row.date("occurred_at"))
        entry.changedFields = try row.strings("changed_fields")
        entry.summary = try row.string("summary")
        entry.activityKind = try row.string("activity_kind")
        entry.statusFrom = try row.string("status_from")
        entry.statusTo = try row.string("status_to")
        return entry
    }

    func read(_ actor: Actor, _ sql: String, _ binds: [PostgresValue]) async throws -> [PostgresRow] {
        try await pool.query(settings: ["app.tenant_id": actor.tenantID], sql, binds).rows
    }

    static func time(_ date: Date?) -> PostgresValue { date.map(PostgresValue.timestamp) ?? .null }

    // MARK: Timeline

    /// Microseconds since the epoch of 9999-12-31: the keyset bound of a first page without an end time.
    static let farFuture: Int64 = 253_402_300_799_000_000

    public func timeline(_ q: TimelineQuery, actor: Actor) async throws -> [TimelineEntry] {
        // The page starts below one (time, id) bound, an index condition of timeline_by_subject however the statement is
        // planned: the previous page's last entry, or the end of the range (every id is above Int64.min), whichever is
        // lower. (An `IS NULL OR` keyset would be a filter in a generic plan: deep pages would scan from the top.)
        var bound: (Int64, Int64) = (Self.farFuture, .max)
        if let end = q.end {
            let endBound: (Int64, Int64) = (Int64((end.timeIntervalSince1970 * 1_000_000).rounded(.up)), .min)
            if endBound < bound { bound = endBound }
        }
        if let after = q.after {
            let afterBound: (Int64, Int64) = (Int64((after.time.timeIntervalSince1970 * 1_000_000).rounded()), after.id)
            if afterBound < bound { bound = afterBound }
        }
        return try await read(
            actor,
            """
            SELECT \(Self.entryColumns) FROM analytics.timeline
            WHERE tenant_id = $1 AND subject_type = $2 AND subject_id = $3
              AND (occurred_at, id) < ('epoch'::timestamptz + $8::int8 * interval '1 microsecond', $9::int8)
              AND (cardinality($4::int8[]) = 0 OR kind = ANY($4::int8[]))
              AND (cardinality($5::int8[]) = 0 OR source = ANY($5::int8[]))
              AND ($6 = '' OR actor_id = $6)
              AND ($7::timestamptz IS NULL OR occurred_at >= $7::timestamptz)
            ORDER BY occurred_at DESC, id DESC LIMIT $10
            """,
            [
                .text(actor.tenantID), .int(Int64(q.subject.kind.rawValue)), .uuid(q.subject.id),
                .array(q.kinds.map { .int(Int64($0.rawValue)) }, elementType: .int),
                .array(q.sources.map { .int(Int64($0.rawValue)) }, elementType: .int),
                .text(q.actorID), Self.time(q.start), .int(bound.0), .int(bound.1), .int(Int64(q.limit)),
            ]
        ).map(Self.entry)
    }

    public func timelinePosition(_ subject: SubjectRef, actor: Actor) async throws -> (TimelinePosition, visible: Set<TimelinePosition>) {
        // One snapshot: every row of a transaction older than its xmin is visible (the stream starts after them); rows of
        // newer transactions that are visible already (committed while an older transaction anywhere in the cluster
        // is still open) are listed so the stream skips them.
        let rows = try await read(
            actor,
            """
            WITH s AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
            SELECT (s.xmin::text::numeric - 1)::text AS tx, t.id, t.txid::text AS txid_text FROM s LEFT JOIN analytics.timeline t
                ON t.tenant_id = $1 AND t.subject_type = $2 AND t.subject_id = $3 AND t.txid >= s.xmin
            """, [.text(actor.tenantID), .int(Int64(subject.kind.rawValue)), .uuid(subject.id)])
        let transaction = UInt64(try rows.first?.string("tx") ?? "0") ?? 0
        let visible = Set(
            try rows.compactMap { row -> TimelinePosition? in
                guard case .int(let id) = row["id"], let txid = UInt64(try row.string("txid_text")) else { return nil }
                return TimelinePosition(transaction: txid, id: id)
            })
        return (TimelinePosition(transaction: transaction, id: .max), visible)
    }

    public func timeline(
        _ subject: SubjectRef, after position: TimelinePosition, limit: Int, actor: Actor
    ) async throws -> (
        [(entry: TimelineEntry, position: TimelinePosition)], TimelinePosition
    ) {
        let rows = try await read(
            actor,
            """
            SELECT \(Self.entryColumns), txid::text AS txid_text FROM analytics.timeline
            WHERE tenant_id = $1 AND subject_type = $2 AND subject_id = $3 AND (txid, id) > ($4::text::xid8, $5)
              AND txid < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY txid, id LIMIT $6
            """,
            [
                .text(actor.tenantID), .int(Int64(subject.kind.rawValue)), .uuid(subject.id), .text(String(position.transaction)), .int(position.id),
                .int(Int64(limit)),
            ])
        var next = position
        let entries = try rows.map { row in
            next = TimelinePosition(transaction: UInt64(try row.string("txid_text")) ?? position.transaction, id: try row.int("id"))
            return (entry: try Self.entry(row), position: next)
        }
        return (entries, next)
    }

    public func contactSnapshot(_ contact: UUID, actor: Actor) async throws -> ContactState? {
        guard
            let row = try await read(
                actor,
                """
                SELECT display_name, email, status, owner_id, tags, custom_fields::text AS custom_fields, has_phone, has_address, created_at, deleted
                FROM analytics.contacts WHERE tenant_id = $1 AND id = $2
                """, [.text(actor.tenantID), .uuid(contact)]
            ).first
        else { return nil }
        var state = ContactState(id: contact)
        state.displayName = try row.string("display_name")
        state.email = try row.string("email")
        state.status = try row.string("status")
        state.ownerID = try row.string("owner_id")
        state.tags = try row.strings("tags")
        state.customFieldsJSON = try row.string("custom_fields")
        state.hasPhone = try row.bool("has_phone")
        state.hasAddress = try row.bool("has_address")
        state.createdAt = try row.date("created_at")
        state.deleted = try row.bool("deleted")
        return state
    }

    public func exportTimeline(contact: UUID, actor: Actor, _ body: ([TimelineEntry]) async throws -> Void) async throws {
        var after: Int64 = 0
        while true {
            let entries = try await read(
                actor,
                "SELECT \(Self.entryColumns) FROM analytics.timeline WHERE tenant_id = $1 AND subject_type = 1 AND subject_id = $2 AND id > $3 ORDER BY id LIMIT 500",
                [.text(actor.tenantID), .uuid(contact), .int(after)]
            ).map(Self.entry)
            if entries.isEmpty { return }
            try await body(entries)
            after = entries[entries.count - 1].id
        }
    }

    // MARK: Metrics

    public func metrics(contact: UUID, actor: Actor) async throws -> ContactMetrics {
        var metrics = ContactMetrics(contactID: contact)
        let binds: [PostgresValue] = [.text(actor.tenantID), .uuid(contact)]
        // Four reads that need nothing from each other: one round trip (sent one after another they were four, and the
        // contact-360 overview waited for all of them).
        let results = try await pool.pipeline(
            settings: ["app.tenant_id": actor.tenantID],
            [
                ("SELECT kind, count(*) AS n FROM analytics.activities WHERE tenant_id = $1 AND contact_ids @> ARRAY[$2::uuid] GROUP BY kind", binds),
                (
                    """
                    SELECT count(*) AS n, min(occurred_at) AS first, max(occurred_at) AS last FROM analytics.activities
                    WHERE tenant_id = $1 AND contact_ids @> ARRAY[$2::uuid] AND is_interaction
                    """, binds
                ),
                ("SELECT status FROM analytics.contacts WHERE tenant_id = $1 AND id = $2", binds),
                ("SELECT stage, entered_at FROM analytics.stage_changes WHERE tenant_id = $1 AND contact_id = $2 ORDER BY id", binds),
            ])
        var byKind: [String: Int64] = [:]
        for row in results[0].rows { byKind[try row.string("kind")] = try row.int("n") }
        metrics.counts = ActivityKinds.all.compactMap { kind in byKind[kind].map { (kind, $0) } }
        if let row = results[1].rows.first {
            metrics.interactions = try row.int("n")
            metrics.firstContact = try row.optionalDate("first")
            metrics.lastContact = try row.optionalDate("last")
        }
        if let first = metrics.firstContact {
            let days = max(30, Date().timeIntervalSince(first) / 86_400)
            metrics.perThirtyDays = Double(metrics.interactions) / days * 30
        }
        metrics.stage = try results[2].rows.first?.string("status") ?? ""
        metrics.stageHistory = try results[3].rows.map { (try $0.string("stage"), try $0.date("entered_at")) }
        return metrics
    }

    public func activityStats(
        start: Date, end: Date, grouping: StatsGrouping, kinds: [String], actor: Actor
    ) async throws -> [(
        key: String, count: Int64
    )] {
        let key: String
        switch grouping {
        case .kind: key = "kind"
        case .user: key = "actor_id"
        case .day: key = "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        }
        // `key` is one of this function's constants.
        return try await read(
            actor,
            """
            SELECT \(key) AS key, count(*) AS n FROM analytics.activities
            WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND (cardinality($4::text[]) = 0 OR kind = ANY($4::text[]))
            GROUP BY 1 ORDER BY 1
            """,
            [.text(actor.tenantID), .timestamp(start), .timestamp(end), .array(kinds.map(PostgresValue.text), elementType: .text)]
        ).map { (try $0.string("key"), try $0.int("n")) }
    }

    public func furthestStages(_ stages: [String], start: Date?, end: Date?, actor: Actor) async throws -> [Int64] {
        let rows = try await read(
            actor,
            """
            SELECT f.idx, count(*) AS n FROM (
                SELECT c.id, max(array_position($2::text[], s.stage)) AS idx
                FROM analytics.contacts c JOIN analytics.stage_changes s ON s.tenant_id = c.tenant_id AND s.contact_id = c.id
                WHERE c.tenant_id = $1 AND NOT c.deleted AND ($3::timestamptz IS NULL OR c.created_at >= $3::timestamptz)
                  AND ($4::timestamptz IS NULL OR c.created_at < $4::timestamptz)
                GROUP BY c.id
            ) f WHERE f.idx IS NOT NULL GROUP BY f.idx
            """,
            [.text(actor.tenantID), .array(stages.map(PostgresValue.text), elementType: .text), Self.time(start), Self.time(end)])
        var counts = Array(repeating: Int64(0), count: stages.count)
        for row in rows {
            let index = Int(try row.int("idx")) - 1
            if counts.indices.contains(index) { counts[index] = try row.int("n") }
        }
        return counts
    }

    /// The SQL of an activity's decayed weight: $k kinds, $w weights (parallel arrays), $t the time, $h the half-life.
    static func decayedWeight(kinds k: Int, weights w: Int, time t: Int, halfLife h: Int, alias a: String = "a") -> String {
        """
        coalesce((SELECT mw.weight FROM unnest($\(k)::text[], $\(w)::float8[]) AS mw (kind, weight) WHERE mw.kind = \(a).kind), 0)
            * power(0.5::float8, greatest(0::float8, extract(epoch FROM ($\(t)::timestamptz - \(a).occurred_at))::float8) / 86400.0 / $\(h)::float8)
        """
    }

    static func modelBinds(_ model: ScoringModelValue) -> (kinds: PostgresValue, weights: PostgresValue) {
        let kinds = model.weights.keys.sorted()
        return (
            .array(kinds.map(PostgresValue.text), elementType: .text),
            .array(kinds.map { .double(model.weights[$0] ?? 0) }, elementType: .double)
        )
    }

    public func top(
        _ kind: SubjectKind, metric: RankMetric, limit: Int, start: Date?, end: Date?, model: ScoringModelValue, asOf: Date, actor: Actor
    ) async throws -> [(id: UUID, value: Double)] {
        let ids = kind == .contact ? "contact_ids" : "organization_ids"
        // Only live subjects are ranked, as reports, the funnel and completeness list them: a deleted one is left out (one
        // restored comes back), and so is an id no feed ever brought (an unknown id written into a meeting or note).
        let table = kind == .contact ? "contacts" : "organizations"
        let live = "EXISTS (SELECT 1 FROM analytics.\(table) d WHERE d.tenant_id = $1 AND d.id = x.id AND NOT d.deleted)"
        let rows: [PostgresRow]
        if metric == .engagementScore {
            let (kinds, weights) = Self.modelBinds(model)
            rows = try await read(
                actor,
                """
                SELECT x.id, sum(\(Self.decayedWeight(kinds: 2, weights: 3, time: 4, halfLife: 5)))::float8 AS value
                FROM analytics.activities a, unnest(a.contact_ids) AS x (id) WHERE a.tenant_id = $1 AND \(live)
                GROUP BY x.id ORDER BY value DESC, x.id LIMIT $6
                """, [.text(actor.tenantID), kinds, weights, .timestamp(asOf), .double(model.halfLifeDays), .int(Int64(limit))])
        } else {
            // `ids`, `table` and `live` are this function's constants.
            rows = try await read(
                actor,
                """
                SELECT x.id, count(*)::float8 AS value FROM analytics.activities a, unnest(a.\(ids)) AS x (id)
                WHERE a.tenant_id = $1 AND ($2::timestamptz IS NULL OR a.occurred_at >= $2::timestamptz)
                  AND ($3::timestamptz IS NULL OR a.occurred_at < $3::timestamptz) AND (NOT $4 OR a.is_interaction) AND \(live)
                GROUP BY x.id ORDER BY value DESC, x.id LIMIT $5
                """,
                [.text(actor.tenantID), Self.time(start), Self.time(end), .bool(metric == .interactions), .int(Int64(limit))])
        }
        return try rows.map { (try $0.uuid("id"), try $0.double("value")) }
    }

    public func completeness(actor: Actor) async throws -> Completeness {
        let row = try await read(
            actor,
            """
            SELECT count(*) AS contacts, count(*) FILTER (WHERE display_name <> '') AS name, count(*) FILTER (WHERE email <> '') AS email,
                count(*) FILTER (WHERE has_phone) AS phone, count(*) FILTER (WHERE has_address) AS address,
                count(*) FILTER (WHERE owner_id <> '') AS owner, count(*) FILTER (WHERE cardinality(tags) > 0) AS tags
            FROM analytics.contacts WHERE tenant_id = $1 AND NOT deleted
            """, [.text(actor.tenantID)]
        ).first
        let fields = ["name", "email", "phone", "address", "owner", "tags"]
        return Completeness(contacts: try row?.int("contacts") ?? 0, fields: try fields.map { ($0, try row?.int($0) ?? 0) })
    }

    // MARK: Scores

    public func scoringModel(actor: Actor) async throws -> ScoringModelValue {
        guard
            let row = try await read(
                actor, "SELECT kinds, weights, half_life_days, version, updated_at FROM analytics.scoring_models WHERE tenant_id = $1",
                [.text(actor.tenantID)]
            ).first
        else { return .default }
        return try Self.model(row)
    }

    static func model(_ row: PostgresRow) throws -> ScoringModelValue {
        let kinds = try row.strings("kinds")
        guard case .array(let values, _) = row["weights"] else { throw PostgresError(kind: .decoding, message: "weights is not an array") }
        var weights: [String: Double] = [:]
        for (kind, value) in zip(kinds, values) {
            if case .double(let w) = value { weights[kind] = w }
        }
        return ScoringModelValue(
            weights: weights, halfLifeDays: try row.double("half_life_days"), version: try row.int("version"), updatedAt: try row.date("updated_at"))
    }

    public func setScoringModel(
        _ model: ScoringModelValue, actor: Actor, write: WriteOptions<ScoringModelValue>
    ) async throws -> WriteOutcome<ScoringModelValue> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let (kinds, weights) = Self.modelBinds(model)
            let row = try await c.query(
                """
                INSERT INTO analytics.scoring_models (tenant_id, kinds, weights, half_life_days, version, updated_at, updated_by)
                VALUES ($1, $2, $3, $4, 1, now(), $5)
                ON CONFLICT (tenant_id) DO UPDATE SET kinds = EXCLUDED.kinds, weights = EXCLUDED.weights,
                    half_life_days = EXCLUDED.half_life_days, version = analytics.scoring_models.version + 1, updated_at = now(),
                    updated_by = EXCLUDED.updated_by
                RETURNING kinds, weights, half_life_days, version, updated_at
                """, [.text(actor.tenantID), kinds, weights, .double(model.halfLifeDays), .text(actor.userID)]
            ).first!
            let stored = try Self.model(row)
            try await feed.record(
                ChangeRecord(
                    resourceType: "switchboard.analytics.v1.ScoringModel", resourceID: actor.tenantID,
                    kind: stored.version == 1 ? .created : .updated,
                    resourceJSON: try publish.model(stored), actorID: actor.userID),
                tenantID: actor.tenantID, on: c)
            return stored
        }
    }

    public func scoreComponents(contact: UUID, model: ScoringModelValue, asOf: Date, actor: Actor) async throws -> [ScoreComponentValue] {
        let rows = try await read(
            actor,
            """
            SELECT a.kind, count(*) AS n,
                sum(power(0.5::float8, greatest(0::float8, extract(epoch FROM ($3::timestamptz - a.occurred_at))::float8) / 86400.0 / $4::float8))::float8
                    AS decayed
            FROM analytics.activities a WHERE a.tenant_id = $1 AND a.contact_ids @> ARRAY[$2::uuid] GROUP BY a.kind
            """, [.text(actor.tenantID), .uuid(contact), .timestamp(asOf), .double(model.halfLifeDays)])
        var byKind: [String: (Int64, Double)] = [:]
        for row in rows { byKind[try row.string("kind")] = (try row.int("n"), try row.double("decayed")) }
        return ActivityKinds.all.compactMap { kind in
            byKind[kind].map { ScoreComponentValue(kind: kind, count: $0.0, weight: model.weights[kind] ?? 0, decayedCount: $0.1) }
        }
    }

    // MARK: Reports and dashboards

    static func definition(_ row: PostgresRow) throws -> StoredDefinition {
        StoredDefinition(
            id: try row.uuid("id"), name: try row.string("name"), json: try row.string("definition"),
            created: Created(at: try row.date("created_at"), by: try row.string("created_by")))
    }

    public func createDefinition(
        _ kind: DefinitionKind, name: String, scheduleHours: Int, json: @escaping @Sendable (UUID, Created) throws -> String, actor: Actor,
        limit: Int, write: WriteOptions<StoredDefinition>
    ) async throws -> WriteOutcome<StoredDefinition> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            // `kind.rawValue` is a table name of this service's own.
            let count =
                try await c.query(
                    "SELECT count(*) AS n FROM analytics.\(kind.rawValue) WHERE tenant_id = $1 AND deleted_at IS NULL", [.text(actor.tenantID)]
                ).first?.int("n") ?? 0
            guard count < limit else {
                throw AnalyticsError.failedPrecondition("the tenant keeps at most \(limit) \(kind.rawValue); delete one first")
            }
            let id = UUID()
            let created = Created(at: Date(), by: actor.userID)
            let text = try json(id, created)
            let row = try await c.query(
                """
                INSERT INTO analytics.\(kind.rawValue) (tenant_id, id, name, definition, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)
                RETURNING id, name, definition::text AS definition, created_at, created_by
                """, [.text(actor.tenantID), .uuid(id), .text(name), .jsonb(text), .timestamp(created.at), .text(actor.userID)]
            ).first!
            let stored = try Self.definition(row)
            if kind == .report, scheduleHours > 0 {
                try await c.query(
                    """
                    UPDATE analytics.reports SET schedule_hours = $3, next_run_at = created_at + make_interval(hours => $3::int)
                    WHERE tenant_id = $1 AND id = $2
                    """, [.text(actor.tenantID), .uuid(id), .int(Int64(scheduleHours))])
            }
            try await feed.record(
                ChangeRecord(
                    resourceType: kind == .report ? "switchboard.analytics.v1.ReportDefinition" : "switchboard.analytics.v1.Dashboard",
                    resourceID: id.lowercaseText, kind: .created, resourceJSON: text, actorID: actor.userID),
                tenantID: actor.tenantID, on: c)
            return StoredDefinition(id: stored.id, name: stored.name, json: text, created: stored.created)
        }
    }

    public func definition(_ kind: DefinitionKind, id: UUID, actor: Actor) async throws -> StoredDefinition? {
        try await read(
            actor,
            """
            SELECT id, name, definition::text AS definition, created_at, created_by FROM analytics.\(kind.rawValue)
            WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL
            """, [.text(actor.tenantID), .uuid(id)]
        ).first.map(Self.definition)
    }

    public func definitions(_ kind: DefinitionKind, after: (Date, UUID)?, limit: Int, actor: Actor) async throws -> [StoredDefinition] {
        try await read(
            actor,
            """
            SELECT id, name, definition::text AS definition, created_at, created_by FROM analytics.\(kind.rawValue)
            WHERE tenant_id = $1 AND deleted_at IS NULL AND ($2::timestamptz IS NULL OR (created_at, id) > ($2::timestamptz, $3::uuid))
            ORDER BY created_at, id LIMIT $4
            """, [.text(actor.tenantID), Self.time(after?.0), after.map { .uuid($0.1) } ?? .null, .int(Int64(limit))]
        ).map(Self.definition)
    }

    public func deleteDefinition(
        _ kind: DefinitionKind, id: UUID, othersToo: Bool, actor: Actor, write: WriteOptions<Bool>
    ) async throws -> WriteOutcome<Bool> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            // Dashboards of other users show a report's rows: only its creator, or a manager, may take it away.
            guard
                let row = try await c.query(
                    "SELECT created_by FROM analytics.\(kind.rawValue) WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE",
                    [.text(actor.tenantID), .uuid(id)]
                ).first
            else { return false }
            if !othersToo, try row.string("created_by") != actor.userID {
                throw AnalyticsError.permissionDenied(
                    "only its creator or a manager may delete another user's \(kind == .report ? "report" : "dashboard")")
            }
            let deleted =
                try await c.query(
                    "UPDATE analytics.\(kind.rawValue) SET deleted_at = now() WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING id",
                    [.text(actor.tenantID), .uuid(id)]
                ).rows.count == 1
            if deleted {
                try await feed.record(
                    ChangeRecord(
                        resourceType: kind == .report ? "switchboard.analytics.v1.ReportDefinition" : "switchboard.analytics.v1.Dashboard",
                        resourceID: id.lowercaseText, kind: .deleted, resourceJSON: "{\"id\":\"\(id.lowercaseText)\"}", actorID: actor.userID),
                    tenantID: actor.tenantID, on: c)
            }
            return deleted
        }
    }

    // MARK: Scheduled runs

    public func dueReports(limit: Int) async throws -> [(tenantID: String, id: UUID)] {
        try await pool.query(
            settings: ["app.report_scheduler": "on"],
            """
            SELECT tenant_id, id FROM analytics.reports WHERE next_run_at <= now() AND deleted_at IS NULL AND schedule_hours > 0
            ORDER BY next_run_at LIMIT $1
            """, [.int(Int64(limit))]
        ).rows.map { (try $0.string("tenant_id"), try $0.uuid("id")) }
    }

    public func claimRun(tenantID: String, id: UUID) async throws -> StoredDefinition? {
        // The conditional update is the claim: of replicas racing for a run, one moves next_run_at on.
        try await pool.query(
            settings: ["app.tenant_id": tenantID],
            """
            UPDATE analytics.reports SET next_run_at = CASE
                    WHEN next_run_at + make_interval(hours => schedule_hours) > now() THEN next_run_at + make_interval(hours => schedule_hours)
                    -- Periods missed while no scheduler ran are skipped, not run in a burst.
                    ELSE now() + make_interval(hours => schedule_hours) END
            WHERE tenant_id = $1 AND id = $2 AND next_run_at <= now() AND deleted_at IS NULL AND schedule_hours > 0
            RETURNING id, name, definition::text AS definition, created_at, created_by
            """, [.text(tenantID), .uuid(id)]
        ).first.map(Self.definition)
    }

    public func recordRun(_ run: ReportRunData, tenantID: String) async throws {
        _ = try await pool.transaction(settings: ["app.tenant_id": tenantID]) { c in
            try await feed.record(
                ChangeRecord(
                    resourceType: "switchboard.analytics.v1.ReportRun", resourceID: run.id.lowercaseText, kind: .created,
                    resourceJSON: try publish.reportRun(run), actorID: AnalyticsDomain.schedulerUser, relatedIDs: [run.reportID.lowercaseText]),
                tenantID: tenantID, on: c)
        }
    }

    // MARK: Alerts

    static func alert(_ row: PostgresRow) throws -> AlertValue {
        AlertValue(
            id: try row.uuid("id"), name: try row.string("name"), metric: RankMetric(rawValue: Int(try row.int("metric"))) ?? .engagementScore,
            threshold: try row.double("threshold"), above: try row.int("direction") != 2,
            created: Created(at: try row.date("created_at"), by: try row.string("created_by")))
    }

    public func createAlert(_ alert: AlertValue, actor: Actor, limit: Int, write: WriteOptions<AlertValue>) async throws -> WriteOutcome<AlertValue> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let count =
                try await c.query("SELECT count(*) AS n FROM analytics.alerts WHERE tenant_id = $1", [.text(actor.tenantID)]).first?.int("n") ?? 0
            guard count < limit else { throw AnalyticsError.failedPrecondition("the tenant keeps at most \(limit) alerts; delete one first") }
            let row = try await c.query(
                """
                INSERT INTO analytics.alerts (tenant_id, id, name, metric, threshold, direction, created_at, created_by)
                VALUES ($1, $2, $3, $4, $5, $6, now(), $7) RETURNING id, name, metric, threshold, direction, created_at, created_by
                """,
                [
                    .text(actor.tenantID), .uuid(UUID()), .text(alert.name), .int(Int64(alert.metric.rawValue)), .double(alert.threshold),
                    .int(alert.above ? 1 : 2), .text(actor.userID),
                ]
            ).first!
            let stored = try Self.alert(row)
            try await feed.record(
                ChangeRecord(
                    resourceType: "switchboard.analytics.v1.Alert", resourceID: stored.id.lowercaseText, kind: .created,
                    resourceJSON: try publish.alert(stored), actorID: actor.userID),
                tenantID: actor.tenantID, on: c)
            return stored
        }
    }

    public func alerts(actor: Actor) async throws -> [AlertValue] {
        try await read(
            actor,
            "SELECT id, name, metric, threshold, direction, created_at, created_by FROM analytics.alerts WHERE tenant_id = $1 ORDER BY created_at, id",
            [.text(actor.tenantID)]
        ).map(Self.alert)
    }

    public func deleteAlert(id: UUID, actor: Actor, write: WriteOptions<Bool>) async throws -> WriteOutcome<Bool> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let deleted =
                try await c.query(
                    "DELETE FROM analytics.alerts WHERE tenant_id = $1 AND id = $2 RETURNING id", [.text(actor.tenantID), .uuid(id)]
                ).rows.count == 1
            if deleted {
                try await feed.record(
                    ChangeRecord(
                        resourceType: "switchboard.analytics.v1.Alert", resourceID: id.lowercaseText, kind: .deleted,
                        resourceJSON: "{\"id\":\"\(id.lowercaseText)\"}", actorID: actor.userID),
                    tenantID: actor.tenantID, on: c)
            }
            return deleted
        }
    }
}
