// The only file that imports libpq. `LibPQConnection` owns one `PGconn *` and frees it. Queries run on libpq's
// non-blocking API: the caller's thread sends (never waits), and one poller thread (`LibPQPoller`, epoll) reads the
// answers and completes the call, so a query costs no thread hop on the way out. The remaining calls (connect,
// scripts, COPY) block; callers run them on the connection's own dispatch queue (never a NIO event loop, never the
// Swift cooperative pool). Results are copied into Swift values before the `PGresult` is cleared: no pointer escapes.
private import CLibPQ
import Dispatch
import FoundationEssentials
import Glibc
import Synchronization

/// One result set, already decoded into Swift values.
struct RawResult {
    var columns: [String]
    var types: [UInt32]
    /// Decoded by the columns' types as they are read from libpq's buffers.
    var rows: [[PostgresValue]]
    var affectedRows: Int
}

/// One statement of a pipeline: SQL, text/binary parameters (nil is NULL) with their type OIDs (0 lets the server
/// infer), and whether to prepare it once per connection.
struct RawStatement {
    var sql: String
    var params: [(value: [UInt8]?, oid: UInt32, binary: Bool)]
    var prepared: Bool
}

extension String {
    /// Without leading and trailing white space (libpq's messages end in a newline).
    var trimmedWhitespace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}

/// A notification received on a LISTEN connection.
struct RawNotification {
    var channel: String
    var payload: String
    var pid: Int32
}

/// Owns a libpq connection.
///
/// `@unchecked Sendable`: libpq is not thread-safe per connection, so every libpq call on `conn` (and the
/// prepared-statement names) runs either under `state`'s lock — pipelines, sent from callers' threads, possibly
/// several callers' at once, and received on the poller's — or in a blocking call on the connection's serial queue,
/// which the pool only allows with no pipeline in flight and which fences the poller off. Cancel requests use
/// libpq's cancel object, made for use from another thread, under its own lock.
///
/// Giving up on a call (its task was cancelled) retires the connection: the caller resumes at once, whether or not
/// the server ever answers, and no statement is sent on the connection again. That is what keeps a cancel request
/// on target: `PQcancel` stops whatever the server happens to be running when the request arrives, which may be
/// well after it was sent (it opens a connection of its own), so a connection that took new work after a cancel
/// request could lose another caller's statement to it.
final class LibPQConnection: @unchecked Sendable {
    private var conn: OpaquePointer?
    /// Prepared statements by SQL text; only touched under `state`'s lock.
    private var statementNames: [String: String] = [:]
    /// A send failed half-way (libpq's queue no longer matches ours), or a call was given up on (a cancel request
    /// may still be on its way to the server): the connection must not take new work. Only touched under `state`'s
    /// lock.
    private var poisoned = false
    private var nextStatementID = 0
    /// libpq's cancel object, made at connect, freed at close; used from whichever thread cancels.
    private let cancelHandle: Mutex<OpaquePointer?>

    /// Counts this connection's pipelines together with its pool's other connections (nil: not counted).
    private let roundTrips: RoundTripCounter?

    /// Connects (blocking).
    /// - Parameters:
    ///   - conninfo: a libpq connection string; multi-host strings (`host=a,b target_session_attrs=...`) let a
    ///     failover reconnect without a restart.
    ///   - roundTrips: where to count the pipelines it sends as well.
    init(conninfo: String, roundTrips: RoundTripCounter? = nil) throws {
        self.roundTrips = roundTrips
        conn = PQconnectdb(conninfo)
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            let message = conn.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            PQfinish(conn)
            self.conn = nil
            throw PostgresError(kind: .connection, message: message.trimmedWhitespace)
        }
        cancelHandle = Mutex(PQgetCancel(conn))
    }

    deinit {
        if let pollerID = state.withLock({ $0.pollerID }), let conn { LibPQPoller.shared.unregister(socket: PQsocket(conn), id: pollerID) }
        cancelHandle.withLock { handle in
            if let handle { PQfreeCancel(handle) }
            handle = nil
        }
        PQfinish(conn)
    }

    /// Whether the connection is still usable (from any thread).
    var isHealthy: Bool { state.withLock { _ in statusOK } }

    /// The same, for code already under `state`'s lock or on the connection's queue.
    private var statusOK: Bool { !poisoned && (conn.map { PQstatus($0) == CONNECTION_OK } ?? false) }

    /// The server's process id (for tests and logs).
    var backendPID: Int32 { conn.map { PQbackendPID($0) } ?? 0 }

    /// Asks the server to cancel the statement now running. Only ever sent once the connection is retired (see the
    /// type's note), from a queue of its own: `PQcancel` opens a connection to the server and waits for it, never on
    /// a caller's thread (an event loop, or the cooperative pool).
    private func requestCancel() {
        // A server that accepts connections but never answers them holds each `PQcancel` (which has no timeout) and
        // its thread: past a few such requests, skip them. The connection is retired either way; the request only
        // spares the server the rest of the statement.
        guard Self.cancelsInFlight.add(1, ordering: .relaxed).newValue <= Self.maxCancelsInFlight else {
            Self.cancelsInFlight.subtract(1, ordering: .relaxed)
            return
        }
        Self.cancellations.async {
            self.cancelHandle.withLock { handle in
                guard let handle else { return }
                var buffer = [CChar](repeating: 0, count: 256)
                _ = PQcancel(handle, &buffer, Int32(buffer.count))
            }
            Self.cancelsInFlight.subtract(1, ordering: .relaxed)
        }
    }

    private static let cancellations = DispatchQueue(label: "switchboard.postgres.cancel", attributes: .concurrent)
    private static let cancelsInFlight = Atomic<Int>(0)
    /// Cancel requests that may wait on the server at once, process-wide.
    static let maxCancelsInFlight = 4

    // MARK: Non-blocking pipelines

    private enum Command { case prepare(sql: String, name: String), query }

    /// A `PGresult` handed from under the lock to the thread that reads and frees it; owned by one thread at a
    /// time, and independent of the connection once libpq has returned it.
    private struct KeptResult: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    /// A pipeline in flight: sent, its results being read by the poller.
    private struct Pending {
        var id: UInt64
        var commands: [Command]
        var index = 0
        var sawResult = false
        /// The statements' results, kept as libpq's objects until the pipeline completes: they are read into
        /// Swift values after the lock is released (reading them under it made senders wait; perf showed the
        /// callers spinning on this lock).
        var results: [KeptResult] = []
        var firstError: (any Error)?
        /// nil once its caller gave up (``abandon(pipeline:)``): the answer is read and dropped.
        var completion: (@Sendable (Result<[RawResult], any Error>) -> Void)?
    }

    /// The non-blocking path's state, guarded by `state`'s lock with the libpq calls that use it, which run on the
    /// callers' threads (send) and on the poller thread (receive).
    private struct Flight {
        /// Pipelines sent and not yet answered, oldest first; the server answers them in order.
        var queue: [Pending] = []
        var nextID: UInt64 = 1
        /// A send did not fit in the socket: the poller flushes the rest when it can be written.
        var sendBlocked = false
        /// The poller's registration, made when the first pipeline is sent.
        var pollerID: UInt64?
        /// Set while a blocking call runs on the connection's queue: the poller must not touch the connection then.
        var inBlockingCall = false
        /// Blocking calls numbered so far, and the one running on the queue (0 for none): giving up on a call
        /// cancels only that call.
        var blockingCalls: UInt64 = 0
        var runningCall: UInt64 = 0
        /// A LISTEN connection's wait for notifications, completed by the poller.
        var notificationWaiter: (@Sendable (Result<[RawNotification], any Error>) -> Void)?
    }

    private let state = Mutex(Flight())

    /// Pipelines sent so far (round trips of the non-blocking path), for tests.
    var pipelinesSent: UInt64 { state.withLock { $0.nextID - 1 } }

    /// Sends statements as one pipeline (one round trip, one implicit transaction unless a transaction is open: if
    /// one fails, the earlier ones roll back and the later ones are skipped) and returns without waiting; the
    /// poller thread calls `completion` with one result per statement. Several pipelines may be in flight at once
    /// (the pool shares a connection between single-shot calls); each is its own transaction, answered in order.
    /// Prepared statements are prepared in the same round trip the first time this connection sees them: parsing
    /// and planning on every call doubled the server's CPU per read.
    /// - Returns: the pipeline's id, for ``isAlone(pipeline:)``.
    @discardableResult
    func startPipeline(_ statements: [RawStatement], completion: @escaping @Sendable (Result<[RawResult], any Error>) -> Void) -> UInt64 {
        guard let conn else {
            completion(.failure(PostgresError(kind: .connection, message: "the connection is closed")))
            return 0
        }
        let outcome: Result<UInt64, any Error> = state.withLock { flight in
            // Checked first: a blocking call given up on may still be running, on a connection already retired.
            if poisoned { return .failure(PostgresError(kind: .connection, message: "the connection is retired")) }
            precondition(!flight.inBlockingCall, "a blocking call is running on this connection")
            do {
                if flight.pollerID == nil {
                    guard let id = LibPQPoller.shared.register(self, socket: PQsocket(conn)) else {
                        throw PostgresError(kind: .connection, message: "cannot watch the connection's socket (errno \(errno))")
                    }
                    flight.pollerID = id
                }
                if flight.queue.isEmpty {
                    guard PQsetnonblocking(conn, 1) == 0, PQenterPipelineMode(conn) == 1 else { throw connectionError() }
                }
                var commands: [Command] = []
                // Statements another pipeline in flight is still preparing are prepared again under a new name:
                // if that pipeline fails before its PREPARE, the server skips it, and this one must not depend on it.
                var preparing: [String: String] = [:]
                for statement in statements {
                    var name = ""
                    if statement.prepared {
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
                    }
                    let sent = Self.withParameters(statement.params) { count, oids, values, lengths, formats in
                        statement.prepared
                            ? PQsendQueryPrepared(conn, name, count, values, lengths, formats, 0)
                            : PQsendQueryParams(conn, statement.sql, count, oids, values, lengths, formats, 0)
                    }
                    guard sent == 1 else { throw connectionError() }
                    commands.append(.query)
                }
                guard PQpipelineSync(conn) == 1 else { throw connectionError() }
                let id = flight.nextID
                flight.nextID += 1
                roundTrips?.count.add(1, ordering: .relaxed)
                flight.queue.append(Pending(id: id, commands: commands, completion: completion))
                if !flight.sendBlocked {
                    let flushed = PQflush(conn)
                    guard flushed >= 0 else {
                        // Queued and unsendable: the poller sees the broken socket and fails the whole queue.
                        flight.sendBlocked = true
                        watch(&flight, output: true)
                        return .success(id)
                    }
                    if flushed == 1 {
                        flight.sendBlocked = true
                        watch(&flight, output: true)
                    }
                }
                return .success(id)
            } catch {
                // Half-sent commands would be answered as if they were the next caller's: the connection reports
                // itself unhealthy from now on and the pool drops it once its pipelines in flight are done.
                poisoned = true
                if flight.queue.isEmpty { _ = PQexitPipelineMode(conn) }
                return .failure(error)
            }
        }
        switch outcome {
        case .success(let id): return id
        case .failure(let error):
            completion(.failure(error))
            return 0
        }
    }

    /// Waits for input, and for output too while a send is unfinished. Called under `state`'s lock.
    private func watch(_ flight: inout Flight, output: Bool) {
        guard let conn, let pollerID = flight.pollerID else { return }
        LibPQPoller.shared.watch(socket: PQsocket(conn), id: pollerID, input: true, output: output)
    }

    /// Gives up on a pipeline whose caller was cancelled: its completion gets `CancellationError` now, whether or not
    /// the server answers (it may have stopped answering), and the connection is retired. When no pipeline that
    /// someone still waits for is in flight, the server is also asked to cancel what it runs; otherwise the
    /// statement runs to its end and its answer is dropped. Does nothing if the pipeline has already completed.
    func abandon(pipeline id: UInt64) {
        let (completion, cancel) = state.withLock { flight -> ((@Sendable (Result<[RawResult], any Error>) -> Void)?, Bool) in
            guard let i = flight.queue.firstIndex(where: { $0.id == id }), let completion = flight.queue[i].completion else {
                return (nil, false)
            }
            flight.queue[i].completion = nil
            poisoned = true
            return (completion, flight.queue.allSatisfy { $0.completion == nil })
        }
        if cancel { requestCancel() }
        completion?(.failure(CancellationError()))
    }

    /// Numbers a call made of blocking libpq calls, before it is queued, so that it can be given up on.
    func numberCall() -> UInt64 {
        state.withLock { flight in
            flight.blockingCalls += 1
            return flight.blockingCalls
        }
    }

    /// Runs call `id` (on the connection's queue), unless the connection was retired meanwhile.
    func runCall<T>(_ id: UInt64, _ body: () throws -> T) throws -> T {
        try state.withLock { flight in
            if poisoned { throw PostgresError(kind: .connection, message: "the connection is retired") }
            flight.runningCall = id
        }
        defer { state.withLock { $0.runningCall = 0 } }
        return try body()
    }

    /// Gives up on call `id` (its task was cancelled): retires the connection and, if that call is talking to the
    /// server now, asks the server to cancel it. Its caller is resumed by ``PostgresConnection``.
    func abandon(call id: UInt64) {
        let running = state.withLock { flight in
            poisoned = true
            return flight.inBlockingCall && flight.runningCall == id
        }
        if running { requestCancel() }
    }

    /// Called by the poller when the socket is ready: flushes what is left to send, reads what arrived, and
    /// completes every pipeline whose answer is complete.
    func socketReady() {
        guard let conn else { return }
        var completed: [(Pending, (any Error)?)] = []
        var notified: (@Sendable () -> Void)?
        state.withLock { flight in
            if flight.inBlockingCall { return }
            func failAll(_ error: any Error) {
                completed += flight.queue.map { ($0, error) }
                flight.queue.removeAll()
                if let waiter = flight.notificationWaiter {
                    flight.notificationWaiter = nil
                    notified = { waiter(.failure(error)) }
                }
                flight.sendBlocked = false
                _ = PQexitPipelineMode(conn)
                // A dead socket stops being watched; the pool drops the connection.
                if let pollerID = flight.pollerID {
                    LibPQPoller.shared.watch(socket: PQsocket(conn), id: pollerID, input: false, output: false)
                }
            }
            if flight.queue.isEmpty {
                // Input with no pipeline in flight (a notification, a notice, or the server closing): let libpq
                // buffer it so the level-triggered registration settles, and hand notifications to their waiter.
                if PQconsumeInput(conn) == 0 { return failAll(connectionError()) }
                if let waiter = flight.notificationWaiter {
                    let notifications = takeNotifications(conn)
                    if !notifications.isEmpty {
                        flight.notificationWaiter = nil
                        notified = { waiter(.success(notifications)) }
                    }
                }
                return
            }
            if flight.sendBlocked {
                let flushed = PQflush(conn)
                if flushed < 0 { return failAll(connectionError()) }
                if flushed == 0 {
                    flight.sendBlocked = false
                    watch(&flight, output: false)
                }
            }
            guard PQconsumeInput(conn) == 1 else { return failAll(connectionError()) }
            while !flight.queue.isEmpty, PQisBusy(conn) == 0 {
                guard let result = PQgetResult(conn) else {
                    // NULL ends one command's results.
                    if flight.queue[0].index < flight.queue[0].commands.count {
                        flight.queue[0].index += 1
                        flight.queue[0].sawResult = false
                        continue
                    }
                    break
                }
                var kept = false
                defer { if !kept { PQclear(result) } }
                let status = PQresultStatus(result)
                if status == PGRES_PIPELINE_SYNC {
                    let p = flight.queue.removeFirst()
                    completed.append((p, p.firstError))
                    continue
                }
                guard flight.queue[0].index < flight.queue[0].commands.count, !flight.queue[0].sawResult else { continue }
                flight.queue[0].sawResult = true
                if status == PGRES_PIPELINE_ABORTED { continue }
                do {
                    try check(result)
                    switch flight.queue[0].commands[flight.queue[0].index] {
                    case .prepare(let sql, let name): statementNames[sql] = name
                    case .query:
                        flight.queue[0].results.append(KeptResult(pointer: result))
                        kept = true
                    }
                } catch {
                    flight.queue[0].firstError = flight.queue[0].firstError ?? error
                }
            }
            if flight.queue.isEmpty, !flight.sendBlocked { _ = PQexitPipelineMode(conn) }
        }
        notified?()
        for (p, error) in completed {
            guard let completion = p.completion, error == nil else {
                p.results.forEach { PQclear($0.pointer) }
                if let error { p.completion?(.failure(error)) }
                continue
            }
            // Every result is read (and cleared) even when one fails to decode.
            var decoded: [RawResult] = []
            var failure: (any Error)?
            for kept in p.results {
                defer { PQclear(kept.pointer) }
                do {
                    if failure == nil { decoded.append(try read(kept.pointer)) }
                } catch {
                    failure = error
                }
            }
            completion(failure.map { .failure($0) } ?? .success(decoded))
        }
    }

    /// Runs a blocking libpq call (on the connection's queue) with the poller kept away from the connection.
    private func blocking<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        guard let conn else { throw PostgresError(kind: .connection, message: "the connection is closed") }
        state.withLock { flight in
            precondition(flight.queue.isEmpty, "a blocking call while pipelines are in flight")
            flight.inBlockingCall = true
            if let pollerID = flight.pollerID { LibPQPoller.shared.watch(socket: PQsocket(conn), id: pollerID, input: false, output: false) }
        }
        defer {
            state.withLock { flight in
                flight.inBlockingCall = false
                if let pollerID = flight.pollerID { LibPQPoller.shared.watch(socket: PQsocket(conn), id: pollerID, input: true, output: false) }
            }
        }
        PQsetnonblocking(conn, 0)
        return try body(conn)
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

    /// Runs a statement without parameters (may hold several statements, e.g. a migration file). Blocks.
    func executeScript(_ sql: String) throws {
        try blocking { conn in
            let result = PQexec(conn, sql)
            defer { PQclear(result) }
            try check(result)
        }
    }

    /// Bulk-loads rows with `COPY ... FROM STDIN` (text format).
    /// - Parameters:
    ///   - sql: the COPY statement.
    ///   - data: the rows, already in COPY text format.
    /// - Returns: the number of rows copied.
    func copyIn(_ sql: String, data: [UInt8]) throws -> Int {
        try blocking { conn in
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
    }

    /// Waits, without a thread, for notifications on a LISTEN connection: `completion` gets the ones already
    /// buffered at once, otherwise the next ones the poller reads, or the connection's failure.
    func waitForNotifications(_ completion: @escaping @Sendable (Result<[RawNotification], any Error>) -> Void) {
        guard let conn else {
            completion(.failure(PostgresError(kind: .connection, message: "the connection is closed")))
            return
        }
        let immediate: Result<[RawNotification], any Error>? = state.withLock { flight in
            precondition(flight.queue.isEmpty && flight.notificationWaiter == nil, "one wait at a time, on an idle connection")
            if flight.pollerID == nil {
                guard let id = LibPQPoller.shared.register(self, socket: PQsocket(conn)) else {
                    return .failure(PostgresError(kind: .connection, message: "cannot watch the connection's socket (errno \(errno))"))
                }
                flight.pollerID = id
            }
            guard PQconsumeInput(conn) == 1 else { return .failure(connectionError()) }
            let buffered = takeNotifications(conn)
            if !buffered.isEmpty { return .success(buffered) }
            flight.notificationWaiter = completion
            return nil
        }
        if let immediate { completion(immediate) }
    }

    /// Ends a wait for notifications (its task was cancelled).
    func cancelNotificationWait() {
        let waiter = state.withLock { flight in
            defer { flight.notificationWaiter = nil }
            return flight.notificationWaiter
        }
        waiter?(.failure(CancellationError()))
    }

    /// The notifications libpq has buffered. Called under `state`'s lock.
    private func takeNotifications(_ conn: OpaquePointer) -> [RawNotification] {
        var out: [RawNotification] = []
        while let notify = PQnotifies(conn) {
            out.append(
                RawNotification(
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
        return PostgresError(kind: .connection, message: message.trimmedWhitespace)
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
            if sqlState == nil || !statusOK {
                throw PostgresError(kind: .connection, sqlState: sqlState, message: field("M") ?? connectionError().message)
            }
            throw PostgresError(
                kind: .server, sqlState: sqlState, message: field("M") ?? "unknown error", detail: field("D"),
                constraint: field("n"), table: field("t"))
        }
    }

    private func read(_ result: OpaquePointer) throws -> RawResult {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [String] = []
        var types: [UInt32] = []
        for c in 0..<columnCount {
            columns.append(String(cString: PQfname(result, Int32(c))))
            types.append(UInt32(PQftype(result, Int32(c))))
        }
        var rows: [[PostgresValue]] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<rowCount {
            var row: [PostgresValue] = []
            row.reserveCapacity(columnCount)
            for c in 0..<columnCount {
                if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
                    row.append(.null)
                } else {
                    let length = Int(PQgetlength(result, Int32(r), Int32(c)))
                    let value = PQgetvalue(result, Int32(r), Int32(c))!
                    row.append(
                        try value.withMemoryRebound(to: UInt8.self, capacity: length) {
                            try PostgresValue.decode(utf8: UnsafeBufferPointer(start: $0, count: length), oid: types[c])
                        })
                }
            }
            rows.append(row)
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return RawResult(columns: columns, types: types, rows: rows, affectedRows: affected)
    }
}

/// Pipelines (round trips) sent by a pool's connections, for its statistics.
final class RoundTripCounter: Sendable {
    /// Pipelines sent so far.
    let count = Atomic<UInt64>(0)
}
