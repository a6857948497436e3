import Foundation
import Logging
import SwitchboardHTTP2
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Synchronization
import Testing

@testable import SwitchboardPostgres

/// A service with no RPCs of its own: the kit's tables, feed and cross-tenant feed service only.
let feedTestService = ServiceDescription(
    defaults: ServiceDefaults(name: "kitfeed", grpcPort: 0, adminPort: 0), migrations: [], grpcServices: [], requiredRoles: [:],
    feedBatchBytes: 4096, makeServices: { _ in [] })

/// The provisioning every service's provision.sql does (contacts' with the role renamed), for a service without a
/// folder.
let genericProvision =
    (try? String(contentsOf: repositoryRoot.appendingPathComponent("services/contacts/provision.sql"), encoding: .utf8))
    .map { $0.replacingOccurrences(of: "contacts_service", with: "kitfeed_service") } ?? ""

/// A one-shot signal between tasks.
final class Gate: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    init() { (stream, continuation) = AsyncStream<Void>.makeStream() }
    func open() {
        continuation.yield()
        continuation.finish()
    }
    func wait() async { for await _ in stream { return } }
}

@Suite("Cross-tenant change feed and its consumer", .serialized)
struct CrossTenantFeedTests {
    static func change(_ id: String, tenant: String = "") -> ChangeRecord {
        // About 200 bytes each, so the 4 KiB batches hold about 20 changes and the kill falls inside a later batch.
        ChangeRecord(
            resourceType: "test.v1.Thing", resourceID: id, kind: .created,
            resourceJSON: #"{"id":"\#(id)","pad":"\#(String(repeating: "x", count: 180))"}"#, actorID: "u")
    }

    @Test("a transaction that commits after a later one is never skipped: the feed waits for it, then delivers both")
    func outOfOrderCommits() async throws {
        let harness = try await ServiceHarness.start(feedTestService, provisionSQL: genericProvision)
        do {
            let feed = ChangeFeed(schema: "kitfeed")
            let pool = harness.pool
            // T1 (tenant A) starts first and so has the older transaction id, and stays open.
            let recorded = Gate(), release = Gate()
            let first = Task {
                try await pool.transaction(settings: ["app.tenant_id": "tenant-a"]) { c in
                    try await feed.record(Self.change("first"), tenantID: "tenant-a", on: c)
                    recorded.open()
                    await release.wait()
                }
            }
            await recorded.wait()
            // T2 (tenant B) starts later, gets a newer transaction id, and commits first.
            _ = try await pool.transaction(settings: ["app.tenant_id": "tenant-b"]) { c in
                try await feed.record(Self.change("second"), tenantID: "tenant-b", on: c)
            }
            // A reader now must not pass T2: it would never see T1's change once T1 commits.
            let early = try await feed.allEvents(after: .start, resourceTypes: [], limit: 100, pool: pool)
            #expect(early.events.isEmpty, "\(early.events.map(\.resourceId))")
            #expect(early.cursor == .start)
            release.open()
            try await first.value
            // Now both come, in transaction order. Other transactions in the cluster (other tests) can hold the
            // snapshot xmin back for a moment, so read as a consumer would: from the cursor, until both arrived.
            var late: [Switchboard_Common_V1_ChangeEvent] = []
            var cursor = early.cursor
            for _ in 0..<600 where late.count < 2 {
                let batch = try await feed.allEvents(after: cursor, resourceTypes: [], limit: 100, pool: pool)
                late += batch.events
                cursor = batch.cursor
                if late.count < 2 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(late.map(\.resourceId) == ["first", "second"])
            #expect(late.map(\.tenantId) == ["tenant-a", "tenant-b"])
            #expect(late.last?.cursor == cursor.description)
            #expect(try await feed.allEvents(after: cursor, resourceTypes: [], limit: 100, pool: pool).events.isEmpty)
            // The tenant's own feed is still isolated: tenant A sees only its change.
            #expect(
                try await feed.events(tenantID: "tenant-a", after: 0, resourceTypes: [], limit: 10, pool: pool).events.map(\.resourceId) == ["first"])

            // Over gRPC: a service identity follows every tenant; a user's token may not, even an admin's.
            let client = Switchboard_Common_V1_ChangeFeedService_Client(client: RPCClient(transport: harness.channel))
            var service = CallOptions(timeout: .seconds(5))
            service.metadata.addString("Bearer \(try await ServiceHarness.serviceToken())", forKey: "authorization")
            let ids = try await client.watchAllChanges(Switchboard_Common_V1_WatchAllChangesRequest(), options: service) { batches in
                var ids: [String] = []
                for try await batch in batches {
                    ids += batch.events.map(\.resourceId)
                    if ids.count >= 2 { break }
                }
                return ids
            }
            #expect(ids == ["first", "second"])
            let user = try await harness.options(tenant: "tenant-a", roles: [.admin])
            do {
                try await client.watchAllChanges(Switchboard_Common_V1_WatchAllChangesRequest(), options: user) { batches in
                    for try await _ in batches {}
                }
                Issue.record("a user's token followed every tenant's feed")
            } catch let error as RPCError {
                #expect(error.code == .permissionDenied)
            }
            var bad = Switchboard_Common_V1_WatchAllChangesRequest()
            bad.afterCursor = "not-a-cursor"
            do {
                try await client.watchAllChanges(bad, options: service) { batches in for try await _ in batches {} }
                Issue.record("a malformed cursor was accepted")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument)
                #expect(error.fieldViolations.map(\.field) == ["after_cursor"])
            }
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    @Test("a consumer killed mid-batch and restarted applies every change exactly once, across tenants")
    func consumerExactlyOnce() async throws {
        let harness = try await ServiceHarness.start(feedTestService, provisionSQL: genericProvision)
        do {
            let feed = ChangeFeed(schema: "kitfeed")
            let pool = harness.pool
            // The consumer's own schema, with the kit's tables (feed_cursors) and an effects table without a unique
            // key, so a change applied twice shows up as a duplicate row.
            try await KitMigrations.migrate(
                schema: "kitsink",
                service: [
                    Migration(version: 1, name: "effects", sql: "CREATE TABLE kitsink.effects (tenant_id text NOT NULL, sequence bigint NOT NULL)")
                ], pool: pool)
            // 240 changes over 3 tenants, in 80 transactions.
            for i in 0..<80 {
                let tenant = "tenant-\(i % 3)"
                try await pool.transaction(settings: ["app.tenant_id": tenant]) { c in
                    for j in 0..<3 { try await feed.record(Self.change("thing-\(i)-\(j)"), tenantID: tenant, on: c) }
                }
            }
            let token = try await ServiceHarness.serviceToken()
            let source = FeedConsumer.Source(transport: harness.channel, token: { token })
            let applied = Atomic<Int>(0)
            let failOnce = Atomic<Bool>(true)
            func consumer(killAfter: Int?) -> (FeedConsumer, Task<Void, Never>?) {
                var made = FeedConsumer(feed: "kitfeed", schema: "kitsink", source: source, pool: pool, logger: Logger(label: "test")) { events, c in
                    for (i, event) in events.enumerated() {
                        try await c.query(
                            "INSERT INTO kitsink.effects (tenant_id, sequence) VALUES ($1, $2)",
                            [.text(event.tenantId), .int(event.sequence)])
                        let total = applied.add(1, ordering: .relaxed).newValue
                        if let killAfter, total >= killAfter, i > 0, i < events.count - 1 {
                            // Killed mid-batch: this transaction never commits.
                            withUnsafeCurrentTask { $0?.cancel() }
                            throw CancellationError()
                        }
                        if killAfter == nil, i == 1, failOnce.exchange(false, ordering: .relaxed) {
                            // A failure mid-batch in a live consumer: rolled back, reconnected, redone.
                            throw RPCError(code: .unavailable, message: "injected")
                        }
                    }
                }
                made.initialBackoff = .milliseconds(10)
                return (made, nil)
            }
            let (doomed, _) = consumer(killAfter: 40)
            let killed = Task { await doomed.follow() }
            _ = await killed.value
            let cursorAfterKill = try await doomed.storedCursor()
            // Batches before the kill were committed; the one it interrupted left nothing behind.
            #expect(!cursorAfterKill.isEmpty)
            let committed = try await pool.query("SELECT count(*) AS n FROM kitsink.effects").first?.int("n") ?? 0
            #expect(committed > 0 && committed < applied.load(ordering: .relaxed), "\(committed) effects stored by the killed consumer")
            let (survivor, _) = consumer(killAfter: nil)
            let running = Task { await survivor.follow() }
            var count = 0
            for _ in 0..<300 {
                count = Int(try await pool.query("SELECT count(*) AS n FROM kitsink.effects").first?.int("n") ?? 0)
                if count >= 240 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .milliseconds(300))
            running.cancel()
            _ = await running.value
            let rows = try await pool.query(
                """
                SELECT count(*) AS n, count(DISTINCT (tenant_id, sequence)) AS distinct_n FROM kitsink.effects
                """
            ).first
            #expect(try rows?.int("n") == 240, "applied \(count), cursor after the kill \(cursorAfterKill)")
            #expect(try rows?.int("distinct_n") == 240)
            let truth = try await pool.transaction(settings: ["app.feed_reader": "on"]) { c in
                try await c.query("SELECT count(*) AS n FROM kitfeed.changes").first?.int("n")
            }
            #expect(truth == 240)
            #expect(try await survivor.storedCursor() != cursorAfterKill)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    @Test("a batch of changes stores the same rows as the changes recorded one by one: resources with quotes, backslashes, escapes and other scripts")
    func batchMatchesSingle() async throws {
        let harness = try await ServiceHarness.start(feedTestService, provisionSQL: genericProvision)
        do {
            let feed = ChangeFeed(schema: "kitfeed")
            let resources = [
                #"{"id":"1","name":"O'Brien \"Jr\"","path":"C:\\x","nested":{"a":[1,2.5,null,true]}}"#,
                #"{"id":"2","note":"line\nbreak\ttab \u0001 é 日本 🙂","empty":{}}"#,
                #"{}"#, #"{"id":"4","list":[{"x":"{\"not\":\"json\"}"}]}"#,
            ]
            func changes(_ prefix: String) -> [ChangeRecord] {
                resources.enumerated().map { i, json in
                    ChangeRecord(
                        resourceType: "test.v1.Thing", resourceID: "\(prefix)\(i)", kind: .updated, changedFields: ["a", "b\"c", "d,e"],
                        resourceJSON: json, actorID: "u", relatedIDs: i % 2 == 0 ? [] : ["r{1}", "r 2"])
                }
            }
            for tenant in ["single", "batch"] {
                try await harness.pool.transaction(settings: ["app.tenant_id": tenant]) { c in
                    if tenant == "single" {
                        for change in changes("c") { _ = try await feed.record(change, tenantID: tenant, on: c) }
                    } else {
                        let (sql, binds) = feed.recordStatement(changes("c"), tenantID: tenant)
                        #expect(try await c.query(sql, binds).first?.int("n") == Int64(resources.count))
                    }
                }
            }
            var stored: [[String]] = []
            for tenant in ["single", "batch"] {
                stored.append(
                    try await harness.pool.query(
                        settings: ["app.tenant_id": tenant],
                        """
                        SELECT sequence || ' ' || resource_id || ' ' || kind || ' ' || changed_fields::text || ' ' || resource::text
                            || ' ' || related_ids::text || ' ' || coalesce(service_resource::text, '-') AS r
                        FROM kitfeed.changes WHERE tenant_id = $1 ORDER BY sequence
                        """, [.text(tenant)]
                    ).rows.map { try $0.string("r") })
            }
            #expect(stored[0].count == resources.count)
            #expect(stored[0] == stored[1])
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    @Test("payloads are kept as their service wrote them and checked as JSON; payloads stored as jsonb before read the same after")
    func payloadsAsJSON() async throws {
        let harness = try await ServiceHarness.start(feedTestService, provisionSQL: genericProvision)
        do {
            let pool = harness.pool
            let resources = [
                #"{"id":"1","name":"O'Brien \"Jr\"","z":1,"a":[1,2.5,null,true]}"#, #"{"id":"2","note":"\u00e9 é 日本 🙂\n"}"#, #"{}"#,
            ]
            // A schema whose kit tables stop before migration 7, with payloads written as jsonb then.
            let old = KitMigrations.all(schema: "kitold")
            try await MigrationRunner(schema: "kitold", migrations: Array(old.prefix(6)), ledger: "kit_migrations").migrate(pool)
            try await pool.transaction(settings: ["app.tenant_id": "t"]) { c in
                for (i, json) in resources.enumerated() {
                    try await c.query(
                        """
                        INSERT INTO kitold.changes (tenant_id, sequence, resource_type, resource_id, kind, resource, actor_id)
                        VALUES ('t', $1, 'test.v1.Thing', $2, 1, $3::jsonb, 'u')
                        """, [.int(Int64(i + 1)), .text("old\(i)"), .text(json)])
                }
            }
            try await MigrationRunner(schema: "kitold", migrations: old, ledger: "kit_migrations").migrate(pool)
            let migrated = try await ChangeFeed(schema: "kitold").events(tenantID: "t", after: 0, resourceTypes: [], limit: 10, pool: pool).events
            #expect(try migrated.map(\.resource) == resources.map { try Google_Protobuf_Struct(protoJSONText: $0) })

            // Written now: the text as given, one by one and as a batch.
            let feed = ChangeFeed(schema: "kitfeed")
            func change(_ i: Int, _ json: String) -> ChangeRecord {
                ChangeRecord(resourceType: "test.v1.Thing", resourceID: "new\(i)", kind: .created, resourceJSON: json, actorID: "u")
            }
            try await pool.transaction(settings: ["app.tenant_id": "t"]) { c in
                let before = c.pipelinesSent
                #expect(try await feed.record(change(0, resources[0]), tenantID: "t", on: c) == 1)
                // One round trip, with the transaction's BEGIN (it was three: the sequence, the change, the NOTIFY).
                #expect(c.pipelinesSent - before == 1)
                let (sql, binds) = feed.recordStatement(change(1, resources[1]), tenantID: "t")
                try await c.query(sql, binds)
                let batch = feed.recordStatement(resources.enumerated().map { change($0 + 2, $1) }, tenantID: "t")
                try await c.query(batch.sql, batch.binds)
            }
            let stored = try await pool.query(
                settings: ["app.tenant_id": "t"], "SELECT resource::text AS r FROM kitfeed.changes WHERE tenant_id = 't' ORDER BY sequence"
            ).rows.map { try $0.string("r") }
            #expect(stored == [resources[0], resources[1]] + resources)
            let read = try await feed.events(tenantID: "t", after: 0, resourceTypes: [], limit: 10, pool: pool).events
            #expect(try read.map(\.resource) == (Array(resources.prefix(2)) + resources).map { try Google_Protobuf_Struct(protoJSONText: $0) })

            // Text that is not JSON is refused where it is stored, and the batch stores nothing.
            for bad in [#"{"id":"x""#, "not json", ""] {
                do {
                    try await pool.transaction(settings: ["app.tenant_id": "t"]) { c in
                        let batch = feed.recordStatement([change(9, resources[0]), change(10, bad)], tenantID: "t")
                        try await c.query(batch.sql, batch.binds)
                    }
                    Issue.record("a payload that is not JSON was stored: \(bad)")
                } catch let error as PostgresError {
                    #expect(error.sqlState == "22P02", "\(error)")
                }
            }
            #expect(try await pool.query(settings: ["app.tenant_id": "t"], "SELECT count(*) AS n FROM kitfeed.changes").first?.int("n") == 5)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }
}
