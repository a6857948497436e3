import Dispatch
import Foundation
import Synchronization
import Testing

@testable import SwitchboardPostgres

/// Runs jobs one at a time on a dispatch queue that can be held: tasks started while it is held all queue up before
/// the first one runs, as calls read in one pass of an event loop do.
final class HeldSerialExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: the queue is the only state, and dispatch queues are thread-safe.
    let queue = DispatchQueue(label: "coalesced-read-tests")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Starts one task per element while the queue is held, so they all queue before any runs.
    func start<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) async throws -> T) -> [Task<T, any Error>] {
        queue.suspend()
        defer { queue.resume() }
        return (0..<count).map { i in Task(executorPreference: self) { try await body(i) } }
    }
}

/// What the fake database saw: each statement's keys.
private final class Recorder: Sendable {
    let runs = Mutex<[[PostgresValue]]>([])
    var keys: [[PostgresValue]] { runs.withLock { $0 } }
}

private let columns = PostgresRow.Columns(names: ["k", "v"], index: ["k": 0, "v": 1])

/// One row per key asked for, except key 0, which does not exist.
private func rows(for keys: [PostgresValue]) -> [PostgresRow] {
    keys.compactMap { key in
        guard case .int(let k) = key, k != 0 else { return nil }
        return PostgresRow(columns: columns, values: [key, .text("row \(k)")])
    }
}

private let read = CoalescedRead(
    one: "SELECT k, v FROM t WHERE k = $1", many: "SELECT k, v FROM t WHERE k = ANY($1)", keyColumn: "k", elementType: .int)
private let otherRead = CoalescedRead(
    one: "SELECT k, v FROM t WHERE k = $1", many: "SELECT k, v FROM t WHERE k = ANY($1)", keyColumn: "k", elementType: .int)

private func statement(_ tenant: String = "t1", binds: [PostgresValue] = [], read: CoalescedRead = read) -> ReadCoalescer.Statement {
    ReadCoalescer.Statement(read: read, settings: ["app.tenant_id", tenant], binds: binds)
}

private func values(_ rows: [PostgresRow]) throws -> [String] { try rows.map { try $0.string("v") } }

@Suite("Coalesced point reads (no database)")
struct CoalescedReadUnitTests {
    @Test("calls queued together share one statement; each gets only its own rows; a key asked twice is sent once")
    func callsShareOneStatement() async throws {
        let coalescer = ReadCoalescer(maxKeys: 64)
        let recorder = Recorder()
        let executor = HeldSerialExecutor()
        let keys: [Int64] = [1, 2, 3, 0, 2, 5]
        let tasks = executor.start(keys.count) { i in
            try await coalescer.read(statement(), key: .int(keys[i])) { _, keys in
                recorder.runs.withLock { $0.append(keys) }
                return rows(for: keys)
            }
        }
        var answers: [[String]] = []
        for task in tasks { answers.append(try values(try await task.value)) }
        #expect(answers == [["row 1"], ["row 2"], ["row 3"], [], ["row 2"], ["row 5"]])
        #expect(recorder.keys == [[.int(1), .int(2), .int(3), .int(0), .int(5)]])
    }

    @Test("calls that differ in read, settings or other parameters never share a statement")
    func differentStatementsStayApart() async throws {
        let coalescer = ReadCoalescer(maxKeys: 64)
        let recorder = Recorder()
        let executor = HeldSerialExecutor()
        let statements = [
            statement("t1"), statement("t2"), statement("t1", binds: [.bool(true)]), statement("t1"), statement("t1", read: otherRead),
        ]
        let tasks = executor.start(statements.count) { i in
            try await coalescer.read(statements[i], key: .int(Int64(i + 1))) { statement, keys in
                recorder.runs.withLock { $0.append(keys) }
                // The tenant's rows only: a row read under another tenant's setting must never reach this call.
                return statement.settings == ["app.tenant_id", "t2"] ? [] : rows(for: keys)
            }
        }
        var answers: [[String]] = []
        for task in tasks { answers.append(try values(try await task.value)) }
        #expect(answers == [["row 1"], [], ["row 3"], ["row 4"], ["row 5"]])
        #expect(Set(recorder.keys) == Set([[.int(1), .int(4)], [.int(2)], [.int(3)], [.int(5)]]))
    }

    @Test("a statement carries at most maxKeys keys; more calls start another")
    func batchesAreBounded() async throws {
        let coalescer = ReadCoalescer(maxKeys: 4)
        let recorder = Recorder()
        let executor = HeldSerialExecutor()
        let tasks = executor.start(10) { i in
            try await coalescer.read(statement(), key: .int(Int64(i + 1))) { _, keys in
                recorder.runs.withLock { $0.append(keys) }
                return rows(for: keys)
            }
        }
        for (i, task) in tasks.enumerated() { #expect(try values(try await task.value) == ["row \(i + 1)"]) }
        #expect(recorder.keys.map(\.count).sorted() == [2, 4, 4])
    }

    @Test("maxKeys 1 turns coalescing off: every call runs its own statement")
    func coalescingOff() async throws {
        let coalescer = ReadCoalescer(maxKeys: 1)
        let recorder = Recorder()
        let executor = HeldSerialExecutor()
        let tasks = executor.start(3) { i in
            try await coalescer.read(statement(), key: .int(Int64(i + 1))) { _, keys in
                recorder.runs.withLock { $0.append(keys) }
                return rows(for: keys)
            }
        }
        for task in tasks { _ = try await task.value }
        #expect(recorder.keys.count == 3)
    }

    @Test("a failed statement fails every call that shared it")
    func failureReachesEveryCall() async throws {
        struct Boom: Error {}
        let coalescer = ReadCoalescer(maxKeys: 64)
        let executor = HeldSerialExecutor()
        let tasks = executor.start(3) { i in
            try await coalescer.read(statement(), key: .int(Int64(i + 1))) { _, _ in throw Boom() }
        }
        for task in tasks { await #expect(throws: Boom.self) { try await task.value } }
    }

    @Test("a leader cancelled before its statement is answered: its followers run the read again and get their rows")
    func leaderCancelled() async throws {
        let coalescer = ReadCoalescer(maxKeys: 64)
        let recorder = Recorder()
        let executor = HeldSerialExecutor()
        let tasks = executor.start(3) { i in
            try await coalescer.read(statement(), key: .int(Int64(i + 1))) { _, keys in
                let first = recorder.runs.withLock { runs in
                    runs.append(keys)
                    return runs.count == 1
                }
                if first {
                    // The first statement hangs until its caller is cancelled, as a pool call does.
                    while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(1)) }
                    throw CancellationError()
                }
                return rows(for: keys)
            }
        }
        while recorder.keys.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
        tasks[0].cancel()
        await #expect(throws: CancellationError.self) { try await tasks[0].value }
        #expect(try values(try await tasks[1].value) == ["row 2"])
        #expect(try values(try await tasks[2].value) == ["row 3"])
        #expect(recorder.keys == [[.int(1), .int(2), .int(3)], [.int(2), .int(3)]])
    }

    @Test("a cancelled follower returns at once; the others still get their rows")
    func followerCancelled() async throws {
        let coalescer = ReadCoalescer(maxKeys: 64)
        let gate = Mutex(false)
        let executor = HeldSerialExecutor()
        let tasks = executor.start(3) { i in
            try await coalescer.read(statement(), key: .int(Int64(i + 1))) { _, keys in
                while !gate.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(1)) }
                return rows(for: keys)
            }
        }
        tasks[1].cancel()
        await #expect(throws: CancellationError.self) { try await tasks[1].value }
        gate.withLock { $0 = true }
        #expect(try values(try await tasks[0].value) == ["row 1"])
        #expect(try values(try await tasks[2].value) == ["row 3"])
    }
}

@Suite("Coalesced point reads against a real PostgreSQL", .serialized)
struct CoalescedReadTests {
    @Test("many concurrent reads under row-level security: each call gets its own row, and only from its own tenant")
    func concurrentReadsUnderRLS() async throws {
        try await withTestSchema(maxConnections: 4) { pool, schema in
            try await pool.withConnection { c in
                try await c.executeScript(
                    """
                    CREATE ROLE \(schema)_reader NOLOGIN;
                    CREATE TABLE \(schema).items (tenant_id text NOT NULL, id int8 NOT NULL, label text NOT NULL,
                        PRIMARY KEY (tenant_id, id));
                    ALTER TABLE \(schema).items ENABLE ROW LEVEL SECURITY;
                    ALTER TABLE \(schema).items FORCE ROW LEVEL SECURITY;
                    CREATE POLICY tenant ON \(schema).items USING (tenant_id = current_setting('app.tenant_id', true));
                    GRANT USAGE ON SCHEMA \(schema) TO \(schema)_reader;
                    GRANT SELECT ON \(schema).items TO \(schema)_reader;
                    INSERT INTO \(schema).items SELECT t, g, t || '-' || g FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 50) g;
                    """)
            }
            let read = CoalescedRead(
                one: "SELECT id, label FROM \(schema).items WHERE current_user = $1::name AND id = $2",
                many: "SELECT id, label FROM \(schema).items WHERE current_user = $1::name AND id = ANY($2)", keyColumn: "id", elementType: .int)
            // The role is set transaction-locally: row-level security never applies to the superuser running the tests.
            let outcome = await Result(catching: { try await readConcurrently(pool: pool, read: read, schema: schema) })
            _ = try? await pool.withConnection { try await $0.executeScript("DROP OWNED BY \(schema)_reader; DROP ROLE \(schema)_reader") }
            try outcome.get()
        }
    }

    private func readConcurrently(pool: PostgresPool, read: CoalescedRead, schema: String) async throws {
        // Alone, a call runs the one-key form of the statement; together, calls share the array form.
        let settings = ["app.tenant_id": "a", "role": "\(schema)_reader"]
        let alone = try await pool.query(read, settings: settings, [.text("\(schema)_reader")], key: .int(5))
        #expect(try alone.map { try $0.string("label") } == ["a-5"])
        #expect(try await pool.query(read, settings: settings, [.text("\(schema)_reader")], key: .int(55)).isEmpty)
        try await withThrowingTaskGroup(of: (String, Int64, [String]).self) { group in
            for i in 0..<200 {
                let tenant = i % 2 == 0 ? "a" : "b"
                let key = Int64(i % 60 + 1)  // 51...60 exist for no tenant
                group.addTask {
                    let rows = try await pool.query(
                        read, settings: ["app.tenant_id": tenant, "role": "\(schema)_reader"], [.text("\(schema)_reader")],
                        key: .int(key))
                    return (tenant, key, try rows.map { try $0.string("label") })
                }
            }
            var seen = 0
            for try await (tenant, key, labels) in group {
                #expect(labels == (key <= 50 ? ["\(tenant)-\(key)"] : []), "tenant \(tenant) key \(key)")
                seen += 1
            }
            #expect(seen == 200)
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

/// A fake database for the pipeline coalescer: records each pipeline's statements, answers one result per statement
/// (its text as the only row), and fails a pipeline holding a statement named "bad".
private final class FakePipelines: Sendable {
    let runs = Mutex<[[String]]>([])

    func execute(_ settings: [String], _ statements: PipelineCoalescer.Statements) async throws -> [PostgresResult] {
        runs.withLock { $0.append(statements.map(\.sql)) }
        if statements.contains(where: { $0.sql == "bad" }) { throw PostgresError(kind: .server, message: "bad statement") }
        if statements.contains(where: { $0.sql == "lost" }) { throw PostgresError(kind: .connection, message: "connection lost") }
        return statements.map { PostgresResult(single: $0.sql) }
    }
}

extension PostgresResult {
    /// One row, one text column `sql`.
    fileprivate init(single text: String) {
        self = PostgresResult(raw: RawResult(columns: ["sql"], types: [25], rows: [[.text(text)]], affectedRows: 1))
    }
}

@Suite("Coalesced write pipelines (no database)")
struct CoalescedPipelineUnitTests {
    private func statements(_ names: String...) -> PipelineCoalescer.Statements { names.map { (sql: $0, binds: []) } }

    @Test("writes queued together run as one pipeline, in order; each call gets its own statements' results")
    func callsShareOnePipeline() async throws {
        let coalescer = PipelineCoalescer(maxMembers: 16)
        let db = FakePipelines()
        let executor = HeldSerialExecutor()
        let tasks = executor.start(3) { i in
            try await coalescer.run(settings: ["app.tenant_id", "t1"], self.statements("a\(i)", "b\(i)")) { try await db.execute($0, $1) }
        }
        var answers: [[String]] = []
        for task in tasks { answers.append(try await task.value.map { try $0.rows[0].string("sql") }) }
        #expect(answers == [["a0", "b0"], ["a1", "b1"], ["a2", "b2"]])
        #expect(db.runs.withLock { $0 } == [["a0", "b0", "a1", "b1", "a2", "b2"]])
    }

    @Test("when the shared pipeline fails, every call runs alone and gets its own outcome")
    func failureRunsEachAlone() async throws {
        let coalescer = PipelineCoalescer(maxMembers: 16)
        let db = FakePipelines()
        let executor = HeldSerialExecutor()
        let tasks = executor.start(3) { i in
            try await coalescer.run(settings: ["app.tenant_id", "t1"], i == 1 ? self.statements("bad") : self.statements("ok\(i)")) {
                try await db.execute($0, $1)
            }
        }
        #expect(try await tasks[0].value.map { try $0.rows[0].string("sql") } == ["ok0"])
        await #expect(throws: PostgresError.self) { _ = try await tasks[1].value }
        #expect(try await tasks[2].value.map { try $0.rows[0].string("sql") } == ["ok2"])
        let runs = db.runs.withLock { $0 }
        #expect(runs.first == ["ok0", "bad", "ok2"])
        #expect(Set(runs.dropFirst()) == [["ok0"], ["bad"], ["ok2"]] && runs.count == 4)
    }

    @Test("a failure that leaves the outcome unknown (a lost connection) reaches every call, and nothing is sent again")
    func unknownOutcomeIsShared() async throws {
        let coalescer = PipelineCoalescer(maxMembers: 16)
        let db = FakePipelines()
        let executor = HeldSerialExecutor()
        let tasks = executor.start(3) { i in
            try await coalescer.run(settings: ["app.tenant_id", "t1"], i == 2 ? self.statements("lost") : self.statements("ok\(i)")) {
                try await db.execute($0, $1)
            }
        }
        for task in tasks {
            await #expect(throws: PostgresError.self) { _ = try await task.value }
        }
        #expect(db.runs.withLock { $0 } == [["ok0", "ok1", "lost"]])
    }

    @Test("calls with other settings never share a pipeline, and a batch holds at most maxMembers calls")
    func settingsAndBound() async throws {
        let coalescer = PipelineCoalescer(maxMembers: 2)
        let db = FakePipelines()
        let executor = HeldSerialExecutor()
        let tasks = executor.start(5) { i in
            try await coalescer.run(settings: ["app.tenant_id", i == 4 ? "t2" : "t1"], self.statements("s\(i)")) { try await db.execute($0, $1) }
        }
        for task in tasks { _ = try await task.value }
        // (Batches of different settings run independently, in no set order.)
        let runs = db.runs.withLock { $0 }
        #expect(runs.count == 3 && Set(runs) == [["s0", "s1"], ["s2", "s3"], ["s4"]])
    }

    @Test("maxMembers 1 runs every call alone, with no yield")
    func off() async throws {
        let coalescer = PipelineCoalescer(maxMembers: 1)
        let db = FakePipelines()
        let executor = HeldSerialExecutor()
        let tasks = executor.start(2) { i in
            try await coalescer.run(settings: [], self.statements("s\(i)")) { try await db.execute($0, $1) }
        }
        for task in tasks { _ = try await task.value }
        #expect(db.runs.withLock { $0 } == [["s0"], ["s1"]])
    }
}
