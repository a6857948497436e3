import Foundation
import Logging
import SwitchboardBuiltins
import SwitchboardPostgres
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import Synchronization
import Testing

/// Readiness against a database that accepts connections but stops answering.
@Suite("Database health monitor", .serialized)
struct DatabaseHealthMonitorTests {
    static let service = "test.v1.Service"

    static func monitor(_ pool: PostgresPool, _ health: HealthService) -> DatabaseHealthMonitor {
        DatabaseHealthMonitor(
            pool: pool, health: health, services: [service], probeTimeout: .seconds(1), logger: Logger(label: "test"))
    }

    @Test("a database whose connection stops answering turns readiness NOT_SERVING, without waiting for the stuck probe")
    func stalledBackend() async throws {
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: adminConninfo, maxConnections: 1))
        defer { pool.close() }
        let health = HealthService(services: [Self.service])
        let monitor = Self.monitor(pool, health)
        // The first connection can take longer than the probe timeout on a loaded machine: wait for readiness.
        await monitor.check()
        for _ in 0..<600 where health.status(of: "") != .serving {
            try await Task.sleep(for: .milliseconds(50))
            await monitor.check()
        }
        #expect(health.status(of: "") == .serving)
        #expect(monitor.isReady)
        let pid = try await pool.query("SELECT pg_backend_pid() AS pid").first!.int("pid")
        try #require(kill(pid_t(pid), SIGSTOP) == 0, "cannot stop the backend (errno \(errno)): run the tests as root")
        defer { kill(pid_t(pid), SIGCONT) }
        #expect(await returns { await monitor.check() })
        #expect(health.status(of: "") == .notServing)
        #expect(health.status(of: Self.service) == .notServing)
        #expect(!monitor.isReady)
        // The stuck probe was given up on and its connection retired: a later check answers on a new one.
        for _ in 0..<1500 where health.status(of: "") != .serving {
            try await Task.sleep(for: .milliseconds(20))
            await monitor.check()
        }
        #expect(health.status(of: "") == .serving)
        #expect(try await pool.query("SELECT pg_backend_pid() AS pid").first!.int("pid") != pid)
    }

    @Test("a probe stuck connecting keeps readiness NOT_SERVING, and later checks start no second probe beside it")
    func stuckProbeDoesNotPileUp() async throws {
        // Accepts connections (the kernel completes them) and never answers: libpq waits for its SSL reply.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 16) == 0 && getsockname(listener, pointer, &length) == 0
            }
        }
        try #require(listening)
        let port = UInt16(bigEndian: address.sin_port)
        let pool = PostgresPool(
            configuration: PostgresPoolConfiguration(
                conninfo: "host=127.0.0.1 port=\(port) user=postgres dbname=postgres", maxConnections: 4))
        defer { pool.close() }
        let health = HealthService(services: [Self.service])
        let monitor = Self.monitor(pool, health)
        health.setAll(.serving)
        for _ in 0..<3 {
            let returned = await returns { await monitor.check() }
            #expect(returned)
            if !returned { break }
            #expect(health.status(of: "") == .notServing)
            #expect(!monitor.isReady)
        }
        #expect(pool.statistics.open == 1, "one connection attempt at a time")
    }

    /// Whether `body` returned within a generous 30 s (a hang fails the test instead of stalling the run; `body` is
    /// not waited for then).
    private func returns(_ body: @escaping @Sendable () async -> Void) async -> Bool {
        let once = Once()
        return await withCheckedContinuation { continuation in
            once.set(continuation)
            Task {
                await body()
                once.resume(true)
            }
            Task {
                try? await Task.sleep(for: .seconds(30))
                once.resume(false)
            }
        }
    }
}

/// A continuation resumed by the first of several racers.
private final class Once: Sendable {
    private let continuation = Mutex<CheckedContinuation<Bool, Never>?>(nil)

    func set(_ continuation: CheckedContinuation<Bool, Never>) { self.continuation.withLock { $0 = continuation } }

    func resume(_ value: Bool) { continuation.withLock { $0.take() }?.resume(returning: value) }
}
