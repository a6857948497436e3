import CommunicationService
import Foundation
import SwitchboardBuiltins
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// The real `communication` executable (SWITCHBOARD_COMMUNICATION_BIN, or .build/debug/communication) as a process:
/// killed with SIGKILL while the provider holds its call, then restarted.
@Suite("Communication service lifecycle", .serialized)
struct CommunicationLifecycleTests {
    /// A running executable on a database the harness provisioned and migrated.
    final class Executable: @unchecked Sendable {
        // @unchecked: the Process is only touched by the test's one task.
        let process = Process()
        let port: Int

        init(port: Int, environment: [String: String]) throws {
            self.port = port
            let binary =
                ProcessInfo.processInfo.environment["SWITCHBOARD_COMMUNICATION_BIN"]
                ?? repositoryRoot.appendingPathComponent(".build/debug/communication").path
            process.executableURL = URL(fileURLWithPath: binary)
            process.environment = ProcessInfo.processInfo.environment.merging(environment.merging(["SWITCHBOARD_GRPC_PORT": String(port)]) { $1 }) {
                $1
            }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
        }

        /// Waits until the service reports SERVING.
        func serving() async throws -> Bool {
            let channel = GRPCChannel(
                host: "127.0.0.1", port: port,
                configuration: {
                    var c = ClientConfiguration()
                    c.initialBackoff = .milliseconds(50)
                    c.maxBackoff = .milliseconds(100)
                    return c
                }())
            defer { Task { await channel.close() } }
            let health = Grpc_Health_V1_Health_Client(client: RPCClient(transport: channel))
            for _ in 0..<300 {
                var request = Grpc_Health_V1_HealthCheckRequest()
                request.service = "switchboard.communication.v1.CommunicationService"
                if (try? await health.check(request).status) == .serving { return true }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        }

        func kill(_ signal: Int32) async {
            Foundation.kill(process.processIdentifier, signal)
            let deadline = Date().addingTimeInterval(15)
            while process.isRunning, Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
            await waitUntilExit(process)
        }
    }

    @Test(
        "SIGKILL after the provider received a send but before it was recorded: after a restart the provider has one delivery per key, every post byte-identical"
    )
    func killMidCall() async throws {
        let provider = try await FakeProvider.start()
        defer { Task { await provider.stop() } }
        let harness = try await CommunicationHarness.start()
        await harness.stop()
        let secretFile = FileManager.default.temporaryDirectory.appendingPathComponent("comm-secret-\(UUID().uuidString)")
        try providerSecret.write(to: secretFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: secretFile) }
        let port = try #require(freePort())
        let environment = [
            "SWITCHBOARD_ADMIN_PORT": "0", "SWITCHBOARD_DATABASE_URL": harness.service.serviceConninfo, "SWITCHBOARD_JWT_HS256_SECRET": testSecret,
            "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "5", "SWITCHBOARD_LOG_LEVEL": "warning",
            "SWITCHBOARD_COMMUNICATION_PROVIDER_URL": provider.url, "SWITCHBOARD_COMMUNICATION_PROVIDER_SECRET_FILE": secretFile.path,
            "SWITCHBOARD_COMMUNICATION_PROVIDER_TIMEOUT_MS": "3000", "SWITCHBOARD_COMMUNICATION_SEND_LEASE_SECONDS": "4",
            "SWITCHBOARD_COMMUNICATION_DISPATCH_POLL_MS": "50",
        ]
        // The provider takes the first post and never answers it: the service is killed while it waits.
        provider.script([.hang])
        let first = try Executable(port: port, environment: environment)
        #expect(try await first.serving(), "the service never reported SERVING")
        let t = tenant()
        let channel = GRPCChannel(host: "127.0.0.1", port: port)
        defer { Task { await channel.close() } }
        var options = CallOptions(timeout: .seconds(30))
        options.metadata.addString("Bearer \(try await ServiceHarness.token(tenant: t, roles: [.user]))", forKey: "authorization")
        // The harness is stopped (its pool closed): the address directory is written through a pool of the test's own.
        let directory = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: harness.service.serviceConninfo, maxConnections: 1))
        defer { directory.close() }
        let authorized = CommClient(stub: CommunicationStub(client: RPCClient(transport: channel)), options: options, tenant: t, pool: directory)
        let contact = newID()
        _ = try await authorized.recordConsent(contact: contact)
        let send = try await authorized.send(contact: contact, body: "exactly once")
        let clock = ContinuousClock()
        let started = clock.now
        while provider.requests.isEmpty, clock.now - started < .seconds(15) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(provider.requests.count == 1, "the provider never received the send")
        await first.kill(SIGKILL)
        // Nothing recorded the call: the send is still claimed, and its lease runs out.
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: harness.service.serviceConninfo, maxConnections: 1))
        defer { pool.close() }
        let status = try await pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query("SELECT status FROM communication.sends WHERE tenant_id = $1 AND id = $2::uuid", [.text(t), .text(send.id)]).first!
                .int("status")
        }
        #expect(status == 2, "the killed process recorded something after all (status \(status))")

        let second = try Executable(port: port, environment: environment)
        #expect(try await second.serving())
        let settled = try await authorized.settled(send.id, within: .seconds(30))
        #expect(settled.status == .sent && settled.attempts == 2, "\(settled)")
        let after = try await authorized.send(contact: contact, body: "after the restart")
        #expect(try await authorized.settled(after.id).status == .sent)
        try await Task.sleep(for: .milliseconds(500))

        let posts = provider.requests.filter { $0.idempotencyKey == send.id }
        #expect(posts.count == 2, "the provider was called \(posts.count) times for the killed send")
        #expect(Set(posts.map(\.body)).count == 1, "the retried post's body differs")
        #expect(Set(posts.map(\.signature)).count == 1 && posts.first.map { $0.signature == expectedSignature($0.body) } == true)
        #expect(posts.map(\.attempt) == [1, 2])
        #expect(provider.deliveries == [send.id, after.id], "the provider delivered \(provider.deliveries)")
        #expect(provider.requests.filter { $0.idempotencyKey == after.id }.count == 1)

        await second.kill(SIGTERM)
        #expect(second.process.terminationReason == .exit && second.process.terminationStatus == 0)
    }
}
