import Logging
import Metrics
import ServiceLifecycle
import SwitchboardBuiltins
import SwitchboardPostgres
import Synchronization

/// Checks the database every `interval` and keeps gRPC health and `/readyz` in step: NOT_SERVING while it is
/// unreachable, SERVING again on the first successful check after it returns. Also publishes pool gauges.
public final class DatabaseHealthMonitor: Service, Sendable {
    private let pool: PostgresPool
    private let health: HealthService
    private let services: [String]
    private let interval: Duration
    private let probeTimeout: Duration
    private let logger: Logger
    /// The probe in flight, if any, and the number of the last one started.
    private let probe = Mutex<(running: Task<Bool, Never>?, started: Int)>((nil, 0))
    private let ready = Atomic<Bool>(false)
    private let shuttingDown = Atomic<Bool>(false)

    /// Creates the monitor.
    /// - Parameters:
    ///   - pool: the service's pool.
    ///   - health: the health service to update.
    ///   - services: the application services whose status follows the database.
    ///   - interval: time between checks.
    ///   - probeTimeout: how long a check waits for the database's answer before reporting it unreachable.
    ///   - logger: the logger.
    public init(
        pool: PostgresPool, health: HealthService, services: [String], interval: Duration = .seconds(1),
        probeTimeout: Duration = .seconds(2), logger: Logger
    ) {
        self.pool = pool
        self.health = health
        self.services = services
        self.interval = interval
        self.probeTimeout = probeTimeout
        self.logger = logger
    }

    /// Whether the service is ready for traffic.
    public var isReady: Bool { ready.load(ordering: .relaxed) && !shuttingDown.load(ordering: .relaxed) }

    /// Marks the service as going away (health NOT_SERVING from now on).
    public func markShuttingDown() {
        shuttingDown.store(true, ordering: .relaxed)
        health.setAll(.notServing)
    }

    /// Runs one check now.
    public func check() async {
        let reachable = await probeDatabase()
        let was = ready.exchange(reachable, ordering: .relaxed)
        if was != reachable {
            logger.log(level: reachable ? .info : .error, reachable ? "database reachable: serving" : "database unreachable: not serving")
        }
        if !shuttingDown.load(ordering: .relaxed) {
            let status: HealthService.ServingStatus = reachable ? .serving : .notServing
            health.setStatus(status, for: "")
            for service in services { health.setStatus(status, for: service) }
        }
        let stats = pool.statistics
        Gauge(label: "db_pool_open_connections").record(stats.open)
        Gauge(label: "db_pool_idle_connections").record(stats.idle)
        Gauge(label: "db_pool_waiting").record(stats.waiting)
        Gauge(label: "db_pool_wait_seconds_total").record(
            Double(stats.totalWait.components.seconds) + Double(stats.totalWait.components.attoseconds) / 1e18)
        Gauge(label: "db_pool_timeouts_total").record(stats.timeouts)
        Gauge(label: "db_pool_shared_calls_total").record(stats.sharedCalls)
        Gauge(label: "db_round_trips_total").record(stats.roundTrips)
        Gauge(label: "db_up").record(reachable ? 1 : 0)
    }

    /// Whether the database answers `SELECT 1` within `probeTimeout`. The check never waits longer, even for a probe
    /// stuck on a server that stopped answering (it is cancelled, but a connection attempt, for one, cannot be). A
    /// check that finds a probe in flight (the periodic one, or one stuck from an earlier check) waits for that probe
    /// under its own timeout instead of starting a second, so stuck probes cannot pile up in the pool, and two checks
    /// at the same moment agree (reporting the in-flight probe as a failure made a concurrent check flap).
    private func probeDatabase() async -> Bool {
        let started: Task<Bool, Never> = probe.withLock { probe in
            if let running = probe.running { return running }
            probe.started += 1
            let number = probe.started
            let task = Task {
                let answered = (try? await self.pool.query("SELECT 1", prepared: false)) != nil
                self.probe.withLock { if $0.started == number { $0.running = nil } }
                return answered
            }
            probe.running = task
            return task
        }
        let outcome = FirstOutcome()
        let answered = await withCheckedContinuation { continuation in
            outcome.wait(continuation)
            let timeout = probeTimeout
            outcome.race(
                Task {
                    try? await Task.sleep(for: timeout)
                    if !Task.isCancelled { outcome.finish(false) }
                })
            outcome.race(Task { outcome.finish(await started.value) })
        }
        if !answered { started.cancel() }
        return answered
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.check()
                try? await Task.sleep(for: self.interval)
            }
        }
    }
}

/// Whichever of a probe and its timeout finishes first; the loser is cancelled and not waited for.
private final class FirstOutcome: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<Bool, Never>?, racers: [Task<Void, Never>])>((nil, []))

    func wait(_ continuation: CheckedContinuation<Bool, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    func race(_ task: Task<Void, Never>) {
        let finished = state.withLock { state in
            state.racers.append(task)
            return state.continuation == nil
        }
        if finished { task.cancel() }
    }

    func finish(_ value: Bool) {
        let (continuation, racers) = state.withLock { state in
            defer { state.continuation = nil }
            return (state.continuation, state.racers)
        }
        guard let continuation else { return }
        racers.forEach { $0.cancel() }
        continuation.resume(returning: value)
    }
}
