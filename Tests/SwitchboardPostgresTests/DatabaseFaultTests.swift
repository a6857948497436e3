import Foundation
import SwitchboardPostgres
import Synchronization
import Testing

/// A database that accepts connections but stops answering: the calls below must still return, and no cancel may
/// reach the wrong statement. Backends are stopped with SIGSTOP (the tests run as the server's host's root) and
/// always continued afterwards; new connections (and cancel requests, which are new connections) are held back by
/// a proxy in front of the server.
@Suite("Postgres layer against a database that stops answering", .serialized)
struct DatabaseFaultTests {
    @Test("a call cancelled while its server has stopped answering returns at once, and the pool replaces the connection")
    func cancelOnStalledServer() async throws {
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1))
        defer { pool.close() }
        let pid = try await pool.query("SELECT pg_backend_pid() AS pid").first!.int("pid")
        try await whileStopped(pid) {
            let call = Task { try await pool.query("SELECT 1 AS one") }
            // The call holds the pool's only connection once it is sending.
            try await eventually { pool.statistics.idle == 0 }
            call.cancel()
            let outcome = await finishes { try await call.value }
            guard case .failure(let error)? = outcome else {
                Issue.record("the cancelled call did not end with an error: \(String(describing: outcome))")
                return
            }
            #expect(error is CancellationError, "got \(error)")
        }
        let after = try await pool.query("SELECT pg_backend_pid() AS pid").first!.int("pid")
        #expect(after != pid, "the connection whose call was given up on was handed out again")
    }

    @Test("a cancel request that reaches the server late does not cancel the next caller's statement")
    func lateCancelMissesNextCaller() async throws {
        let proxy = try HoldingProxy(upstreamPort: Int(testPort)!)
        defer { proxy.close() }
        let pool = PostgresPool(
            configuration: PostgresPoolConfiguration(
                conninfo: "host=127.0.0.1 port=\(proxy.port) user=postgres dbname=postgres", maxConnections: 1))
        let observer = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1))
        defer {
            pool.close()
            observer.close()
        }
        _ = try await pool.query("SELECT 1")
        // The observer connects before the statement starts, and the statement runs long enough to be seen: on a loaded
        // CI host a 0.5 s statement could end before a first connection was made to look for it.
        _ = try await observer.query("SELECT 1")
        let first = "SELECT pg_sleep(2) -- \(UUID())"
        let cancelled = Task { try await pool.query(first) }
        try await eventually { try await isActive(first, observer) }
        // The cancel request opens a connection of its own: held back, it reaches the server only when released.
        proxy.hold()
        cancelled.cancel()
        _ = await finishes { try await cancelled.value }
        let second = "SELECT pg_sleep(1.5)::text AS slept, 'second' AS who -- \(UUID())"
        let next = Task { try await pool.query(second) }
        // Reusing the connection, the next statement would run now; a new connection waits for the proxy. A short look
        // (1 s) on purpose: the statement is expected NOT to start, and the held connection must not reach its connect
        // timeout meanwhile. Bounded by the clock, not by a count of looks: on a loaded host each look can take a tenth
        // of a second, and fifty of them once outlasted the connect timeout.
        let lookUntil = ContinuousClock.now + .seconds(1)
        while ContinuousClock.now < lookUntil {
            if try await isActive(second, observer) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        proxy.release()
        let outcome = await finishes { try await next.value }
        guard case .success(let rows)? = outcome else {
            Issue.record("the next caller's statement failed: \(String(describing: outcome))")
            return
        }
        #expect(try rows.first?.string("who") == "second")
    }

    @Test("a waiter whose acquire timeout is already over is refused, never left queued without a timer")
    func timeoutBeforeQueued() async throws {
        var configuration = PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1)
        configuration.acquireTimeout = .nanoseconds(1)
        let pool = PostgresPool(configuration: configuration)
        defer { pool.close() }
        let (held, release) = AsyncStream<Void>.makeStream()
        let holder = Task { try await pool.withConnection { _ in for await _ in held {} } }
        try await eventually { pool.statistics.open == 1 && pool.statistics.idle == 0 }
        // Each waiter's timer may run before the waiter is queued: the pool must refuse it either way.
        let outcome = await finishes {
            try await withThrowingTaskGroup(of: PostgresError.Kind?.self) { group in
                for _ in 0..<2000 {
                    group.addTask {
                        do {
                            _ = try await pool.query("SELECT 1")
                            return nil
                        } catch let error as PostgresError {
                            return error.kind
                        }
                    }
                }
                return try await group.reduce(into: [PostgresError.Kind?]()) { $0.append($1) }
            }
        }
        #expect(try outcome?.get().allSatisfy { $0 == .poolTimeout } == true, "\(String(describing: outcome))")
        #expect(pool.statistics.waiting == 0)
        release.finish()
        try await holder.value
    }

    @Test("cancelling a caller waiting for a connection ends its wait at once")
    func cancelWaiter() async throws {
        var configuration = PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1)
        configuration.acquireTimeout = .seconds(600)
        let pool = PostgresPool(configuration: configuration)
        defer { pool.close() }
        let (held, release) = AsyncStream<Void>.makeStream()
        let holder = Task { try await pool.withConnection { _ in for await _ in held {} } }
        try await eventually { pool.statistics.open == 1 && pool.statistics.idle == 0 }
        let waiter = Task { try await pool.query("SELECT 1") }
        try await eventually { pool.statistics.waiting == 1 }
        waiter.cancel()
        let outcome = await finishes { try await waiter.value }
        guard case .failure(let error)? = outcome else {
            Issue.record("the cancelled waiter did not end with an error: \(String(describing: outcome))")
            return
        }
        #expect(error is CancellationError, "got \(error)")
        #expect(pool.statistics.waiting == 0)
        release.finish()
        try await holder.value
    }

    @Test("the health-check round trip on a long-idle connection is bounded when its server stopped answering")
    func stalledHealthCheck() async throws {
        var configuration = PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1)
        configuration.healthCheckAfter = .zero
        configuration.acquireTimeout = .milliseconds(300)
        let pool = PostgresPool(configuration: configuration)
        defer { pool.close() }
        let pid = try await pool.query("SELECT pg_backend_pid() AS pid").first!.int("pid")
        try await whileStopped(pid) {
            let outcome = await finishes { try await pool.query("SELECT pg_backend_pid() AS pid").first!.int("pid") }
            let answeredBy = try outcome?.get()
            #expect(answeredBy != nil && answeredBy != pid)
        }
    }

    @Test("connecting to a server that accepts but never answers fails after a connect timeout, by default too")
    func stalledConnect() async throws {
        let proxy = try HoldingProxy(upstreamPort: Int(testPort)!)
        defer { proxy.close() }
        proxy.hold()
        // No connect_timeout given: the default bounds the wait (libpq's own default is to wait forever).
        let outcome = await finishes {
            try await PostgresConnection.connect("host=127.0.0.1 port=\(proxy.port) user=postgres dbname=postgres")
        }
        guard case .failure(let error as PostgresError)? = outcome else {
            Issue.record("connected, or hung: \(String(describing: outcome))")
            return
        }
        #expect(error.kind == .connection)
    }
}

/// Whether `marker` (a statement's text) is running on the server, as seen from another pool.
func isActive(_ marker: String, _ observer: PostgresPool) async throws -> Bool {
    try await observer.query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE query = $1 AND state = 'active'", [.text(marker)]
    ).first!.int("n") > 0
}

/// Waits until `condition` holds (checked every 10 ms, for at most 30 s: CI runs every suite at once on two cores),
/// failing the test if it never does.
func eventually(_ condition: () async throws -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    for _ in 0..<3000 {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    try #require(try await condition(), "never happened", sourceLocation: sourceLocation)
}

/// Runs `body` and returns its outcome, or nil (failing the test) if it has not ended after a generous 30 s: a hang
/// fails the test instead of stalling the run. The body is not waited for then.
func finishes<T: Sendable>(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: @escaping @Sendable () async throws -> T
) async -> Result<T, any Error>? {
    let once = Once<Result<T, any Error>?>()
    let outcome = await withCheckedContinuation { continuation in
        once.set(continuation)
        Task {
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            once.resume(result)
        }
        Task {
            try? await Task.sleep(for: .seconds(30))
            once.resume(nil)
        }
    }
    if outcome == nil { Issue.record("did not return within 30 s", sourceLocation: sourceLocation) }
    return outcome
}

/// A continuation resumed by the first of several racers.
final class Once<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, Never>?>(nil)

    func set(_ continuation: CheckedContinuation<T, Never>) { self.continuation.withLock { $0 = continuation } }

    func resume(_ value: T) { continuation.withLock { $0.take() }?.resume(returning: value) }
}

/// Runs `body` with server process `pid` stopped (SIGSTOP), continuing it afterwards whatever happens.
func whileStopped(_ pid: Int64, _ body: () async throws -> Void) async throws {
    try #require(kill(pid_t(pid), SIGSTOP) == 0, "cannot stop the backend (errno \(errno)): run the tests as root")
    defer { kill(pid_t(pid), SIGCONT) }
    try await body()
}

/// A TCP proxy to the test server that can hold back new connections: while held, they are accepted but neither
/// forwarded nor answered, as by a server that stopped answering; released, they go through.
final class HoldingProxy: Sendable {
    let port: Int
    private let listener: Int32
    private let held = Atomic<Bool>(false)
    private let upstreamPort: Int

    init(upstreamPort: Int) throws {
        self.upstreamPort = upstreamPort
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 64) == 0 && getsockname(listener, pointer, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRNOTAVAIL) }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    func hold() { held.store(true, ordering: .sequentiallyConsistent) }
    func release() { held.store(false, ordering: .sequentiallyConsistent) }

    /// Stops accepting; connections in progress end when either side closes.
    func close() {
        release()
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            Thread.detachNewThread { [self] in
                while held.load(ordering: .sequentiallyConsistent) { usleep(5000) }
                let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                address.sin_port = UInt16(upstreamPort).bigEndian
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                    }
                }
                guard connected else {
                    Glibc.close(server)
                    Glibc.close(client)
                    return
                }
                Thread.detachNewThread { Self.pump(from: server, to: client) }
                Self.pump(from: client, to: server)
            }
        }
    }

    /// Copies bytes one way until either side closes, then closes both directions.
    private static func pump(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(source, &buffer, buffer.count)
            if n <= 0 { break }
            var offset = 0
            while offset < n {
                let written = buffer[offset..<n].withUnsafeBytes { write(destination, $0.baseAddress, n - offset) }
                if written <= 0 { break }
                offset += written
            }
            if offset < n { break }
        }
        shutdown(source, Int32(SHUT_RDWR))
        shutdown(destination, Int32(SHUT_RDWR))
    }
}
