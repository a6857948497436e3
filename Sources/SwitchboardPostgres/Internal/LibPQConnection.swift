// The only file that imports libpq. `LibPQConnection` owns one `PGconn *` and frees it; every call here blocks, so
// callers run them on the connection's own dispatch queue (never a NIO event loop, never the Swift cooperative
// pool). Results are copied into Swift values before the `PGresult` is cleared: no pointer escapes.
private import CLibPQ
import Foundation

/// One result set, already decoded into Swift values.
struct RawResult {
    var columns: [String]
    var types: [UInt32]
    var rows: [[String?]]
    var affectedRows: Int
}

/// A notification received on a LISTEN connection.
struct RawNotification {
    var channel: String
    var payload: String
    var pid: Int32
}

/// Owns a libpq connection.
///
/// `@unchecked Sendable`: it moves between threads, but is used by one thread at a time — the owning
/// `PostgresConnection` only calls it from its serial queue — except `cancel()`, which uses libpq's cancel object,
/// made for use from another thread, under its own lock.
final class LibPQConnection: @unchecked Sendable {
    private var conn: OpaquePointer?
    private var statementNames: [String: String] = [:]
    private var nextStatementID = 0
    private let cancelLock = NSLock()
    private var cancelHandle: OpaquePointer?

    /// Connects (blocking).
    /// - Parameter conninfo: a libpq connection string; multi-host strings (`host=a,b target_session_attrs=...`)
    ///   let a failover reconnect without a restart.
    init(conninfo: String) throws {
        conn = PQconnectdb(conninfo)
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            let message = conn.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            PQfinish(conn)
            self.conn = nil
            throw PostgresError(kind: .connection, message: message.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        cancelHandle = PQgetCancel(conn)
    }

    deinit {
        cancelLock.lock()
        if let cancelHandle { PQfreeCancel(cancelHandle) }
        cancelHandle = nil
        cancelLock.unlock()
        PQfinish(conn)
    }

    /// Whether the connection is still usable.
    var isHealthy: Bool { conn.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// The server's process id (for tests and logs).
    var backendPID: Int32 { conn.map { PQbackendPID($0) } ?? 0 }

    /// Asks the server to cancel the statement now running, from any thread.
    func cancel() {
        cancelLock.lock()
        defer { cancelLock.unlock() }
        guard let cancelHandle else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancelHandle, &buffer, Int32(buffer.count))
    }

    /// Runs one statement with parameters.
    /// - Parameters:
    ///   - sql: the statement, with `$1`... placeholders.
    ///   - params: text-format parameter values (nil is SQL NULL) and their type OIDs (0 lets the server infer).
    ///   - prepared: cache a prepared statement for this SQL text on this connection.
    func execute(_ sql: String, params: [(value: [UInt8]?, oid: UInt32, binary: Bool)], prepared: Bool) throws -> RawResult {
        guard let conn else { throw PostgresError(kind: .connection, message: "the connection is closed") }
        var prepareError: (any Error)?
        let result: OpaquePointer? = Self.withParameters(params) { count, oids, values, lengths, formats in
            guard prepared else { return PQexecParams(conn, sql, count, oids, values, lengths, formats, 0) }
            let name: String
            if let existing = statementNames[sql] {
                name = existing
            } else {
                nextStatementID += 1
                name = "s\(nextStatementID)"
                let prepareResult = PQprepare(conn, name, sql, count, oids)
                defer { PQclear(prepareResult) }
                do {
                    try check(prepareResult)
                } catch {
                    prepareError = error
                    return nil
                }
                statementNames[sql] = name
            }
            return PQexecPrepared(conn, name, count, values, lengths, formats, 0)
        }
        if let prepareError { throw prepareError }
        defer { PQclear(result) }
        try check(result)
        return read(result!)
    }

    /// Runs statements in one round trip (libpq pipeline mode) and one implicit transaction: if one fails, the
    /// ones before it roll back and the ones after it are skipped. Statements are prepared (in the same round trip,
    /// the first time this connection sees them) and reused: parsing and planning each time doubled the server's
    /// CPU per call.
    /// - Returns: one result per statement.
    func executePipeline(_ statements: [(sql: String, params: [(value: [UInt8]?, oid: UInt32, binary: Bool)])]) throws -> [RawResult] {
        guard let conn else { throw PostgresError(kind: .connection, message: "the connection is closed") }
        guard PQenterPipelineMode(conn) == 1 else { throw connectionError() }
        defer { PQexitPipelineMode(conn) }
        enum Command { case prepare(sql: String, name: String), query }
        var commands: [Command] = []
        var preparing: [String: String] = [:]
        for statement in statements {
            let name: String
            if let existing = statementNames[statement.sql] ?? preparing[statement.sql] {
                name = existing
            } else {
                nextStatementID += 1
                name = "s\(nextStatementID)"
                let oids = statement.params.map { Oid($0.oid) }
                guard PQsendPrepare(conn, name, statement.sql, Int32(oids.count), oids) == 1 else { throw connectionError() }
                preparing[statement.sql] = name
                commands.append(.prepare(sql: statement.sql, name: name))
            }
            let sent = Self.withParameters(statement.params) { count, _, values, lengths, formats in
                PQsendQueryPrepared(conn, name, count, values, lengths, formats, 0)
            }
            guard sent == 1 else { throw connectionError() }
            commands.append(.query)
        }
        guard PQpipelineSync(conn) == 1 else { throw connectionError() }
        var results: [RawResult] = []
        var firstError: (any Error)?
        for command in commands {
            if let result = PQgetResult(conn) {
                let status = PQresultStatus(result)
                if status != PGRES_PIPELINE_ABORTED {
                    do {
                        try check(result)
                        switch command {
                        case .prepare(let sql, let name): statementNames[sql] = name
                        case .query: results.append(read(result))
                        }
                    } catch {
                        firstError = firstError ?? error
                    }
                }
                PQclear(result)
            } else if firstError == nil {
                firstError = connectionError()
            }
            // Each command's results end with a NULL.
            while let extra = PQgetResult(conn) {
                if PQresultStatus(extra) == PGRES_PIPELINE_SYNC {
                    PQclear(extra)
                    break
                }
                PQclear(extra)
            }
        }
        // The synchronisation point.
        while let result = PQgetResult(conn) {
            let status = PQresultStatus(result)
            PQclear(result)
            if status == PGRES_PIPELINE_SYNC { break }
        }
        if let firstError { throw firstError }
        return results
    }

    /// Marshals text/binary parameters for libpq for the duration of `body`.
    private static func withParameters<R>(
        _ params: [(value: [UInt8]?, oid: UInt32, binary: Bool)],
        _ body: (Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
    ) -> R {
        let oids = params.map { Oid($0.oid) }
        let lengths = params.map { Int32($0.value?.count ?? 0) }
        let formats = params.map { Int32($0.binary ? 1 : 0) }
        let storage: [UnsafeMutablePointer<CChar>?] = params.map { param in
            guard let bytes = param.value else { return nil }
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            bytes.withUnsafeBufferPointer { b in
                b.baseAddress.map { UnsafeMutableRawPointer(p).copyMemory(from: $0, byteCount: bytes.count) }
            }
            p[bytes.count] = 0
            return p
        }
        defer { storage.forEach { $0?.deallocate() } }
        let values = storage.map { UnsafePointer($0) }
        return oids.withUnsafeBufferPointer { o in
            values.withUnsafeBufferPointer { v in
                lengths.withUnsafeBufferPointer { l in
                    formats.withUnsafeBufferPointer { f in
                        body(Int32(params.count), o.baseAddress, v.baseAddress, l.baseAddress, f.baseAddress)
                    }
                }
            }
        }
    }

    /// Runs a statement without parameters (may hold several statements, e.g. a migration file).
    func executeScript(_ sql: String) throws {
        guard let conn else { throw PostgresError(kind: .connection, message: "the connection is closed") }
        let result = PQexec(conn, sql)
        defer { PQclear(result) }
        try check(result)
    }

    /// Bulk-loads rows with `COPY ... FROM STDIN` (text format).
    /// - Parameters:
    ///   - sql: the COPY statement.
    ///   - data: the rows, already in COPY text format.
    /// - Returns: the number of rows copied.
    func copyIn(_ sql: String, data: [UInt8]) throws -> Int {
        guard let conn else { throw PostgresError(kind: .connection, message: "the connection is closed") }
        let start = PQexec(conn, sql)
        guard PQresultStatus(start) == PGRES_COPY_IN else {
            defer { PQclear(start) }
            try check(start)
            throw PostgresError(kind: .server, message: "statement did not start COPY FROM STDIN")
        }
        PQclear(start)
        var offset = 0
        while offset < data.count {
            let chunk = min(1 << 16, data.count - offset)
            let sent = data.withUnsafeBufferPointer { b in
                b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: data.count) { PQputCopyData(conn, $0 + offset, Int32(chunk)) }
            }
            guard sent == 1 else { throw connectionError() }
            offset += chunk
        }
        guard PQputCopyEnd(conn, nil) == 1 else { throw connectionError() }
        var copied = 0
        while let result = PQgetResult(conn) {
            defer { PQclear(result) }
            try check(result)
            copied = Int(String(cString: PQcmdTuples(result))) ?? copied
        }
        return copied
    }

    /// The socket to wait on for notifications.
    var socket: Int32 { conn.map { PQsocket($0) } ?? -1 }

    /// Reads what arrived on the socket and returns pending notifications.
    func consumeNotifications() throws -> [RawNotification] {
        guard let conn else { throw PostgresError(kind: .connection, message: "the connection is closed") }
        guard PQconsumeInput(conn) == 1 else { throw connectionError() }
        var out: [RawNotification] = []
        while let notify = PQnotifies(conn) {
            out.append(RawNotification(
                channel: String(cString: notify.pointee.relname), payload: String(cString: notify.pointee.extra),
                pid: notify.pointee.be_pid))
            PQfreemem(notify)
        }
        return out
    }

    /// Quotes an identifier (for LISTEN, which takes no parameters).
    func quoteIdentifier(_ name: String) throws -> String {
        guard let conn else { throw PostgresError(kind: .connection, message: "the connection is closed") }
        guard let quoted = PQescapeIdentifier(conn, name, name.utf8.count) else { throw connectionError() }
        defer { PQfreemem(quoted) }
        return String(cString: quoted)
    }

    private func connectionError() -> PostgresError {
        let message = conn.map { String(cString: PQerrorMessage($0)) } ?? "no connection"
        return PostgresError(kind: .connection, message: message.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private func check(_ result: OpaquePointer?) throws {
        guard let result else { throw connectionError() }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_COPY_IN, PGRES_EMPTY_QUERY:
            return
        default:
            func field(_ code: Character) -> String? {
                PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
            }
            let sqlState = field("C")
            if sqlState == nil || !isHealthy {
                throw PostgresError(kind: .connection, sqlState: sqlState, message: field("M") ?? connectionError().message)
            }
            throw PostgresError(
                kind: .server, sqlState: sqlState, message: field("M") ?? "unknown error", detail: field("D"),
                constraint: field("n"), table: field("t"))
        }
    }

    private func read(_ result: OpaquePointer) -> RawResult {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [String] = []
        var types: [UInt32] = []
        for c in 0..<columnCount {
            columns.append(String(cString: PQfname(result, Int32(c))))
            types.append(UInt32(PQftype(result, Int32(c))))
        }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<rowCount {
            var row: [String?] = []
            row.reserveCapacity(columnCount)
            for c in 0..<columnCount {
                if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
                    row.append(nil)
                } else {
                    let length = Int(PQgetlength(result, Int32(r), Int32(c)))
                    let value = PQgetvalue(result, Int32(r), Int32(c))!
                    row.append(value.withMemoryRebound(to: UInt8.self, capacity: length) {
                        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
                    })
                }
            }
            rows.append(row)
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return RawResult(columns: columns, types: types, rows: rows, affectedRows: affected)
    }
}
