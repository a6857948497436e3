import Dispatch
import FoundationEssentials
import Testing

@testable import SwitchboardPostgres

/// A serial executor for tasks, as a NIO event loop is for the services' handlers: jobs run one after another on one
/// queue, in the order they were enqueued.
private final class SerialQueueExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: the queue is thread-safe and the executor holds nothing else.
    let queue = DispatchQueue(label: "gathered-calls-tests")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

@Suite("Single-shot calls gathered into one transaction (PostgresPool.gatheringCalls)", .serialized)
struct GatheredCallsTests {
    private func withPool<T: Sendable>(_ body: (PostgresPool) async throws -> T) async throws -> T {
        var configuration = PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 4)
        configuration.pipelineDepth = 8
        let pool = PostgresPool(configuration: configuration)
        defer { pool.close() }
        _ = try await pool.query(settings: ["app.tenant_id": "warm"], "SELECT 1 AS one")
        return try await body(pool)
    }

    /// Three reads at once on one serial executor, as a summary handler starts them; each returns its own value.
    private func threeReads(_ pool: PostgresPool, tenant: String, failing: Bool = false) async throws -> [Result<String, any Error>] {
        func read(_ sql: String) async -> Result<String, any Error> {
            await Result(catching: { try await pool.query(settings: ["app.tenant_id": tenant], sql).first?.string("v") ?? "" })
        }
        async let b = read("SELECT current_setting('app.tenant_id') || '-b' AS v")
        async let c = read(failing ? "SELECT (1 / 0)::text AS v" : "SELECT current_setting('app.tenant_id') || '-c' AS v")
        let a = await read("SELECT current_setting('app.tenant_id') || '-a' AS v")
        return [a, await b, await c]
    }

    @Test("calls a handler makes at once share one round trip, and each gets its own answer; without the scope, one each")
    func gathered() async throws {
        try await withPool { pool in
            let executor = SerialQueueExecutor()
            var before = pool.statistics.roundTrips
            let gathered = try await withTaskExecutorPreference(executor) {
                try await PostgresPool.gatheringCalls { try await threeReads(pool, tenant: "t").map { try $0.get() } }
            }
            #expect(gathered == ["t-a", "t-b", "t-c"])
            #expect(pool.statistics.roundTrips - before == 1)
            before = pool.statistics.roundTrips
            let alone = try await withTaskExecutorPreference(executor) { try await threeReads(pool, tenant: "u").map { try $0.get() } }
            #expect(alone == ["u-a", "u-b", "u-c"])
            #expect(pool.statistics.roundTrips - before == 3)
        }
    }

    @Test("a call whose statement fails gets its own error; the others of its batch run again alone and get their answers")
    func failureIsolated() async throws {
        try await withPool { pool in
            let before = pool.statistics.roundTrips
            let results = try await withTaskExecutorPreference(SerialQueueExecutor()) {
                try await PostgresPool.gatheringCalls { try await threeReads(pool, tenant: "t", failing: true) }
            }
            // The batch, then each call alone.
            #expect(pool.statistics.roundTrips - before == 4)
            #expect(try results[0].get() == "t-a")
            #expect(try results[1].get() == "t-b")
            #expect(throws: PostgresError.self) { try results[2].get() }
            #expect((results[2].failure as? PostgresError)?.sqlState == "22012")
        }
    }

    @Test("calls with other settings (another tenant) never share a transaction: each sees only its own settings")
    func settingsApart() async throws {
        try await withPool { pool in
            let before = pool.statistics.roundTrips
            let (a, b) = try await withTaskExecutorPreference(SerialQueueExecutor()) {
                try await PostgresPool.gatheringCalls {
                    async let b = pool.query(settings: ["app.tenant_id": "two"], "SELECT current_setting('app.tenant_id') AS v")
                    let a = try await pool.query(settings: ["app.tenant_id": "one"], "SELECT current_setting('app.tenant_id') AS v")
                    return (try a.first?.string("v"), try await b.first?.string("v"))
                }
            }
            #expect(a == "one" && b == "two")
            #expect(pool.statistics.roundTrips - before == 2)
        }
    }

    @Test("a cancelled call returns at once, as a call alone does; the others of its batch still get their answers")
    func cancelledCallReturns() async throws {
        try await withPool { pool in
            let executor = SerialQueueExecutor()
            let settings = ["app.tenant_id": "t"]
            let (slow, quick) = await PostgresPool.gatheringCalls {
                // Both queued on the serial executor: the first leads and yields, the second joins its batch.
                (
                    Task(executorPreference: executor) { try await pool.query(settings: settings, "SELECT pg_sleep(3)::text || 'slow' AS v") },
                    Task(executorPreference: executor) { try await pool.query(settings: settings, "SELECT 'quick' AS v").first?.string("v") }
                )
            }
            try await Task.sleep(for: .milliseconds(300))
            let start = ContinuousClock.now
            slow.cancel()
            let outcome = await slow.result
            // Well before the statement's three seconds: the call did not wait for its batch.
            #expect(ContinuousClock.now - start < .seconds(2))
            #expect(throws: CancellationError.self) { try outcome.get() }
            #expect(try await quick.value == "quick")
        }
    }
}

extension Result where Failure == any Error {
    fileprivate var failure: (any Error)? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
