import Foundation
import SwitchboardInterop
import SwitchboardTestSupport
import Testing

/// Our client against another implementation's server: the `interop-client` executable runs every one of gRPC's
/// interop cases against Python grpcio's TestService server, over plaintext and over TLS.
@Suite("Interop client against grpcio", .serialized)
struct InteropClientTests {
    /// The grpcio server as a child process; it prints the port it bound (read from a file: a pipe read would block a
    /// concurrency thread, and `waitUntilExit` can hang on one).
    final class PythonServer: @unchecked Sendable {
        let process = Process()
        let port: Int

        init(tls: TestCertificate? = nil) async throws {
            let environment = ProcessInfo.processInfo.environment
            guard let python = environment["SWITCHBOARD_PYTHON"], environment["SWITCHBOARD_INTEROP_STUBS"] != nil else {
                throw InteropServerError(message: "SWITCHBOARD_PYTHON and SWITCHBOARD_INTEROP_STUBS must be set (scripts/test.sh sets them)")
            }
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Interop/interop_server.py").path
            let outputURL = FileManager.default.temporaryDirectory.appendingPathComponent("interop-server-\(UUID()).log")
            _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
            defer { try? FileManager.default.removeItem(at: outputURL) }
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = [script, "--port", "0"] + (tls.map { ["--tls", $0.certificate, $0.key] } ?? [])
            process.standardOutput = try FileHandle(forWritingTo: outputURL)
            process.standardError = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            try process.run()
            for _ in 0..<300 {
                let text = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
                if let line = text.split(separator: "\n").first, line.hasPrefix("listening "), let port = Int(line.dropFirst(10)) {
                    self.port = port
                    return
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            process.terminate()
            throw InteropServerError(message: "the grpcio interop server did not start within 30 s")
        }

        func stop() { process.terminate() }
    }

    private func runClient(_ arguments: [String]) async throws -> (Int32, String) {
        guard let client = ProcessInfo.processInfo.environment["SWITCHBOARD_INTEROP_CLIENT"] else {
            throw InteropServerError(message: "SWITCHBOARD_INTEROP_CLIENT is not set (scripts/test.sh builds interop-client and sets it)")
        }
        return try await runProcess(client, arguments)
    }

    @Test("every interop case passes against grpcio over plaintext")
    func plaintext() async throws {
        let server = try await PythonServer()
        defer { server.stop() }
        let (status, output) = try await runClient(["--server_port", "\(server.port)", "--test_case", "all"])
        #expect(status == 0, "\(output)")
        #expect(output.components(separatedBy: "PASS ").count - 1 == InteropClient.cases.count, "\(output)")
    }

    @Test("every interop case passes against grpcio over TLS, with the server's certificate verified")
    func tls() async throws {
        let certificate = try await TestCertificate()
        let server = try await PythonServer(tls: certificate)
        defer { server.stop() }
        let (status, output) = try await runClient([
            "--server_port", "\(server.port)", "--test_case", "all", "--use_tls", "--ca_file", certificate.certificate,
            "--server_host_override", "localhost",
        ])
        #expect(status == 0, "\(output)")
        #expect(output.components(separatedBy: "PASS ").count - 1 == InteropClient.cases.count, "\(output)")
        // Without the certificate among its roots the client refuses the server.
        let (refused, _) = try await runClient(["--server_port", "\(server.port)", "--test_case", "empty_unary", "--use_tls"])
        #expect(refused != 0)
    }
}
