import Foundation
import NIOCore
import SwitchboardHTTP2
import SwitchboardRPC

/// Runs a real server on a loopback port for the duration of a test.
public struct RunningServer: Sendable {
    /// The server.
    public let server: GRPCServer
    /// The bound port.
    public let port: Int
    /// The task running the server.
    public let task: Task<Void, any Error>

    /// A channel (client transport) to this server.
    /// - Parameter configuration: client settings.
    public func channel(configuration: ClientConfiguration = ClientConfiguration()) -> GRPCChannel {
        GRPCChannel(host: "127.0.0.1", port: port, configuration: configuration)
    }

    /// Shuts the server down and waits for it to stop.
    /// - Parameter grace: time for in-flight calls.
    public func stop(grace: Duration = .seconds(2)) async {
        await server.shutDown(grace: grace)
        _ = await task.result
    }
}

/// Starts a server on `127.0.0.1` and an ephemeral port (or the one given).
/// - Parameters:
///   - services: the services.
///   - interceptors: server interceptors.
///   - port: the port (0 picks one).
///   - configure: changes to the default configuration.
/// - Returns: the running server.
public func startServer(
    services: [any RPCService],
    interceptors: [any ServerInterceptor] = [],
    port: Int = 0,
    configure: (inout ServerConfiguration) -> Void = { _ in }
) async throws -> RunningServer {
    var configuration = ServerConfiguration(host: "127.0.0.1", port: port)
    configure(&configuration)
    let server = GRPCServer(configuration: configuration, services: services, interceptors: interceptors)
    let task = Task { try await server.run() }
    let address = try await server.listeningAddress()
    return RunningServer(server: server, port: address.port!, task: task)
}

/// Runs `body` with a server and a client to it, then closes both.
/// - Parameters:
///   - services: the services.
///   - interceptors: server interceptors.
///   - clientInterceptors: client interceptors.
///   - configure: server configuration changes.
///   - body: the test.
/// - Returns: what the body returned.
public func withServerAndClient<R: Sendable>(
    services: [any RPCService],
    interceptors: [any ServerInterceptor] = [],
    clientInterceptors: [any ClientInterceptor] = [],
    configure: (inout ServerConfiguration) -> Void = { _ in },
    body: (RPCClient, RunningServer) async throws -> R
) async throws -> R {
    let running = try await startServer(services: services, interceptors: interceptors, configure: configure)
    let channel = running.channel()
    do {
        let result = try await body(RPCClient(transport: channel, interceptors: clientInterceptors), running)
        await channel.close()
        await running.stop()
        return result
    } catch {
        await channel.close()
        await running.stop()
        throw error
    }
}

/// A thread-safe counter for observing handlers from tests.
public final class Counter: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var value = 0
    private var maximum = 0

    /// Creates a counter at zero.
    public init() {}

    /// Adds to the counter; returns the new value.
    @discardableResult
    public func add(_ n: Int = 1) -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += n
        maximum = max(maximum, value)
        return value
    }

    /// The current value.
    public var current: Int {
        lock.lock()
        defer { lock.unlock() }
        return value
    }

    /// The highest value seen.
    public var highest: Int {
        lock.lock()
        defer { lock.unlock() }
        return maximum
    }
}

/// Where the repository is, for fixtures and scripts.
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs blocking work on a thread of its own and waits for it without blocking a thread of the cooperative pool.
///
/// The pool has one thread per core (two on CI): a test that waits there for a child process (a Python client takes
/// a second or more to start) stalls every other test's tasks meanwhile. Full runs saw 5 s and 10 s timeouts in
/// unrelated tests while the serialized grpcio interop cases held one of the two threads for half a minute.
/// - Parameter body: the blocking work.
/// - Returns: what it returned.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// ``onOwnThread(_:)`` for work that cannot fail.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

/// Runs a process to completion and returns its exit code and combined output, waiting on a thread of its own.
/// - Parameters:
///   - executable: the program.
///   - arguments: its arguments.
///   - environment: extra environment variables.
/// - Returns: the exit status and output.
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> (Int32, String) {
    try await onOwnThread { try runProcessBlocking(executable, arguments, environment: environment) }
}

/// ``runProcess(_:_:environment:)`` on the calling thread, which it blocks until the process ends. Private: every
/// caller waits through ``onOwnThread(_:)``.
private func runProcessBlocking(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    // Output goes through a file, not a pipe: a daemon the process starts (pg_ctl's postmaster) may keep a pipe
    // open forever, and reading to EOF would hang.
    let outputURL = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-process-\(UUID()).log")
    _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: outputURL) }
    let output = try FileHandle(forWritingTo: outputURL)
    process.standardOutput = output
    process.standardError = output
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let status = waitForExit(process)
    try? output.close()
    let data = (try? Data(contentsOf: outputURL)) ?? Data()
    return (status, String(decoding: data, as: UTF8.self))
}

/// `process.waitUntilExit()` on a thread of its own (see ``onOwnThread(_:)``): Foundation still reaps the child and
/// records how it ended.
/// - Parameter process: the child.
public func waitUntilExit(_ process: Process) async {
    let box = UncheckedProcess(process: process)
    await onOwnThread { box.process.waitUntilExit() }
}

/// `Process` is not `Sendable`; the thread that waits only waits on it.
private struct UncheckedProcess: @unchecked Sendable {
    let process: Process
}

/// The exit status of a child (the signal's number if a signal ended it), reaped here if Foundation has not done it.
/// `Process.waitUntilExit()` once waited for ever in a full test run on a child that had exited (a zombie nobody
/// reaped: Foundation's SIGCHLD handling missed it), which would hang the whole suite; polling `waitpid` cannot miss it.
private func waitForExit(_ process: Process) -> Int32 {
    let pid = process.processIdentifier
    while true {
        var raw: Int32 = 0
        let reaped = waitpid(pid, &raw, WNOHANG)
        if reaped == pid {
            let signal = raw & 0x7f
            return signal == 0 ? (raw >> 8) & 0xff : signal
        }
        if reaped == -1 && errno == ECHILD {
            // Foundation reaped it first, and records its status as it does.
            while process.isRunning { usleep(1000) }
            return process.terminationStatus
        }
        usleep(5000)
    }
}

/// The Python interpreter with grpcio (set up by scripts/bootstrap.sh).
public var pythonPath: String {
    ProcessInfo.processInfo.environment["SWITCHBOARD_PYTHON"] ?? repositoryRoot.appendingPathComponent(".venv/bin/python").path
}

/// The generated grpcio stubs (Tests/Interop/gen_stubs.sh).
public var interopStubsPath: String {
    ProcessInfo.processInfo.environment["SWITCHBOARD_INTEROP_STUBS"] ?? repositoryRoot.appendingPathComponent(".build/interop-stubs").path
}

/// Runs a program to completion with `posix_spawn` and `waitpid`, output discarded and no other descriptor inherited,
/// waiting on a thread of its own (see ``onOwnThread(_:)``). For scripts that start daemons (pg_ctl), where Foundation's
/// `Process` has been seen to miss the exit.
/// - Returns: the exit status (or 128 + signal).
public func spawnAndWait(_ arguments: [String], environment: [String: String] = [:], outputPath: String = "/dev/null") async -> Int32 {
    await onOwnThread { spawnAndWaitBlocking(arguments, environment: environment, outputPath: outputPath) }
}

/// ``spawnAndWait(_:environment:outputPath:)`` on the calling thread, which it blocks until the program ends. Private:
/// every caller waits through ``onOwnThread(_:)``.
private func spawnAndWaitBlocking(_ arguments: [String], environment: [String: String] = [:], outputPath: String = "/dev/null") -> Int32 {
    let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    var envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    // Nothing else of the test process: a daemon started here (a postmaster) would otherwise hold copies of every
    // socket open at that moment, and a connection another test closes would stay open for its peer.
    // (glibc's closefrom action is not visible to Swift: each descriptor open now is closed in the child; closing one
    // that another thread closes meanwhile is harmless there.)
    let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
    for fd in open where fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
    var pid = pid_t()
    guard posix_spawn(&pid, arguments[0], &actions, nil, &argv, &envp) == 0 else { return 127 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0, errno == EINTR {}
    let exited = status & 0x7f == 0
    return exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// The status code a call ended with (nil for success; UNKNOWN for an error that is not an `RPCError`).
/// - Parameter body: the call.
/// - Returns: the code.
public func code(of body: () async throws -> Void) async -> StatusCode? {
    do {
        try await body()
        return nil
    } catch let error as RPCError {
        return error.code
    } catch {
        return .unknown
    }
}

/// Polls `condition` until it holds or `timeout` has passed, and returns whether it held. The default is generous on
/// purpose: CI runs every suite at once on two cores, where a change that takes milliseconds alone can take seconds; a
/// passing run returns at the first check that holds, so only a failure pays the whole wait.
public func eventually(
    timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(20), _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}
