import Dispatch
import FoundationEssentials
import Synchronization

/// One PostgreSQL connection with an async API.
///
/// Queries use libpq's non-blocking API: the calling thread sends without waiting and a poller thread (epoll) reads
/// the answer and resumes the caller. Several single-statement calls may have pipelines in flight on one connection at
/// once (the pool's shared connections); each is its own implicit transaction. The calls libpq only offers blocking
/// (connect, scripts, COPY, LISTEN) run on this connection's own serial dispatch queue, and only while nothing else
/// uses it. Either way no NIO event loop and no thread of the Swift cooperative pool ever waits on the database.
/// Measured against a dispatch thread per query (BENCHMARKS.md): one wake-up less per query, and sharing a connection
/// halved PostgreSQL's CPU per call. Cancelling the calling task resumes it at once with `CancellationError` and
/// retires the connection (``isHealthy`` turns false, so the pool replaces it); the server is sent a cancel request
/// for the running statement when no other caller's pipeline shares the connection.
public final class PostgresConnection: @unchecked Sendable {
    // @unchecked: `raw` guards itself (see `LibPQConnection`); `queue` is only used for its blocking calls.
    private let raw: LibPQConnection
    private let queue: DispatchQueue
    /// The transaction this connection runs, if any (``PostgresPool/transaction``).
    private let transaction = Mutex(TransactionState())

    private struct TransactionState {
        /// BEGIN and the settings, not sent yet: they go out in front of the transaction's first statement, in the same
        /// round trip (a transaction's first statement used to wait for a round trip of its own that only opened it).
        var pending: [RawStatement] = []
        var phase = Phase.none

        enum Phase {
            /// No transaction.
            case none
            /// Between BEGIN and the transaction's end.
            case open
            /// Its last statements and COMMIT are on their way (``pipelineCommitting(_:prepared:)``).
            case commitSent
            /// They committed.
            case committed
            /// They failed: a statement (the transaction is then aborted) or the COMMIT itself (it then rolled back).
            case commitFailed(any Error)
        }
    }

    /// The server process serving this connection.
    public let backendPID: Int32

    /// How long a connection attempt waits for each host when the connection string sets no `connect_timeout`.
    public static let defaultConnectTimeoutSeconds = 10

    private init(raw: LibPQConnection, queue: DispatchQueue) {
        self.raw = raw
        self.queue = queue
        self.backendPID = raw.backendPID
    }

    /// Connects.
    /// - Parameter conninfo: a libpq connection string, e.g. `host=db1,db2 port=5432 dbname=crm
    ///   target_session_attrs=read-write`. Sessions use UTC and ISO dates whatever the server's defaults. Without a
    ///   `connect_timeout`, each host gets ``defaultConnectTimeoutSeconds``.
    /// - Returns: the connection.
    /// - Throws: ``PostgresError`` of kind `.connection`.
    public static func connect(_ conninfo: String) async throws -> PostgresConnection {
        try await connect(conninfo, roundTrips: nil)
    }

    /// ``connect(_:)`` for a pool, whose connections count their round trips together.
    static func connect(_ conninfo: String, roundTrips: RoundTripCounter?) async throws -> PostgresConnection {
        let queue = DispatchQueue(label: "switchboard.postgres.connection")
        // libpq waits forever by default for a server that accepts the connection and then never answers; a
        // `connect_timeout` in `conninfo` comes later in the string and so overrides this one.
        let conninfo =
            "connect_timeout=\(defaultConnectTimeoutSeconds) " + conninfo
            + " options='-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=iso_8601'"
        let raw: LibPQConnection = try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try LibPQConnection(conninfo: conninfo, roundTrips: roundTrips) })
            }
        }
        return PostgresConnection(raw: raw, queue: queue)
    }

    /// Runs blocking libpq calls on the connection's queue. A cancelled caller resumes at once with
    /// `CancellationError` (the queue's thread may be stuck on a server that stopped answering); the connection is
    /// then retired and the call, if it is talking to the server, cancelled there.
    private func run<T: Sendable>(_ body: @escaping @Sendable (LibPQConnection) throws -> T) async throws -> T {
        // A transaction opened but not sent yet is sent first: what runs here belongs inside it.
        let unsent = try transaction.withLock { try Self.unsent(&$0) }
        if !unsent.isEmpty { _ = try await sendNow(unsent) }
        let raw = self.raw
        let id = raw.numberCall()
        let waiter = CallWaiter<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                guard waiter.wait(continuation) else { return }
                queue.async { waiter.resume(with: Result { try raw.runCall(id) { try body(raw) } }) }
            }
        } onCancel: {
            raw.abandon(call: id)
            waiter.resume(with: .failure(CancellationError()))
        }
    }

    /// Sends statements as one pipeline and waits for its answer on the poller thread. A cancelled caller resumes at
    /// once with `CancellationError`, even from a server that stopped answering; the connection is then retired
    /// (see `LibPQConnection`), so a cancel request can never reach a statement sent after it.
    private func send(_ statements: [RawStatement]) async throws -> [PostgresResult] {
        let prefix = try transaction.withLock { try Self.unsent(&$0) }
        guard !prefix.isEmpty else { return try await sendNow(statements) }
        return Array(try await sendNow(prefix + statements).dropFirst(prefix.count))
    }

    /// Takes the transaction's unsent BEGIN and settings (to send in front of the next statements); throws once the
    /// transaction's last statements went out with its COMMIT, because a statement sent after them would run outside the
    /// transaction, without its settings (the tenant, for row-level security).
    private static func unsent(_ state: inout TransactionState) throws -> [RawStatement] {
        switch state.phase {
        case .none, .open:
            defer { state.pending.removeAll() }
            return state.pending
        case .commitSent, .committed, .commitFailed:
            throw PostgresError(
                kind: .usage, sqlState: "25P01", message: "a statement after the transaction's last statements, which carried its COMMIT")
        }
    }

    /// ``send(_:)`` without a deferred BEGIN.
    private func sendNow(_ statements: [RawStatement]) async throws -> [PostgresResult] {
        let raw = self.raw
        // The pipeline's id once sent, and whether the task was cancelled: either may come first.
        let ticket = Mutex<(id: UInt64, cancelled: Bool)>((0, false))
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // Rows are decoded on the poller thread, before the caller resumes: less work on the caller's
                // thread (often a NIO event loop serving many calls).
                let id = raw.startPipeline(statements) { result in
                    continuation.resume(with: result.map { raws in raws.map(PostgresResult.init(raw:)) })
                }
                // Sent even when the task is already cancelled, then given up on: a transaction's ROLLBACK must not be
                // skipped while the connection would go back to the pool as if it had run.
                if ticket.withLock({ ticket in
                    ticket.id = id
                    return ticket.cancelled
                }) {
                    raw.abandon(pipeline: id)
                }
            }
        } onCancel: {
            let id = ticket.withLock { ticket in
                ticket.cancelled = true
                return ticket.id
            }
            if id != 0 { raw.abandon(pipeline: id) }
        }
    }

    /// Opens a transaction with transaction-local settings: both go out with the transaction's first statement, in its
    /// round trip (PostgreSQL takes a transaction's snapshot at its first statement, not at BEGIN, so nothing the
    /// transaction sees changes).
    func begin(isolation: String, settings: [(key: String, value: String)]) {
        // BEGIN and the transaction's end are prepared once per connection like any statement: parsing them was a
        // few percent of PostgreSQL's time for a short transaction.
        var statements = [RawStatement(sql: "BEGIN ISOLATION LEVEL \(isolation)", params: [], prepared: true)]
        if let apply = Self.settingsStatement(settings) {
            statements.append(RawStatement(sql: apply.sql, params: apply.binds.map(\.parameter), prepared: true))
        }
        transaction.withLock { $0 = TransactionState(pending: statements, phase: .open) }
    }

    /// Ends a transaction: COMMIT or ROLLBACK, or nothing when it never sent a statement (its BEGIN is dropped) or
    /// already committed with its last statements. When those failed, a COMMIT throws their error (nothing committed,
    /// whatever the body made of the error), after a ROLLBACK for a transaction they left aborted.
    func end(_ command: String) async throws {
        let phase = transaction.withLock { state in
            defer { state = TransactionState() }
            return state.pending.isEmpty ? state.phase : .none
        }
        switch phase {
        case .none, .commitSent, .committed:
            return
        case .open:
            try await query(command)
        case .commitFailed(let error):
            // A ROLLBACK after a failed COMMIT, which already ended the transaction, only draws a warning.
            guard command == "COMMIT" else {
                try await query("ROLLBACK")
                return
            }
            _ = try? await query("ROLLBACK")
            throw error
        }
    }

    /// Forgets the transaction (a connection being retired), with its BEGIN if it was never sent.
    func forgetTransaction() {
        transaction.withLock { $0 = TransactionState() }
    }

    /// Runs a transaction's last statements and its COMMIT in one round trip, so that a read transaction's last read
    /// does not leave a round trip of its own for the COMMIT. ``PostgresPool/transaction`` then sends no COMMIT, and a
    /// statement sent on the connection after these, in the same transaction body, throws. When one of the statements
    /// fails, the COMMIT is skipped and the transaction rolls back as after any failure; when the COMMIT itself fails
    /// (a serialization failure), the transaction retries as usual.
    /// - Parameters:
    ///   - statements: SQL with bound parameters.
    ///   - prepared: prepare each statement once per connection (the default); see ``query(_:_:prepared:)``.
    /// - Returns: one result per statement.
    /// - Throws: ``PostgresError``; of kind `usage` outside a transaction's body or after its COMMIT.
    public func pipelineCommitting(
        _ statements: [(sql: String, binds: [PostgresValue])], prepared: Bool = true
    ) async throws -> [PostgresResult] {
        // One lock for the check, the unsent BEGIN and the new phase: a statement another task sends meanwhile on this
        // connection fails instead of following the COMMIT.
        let prefix = try transaction.withLock { state -> [RawStatement] in
            guard case .open = state.phase else {
                throw PostgresError(kind: .usage, sqlState: "25P01", message: "pipelineCommitting outside a transaction's body, or twice")
            }
            defer {
                state.pending.removeAll()
                state.phase = .commitSent
            }
            return state.pending
        }
        let sent = statements.map { RawStatement(sql: $0.sql, params: $0.binds.map(\.parameter), prepared: prepared) }
        do {
            let results = try await sendNow(prefix + sent + [RawStatement(sql: "COMMIT", params: [], prepared: true)])
            transaction.withLock { $0.phase = .committed }
            return Array(results.dropFirst(prefix.count).dropLast())
        } catch {
            transaction.withLock { $0.phase = .commitFailed(error) }
            throw error
        }
    }

    /// Transaction-local settings as one statement, `SELECT set_config($1, $2, true), set_config($3, $4, true), …`:
    /// one execution for all of them (a search's transaction has five, and a statement each cost PostgreSQL a bind
    /// and an execute); nil when there are none. Names and values are bound.
    static func settingsStatement(_ settings: [(key: String, value: String)]) -> (sql: String, binds: [PostgresValue])? {
        guard !settings.isEmpty else { return nil }
        let calls = settings.indices.map { "set_config($\(2 * $0 + 1), $\(2 * $0 + 2), true)" }
        return ("SELECT " + calls.joined(separator: ", "), settings.flatMap { [PostgresValue.text($0.key), .text($0.value)] })
    }

    /// Runs a statement with bound parameters.
    /// - Parameters:
    ///   - sql: the statement with `$1`... placeholders; values are never spliced into it.
    ///   - binds: the parameter values.
    ///   - prepared: prepare once per connection and reuse (the default). Pass false for statements whose plan
    ///     must depend on the values (e.g. `LIKE $1` on a big table, where a generic plan skips the index).
    /// - Returns: the rows and affected-row count.
    /// - Throws: ``PostgresError``.
    @discardableResult
    public func query(_ sql: String, _ binds: [PostgresValue] = [], prepared: Bool = true) async throws -> PostgresResult {
        try await send([RawStatement(sql: sql, params: binds.map(\.parameter), prepared: prepared)])[0]
    }

    /// Runs several statements in one round trip (libpq pipeline mode). Outside a transaction they form one
    /// implicit transaction: if one fails, the earlier ones roll back and the later ones are skipped. Inside one
    /// (after BEGIN), a failure aborts the transaction as usual.
    /// - Parameters:
    ///   - statements: SQL with bound parameters.
    ///   - prepared: prepare each statement once per connection (the default); see ``query(_:_:prepared:)``.
    /// - Returns: one result per statement.
    /// - Throws: ``PostgresError``.
    public func pipeline(_ statements: [(sql: String, binds: [PostgresValue])], prepared: Bool = true) async throws -> [PostgresResult] {
        try await send(statements.map { RawStatement(sql: $0.sql, params: $0.binds.map(\.parameter), prepared: prepared) })
    }

    /// Runs SQL text without parameters, possibly several statements (migrations, DDL).
    /// - Parameter sql: the script.
    /// - Throws: ``PostgresError``.
    public func executeScript(_ sql: String) async throws {
        try await run { try $0.executeScript(sql) }
    }

    /// Bulk-loads rows with `COPY table (columns) FROM STDIN`.
    /// - Parameters:
    ///   - table: the (schema-qualified) table, as an identifier this code controls — not user input.
    ///   - columns: the columns, likewise.
    ///   - rows: the values, one array per row in column order.
    /// - Returns: rows copied.
    /// - Throws: ``PostgresError``.
    @discardableResult
    public func copy(into table: String, columns: [String], rows: [[PostgresValue]]) async throws -> Int {
        let data = PostgresCopy.encode(rows)
        let quotedColumns = try await run { raw in try columns.map { try raw.quoteIdentifier($0) } }
        let quotedTable = try await run { raw in
            try table.split(separator: ".").map { try raw.quoteIdentifier(String($0)) }.joined(separator: ".")
        }
        let sql = "COPY \(quotedTable) (\(quotedColumns.joined(separator: ", "))) FROM STDIN"
        return try await run { try $0.copyIn(sql, data: data) }
    }

    /// Whether the connection is still usable.
    public var isHealthy: Bool { raw.isHealthy }

    /// Pipelines sent so far on this connection (each one round trip), for tests.
    var pipelinesSent: UInt64 { raw.pipelinesSent }

    // LISTEN support, used by `PostgresListener` on a connection it owns.
    func listen(_ channel: String) async throws {
        try await run { raw in try raw.executeScript("LISTEN \(try raw.quoteIdentifier(channel))") }
    }

    /// The next notifications on a LISTEN connection, waited for by the poller thread (no thread blocks).
    func notifications() async throws -> [RawNotification] {
        let raw = self.raw
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                raw.waitForNotifications { continuation.resume(with: $0) }
            }
        } onCancel: {
            raw.cancelNotificationWait()
        }
    }
}

/// COPY's text format: tab-separated, `\N` for NULL, backslash escapes.
enum PostgresCopy {
    static func encode(_ rows: [[PostgresValue]]) -> [UInt8] {
        var out: [UInt8] = []
        for row in rows {
            for (i, value) in row.enumerated() {
                if i > 0 { out.append(0x09) }
                switch value {
                case .null:
                    out.append(contentsOf: Array("\\N".utf8))
                case .bytes(let b):
                    // bytea in COPY text: the hex form, with its backslash escaped.
                    out.append(contentsOf: Array("\\\\x".utf8))
                    let digits = Array("0123456789abcdef".utf8)
                    for byte in b { out.append(contentsOf: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]]) }
                default:
                    for byte in value.textForm ?? [] {
                        switch byte {
                        case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
                        case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
                        case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                        case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                        default: out.append(byte)
                        }
                    }
                }
            }
            out.append(0x0A)
        }
        return out
    }
}

/// The continuation of a call that either its work or its task's cancellation may resume, whichever comes first; the
/// other finds it gone. A cancellation that comes before the caller starts waiting is remembered.
final class CallWaiter<T: Sendable>: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<T, any Error>)
        case finished(Result<T, any Error>?)
    }

    private let state = Mutex(State.idle)

    /// Starts waiting. - Returns: false if the call already ended (it was cancelled), having resumed the continuation.
    func wait(_ continuation: CheckedContinuation<T, any Error>) -> Bool {
        let early: Result<T, any Error>?? = state.withLock { state in
            switch state {
            case .idle:
                state = .waiting(continuation)
                return .none
            case .finished(let result):
                state = .finished(nil)
                return .some(result)
            case .waiting:
                preconditionFailure("waited twice")
            }
        }
        guard let early else { return true }
        continuation.resume(with: early ?? .failure(CancellationError()))
        return false
    }

    /// Ends the call with `result`, unless it already ended.
    /// - Returns: whether this ended the call (false: it had ended already).
    @discardableResult
    func resume(with result: Result<T, any Error>) -> Bool {
        let (ended, continuation): (Bool, CheckedContinuation<T, any Error>?) = state.withLock { state in
            switch state {
            case .idle:
                state = .finished(result)
                return (true, nil)
            case .waiting(let continuation):
                state = .finished(nil)
                return (true, continuation)
            case .finished:
                return (false, nil)
            }
        }
        continuation?.resume(with: result)
        return ended
    }
}
