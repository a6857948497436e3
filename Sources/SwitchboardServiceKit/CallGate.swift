import Metrics
import Synchronization

/// At most ``limit`` calls inside at once; the others wait in arrival order. While calls of other keys (tenants) wait, a
/// key holds at most ``share`` places: a waiter whose key holds that many is passed over for one of another key. A key
/// alone may take every place.
///
/// For work that costs the database CPU rather than waiting (counting a search's facets): more of it at once than the
/// database has cores only shares them thinner, and each statement of a call waits behind every other's. On the contacts
/// search benchmark (2 cores, 8 clients, facet searches), 4 at once against 8: p99 63 against 74 ms, 4 % fewer calls. A
/// waiter leaves when its task is cancelled (its call ended or passed its deadline), or with ``Timeout`` after
/// ``timeout``.
///
/// Metrics, by `gate` (its name): `call_gate_waiting` (calls waiting now), `call_gate_waits_total` (calls that had to
/// wait) and `call_gate_timeouts_total` (calls that waited past the timeout).
public final class CallGate: Sendable {
    /// A call waited ``CallGate/timeout`` for its turn.
    public struct Timeout: Error, Sendable {
        /// How long it waited.
        public let waited: Duration
        /// The gate's limit.
        public let limit: Int
    }

    private struct Waiter {
        var id: Int
        var key: String
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var inside = 0
        var byKey: [String: Int] = [:]
        var waiters: [Waiter] = []
        /// Waiters per key.
        var waitingByKey: [String: Int] = [:]
        var nextID = 0
    }

    /// The most calls inside at once.
    public let limit: Int
    /// The most calls of one key inside at once while another key's call waits: half the limit, rounded up.
    public let share: Int
    /// The longest a call waits for its turn.
    public let timeout: Duration
    private let state = Mutex(State())
    private let waitingGauge: Gauge
    private let waits: Counter
    private let timeouts: Counter

    /// Creates a gate.
    /// - Parameters:
    ///   - name: its metrics' `gate` dimension.
    ///   - limit: the most calls inside at once (at least 1).
    ///   - timeout: the longest a call waits for its turn.
    public init(name: String, limit: Int, timeout: Duration) {
        self.limit = max(1, limit)
        self.share = (self.limit + 1) / 2
        self.timeout = timeout
        waitingGauge = Gauge(label: "call_gate_waiting", dimensions: [("gate", name)])
        waits = Counter(label: "call_gate_waits_total", dimensions: [("gate", name)])
        timeouts = Counter(label: "call_gate_timeouts_total", dimensions: [("gate", name)])
    }

    /// Calls inside now, and calls waiting.
    public var load: (inside: Int, waiting: Int) { state.withLock { ($0.inside, $0.waiters.count) } }

    /// Runs `body` once the gate lets the call in.
    /// - Parameters:
    ///   - key: whose call it is (a tenant).
    ///   - body: the work.
    /// - Throws: ``Timeout``, `CancellationError` while waiting, or what `body` threw.
    public func run<T: Sendable>(key: String, _ body: () async throws -> T) async throws -> T {
        try await enter(key)
        defer { leave(key) }
        return try await body()
    }

    private func enter(_ key: String) async throws {
        let admitted = state.withLock { state in
            // Waiters that could go in already have (see `admit`), so a newcomer that may go in jumps no one.
            guard Self.mayEnter(key, state, share: share, limit: limit) else { return false }
            state.inside += 1
            state.byKey[key, default: 0] += 1
            return true
        }
        if admitted { return }
        let started = ContinuousClock.now
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        let timer = Mutex<Task<Void, Never>?>(nil)
        defer { timer.withLock { $0?.cancel() } }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Bool? = state.withLock { state in
                    // Checked under the lock the cancellation handler takes: a cancel either finds the waiter queued or
                    // is seen here. Between the first look and now a place may have freed.
                    if Task.isCancelled { return false }
                    if Self.mayEnter(key, state, share: share, limit: limit) {
                        state.inside += 1
                        state.byKey[key, default: 0] += 1
                        return true
                    }
                    state.waiters.append(Waiter(id: id, key: key, continuation: continuation))
                    state.waitingByKey[key, default: 0] += 1
                    // Recorded under the lock, so the gauge's last value is the queue's.
                    waitingGauge.record(state.waiters.count)
                    return nil
                }
                switch outcome {
                case true?: return continuation.resume()
                case false?: return continuation.resume(throwing: CancellationError())
                case nil: waits.increment()
                }
                timer.withLock { timer in
                    timer = Task {
                        try? await Task.sleep(until: started + self.timeout)
                        guard !Task.isCancelled, let waiter = self.remove(id) else { return }
                        self.timeouts.increment()
                        waiter.resume(throwing: Timeout(waited: ContinuousClock.now - started, limit: self.limit))
                    }
                }
            }
        } onCancel: {
            remove(id)?.resume(throwing: CancellationError())
        }
    }

    private func remove(_ id: Int) -> CheckedContinuation<Void, any Error>? {
        let (removed, admitted) = state.withLock { state -> (CheckedContinuation<Void, any Error>?, [CheckedContinuation<Void, any Error>]) in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return (nil, []) }
            let waiter = state.waiters.remove(at: index)
            Self.stopsWaiting(waiter.key, &state)
            // A waiter of another key may have been held back while this one waited (the share counts only then).
            let admitted = Self.admit(&state, limit: limit, share: share)
            waitingGauge.record(state.waiters.count)
            return (waiter.continuation, admitted)
        }
        admitted.forEach { $0.resume() }
        return removed
    }

    private func leave(_ key: String) {
        let admitted = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.inside -= 1
            let held = state.byKey[key, default: 1] - 1
            state.byKey[key] = held == 0 ? nil : held
            guard !state.waiters.isEmpty else { return [] }
            let admitted = Self.admit(&state, limit: limit, share: share)
            waitingGauge.record(state.waiters.count)
            return admitted
        }
        admitted.forEach { $0.resume() }
    }

    /// Whether a call of `key` may go in now: there is room, and its key holds less than its share or no other key's
    /// call waits. (A newcomer that may go in jumps no one: `admit` lets in every waiter that may, whenever that changes.)
    private static func mayEnter(_ key: String, _ state: State, share: Int, limit: Int) -> Bool {
        guard state.inside < limit else { return false }
        return state.byKey[key, default: 0] < share || state.waiters.count == state.waitingByKey[key, default: 0]
    }

    private static func stopsWaiting(_ key: String, _ state: inout State) {
        let waiting = state.waitingByKey[key, default: 1] - 1
        state.waitingByKey[key] = waiting == 0 ? nil : waiting
    }

    /// Lets in the first waiters, in order, that may go in (``mayEnter``), while there is room.
    private static func admit(_ state: inout State, limit: Int, share: Int) -> [CheckedContinuation<Void, any Error>] {
        var admitted: [CheckedContinuation<Void, any Error>] = []
        var index = 0
        while state.inside < limit, index < state.waiters.count {
            let key = state.waiters[index].key
            guard mayEnter(key, state, share: share, limit: limit) else {
                index += 1
                continue
            }
            state.inside += 1
            state.byKey[key, default: 0] += 1
            stopsWaiting(key, &state)
            admitted.append(state.waiters.remove(at: index).continuation)
            // One key's waiter fewer may leave another's alone in the queue, free of its share: look again from the start.
            index = 0
        }
        return admitted
    }
}
