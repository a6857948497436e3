import Foundation
import Synchronization
import Testing

@testable import SwitchboardPostgres

/// The test database: the cluster `scripts/postgres.sh` runs (the test command starts it).
let testConninfo =
    ProcessInfo.processInfo.environment["SWITCHBOARD_PG_URL"]
    ?? "host=127.0.0.1 port=54329 user=postgres dbname=postgres"

/// Runs `body` with a pool and a fresh schema that is dropped afterwards.
func withTestSchema<T: Sendable>(maxConnections: Int = 4, _ body: (PostgresPool, String) async throws -> T) async throws -> T {
    let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: maxConnections))
    let schema = "t_" + UUID().uuidString.prefix(8).lowercased()
    try await pool.withConnection { try await $0.executeScript("CREATE SCHEMA \(schema)") }
    do {
        let result = try await body(pool, schema)
        try await pool.withConnection { try await $0.executeScript("DROP SCHEMA \(schema) CASCADE") }
        pool.close()
        return result
    } catch {
        _ = try? await pool.withConnection { try await $0.executeScript("DROP SCHEMA \(schema) CASCADE") }
        pool.close()
        throw error
    }
}

@Suite("Postgres layer against a real PostgreSQL", .serialized)
struct PostgresTests {
    @Test("every supported type round-trips through a bound parameter")
    func typesRoundTrip() async throws {
        try await withTestSchema { pool, _ in
            let uuid = UUID()
            let now = Date(timeIntervalSince1970: 1_700_000_000.123456)
            let values: [(PostgresValue, String)] = [
                (.text("héllo ☺ 'quoted' \"double\" \\ back"), "text"),
                (.int(Int64.max), "int8"), (.int(Int64.min), "int8"),
                (.bool(true), "bool"), (.bool(false), "bool"),
                (.double(3.141592653589793), "float8"), (.double(.infinity), "float8"),
                (.numeric("12345678901234567890.123456789"), "numeric"),
                (.uuid(uuid), "uuid"),
                (.timestamp(now), "timestamptz"),
                (.date(PostgresDate(year: 2026, month: 2, day: 28)), "date"),
                (.bytes(Array(0...255)), "bytea"),
                (.array([.text("a"), .text("b,c"), .text("d \"e\""), .null, .text("NULL")], elementType: .text), "text[]"),
                (.array([.int(1), .int(-2), .int(Int64.max)], elementType: .int), "int8[]"),
                (.array([.uuid(uuid)], elementType: .uuid), "uuid[]"),
                (.array([], elementType: .text), "text[]"),
            ]
            for (value, type) in values {
                let row = try await pool.query("SELECT $1::\(type) AS v", [value]).first!
                #expect(row["v"] == value, "\(type): sent \(value), got \(row["v"])")
            }
            let json = try await pool.query("SELECT $1::jsonb AS v", [.jsonb(#"{"b": [1, 2], "a": "x"}"#)]).first!
            #expect(json["v"] == .jsonb(#"{"a": "x", "b": [1, 2]}"#))
            let null = try await pool.query("SELECT $1::text AS v", [.null]).first!
            #expect(null["v"] == .null)
            #expect(try null.optionalString("v") == nil)
            #expect(throws: PostgresError.self) { try null.string("v") }
        }
    }

    @Test("a value's text size is PostgreSQL's octet_length of its text form: exact for text, numbers and plain arrays, near for times")
    func textBytes() async throws {
        try await withTestSchema { pool, _ in
            let exact: [(PostgresValue, String)] = [
                (.text("héllo ☺"), "text"), (.text(""), "text"), (.int(0), "int8"), (.int(-907), "int8"), (.int(Int64.min), "int8"),
                (.int(Int64.max), "int8"), (.numeric("-12.50"), "numeric"), (.uuid(UUID()), "uuid"),
                (.date(PostgresDate(year: 2026, month: 2, day: 28)), "date"), (.bytes([0, 255, 7]), "bytea"),
                (.array([.text("tag"), .text("zoë")], elementType: .text), "text[]"), (.array([], elementType: .text), "text[]"),
                (.array([.int(12), .int(-3)], elementType: .int), "int8[]"),
            ]
            for (value, type) in exact {
                let row = try await pool.query("SELECT $1::\(type) AS v, octet_length($1::\(type)::text) AS n", [value]).first!
                #expect(row["v"].textBytes == Int(try row.int("n")), "\(type) \(value)")
            }
            let row = try await pool.query(
                "SELECT now() AS t, 0.1::float8 AS d, octet_length(now()::text) AS tn, octet_length(0.1::float8::text) AS dn"
            ).first!
            #expect(abs(row["t"].textBytes - Int(try row.int("tn"))) <= 3)
            #expect(row["d"].textBytes >= Int(try row.int("dn")))
            #expect(row.textBytes == row.values.reduce(0) { $0 + $1.textBytes })
            // A bool is written "t" or "f" (its cast to text says "true").
            #expect(PostgresValue.bool(true).textBytes == 1)
        }
    }

    @Test("an array literal bound inside a text array is the array again, per row")
    func arrayLiterals() async throws {
        try await withTestSchema { pool, _ in
            let arrays: [[String]] = [["a", "b c"], [], ["quote\"back\\slash", "{braces},comma", "NULL", ""], ["zoë ☺"]]
            let literals = arrays.map { PostgresValue.text(PostgresValue.arrayLiteral($0.map(PostgresValue.text))) }
            let rows = try await pool.query(
                "SELECT a::text[] AS a FROM unnest($1::text[]) WITH ORDINALITY AS t (a, i) ORDER BY i", [.array(literals, elementType: .text)]
            ).rows
            #expect(try rows.map { try $0.strings("a") } == arrays)
        }
    }

    @Test("arrays bound in binary arrive as the arrays their elements bound one by one make, for every element type")
    func binaryArrays() async throws {
        try await withTestSchema { pool, _ in
            let texts: [PostgresValue] = [
                .text("plain"), .text(""), .text("NULL"), .null, .text("quote\"back\\slash"), .text("{braces},comma"), .text(" spaced "),
                .text("zoë ☺ 𝄞"), .jsonb(#"{"a": "b"}"#), .numeric("-1.50"), .uuid(UUID()), .int(-42),
            ]
            let cases: [(elements: [PostgresValue], type: PostgresValue.ElementType, sql: String)] = [
                (texts, .text, "text"),
                ([.int(0), .int(-1), .int(Int64.min), .int(Int64.max), .null, .int(1 << 40)], .int, "int8"),
                ([.bool(true), .bool(false), .null], .bool, "bool"),
                (
                    [.double(0.1), .double(-0.0), .double(.infinity), .double(-.infinity), .double(.leastNonzeroMagnitude), .double(-1e300)], .double,
                    "float8"
                ),
                ([.uuid(UUID()), .null, .uuid(UUID(uuid: (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 255)))], .uuid, "uuid"),
                ([], .text, "text"), ([], .int, "int8"), ([], .uuid, "uuid"),
            ]
            for (elements, type, sql) in cases {
                let array = PostgresValue.array(elements, elementType: type)
                #expect(array.parameter.binary, "\(sql)[] travels in binary")
                // The same elements bound one by one, each in its text form, and put together by PostgreSQL.
                let singles = elements.indices.map { "$\($0 + 2)::\(sql)" }.joined(separator: ", ")
                let row = try await pool.query(
                    "SELECT $1::\(sql)[] AS v, $1::\(sql)[] IS NOT DISTINCT FROM ARRAY[\(singles)]::\(sql)[] AS same, cardinality($1::\(sql)[]) AS n",
                    [array] + elements
                ).first!
                #expect(try row.bool("same"), "\(sql)[]: \(row["v"])")
                #expect(try row.int("n") == Int64(elements.count))
            }
            // NaN is not equal to itself in an array comparison's sense either way: read it back instead.
            let nan = try await pool.query("SELECT ($1::float8[])[1] = 'NaN'::float8 AS nan", [.array([.double(.nan)], elementType: .double)]).first!
            #expect(try nan.bool("nan"))
            // An element that is not of the array's type makes the array a literal, parsed as the element alone would be.
            let mixed = PostgresValue.array([.int(7), .text("8")], elementType: .int)
            #expect(!mixed.parameter.binary)
            #expect(try await pool.query("SELECT $1::int8[] AS v", [mixed]).first!["v"] == .array([.int(7), .int(8)], elementType: .int))
            // A thousand-element array per column, as an import binds them, unnested in order.
            let many = (0..<1000).map { PostgresValue.text("row \($0) \"q\" \\") }
            let rows = try await pool.query(
                "SELECT t FROM unnest($1::text[]) WITH ORDINALITY AS u (t, i) ORDER BY i", [.array(many, elementType: .text)]
            ).rows
            #expect(try rows.map { PostgresValue.text(try $0.string("t")) } == many)
        }
    }

    @Test("server errors carry SQLSTATE, constraint and detail, and describe themselves without the detail")
    func errors() async throws {
        try await withTestSchema { pool, schema in
            try await pool.withConnection {
                try await $0.executeScript("CREATE TABLE \(schema).people (email text CONSTRAINT people_email_key UNIQUE)")
            }
            try await pool.query("INSERT INTO \(schema).people VALUES ($1)", [.text("secret@example.com")])
            do {
                try await pool.query("INSERT INTO \(schema).people VALUES ($1)", [.text("secret@example.com")])
                Issue.record("duplicate accepted")
            } catch let error as PostgresError {
                #expect(error.isUniqueViolation)
                #expect(error.constraint == "people_email_key")
                #expect(error.detail?.contains("secret@example.com") == true)
                #expect(!error.description.contains("secret@example.com"))
            }
            do {
                try await pool.query("SELEKT 1")
                Issue.record("syntax error accepted")
            } catch let error as PostgresError {
                #expect(error.sqlState == "42601")
                #expect(error.kind == .server)
            }
            // The pool still works after errors.
            #expect(try await pool.query("SELECT count(*) AS n FROM \(schema).people").first?.int("n") == 1)
        }
    }

    @Test("an exhausted pool times out callers, then serves them again once connections return")
    func poolExhaustion() async throws {
        let pool = PostgresPool(
            configuration: {
                var c = PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 2)
                c.acquireTimeout = .milliseconds(200)
                return c
            }())
        let holders = (0..<2).map { _ in Task { try await pool.query("SELECT pg_sleep(1.5)") } }
        // Wait until both holders have their connections (connecting may be slow on a loaded machine).
        for _ in 0..<3000 where !(pool.statistics.open == 2 && pool.statistics.idle == 0) {
            try await Task.sleep(for: .milliseconds(10))
        }
        try #require(pool.statistics.open == 2 && pool.statistics.idle == 0)
        do {
            try await pool.query("SELECT 1")
            Issue.record("acquired beyond the pool's limit")
        } catch let error as PostgresError {
            #expect(error.kind == .poolTimeout)
        }
        for holder in holders { _ = try await holder.value }
        #expect(try await pool.query("SELECT 1 AS one").first?.int("one") == 1)
        #expect(pool.statistics.timeouts == 1)
        #expect(pool.statistics.open <= 2)
        pool.close()
    }

    @Test("waiters are served in turn as connections are released")
    func poolWaiters() async throws {
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 2))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<10 { group.addTask { try await pool.query("SELECT pg_sleep(0.02)") } }
            try await group.waitForAll()
        }
        #expect(pool.statistics.open == 2)
        #expect(pool.statistics.acquired >= 10)
        pool.close()
    }

    @Test("transactions commit, roll back on error, and retry serialization failures")
    func transactions() async throws {
        try await withTestSchema { pool, schema in
            try await pool.query("CREATE TABLE \(schema).t (n int)", prepared: false)
            struct Abort: Error {}
            await #expect(throws: Abort.self) {
                try await pool.transaction { c in
                    try await c.query("INSERT INTO \(schema).t VALUES (1)", prepared: false)
                    throw Abort()
                }
            }
            #expect(try await pool.query("SELECT count(*) AS n FROM \(schema).t").first?.int("n") == 0)

            let attempts = Mutex(0)
            try await pool.transaction(isolation: .serializable) { c in
                let attempt = attempts.withLock {
                    $0 += 1
                    return $0
                }
                try await c.query("INSERT INTO \(schema).t VALUES ($1)", [.int(Int64(attempt))], prepared: false)
                if attempt == 1 {
                    try await c.executeScript("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$")
                }
            }
            #expect(attempts.withLock { $0 } == 2)
            #expect(
                try await pool.query("SELECT array_agg(n)::int8[] AS ns FROM \(schema).t").first?["ns"]
                    == .array([.int(2)], elementType: .int))
        }
    }

    @Test("a transaction's BEGIN and settings go out with its first statement; one that sends nothing sends no BEGIN")
    func beginWithFirstStatement() async throws {
        try await withTestSchema(maxConnections: 1) { pool, schema in
            func sent() async throws -> UInt64 { try await pool.withConnection { $0.pipelinesSent } }
            try await pool.withConnection { try await $0.executeScript("CREATE TABLE \(schema).b (n int8)") }
            var before = try await sent()
            let tenant = try await pool.transaction(settings: ["app.tenant_id": "t1"]) { c in
                try await c.query("SELECT current_setting('app.tenant_id') AS t").first!.string("t")
            }
            #expect(tenant == "t1")
            // The statement with BEGIN and the settings, then COMMIT: two round trips, not three.
            #expect(try await sent() - before == 2)
            before = try await sent()
            let nothing: Int = try await pool.transaction(settings: ["app.tenant_id": "t1"]) { _ in 7 }
            #expect(nothing == 7)
            #expect(try await sent() - before == 0)
            // A script run first in a transaction runs inside it: rolled back with it.
            struct Abort: Error {}
            await #expect(throws: Abort.self) {
                try await pool.transaction { c in
                    try await c.executeScript("INSERT INTO \(schema).b VALUES (1)")
                    try await c.copy(into: "\(schema).b", columns: ["n"], rows: [[.int(2)]])
                    #expect(try await c.query("SELECT count(*) AS n FROM \(schema).b").first!.int("n") == 2)
                    throw Abort()
                }
            }
            #expect(try await pool.query("SELECT count(*) AS n FROM \(schema).b").first!.int("n") == 0)
            // A transaction whose body throws before any statement leaves nothing pending on the connection.
            await #expect(throws: Abort.self) { try await pool.transaction(settings: ["app.tenant_id": "t2"]) { _ in throw Abort() } }
            #expect(try await pool.query("SELECT current_setting('app.tenant_id', true) AS t").first!.optionalString("t") ?? "" == "")
            try await pool.transaction(isolation: .repeatableRead) { c in
                try await c.query("INSERT INTO \(schema).b VALUES (3)")
                #expect(try await c.query("SELECT current_setting('transaction_isolation') AS i").first!.string("i") == "repeatable read")
            }
            #expect(try await pool.query("SELECT count(*) AS n FROM \(schema).b").first!.int("n") == 1)
        }
    }

    @Test("a transaction's last statements can carry its COMMIT: one round trip less, and nothing may follow them")
    func commitWithLastStatements() async throws {
        try await withTestSchema(maxConnections: 1) { pool, schema in
            func sent() async throws -> UInt64 { try await pool.withConnection { $0.pipelinesSent } }
            func count() async throws -> Int64 { try await pool.query("SELECT count(*) AS n FROM \(schema).c").first!.int("n") }
            func tenantSetting() async throws -> String {
                try await pool.query("SELECT current_setting('app.tenant_id', true) AS t").first!.optionalString("t") ?? ""
            }
            func isUsageError(_ error: any Error) -> Bool { (error as? PostgresError)?.kind == .usage }
            // Deferred: a second 7 fails at COMMIT, not at its INSERT.
            try await pool.withConnection {
                try await $0.executeScript("CREATE TABLE \(schema).c (n int8 UNIQUE DEFERRABLE INITIALLY DEFERRED)")
            }
            var before = try await sent()
            let seen = try await pool.transaction(settings: ["app.tenant_id": "t1"]) { c in
                try await c.query("INSERT INTO \(schema).c VALUES (1)")
                let row = try await c.pipelineCommitting([("SELECT count(*) AS n, current_setting('app.tenant_id') AS t FROM \(schema).c", [])])[0]
                return (try row.first!.int("n"), try row.first!.string("t"))
            }
            #expect(seen == (1, "t1"))
            // BEGIN and the settings with the INSERT, then the SELECT with COMMIT: two round trips, not three.
            #expect(try await sent() - before == 2)
            #expect(try await count() == 1)
            before = try await sent()
            _ = try await pool.transaction { c in try await c.pipelineCommitting([("SELECT 1 AS one", [])]) }
            #expect(try await sent() - before == 1)

            // A statement after the COMMIT throws rather than run outside the transaction, without its settings.
            await #expect(
                performing: {
                    try await pool.transaction(settings: ["app.tenant_id": "t1"]) { c in
                        _ = try await c.pipelineCommitting([("INSERT INTO \(schema).c VALUES (2)", [])])
                        try await c.query("INSERT INTO \(schema).c VALUES (3)")
                    }
                }, throws: isUsageError)
            #expect(try await count() == 2)
            #expect(try await tenantSetting() == "")

            // A failing last statement skips the COMMIT: everything rolls back.
            await #expect(throws: PostgresError.self) {
                try await pool.transaction(settings: ["app.tenant_id": "t1"]) { c in
                    try await c.query("INSERT INTO \(schema).c VALUES (4)")
                    _ = try await c.pipelineCommitting([("SELECT 1 / 0 AS x", [])])
                }
            }
            #expect(try await count() == 2)
            #expect(try await tenantSetting() == "")

            // A COMMIT that fails (the deferred unique check) throws, and nothing of the transaction stays.
            await #expect(
                performing: {
                    try await pool.transaction(settings: ["app.tenant_id": "t1"]) { c in
                        try await c.query("INSERT INTO \(schema).c VALUES (7)")
                        _ = try await c.pipelineCommitting([("INSERT INTO \(schema).c VALUES (7)", [])])
                    }
                }, throws: { ($0 as? PostgresError)?.isUniqueViolation == true })
            #expect(try await count() == 2)
            #expect(try await tenantSetting() == "")
            // A body that catches that failure can neither send more (it would run outside the transaction) nor commit
            // by returning: the transaction throws the COMMIT's error.
            let afterFailure = Mutex<PostgresError?>(nil)
            await #expect(
                performing: {
                    try await pool.transaction(settings: ["app.tenant_id": "t1"]) { c in
                        try await c.query("INSERT INTO \(schema).c VALUES (8)")
                        _ = try? await c.pipelineCommitting([("INSERT INTO \(schema).c VALUES (8)", [])])
                        do {
                            try await c.query("INSERT INTO \(schema).c VALUES (9)")
                        } catch let error as PostgresError {
                            afterFailure.withLock { $0 = error }
                        }
                    }
                }, throws: { ($0 as? PostgresError)?.isUniqueViolation == true })
            #expect(afterFailure.withLock { $0?.kind } == .usage)
            #expect(try await count() == 2)
            #expect(try await tenantSetting() == "")

            // A retryable failure runs the body again, which commits the second time.
            let attempts = Mutex(0)
            try await pool.transaction { c in
                let attempt = attempts.withLock {
                    $0 += 1
                    return $0
                }
                try await c.query("INSERT INTO \(schema).c VALUES ($1)", [.int(Int64(10 + attempt))])
                let fail = "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$"
                _ = try await c.pipelineCommitting([(attempt == 1 ? fail : "SELECT 1 AS one", [])], prepared: false)
            }
            #expect(attempts.withLock { $0 } == 2)
            #expect(
                try await pool.query("SELECT array_agg(n ORDER BY n)::int8[] AS ns FROM \(schema).c").first?["ns"]
                    == .array([.int(1), .int(2), .int(12)], elementType: .int))

            // Outside a transaction's body it is refused.
            await #expect(
                performing: { try await pool.withConnection { _ = try await $0.pipelineCommitting([("SELECT 1 AS one", [])]) } }, throws: isUsageError
            )
        }
    }

    @Test("transaction-local settings are visible inside and gone after")
    func localSettings() async throws {
        try await withTestSchema { pool, _ in
            let inside = try await pool.transaction(settings: ["app.tenant_id": "tenant-a"]) { c in
                try await c.query("SELECT current_setting('app.tenant_id', true) AS t").first!.string("t")
            }
            #expect(inside == "tenant-a")
            let after = try await pool.query("SELECT coalesce(current_setting('app.tenant_id', true), '') AS t").first!
            #expect(try after.string("t") == "")
        }
    }

    @Test("a pipeline runs in one implicit transaction: a failure rolls back what came before and skips what follows")
    func pipeline() async throws {
        try await withTestSchema { pool, schema in
            try await pool.query("CREATE TABLE \(schema).p (n int)", prepared: false)
            let ok = try await pool.withConnection { c in
                try await c.pipeline([
                    (sql: "INSERT INTO \(schema).p VALUES ($1)", binds: [.int(1)]),
                    (sql: "SELECT count(*) AS n FROM \(schema).p", binds: []),
                ])
            }
            #expect(try ok.last?.first?.int("n") == 1)
            await #expect(throws: PostgresError.self) {
                try await pool.withConnection { c in
                    try await c.pipeline([
                        (sql: "INSERT INTO \(schema).p VALUES ($1)", binds: [.int(2)]),
                        (sql: "SELECT 1 / 0", binds: []),
                        (sql: "INSERT INTO \(schema).p VALUES ($1)", binds: [.int(3)]),
                    ])
                }
            }
            #expect(
                try await pool.query("SELECT array_agg(n ORDER BY n)::int8[] AS ns FROM \(schema).p").first?["ns"]
                    == .array([.int(1)], elementType: .int))
            // Settings given to a pipelined query are local to it.
            let seen = try await pool.query(settings: ["app.tenant_id": "pipelined"], "SELECT current_setting('app.tenant_id', true) AS t")
            #expect(try seen.first?.string("t") == "pipelined")
            #expect(try await pool.query("SELECT coalesce(current_setting('app.tenant_id', true), '') AS t").first?.string("t") == "")
        }
    }

    @Test("a statement larger than the socket buffers is sent and read back in pieces")
    func largeStatement() async throws {
        try await withTestSchema(maxConnections: 1) { pool, schema in
            try await pool.query("CREATE TABLE \(schema).blob (data bytea)", prepared: false)
            // 8 MiB: several times the socket buffers, so the send waits for the socket to drain (EPOLLOUT) and the
            // answer arrives over many reads.
            let data = (0..<(8 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
            try await pool.query("INSERT INTO \(schema).blob VALUES ($1)", [.bytes(data)])
            let back = try await pool.query("SELECT data FROM \(schema).blob").first!
            #expect(try back.bytes("data") == data)
        }
    }

    @Test("many concurrent queries over few connections each get their own answer")
    func concurrentQueries() async throws {
        var configuration = PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 3)
        // 300 queries queue for 3 connections; with every suite running at once on two cores the last may wait longer
        // than the default 5 s. What is tested is the answers, not the wait.
        configuration.acquireTimeout = .seconds(60)
        let pool = PostgresPool(configuration: configuration)
        defer { pool.close() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<300 {
                group.addTask {
                    let rows = try await pool.query(
                        settings: ["app.n": "\(i)"], "SELECT $1::int8 AS n, current_setting('app.n') AS s", [.int(Int64(i))])
                    #expect(try rows.first?.int("n") == Int64(i))
                    #expect(try rows.first?.string("s") == "\(i)")
                }
            }
            try await group.waitForAll()
        }
    }

    @Test("after a failed pipeline the connection still works, and statements it never prepared are prepared again")
    func failedPipelineLeavesConnectionUsable() async throws {
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1))
        defer { pool.close() }
        let fresh = "SELECT $1::int8 + 1 AS n -- \(UUID())"
        await #expect(throws: PostgresError.self) {
            try await pool.withConnection { c in
                // The division fails first, so the server skips the second statement's PREPARE.
                try await c.pipeline([(sql: "SELECT 1 / $1::int AS x", binds: [.int(0)]), (sql: fresh, binds: [.int(1)])])
            }
        }
        #expect(try await pool.query(fresh, [.int(41)]).first?.int("n") == 42)
        #expect(try await pool.query("SELECT 1 / $1::int AS x", [.int(1)]).first?.int("x") == 1)
        let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT nonsense FROM nowhere") }
        #expect(error?.sqlState == "42P01")
        #expect(try await pool.query(fresh, [.int(1)]).first?.int("n") == 2)
    }

    @Test("a connection killed mid-query fails that query as a connection error, and the pool replaces it")
    func killedMidQuery() async throws {
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1))
        let observer = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1))
        defer {
            pool.close()
            observer.close()
        }
        let marker = "SELECT pg_sleep(10) -- \(UUID())"
        let task = Task { try await pool.query(marker) }
        var killed = false
        for _ in 0..<1500 where !killed {
            killed =
                try await observer.query(
                    "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE query = $1 AND state = 'active'",
                    [.text(marker)]
                ).first!.int("n") > 0
            if !killed { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(killed)
        do {
            _ = try await task.value
            Issue.record("the query survived its connection")
        } catch let error as PostgresError {
            #expect(error.kind == .connection || error.sqlState == "57P01")
        }
        #expect(try await pool.query("SELECT 1 AS one").first?.int("one") == 1)
    }

    /// A pool whose single-shot calls share connections, several pipelines in flight on each.
    static func sharingPool(maxConnections: Int, depth: Int = 8) -> PostgresPool {
        var configuration = PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: maxConnections)
        configuration.pipelineDepth = depth
        configuration.sharedStallLimit = .seconds(60)
        return PostgresPool(configuration: configuration)
    }

    @Test("shared connections: many pipelines in flight on each, every caller gets its own answer and settings")
    func sharedConnections() async throws {
        let pool = Self.sharingPool(maxConnections: 2)
        defer { pool.close() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<400 {
                group.addTask {
                    let rows = try await pool.query(
                        settings: ["app.n": "\(i)"], "SELECT $1::int8 AS n, current_setting('app.n') AS s, pg_backend_pid() AS pid",
                        [.int(Int64(i))])
                    #expect(try rows.first?.int("n") == Int64(i))
                    #expect(try rows.first?.string("s") == "\(i)")
                }
            }
            try await group.waitForAll()
        }
        #expect(pool.statistics.open <= 2)
        #expect(pool.statistics.sharedCalls > 0)
    }

    @Test("shared connections: a failing pipeline fails alone, and the ones around it succeed")
    func sharedFailureIsolation() async throws {
        try await withTestSchema { _, schema in
            let pool = Self.sharingPool(maxConnections: 1)
            defer { pool.close() }
            try await pool.query("CREATE TABLE \(schema).s (n int PRIMARY KEY)", prepared: false)
            let outcomes = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for i in 0..<60 {
                    group.addTask {
                        do {
                            // Every third call inserts a duplicate key after a good row: its pipeline rolls back.
                            try await pool.pipeline(
                                settings: [:],
                                [
                                    (sql: "INSERT INTO \(schema).s VALUES ($1)", binds: [.int(Int64(1000 + i))]),
                                    (sql: "INSERT INTO \(schema).s VALUES ($1)", binds: [.int(Int64(i % 3 == 0 ? 1000 + i : 5000 + i))]),
                                ])
                            return (i, nil)
                        } catch let error as PostgresError {
                            return (i, error.sqlState)
                        }
                    }
                }
                return try await group.reduce(into: [(Int, String?)]()) { $0.append($1) }.sorted { $0.0 < $1.0 }
            }
            #expect(outcomes.map(\.0) == Array(0..<60))
            for (i, state) in outcomes { #expect(state == (i % 3 == 0 ? "23505" : nil), "call \(i)") }
            let stored = try await pool.query("SELECT count(*) AS n FROM \(schema).s").first!.int("n")
            #expect(stored == 80)
        }
    }

    @Test("coalesced writes: calls queued together commit in one transaction; a failing one fails alone after a retry")
    func coalescedWrites() async throws {
        try await withTestSchema { _, schema in
            let pool = Self.sharingPool(maxConnections: 2)
            defer { pool.close() }
            try await pool.query("CREATE TABLE \(schema).w (n int PRIMARY KEY)", prepared: false)
            let executor = HeldSerialExecutor()
            // Call 2 inserts a duplicate key after a good row: the shared transaction fails, each call runs alone, and
            // only call 2 fails (with its own row rolled back).
            let tasks = executor.start(4) { i in
                try await pool.coalescedPipeline(
                    settings: ["app.tenant_id": "t"],
                    [
                        (sql: "INSERT INTO \(schema).w VALUES ($1)", binds: [.int(Int64(100 + i))]),
                        (sql: "INSERT INTO \(schema).w VALUES ($1)", binds: [.int(Int64(i == 2 ? 100 + i : 200 + i))]),
                        (sql: "SELECT txid_current()::text AS tx", binds: []),
                    ]
                ).last!.rows[0].string("tx")
            }
            #expect(try await tasks[0].value.isEmpty == false)
            await #expect(throws: PostgresError.self) { _ = try await tasks[2].value }
            _ = try await tasks[1].value
            _ = try await tasks[3].value
            let stored = try await pool.query("SELECT array_agg(n ORDER BY n)::text AS n FROM \(schema).w").first!.string("n")
            #expect(stored == "{100,101,103,200,201,203}")

            // Without a failure: one transaction for all (only calls with equal settings share one).
            let shared = executor.start(4) { i in
                try await pool.coalescedPipeline(
                    settings: ["app.tenant_id": "t"],
                    [
                        (sql: "INSERT INTO \(schema).w VALUES ($1)", binds: [.int(Int64(300 + i))]),
                        (sql: "SELECT txid_current()::text AS tx", binds: []),
                    ]
                ).last!.rows[0].string("tx")
            }
            var transactions: Set<String> = []
            for task in shared { transactions.insert(try await task.value) }
            #expect(transactions.count == 1)
        }
    }

    @Test("shared connections: cancelling a call queued behind another does not cancel the other's statement")
    func sharedCancellation() async throws {
        let pool = Self.sharingPool(maxConnections: 1)
        defer { pool.close() }
        let observer = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1))
        defer { observer.close() }
        let sql = "SELECT pg_sleep(1)::text AS slept, 7 AS n"
        let slow = Task { try await pool.query(sql) }
        // On the server before the second call is made, however loaded the host (a fixed sleep was not always enough).
        try await eventually { try await isActive(sql, observer) }
        let queued = Task { try await pool.query("SELECT 8 AS n") }
        try await eventually { pool.statistics.sharedCalls == 1 }
        queued.cancel()
        #expect(try await slow.value.first?.int("n") == 7)
        _ = try? await queued.value
        #expect(try await pool.query("SELECT 9 AS n").first?.int("n") == 9)
    }

    @Test("shared connections: a connection busy with something slow is not joined while another can be used")
    func sharedStallGuard() async throws {
        var configuration = PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 2)
        configuration.pipelineDepth = 8
        configuration.sharedStallLimit = .milliseconds(5)
        let pool = PostgresPool(configuration: configuration)
        defer { pool.close() }
        let observer = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1))
        defer { observer.close() }
        let sql = "SELECT pg_backend_pid() AS pid, pg_sleep(1)::text AS slept"
        let slow = Task { try await pool.query(sql) }
        // Running on the server, and for longer than the stall limit, when the quick call arrives: a fixed sleep
        // after starting the task was not always enough on a loaded host.
        try await eventually { try await isActive(sql, observer) }
        try await Task.sleep(for: .milliseconds(20))
        let quick = try await pool.query("SELECT pg_backend_pid() AS pid").first!.int("pid")
        #expect(try await slow.value.first!.int("pid") != quick)
        #expect(pool.statistics.sharedCalls == 0)
    }

    @Test("shared connections: transactions waiting for a connection are not starved by a stream of reads")
    func sharedNoStarvation() async throws {
        var configuration = PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1)
        configuration.pipelineDepth = 8
        configuration.acquireTimeout = .seconds(5)
        let pool = PostgresPool(configuration: configuration)
        defer { pool.close() }
        let readers = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask { while !Task.isCancelled { _ = try await pool.query("SELECT pg_sleep(0.002)") } }
                }
                try await group.waitForAll()
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        let inside = try await pool.transaction { c in try await c.query("SELECT 1 AS one").first?.int("one") }
        #expect(inside == 1)
        readers.cancel()
        _ = try? await readers.value
    }

    @Test("COPY FROM STDIN loads rows with awkward text, NULLs and bytes exactly")
    func copy() async throws {
        try await withTestSchema { pool, schema in
            try await pool.query("CREATE TABLE \(schema).bulk (id int8, name text, data bytea)", prepared: false)
            let rows: [[PostgresValue]] = (0..<10_000).map { i in
                [.int(Int64(i)), i % 100 == 0 ? .null : .text("row\t\(i)\nline \\ two"), .bytes([UInt8(i % 256), 0, 255])]
            }
            let copied = try await pool.withConnection { try await $0.copy(into: "\(schema).bulk", columns: ["id", "name", "data"], rows: rows) }
            #expect(copied == 10_000)
            let row = try await pool.query("SELECT name, data FROM \(schema).bulk WHERE id = 7").first!
            #expect(try row.string("name") == "row\t7\nline \\ two")
            #expect(try row.bytes("data") == [7, 0, 255])
            #expect(try await pool.query("SELECT count(*) AS n FROM \(schema).bulk WHERE name IS NULL").first?.int("n") == 100)
        }
    }

    @Test("LISTEN receives NOTIFY, and the listener comes back after its connection is killed")
    func listenNotify() async throws {
        let channel = "sb_test_" + UUID().uuidString.prefix(8).lowercased()
        let listener = PostgresListener(conninfo: testConninfo, channels: [channel])
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 2))
        var events = listener.events().makeAsyncIterator()
        #expect(await events.next() == .connected)
        try await pool.query("SELECT pg_notify($1, $2)", [.text(channel), .text("hello")])
        #expect(await events.next() == .notification(PostgresNotification(channel: channel, payload: "hello")))
        try await pool.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1", [.text("LISTEN \"\(channel)\"")])
        #expect(await events.next() == .connected)
        try await pool.query("SELECT pg_notify($1, $2)", [.text(channel), .text("again")])
        #expect(await events.next() == .notification(PostgresNotification(channel: channel, payload: "again")))
        pool.close()
    }

    @Test("cancelling the calling task returns at once and cancels the running statement on the server")
    func cancellation() async throws {
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1))
        let observer = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1))
        defer { observer.close() }
        let marker = "SELECT pg_sleep(60) -- \(UUID())"
        let task = Task { try await pool.query(marker) }
        // Cancel only once the statement is running on the server.
        try await eventually { try await isActive(marker, observer) }
        task.cancel()
        do {
            _ = try await task.value
            Issue.record("the sleep was not cancelled")
        } catch {
            #expect(error is CancellationError, "got \(error)")
        }
        // The server stops the statement long before its minute is up.
        try await eventually { try await !isActive(marker, observer) }
        #expect(try await pool.query("SELECT 1 AS one").first?.int("one") == 1)
        pool.close()
    }

    @Test("an unreachable database fails fast with a connection error while backing off")
    func unreachable() async throws {
        let pool = PostgresPool(
            configuration: {
                var c = PostgresPoolConfiguration(conninfo: "host=127.0.0.1 port=1 user=postgres connect_timeout=2")
                c.reconnectBackoff = .seconds(1)
                return c
            }())
        for _ in 0..<3 {
            do {
                try await pool.query("SELECT 1")
                Issue.record("connected to nothing")
            } catch let error as PostgresError {
                #expect(error.kind == .connection)
            }
        }
        #expect(pool.statistics.connectFailures == 1, "backoff should prevent repeated attempts")
        pool.close()
    }

    @Test("multi-host connection strings skip an unreachable host")
    func multiHost() async throws {
        let pool = PostgresPool(
            configuration: PostgresPoolConfiguration(
                conninfo: "host=127.0.0.1,127.0.0.1 port=1,\(testPort) user=postgres dbname=postgres target_session_attrs=read-write"))
        #expect(try await pool.query("SELECT 1 AS one").first?.int("one") == 1)
        pool.close()
    }
}

var testPort: String {
    testConninfo.split(separator: " ").first { $0.hasPrefix("port=") }.map { String($0.dropFirst(5)) } ?? "5432"
}

@Suite("Migrations", .serialized)
struct MigrationTests {
    @Test("apply in order, are idempotent, and refuse a changed applied migration")
    func lifecycle() async throws {
        try await withTestSchema { pool, schema in
            try await pool.query("DROP SCHEMA \(schema) CASCADE", prepared: false)
            let v1 = Migration(version: 1, name: "create_things", sql: "CREATE TABLE \(schema).things (id int8 PRIMARY KEY);")
            let v2 = Migration(version: 2, name: "add_name", sql: "ALTER TABLE \(schema).things ADD COLUMN name text;")
            #expect(try await MigrationRunner(schema: schema, migrations: [v2, v1]).migrate(pool) == [1, 2])
            #expect(try await MigrationRunner(schema: schema, migrations: [v1, v2]).migrate(pool) == [])
            try await pool.query("INSERT INTO \(schema).things (id, name) VALUES (1, 'x')", prepared: false)

            var edited = v1
            edited.sql += " -- edited"
            do {
                try await MigrationRunner(schema: schema, migrations: [edited, v2]).migrate(pool)
                Issue.record("a changed migration was accepted")
            } catch let error as MigrationError {
                #expect(error.description.contains("migration 1 (create_things) was changed"))
            }
        }
    }

    @Test("a failing migration rolls back entirely and is not recorded")
    func failure() async throws {
        try await withTestSchema { pool, schema in
            let bad = Migration(version: 1, name: "bad", sql: "CREATE TABLE \(schema).a (id int); SELEKT;")
            await #expect(throws: PostgresError.self) { try await MigrationRunner(schema: schema, migrations: [bad]).migrate(pool) }
            let exists = try await pool.query("SELECT to_regclass($1)::text AS t", [.text("\(schema).a")]).first!
            #expect(exists["t"] == .null)
            let recorded = try await pool.query("SELECT count(*) AS n FROM \(schema).schema_migrations").first!
            #expect(try recorded.int("n") == 0)
        }
    }

    @Test("concurrent runners apply each migration exactly once")
    func concurrent() async throws {
        try await withTestSchema(maxConnections: 6) { pool, schema in
            let migrations = (1...5).map { Migration(version: $0, name: "m\($0)", sql: "CREATE TABLE \(schema).m\($0) (id int);") }
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<4 { group.addTask { try await MigrationRunner(schema: schema, migrations: migrations).migrate(pool) } }
                var all: [Int] = []
                for try await done in group { all += done }
                return all
            }
            #expect(applied.sorted() == [1, 2, 3, 4, 5])
        }
    }
}
