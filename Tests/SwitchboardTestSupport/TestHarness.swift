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

/// Runs a process to completion and returns its exit code and combined output.
/// - Parameters:
///   - executable: the program.
///   - arguments: its arguments.
///   - environment: extra environment variables.
/// - Returns: the exit status and output.
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The Python interpreter with grpcio (set up by scripts/bootstrap.sh).
public var pythonPath: String {
    ProcessInfo.processInfo.environment["SWITCHBOARD_PYTHON"] ?? repositoryRoot.appendingPathComponent(".venv/bin/python").path
}

/// The generated grpcio stubs (Tests/Interop/gen_stubs.sh).
public var interopStubsPath: String {
    ProcessInfo.processInfo.environment["SWITCHBOARD_INTEROP_STUBS"] ?? repositoryRoot.appendingPathComponent(".build/interop-stubs").path
}
