import Foundation
import SwitchboardTestSupport
import Testing

/// The stock Python gRPC client (grpcio from PyPI) runs gRPC's interop cases, health checks and reflection against
/// the `interop-server` executable, each case in its own client process.
@Suite("Interop with Python grpcio", .serialized)
struct InteropTests {
    static let cases = [
        "empty_unary", "large_unary", "client_compressed_unary", "server_compressed_unary", "client_streaming",
        "client_compressed_streaming", "server_streaming", "server_compressed_streaming", "ping_pong", "empty_stream",
        "timeout_on_sleeping_server", "cancel_after_begin", "cancel_after_first_response", "custom_metadata",
        "status_code_and_message", "special_status_message", "unimplemented_method", "unimplemented_service",
        "max_message_size", "undecodable_request", "health_check", "reflection",
    ]

    /// One interop-server process for the whole suite.
    static let server: InteropServerProcess = InteropServerProcess()

    @Test("grpcio interop case", arguments: cases)
    func interopCase(name: String) async throws {
        let port = try await Self.server.startedPort()
        let (status, output) = try await runProcess(
            pythonPath,
            [
                repositoryRoot.appendingPathComponent("Tests/Interop/interop_client.py").path,
                "--port", String(port), "--test_case", name,
            ],
            environment: ["SWITCHBOARD_INTEROP_STUBS": interopStubsPath])
        #expect(status == 0, "\(name): \(output)")
        #expect(output.contains("PASS \(name)"), "\(name): \(output)")
    }

    @Test(
        "raw HTTP/2 probe: ping abuse gets GOAWAY ENHANCE_YOUR_CALM (a PING after each message of a stream does not), non-gRPC requests get 415/405, garbage gets GOAWAY",
        arguments: ["ping_abuse", "stream_pings", "unsupported_media_type", "method_not_allowed", "malformed_frames"])
    func http2Probe(name: String) async throws {
        let port = try await Self.server.startedPort()
        let (status, output) = try await runProcess(
            pythonPath,
            [repositoryRoot.appendingPathComponent("Tests/Interop/h2_probe.py").path, "--port", String(port), "--case", name])
        #expect(status == 0, "\(name): \(output)")
    }
}

/// Starts `interop-server` on a free port once and stops it when the test process exits.
final class InteropServerProcess: @unchecked Sendable {
    // @unchecked: `lock` guards every mutable field.
    private let lock = NSLock()
    private var process: Process?
    private var boundPort: Int?
    private let arguments: [String]

    /// Every server started, stopped when the test process exits.
    private static let started = StartedServers()

    /// - Parameter arguments: extra command-line options for the server.
    init(arguments: [String] = []) {
        self.arguments = arguments
    }

    /// The server's process id (it is started if it is not running).
    func pid() throws -> Int32 {
        _ = try port()
        return lock.withLock { process?.processIdentifier ?? 0 }
    }

    /// ``port()``, waiting for the start on a thread of its own rather than on the cooperative pool.
    func startedPort() async throws -> Int {
        try await onOwnThread { try self.port() }
    }

    func port() throws -> Int {
        lock.lock()
        defer { lock.unlock() }
        if let boundPort { return boundPort }
        let executable =
            ProcessInfo.processInfo.environment["SWITCHBOARD_INTEROP_SERVER"]
            ?? repositoryRoot.appendingPathComponent(".build/debug/interop-server").path
        let port = try #require(freePort())
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--port", String(port)] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        Self.started.add(self)
        // Wait until it accepts connections.
        for _ in 0..<100 {
            if Self.canConnect(port) {
                boundPort = port
                return port
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw InteropServerError(message: "interop-server did not start on port \(port)")
    }

    func stop() {
        lock.lock()
        defer { lock.unlock() }
        process?.terminate()
        process?.waitUntilExit()
        process = nil
    }

    private static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// The interop servers a test process started; all are stopped at exit.
private final class StartedServers: @unchecked Sendable {
    // @unchecked: `lock` guards `servers`.
    private let lock = NSLock()
    private var servers: [InteropServerProcess] = []

    func add(_ server: InteropServerProcess) {
        let first: Bool = lock.withLock {
            servers.append(server)
            return servers.count == 1
        }
        if first { atexit { InteropServerProcess.stopAll() } }
    }

    func all() -> [InteropServerProcess] { lock.withLock { servers } }
}

extension InteropServerProcess {
    fileprivate static func stopAll() {
        for server in started.all() { server.stop() }
    }
}

struct InteropServerError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
