import Foundation
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

    /// Creates a configuration.
    public init(conninfo: String, maxConnections: Int = 10) {
        self.conninfo = conninfo
        self.maxConnections = maxConnections
        self.acquireTimeout = .seconds(5)
        self.healthCheckAfter = .seconds(30)
        self.reconnectBackoff = .milliseconds(100)
        self.maxReconnectBackoff = .seconds(5)
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
        var continuation: CheckedContinuation<PostgresConnection?, any Error>
    }

    private struct State {
        var idle: [Idle] = []
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiter = 0
        var closed = false
        var failures = 0
        var retryAfter: ContinuousClock.Instant?
        var stats = PostgresPoolStatistics(open: 0, idle: 0, waiting: 0, acquired: 0, timeouts: 0, connectFailures: 0, totalWait: .zero)
    }

    private let state = Mutex(State())

    /// Creates a pool; connections are opened on demand.
    /// - Parameter configuration: the settings.
    public init(configuration: PostgresPoolConfiguration) {
        self.configuration = configuration
    }

    /// Current statistics.
    public var statistics: PostgresPoolStatistics {
        state.withLock { state in
            var stats = state.stats
            stats.open = state.open
            stats.idle = state.idle.count
            stats.waiting = state.waiters.count
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

    /// Runs one statement on a pooled connection.
    @discardableResult
    public func query(_ sql: String, _ binds: [PostgresValue] = [], prepared: Bool = true) async throws -> PostgresResult {
        try await withConnection { try await $0.query(sql, binds, prepared: prepared) }
    }

    private enum Decision {
        case use(PostgresConnection, checkHealth: Bool)
        case create
        case wait
        case backingOff(Duration)
        case closed
    }

    func acquire() async throws -> PostgresConnection {
        let started = ContinuousClock.now
        while true {
            let decision: Decision = state.withLock { state in
                if state.closed { return .closed }
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
            case .use(let connection, let checkHealth):
                var healthy = connection.isHealthy
                if healthy, checkHealth { healthy = await ping(connection) }
                if !healthy {
                    discard()
                    continue
                }
                recordWait(since: started)
                return connection
            case .create:
                do {
                    let connection = try await PostgresConnection.connect(configuration.conninfo)
                    state.withLock { state in
                        state.failures = 0
                        state.retryAfter = nil
                        state.stats.acquired += 1
                    }
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
                    message: "the database was unreachable; next connection attempt in \(remaining.formatted(.units(allowed: [.milliseconds])))")
            case .wait:
                if let connection = try await waitForRelease(started: started) {
                    recordWait(since: started)
                    return connection
                }
            }
        }
    }

    private func ping(_ connection: PostgresConnection) async -> Bool {
        (try? await connection.query("SELECT 1", prepared: false)) != nil
    }

    private func recordWait(since started: ContinuousClock.Instant) {
        let waited = ContinuousClock.now - started
        state.withLock { $0.stats.totalWait += waited }
    }

    /// Waits for a released connection; nil means a slot opened up (try again).
    private func waitForRelease(started: ContinuousClock.Instant) async throws -> PostgresConnection? {
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let timeout = configuration.acquireTimeout
        let timer = Task {
            try await Task.sleep(for: timeout - (ContinuousClock.now - started))
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                state.stats.timeouts += 1
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: PostgresError(
                kind: .poolTimeout, message: "no connection free within \(timeout) (max \(configuration.maxConnections))"))
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            state.withLock { state in
                state.waiters.append(Waiter(id: id, continuation: continuation))
            }
        }
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
        waiter.continuation.resume(returning: healthy ? connection : nil)
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
