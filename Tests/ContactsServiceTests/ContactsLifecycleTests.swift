import Foundation
import SwitchboardBuiltins
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

@Suite("Contacts service lifecycle", .serialized)
struct ContactsLifecycleTests {
    @Test("the contacts executable serves, and exits 0 on SIGTERM after draining")
    func sigterm() async throws {
        let harness = try await ContactsHarness.start()
        await harness.stop()
        let port = try #require(freePort())
        let binary =
            ProcessInfo.processInfo.environment["SWITCHBOARD_CONTACTS_BIN"]
            ?? repositoryRoot.appendingPathComponent(".build/debug/contacts").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.environment = ProcessInfo.processInfo.environment.merging([
            "SWITCHBOARD_GRPC_PORT": String(port), "SWITCHBOARD_ADMIN_PORT": "0",
            "SWITCHBOARD_DATABASE_URL": harness.serviceConninfo, "SWITCHBOARD_JWT_HS256_SECRET": testSecret,
            "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "2", "SWITCHBOARD_LOG_LEVEL": "warning",
        ]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let channel = GRPCChannel(
            host: "127.0.0.1", port: port,
            configuration: {
                var c = ClientConfiguration()
                c.initialBackoff = .milliseconds(50)
                c.maxBackoff = .milliseconds(100)
                return c
            }())
        let health = Grpc_Health_V1_Health_Client(client: RPCClient(transport: channel))
        var serving = false
        for _ in 0..<300 where !serving {
            serving = (try? await health.check(Grpc_Health_V1_HealthCheckRequest()).status) == .serving
            if !serving { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(serving, "the service never reported SERVING")
        await channel.close()
        // The container health check: the executable asks its own health endpoint (0 serving, 1 otherwise).
        #expect(await spawnAndWait([binary, "healthcheck"], environment: ["SWITCHBOARD_GRPC_PORT": String(port)]) == 0)
        // A port nothing listens on: one the kernel just handed out and took back (the port after the service's could
        // be another test's server).
        let silent = try #require(freePort())
        #expect(await spawnAndWait([binary, "healthcheck", "--timeout", "1"], environment: ["SWITCHBOARD_GRPC_PORT": String(silent)]) == 1)
        // A port that cannot be one is a usage error (64), not a probe of some other port.
        for bad in ["70000", "0", "http"] {
            #expect(await spawnAndWait([binary, "healthcheck"], environment: ["SWITCHBOARD_GRPC_PORT": bad]) == 64, "SWITCHBOARD_GRPC_PORT=\(bad)")
        }
        process.terminate()  // SIGTERM
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning, Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning, "still running 15 s after SIGTERM")
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        await waitUntilExit(process)
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
    }

    @Test("database stopped mid-test: calls fail UNAVAILABLE and health is NOT_SERVING, then both recover")
    func databaseOutage() async throws {
        // A cluster of its own, so stopping it disturbs no other test (scripts/test.sh creates and starts it before the
        // run, when the machine is quiet; a bare `swift test` creates it here).
        let port = String(outageClusterPort)
        let script = repositoryRoot.appendingPathComponent("scripts/postgres.sh").path
        let env = ["SWITCHBOARD_PG_PORT": port]
        let started = await runScript(script, "start", environment: env)
        try #require(started.status == 0, "second cluster did not start: \(started.output)")
        let admin = "host=127.0.0.1 port=\(port) user=postgres dbname=postgres"
        let harness = try await ContactsHarness.start(adminConninfo: admin)
        do {
            let client = try await harness.client(tenant: "outage")
            _ = try await client.create()
            await harness.monitor.check()
            #expect(harness.health.status(of: "") == .serving)

            let stopped = await runScript(script, "stop", environment: env)
            #expect(stopped.status == 0, "the cluster did not stop: \(stopped.output)")
            let down = await rpcError { _ = try await client.create(given: "During") }
            #expect(down?.code == .unavailable, "got \(String(describing: down))")
            await harness.monitor.check()
            #expect(harness.health.status(of: "") == .notServing)
            #expect(harness.health.status(of: "switchboard.contacts.v1.ContactsService") == .notServing)

            let restarted = await runScript(script, "start", environment: env)
            #expect(restarted.status == 0, "the cluster did not start again: \(restarted.output)")
            var recovered = false
            for _ in 0..<120 where !recovered {
                recovered = (try? await client.create(given: "After")) != nil
                if !recovered { try await Task.sleep(for: .milliseconds(250)) }
            }
            #expect(recovered, "calls did not recover after the database came back")
            await harness.monitor.check()
            #expect(harness.health.status(of: "") == .serving)
            #expect(try await client.list().contacts.map { $0.name?.given ?? "" }.sorted() == ["Ada", "After"])
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }
}

/// The port of the outage test's own cluster: SWITCHBOARD_PG_OUTAGE_PORT, or ten below the kernel's ephemeral port
/// range (scripts/test.sh computes the same). While that cluster is down, a port inside the range can be taken by any
/// outgoing connection or any server bound to port 0 (hundreds of each in a full run), and the postmaster could then
/// not listen again; nothing is handed a port below the range unless it asks for that number.
private var outageClusterPort: Int {
    if let port = ProcessInfo.processInfo.environment["SWITCHBOARD_PG_OUTAGE_PORT"].flatMap(Int.init) { return port }
    let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
    let low = range.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } ?? 32768
    // A range that starts too low leaves no unprivileged port below it: then the port above the main cluster's.
    let mainPort = ProcessInfo.processInfo.environment["SWITCHBOARD_PG_PORT"].flatMap(Int.init) ?? 54329
    return low - 10 > 1024 ? low - 10 : mainPort + 10
}

/// Runs scripts/postgres.sh with one command and returns its exit status and output (pg_ctl's message and, when the
/// server does not start, its log), so a failure says why.
private func runScript(_ script: String, _ command: String, environment: [String: String]) async -> (status: Int32, output: String) {
    let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-postgres-\(UUID()).log").path
    defer { try? FileManager.default.removeItem(atPath: outputPath) }
    let status = await spawnAndWait(["/bin/bash", script, command], environment: environment, outputPath: outputPath)
    let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    return (status, String(output.suffix(4000)))
}
