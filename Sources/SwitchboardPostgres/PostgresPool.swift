import FoundationEssentials
import Synchronization

/// Pool settings.
public struct PostgresPoolConfiguration: Sendable {
    /// libpq connection string (multi-host strings allowed).
    public var conninfo: String
    /// Most connections open at once.
    public var maxConnections: Int
    /// How long `withConnection` waits for a free connection before failing.
    public var acquireTimeout: Duration
    /// An idle connection unused for this long is checked with a round trip before it is handed out.
    public var healthCheckAfter: Duration
    /// First wait after a failed connection attempt; doubles up to `maxReconnectBackoff`.
    public var reconnectBackoff: Duration
    /// Longest wait between connection attempts.
    public var maxReconnectBackoff: Duration
    /// How many single-shot calls (``PostgresPool/query(_:_:prepared:)``, ``PostgresPool/pipeline(settings:_:)``)
    /// may be in flight on one connection at once, pipelined, before another connection is used; 1 gives each call
    /// a connection of its own. Sharing saves the server a wake-up per call under load; the price is that a call
    /// queued behind a slow one on the same connection waits for it.
    public var pipelineDepth: Int
    /// A shared connection that has answered nothing for this long is probably running something slow: new calls
    /// go elsewhere rather than queue behind it.
    public var sharedStallLimit: Duration
    /// Most keys ``PostgresPool/query(_:settings:_:key:)`` puts in one statement; 1
    /// turns coalescing off.
    public var maxCoalescedKeys: Int
    /// Most calls ``PostgresPool/coalescedPipeline(settings:_:)`` runs in one transaction; 1 turns it off.
    public var maxCoalescedWrites: Int

    /// Creates a configuration.
    public init(conninfo: String, maxConnections: Int = 10) {
        self.conninfo = conninfo
        self.maxConnections = maxConnections
        self.acquireTimeout = .seconds(5)
        self.healthCheckAfter = .seconds(30)
        self.reconnectBackoff = .milliseconds(100)
        self.maxReconnectBackoff = .seconds(5)
        self.pipelineDepth = 1
        self.sharedStallLimit = .milliseconds(5)
        self.maxCoalescedKeys = 64
        self.maxCoalescedWrites = 16
    }
}

/// Counters a metrics exporter reads.
public struct PostgresPoolStatistics: Sendable, Hashable {
    /// Connections open now.
    public var open: Int
    /// Of those, idle.
    public var idle: Int
    /// Callers waiting for a connection.
    public var waiting: Int
    /// Connections handed out since start.
    public var acquired: Int
    /// Acquisitions that timed out.
    public var timeouts: Int
    /// Failed connection attempts.
    public var connectFailures: Int
    /// Total time callers spent waiting for a connection.
    public var totalWait: Duration
    /// Single-shot calls that joined a connection other calls were using (see
    /// ``PostgresPoolConfiguration/pipelineDepth``).
    public var sharedCalls: Int = 0
    /// Round trips to the server by every connection the pool has opened, since start: the pipelines of statements
    /// sent, each answered in one exchange. Scripts, `COPY` and `LISTEN`, which run as blocking calls on a
    /// connection's own queue, are not counted.
    public var roundTrips: Int = 0
}

/// A bounded pool of connections with async acquisition, health checks and reconnection with backoff.
public final class PostgresPool: Sendable {
    /// The configuration.
    public let configuration: PostgresPoolConfiguration

    private struct Idle {
        var connection: PostgresConnection
        var since: ContinuousClock.Instant
    }

    private struct Waiter {
        var id: Int
        /// A single-shot call, which may also be served by joining a shared connection.
        var sharing: Bool
        /// Resumed with a connection (already entered in `shared` for a sharing waiter), or nil when a slot opened
        /// (try again).
        var continuation: CheckedContinuation<Handoff?, any Error>
    }

    /// What a waiter is given: a connection of its own, or a place on a shared one.
    private enum Handoff: Sendable {
        case own(PostgresConnection)
        case joined(PostgresConnection)
    }

    /// A connection lent to single-shot calls, several at a time.
    private struct Shared {
        var connection: PostgresConnection
        var inFlight: Int
        var usable = true
        /// When it was lent or last answered a call.
        var lastProgress: ContinuousClock.Instant
    }

    private struct State {
        var idle: [Idle] = []
        var shared: [Shared] = []
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiter = 0
        var closed = false
        var failures = 0
        var retryAfter: ContinuousClock.Instant?
        var stats = PostgresPoolStatistics(open: 0, idle: 0, waiting: 0, acquired: 0, timeouts: 0, connectFailures: 0, totalWait: .zero)
    }

    private let state = Mutex(State())
    /// Pipelines sent by the pool's connections.
    private let roundTrips = RoundTripCounter()
    /// Point reads being gathered into one statement.
    let coalescer: ReadCoalescer
    /// Write pipelines, and reads of ``gatheringCalls(_:)``, being gathered into one transaction.
    let pipelineCoalescer: PipelineCoalescer

    /// Creates a pool; connections are opened on demand.
    /// - Parameter configuration: the settings.
    public init(configuration: PostgresPoolConfiguration) {
        self.configuration = configuration
        self.coalescer = ReadCoalescer(maxKeys: max(1, configuration.maxCoalescedKeys))
        self.pipelineCoalescer = PipelineCoalescer(maxMembers: max(1, configuration.maxCoalescedWrites))
    }

    /// Current statistics.
    public var statistics: PostgresPoolStatistics {
        state.withLock { state in
            var stats = state.stats
            stats.open = state.open
            stats.idle = state.idle.count
            stats.waiting = state.waiters.count
            stats.roundTrips = Int(truncatingIfNeeded: roundTrips.count.load(ordering: .relaxed))
            return stats
        }
    }

    /// Runs `body` with a connection, returning it to the pool afterwards (or discarding it if it broke).
    /// - Parameter body: the work.
    /// - Returns: what `body` returned.
    /// - Throws: ``PostgresError`` `.poolTimeout` / `.connection`, or what `body` threw.
    public func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    /// Runs one statement on a pooled connection (shared with other single-shot calls up to
    /// ``PostgresPoolConfiguration/pipelineDepth``).
    @discardableResult
    public func query(_ sql: String, _ binds: [PostgresValue] = [], prepared: Bool = true) async throws -> PostgresResult {
        try await withSharedConnection { try await $0.query(sql, binds, prepared: prepared) }
    }

    /// Runs one pipeline (one round trip, no transaction left open) on a connection other such calls may use at the
    /// same time: one with room under ``PostgresPoolConfiguration/pipelineDepth`` if there is one, else a connection
    /// of its own. `body` must send exactly one pipeline or statement.
    func withSharedConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        guard configuration.pipelineDepth > 1 else { return try await withConnection(body) }
        let connection = try await acquire(sharing: true)
        do {
            let result = try await body(connection)
            releaseShared(connection)
            return result
        } catch {
            releaseShared(connection)
            throw error
        }
    }

    /// The shared connection a single-shot call should join, if any has room: the least busy, skipping ones that
    /// seem stuck on something slow. Takes the place (under the lock).
    private func join(_ state: inout State) -> PostgresConnection? {
        // With a transaction waiting for a connection of its own, shared ones must be able to drain and return.
        guard !state.waiters.contains(where: { !$0.sharing }) else { return nil }
        var best: Int?
        let now = ContinuousClock.now
        // `isHealthy` too: a connection retired by a cancelled call stays shared until its calls in flight return.
        for (i, lease) in state.shared.enumerated()
        where lease.usable && lease.inFlight < configuration.pipelineDepth && now - lease.lastProgress < configuration.sharedStallLimit
            && lease.connection.isHealthy
        {
            if best.map({ lease.inFlight < state.shared[$0].inFlight }) ?? true { best = i }
        }
        guard let best else { return nil }
        state.shared[best].inFlight += 1
        state.stats.acquired += 1
        state.stats.sharedCalls += 1
        return state.shared[best].connection
    }

    private func releaseShared(_ connection: PostgresConnection) {
        let healthy = connection.isHealthy
        let (last, served): (Bool, [(Waiter, PostgresConnection)]) = state.withLock { state in
            guard let i = state.shared.firstIndex(where: { $0.connection === connection }) else { return (false, []) }
            state.shared[i].inFlight -= 1
            state.shared[i].lastProgress = .now
            if !healthy { state.shared[i].usable = false }
            if state.shared[i].inFlight == 0 {
                state.shared.remove(at: i)
                return (true, [])
            }
            // Room opened on a connection in use: single-shot callers waiting may take it.
            var served: [(Waiter, PostgresConnection)] = []
            while let w = state.waiters.firstIndex(where: \.sharing), let joined = join(&state) {
                served.append((state.waiters.remove(at: w), joined))
            }
            return (false, served)
        }
        for (waiter, joined) in served { waiter.continuation.resume(returning: .joined(joined)) }
        if last { release(connection) }
    }

    private enum Decision {
        case joined(PostgresConnection)
        case use(PostgresConnection, checkHealth: Bool)
        case create
        case wait
        case backingOff(Duration)
        case closed
    }

    /// A connection of the caller's own, or (`sharing`) a place on a connection single-shot calls share.
    func acquire(sharing: Bool = false) async throws -> PostgresConnection {
        let started = ContinuousClock.now
        while true {
            let decision: Decision = state.withLock { state in
                if state.closed { return .closed }
                if sharing, let joined = join(&state) { return .joined(joined) }
                if let idle = state.idle.popLast() {
                    state.stats.acquired += 1
                    return .use(idle.connection, checkHealth: ContinuousClock.now - idle.since > configuration.healthCheckAfter)
                }
                if state.open < configuration.maxConnections {
                    if let retryAfter = state.retryAfter, ContinuousClock.now < retryAfter {
                        return .backingOff(retryAfter - ContinuousClock.now)
                    }
                    state.open += 1
                    return .create
                }
                return .wait
            }
            switch decision {
            case .closed:
                throw PostgresError(kind: .poolClosed, message: "the pool is closed")
            case .joined(let connection):
                recordWait(since: started)
                return connection
            case .use(let connection, let checkHealth):
                var healthy = connection.isHealthy
                if healthy, checkHealth { healthy = await ping(connection) }
                if !healthy {
                    discard()
                    continue
                }
                if sharing { share(connection) }
                recordWait(since: started)
                return connection
            case .create:
                do {
                    let connection = try await PostgresConnection.connect(configuration.conninfo, roundTrips: roundTrips)
                    state.withLock { state in
                        state.failures = 0
                        state.retryAfter = nil
                        state.stats.acquired += 1
                    }
                    if sharing { share(connection) }
                    recordWait(since: started)
                    return connection
                } catch {
                    state.withLock { state in
                        state.open -= 1
                        state.failures += 1
                        state.stats.connectFailures += 1
                        let backoff = min(
                            configuration.reconnectBackoff * (1 << min(state.failures - 1, 16)), configuration.maxReconnectBackoff)
                        state.retryAfter = ContinuousClock.now + backoff
                    }
                    throw error
                }
            case .backingOff(let remaining):
                // The database was unreachable a moment ago: fail fast rather than pile up connection attempts.
                throw PostgresError(
                    kind: .connection,
                    message:
                        "the database was unreachable; next connection attempt in \(remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000) ms"
                )
            case .wait:
                switch try await waitForRelease(started: started, sharing: sharing) {
                case .own(let connection)?:
                    if sharing { share(connection) }
                    recordWait(since: started)
                    return connection
                case .joined(let connection)?:
                    recordWait(since: started)
                    return connection
                case nil:
                    continue
                }
            }
        }
    }

    /// Lends a connection just acquired to single-shot calls; waiting ones join it up to the depth.
    private func share(_ connection: PostgresConnection) {
        let served: [(Waiter, PostgresConnection)] = state.withLock { state in
            state.shared.append(Shared(connection: connection, inFlight: 1, lastProgress: .now))
            var served: [(Waiter, PostgresConnection)] = []
            while let w = state.waiters.firstIndex(where: \.sharing), let joined = join(&state) {
                served.append((state.waiters.remove(at: w), joined))
            }
            return served
        }
        for (waiter, joined) in served { waiter.continuation.resume(returning: .joined(joined)) }
    }

    /// A round trip on a connection that sat idle, bounded by the acquire timeout: a server that stopped answering
    /// must not hold the caller (the unanswered ping retires the connection).
    private func ping(_ connection: PostgresConnection) async -> Bool {
        let limit = configuration.acquireTimeout
        return await withTaskGroup(of: Bool?.self) { group in
            group.addTask { (try? await connection.query("SELECT 1", prepared: false)) != nil }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? false
        }
    }

    private func recordWait(since started: ContinuousClock.Instant) {
        let waited = ContinuousClock.now - started
        state.withLock { $0.stats.totalWait += waited }
    }

    /// Waits for a released connection; nil means a slot opened up (try again). The waiter is queued, or refused
    /// because its time is already up, under the same lock that its timer and a release take, and the timer is only
    /// started once it is queued: whichever comes first, every waiter either gets a connection, times out or sees its
    /// task cancelled.
    private func waitForRelease(started: ContinuousClock.Instant, sharing: Bool) async throws -> Handoff? {
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let deadline = started + configuration.acquireTimeout
        let timer = Mutex<Task<Void, Never>?>(nil)
        defer { timer.withLock { $0?.cancel() } }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let refusal: (any Error)? = state.withLock { state in
                    if state.closed { return PostgresError(kind: .poolClosed, message: "the pool is closed") }
                    if ContinuousClock.now >= deadline {
                        state.stats.timeouts += 1
                        return timeoutError()
                    }
                    // Checked under the lock the cancellation handler takes: a cancel either finds the waiter queued
                    // or is seen here.
                    if Task.isCancelled { return CancellationError() }
                    state.waiters.append(Waiter(id: id, sharing: sharing, continuation: continuation))
                    return nil
                }
                if let refusal { return continuation.resume(throwing: refusal) }
                timer.withLock { timer in
                    timer = Task {
                        try? await Task.sleep(until: deadline)
                        guard !Task.isCancelled else { return }
                        let waiter = self.removeWaiter(id) { $0.stats.timeouts += 1 }
                        waiter?.continuation.resume(throwing: self.timeoutError())
                    }
                }
            }
        } onCancel: {
            removeWaiter(id)?.continuation.resume(throwing: CancellationError())
        }
    }

    private func removeWaiter(_ id: Int, _ update: (inout State) -> Void = { _ in }) -> Waiter? {
        state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            update(&state)
            return state.waiters.remove(at: index)
        }
    }

    private func timeoutError() -> PostgresError {
        PostgresError(
            kind: .poolTimeout, message: "no connection free within \(configuration.acquireTimeout) (max \(configuration.maxConnections))")
    }

    private func release(_ connection: PostgresConnection) {
        let healthy = connection.isHealthy
        let waiter: Waiter? = state.withLock { state in
            if !healthy || state.closed {
                state.open -= 1
                // A slot opened: wake one waiter so it can create a connection.
                return state.waiters.isEmpty ? nil : state.waiters.removeFirst()
            }
            if !state.waiters.isEmpty {
                state.stats.acquired += 1
                return state.waiters.removeFirst()
            }
            state.idle.append(Idle(connection: connection, since: .now))
            return nil
        }
        guard let waiter else { return }
        waiter.continuation.resume(returning: healthy ? .own(connection) : nil)
    }

    private func discard() {
        let waiter: Waiter? = state.withLock { state in
            state.open -= 1
            return state.waiters.isEmpty ? nil : state.waiters.removeFirst()
        }
        waiter?.continuation.resume(returning: nil)
    }

    /// Closes idle connections and refuses new work; connections in use close when returned.
    public func close() {
        let waiters: [Waiter] = state.withLock { state in
            state.closed = true
            state.open -= state.idle.count
            state.idle.removeAll()
            let waiters = state.waiters
            state.waiters.removeAll()
            return waiters
        }
        waiters.forEach { $0.continuation.resume(throwing: PostgresError(kind: .poolClosed, message: "the pool is closed")) }
    }
}
