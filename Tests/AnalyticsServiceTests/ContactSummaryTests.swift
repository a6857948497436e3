import AnalyticsService
import Foundation
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// GetContactSummary: a contact's GetContactMetrics and first page of GetTimeline in one call, over HTTP/2 and
/// PostgreSQL, with analytics alone fed ChangeEvents as its consumers apply them.
@Suite("Analytics: contact summary", .serialized)
final class ContactSummaryTests {
    let harness: AnalyticsHarness
    init() async throws { harness = try await AnalyticsHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    /// A contact created in `tenant` as the contacts feed publishes it.
    private func contact(_ tenant: String, _ id: String = newID(), given: String = "Ada") async throws -> String {
        try await harness.apply([try event(tenant, contactType, id, .created, json: contactJSON(id, given: given))], source: .contacts)
        return id
    }

    /// A call with `contacts` logged `daysAgo` days ago (under 30, so that the per-30-days rate does not move with the clock).
    private func call(_ tenant: String, _ contacts: [String], daysAgo: Double) async throws {
        let id = newID()
        let json = interactionJSON(id, contacts: contacts, occurredAt: Date().addingTimeInterval(-daysAgo * 86_400))
        try await harness.apply([try event(tenant, interactionType, id, .created, json: json)], source: .communication)
    }

    private static func summary(
        _ client: AnalyticsClient, _ contact: String, pageSize: Int32 = 0
    ) async throws -> Switchboard_Analytics_V1_ContactSummary {
        var request = Switchboard_Analytics_V1_GetContactSummaryRequest()
        request.contactId = contact
        request.pageSize = pageSize
        return try await client.stub.getContactSummary(request, options: client.options)
    }

    @Test("the summary is GetContactMetrics and GetTimeline's first page of 10 for the contact")
    func matchesMetricsAndTimeline() async throws {
        let t = tenant()
        let (ada, other) = (try await contact(t), try await contact(t, given: "Other"))
        try await call(t, [ada], daysAgo: 3)
        try await call(t, [ada, other], daysAgo: 2)
        try await call(t, [other], daysAgo: 1)
        let client = try await harness.client(tenant: t, roles: [.readOnly])

        let summary = try await Self.summary(client, ada)
        #expect(summary.metrics == (try await client.metrics(ada)))
        #expect(summary.timeline == (try await client.timeline(ada, pageSize: 10)))
        let metrics = try #require(summary.metrics)
        #expect(metrics.contactId == ada && metrics.interactions == 2 && metrics.lifecycleStage == "LEAD")
        #expect(metrics.counts.map(\.kind) == ["call"] && metrics.counts.map(\.count) == [2])
        #expect(metrics.interactionsPer30Days == 2)
        #expect(summary.timeline?.entries.map(\.kind) == [.created, .interaction, .interaction])
        #expect(summary.timeline?.entries.allSatisfy { $0.subjectId == ada } == true)
        #expect(summary.timeline?.page?.nextPageToken == "")
        #expect(try await Self.summary(client, other).metrics?.interactions == 2)
    }

    @Test("page_size bounds the timeline and its token continues through GetTimeline; bad page_size or contact_id is INVALID_ARGUMENT")
    func pagingAndValidation() async throws {
        let t = tenant()
        let ada = try await contact(t)
        try await call(t, [ada], daysAgo: 2)
        try await call(t, [ada], daysAgo: 1)
        let client = try await harness.client(tenant: t)
        let all = try await client.allEntries(ada)
        #expect(all.count == 3)

        let one = try await Self.summary(client, ada, pageSize: 1)
        #expect(one.timeline == (try await client.timeline(ada, pageSize: 1)))
        #expect(one.timeline?.entries == Array(all.prefix(1)))
        #expect(one.metrics?.interactions == 2)
        let token = one.timeline?.page?.nextPageToken ?? ""
        #expect(!token.isEmpty)
        #expect(try await client.timeline(ada, pageSize: 1, token: token).entries == [all[1]])
        #expect(try await Self.summary(client, ada, pageSize: 2).timeline?.entries == Array(all.prefix(2)))
        #expect(try await Self.summary(client, ada, pageSize: 50).timeline?.entries == all)

        for size: Int32 in [51, -1, .max, .min] {
            let error = await rpcError { _ = try await Self.summary(client, ada, pageSize: size) }
            #expect(error?.code == .invalidArgument && fields(error) == ["page_size"], "page_size \(size): \(String(describing: error))")
        }
        for id in ["", "nope", "12345678-1234-1234-1234-12345678901z"] {
            let error = await rpcError { _ = try await Self.summary(client, id) }
            #expect(error?.code == .invalidArgument && fields(error) == ["contact_id"], "contact_id \(id): \(String(describing: error))")
        }
    }

    @Test("another tenant's summary of the same contact shows none of the first tenant's facts, as its metrics and timeline")
    func tenantIsolation() async throws {
        let (ta, tb) = (tenant(), tenant())
        let ada = try await contact(ta)
        try await call(ta, [ada], daysAgo: 1)
        let a = try await harness.client(tenant: ta)
        let b = try await harness.client(tenant: tb, user: "user-b", roles: [.admin])
        #expect(try await Self.summary(a, ada).metrics?.interactions == 1)

        let theirs = try await Self.summary(b, ada)
        #expect(theirs.metrics == (try await b.metrics(ada)))
        #expect(theirs.timeline == (try await b.timeline(ada, pageSize: 10)))
        let empty = try #require(theirs.metrics)
        #expect(empty.interactions == 0 && empty.counts.isEmpty && empty.lifecycleStage.isEmpty && empty.firstContactTime == nil)
        #expect(theirs.timeline?.entries.isEmpty == true)
        // The same id created in tenant B: B's summary holds B's contact only.
        _ = try await contact(tb, ada, given: "Bea")
        let own = try await Self.summary(b, ada)
        #expect(own.timeline?.entries.map(\.kind) == [.created])
        #expect(own.metrics?.interactions == 0 && own.metrics?.lifecycleStage == "LEAD")
        #expect(try await Self.summary(a, ada).timeline?.entries.map(\.kind) == [.created, .interaction])
    }
}
