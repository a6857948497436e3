import Foundation
import OrganizationService
import SwitchboardBuiltins
import SwitchboardHTTP2
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

@Suite("Organization service lifecycle", .serialized)
struct OrganizationLifecycleTests {
    @Test("the organization executable migrates, serves, reports SERVING, and exits 0 on SIGTERM")
    func sigterm() async throws {
        // A database provisioned and migrated by the harness, then served by the real executable.
        let harness = try await OrganizationHarness.start()
        await harness.stop()
        let port = try #require(freePort())
        let binary =
            ProcessInfo.processInfo.environment["SWITCHBOARD_ORGANIZATION_BIN"]
            ?? repositoryRoot.appendingPathComponent(".build/debug/organization").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.environment = ProcessInfo.processInfo.environment.merging([
            "SWITCHBOARD_GRPC_PORT": String(port), "SWITCHBOARD_ADMIN_PORT": "0",
            "SWITCHBOARD_DATABASE_URL": harness.service.serviceConninfo, "SWITCHBOARD_JWT_HS256_SECRET": testSecret,
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
            var request = Grpc_Health_V1_HealthCheckRequest()
            request.service = "switchboard.organization.v1.OrganizationService"
            serving = (try? await health.check(request).status) == .serving
            if !serving { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(serving, "the service never reported SERVING")
        await channel.close()
        process.terminate()  // SIGTERM
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning, Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning, "still running 15 s after SIGTERM")
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        await waitUntilExit(process)
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
    }

    @Test("crmctl orgs creates, moves, lists and prints the tree against the service; --help never shows the token")
    func crmctl() async throws {
        let harness = try await OrganizationHarness.start()
        defer { Task { await harness.stop() } }
        // crmctl sits beside the service's executable (scripts/test.sh builds both).
        let binary = URL(
            fileURLWithPath: ProcessInfo.processInfo.environment["SWITCHBOARD_ORGANIZATION_BIN"]
                ?? repositoryRoot.appendingPathComponent(".build/debug/organization").path
        ).deletingLastPathComponent().appendingPathComponent("crmctl").path
        let token = try await ServiceHarness.token(tenant: "crmctl-" + UUID().uuidString.prefix(6), roles: [.user])
        let env = ["CRMCTL_TOKEN": token, "CRMCTL_ORGANIZATION_ADDR": "127.0.0.1:\(harness.service.port)"]
        func run(_ arguments: String...) async throws -> String {
            let (status, output) = try await runProcess(binary, ["orgs"] + arguments, environment: env)
            #expect(status == 0, "crmctl orgs \(arguments.joined(separator: " ")): \(output)")
            return output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let root = try await run("create", "Root Co", "--domain", "root.example", "--output", "json")
        let rootID = try #require(try JSONSerialization.jsonObject(with: Data(root.utf8)) as? [String: Any])["id"] as? String
        let child = try await run("create", "Child Co", "--output", "json")
        let childID = try #require(try JSONSerialization.jsonObject(with: Data(child.utf8)) as? [String: Any])["id"] as? String
        _ = try await run("move", try #require(childID), "--parent", try #require(rootID))
        let tree = try await run("tree", try #require(rootID))
        let names: [String] = tree.split(separator: "\n").map { line in String(line.split(separator: "\t").first ?? "") }
        #expect(names == ["Root Co", "  Child Co"])
        #expect(try await run("list").contains("root.example"))
        let (_, help) = try await runProcess(binary, ["orgs", "list", "--help"], environment: env)
        #expect(!help.contains(token), "--help printed the token")
        // A bad option is a usage error naming it, not a trap.
        let (status, usage) = try await runProcess(binary, ["orgs", "list", "--timeout", "1e300"], environment: env)
        #expect(status != 0 && usage.contains("--timeout"))
    }

    @Test("a contacts address without a token file or an HS256 secret to sign one is a configuration error naming the variable")
    func configuration() throws {
        #expect(throws: ConfigurationError.self) {
            _ = try OrganizationService.description(environment: ["SWITCHBOARD_ORGANIZATION_CONTACTS_ADDRESS": "contacts:50061"])
        }
        #expect(throws: ConfigurationError.self) {
            _ = try OrganizationService.description(environment: ["SWITCHBOARD_ORGANIZATION_CONTACTS_ADDRESS": "no-port"])
        }
        #expect(try OrganizationService.contactsFeed([:]) == nil)
        // Tree streams hold a connection each: they must leave some of the pool to every other call.
        #expect(throws: ConfigurationError.self) {
            _ = try OrganizationService.description(environment: [
                "SWITCHBOARD_ORGANIZATION_TREE_STREAMS": "8", "SWITCHBOARD_DB_POOL_SIZE": "8",
            ])
        }
        _ = try OrganizationService.description(environment: ["SWITCHBOARD_ORGANIZATION_TREE_STREAMS": "8", "SWITCHBOARD_DB_POOL_SIZE": "9"])
        // Without a token file, the HS256 secret signs the service's own tokens (with the platform's issuer).
        let secret = String(repeating: "s", count: 32)
        let feed = try OrganizationService.contactsFeed([
            "SWITCHBOARD_ORGANIZATION_CONTACTS_ADDRESS": "contacts:50061", "SWITCHBOARD_JWT_HS256_SECRET": secret,
            "SWITCHBOARD_JWT_ISSUER": "switchboard",
        ])
        #expect(
            feed
                == .init(
                    host: "contacts", port: 50061,
                    token: .selfSigned(service: "organization", hs256Secret: secret, issuer: "switchboard", audience: nil)))
        // Printing the configuration (a log line, a debugger) never shows the secret.
        #expect(!"\(try #require(feed))".contains(secret))
    }
}
