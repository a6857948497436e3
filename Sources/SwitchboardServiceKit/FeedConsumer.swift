import FoundationEssentials
import Logging
import Metrics
import ServiceLifecycle
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import Synchronization

/// Follows another service's cross-tenant change feed (`ChangeFeedService/WatchAllChanges`) and applies it with an
/// exactly-once effect: each batch's effects and the new cursor are written in one transaction of the consumer's own
/// database, so a consumer killed at any point redoes no batch it committed and loses none it did not.
///
/// Runs as a lifecycle `Service`: reconnects with exponential backoff (with jitter) after any failure, resumes from
/// the stored cursor, and exports `feed_consumer_lag_seconds` (age of the last applied change; 0 when caught up; it
/// keeps growing while the consumer fails), `feed_consumer_events_total` and `feed_consumer_dead_letters_total`.
///
/// An event the service cannot apply (its payload does not decode, it contradicts itself) must not stop the feed for
/// every tenant: the service's `apply` sets it aside with ``setAside(_:reason:feed:schema:logger:on:)`` in the same
/// transaction and goes on.
public struct FeedConsumer: Service {
    /// How the consumer reaches the source.
    public struct Source: Sendable {
        /// The client transport to the source service.
        public var transport: any ClientTransport
        /// A bearer token with the `service` role, asked for on each connection (so it can be renewed).
        public var token: @Sendable () async throws -> String
        /// Only these resource types; empty for all.
        public var resourceTypes: [String]

        /// Creates a source.
        public init(transport: any ClientTransport, token: @escaping @Sendable () async throws -> String, resourceTypes: [String] = []) {
            self.transport = transport
            self.token = token
            self.resourceTypes = resourceTypes
        }
    }

    /// Applies a batch inside the consumer's transaction (no tenant is set: a consumer's tables must admit the
    /// writes it makes for every tenant, e.g. by setting `app.tenant_id` per event with `set_config(..., true)`).
    public typealias Apply = @Sendable ([Switchboard_Common_V1_ChangeEvent], PostgresConnection) async throws -> Void

    /// The cursor's key in `<schema>.feed_cursors`, e.g. `contacts`.
    public let feed: String
    private let schema: String
    private let source: Source
    private let pool: PostgresPool
    private let apply: Apply
    private let logger: Logger
    /// First and longest wait between reconnections.
    public var initialBackoff: Duration = .milliseconds(100)
    /// Longest wait between reconnections.
    public var maxBackoff: Duration = .seconds(30)

    /// Creates a consumer.
    /// - Parameters:
    ///   - feed: the cursor's key (one per source feed).
    ///   - schema: the consumer's schema (holding `feed_cursors`, from the kit's migrations).
    ///   - source: the source service.
    ///   - pool: the consumer's pool.
    ///   - logger: the logger.
    ///   - apply: applies a batch's effects on the given connection, inside the transaction that stores the cursor.
    public init(feed: String, schema: String, source: Source, pool: PostgresPool, logger: Logger, apply: @escaping Apply) {
        self.feed = feed
        self.schema = schema
        self.source = source
        self.pool = pool
        self.logger = logger
        self.apply = apply
    }

    /// The stored cursor (empty before the first batch).
    public func storedCursor() async throws -> String {
        try await pool.query("SELECT cursor FROM \(schema).feed_cursors WHERE feed = $1", [.text(feed)]).first?.string("cursor") ?? ""
    }

    /// Follows the feed until cancelled or shut down.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.follow()
        }
    }

    /// Follows the feed until the task is cancelled.
    public func follow() async {
        let lag = Gauge(label: "feed_consumer_lag_seconds", dimensions: [("feed", feed)])
        let applied = Counter(label: "feed_consumer_events_total", dimensions: [("feed", feed)])
        var backoff = initialBackoff
        let newest = Newest()
        while !Task.isCancelled {
            let progressed = Progress()
            do {
                try await followOnce(lag: lag, applied: applied, progressed: progressed, newest: newest)
            } catch {
                // A stalled consumer must look stalled: the lag is the age of the newest change applied, measured now.
                if let time = newest.time.withLock({ $0 }) { lag.record(max(0, Date().timeIntervalSince(time))) }
                // A connection that delivered a batch was healthy: the next attempt starts from the shortest wait.
                if progressed.happened.load(ordering: .relaxed) { backoff = initialBackoff }
                if Task.isCancelled { break }
                logger.warning(
                    "feed consumer failed; reconnecting",
                    metadata: [
                        "feed": "\(feed)", "error": "\(error)",
                        "backoff_ms": "\(backoff.components.seconds * 1000 + backoff.components.attoseconds / 1_000_000_000_000_000)",
                    ])
            }
            // Full jitter: replicas that lost the source together do not return together.
            let jittered = backoff * Double.random(in: 0.5...1.0)
            try? await Task.sleep(for: jittered)
            backoff = min(backoff * 2, maxBackoff)
        }
    }

    /// Whether a connection delivered anything.
    private final class Progress: Sendable {
        let happened = Atomic<Bool>(false)
    }

    /// The commit time of the newest change applied so far, so that the lag can keep growing while the consumer fails.
    private final class Newest: Sendable {
        let time = Mutex<Date?>(nil)
    }

    private func followOnce(lag: Gauge, applied: Counter, progressed: Progress, newest: Newest) async throws {
        let cursor = try await storedCursor()
        var request = Switchboard_Common_V1_WatchAllChangesRequest()
        request.afterCursor = cursor
        request.resourceTypes = source.resourceTypes
        var options = CallOptions()
        options.metadata.addString("Bearer \(try await source.token())", forKey: "authorization")
        let client = Switchboard_Common_V1_ChangeFeedService_Client(client: RPCClient(transport: source.transport))
        try await client.watchAllChanges(request, options: options) { batches in
            var expected = cursor
            for try await batch in batches {
                try await store(batch, after: expected)
                progressed.happened.store(true, ordering: .relaxed)
                expected = batch.cursor
                applied.increment(by: batch.events.count)
                let time = batch.events.last?.commitTime ?? Date()
                newest.time.withLock { $0 = time }
                lag.record(max(0, Date().timeIntervalSince(time)))
            }
        }
    }

    /// Applies a batch and moves the cursor from `after` to the batch's, in one transaction. The cursor row is
    /// locked and compared first, so two replicas of a consumer never both apply a batch.
    private func store(_ batch: Switchboard_Common_V1_ChangeBatch, after: String) async throws {
        try await pool.transaction { c in
            try await c.query(
                "INSERT INTO \(schema).feed_cursors (feed, cursor) VALUES ($1, '') ON CONFLICT (feed) DO NOTHING", [.text(feed)])
            let current =
                try await c.query(
                    "SELECT cursor FROM \(schema).feed_cursors WHERE feed = $1 FOR UPDATE", [.text(feed)]
                ).first?.string("cursor") ?? ""
            guard current == after else { throw FeedConsumerError.cursorMoved(expected: after, found: current) }
            try await apply(batch.events, c)
            try await c.query(
                "UPDATE \(schema).feed_cursors SET cursor = $2, updated_at = now() WHERE feed = $1", [.text(feed), .text(batch.cursor)])
        }
    }
}

extension FeedConsumer {
    /// Sets aside an event the consumer cannot apply, inside the consumer's transaction (so it is recorded exactly once
    /// with the batch's cursor), counts it in `feed_consumer_dead_letters_total` and logs it; the caller then skips
    /// the event. A redelivered event is recorded once. The rows are the event's tenant's (row-level security):
    /// this sets the transaction's `app.tenant_id` to it.
    /// - Parameters:
    ///   - event: the event.
    ///   - reason: why it cannot be applied (kept with it, for an operator).
    ///   - feed: the consumer's feed name.
    ///   - schema: the consumer's schema.
    ///   - logger: where the event's identity (never its payload) is logged.
    ///   - c: the consumer's transaction.
    public static func setAside(
        _ event: Switchboard_Common_V1_ChangeEvent, reason: String, feed: String, schema: String, logger: Logger,
        on c: PostgresConnection
    ) async throws {
        try await c.query("SELECT set_config('app.tenant_id', $1, true) AS tenant", [.text(event.tenantId)])
        try await c.query(
            """
            INSERT INTO \(schema).feed_dead_letters (tenant_id, feed, sequence, resource_type, resource_id, reason, event)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING
            """,
            [
                .text(event.tenantId), .text(feed), .int(event.sequence), .text(event.resourceType), .text(event.resourceId),
                .text(String(reason.prefix(1000))), .bytes(event.serializedBytes()),
            ])
        Counter(label: "feed_consumer_dead_letters_total", dimensions: [("feed", feed)]).increment()
        logger.error(
            "feed event set aside: it cannot be applied",
            metadata: [
                "feed": "\(feed)", "tenant_id": "\(event.tenantId)", "sequence": "\(event.sequence)", "resource_id": "\(event.resourceId)",
                "reason": "\(reason)",
            ])
    }

    /// Deletes set-aside events recorded more than `days` ago, across tenants (through the table's `retention_purge`
    /// policy); the service runner calls it hourly with the change feed's retention.
    /// - Returns: how many were deleted.
    @discardableResult
    public static func purgeSetAside(olderThan days: Int, schema: String, pool: PostgresPool) async throws -> Int {
        try await pool.transaction(settings: ["app.retention_purge": "on"]) { connection in
            try await connection.query(
                "DELETE FROM \(schema).feed_dead_letters WHERE recorded_at < now() - make_interval(days => $1::int)",
                [.int(Int64(days))]
            ).affectedRows
        }
    }

    /// Deletes the set-aside events of one resource (an erased person's, say), in the caller's transaction, whose
    /// `app.tenant_id` must be the tenant's.
    /// - Returns: how many were deleted.
    @discardableResult
    public static func forgetSetAside(tenantID: String, resourceID: String, schema: String, on c: PostgresConnection) async throws -> Int {
        try await c.query(
            "DELETE FROM \(schema).feed_dead_letters WHERE tenant_id = $1 AND resource_id = $2", [.text(tenantID), .text(resourceID)]
        ).affectedRows
    }
}

/// Why a consumer stopped following and reconnects.
public enum FeedConsumerError: Error, CustomStringConvertible {
    /// Another replica stored a batch first: reconnect from its cursor.
    case cursorMoved(expected: String, found: String)

    /// Says what happened.
    public var description: String {
        switch self {
        case .cursorMoved(let expected, let found): return "the cursor moved from \(expected) to \(found) (another consumer); resuming"
        }
    }
}
