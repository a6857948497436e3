import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import SwitchboardBuiltins
import SwitchboardPostgres

/// Checks the database every `interval` and keeps gRPC health and `/readyz` in step: NOT_SERVING while it is
/// unreachable, SERVING again on the first successful check after it returns. Also publishes pool gauges.
public final class DatabaseHealthMonitor: Service, Sendable {
    private let pool: PostgresPool
    private let health: HealthService
    private let services: [String]
    private let interval: Duration
    private let logger: Logger
    private let ready = Atomic<Bool>(false)
    private let shuttingDown = Atomic<Bool>(false)

    /// Creates the monitor.
    /// - Parameters:
    ///   - pool: the service's pool.
    ///   - health: the health service to update.
    ///   - services: the application services whose status follows the database.
    ///   - interval: time between checks.
    ///   - logger: the logger.
    public init(pool: PostgresPool, health: HealthService, services: [String], interval: Duration = .seconds(1), logger: Logger) {
        self.pool = pool
        self.health = health
        self.services = services
        self.interval = interval
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
        let reachable: Bool
        do {
            reachable = try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask { (try? await self.pool.query("SELECT 1", prepared: false)) != nil }
                group.addTask {
                    try await Task.sleep(for: .seconds(2))
                    return false
                }
                let first = try await group.next() ?? false
                group.cancelAll()
                return first
            }
        } catch {
            reachable = false
        }
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
        Gauge(label: "db_pool_wait_seconds_total").record(Double(stats.totalWait.components.seconds) + Double(stats.totalWait.components.attoseconds) / 1e18)
        Gauge(label: "db_pool_timeouts_total").record(stats.timeouts)
        Gauge(label: "db_pool_shared_calls_total").record(stats.sharedCalls)
        Gauge(label: "db_up").record(reachable ? 1 : 0)
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
