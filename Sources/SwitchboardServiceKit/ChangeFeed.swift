import FoundationEssentials
import Logging
import Metrics
import ServiceLifecycle
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import Synchronization

/// What happened to a resource (the values of `switchboard.common.v1.ChangeKind`).
public enum ChangeKind: Int32, Sendable, Hashable {
    /// Created.
    case created = 1
    /// Updated (`changedFields` says which fields).
    case updated = 2
    /// Soft-deleted.
    case deleted = 3
    /// Restored.
    case undeleted = 4
    /// Merged into another record (related: the winner).
    case merged = 5
    /// A merge was reversed (related: the former winner).
    case unmerged = 6
    /// Erased (related: the erasure request; the payload holds no personal data).
    case erased = 7
}

/// One change to record in the outbox.
public struct ChangeRecord: Sendable {
    /// The resource message's full name, e.g. `switchboard.contacts.v1.Contact`.
    public var resourceType: String
    /// The resource's id.
    public var resourceID: String
    /// What happened.
    public var kind: ChangeKind
    /// Fields that changed (updates).
    public var changedFields: [String]
    /// The resource after the change: the proto3 JSON text of its message (the contract consumers decode).
    public var resourceJSON: String
    /// Who made the change.
    public var actorID: String
    /// Other resources involved (the merge winner, the erasure request).
    public var relatedIDs: [String]
    /// What the cross-tenant feed (callers with the service role) carries instead of ``resourceJSON``, when the two
    /// differ: a record that tenant readers of `WatchChanges` may not see in full (a private interaction) is published
    /// to them as a stub, while the services that act for its owner still need the whole of it. Nil: the same payload.
    public var serviceResourceJSON: String?

    /// Creates a record.
    public init(
        resourceType: String, resourceID: String, kind: ChangeKind, changedFields: [String] = [],
        resourceJSON: String, actorID: String, relatedIDs: [String] = [], serviceResourceJSON: String? = nil
    ) {
        self.resourceType = resourceType
        self.resourceID = resourceID
        self.kind = kind
        self.changedFields = changedFields
        self.resourceJSON = resourceJSON
        self.actorID = actorID
        self.relatedIDs = relatedIDs
        self.serviceResourceJSON = serviceResourceJSON
    }
}

/// A service's change feed: an outbox table written in the same transaction as each change, numbered by a
/// per-tenant sequence, replayed and then followed live by `WatchChanges` (at-least-once), pruned after the
/// retention period.
public struct ChangeFeed: Sendable {
    /// The service's schema.
    public let schema: String

    /// Creates the feed for a schema.
    public init(schema: String) { self.schema = schema }

    /// The NOTIFY channel.
    public var channel: String { "\(schema)_changes" }

    // The outbox tables (`<schema>.change_sequences`, `<schema>.changes`) come from the kit's migrations
    // (KitMigrations), applied into every service's schema.

    /// Records a change inside the caller's transaction (which has `app.tenant_id` set): the per-tenant sequence
    /// row is locked until commit, so sequences commit in order; NOTIFY is delivered at commit.
    /// - Returns: the change's sequence number.
    @discardableResult
    public func record(_ change: ChangeRecord, tenantID: String, on connection: PostgresConnection) async throws -> Int64 {
        // One statement, one round trip (it was three: the sequence, the change, the NOTIFY). Every write of every
        // service records a change, and a long batch of writes holds its transaction, and so every feed's horizon
        // (``FeedCursor``), that much longer.
        let statement = recordStatement(change, tenantID: tenantID)
        guard let sequence = try await connection.query(statement.sql, statement.binds).first else {
            throw PostgresError(kind: .decoding, message: "recording a change returned no sequence")
        }
        return try sequence.int("sequence")
    }

    /// The same as ``record(_:tenantID:on:)`` as one statement, to send in a pipeline with the change itself (see
    /// `PostgresPool.pipeline(settings:_:)`); it returns the change's `sequence`.
    public func recordStatement(_ change: ChangeRecord, tenantID: String) -> (sql: String, binds: [PostgresValue]) {
        (
            sql: """
            WITH s AS (
                INSERT INTO \(schema).change_sequences (tenant_id, last_sequence) VALUES ($1, 1)
                ON CONFLICT (tenant_id) DO UPDATE SET last_sequence = \(schema).change_sequences.last_sequence + 1
                RETURNING last_sequence
            ), c AS (
                INSERT INTO \(schema).changes (tenant_id, sequence, resource_type, resource_id, kind, changed_fields, resource, actor_id,
                    related_ids, service_resource)
                SELECT $1, last_sequence, $2, $3, $4, $5, $6::json, $7, $9, $10::json FROM s RETURNING sequence
            )
            SELECT sequence, pg_notify($8, $1) FROM c
            """,
            binds: [
                .text(tenantID), .text(change.resourceType), .text(change.resourceID), .int(Int64(change.kind.rawValue)),
                .array(change.changedFields.map(PostgresValue.text), elementType: .text), .text(change.resourceJSON),
                .text(change.actorID), .text(channel), .array(change.relatedIDs.map(PostgresValue.text), elementType: .text),
                change.serviceResourceJSON.map(PostgresValue.text) ?? .null,
            ]
        )
    }

    /// Many changes as one statement (for a bulk write such as an import): the tenant's sequence moves by their
    /// count once, the changes take the numbers in order, and one NOTIFY goes out at commit. Returns one row whose
    /// `n` is the count recorded. Each change's `changedFields` and `relatedIDs` travel as array literals (an array of
    /// arrays cannot be bound); the resources as a text array (bound in binary: nothing escaped), each checked as JSON
    /// where it is stored.
    /// - Precondition: every change's `resourceJSON` is one JSON value (the proto3 JSON of a message).
    /// - Parameters:
    ///   - changes: the changes, in order (at least one).
    ///   - tenantID: the tenant (the transaction's `app.tenant_id`).
    /// - Returns: the statement.
    public func recordStatement(_ changes: [ChangeRecord], tenantID: String) -> (sql: String, binds: [PostgresValue]) {
        func texts(_ values: [String]) -> PostgresValue { .array(values.map(PostgresValue.text), elementType: .text) }
        func literal(_ values: [String]) -> String { PostgresValue.arrayLiteral(values.map(PostgresValue.text)) }
        return (
            sql: """
            WITH s AS (
                INSERT INTO \(schema).change_sequences (tenant_id, last_sequence) VALUES ($1, $2)
                ON CONFLICT (tenant_id) DO UPDATE SET last_sequence = \(schema).change_sequences.last_sequence + $2
                RETURNING last_sequence
            ), c AS (
                INSERT INTO \(schema).changes (tenant_id, sequence, resource_type, resource_id, kind, changed_fields, resource, actor_id,
                    related_ids, service_resource)
                SELECT $1, s.last_sequence - $2 + u.n, u.type, u.id, u.kind, u.fields::text[], u.resource::json, u.actor,
                    u.related::text[], u.service::json
                FROM s, ROWS FROM (unnest($3::text[]), unnest($4::text[]), unnest($5::int8[]), unnest($6::text[]),
                    unnest($7::text[]), unnest($8::text[]), unnest($9::text[]), unnest($11::text[]))
                    WITH ORDINALITY AS u(type, id, kind, fields, resource, actor, related, service, n)
                RETURNING sequence
            )
            SELECT count(*) AS n, pg_notify($10, $1) FROM c
            """,
            binds: [
                .text(tenantID), .int(Int64(changes.count)), texts(changes.map(\.resourceType)), texts(changes.map(\.resourceID)),
                .array(changes.map { .int(Int64($0.kind.rawValue)) }, elementType: .int), texts(changes.map { literal($0.changedFields) }),
                texts(changes.map(\.resourceJSON)), texts(changes.map(\.actorID)),
                texts(changes.map { literal($0.relatedIDs) }),
                .text(channel), .array(changes.map { $0.serviceResourceJSON.map(PostgresValue.text) ?? .null }, elementType: .text),
            ]
        )
    }

    /// Events after a sequence, oldest first: at most `limit`, and no more than the first that brings their stored
    /// resources' text to `maxBytes` (at least one event), so a batch of large resources stays bounded in memory.
    /// - Returns: the events, and whether more follow them.
    public func events(
        tenantID: String, after sequence: Int64, resourceTypes: [String], limit: Int, maxBytes: Int = 1 << 20, pool: PostgresPool
    ) async throws -> (events: [Switchboard_Common_V1_ChangeEvent], more: Bool) {
        try await pool.transaction(settings: ["app.tenant_id": tenantID]) { connection in
            // The innermost query finds the candidates by index; around it each row's resource size and the sizes
            // before it, so rows past the budget stay in the database (the row crossing it is read).
            let rows = try await connection.query(
                """
                SELECT * FROM (
                    SELECT c.*, count(*) OVER () AS candidates,
                           coalesce(sum(octet_length(c.resource)) OVER (ORDER BY sequence ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                               AS bytes_before
                    FROM (
                        SELECT sequence, resource_type, resource_id, kind, changed_fields, resource::text AS resource, actor_id,
                               commit_time, related_ids
                        FROM \(schema).changes
                        WHERE tenant_id = $1 AND sequence > $2 AND (cardinality($3::text[]) = 0 OR resource_type = ANY($3))
                        ORDER BY sequence LIMIT $4
                    ) c
                ) w WHERE bytes_before < $5 ORDER BY sequence
                """,
                [
                    .text(tenantID), .int(sequence), .array(resourceTypes.map(PostgresValue.text), elementType: .text),
                    .int(Int64(max(0, limit))), .int(Int64(max(0, maxBytes))),
                ]
            ).rows
            let candidates = try rows.first?.int("candidates") ?? 0
            let events = try rows.map { row in try Self.event(row, tenantID: tenantID) }
            return (events, candidates > events.count || events.count >= limit)
        }
    }

    /// The event of a row of `changes` (selected with `resource::text AS resource`).
    static func event(_ row: PostgresRow, tenantID: String) throws -> Switchboard_Common_V1_ChangeEvent {
        var event = Switchboard_Common_V1_ChangeEvent()
        event.sequence = try row.int("sequence")
        event.tenantId = tenantID
        event.resourceType = try row.string("resource_type")
        event.resourceId = try row.string("resource_id")
        // A smallint column, but no stored number may trap the reader.
        event.kind = .init(protoValue: Int32(truncatingIfNeeded: try row.int("kind")))
        event.changedFields = try row.strings("changed_fields")
        event.actorId = try row.string("actor_id")
        event.commitTime = try row.date("commit_time")
        event.relatedIds = try row.strings("related_ids")
        event.resource = try Google_Protobuf_Struct(protoJSONText: try row.string("resource"))
        return event
    }

    /// Erasure of a person from the feed's history: every stored change of one of `resourceIDs`, or whose payload
    /// mentions one of `mentioning` (a contact id, an address; compared case-insensitively, as a whole token: not inside
    /// a longer address or number, so `ann@x.io` does not match `joann@x.io`, while a mention in free text does), keeps only
    /// `{"id": resource_id}` (for tenant readers and the cross-tenant feed alike) and no changed fields. The event stays (its sequence and kind), so a reader's position and
    /// counts hold; what was delivered before cannot be recalled, which is why consumers act on ERASED themselves.
    /// Runs in the caller's transaction, with its tenant set.
    /// - Returns: changes redacted.
    @discardableResult
    public func redact(
        tenantID: String, resourceIDs: [String], mentioning: [String], on connection: PostgresConnection
    ) async throws -> Int {
        // Lower-cased by PostgreSQL on both sides (its lower() and Swift's can differ outside ASCII).
        let needles = Array(Set(mentioning.filter { !$0.isEmpty })).sorted()
        guard !resourceIDs.isEmpty || !needles.isEmpty else { return 0 }
        // A scan of the tenant's retained history: erasure is rare, and a payload may mention the person anywhere. The
        // substring test is cheap and finds the candidates; the pattern then asks for the whole token.
        return try await connection.query(
            """
            UPDATE \(schema).changes SET resource = jsonb_build_object('id', resource_id)::json, service_resource = NULL, changed_fields = '{}'
            WHERE tenant_id = $1 AND (resource::jsonb <> jsonb_build_object('id', resource_id) OR service_resource IS NOT NULL)
              AND (resource_id = ANY($2::text[])
                   OR EXISTS (SELECT 1 FROM unnest($3::text[], $4::text[]) AS n(needle, pattern)
                              WHERE (strpos(lower(resource::text), lower(n.needle)) > 0 AND lower(resource::text) ~ lower(n.pattern))
                                 OR (strpos(lower(service_resource::text), lower(n.needle)) > 0
                                     AND lower(service_resource::text) ~ lower(n.pattern))))
            """,
            [
                .text(tenantID), .array(resourceIDs.map { .text($0) }, elementType: .text), .array(needles.map { .text($0) }, elementType: .text),
                .array(needles.map { .text(Self.tokenPattern($0)) }, elementType: .text),
            ]
        ).affectedRows
    }

    /// The pattern (PostgreSQL's regular expressions) that finds `needle` as a whole token: not preceded or followed by
    /// a character an address, a number or an id continues with (letters, digits, `.`, `_`, `%`, `+`, `-`). In JSON text a
    /// control character before it is an escape (`\n`, `\u0007`), which counts as a boundary; full stops after it end a
    /// sentence ("write to ann@x.io.") unless a letter follows (`ann@x.io.uk` is another address).
    public static func tokenPattern(_ needle: String) -> String {
        let special: Set<Character> = ["\\", ".", "^", "$", "|", "?", "*", "+", "(", ")", "[", "]", "{", "}"]
        let escaped = needle.map { special.contains($0) ? "\\\($0)" : String($0) }.joined()
        return "(^|[^[:alnum:]._%+-]|\\\\[bfnrt]|\\\\u[0-9a-fA-F]{4})\(escaped)\\.*($|[^[:alnum:]._%+-])"
    }

    /// Deletes changes older than the retention period, across tenants (through the `retention_purge` policy).
    /// - Returns: rows removed.
    @discardableResult
    public func purge(olderThan days: Int, pool: PostgresPool) async throws -> Int {
        try await pool.transaction(settings: ["app.retention_purge": "on"]) { connection in
            try await connection.query(
                "DELETE FROM \(schema).changes WHERE commit_time < now() - make_interval(days => $1::int)", [.int(Int64(days))]
            ).affectedRows
        }
    }
}

/// Fans database notifications out to the watchers of each tenant.
public final class ChangeNotifier: Service, Sendable {
    private let listener: PostgresListener
    private let subscribers = Mutex<[UUID: (tenant: String?, continuation: AsyncStream<Void>.Continuation)]>([:])

    /// Creates the notifier.
    /// - Parameters:
    ///   - conninfo: the connection string.
    ///   - feed: the feed whose channel to LISTEN on.
    public init(conninfo: String, feed: ChangeFeed) {
        self.listener = PostgresListener(conninfo: conninfo, channels: [feed.channel])
    }

    /// A stream that yields whenever the tenant (any tenant, for nil) may have new changes, when the listener
    /// reconnects, and every `heartbeat` regardless — so a missed notification delays an event but never loses it.
    public func wakeups(tenantID: String?, heartbeat: Duration = .seconds(5)) -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        subscribers.withLock { $0[id] = (tenantID, continuation) }
        let ticker = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: heartbeat)
                continuation.yield()
            }
        }
        continuation.onTermination = { [weak self] _ in
            ticker.cancel()
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        return stream
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            for await event in self.listener.events() {
                let targets: [AsyncStream<Void>.Continuation] = self.subscribers.withLock { subscribers in
                    switch event {
                    case .connected: return subscribers.values.map(\.continuation)
                    case .notification(let n):
                        return subscribers.values.filter { $0.tenant == nil || $0.tenant == n.payload }.map(\.continuation)
                    }
                }
                targets.forEach { $0.yield() }
            }
        }
    }
}

extension ChangeFeed {
    /// Streams a tenant's changes after `from`: replays history in batches, then waits for notifications (with a
    /// periodic re-check, so a missed notification delays but never loses an event). At-least-once: a consumer
    /// resumes from the last sequence it processed.
    ///
    /// Batches hold at most 500 events and stop after the one whose resource brings the batch to `batchBytes`.
    public func watch(
        tenantID: String, from sequence: Int64, resourceTypes: [String], pool: PostgresPool, notifier: ChangeNotifier,
        writer: RPCWriter<Switchboard_Common_V1_ChangeEvent>, batchBytes: Int = 1 << 20
    ) async throws {
        var cursor = sequence
        var iterator = notifier.wakeups(tenantID: tenantID).makeAsyncIterator()
        while !Task.isCancelled {
            let (batch, more) = try await events(
                tenantID: tenantID, after: cursor, resourceTypes: resourceTypes, limit: 500, maxBytes: batchBytes, pool: pool)
            for event in batch {
                try await writer.write(event)
                cursor = event.sequence
            }
            if let last = batch.last {
                Gauge(label: "change_feed_lag_seconds", dimensions: [("schema", schema)])
                    .record(max(0, Date().timeIntervalSince(last.commitTime ?? Date())))
            }
            if more { continue }
            guard await iterator.next() != nil else { break }
        }
        throw CancellationError()
    }
}
