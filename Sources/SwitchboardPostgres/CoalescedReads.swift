import Synchronization

/// Concurrent point reads of the same statement, coalesced into one `= ANY($n)` statement.
///
/// Under load most calls of a read RPC run the same statement for one tenant with one key each. Sent one by one, each
/// costs PostgreSQL a statement, a transaction and a wake-up, and costs this process a send, a poller wake-up and a
/// hand-off back to the caller's event loop. Coalesced, the first caller (the leader) yields once, so that calls
/// already queued behind it on the same executor can join, then sends one statement for every key that joined and
/// hands each caller its rows. A lone call pays one yield; nothing waits on a timer.
final class ReadCoalescer: Sendable {
    /// What calls must share to be coalesced: everything but the key. Hashing it costs no pass over the SQL text:
    /// the read is compared by identity.
    struct Statement: Hashable, Sendable {
        var read: CoalescedRead
        /// The settings as sorted name, value pairs, flattened.
        var settings: [String]
        var binds: [PostgresValue]

        static func == (a: Statement, b: Statement) -> Bool {
            a.read === b.read && a.settings == b.settings && a.binds == b.binds
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(ObjectIdentifier(read))
            hasher.combine(settings)
            hasher.combine(binds)
        }

        var settingPairs: [(key: String, value: String)] {
            stride(from: 0, to: settings.count, by: 2).map { (settings[$0], settings[$0 + 1]) }
        }
    }

    /// A batch being gathered: the leader's key first, then each follower's with its waiter.
    private struct Batch {
        var statement: Statement
        var keys: [PostgresValue]
        var followers: [(key: PostgresValue, waiter: CallWaiter<[PostgresRow]>)]
    }

    private struct State {
        var nextID: UInt64 = 1
        /// The batch each statement's new calls join, while it has room and its leader has not sent it.
        var open: [Statement: UInt64] = [:]
        var batches: [UInt64: Batch] = [:]
    }

    private let state = Mutex(State())
    /// Most keys in one statement.
    let maxKeys: Int

    init(maxKeys: Int) {
        self.maxKeys = maxKeys
    }

    /// The leader of a batch gave up (its task was cancelled) before sending it: its followers try again.
    private struct LeaderCancelled: Error {}

    private enum Role {
        case leader(UInt64)
        case follower(CallWaiter<[PostgresRow]>)
    }

    func read(
        _ statement: Statement, key: PostgresValue, run: (Statement, [PostgresValue]) async throws -> [PostgresRow]
    ) async throws
        -> [PostgresRow]
    {
        if maxKeys <= 1 { return try await run(statement, [key]) }
        while true {
            switch join(statement, key: key) {
            case .leader(let id):
                return try await lead(id, key: key, run: run)
            case .follower(let waiter):
                do {
                    return try await withTaskCancellationHandler {
                        try await withCheckedThrowingContinuation { continuation in _ = waiter.wait(continuation) }
                    } onCancel: {
                        waiter.resume(with: .failure(CancellationError()))
                    }
                } catch is LeaderCancelled {
                    try Task.checkCancellation()
                }
            }
        }
    }

    private func join(_ statement: Statement, key: PostgresValue) -> Role {
        state.withLock { state in
            if let id = state.open[statement] {
                let waiter = CallWaiter<[PostgresRow]>()
                state.batches[id]!.keys.append(key)
                state.batches[id]!.followers.append((key, waiter))
                if state.batches[id]!.keys.count >= maxKeys { state.open[statement] = nil }
                return .follower(waiter)
            }
            let id = state.nextID
            state.nextID += 1
            state.batches[id] = Batch(statement: statement, keys: [key], followers: [])
            state.open[statement] = id
            return .leader(id)
        }
    }

    private func lead(
        _ id: UInt64, key: PostgresValue, run: (Statement, [PostgresValue]) async throws -> [PostgresRow]
    ) async throws
        -> [PostgresRow]
    {
        // Calls already queued on this executor (on an event loop: the other requests read in the same pass) run
        // before the leader resumes, and join.
        await Task.yield()
        let batch = state.withLock { state -> Batch in
            let batch = state.batches.removeValue(forKey: id)!
            if state.open[batch.statement] == id { state.open[batch.statement] = nil }
            return batch
        }
        // A hot key read by many calls at once is asked for once.
        var keys: [PostgresValue] = []
        var seen = Set<PostgresValue>()
        for key in batch.keys where seen.insert(key).inserted { keys.append(key) }
        let rows: [PostgresRow]
        do {
            rows = try await run(batch.statement, keys)
        } catch {
            let shared: any Error = error is CancellationError && Task.isCancelled ? LeaderCancelled() : error
            for follower in batch.followers { follower.waiter.resume(with: .failure(shared)) }
            throw error
        }
        if batch.followers.isEmpty { return rows }
        var byKey: [PostgresValue: [PostgresRow]] = [:]
        for row in rows { byKey[row[batch.statement.read.keyColumn], default: []].append(row) }
        for follower in batch.followers { follower.waiter.resume(with: .success(byKey[follower.key] ?? [])) }
        return byKey[key] ?? []
    }
}

/// A point read concurrent calls may share (see ``PostgresPool/query(_:settings:_:key:)``): made once, e.g. as a
/// `static let`, since calls are matched by the read's identity. It has two forms of the same statement: one key
/// (`id = $2`) for a call alone, and an array of keys (`id = ANY($2)`) for several. A one-element array is no
/// substitute: PostgreSQL served `= ANY($2)` with one key at less than half the rate of `= $2` (BENCHMARKS.md).
public final class CoalescedRead: Sendable {
    /// The statement for one key, its last parameter: `... WHERE tenant_id = $1 AND id = $2`.
    public let one: String
    /// The same statement for an array of keys, its last parameter: `... WHERE tenant_id = $1 AND id = ANY($2)`.
    public let many: String
    /// The result column holding each row's key; a row goes to the calls whose key equals it.
    public let keyColumn: String
    /// The type of the keys' array.
    public let elementType: PostgresValue.ElementType

    /// Declares a read.
    /// - Parameters:
    ///   - one: the statement for one key, the key as its last parameter.
    ///   - many: the same statement for an array of keys, the array as its last parameter.
    ///   - keyColumn: the result column holding each row's key.
    ///   - elementType: the keys' type.
    public init(one: String, many: String, keyColumn: String, elementType: PostgresValue.ElementType) {
        self.one = one
        self.many = many
        self.keyColumn = keyColumn
        self.elementType = elementType
    }
}

extension PostgresPool {
    /// Reads the rows for one key, sharing one statement with concurrent calls of the same read (same
    /// ``CoalescedRead``, settings and other parameters) for other keys: one round trip and one statement for all of
    /// them, where one each would cost PostgreSQL (and this process) a statement, a transaction and a wake-up per
    /// call. A call with no company costs one `Task.yield()` more than ``query(settings:_:_:)``. At most
    /// ``PostgresPoolConfiguration/maxCoalescedKeys`` keys go in one statement; a key asked for by several calls at
    /// once is sent once.
    /// - Parameters:
    ///   - read: the statement and where its rows' keys are.
    ///   - settings: transaction-local settings, as for ``query(settings:_:_:)`` (e.g. the tenant for row-level
    ///     security); only calls with equal settings share a statement.
    ///   - binds: the statement's parameters before the keys.
    ///   - key: the key this call reads.
    /// - Returns: the rows whose key column equals `key`.
    /// - Throws: ``PostgresError``; every call of a failed statement gets its error.
    public func query(
        _ read: CoalescedRead, settings: [String: String], _ binds: [PostgresValue], key: PostgresValue
    ) async throws
        -> [PostgresRow]
    {
        let sorted = settings.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] }
        let statement = ReadCoalescer.Statement(read: read, settings: sorted, binds: binds)
        return try await coalescer.read(statement, key: key) { statement, keys in
            let read = statement.read
            let sql =
                keys.count == 1
                ? (sql: read.one, binds: statement.binds + keys)
                : (sql: read.many, binds: statement.binds + [.array(keys, elementType: read.elementType)])
            return try await pipeline(sortedSettings: statement.settingPairs, [sql]).last!.rows
        }
    }
}
