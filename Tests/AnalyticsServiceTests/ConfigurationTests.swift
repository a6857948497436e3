import AnalyticsService
import Foundation
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// Settings: bounds on every limit, the feeds' addresses and tokens.
@Suite("Analytics: settings")
struct ConfigurationTests {
    @Test("every limit setting is bounded; a feed needs host:port and a token source")
    func settings() throws {
        for (name, bad) in [
            ("SWITCHBOARD_ANALYTICS_MAX_PAGE_SIZE", "0"), ("SWITCHBOARD_ANALYTICS_MAX_RANGE_DAYS", "5000"), ("SWITCHBOARD_ANALYTICS_MAX_TOP", "0"),
            ("SWITCHBOARD_ANALYTICS_WATCH_STREAMS", "0"), ("SWITCHBOARD_ANALYTICS_WATCH_STREAMS_PER_USER", "1001"),
            ("SWITCHBOARD_ANALYTICS_EXPORT_CHUNK_BYTES", "10"), ("SWITCHBOARD_ANALYTICS_REPORT_PAGE_ROWS", "1"),
            ("SWITCHBOARD_ANALYTICS_MAX_DEFINITIONS", "0"), ("SWITCHBOARD_ANALYTICS_SCHEDULER_INTERVAL_SECONDS", "0"),
        ] {
            #expect(throws: ConfigurationError.self, "\(name)=\(bad)") { _ = try AnalyticsService.description(environment: [name: bad]) }
        }
        _ = try AnalyticsService.description(environment: [:])
        #expect(try AnalyticsService.sourceFeeds([:]).isEmpty)
        #expect(throws: ConfigurationError.self) {
            _ = try AnalyticsService.sourceFeeds(["SWITCHBOARD_ANALYTICS_CONTACTS_ADDRESS": "contacts", "SWITCHBOARD_JWT_HS256_SECRET": testSecret])
        }
        #expect(throws: ConfigurationError.self) {
            _ = try AnalyticsService.sourceFeeds(["SWITCHBOARD_ANALYTICS_CONTACTS_ADDRESS": "contacts:50061"])
        }
        let feeds = try AnalyticsService.sourceFeeds([
            "SWITCHBOARD_ANALYTICS_CONTACTS_ADDRESS": "contacts:50061", "SWITCHBOARD_ANALYTICS_COLLABORATION_ADDRESS": "collab:50064",
            "SWITCHBOARD_JWT_HS256_SECRET": testSecret,
        ])
        #expect(feeds.map(\.source) == [.contacts, .collaboration] && feeds.map(\.port) == [50061, 50064])
    }
}

/// Analytics' own events on its tenant feed and on the kit's cross-tenant feed.
@Suite("Analytics: its own change feeds", .serialized)
final class OwnFeedTests {
    let harness: AnalyticsHarness

    init() async throws { harness = try await AnalyticsHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test("WatchChanges streams the tenant's lifecycle transitions; a service identity follows them across tenants with WatchAllChanges")
    func ownFeed() async throws {
        let t = tenant()
        let id = newID()
        try await harness.apply([try event(t, contactType, id, .created, json: contactJSON(id))], source: .contacts)
        var updated = try event(t, contactType, id, .updated, json: contactJSON(id, status: "CONTACT_STATUS_CUSTOMER"))
        updated.changedFields = ["status"]
        try await harness.apply([updated], source: .contacts)

        let client = try await harness.client(tenant: t, roles: [.readOnly])
        let first = try await client.stub.watchChanges(.init(), options: client.options) { events -> Switchboard_Common_V1_ChangeEvent? in
            for try await event in events { return event }
            return nil
        }
        #expect(first?.resourceType == "switchboard.analytics.v1.LifecycleTransition")
        let transition = try Switchboard_Analytics_V1_LifecycleTransition(protoJSONText: try first?.resource?.protoJSONText() ?? "{}")
        #expect(transition.contactId == id && transition.fromStage == "LEAD" && transition.toStage == "CUSTOMER")

        var options = CallOptions(timeout: .seconds(30))
        options.metadata.addString("Bearer \(try await ServiceHarness.serviceToken())", forKey: "authorization")
        let feed = Switchboard_Common_V1_ChangeFeedService_Client(client: RPCClient(transport: harness.analytics.channel))
        var request = Switchboard_Common_V1_WatchAllChangesRequest()
        request.resourceTypes = ["switchboard.analytics.v1.LifecycleTransition"]
        let batch = try await feed.watchAllChanges(request, options: options) { batches -> Switchboard_Common_V1_ChangeBatch? in
            for try await batch in batches where batch.events.contains(where: { $0.tenantId == t }) { return batch }
            return nil
        }
        #expect(batch?.events.contains { $0.tenantId == t && $0.relatedIds == [id] } == true)
    }
}

/// A stock grpcio client (stubs generated from Protos/ by Tests/Interop/gen_stubs.sh) against the service.
@Suite("Analytics: a stock grpcio client", .serialized)
final class InteropTests {
    let harness: AnalyticsHarness

    init() async throws { harness = try await AnalyticsHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test("a stock grpcio client calls the analytics RPCs, reads field violations and follows WatchChanges")
    func grpcioClient() async throws {
        let token = try await ServiceHarness.token(tenant: tenant(), roles: [.manager])
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("analytics-grpcio-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let status = await spawnAndWait(
            [
                pythonPath, repositoryRoot.appendingPathComponent("Tests/Interop/analytics_client.py").path,
                "--port", String(harness.analytics.port), "--token", token,
            ],
            environment: ["SWITCHBOARD_INTEROP_STUBS": interopStubsPath], outputPath: output)
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(log)")
        #expect(log.contains("PASS analytics_client"), "\(log)")
    }
}
