import FoundationEssentials
import Metrics
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC

/// A position in a service's cross-tenant feed: the writing transaction's id and the change's row number.
///
/// Rows are read in (transaction, row) order and only from transactions older than the reader's snapshot `xmin`:
/// every such transaction has ended, so a row can never appear behind a position a reader already passed, whatever
/// order transactions commit in. A long-running transaction holds the feed back (delays it) until it ends; it never
/// makes the feed skip.
public struct FeedCursor: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The transaction id (xid8: epoch and xid).
    public var transaction: UInt64
    /// The row's `position` in the changes table.
    public var position: Int64

    /// The start of the feed.
    public static let start = FeedCursor(transaction: 0, position: 0)

    /// Creates a cursor.
    public init(transaction: UInt64, position: Int64) {
        self.transaction = transaction
        self.position = position
    }

    /// Parses `<transaction>.<position>`; empty text is the start. Nil for anything else.
    public init?(_ text: String) {
        if text.isEmpty {
            self = .start
            return
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard text.utf8.count <= 41, parts.count == 2, let t = UInt64(parts[0]), let p = Int64(parts[1]), p >= 0 else { return nil }
        self.init(transaction: t, position: p)
    }

    /// `<transaction>.<position>`.
    public var description: String { "\(transaction).\(position)" }

    public static func < (a: FeedCursor, b: FeedCursor) -> Bool {
        (a.transaction, a.position) < (b.transaction, b.position)
    }
}

extension ChangeFeed {
    /// Every tenant's changes after a cursor, in feed order: at most `limit`, and no more than the first that brings
    /// their stored resources' text to `maxBytes` (at least one). Only rows of transactions that have ended by this
    /// read's snapshot are returned (see ``FeedCursor``). Each event carries the payload for services
    /// (``ChangeRecord/serviceResourceJSON``) where one was recorded: this feed is only for the service role.
    /// - Returns: the events (each with its `cursor`), and the cursor after the last one (`after` if none).
    public func allEvents(
        after cursor: FeedCursor, resourceTypes: [String], limit: Int, maxBytes: Int = 1 << 20, pool: PostgresPool
    ) async throws -> (events: [Switchboard_Common_V1_ChangeEvent], cursor: FeedCursor) {
        try await pool.transaction(settings: ["app.feed_reader": "on"]) { connection in
            let rows = try await connection.query(
                """
                SELECT * FROM (
                    SELECT c.*, coalesce(sum(octet_length(c.resource)) OVER (ORDER BY txid, position
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS bytes_before
                    FROM (
                        SELECT tenant_id, sequence, resource_type, resource_id, kind, changed_fields,
                               coalesce(service_resource, resource)::text AS resource,
                               actor_id, commit_time, related_ids, txid::text AS txid_text, txid, position
                        FROM \(schema).changes
                        WHERE (txid, position) > ($1::text::xid8, $2)
                          AND txid < pg_snapshot_xmin(pg_current_snapshot())
                          AND (cardinality($3::text[]) = 0 OR resource_type = ANY($3))
                        ORDER BY txid, position LIMIT $4
                    ) c
                ) w WHERE bytes_before < $5 ORDER BY txid, position
                """,
                [
                    .text(String(cursor.transaction)), .int(cursor.position),
                    .array(resourceTypes.map(PostgresValue.text), elementType: .text),
                    .int(Int64(max(1, limit))), .int(Int64(max(0, maxBytes))),
                ]
            ).rows
            var last = cursor
            let events = try rows.map { row in
                var event = try Self.event(row, tenantID: try row.string("tenant_id"))
                guard let transaction = UInt64(try row.string("txid_text")) else {
                    throw PostgresError(kind: .decoding, message: "txid is not a number")
                }
                last = FeedCursor(transaction: transaction, position: try row.int("position"))
                event.cursor = last.description
                return event
            }
            return (events, last)
        }
    }

    /// Streams every tenant's changes after `cursor` as batches (one read each), then follows new ones as they
    /// commit (woken by notifications, re-checking every few seconds). At-least-once: a consumer resumes from the
    /// last batch's cursor it stored.
    public func watchAll(
        after cursor: FeedCursor, resourceTypes: [String], pool: PostgresPool, notifier: ChangeNotifier,
        writer: RPCWriter<Switchboard_Common_V1_ChangeBatch>, batchSize: Int = 500, batchBytes: Int = 1 << 20
    ) async throws {
        var cursor = cursor
        // A change whose transaction was still open when it was notified becomes readable only once the snapshot
        // xmin passes it; the heartbeat picks it up then.
        var iterator = notifier.wakeups(tenantID: nil, heartbeat: .seconds(1)).makeAsyncIterator()
        while !Task.isCancelled {
            let (events, next) = try await allEvents(
                after: cursor, resourceTypes: resourceTypes, limit: batchSize, maxBytes: batchBytes, pool: pool)
            if !events.isEmpty {
                var batch = Switchboard_Common_V1_ChangeBatch()
                batch.events = events
                batch.cursor = next.description
                try await writer.write(batch)
                cursor = next
                if let commit = events.last?.commitTime {
                    Gauge(label: "change_feed_lag_seconds", dimensions: [("schema", schema), ("feed", "all")])
                        .record(max(0, Date().timeIntervalSince(commit)))
                }
                continue
            }
            guard await iterator.next() != nil else { break }
        }
        throw CancellationError()
    }
}
