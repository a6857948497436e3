import Synchronization

/// Concurrent write pipelines with the same settings (the same tenant), run as one pipeline in one transaction.
///
/// A small write (a contact created: a row, its addresses, its terms, its change) costs PostgreSQL more for its
/// transaction than for its rows: the commit's WAL flush, the tenant's change-sequence row lock held until it, a
/// snapshot, a round trip. Measured with pgbench on the contacts schema (8 clients, two cores), four creates per
/// transaction stored 3.3 times as many contacts per second as one each. Coalesced, the first caller (the leader)
/// yields once, so that the calls already queued behind it on the same executor can join, then sends every member's
/// statements, in order, as one pipeline; each member gets its own statements' results.
///
/// One transaction means one outcome: if any statement fails (an address another contact holds, a replayed request
/// id, a serialization failure), every member runs its statements again alone and so learns its own outcome, exactly
/// as without coalescing. Nothing is committed twice: the failed transaction committed nothing. A failure that leaves
/// the outcome unknown (the connection lost) reaches every member as it is, as it would reach a call alone; the
/// shared pipeline is not cancelled with its leader's task.
///
/// Reads gathered by ``PostgresPool/gatheringCalls(_:)`` use the same batches, kept apart from writes: there a cancelled
/// call returns at once, as a call alone does, and the batch is cancelled once every call of it was.
final class PipelineCoalescer: Sendable {
    typealias Statements = [(sql: String, binds: [PostgresValue])]

    /// A batch being gathered: the leader's statements first, then each follower's with its waiter.
    private struct Batch {
        var key: Key
        var members: [(statements: Statements, waiter: CallWaiter<[PostgresResult]>?)]
        /// Read batches only: what cancels the batch once none of its calls waits for it.
        var flight: ReadFlight?
    }

    /// What calls must share to share a batch: the settings, and whether they are reads (``run(settings:_:reads:execute:)``).
    private struct Key: Hashable {
        var settings: [String]
        var reads: Bool
    }

    private struct State {
        var nextID: UInt64 = 1
        /// The batch each key's new calls join, while it has room and its leader has not sent it.
        var open: [Key: UInt64] = [:]
        var batches: [UInt64: Batch] = [:]
    }

    /// A read batch's calls and its task: cancelled once every call of the batch was cancelled (so a database that
    /// stopped answering does not keep the batch's connection, as it would not keep a call's own).
    private final class ReadFlight: Sendable {
        private let state = Mutex<(members: Int, gone: Int, task: Task<Void, Never>?)>((0, 0, nil))

        func joined() { state.withLock { $0.members += 1 } }

        func started(_ task: Task<Void, Never>) {
            let cancel = state.withLock { state in
                state.task = task
                return state.gone >= state.members
            }
            if cancel { task.cancel() }
        }

        func cancelled() {
            let task = state.withLock { state -> Task<Void, Never>? in
                state.gone += 1
                return state.gone >= state.members ? state.task : nil
            }
            task?.cancel()
        }
    }

    private let state = Mutex(State())
    /// Most calls in one transaction.
    let maxMembers: Int

    init(maxMembers: Int) {
        self.maxMembers = maxMembers
    }

    /// The batch failed as a whole (or its leader was cancelled before sending it): the member runs alone.
    private struct RunAlone: Error {}

    private enum Role {
        case leader(UInt64)
        case follower(CallWaiter<[PostgresResult]>, ReadFlight?)
    }

    /// Runs `statements` with `settings` (flattened name, value pairs), in one transaction with concurrent calls.
    /// - Parameter reads: the calls are reads (``PostgresPool/gatheringCalls(_:)``): a cancelled call returns at once,
    ///   as a call alone does, and the batch is cancelled when all of its calls were; reads and writes never share a
    ///   batch. Writes wait for their batch's outcome even when cancelled, since it may have committed.
    func run(
        settings: [String], _ statements: Statements, reads: Bool = false,
        execute: @escaping @Sendable ([String], Statements) async throws -> [PostgresResult]
    ) async throws -> [PostgresResult] {
        if maxMembers <= 1 { return try await execute(settings, statements) }
        switch join(Key(settings: settings, reads: reads), statements) {
        case .leader(let id):
            return try await lead(id, execute: execute)
        case .follower(let waiter, let flight):
            do {
                guard let flight else {
                    // No cancellation handler: once joined, the statements may be on their way to the database, so the
                    // call waits for the outcome rather than report a cancellation for a write that committed.
                    return try await withCheckedThrowingContinuation { continuation in _ = waiter.wait(continuation) }
                }
                return try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { continuation in _ = waiter.wait(continuation) }
                } onCancel: {
                    if waiter.resume(with: .failure(CancellationError())) { flight.cancelled() }
                }
            } catch is RunAlone {
                return try await execute(settings, statements)
            }
        }
    }

    private func join(_ key: Key, _ statements: Statements) -> Role {
        state.withLock { state in
            if let id = state.open[key] {
                let waiter = CallWaiter<[PostgresResult]>()
                state.batches[id]!.members.append((statements, waiter))
                state.batches[id]!.flight?.joined()
                if state.batches[id]!.members.count >= maxMembers { state.open[key] = nil }
                return .follower(waiter, state.batches[id]!.flight)
            }
            let id = state.nextID
            state.nextID += 1
            let flight = key.reads ? ReadFlight() : nil
            flight?.joined()
            state.batches[id] = Batch(key: key, members: [(statements, nil)], flight: flight)
            state.open[key] = id
            return .leader(id)
        }
    }

    private func lead(
        _ id: UInt64, execute: @escaping @Sendable ([String], Statements) async throws -> [PostgresResult]
    ) async throws -> [PostgresResult] {
        // Calls already queued on this executor (on an event loop: the other requests of the same pass) run before the
        // leader resumes, and join.
        await Task.yield()
        let batch = state.withLock { state -> Batch in
            let batch = state.batches.removeValue(forKey: id)!
            if state.open[batch.key] == id { state.open[batch.key] = nil }
            return batch
        }
        let own = batch.members[0].statements
        if batch.members.count == 1 { return try await execute(batch.key.settings, own) }
        let followers = batch.members.dropFirst()
        if Task.isCancelled {
            // Nothing was sent: the others run alone, this call ends.
            for member in followers { member.waiter?.resume(with: .failure(RunAlone())) }
            throw CancellationError()
        }
        if let flight = batch.flight { return try await leadReads(batch, flight: flight, execute: execute) }
        let settings = batch.key.settings
        let results: [PostgresResult]
        do {
            // Not cancelled with this call: the others' writes ride on it, and a cancelled call is resumed before its
            // transaction's outcome is known (PostgresConnection), which would leave theirs unknown too.
            let all = batch.members.flatMap(\.statements)
            results = try await Task { try await execute(settings, all) }.value
        } catch {
            // A statement that failed rolled the transaction back: each call runs alone to learn its own outcome. Any
            // other failure (the connection lost while the commit was under way) leaves the outcome unknown, as it
            // would for a call alone: every call gets it, and none is sent again.
            let rolledBack = (error as? PostgresError)?.kind == .server
            for member in followers { member.waiter?.resume(with: .failure(rolledBack ? RunAlone() : error)) }
            if !rolledBack { throw error }
            return try await execute(settings, own)
        }
        var offset = own.count
        for member in batch.members.dropFirst() {
            member.waiter?.resume(with: .success(Array(results[offset..<offset + member.statements.count])))
            offset += member.statements.count
        }
        return Array(results[0..<own.count])
    }

    /// ``lead(_:execute:)`` for a batch of reads: the batch runs in a task of its own, so that the leader too can return
    /// at once when cancelled. The task hands the answer to the leader, which passes each follower its part from its own
    /// executor (an event loop: no thread woken per follower); once the leader is gone, the task does. The task is
    /// cancelled once every call of the batch was.
    private func leadReads(
        _ batch: Batch, flight: ReadFlight, execute: @escaping @Sendable ([String], Statements) async throws -> [PostgresResult]
    ) async throws -> [PostgresResult] {
        let settings = batch.key.settings, own = batch.members[0].statements
        let followers = batch.members.dropFirst().map { (waiter: $0.waiter!, count: $0.statements.count) }
        let all = batch.members.flatMap(\.statements)
        /// Each follower's part of the answer, or what it gets when the batch failed.
        @Sendable func answer(_ outcome: Result<[PostgresResult], any Error>) {
            switch outcome {
            case .success(let results):
                var offset = own.count
                for follower in followers {
                    follower.waiter.resume(with: .success(Array(results[offset..<offset + follower.count])))
                    offset += follower.count
                }
            case .failure(let error):
                // As for writes: a statement that failed rolled the transaction back, and each call runs alone.
                let rolledBack = (error as? PostgresError)?.kind == .server
                for follower in followers { follower.waiter.resume(with: .failure(rolledBack ? RunAlone() : error)) }
            }
        }
        let leader = CallWaiter<[PostgresResult]>()
        flight.started(
            Task {
                let outcome = await Result(catchingAsync: { try await execute(settings, all) })
                if !leader.resume(with: outcome) { answer(outcome) }
            })
        let outcome = await Result(catchingAsync: {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in _ = leader.wait(continuation) }
            } onCancel: {
                if leader.resume(with: .failure(CancellationError())) { flight.cancelled() }
            }
        })
        // The leader was cancelled before the answer came: the batch's task answers the followers.
        if case .failure(let error) = outcome, error is CancellationError, Task.isCancelled { throw error }
        answer(outcome)
        switch outcome {
        case .success(let results): return Array(results[0..<own.count])
        case .failure(let error) where (error as? PostgresError)?.kind == .server: return try await execute(settings, own)
        case .failure(let error): throw error
        }
    }
}

extension Result where Failure == any Error {
    /// The outcome of an async throwing body.
    fileprivate init(catchingAsync body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

extension PostgresPool {
    /// ``pipeline(settings:_:)`` for a write, in one transaction with the concurrent calls of the same settings (e.g.
    /// the same tenant): their statements run in order as one pipeline, which costs PostgreSQL one commit instead of
    /// one each. If any statement of the batch fails, each call runs its statements again alone, so every call gets
    /// exactly the outcome it would have had without the others. A call with no company costs one `Task.yield()` more
    /// than ``pipeline(settings:_:)``. At most ``PostgresPoolConfiguration/maxCoalescedWrites`` calls share one.
    ///
    /// Only for statements that do not depend on anything another call of the batch may have written before them
    /// in the same transaction beyond what concurrent transactions would see anyway (independent writes, such as
    /// creates); a statement of one call sees the writes of the calls before it in the batch.
    /// - Parameters:
    ///   - settings: transaction-local settings; only calls with equal settings share a transaction.
    ///   - statements: this call's statements, in order.
    /// - Returns: this call's statements' results.
    /// - Throws: ``PostgresError`` from this call's own statements (run alone after a batch failed).
    @discardableResult
    public func coalescedPipeline(
        settings: [String: String], _ statements: [(sql: String, binds: [PostgresValue])]
    ) async throws -> [PostgresResult] {
        try await coalescedPipeline(settings: settings, statements, reads: false)
    }

    /// ``coalescedPipeline(settings:_:)`` for reads or writes (see ``PipelineCoalescer/run(settings:_:reads:execute:)``).
    func coalescedPipeline(
        settings: [String: String], _ statements: [(sql: String, binds: [PostgresValue])], reads: Bool
    ) async throws -> [PostgresResult] {
        let sorted = settings.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] }
        return try await pipelineCoalescer.run(settings: sorted, statements, reads: reads) { [self] settings, statements in
            let pairs = stride(from: 0, to: settings.count, by: 2).map { (key: settings[$0], value: settings[$0 + 1]) }
            // The batch's leader has yielded once already to gather its company.
            return try await pipeline(sortedSettings: pairs, statements)
        }
    }
}
