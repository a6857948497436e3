import AnalyticsService
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// Analytics alone, fed real ChangeEvents as its consumers apply them (one batch, one transaction): merges, erasure,
/// scores, reports, dashboards, alerts, tenant isolation, roles and bounds.
@Suite("Analytics: facts, scores, reports, isolation, roles and bounds", .serialized)
final class FactsTests {
    let harness: AnalyticsHarness
    static let limits: AnalyticsLimits = {
        var l = AnalyticsLimits()
        l.maxPageSize = 5
        l.maxRangeDays = 31
        l.maxTop = 5
        l.watchStreamsPerUser = 1
        l.exportChunkBytes = 1024
        l.reportPageRows = 10
        return l
    }()

    init() async throws { harness = try await AnalyticsHarness.start(limits: Self.limits) }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    func contact(
        _ t: String, _ id: String = newID(), given: String = "Ada", email: String = "", status: String = "CONTACT_STATUS_LEAD", custom: String = "{}",
        tags: [String] = []
    )
        async throws -> String
    {
        try await harness.apply(
            [try event(t, contactType, id, .created, json: contactJSON(id, given: given, email: email, status: status, custom: custom, tags: tags))],
            source: .contacts)
        return id
    }

    /// Logs a call of `contacts` (CREATED, or the call `id` again as UPDATED). - Returns: its id.
    @discardableResult
    func call(
        _ t: String, _ contacts: [String], daysAgo: Double, kind: String = "INTERACTION_KIND_CALL", user: String = "user-1", id: String? = nil
    ) async throws -> String {
        let callID = id ?? newID()
        try await harness.apply(
            [
                try event(
                    t, interactionType, callID, id == nil ? .created : .updated,
                    json: interactionJSON(
                        callID, kind: kind, contacts: contacts, occurredAt: Date().addingTimeInterval(-daysAgo * 86_400), owner: user))
            ], source: .communication)
        return callID
    }

    /// Creates the alert "Busy" (interactions at or above `threshold`) as a manager of the tenant.
    func busyAlert(_ t: String, threshold: Double) async throws -> Switchboard_Analytics_V1_Alert {
        let manager = try await harness.client(tenant: t, roles: [.manager])
        var alert = Switchboard_Analytics_V1_Alert()
        alert.name = "Busy"
        alert.metric = .interactions
        alert.threshold = threshold
        alert.direction = .above
        var create = Switchboard_Analytics_V1_CreateAlertRequest()
        create.alert = alert
        return try await manager.stub.createAlert(create, options: manager.options)
    }

    func mergeMoves(_ t: String, as reader: String? = nil) async throws -> [PostgresRow] {
        try await harness.pool.query(
            settings: ["app.tenant_id": reader ?? t],
            "SELECT kind, coalesce(before::text, '') AS before, coalesce(after::text, '') AS after FROM analytics.merge_moves WHERE tenant_id = $1 ORDER BY id",
            [.text(t)]
        ).rows
    }

    func changes(_ t: String, type: String) async throws -> [PostgresRow] {
        try await harness.pool.query(
            settings: ["app.tenant_id": t],
            "SELECT resource_id, kind, resource::text AS resource, related_ids FROM analytics.changes WHERE tenant_id = $1 AND resource_type = $2 ORDER BY sequence",
            [.text(t), .text(type)]
        ).rows
    }

    func exportSubject(_ client: AnalyticsClient, _ contact: String) async throws -> [Switchboard_Analytics_V1_SubjectRecord] {
        var export = Switchboard_Analytics_V1_ExportSubjectRequest()
        export.contactId = contact
        return try await client.stub.exportSubject(export, options: client.options) { stream in
            var all: [Switchboard_Analytics_V1_SubjectRecord] = []
            for try await record in stream { all.append(record) }
            return all
        }
    }

    @Test("MERGED folds the loser's timeline and activities into the winner, counting an activity of both once")
    func merged() async throws {
        let t = tenant()
        let (loser, winner) = (try await contact(t, given: "Loser"), try await contact(t, given: "Winner"))
        try await call(t, [loser], daysAgo: 2)
        try await call(t, [loser, winner], daysAgo: 1)
        try await call(t, [winner], daysAgo: 0)
        try await harness.apply([try event(t, contactType, loser, .merged, related: [winner])], source: .contacts)
        let client = try await harness.client(tenant: t)
        #expect(try await client.allEntries(loser).isEmpty)
        let entries = try await client.allEntries(winner)
        #expect(entries.first?.kind == .merged && entries.first?.resourceId == loser)
        #expect(entries.filter { $0.kind == .interaction }.count == 3)
        #expect(entries.filter { $0.kind == .created }.count == 2)
        #expect(try await client.metrics(winner).interactions == 3)
        #expect(try await client.metrics(loser).interactions == 0)
    }

    @Test("UNMERGED reverses the merge's log: entries, activities, stages and firing alerts, whichever comes first of it and the sources' updates")
    func unmerged() async throws {
        let t = tenant()
        _ = try await busyAlert(t, threshold: 3)
        let loser = try await contact(t, given: "Loser", status: "CONTACT_STATUS_CUSTOMER")
        let winner = try await contact(t, given: "Winner")
        let alone = try await call(t, [loser], daysAgo: 3)
        let alsoAlone = try await call(t, [loser], daysAgo: 2)
        let both = try await call(t, [loser, winner], daysAgo: 1)
        let fourth = try await call(t, [loser], daysAgo: 2.5)
        try await call(t, [winner], daysAgo: 0.5)
        let client = try await harness.client(tenant: t)
        let stagesBefore = try await client.metrics(loser).stageHistory
        #expect(stagesBefore.count == 1 && stagesBefore.first?.stage == "CUSTOMER")
        #expect(try await changes(t, type: "switchboard.analytics.v1.AlertFired").count == 1)  // the loser's three calls

        try await harness.apply([try event(t, contactType, loser, .merged, related: [winner])], source: .contacts)
        #expect(try await client.allEntries(loser).isEmpty)
        #expect(try await client.metrics(winner).interactions == 5)
        #expect(try await changes(t, type: "switchboard.analytics.v1.AlertFired").count == 2)  // the winner's five
        let moves = try await mergeMoves(t)
        #expect(Set(try moves.map { try $0.string("kind") }) == ["moved", "activity", "stage", "alert"])
        #expect(try await mergeMoves(t, as: tenant()).isEmpty)  // row-level security: another tenant sees none

        // Communication moved three calls back before contacts' UNMERGED reached analytics (the loser, still merged away,
        // has three again and does not fire its alert again), the fourth after it.
        try await call(t, [loser], daysAgo: 3, id: alone)
        try await call(t, [winner, loser], daysAgo: 1, id: both)
        try await call(t, [loser], daysAgo: 2, id: alsoAlone)
        #expect(try await changes(t, type: "switchboard.analytics.v1.AlertFired").count == 2)
        try await harness.apply(
            [
                try event(
                    t, contactType, loser, .unmerged, json: contactJSON(loser, given: "Loser", status: "CONTACT_STATUS_CUSTOMER"), related: [winner])
            ],
            source: .contacts)
        try await call(t, [loser], daysAgo: 2.5, id: fourth)

        let loserEntries = try await client.allEntries(loser)
        #expect(loserEntries.filter { $0.kind == .interaction }.map(\.resourceId).sorted() == [alone, alsoAlone, both, fourth].sorted())
        #expect(loserEntries.filter { $0.kind == .created }.count == 1)
        #expect(loserEntries.first?.kind == .unmerged && loserEntries.first?.resourceId == loser)
        let winnerEntries = try await client.allEntries(winner)
        #expect(winnerEntries.filter { $0.kind == .interaction }.count == 2 && winnerEntries.contains { $0.resourceId == both })
        #expect(winnerEntries.filter { $0.kind == .created }.count == 1)
        #expect(Set(winnerEntries.prefix(2).map(\.kind)) == [.unmerged, .merged])
        let (loserMetrics, winnerMetrics) = (try await client.metrics(loser), try await client.metrics(winner))
        #expect(loserMetrics.interactions == 4 && winnerMetrics.interactions == 2)
        #expect(loserMetrics.lifecycleStage == "CUSTOMER" && loserMetrics.stageHistory.map(\.stage) == ["CUSTOMER"])
        #expect(loserMetrics.stageHistory.map(\.time) == stagesBefore.map(\.time))
        // The loser's alert was still firing: restored, not fired again.
        #expect(try await changes(t, type: "switchboard.analytics.v1.AlertFired").count == 2)
        #expect(try await mergeMoves(t).isEmpty)

        // An erased person leaves the log: a later UNMERGED does not bring them back into an activity.
        let (second, third, person) = (
            try await contact(t, given: "Second"), try await contact(t, given: "Third"), try await contact(t, given: "Erased")
        )
        let shared = try await call(t, [second, person], daysAgo: 1)
        try await harness.apply([try event(t, contactType, second, .merged, related: [third])], source: .contacts)
        try await harness.apply([try event(t, contactType, person, .erased, related: ["erasure-1"])], source: .contacts)
        #expect(try await mergeMoves(t).allSatisfy { try !$0.string("before").contains(person) && !$0.string("after").contains(person) })
        try await harness.apply(
            [try event(t, contactType, second, .unmerged, json: contactJSON(second, given: "Second"), related: [third])], source: .contacts)
        let activity = try await harness.pool.query(
            settings: ["app.tenant_id": t], "SELECT contact_ids::text AS ids FROM analytics.activities WHERE tenant_id = $1 AND resource_id = $2",
            [.text(t), .text(shared)]
        ).first
        #expect(try activity?.string("ids") == "{\(second)}")
        #expect(try await client.allEntries(second).contains { $0.resourceId == shared })
        #expect(try await client.allEntries(third).contains { $0.resourceId == shared } == false)
        // The winner's erasure forgets its merges' logs.
        let last = try await contact(t, given: "Last")
        try await harness.apply([try event(t, contactType, second, .merged, related: [last])], source: .contacts)
        #expect(try await !mergeMoves(t).isEmpty)
        try await harness.apply([try event(t, contactType, last, .erased, related: ["erasure-2"])], source: .contacts)
        #expect(try await mergeMoves(t).isEmpty)
    }

    @Test("UNMERGED of a chain (A into B, B into C) in either order: each contact's own entries go home, an activity's follow it")
    func unmergedChains() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        func unmerge(_ loser: String, from winner: String) async throws {
            try await harness.apply(
                [try event(t, contactType, loser, .unmerged, json: contactJSON(loser, given: "Back"), related: [winner])], source: .contacts)
        }
        func kinds(_ id: String, of resource: String) async throws -> [Switchboard_Analytics_V1_EntryKind] {
            try await client.allEntries(id).filter { $0.resourceId == resource }.map(\.kind)
        }
        for firstUnmerged in ["B", "A"] {
            let (a, b, c) = (try await contact(t, given: "A"), try await contact(t, given: "B"), try await contact(t, given: "C"))
            let shared = try await call(t, [a, c], daysAgo: 1)
            try await harness.apply([try event(t, contactType, a, .merged, related: [b])], source: .contacts)
            // Communication re-points the call too, in its own order of ids (not analytics' sorted one).
            try await call(t, [b, c].sorted(by: >), daysAgo: 1, id: shared)
            try await harness.apply([try event(t, contactType, b, .merged, related: [c])], source: .contacts)
            try await call(t, [c], daysAgo: 1, id: shared)
            #expect(try await client.allEntries(a).isEmpty, "\(firstUnmerged)")
            #expect(try await client.allEntries(b).isEmpty, "\(firstUnmerged)")
            if firstUnmerged == "B" {
                try await unmerge(b, from: c)
                try await unmerge(a, from: b)
                // Analytics alone (the call's contacts as a set, then its entries following them): as before the merges.
                #expect(try await kinds(a, of: shared) == [.interaction])
                #expect(try await kinds(b, of: shared).isEmpty)
                #expect(try await kinds(c, of: shared) == [.interaction])
                // Communication moves the call back in the same order: nothing changes.
                try await call(t, [b, c], daysAgo: 1, id: shared)
                try await call(t, [a, c], daysAgo: 1, id: shared)
                #expect(try await kinds(a, of: shared) == [.interaction])
                #expect(try await kinds(b, of: shared).isEmpty)
                #expect(try await kinds(c, of: shared) == [.interaction])
            } else {
                try await unmerge(a, from: b)
                try await unmerge(b, from: c)
            }
            // Each contact's CREATED entry is on its own timeline, whatever the order.
            #expect(try await kinds(a, of: a).contains(.created), "\(firstUnmerged)")
            #expect(try await kinds(b, of: b).contains(.created), "\(firstUnmerged)")
            #expect(try await kinds(c, of: a).isEmpty, "\(firstUnmerged)")
            #expect(try await !kinds(c, of: b).contains(.created), "\(firstUnmerged)")
            #expect(try await !kinds(b, of: a).contains(.created), "\(firstUnmerged)")
            #expect(try await mergeMoves(t).isEmpty, "\(firstUnmerged)")
        }
        // Four links, undone from the top (the last merge first).
        var chain: [String] = []
        for name in ["A", "B", "C", "D"] { chain.append(try await contact(t, given: name)) }
        for i in 0..<3 { try await harness.apply([try event(t, contactType, chain[i], .merged, related: [chain[i + 1]])], source: .contacts) }
        for i in (0..<3).reversed() { try await unmerge(chain[i], from: chain[i + 1]) }
        for (i, id) in chain.enumerated() {
            let created = try await client.allEntries(id).filter { $0.kind == .created }.map(\.resourceId)
            #expect(created == [id], "contact \(i): \(created)")
        }
        #expect(try await mergeMoves(t).isEmpty)
    }

    /// A stream's call options for the watch tests: it waits up to two minutes for what it expects. A stream emits only
    /// entries below the oldest transaction open anywhere in the cluster, and in a full run another suite's long write
    /// (thousands of rows in one transaction, on a loaded machine) holds that back for tens of seconds.
    private static func watchOptions(_ client: AnalyticsClient) -> CallOptions {
        var options = client.options
        options.timeout = .seconds(120)
        return options
    }

    /// What holds the snapshot's xmin back (the oldest open transactions with an id, anywhere in the cluster), for the
    /// message of a watch test that saw nothing in time.
    private static func oldestWriters(_ harness: AnalyticsHarness) async -> String {
        // As the administrator: a service's role does not see other roles' sessions.
        let admin = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: harness.analytics.adminDatabaseConninfo, maxConnections: 1))
        defer { admin.close() }
        let rows = try? await admin.query(
            """
            SELECT coalesce(datname, '?') || ', ' || coalesce(extract(epoch FROM now() - xact_start)::int::text, '?') || ' s: '
                || coalesce(left(query, 120), '?') AS line
            FROM pg_stat_activity WHERE backend_xid IS NOT NULL ORDER BY xact_start LIMIT 3
            """)
        return (try? rows?.rows.map { try $0.string("line") }.joined(separator: "; ")) ?? "unknown"
    }

    /// Calls of `contact` logged one every 300 ms for nine seconds: a stream that sees one is live.
    private static func probes(_ harness: AnalyticsHarness, _ t: String, _ contact: String) async throws {
        for _ in 0..<30 {
            try await Task.sleep(for: .milliseconds(300))
            let probe = newID()
            try await harness.apply(
                [try event(t, interactionType, probe, .created, json: interactionJSON(probe, contacts: [contact], occurredAt: Date()))],
                source: .communication)
        }
    }

    @Test("WatchTimeline of a merged-away contact streams what its UNMERGED brings back: its own entries, its activities' and the UNMERGED")
    func watchUnmerged() async throws {
        let t = tenant()
        let (loser, winner) = (try await contact(t, given: "Loser"), try await contact(t, given: "Winner"))
        try await call(t, [loser], daysAgo: 1)
        try await harness.apply([try event(t, contactType, loser, .merged, related: [winner])], source: .contacts)
        let client = try await harness.client(tenant: t)
        let request = {
            var r = Switchboard_Analytics_V1_WatchTimelineRequest()
            r.subjectType = .contact
            r.subjectId = loser
            return r
        }()
        // The stream is known to be live once it sees a call logged after it started (the probes, one every 300 ms);
        // then the UNMERGED is applied, and what it brings back must stream.
        let unmerged: @Sendable () async throws -> Void = { [harness] in
            try await harness.apply(
                [try event(t, contactType, loser, .unmerged, json: contactJSON(loser, given: "Loser"), related: [winner])], source: .contacts)
        }
        let streamed = try await firstWithin(.seconds(100)) {
            try await client.stub.watchTimeline(request, options: Self.watchOptions(client)) { entries in
                var kinds = Set<Switchboard_Analytics_V1_EntryKind>()
                for try await entry in entries {
                    if kinds.isEmpty { try await unmerged() }
                    kinds.insert(entry.kind)
                    if kinds.isSuperset(of: [.created, .unmerged]) { return true }
                }
                return false
            }
        } during: { [harness] in
            try await FactsTests.probes(harness, t, loser)
        }
        let writers = streamed == true ? "" : await Self.oldestWriters(harness)
        #expect(streamed == true, "nothing streamed in time; the oldest open transactions: \(writers)")
    }

    @Test("WatchTimeline skips an entry visible at its start by its position: moved away and back, it streams as new")
    func watchSkipsByPosition() async throws {
        let t = tenant()
        let (loser, winner) = (try await contact(t, given: "Loser"), try await contact(t, given: "Winner"))
        // A transaction held open keeps the snapshot's xmin below what is ingested next, so the stream's start lists the
        // loser's UPDATED entry among those visible above its position (the case the skip exists for).
        let held = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: harness.analytics.serviceConninfo, maxConnections: 1))
        defer { held.close() }
        let (beginning, began) = AsyncStream<Void>.makeStream()
        let (releasing, release) = AsyncStream<Void>.makeStream()
        let holder = Task {
            // Whatever happens to the transaction, the test stops waiting for it to begin.
            defer { began.finish() }
            try await held.transaction(settings: ["app.tenant_id": t]) { c in
                _ = try await c.query("SELECT pg_current_xact_id()::text AS xid", [])
                began.yield()
                for await _ in releasing { break }
            }
        }
        defer {
            release.finish()
            holder.cancel()
        }
        for await _ in beginning { break }
        // Only a transaction that began (took its id) holds the snapshot's xmin back.
        let holding = try await harness.analytics.pool.query(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND datname = current_database()")
        #expect(try holding.first!.int("n") >= 1)
        var renamed = try event(t, contactType, loser, .updated, json: contactJSON(loser, given: "Loser Renamed"))
        renamed.changedFields = ["name.given"]
        try await harness.apply([renamed], source: .contacts)

        let client = try await harness.client(tenant: t)
        let request = {
            var r = Switchboard_Analytics_V1_WatchTimelineRequest()
            r.subjectType = .contact
            r.subjectId = loser
            return r
        }()
        let mergeAndBack: @Sendable () async throws -> Void = { [harness] in
            try await harness.apply([try event(t, contactType, loser, .merged, related: [winner])], source: .contacts)
            try await harness.apply(
                [try event(t, contactType, loser, .unmerged, json: contactJSON(loser, given: "Loser Renamed"), related: [winner])],
                source: .contacts)
        }
        let streamed = try await firstWithin(.seconds(100)) {
            try await client.stub.watchTimeline(request, options: Self.watchOptions(client)) { entries in
                var moved = false
                var kinds = Set<Switchboard_Analytics_V1_EntryKind>()
                for try await entry in entries {
                    // Visible at the start, the UPDATED entry is not new then; it streams only once it came back.
                    if entry.kind == .updated && !moved {
                        Issue.record("the UPDATED entry visible at the stream's start was streamed as new")
                        return false
                    }
                    if !moved {
                        try await mergeAndBack()
                        moved = true
                        continue
                    }
                    kinds.insert(entry.kind)
                    if kinds.isSuperset(of: [.updated, .unmerged]) { return true }
                }
                return false
            }
        } during: { [harness] in
            // The stream reads nothing newer than the oldest open transaction, so the held one ends once the stream has
            // had two seconds to start (read its position and the entries visible above it); then the probes show it
            // live. Should the stream start later than that (a loaded machine), the entry is below its position, and the
            // test passes without testing the skip: it cannot fail falsely. Two seconds also bound how long every other
            // suite's change feed (fenced by the same cluster-wide xmin) waits.
            try await Task.sleep(for: .seconds(2))
            release.finish()
            try await FactsTests.probes(harness, t, loser)
        }
        let writers = streamed == true ? "" : await Self.oldestWriters(harness)
        #expect(streamed == true, "nothing streamed in time; the oldest open transactions: \(writers)")
    }

    @Test("ERASED deletes the person's rows, keeps anonymous aggregates, redacts analytics' own events and publishes a receipt")
    func erased() async throws {
        let t = tenant()
        let person = try await contact(t, given: "Erased", email: "erased@example.com")
        let other = try await contact(t, given: "Other")
        try await call(t, [person], daysAgo: 1)
        try await call(t, [person, other], daysAgo: 1)
        var updated = try event(
            t, contactType, person, .updated,
            json: contactJSON(person, given: "Erased", email: "erased@example.com", status: "CONTACT_STATUS_CUSTOMER"))
        updated.changedFields = ["status"]
        try await harness.apply([updated], source: .contacts)
        #expect(try await changes(t, type: "switchboard.analytics.v1.LifecycleTransition").count == 1)
        let client = try await harness.client(tenant: t, roles: [.admin])
        // Before: ExportSubject streams the contact's snapshot, its timeline, metrics and score.
        let before = try await exportSubject(client, person)
        guard case .contact(let snapshot) = before.first?.record else {
            Issue.record("no snapshot first: \(before)")
            return
        }
        #expect(snapshot.email == "erased@example.com" && snapshot.status == "CUSTOMER")
        #expect(before.count == 1 + 4 + 2)

        try await harness.apply([try event(t, contactType, person, .erased, related: ["erasure-1"])], source: .contacts)
        #expect(try await client.allEntries(person).isEmpty)
        let metrics = try await client.metrics(person)
        #expect(metrics.interactions == 0 && metrics.lifecycleStage.isEmpty && metrics.stageHistory.isEmpty)
        #expect(try await client.metrics(other).interactions == 1)
        // Anonymous aggregates stay: both calls still count by kind.
        var stats = Switchboard_Analytics_V1_GetActivityStatsRequest()
        stats.startTime = Date().addingTimeInterval(-7 * 86_400)
        stats.endTime = Date().addingTimeInterval(86_400)
        stats.groupBy = .kind
        #expect(try await client.stub.getActivityStats(stats, options: client.options).total == 2)
        // Nothing names the person any more: no contact row, the transition reduced to its id.
        let rows = try await harness.pool.query(
            settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM analytics.contacts WHERE tenant_id = $1 AND id = $2",
            [.text(t), .uuid(UUID(uuidString: person)!)]
        ).first!.int("n")
        #expect(rows == 0)
        let transition = try await changes(t, type: "switchboard.analytics.v1.LifecycleTransition")
        let transitionText = try transition[0].string("resource")
        #expect(transition.count == 1 && !transitionText.contains(person))
        let receipts = try await changes(t, type: "switchboard.analytics.v1.ErasureReceipt")
        #expect(receipts.count == 1)
        let receipt = try Switchboard_Analytics_V1_ErasureReceipt(protoJSONText: try receipts[0].string("resource"))
        #expect(receipt.contactId == person && receipt.erasureRequestId == "erasure-1")
        #expect(receipt.timelineEntriesDeleted == 4 && receipt.activitiesChanged == 2 && receipt.stageChangesDeleted == 2)
        #expect(receipt.changesRedacted >= 1)
        // ExportSubject finds nothing but empty metrics and a zero score.
        #expect(try await exportSubject(client, person).count == 2)
    }

    @Test("a private interaction, whole on communication's cross-tenant feed, counts about nobody: no timeline entry, no metric")
    func privateInteractions() async throws {
        let t = tenant()
        let person = try await contact(t)
        try await call(t, [person], daysAgo: 1)
        let id = newID()
        let whole =
            String(interactionJSON(id, contacts: [person], occurredAt: Date()).dropLast())
            + #","visibility":"VISIBILITY_PRIVATE","subject":"secret"}"#
        try await harness.apply([try event(t, interactionType, id, .created, json: whole)], source: .communication)
        let reader = try await harness.client(tenant: t)
        let entries = try await reader.allEntries(person)
        #expect(entries.count == 2 && !entries.contains { $0.resourceId == id }, "\(entries)")
        #expect(try await reader.metrics(person).interactions == 1)
    }

    @Test("the engagement score equals a hand computation to 0.01, with its components; changing the model re-scores")
    func score() async throws {
        let t = tenant()
        let person = try await contact(t)
        try await call(t, [person], daysAgo: 7)
        try await call(t, [person], daysAgo: 30)
        try await call(t, [person], daysAgo: 1, kind: "INTERACTION_KIND_EMAIL")
        let noteID = newID()
        let created = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-3 * 86_400))
        try await harness.apply(
            [
                try event(
                    t, "switchboard.collaboration.v1.Note", noteID, .created,
                    json:
                        "{\"id\":\"\(noteID)\",\"subjects\":[{\"type\":\"SUBJECT_TYPE_CONTACT\",\"id\":\"\(person)\"}],\"audit\":{\"createTime\":\"\(created)\"}}"
                )
            ], source: .collaboration)
        let manager = try await harness.client(tenant: t, roles: [.manager])
        // The default model: every kind weighs 1, half-life 30 days.
        let initial = try await manager.score(person)
        #expect(initial.modelVersion == 0 && initial.halfLifeDays == 30)
        let model = try await manager.setModel(["call": 10, "email": 2, "note": 1], halfLife: 14)
        #expect(model.version == 1)
        let scored = try await manager.score(person)
        let asOf = scored.asOf!
        func decay(_ daysAgo: Double, _ halfLife: Double) -> Double {
            // The activity times the test wrote, measured to the response's as_of.
            pow(0.5, (asOf.timeIntervalSinceNow + daysAgo * 86_400) / 86_400 / halfLife)
        }
        let expected = 10 * (decay(7, 14) + decay(30, 14)) + 2 * decay(1, 14) + 1 * decay(3, 14)
        #expect(abs(scored.score - expected) < 0.01, "score \(scored.score), by hand \(expected)")
        let components = Dictionary(uniqueKeysWithValues: scored.components.map { ($0.kind, $0) })
        #expect(components["call"]?.count == 2 && components["call"]?.weight == 10)
        #expect(abs((components["call"]?.contribution ?? 0) - 10 * (decay(7, 14) + decay(30, 14))) < 0.01)
        #expect(abs(scored.components.reduce(0) { $0 + $1.contribution } - scored.score) < 1e-9)

        let changed = try await manager.setModel(["call": 1], halfLife: 7)
        #expect(changed.version == 2)
        let rescored = try await manager.score(person)
        let asOf2 = rescored.asOf!
        let expected2 =
            pow(0.5, (asOf2.timeIntervalSinceNow + 7 * 86_400) / 86_400 / 7) + pow(0.5, (asOf2.timeIntervalSinceNow + 30 * 86_400) / 86_400 / 7)
        #expect(abs(rescored.score - expected2) < 0.01)
        // Ranking by score follows the model.
        var top = Switchboard_Analytics_V1_ListTopRequest()
        top.subjectType = .contact
        top.metric = .engagementScore
        let ranked = try await manager.stub.listTop(top, options: manager.options).entries
        #expect(ranked.first?.subjectId == person && abs((ranked.first?.value ?? 0) - rescored.score) < 0.01)
        // A deleted contact is ranked no more (as reports and the funnel leave it out); restored, it is again.
        try await harness.apply([try event(t, contactType, person, .deleted, json: contactJSON(person, given: "Ada"))], source: .contacts)
        #expect(try await manager.stub.listTop(top, options: manager.options).entries.allSatisfy { $0.subjectId != person })
        top.metric = .interactions
        #expect(try await manager.stub.listTop(top, options: manager.options).entries.allSatisfy { $0.subjectId != person })
        top.metric = .engagementScore
        #expect(try await changes(t, type: "switchboard.analytics.v1.ScoringModel").count == 2)
    }

    @Test(
        "reports: columns with custom fields, filters, grouping; RunReport streams rows; ExportReport streams CSV in bounded chunks read page by page"
    )
    func reports() async throws {
        let t = tenant()
        var ids: [String] = []
        for i in 0..<40 {
            let id = try await contact(
                t, given: "Person \(i), \\\"quoted\\\"", email: "p\(i)@example.com", custom: "{\"tier\":\"\(i % 4 == 0 ? "gold" : "silver")\"}")
            ids.append(id)
            if i % 4 == 0 { try await call(t, [id], daysAgo: 1) }
        }
        let client = try await harness.client(tenant: t)
        let report = try await client.createReport(
            "Gold", columns: ["contact_id", "display_name", "email", "custom.tier", "interactions"], filters: [("custom.tier", "eq", "gold")])
        let rows = try await client.runReport(report.id)
        #expect(rows.first?.header == true && rows.first?.values == ["contact_id", "display_name", "email", "custom.tier", "interactions"])
        #expect(rows.count == 11)
        #expect(rows.dropFirst().allSatisfy { $0.values[3] == "gold" && $0.values[4] == "1" })
        #expect(Set(rows.dropFirst().map { $0.values[0] }) == Set(ids.enumerated().filter { $0.offset % 4 == 0 }.map(\.element)))

        // Activity columns are aggregated once per page: each row equals what the per-contact RPCs say.
        let activity = try await client.createReport(
            "Activity", columns: ["contact_id", "activities", "interactions", "last_contact_time", "engagement_score"])
        let activityRows = try await client.runReport(activity.id).dropFirst()
        #expect(activityRows.count == 40)
        for row in activityRows {
            let values = row.values
            let gold = ids.enumerated().contains { $0.offset % 4 == 0 && $0.element == values[0] }
            #expect(values[1] == (gold ? "1" : "0") && values[2] == (gold ? "1" : "0"), "\(values)")
            #expect(values[3].isEmpty != gold, "\(values)")
            let score = try await client.score(values[0])
            #expect(abs((Double(values[4]) ?? -1) - score.score) < 0.0001, "\(values) vs \(score.score)")
        }

        let all = try await client.createReport("All", columns: ["contact_id", "display_name", "email", "custom.tier"])
        let chunks = try await client.exportReport(all.id)
        #expect(chunks.count > 1)
        #expect(chunks.allSatisfy { $0.count <= Self.limits.exportChunkBytes })
        let csv = String(decoding: chunks.flatMap { $0 }, as: UTF8.self)
        let lines = csv.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(lines.count == 41)
        #expect(lines[0] == "contact_id,display_name,email,custom.tier")
        #expect(lines.contains { $0.contains("\"Person 3, \"\"quoted\"\" Lovelace\"") })
        // Rows come in id order, each exactly once, across the 10-row pages.
        let exported = lines.dropFirst().map { String($0.prefix(36)) }
        #expect(exported == ids.sorted())

        let grouped = try await client.createReport("By tier", columns: [], groupBy: "custom.tier")
        let groups = try await client.runReport(grouped.id)
        #expect(groups.map(\.values) == [["custom.tier", "count"], ["gold", "10"], ["silver", "30"]])

        var list = Switchboard_Analytics_V1_ListReportsRequest()
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = 2
        list.page = page
        let listed = try await client.stub.listReports(list, options: client.options)
        #expect(listed.reports.map(\.id) == [report.id, activity.id] && !(listed.page?.nextPageToken ?? "").isEmpty)
    }

    @Test("report filters compare a number field's values as numbers, tags as a set, emails without case; groups come in value order")
    func reportComparisons() async throws {
        let t = tenant()
        let alice = try await contact(t, given: "Alice", email: "Alice@example.com", custom: #"{"score": 10, "code": "10"}"#, tags: ["a", "vip"])
        let bob = try await contact(t, given: "Bob", custom: #"{"score": 9, "code": "9"}"#, tags: ["vip"])
        let carol = try await contact(t, given: "Carol", custom: #"{"score": 100}"#)
        let eve = try await contact(t, given: "Eve", custom: #"{"code": "n/a"}"#, tags: ["b;c"])
        try await call(t, [alice], daysAgo: 1)
        for _ in 0..<2 { try await call(t, [bob], daysAgo: 1) }
        for _ in 0..<10 { try await call(t, [carol], daysAgo: 1) }
        let client = try await harness.client(tenant: t)
        func ids(_ filters: [(String, String, String)]) async throws -> Set<String> {
            let report = try await client.createReport("r", columns: ["contact_id"], filters: filters)
            return Set(try await client.runReport(report.id).dropFirst().map { $0.values[0] })
        }
        #expect(try await ids([("custom.score", "gt", "5")]) == [alice, bob, carol])
        #expect(try await ids([("custom.score", "lt", "50")]) == [alice, bob])
        #expect(try await ids([("custom.score", "eq", "10.0")]) == [alice])
        // A value stored as text compares as text, as before ("10" < "5"); a contact without the field matches only ne.
        #expect(try await ids([("custom.code", "lt", "5")]) == [alice])
        #expect(try await ids([("custom.score", "ne", "10")]) == [bob, carol, eve])
        #expect(try await ids([("custom.code", "eq", "n/a")]) == [eve])
        #expect(try await ids([("tags", "eq", "vip")]) == [alice, bob])
        #expect(try await ids([("tags", "eq", " VIP ")]) == [alice, bob])
        // A hex float is not a number here (PostgreSQL's numeric refuses it): compared as text, it runs.
        #expect(try await ids([("custom.score", "gt", "0x1p3")]) == [alice, bob, carol])
        #expect(try await ids([("tags", "ne", "vip")]) == [carol, eve])
        #expect(try await ids([("tags", "contains", "B;")]) == [eve])
        #expect(try await ids([("tags", "exists", "")]) == [alice, bob, eve])
        #expect(try await ids([("email", "eq", "alice@EXAMPLE.com")]) == [alice])
        #expect(try await ids([("activities", "exists", "")]) == [alice, bob, carol])
        #expect(
            await rpcError { _ = try await client.createReport("r", columns: ["contact_id"], filters: [("tags", "gt", "a")]) }?.code
                == .invalidArgument)

        func groups(_ column: String) async throws -> [[String]] {
            let report = try await client.createReport("g", columns: [], groupBy: column)
            return try await client.runReport(report.id).dropFirst().map(\.values)
        }
        #expect(try await groups("activities") == [["0", "1"], ["1", "1"], ["2", "1"], ["10", "1"]])
        #expect(try await groups("custom.score") == [["9", "1"], ["10", "1"], ["100", "1"], ["", "1"]])
        #expect(try await groups("custom.code") == [["9", "1"], ["10", "1"], ["", "1"], ["n/a", "1"]])
        #expect(try await groups("tags") == [["", "1"], ["a", "1"], ["b;c", "1"], ["vip", "2"]])

        // A spreadsheet-safe export writes a cell that would run as a formula as text.
        _ = try await contact(t, given: "=HYPERLINK(1)", custom: #"{"code": "-5"}"#)
        let names = try await client.createReport("names", columns: ["display_name", "custom.code"], filters: [("custom.code", "eq", "-5")])
        let safe = String(decoding: try await client.exportReport(names.id, spreadsheetSafe: true).flatMap { $0 }, as: UTF8.self)
        #expect(safe.hasSuffix("'=HYPERLINK(1) Lovelace,'-5\r\n"), "\(safe)")
        let plain = String(decoding: try await client.exportReport(names.id).flatMap { $0 }, as: UTF8.self)
        #expect(plain.hasSuffix("=HYPERLINK(1) Lovelace,-5\r\n"), "\(plain)")
    }

    @Test("a scheduled report runs when due, once per period, and its run is published with its row count")
    func scheduledRuns() async throws {
        let t = tenant()
        for i in 0..<3 { _ = try await contact(t, given: "Scheduled \(i)") }
        let client = try await harness.client(tenant: t)
        var report = Switchboard_Analytics_V1_ReportDefinition()
        report.name = "Daily"
        report.columns = ["contact_id", "display_name"]
        report.scheduleHours = 24
        var create = Switchboard_Analytics_V1_CreateReportRequest()
        create.report = report
        let stored = try await client.stub.createReport(create, options: client.options)
        #expect(stored.scheduleHours == 24)
        report.scheduleHours = 721
        create.report = report
        #expect(fields(await rpcError { _ = try await client.stub.createReport(create, options: client.options) }) == ["report.schedule_hours"])

        let domain = AnalyticsDomain(
            store: AnalyticsService.store(pool: harness.pool), limits: Self.limits, wakeups: { _ in AsyncStream { $0.finish() } })
        // Not due yet: nothing runs.
        _ = try await domain.runDueReports(limit: 100, spec: AnalyticsService.reportSpec)
        #expect(try await changes(t, type: "switchboard.analytics.v1.ReportRun").isEmpty)
        // Due (as if a day had passed): it runs once, and the next run is a period later.
        _ = try await harness.pool.query(
            settings: ["app.tenant_id": t], "UPDATE analytics.reports SET next_run_at = now() - interval '1 minute' WHERE tenant_id = $1 AND id = $2",
            [.text(t), .uuid(UUID(uuidString: stored.id)!)])
        _ = try await domain.runDueReports(limit: 100, spec: AnalyticsService.reportSpec)
        _ = try await domain.runDueReports(limit: 100, spec: AnalyticsService.reportSpec)
        let runs = try await changes(t, type: "switchboard.analytics.v1.ReportRun")
        #expect(runs.count == 1)
        let run = try Switchboard_Analytics_V1_ReportRun(protoJSONText: try runs[0].string("resource"))
        #expect(run.reportId == stored.id && run.rows == 3 && run.csvBytes > 0)
        let next = try await harness.pool.query(
            settings: ["app.tenant_id": t],
            "SELECT next_run_at > now() + interval '23 hours' AS later FROM analytics.reports WHERE tenant_id = $1 AND id = $2",
            [.text(t), .uuid(UUID(uuidString: stored.id)!)]
        ).first!.bool("later")
        #expect(next)
    }

    @Test("dashboards return every widget's data in one call; alerts fire once per crossing on analytics' feed")
    func dashboardsAndAlerts() async throws {
        let t = tenant()
        let person = try await contact(t)
        let manager = try await harness.client(tenant: t, roles: [.manager])
        let stored = try await busyAlert(t, threshold: 2)
        try await call(t, [person], daysAgo: 1)
        #expect(try await changes(t, type: "switchboard.analytics.v1.AlertFired").isEmpty)
        try await call(t, [person], daysAgo: 1)
        try await call(t, [person], daysAgo: 1)
        let fired = try await changes(t, type: "switchboard.analytics.v1.AlertFired")
        #expect(fired.count == 1)
        let payload = try Switchboard_Analytics_V1_AlertFired(protoJSONText: try fired[0].string("resource"))
        #expect(payload.alertId == stored.id && payload.contactId == person && payload.value == 2)
        // Who to tell: the alert's creator (the collaboration service notifies them), and the alert's name.
        #expect(payload.ownerId == "user-1" && payload.alertName == "Busy")

        let report = try await manager.createReport("Everyone", columns: ["contact_id", "interactions"])
        var dashboard = Switchboard_Analytics_V1_Dashboard()
        dashboard.name = "Sales"
        dashboard.widgets = [
            ("activity_stats", Switchboard_Analytics_V1_Grouping.kind), ("completeness", .unspecified), ("report", .unspecified),
            ("funnel", .unspecified),
        ]
        .map { type, grouping in
            var w = Switchboard_Analytics_V1_Widget()
            w.type = type
            w.groupBy = grouping
            w.reportId = type == "report" ? report.id : ""
            return w
        }
        var top = Switchboard_Analytics_V1_Widget()
        top.type = "top"
        top.subjectType = .contact
        top.metric = .interactions
        dashboard.widgets.append(top)
        var createDashboard = Switchboard_Analytics_V1_CreateDashboardRequest()
        createDashboard.dashboard = dashboard
        let saved = try await manager.stub.createDashboard(createDashboard, options: manager.options)
        var get = Switchboard_Analytics_V1_GetDashboardRequest()
        get.id = saved.id
        let data = try await manager.stub.getDashboardData(get, options: manager.options)
        #expect(data.widgets.count == 5)
        guard case .activityStats(let stats) = data.widgets[0].data else {
            Issue.record("no activity stats")
            return
        }
        #expect(stats.buckets.map(\.key) == ["call"] && stats.total == 3)
        guard case .completeness(let completeness) = data.widgets[1].data else {
            Issue.record("no completeness")
            return
        }
        #expect(completeness.contacts == 1)
        guard case .report(let rows) = data.widgets[2].data else {
            Issue.record("no report")
            return
        }
        #expect(rows.rows.map(\.values) == [["contact_id", "interactions"], [person, "3"]])
        guard case .top(let ranked) = data.widgets[4].data else {
            Issue.record("no top")
            return
        }
        #expect(ranked.entries.map(\.subjectId) == [person])

        // A report widget names a report of the tenant; another tenant's report, or none, is refused naming the field.
        let stranger = try await harness.client(tenant: tenant(), roles: [.manager])
        var foreign = createDashboard
        foreign.dashboard!.widgets[2].reportId = try await stranger.createReport("Theirs", columns: ["contact_id"]).id
        #expect(
            fields(await rpcError { _ = try await manager.stub.createDashboard(foreign, options: manager.options) }) == [
                "dashboard.widgets[2].report_id"
            ])
        foreign.dashboard!.widgets[2].reportId = newID()
        #expect(
            fields(await rpcError { _ = try await manager.stub.createDashboard(foreign, options: manager.options) }) == [
                "dashboard.widgets[2].report_id"
            ])
        foreign.dashboard!.widgets[0].groupBy = .unspecified
        #expect(
            fields(await rpcError { _ = try await manager.stub.createDashboard(foreign, options: manager.options) }) == [
                "dashboard.widgets[0].group_by"
            ])
        // Only the report's creator, or a manager, may delete it; a dashboard showing it then says the report is gone.
        let user = try await harness.client(tenant: t, user: "user-2")
        var delete = Switchboard_Analytics_V1_DeleteReportRequest()
        delete.id = report.id
        #expect(await rpcError { _ = try await user.stub.deleteReport(delete, options: user.options) }?.code == .permissionDenied)
        #expect(try await manager.stub.getDashboardData(get, options: manager.options).widgets[2].error == nil)
        _ = try await manager.stub.deleteReport(delete, options: manager.options)
        let after = try await manager.stub.getDashboardData(get, options: manager.options)
        #expect(after.widgets[2].error?.code == Int32(StatusCode.notFound.rawValue), "\(after.widgets[2])")
        #expect(after.widgets[0].error == nil && after.widgets.count == 5)
    }

    @Test("ListTop ranks only contacts the feed brought: an unknown id in an activity is not a contact")
    func topOnlyKnownSubjects() async throws {
        let t = tenant()
        let person = try await contact(t)
        let unknown = newID()
        try await call(t, [person, unknown], daysAgo: 1)
        try await call(t, [unknown], daysAgo: 1)
        let client = try await harness.client(tenant: t)
        var top = Switchboard_Analytics_V1_ListTopRequest()
        top.subjectType = .contact
        for metric: Switchboard_Analytics_V1_Metric in [.interactions, .engagementScore] {
            top.metric = metric
            #expect(try await client.stub.listTop(top, options: client.options).entries.map(\.subjectId) == [person])
        }
    }

    @Test("an event that cannot be applied is set aside and the rest of the batch is applied")
    func setAside() async throws {
        let t = tenant()
        let good = newID()
        try await harness.apply(
            [
                try event(t, contactType, "not-a-uuid", .created),
                try event(t, interactionType, newID(), .created, json: "{\"kind\":12}"),
                try event(t, contactType, good, .created, json: contactJSON(good)),
            ], source: .contacts)
        let client = try await harness.client(tenant: t)
        #expect(try await client.allEntries(good).count == 1)
        let dead = try await harness.pool.query(
            settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM analytics.feed_dead_letters WHERE tenant_id = $1", [.text(t)]
        ).first!.int("n")
        #expect(dead == 1)
    }

    @Test("every read RPC shows a tenant only its own facts and definitions")
    func tenantIsolation() async throws {
        let (a, b) = (tenant(), tenant())
        let person = try await contact(a, email: "a@example.com")
        try await call(a, [person], daysAgo: 1)
        let ownerA = try await harness.client(tenant: a, roles: [.admin])
        _ = try await ownerA.setModel(["call": 5], halfLife: 10)
        let report = try await ownerA.createReport("A's", columns: ["contact_id"])
        var dashboard = Switchboard_Analytics_V1_Dashboard()
        dashboard.name = "A's"
        var widget = Switchboard_Analytics_V1_Widget()
        widget.type = "completeness"
        dashboard.widgets = [widget]
        var createDashboard = Switchboard_Analytics_V1_CreateDashboardRequest()
        createDashboard.dashboard = dashboard
        let savedDashboard = try await ownerA.stub.createDashboard(createDashboard, options: ownerA.options)

        let other = try await harness.client(tenant: b, user: "user-b", roles: [.admin])
        #expect(try await other.allEntries(person).isEmpty)
        let metrics = try await other.metrics(person)
        #expect(metrics.interactions == 0 && metrics.counts.isEmpty && metrics.lifecycleStage.isEmpty)
        var stats = Switchboard_Analytics_V1_GetActivityStatsRequest()
        stats.startTime = Date().addingTimeInterval(-7 * 86_400)
        stats.endTime = Date().addingTimeInterval(86_400)
        stats.groupBy = .user
        #expect(try await other.stub.getActivityStats(stats, options: other.options).total == 0)
        #expect(try await other.stub.getLifecycleFunnel(.init(), options: other.options).steps.allSatisfy { $0.reached == 0 })
        var top = Switchboard_Analytics_V1_ListTopRequest()
        top.subjectType = .contact
        top.metric = .activities
        #expect(try await other.stub.listTop(top, options: other.options).entries.isEmpty)
        #expect(try await other.stub.getDataCompleteness(.init(), options: other.options).contacts == 0)
        #expect(try await other.stub.getScoringModel(.init(), options: other.options).version == 0)
        #expect(try await other.score(person).score == 0)
        var getReport = Switchboard_Analytics_V1_GetReportRequest()
        getReport.id = report.id
        #expect(await rpcError { _ = try await other.stub.getReport(getReport, options: other.options) }?.code == .notFound)
        #expect(try await other.stub.listReports(.init(), options: other.options).reports.isEmpty)
        #expect(await rpcError { _ = try await other.runReport(report.id) }?.code == .notFound)
        #expect(await rpcError { _ = try await other.exportReport(report.id) }?.code == .notFound)
        var getDashboard = Switchboard_Analytics_V1_GetDashboardRequest()
        getDashboard.id = savedDashboard.id
        #expect(await rpcError { _ = try await other.stub.getDashboard(getDashboard, options: other.options) }?.code == .notFound)
        #expect(await rpcError { _ = try await other.stub.getDashboardData(getDashboard, options: other.options) }?.code == .notFound)
        #expect(try await other.stub.listAlerts(.init(), options: other.options).alerts.isEmpty)
        var export = Switchboard_Analytics_V1_ExportSubjectRequest()
        export.contactId = person
        let exported = try await other.stub.exportSubject(export, options: other.options) { stream in
            var all: [Switchboard_Analytics_V1_SubjectRecord] = []
            for try await record in stream { all.append(record) }
            return all
        }
        #expect(!exported.contains { if case .timelineEntry = $0.record { return true } else { return false } })
        // WatchChanges of B sees none of A's events; WatchTimeline of B on A's contact sees none of A's new entries.
        let watch = Switchboard_Common_V1_WatchChangesRequest()
        let seen = try await firstWithin(.milliseconds(800)) {
            try await other.stub.watchChanges(watch, options: other.options) { events in
                for try await _ in events { return true }
                return false
            }
        }
        #expect(seen != true)
        let timelineRequest = {
            var r = Switchboard_Analytics_V1_WatchTimelineRequest()
            r.subjectType = .contact
            r.subjectId = person
            return r
        }()
        let streamed = try await firstWithin(.milliseconds(1500)) {
            try await other.stub.watchTimeline(timelineRequest, options: other.options) { entries in
                for try await _ in entries { return true }
                return false
            }
        } during: { [harness] in
            try await Task.sleep(for: .milliseconds(300))
            let id = newID()
            try await harness.apply(
                [try event(a, interactionType, id, .created, json: interactionJSON(id, contacts: [person], occurredAt: Date()))],
                source: .communication)
        }
        #expect(streamed != true)
    }

    @Test("roles: reads need read-only, reports and dashboards user, models and alerts manager, ExportSubject admin; no token is UNAUTHENTICATED")
    func roles() async throws {
        let t = tenant()
        let person = try await contact(t)
        let none = AnalyticsClient(
            stub: AnalyticsStub(client: RPCClient(transport: harness.analytics.channel)), options: CallOptions(timeout: .seconds(30)))
        #expect(await rpcError { _ = try await none.metrics(person) }?.code == .unauthenticated)
        let service = try await harness.client(tenant: t, token: try await ServiceHarness.serviceToken())
        #expect(await rpcError { _ = try await service.metrics(person) }?.code == .permissionDenied)
        let readOnly = try await harness.client(tenant: t, roles: [.readOnly])
        _ = try await readOnly.metrics(person)
        _ = try await readOnly.timeline(person)
        #expect(await rpcError { _ = try await readOnly.createReport("r", columns: ["contact_id"]) }?.code == .permissionDenied)
        let user = try await harness.client(tenant: t, roles: [.user])
        _ = try await user.createReport("r", columns: ["contact_id"])
        #expect(await rpcError { _ = try await user.setModel(["call": 2], halfLife: 30) }?.code == .permissionDenied)
        var alert = Switchboard_Analytics_V1_CreateAlertRequest()
        alert.alert = {
            var a = Switchboard_Analytics_V1_Alert()
            a.name = "x"
            a.metric = .interactions
            a.direction = .above
            return a
        }()
        #expect(await rpcError { _ = try await user.stub.createAlert(alert, options: user.options) }?.code == .permissionDenied)
        let manager = try await harness.client(tenant: t, roles: [.manager])
        _ = try await manager.setModel(["call": 2], halfLife: 30, requestID: "model-1")
        // A retry with the same request id replays the first response and changes nothing; the id reused for another
        // model is refused.
        #expect(try await manager.setModel(["call": 2], halfLife: 30, requestID: "model-1").version == 1)
        #expect(await rpcError { _ = try await manager.setModel(["call": 3], halfLife: 30, requestID: "model-1") }?.code == .invalidArgument)
        _ = try await manager.stub.createAlert(alert, options: manager.options)
        var export = Switchboard_Analytics_V1_ExportSubjectRequest()
        export.contactId = person
        #expect(
            await rpcError {
                _ = try await manager.stub.exportSubject(export, options: manager.options) { stream in for try await _ in stream {} }
            }?.code == .permissionDenied)
    }

    @Test("bounds: page size capped, ranges, limits, kinds, stream counts, definitions and bad input name their fields")
    func bounds() async throws {
        let t = tenant()
        let person = try await contact(t)
        for _ in 0..<7 { try await call(t, [person], daysAgo: 1) }
        let client = try await harness.client(tenant: t, roles: [.manager])
        let page = try await client.timeline(person, pageSize: 10_000)
        #expect(page.entries.count == Self.limits.maxPageSize)
        #expect(try await client.allEntries(person, pageSize: 3).count == 8)
        #expect(fields(await rpcError { _ = try await client.timeline(person, pageSize: -1) }) == ["page.page_size"])
        #expect(fields(await rpcError { _ = try await client.timeline(person, token: "garbage") }) == ["page.page_token"])
        let otherFilter = try await client.timeline(person, pageSize: 3)
        #expect(
            fields(await rpcError { _ = try await client.timeline(person, pageSize: 3, token: otherFilter.page!.nextPageToken) { $0.actorId = "x" } })
                == ["page.page_token"])
        #expect(fields(await rpcError { _ = try await client.timeline("nope") }) == ["subject_id"])
        #expect(fields(await rpcError { _ = try await client.timeline(person, type: .unspecified) }) == ["subject_type"])
        #expect(fields(await rpcError { _ = try await client.timeline(person) { $0.kinds = Array(repeating: .note, count: 17) } }) == ["kinds"])
        #expect(fields(await rpcError { _ = try await client.metrics("") }) == ["contact_id"])

        var stats = Switchboard_Analytics_V1_GetActivityStatsRequest()
        stats.groupBy = .day
        stats.startTime = Date().addingTimeInterval(-40 * 86_400)
        stats.endTime = Date()
        #expect(fields(await rpcError { _ = try await client.stub.getActivityStats(stats, options: client.options) }) == ["end_time"])
        stats.startTime = nil
        #expect(fields(await rpcError { _ = try await client.stub.getActivityStats(stats, options: client.options) }) == ["start_time"])
        stats.startTime = Date().addingTimeInterval(-3 * 86_400)
        stats.kinds = ["call", "fax"]
        #expect(fields(await rpcError { _ = try await client.stub.getActivityStats(stats, options: client.options) }) == ["kinds[1]"])
        stats.kinds = []
        stats.groupBy = .unspecified
        #expect(fields(await rpcError { _ = try await client.stub.getActivityStats(stats, options: client.options) }) == ["group_by"])
        stats.groupBy = .day
        #expect(try await client.stub.getActivityStats(stats, options: client.options).total == 7)

        var top = Switchboard_Analytics_V1_ListTopRequest()
        top.subjectType = .contact
        top.metric = .interactions
        top.limit = Int32(Self.limits.maxTop + 1)
        #expect(fields(await rpcError { _ = try await client.stub.listTop(top, options: client.options) }) == ["limit"])
        top.limit = 0
        top.subjectType = .organization
        top.metric = .engagementScore
        #expect(fields(await rpcError { _ = try await client.stub.listTop(top, options: client.options) }) == ["metric"])

        var funnel = Switchboard_Analytics_V1_GetLifecycleFunnelRequest()
        funnel.stages = ["LEAD", "WON"]
        #expect(fields(await rpcError { _ = try await client.stub.getLifecycleFunnel(funnel, options: client.options) }) == ["stages[1]"])

        #expect(fields(await rpcError { _ = try await client.setModel(["call": 1], halfLife: 0) }) == ["model.half_life_days"])
        #expect(fields(await rpcError { _ = try await client.setModel(["fax": 1], halfLife: 10) }) == ["model.weights[0].kind"])
        #expect(fields(await rpcError { _ = try await client.setModel(["call": 5000], halfLife: 10) }) == ["model.weights[0].weight"])

        #expect(fields(await rpcError { _ = try await client.createReport("", columns: ["contact_id"]) }) == ["report.name"])
        #expect(fields(await rpcError { _ = try await client.createReport("r", columns: ["salary"]) }) == ["report.columns[0]"])
        #expect(
            fields(await rpcError { _ = try await client.createReport("r", columns: Array(repeating: "email", count: 65)) }) == ["report.columns"])
        #expect(
            fields(await rpcError { _ = try await client.createReport("r", columns: ["email"], filters: [("email", "like", "x")]) })
                == ["report.filters[0].op"])
        #expect(
            fields(await rpcError { _ = try await client.createReport("r", columns: ["email"], filters: [("interactions", "gt", "many")]) })
                == ["report.filters[0].value"])

        // WatchTimeline: one stream per user here (SWITCHBOARD_ANALYTICS_WATCH_STREAMS_PER_USER); a second is refused.
        let request = {
            var r = Switchboard_Analytics_V1_WatchTimelineRequest()
            r.subjectType = .contact
            r.subjectId = person
            return r
        }()
        let refused = try await withThrowingTaskGroup(of: RPCError?.self) { group in
            group.addTask {
                _ = try? await client.stub.watchTimeline(request, options: client.options) { entries in for try await _ in entries {} }
                return nil
            }
            try await Task.sleep(for: .milliseconds(400))
            let error = await rpcError {
                _ = try await client.stub.watchTimeline(request, options: client.options) { entries in for try await _ in entries {} }
            }
            group.cancelAll()
            return error
        }
        #expect(refused?.code == .resourceExhausted)
    }
}

/// Runs `body` (a stream reader) for at most `limit`, with `during` running beside it; nil when the time ran out.
func firstWithin(
    _ limit: Duration, _ body: @escaping @Sendable () async throws -> Bool, during: @escaping @Sendable () async throws -> Void = {}
) async throws -> Bool? {
    try await withThrowingTaskGroup(of: Bool?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await during()
            try await Task.sleep(for: limit)
            return nil
        }
        let first = try await group.next()!
        group.cancelAll()
        return first
    }
}
