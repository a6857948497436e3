import ContactsService
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

extension Client {
    func erase(_ id: String, requestID: String = "") async throws -> Switchboard_Contacts_V1_Erasure {
        var request = Switchboard_Contacts_V1_EraseContactRequest()
        request.contactId = id
        request.requestId = requestID
        return try await stub.eraseContact(request, options: options)
    }

    func erasure(_ id: String) async throws -> Switchboard_Contacts_V1_Erasure {
        var request = Switchboard_Contacts_V1_GetErasureRequest()
        request.id = id
        return try await stub.getErasure(request, options: options)
    }

    func erasures(
        status: Switchboard_Contacts_V1_Erasure.Status = .unspecified, pageSize: Int32 = 0, token: String = ""
    ) async throws
        -> Switchboard_Contacts_V1_ListErasuresResponse
    {
        var request = Switchboard_Contacts_V1_ListErasuresRequest()
        request.status = status
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        return try await stub.listErasures(request, options: options)
    }

    /// Every change of the tenant's history, replayed (the stream is left once it has caught up).
    func history(count: Int) async throws -> [Switchboard_Common_V1_ChangeEvent] {
        var options = self.options
        options.timeout = .seconds(20)
        return try await stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: options) { events in
            var seen: [Switchboard_Common_V1_ChangeEvent] = []
            for try await event in events {
                seen.append(event)
                if seen.count == count { break }
            }
            return seen
        }
    }
}

/// EraseContact over HTTP/2 and PostgreSQL: what the contacts service removes itself, the ERASED event the other
/// services act on, and the erasure's status as receipts are awaited. (Receipts from a real service: the
/// communication suite's `ErasureFlowTests`.)
@Suite("Contacts service: erasure", .serialized)
final class ErasureTests {
    let harness: ServiceHarness

    init() async throws {
        // Awaits analytics' receipt, from an address where nothing listens: the consumer retries in the background, and
        // the erasure stays PENDING until a receipt is recorded.
        let unreachable = UpstreamFeed(host: "127.0.0.1", port: 1, tokenFile: "/nonexistent")
        harness = try await ServiceHarness.start(ContactsService.description(limits: ContactsLimits(), receiptFeeds: ["analytics": unreachable]))
    }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private func tenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

    private func client(_ t: String, roles: [Role] = [.admin]) async throws -> Client {
        let options = try await harness.options(tenant: t, roles: roles)
        return Client(stub: Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: harness.channel)), options: options)
    }

    @Test("an erased contact is gone with its addresses, stored responses and history; ERASED names the erasure; a second request returns it")
    func erase() async throws {
        let t = tenant()
        let admin = try await client(t)
        let ada = try await admin.create(given: "Ada", family: "Byron", emails: ["Ada.Byron@example.com"], requestID: "create-ada")
        _ = try await admin.update(ada.id, paths: ["tags"]) { $0.tags = ["vip"] }
        // An address that contains hers is another person's: nothing of his is touched.
        let bob = try await admin.create(given: "Bob", family: "Other", emails: ["bob.ada.byron@example.com"])

        let erasure = try await admin.erase(ada.id)
        #expect(erasure.contactId == ada.id && erasure.status == .pending && erasure.awaitedServices == ["analytics"], "\(erasure)")
        #expect(erasure.local?.emailsReleased == 1 && erasure.local?.changesRedacted == 2 && erasure.local?.storedResponsesRemoved == 1)
        #expect(erasure.receipts.isEmpty && erasure.completeTime == nil && erasure.requestedBy == "user-1")
        let deadline = try #require(erasure.deadline), requested = try #require(erasure.requestTime)
        #expect(abs(deadline.timeIntervalSince(requested) - 24 * 3600) < 1)

        #expect(await code { _ = try await admin.get(ada.id, includeDeleted: true) } == .notFound)
        // The address is free for someone else.
        _ = try await admin.create(given: "New", family: "Person", emails: ["ada.byron@example.com"])
        // A retry of the request that created her is refused: replaying would bring her back, running it again could
        // make twice what else it wrote.
        let retry = await rpcError {
            _ = try await admin.create(given: "Ada", family: "Byron", emails: ["Ada.Byron@example.com"], requestID: "create-ada")
        }
        #expect(retry?.code == .failedPrecondition && retry?.message.hasPrefix("request_id:") == true, "\(String(describing: retry))")

        // Her history: created and updated reduced to her id, then ERASED naming the erasure; Bob's untouched.
        let history = try await admin.history(count: 5)
        let hers = history.filter { $0.resourceId == ada.id }
        #expect(hers.map(\.kind) == [.created, .updated, .erased])
        for event in hers {
            #expect(try #require(event.resource).protoJSONText() == "{\"id\":\"\(ada.id)\"}" && event.changedFields.isEmpty)
        }
        #expect(hers.last?.relatedIds == [erasure.id])
        let bobs = try #require(history.first { $0.resourceId == bob.id })
        #expect(try #require(bobs.resource).protoJSONText().contains("bob.ada.byron@example.com"))

        // Asked again (another admin, another tab): the same erasure, nothing new.
        let second = try await admin.erase(ada.id)
        #expect(second.id == erasure.id)
        #expect(try await admin.erasure(erasure.id).id == erasure.id)
        #expect(await code { _ = try await admin.erase(UUID().uuidString.lowercased()) } == .notFound)
        #expect(await code { _ = try await admin.erasure(UUID().uuidString.lowercased()) } == .notFound)
        #expect(await rpcError { _ = try await admin.erase("nope") }?.fieldViolations.map(\.field) == ["contact_id"])
    }

    @Test("erasing a contact erases the contacts merged into it; a contact merged away is not erased alone")
    func erasesMerged() async throws {
        let admin = try await client(tenant())
        let winner = try await admin.create(given: "Ada", family: "Lovelace", emails: ["ada@example.com"])
        let loser = try await admin.create(given: "Ada", family: "King", emails: ["countess@example.org"])
        _ = try await admin.merge(loser.id, into: winner.id)
        let refused = await rpcError { _ = try await admin.erase(loser.id) }
        #expect(refused?.code == .failedPrecondition && refused?.message.contains(winner.id) == true)
        let erasure = try await admin.erase(winner.id)
        #expect(erasure.local?.contactsDeleted == 2 && erasure.local?.mergesDeleted == 1 && erasure.local?.emailsReleased == 2)
        #expect(erasure.mergedContactIds == [loser.id])
        #expect(await code { _ = try await admin.get(loser.id, includeDeleted: true) } == .notFound)
        // Asked by the merged-away id, the same erasure.
        #expect(try await admin.erase(loser.id).id == erasure.id)
        // Both records' history is reduced to ids, the merge's events included, and each record has its ERASED.
        let history = try await admin.history(count: 6)
        for event in history {
            #expect(try #require(event.resource).protoJSONText() == "{\"id\":\"\(event.resourceId)\"}")
        }
        let erased = history.filter { $0.kind == .erased }
        #expect(erased.map(\.resourceId) == [winner.id, loser.id] && erased.allSatisfy { $0.relatedIds == [erasure.id] })
    }

    @Test("a former merge winner whose history held the erased person's address has its state published again")
    func republishesOthers() async throws {
        let admin = try await client(tenant())
        let winner = try await admin.create(given: "Wanda", family: "One", emails: ["wanda@example.com"])
        let loser = try await admin.create(given: "Lara", family: "Two", emails: ["lara@example.com"])
        _ = try await admin.merge(loser.id, into: winner.id)
        _ = try await admin.unmerge(loser.id)
        _ = try await admin.erase(loser.id)
        // created ×2, MERGED, UPDATED (winner with her address), UPDATED (winner without it), UNMERGED, then the
        // erasure: the winner's state again, and ERASED.
        let history = try await admin.history(count: 8)
        #expect(history.map(\.kind) == [.created, .created, .merged, .updated, .updated, .unmerged, .updated, .erased], "\(history.map(\.kind))")
        let redacted = history[3]
        let redactedJSON = try #require(redacted.resource).protoJSONText()
        #expect(redacted.resourceId == winner.id && redactedJSON == "{\"id\":\"\(winner.id)\"}")
        let fresh = try Switchboard_Contacts_V1_Contact(protoJSONText: try #require(history[6].resource).protoJSONText())
        #expect(history[6].resourceId == winner.id && fresh.emails.map(\.address) == ["wanda@example.com"])
        let later = try #require(history[4].resource).protoJSONText()
        #expect(later.contains("wanda@example.com"))
    }

    @Test("receipts complete an erasure, a deadline passed makes it OVERDUE, and lists filter by status; tenants and roles are kept apart")
    func statusAndIsolation() async throws {
        let t = tenant()
        let admin = try await client(t)
        let a = try await admin.create(given: "A", family: "One")
        let b = try await admin.create(given: "B", family: "Two")
        let first = try await admin.erase(a.id)
        let second = try await admin.erase(b.id)

        // The deadline of the first passed: OVERDUE.
        let db = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: harness.adminDatabaseConninfo, maxConnections: 1))
        defer { db.close() }
        try await db.query(
            "UPDATE contacts.erasures SET deadline = now() - interval '1 minute' WHERE tenant_id = $1 AND id = $2::uuid",
            [.text(t), .text(first.id)])
        #expect(try await admin.erasure(first.id).status == .overdue)
        #expect(try await admin.erasures(status: .overdue).erasures.map(\.id) == [first.id])
        #expect(try await admin.erasures(status: .pending).erasures.map(\.id) == [second.id])

        // Analytics' receipt for the second arrives (as its feed would bring it): COMPLETE, with the receipt.
        var event = Switchboard_Common_V1_ChangeEvent()
        event.tenantId = t
        event.kind = .erased
        event.resourceType = "switchboard.analytics.v1.ErasureReceipt"
        event.resourceId = b.id
        event.relatedIds = [second.id]
        event.resource = try Google_Protobuf_Struct(protoJSONText: "{\"contactId\":\"\(b.id)\",\"factsDeleted\":3}")
        try await harness.pool.transaction { c in
            try await ContactsService.applyReceipt(event, service: "analytics", on: c)
            // Delivered again (at least once): the first stays.
            try await ContactsService.applyReceipt(event, service: "analytics", on: c)
        }
        let complete = try await admin.erasure(second.id)
        #expect(complete.status == .complete && complete.completeTime != nil)
        #expect(complete.receipts.map(\.service) == ["analytics"])
        #expect(try #require(complete.receipts.first?.receipt).protoJSONText().contains("\"factsDeleted\":3"))
        #expect(try await admin.erasures(status: .complete).erasures.map(\.id) == [second.id])

        // Pages, newest first.
        let page1 = try await admin.erasures(pageSize: 1)
        #expect(page1.erasures.map(\.id) == [second.id])
        let page2 = try await admin.erasures(pageSize: 1, token: page1.page?.nextPageToken ?? "")
        #expect(page2.erasures.map(\.id) == [first.id] && page2.page?.nextPageToken == "")

        // Another tenant sees none of it and cannot erase this tenant's people; only admins erase.
        let other = try await client(tenant())
        let c = try await admin.create(given: "C", family: "Three")
        #expect(await code { _ = try await other.erase(c.id) } == .notFound)
        #expect(try await admin.get(c.id).id == c.id)
        #expect(await code { _ = try await other.erasure(first.id) } == .notFound)
        #expect(try await other.erasures().erasures.isEmpty)
        let user = try await client(t, roles: [.user])
        #expect(await code { _ = try await user.erase(c.id) } == .permissionDenied)
        #expect(await code { _ = try await user.erasures() } == .permissionDenied)
    }
}
