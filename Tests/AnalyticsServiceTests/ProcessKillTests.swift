import AnalyticsService
import Foundation
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// The real `analytics` executable (SWITCHBOARD_ANALYTICS_BIN, or .build/debug/analytics) following the four
/// in-process source services, killed with SIGKILL mid-ingest and restarted while a writer keeps logging
/// interactions: afterwards every metric equals the writer's own count.
@Suite("Analytics: exactly once across SIGKILL", .serialized)
final class ProcessKillTests {
    let harness: AnalyticsHarness

    init() async throws { harness = try await AnalyticsHarness.start(withSources: true, followFeeds: false) }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    func launch() throws -> Process {
        let sources = harness.sources!
        let binary =
            ProcessInfo.processInfo.environment["SWITCHBOARD_ANALYTICS_BIN"] ?? repositoryRoot.appendingPathComponent(".build/debug/analytics").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.environment = ProcessInfo.processInfo.environment.merging([
            "SWITCHBOARD_GRPC_PORT": String(try #require(freePort())),
            "SWITCHBOARD_ADMIN_PORT": "0", "SWITCHBOARD_DATABASE_URL": harness.analytics.serviceConninfo,
            "SWITCHBOARD_JWT_HS256_SECRET": testSecret, "SWITCHBOARD_LOG_LEVEL": "error",
            "SWITCHBOARD_ANALYTICS_CONTACTS_ADDRESS": "127.0.0.1:\(sources.contacts.port)",
            "SWITCHBOARD_ANALYTICS_ORGANIZATION_ADDRESS": "127.0.0.1:\(sources.organization.port)",
            "SWITCHBOARD_ANALYTICS_COMMUNICATION_ADDRESS": "127.0.0.1:\(sources.communication.port)",
            "SWITCHBOARD_ANALYTICS_COLLABORATION_ADDRESS": "127.0.0.1:\(sources.collaboration.port)",
        ]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    @Test("SIGKILL mid-ingest under a steady write load, twice: after a restart every contact's metrics and timeline equal the writer's count")
    func sigkill() async throws {
        let t = tenant()
        let contacts = try await (0..<3).asyncMap { i in try await self.harness.createContact(tenant: t, given: "Killed\(i)").id }
        var process = try launch()
        let writer = Task { [harness] () -> [String: Int] in
            var calls = [String: Int]()
            for i in 0..<90 {
                let pair = i % 4 == 0 ? [contacts[i % 3], contacts[(i + 2) % 3]] : [contacts[i % 3]]
                try await harness.logInteraction(tenant: t, contacts: pair)
                for c in pair { calls[c, default: 0] += 1 }
            }
            return calls
        }
        let client = try await harness.client(tenant: t)
        func total() async throws -> Int64 {
            var sum: Int64 = 0
            for c in contacts { sum += try await client.metrics(c).interactions }
            return sum
        }
        var before: Int64 = 0
        for _ in 0..<2 {
            // Kill once this process has visibly ingested something.
            let floor = before
            _ = try await eventually(timeout: .seconds(20), every: .milliseconds(10)) { try await total() > floor }
            try await Task.sleep(for: .milliseconds(Int.random(in: 20...200)))
            kill(process.processIdentifier, SIGKILL)
            await waitUntilExit(process)
            #expect(process.terminationReason == .uncaughtSignal)
            before = try await total()
            process = try launch()
        }
        let calls = try await writer.value
        let expectedTotal = calls.values.reduce(0, +)
        let caughtUp = try await eventually {
            var total: Int64 = 0
            for c in contacts { total += try await client.metrics(c).interactions }
            return total == Int64(expectedTotal)
        }
        #expect(caughtUp)
        for c in contacts {
            #expect(try await client.metrics(c).interactions == Int64(calls[c] ?? 0))
            #expect(try await client.allEntries(c, pageSize: 200).count == 1 + (calls[c] ?? 0))
        }
        process.terminate()
        await waitUntilExit(process)
    }
}
