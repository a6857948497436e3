import CommunicationService
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// The interaction RPCs over real HTTP/2 against a real PostgreSQL, as the service's own (RLS-bound) role.
@Suite("Communication service: interactions", .serialized)
final class InteractionTests {
    let harness: CommunicationHarness
    init() async throws { harness = try await CommunicationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test("log, get, update with etag, delete, undelete; a retried log with the same request id logs once")
    func lifecycle() async throws {
        let client = try await harness.client(tenant: tenant())
        let contact = newID(), organization = newID(), thread = newID()
        let occurred = Date(timeIntervalSince1970: 1_760_000_000)
        let followUp = Date(timeIntervalSince1970: 1_760_086_400)
        let configure: (inout Switchboard_Communication_V1_Interaction) -> Void = {
            $0.direction = .outbound
            $0.contactIds = [contact, contact]
            $0.addresses = [" +49 30 1234 ", "+49 30 1234", "x@example.com"]
            $0.organizationId = organization
            $0.threadId = thread
            $0.body = "Talked about pricing."
            $0.occurredAt = occurred
            $0.durationSeconds = 600
            $0.outcome = "connected"
            $0.followUpAt = followUp
        }
        let logged = try await client.log(.call, subject: "Intro call", requestID: "log-1", configure: configure)
        #expect(logged.kind == .call)
        #expect(logged.direction == .outbound)
        #expect(logged.contactIds == [contact])
        #expect(logged.addresses == ["+49 30 1234", "x@example.com"])
        #expect(logged.organizationId == organization)
        #expect(logged.threadId == thread)
        #expect(logged.occurredAt == occurred)
        #expect(logged.followUpAt == followUp)
        #expect(logged.visibility == .tenant)
        #expect(logged.ownerId == "user-1")
        #expect(logged.etag == "\"1\"")
        #expect(try await client.get(logged.id) == logged)

        let again = try await client.log(.call, subject: "Intro call", requestID: "log-1", configure: configure)
        #expect(again == logged)
        // The id reused for a different interaction is refused, not answered with the first one.
        #expect(fields(await rpcError { _ = try await client.log(.call, subject: "Intro call", requestID: "log-1") }) == ["request_id"])
        #expect(try await client.list().interactions.map(\.id) == [logged.id])
        // A request id is bound to its method: reusing it for another is INVALID_ARGUMENT naming request_id.
        let reused = await rpcError { _ = try await client.delete(logged.id, requestID: "log-1") }
        #expect(reused?.code == .invalidArgument)
        #expect(fields(reused) == ["request_id"])

        let updated = try await client.update(logged.id, paths: ["subject", "follow_up_done"], etag: logged.etag) {
            $0.subject = "Intro call (done)"
            $0.followUpDone = true
        }
        #expect(updated.subject == "Intro call (done)")
        #expect(updated.followUpDone)
        #expect(updated.body == logged.body)
        #expect(updated.etag == "\"2\"")
        #expect(await code { _ = try await client.update(logged.id, paths: ["subject"], etag: logged.etag) { $0.subject = "x" } } == .aborted)
        #expect(await code { _ = try await client.delete(logged.id, etag: logged.etag) } == .aborted)

        let deleted = try await client.delete(logged.id, etag: updated.etag)
        #expect(deleted.audit?.deleteTime != nil)
        #expect(await code { _ = try await client.get(logged.id) } == .notFound)
        #expect(try await client.get(logged.id, includeDeleted: true).id == logged.id)
        #expect(try await client.list().interactions.isEmpty)
        #expect(try await client.list { $0.includeDeleted = true }.interactions.map(\.id) == [logged.id])
        #expect(await code { _ = try await client.delete(logged.id) } == .notFound)
        #expect(await code { _ = try await client.update(logged.id, paths: ["subject"]) { $0.subject = "x" } } == .notFound)
        let restored = try await client.undelete(logged.id)
        #expect(restored.audit?.deleteTime == nil)
        #expect(try await client.list { $0.contactId = contact }.interactions.map(\.id) == [logged.id])
        #expect(await code { _ = try await client.undelete(logged.id) } == .notFound)
    }

    @Test("occurred_at defaults to the database's now; moving it and the contacts moves the contact history")
    func occurredAtAndContactHistory() async throws {
        let client = try await harness.client(tenant: tenant())
        let before = Date()
        let logged = try await client.log(.meeting, subject: "Standup") { $0.contactIds = [newID()] }
        let occurred = try #require(logged.occurredAt)
        #expect(abs(occurred.timeIntervalSince(before)) < 60)
        let other = newID()
        _ = try await client.update(logged.id, paths: ["contact_ids", "occurred_at"]) {
            $0.contactIds = [other]
            $0.occurredAt = Date(timeIntervalSince1970: 1_700_000_000)
        }
        #expect(try await client.list { $0.contactId = logged.contactIds[0] }.interactions.isEmpty)
        let moved = try await client.list { $0.contactId = other }.interactions
        #expect(moved.map(\.id) == [logged.id])
        #expect(moved.first?.occurredAt == Date(timeIntervalSince1970: 1_700_000_000))
    }

    @Test("invalid input is INVALID_ARGUMENT naming each field (bounds, NUL bytes, ids, times, masks, pages), and stores nothing")
    func invalidInput() async throws {
        let client = try await harness.client(tenant: tenant())
        let noKind = await rpcError { _ = try await client.log(.unspecified, subject: "x") }
        #expect(noKind?.code == .invalidArgument)
        #expect(fields(noKind) == ["interaction.kind"])
        let many = await rpcError {
            _ = try await client.log(.email) {
                $0.subject = String(repeating: "s", count: 999)
                $0.outcome = String(repeating: "o", count: 257)
                $0.contactIds = ["not-a-uuid", ""]
                $0.organizationId = "nope"
                $0.threadId = "nope"
                $0.durationSeconds = 604_801
                $0.occurredAt = Date(timeIntervalSince1970: -3_000_000_000)
                $0.followUpAt = Date().addingTimeInterval(20 * 366 * 86400)
                $0.ownerId = String(repeating: "u", count: 257)
            }
        }
        #expect(many?.code == .invalidArgument)
        #expect(
            fields(many).isSuperset(of: [
                "interaction.contact_ids[0]", "interaction.contact_ids[1]", "interaction.organization_id", "interaction.thread_id",
            ]))
        // Mapping violations (ids) are reported first; the rest are checked with valid ids. (NUL bytes cannot travel
        // here: protobuf-c ends a string at its first NUL, on the client's side as on the server's; InteractionRulesTests
        // covers the domain's refusal.)
        let bounds = await rpcError {
            _ = try await client.log(.email) {
                $0.subject = String(repeating: "s", count: 999)
                $0.outcome = String(repeating: "o", count: 257)
                $0.addresses = ["  ", String(repeating: "a", count: 321)]
                $0.durationSeconds = 604_801
                $0.occurredAt = Date(timeIntervalSince1970: -3_000_000_000)
                $0.followUpAt = Date().addingTimeInterval(20 * 366 * 86400)
                $0.ownerId = String(repeating: "u", count: 257)
            }
        }
        #expect(bounds?.code == .invalidArgument)
        #expect(
            fields(bounds) == [
                "interaction.subject", "interaction.outcome", "interaction.addresses[0]", "interaction.addresses[1]",
                "interaction.duration_seconds", "interaction.occurred_at", "interaction.follow_up_at", "interaction.owner_id",
            ])
        let future = await rpcError { _ = try await client.log(.meeting) { $0.occurredAt = Date().addingTimeInterval(400 * 86400) } }
        #expect(fields(future) == ["interaction.occurred_at"])
        let tooMany = await rpcError { _ = try await client.log(.email) { $0.contactIds = (0...100).map { _ in newID() } } }
        #expect(fields(tooMany) == ["interaction.contact_ids"])
        let tooManyAddresses = await rpcError { _ = try await client.log(.email) { $0.addresses = (0...100).map { "a\($0)@x.io" } } }
        #expect(fields(tooManyAddresses) == ["interaction.addresses"])
        let badKind = await rpcError { _ = try await client.log(.unrecognized(42)) }
        #expect(fields(badKind) == ["interaction.kind"])
        let bigBody = await rpcError { _ = try await client.log(.email) { $0.body = String(repeating: "b", count: 65537) } }
        #expect(fields(bigBody) == ["interaction.body"])
        #expect(try await client.list().interactions.isEmpty)

        let logged = try await client.log(.email, subject: "ok")
        let unknownPath = await rpcError { _ = try await client.update(logged.id, paths: ["subject", "audit"]) { $0.subject = "x" } }
        #expect(fields(unknownPath) == ["update_mask.paths[1]"])
        #expect(fields(await rpcError { _ = try await client.update(logged.id, paths: []) { _ in } }) == ["update_mask"])
        #expect(fields(await rpcError { _ = try await client.update(logged.id, paths: ["kind"]) { _ in } }) == ["interaction.kind"])
        #expect(fields(await rpcError { _ = try await client.update(logged.id, paths: ["owner_id"]) { _ in } }) == ["interaction.owner_id"])
        let manyPaths = await rpcError { _ = try await client.update(logged.id, paths: Array(repeating: "subject", count: 33)) { _ in } }
        #expect(fields(manyPaths) == ["update_mask.paths"])
        #expect(fields(await rpcError { _ = try await client.update("x", paths: ["subject"]) { _ in } }) == ["interaction.id"])
        #expect(fields(await rpcError { _ = try await client.get("") }) == ["id"])
        #expect(fields(await rpcError { _ = try await client.delete(logged.id, etag: String(repeating: "e", count: 65)) }) == ["etag"])
        #expect(fields(await rpcError { _ = try await client.log(.email, requestID: String(repeating: "r", count: 129)) }) == ["request_id"])
        #expect(try await client.get(logged.id).subject == "ok")

        #expect(fields(await rpcError { _ = try await client.list(pageSize: -1) }) == ["page.page_size"])
        #expect(fields(await rpcError { _ = try await client.list(token: "garbage") }) == ["page.page_token"])
        let twoScopes = await rpcError {
            _ = try await client.list {
                $0.contactId = newID()
                $0.threadId = newID()
            }
        }
        #expect(fields(twoScopes) == ["contact_id"])
        #expect(fields(await rpcError { _ = try await client.list { $0.contactId = "x" } }) == ["contact_id"])
        #expect(fields(await rpcError { _ = try await client.list { $0.ownerId = String(repeating: "o", count: 257) } }) == ["owner_id"])
        let inverted = await rpcError {
            _ = try await client.list {
                $0.occurredAfter = Date(timeIntervalSince1970: 2000)
                $0.occurredBefore = Date(timeIntervalSince1970: 1000)
            }
        }
        #expect(fields(inverted) == ["occurred_after"])
        // Timestamps outside their range are refused, never dropped from the filter.
        #expect(fields(await rpcError { _ = try await client.list { $0.occurredAfter = Date(timeIntervalSince1970: -1e15) } }) == ["occurred_after"])
        #expect(fields(await rpcError { _ = try await client.list { $0.occurredBefore = Date(timeIntervalSince1970: 1e15) } }) == ["occurred_before"])
        #expect(fields(await rpcError { _ = try await client.search("") }) == ["query"])
        #expect(fields(await rpcError { _ = try await client.search("   ") }) == ["query"])
        #expect(fields(await rpcError { _ = try await client.search(String(repeating: "q", count: 257)) }) == ["query"])
        #expect(fields(await rpcError { _ = try await client.search((0...16).map { "w\($0)" }.joined(separator: " ")) }) == ["query"])
        #expect(fields(await rpcError { _ = try await client.followUps(owner: String(repeating: "o", count: 257)) }) == ["owner_id"])
        #expect(fields(await rpcError { _ = try await client.followUps(dueBefore: Date(timeIntervalSince1970: -3_000_000_000)) }) == ["due_before"])
    }

    @Test("a page token is bound to its filters: another filter's token is INVALID_ARGUMENT")
    func pageTokenBinding() async throws {
        let client = try await harness.client(tenant: tenant())
        for i in 0..<3 { _ = try await client.log(.email, subject: "m\(i)") }
        let first = try await client.list(pageSize: 1)
        let token = try #require(first.page?.nextPageToken)
        #expect(!token.isEmpty)
        #expect(await code { _ = try await client.list(pageSize: 1, token: token) { $0.kind = .call } } == .invalidArgument)
        #expect(try await client.list(pageSize: 1, token: token).interactions.count == 1)
    }

    @Test("lists by contact, organization, thread, kind, owner and time range are newest first with keyset pages")
    func lists() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let admin = try await harness.client(tenant: t, user: "admin-1", roles: [.admin])
        let contact = newID(), organization = newID(), thread = newID()
        let base = Date(timeIntervalSince1970: 1_750_000_000)
        var logged: [Interaction] = []
        for i in 0..<7 {
            logged.append(
                try await client.log(i % 2 == 0 ? .email : .call, subject: "n\(i)") {
                    $0.occurredAt = base.addingTimeInterval(Double(i / 2) * 60)  // pairs share a time: the id breaks ties
                    if i != 3 { $0.contactIds = [contact] }
                    if i < 4 { $0.organizationId = organization }
                    if i >= 4 { $0.threadId = thread }
                })
        }
        let byAdmin = try await admin.log(.sms, subject: "admin's") {
            $0.contactIds = [contact]
            $0.occurredAt = base.addingTimeInterval(-60)
        }
        func newestFirst(_ records: [Interaction]) -> [String] {
            records.sorted { ($0.occurredAt!, $0.id) > ($1.occurredAt!, $1.id) }.map(\.id)
        }
        let all = logged + [byAdmin]
        #expect(try await client.listAll(pageSize: 2).map(\.id) == newestFirst(all))
        #expect(try await client.listAll(pageSize: 3) { $0.contactId = contact }.map(\.id) == newestFirst(all.filter { $0.contactIds == [contact] }))
        #expect(
            try await client.listAll(pageSize: 2) { $0.organizationId = organization }.map(\.id)
                == newestFirst(all.filter { $0.organizationId == organization }))
        #expect(try await client.listAll(pageSize: 1) { $0.threadId = thread }.map(\.id) == newestFirst(all.filter { $0.threadId == thread }))
        #expect(try await client.listAll(pageSize: 2) { $0.kind = .call }.map(\.id) == newestFirst(all.filter { $0.kind == .call }))
        #expect(try await client.listAll(pageSize: 2) { $0.ownerId = "admin-1" }.map(\.id) == [byAdmin.id])
        let window = try await client.listAll(pageSize: 2) {
            $0.occurredAfter = base.addingTimeInterval(60)
            $0.occurredBefore = base.addingTimeInterval(180)
        }
        #expect(
            window.map(\.id)
                == newestFirst(all.filter { $0.occurredAt! >= base.addingTimeInterval(60) && $0.occurredAt! < base.addingTimeInterval(180) }))
        #expect(window.count == 4)
        let combined = try await client.listAll(pageSize: 2) {
            $0.contactId = contact
            $0.kind = .email
            $0.occurredBefore = base.addingTimeInterval(120)
        }
        #expect(
            combined.map(\.id)
                == newestFirst(all.filter { $0.contactIds == [contact] && $0.kind == .email && $0.occurredAt! < base.addingTimeInterval(120) }))
        // Page sizes are capped at 200.
        #expect(try await client.list(pageSize: 100_000).interactions.count == all.count)
    }

    @Test("text search finds all words in subject or body, case-insensitively, newest first, live only, in pages")
    func search() async throws {
        let client = try await harness.client(tenant: tenant())
        let base = Date(timeIntervalSince1970: 1_750_000_000)
        let a = try await client.log(.email, subject: "Renewal quote") {
            $0.body = "The customer asked about PRICING tiers."
            $0.occurredAt = base
        }
        let b = try await client.log(.call, subject: "pricing follow-up") {
            $0.body = "Renewal confirmed"
            $0.occurredAt = base.addingTimeInterval(10)
        }
        let c = try await client.log(.email, subject: "Unrelated") { $0.occurredAt = base.addingTimeInterval(20) }
        #expect(try await client.search("pricing renewal").interactions.map(\.id) == [b.id, a.id])
        #expect(try await client.search("unrelated").interactions.map(\.id) == [c.id])
        #expect(try await client.search("pricing & renewal | (").interactions.map(\.id) == [b.id, a.id])
        let first = try await client.search("renewal", pageSize: 1)
        #expect(first.interactions.map(\.id) == [b.id])
        let second = try await client.search("renewal", pageSize: 1, token: first.page?.nextPageToken ?? "")
        #expect(second.interactions.map(\.id) == [a.id])
        #expect(second.page?.nextPageToken == "")
        #expect(await code { _ = try await client.search("other", token: first.page?.nextPageToken ?? "") } == .invalidArgument)
        _ = try await client.delete(b.id)
        #expect(try await client.search("pricing").interactions.map(\.id) == [a.id])
    }

    @Test("a search past the statement timeout is RESOURCE_EXHAUSTED, not a hang")
    func searchTimeout() async throws {
        // 1 ms: any search reading thousands of rows is cancelled (the setting allows 100 ms and up; the test goes lower).
        let tight = try await CommunicationHarness.start(searchTimeoutMilliseconds: 1)
        defer { Task { await tight.stop() } }
        let t = tenant()
        // Many rows sharing one word, written directly: the search must read and sort them all.
        _ = try await tight.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                """
                INSERT INTO communication.interactions (tenant_id, id, kind, subject, body, occurred_at, owner_id, created_at, created_by,
                    updated_at, updated_by)
                SELECT $1, gen_random_uuid(), 1, 'common', repeat('word' || g || ' ', 50), now() - g * interval '1 second', 'u', now(), 'u', now(), 'u'
                FROM generate_series(1, 30000) g
                """, [.text(t)])
        }
        let client = try await tight.client(tenant: t)
        let error = await rpcError { _ = try await client.search("common") }
        #expect(error?.code == .resourceExhausted || error == nil, "\(String(describing: error))")
        if error == nil { Issue.record("the search finished within 1 ms; the timeout path was not exercised") }
    }

    @Test("follow-ups due for a user: open, due by the time given, earliest first, in pages; done and deleted ones leave")
    func followUps() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let other = try await harness.client(tenant: t, user: "user-2")
        let now = Date()
        let due1 = try await client.log(.call, subject: "a") { $0.followUpAt = now.addingTimeInterval(-3600) }
        let due2 = try await client.log(.call, subject: "b") { $0.followUpAt = now.addingTimeInterval(-60) }
        let later = try await client.log(.call, subject: "c") { $0.followUpAt = now.addingTimeInterval(86400) }
        let done = try await client.log(.call, subject: "d") {
            $0.followUpAt = now.addingTimeInterval(-120)
            $0.followUpDone = true
        }
        _ = try await client.log(.call, subject: "none")
        _ = try await other.log(.call, subject: "theirs") { $0.followUpAt = now.addingTimeInterval(-60) }
        #expect(try await client.followUps().interactions.map(\.id) == [due1.id, due2.id])
        let page1 = try await client.followUps(pageSize: 1)
        #expect(page1.interactions.map(\.id) == [due1.id])
        let page2 = try await client.followUps(pageSize: 1, token: page1.page?.nextPageToken ?? "")
        #expect(page2.interactions.map(\.id) == [due2.id])
        #expect(try await client.followUps(dueBefore: now.addingTimeInterval(2 * 86400)).interactions.map(\.id) == [due1.id, due2.id, later.id])
        #expect(try await other.followUps(owner: "user-1").interactions.map(\.id) == [due1.id, due2.id])
        _ = try await client.update(due1.id, paths: ["follow_up_done"]) { $0.followUpDone = true }
        _ = try await client.delete(due2.id)
        #expect(try await client.followUps().interactions.isEmpty)
        _ = done
    }

    @Test("private interactions: only the owner and admins see them; only the owner or an admin changes owner or visibility")
    func visibilityAndOwnership() async throws {
        let t = tenant()
        let owner = try await harness.client(tenant: t, user: "owner")
        let colleague = try await harness.client(tenant: t, user: "colleague")
        let admin = try await harness.client(tenant: t, user: "boss", roles: [.admin])
        let contact = newID()
        let secret = try await owner.log(.email, subject: "confidential offer") {
            $0.visibility = .private
            $0.contactIds = [contact]
            $0.followUpAt = Date().addingTimeInterval(-60)
        }
        #expect(await code { _ = try await colleague.get(secret.id) } == .notFound)
        #expect(try await colleague.list().interactions.isEmpty)
        #expect(try await colleague.list { $0.contactId = contact }.interactions.isEmpty)
        #expect(try await colleague.search("confidential").interactions.isEmpty)
        #expect(try await colleague.followUps(owner: "owner").interactions.isEmpty)
        #expect(await code { _ = try await colleague.update(secret.id, paths: ["subject"]) { $0.subject = "x" } } == .notFound)
        #expect(await code { _ = try await colleague.delete(secret.id) } == .notFound)
        #expect(try await admin.get(secret.id).id == secret.id)
        #expect(try await admin.search("confidential").interactions.map(\.id) == [secret.id])
        #expect(try await owner.followUps().interactions.map(\.id) == [secret.id])

        let shared = try await owner.log(.email, subject: "team note")
        #expect(try await colleague.get(shared.id).id == shared.id)
        // A colleague may edit a tenant-visible interaction's content, not its owner or visibility.
        #expect(try await colleague.update(shared.id, paths: ["body"]) { $0.body = "added" }.body == "added")
        #expect(
            await code { _ = try await colleague.update(shared.id, paths: ["visibility"]) { $0.visibility = .private } } == .permissionDenied)
        #expect(await code { _ = try await colleague.update(shared.id, paths: ["owner_id"]) { $0.ownerId = "colleague" } } == .permissionDenied)
        #expect(await code { _ = try await colleague.log(.call) { $0.ownerId = "owner" } } == .permissionDenied)
        // The owner hands it over; the admin takes it back and makes it private.
        let handed = try await owner.update(shared.id, paths: ["owner_id"]) { $0.ownerId = "colleague" }
        #expect(handed.ownerId == "colleague")
        let taken = try await admin.update(shared.id, paths: ["owner_id", "visibility"]) {
            $0.ownerId = "boss"
            $0.visibility = .private
        }
        #expect(taken.ownerId == "boss")
        #expect(await code { _ = try await colleague.get(shared.id) } == .notFound)
        // The feed's history of it (events written while it was visible, its body among them) is cut to the stub too.
        let history = try await harness.pool.query(
            settings: ["app.tenant_id": t],
            "SELECT resource::text AS r, service_resource IS NULL AS gone FROM communication.changes WHERE tenant_id = $1 AND resource_id = $2",
            [.text(t), .text(shared.id)]
        ).rows
        #expect(history.count >= 4)
        #expect(try history.allSatisfy { try !$0.string("r").contains("added") && $0.string("r").contains("PRIVATE") }, "\(history)")
        #expect(try await admin.log(.call) { $0.ownerId = "owner" }.ownerId == "owner")
    }

    @Test("tenant B can neither read, list, search, change, delete, restore nor watch tenant A's interactions")
    func isolation() async throws {
        let a = try await harness.client(tenant: tenant())
        let bTenant = tenant()
        let b = try await harness.client(tenant: bTenant)
        let bAdmin = try await harness.client(tenant: bTenant, user: "admin", roles: [.admin])
        let contact = newID(), organization = newID(), thread = newID()
        let logged = try await a.log(.email, subject: "tenant secret") {
            $0.contactIds = [contact]
            $0.organizationId = organization
            $0.threadId = thread
            $0.followUpAt = Date().addingTimeInterval(-60)
        }
        let deleted = try await a.log(.email, subject: "deleted secret")
        _ = try await a.delete(deleted.id)
        for client in [b, bAdmin] {
            #expect(await code { _ = try await client.get(logged.id) } == .notFound)
            #expect(await code { _ = try await client.get(logged.id, includeDeleted: true) } == .notFound)
            #expect(try await client.list { $0.includeDeleted = true }.interactions.isEmpty)
            #expect(try await client.list { $0.contactId = contact }.interactions.isEmpty)
            #expect(try await client.list { $0.organizationId = organization }.interactions.isEmpty)
            #expect(try await client.list { $0.threadId = thread }.interactions.isEmpty)
            #expect(try await client.list { $0.ownerId = "user-1" }.interactions.isEmpty)
            #expect(try await client.search("secret").interactions.isEmpty)
            #expect(try await client.followUps(owner: "user-1").interactions.isEmpty)
            #expect(await code { _ = try await client.update(logged.id, paths: ["subject"]) { $0.subject = "stolen" } } == .notFound)
            #expect(await code { _ = try await client.delete(logged.id) } == .notFound)
            #expect(await code { _ = try await client.undelete(deleted.id) } == .notFound)
        }
        // The same request id in tenant B is B's own.
        _ = try await a.log(.email, subject: "A's", requestID: "shared-id")
        #expect(try await b.log(.call, subject: "B's", requestID: "shared-id").subject == "B's")
        let stub = b.stub, options = b.options
        let events = try await stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: options) { events in
            var ids: [String] = []
            for try await event in events {
                ids.append(event.resourceId)
                if ids.count == 1 { break }
            }
            return ids
        }
        #expect(events.count == 1)
        #expect(events.first != logged.id)
        #expect(try await a.get(logged.id).subject == "tenant secret")
    }

    @Test("row-level security stops a query that forgets its tenant filter, on every table")
    func rowLevelSecurity() async throws {
        let tenantA = "rls-a-" + UUID().uuidString.prefix(6)
        let a = try await harness.client(tenant: tenantA)
        _ = try await a.log(.email, subject: "Seen only by A", requestID: UUID().uuidString) { $0.contactIds = [newID()] }
        _ = try await a.recordConsent(contact: newID())
        _ = try await a.createTemplate("T", body: "b")
        let consenting = newID()
        _ = try await a.recordConsent(contact: consenting)
        let send = try await a.send(contact: consenting) { $0.sendAt = Date().addingTimeInterval(3600) }
        _ = try await harness.pool.transaction(settings: ["app.tenant_id": tenantA]) { c in
            try await c.query(
                """
                INSERT INTO communication.feed_dead_letters (tenant_id, feed, sequence, resource_type, resource_id, reason, event)
                VALUES ($1, 'contacts', 1, 'switchboard.contacts.v1.Contact', 'x', 'test', '\\x00'::bytea)
                """, [.text(tenantA)])
            try await c.query(
                "INSERT INTO communication.provider_events (tenant_id, event_id, send_id, state) VALUES ($1, 'e-1', $2::uuid, 10)",
                [.text(tenantA), .text(send.id)])
            try await c.query(
                "INSERT INTO communication.contact_addresses (tenant_id, kind, address, contact_id) VALUES ($1, 'email', 'a@x.io', gen_random_uuid())",
                [.text(tenantA)])
            try await c.query(
                "INSERT INTO communication.suppressions (tenant_id, kind, address_hash, reason) VALUES ($1, 'email', 'ab', 'erased')",
                [.text(tenantA)])
            try await c.query(
                """
                INSERT INTO communication.campaigns (tenant_id, id, name, template_id, template_version, channel, purpose, start_at, created_by,
                    updated_by)
                SELECT $1, gen_random_uuid(), 'c', id, version, 1, 'marketing', now() + interval '1 day', 'x', 'x'
                FROM communication.templates WHERE tenant_id = $1 LIMIT 1
                """, [.text(tenantA)])
            try await c.query(
                """
                INSERT INTO communication.campaign_recipients (tenant_id, campaign_id, contact_id)
                SELECT $1, id, gen_random_uuid() FROM communication.campaigns WHERE tenant_id = $1
                """, [.text(tenantA)])
            try await c.query(
                """
                WITH m AS (
                    INSERT INTO communication.merges (tenant_id, loser, winner, ledger_sequence) VALUES ($1, gen_random_uuid(), gen_random_uuid(), 0)
                    RETURNING loser
                )
                INSERT INTO communication.merge_moves (tenant_id, loser, kind, row_id) SELECT $1, loser, 'send', gen_random_uuid() FROM m
                """, [.text(tenantA)])
            try await c.query(
                "INSERT INTO communication.preferences (tenant_id, contact_id, do_not_contact, created_by, updated_by) VALUES ($1, gen_random_uuid(), true, 'x', 'x')",
                [.text(tenantA)])
            try await c.query(
                "INSERT INTO communication.contact_fields (tenant_id, contact_id, names, field_values) VALUES ($1, gen_random_uuid(), '{a}', '{b}')",
                [.text(tenantA)])
        }
        let tables = [
            "interactions", "interaction_contacts", "consent_ledger", "templates", "template_heads", "sends", "provider_events", "contact_addresses",
            "suppressions", "campaigns", "campaign_recipients", "feed_dead_letters", "merges", "merge_moves", "preferences", "contact_fields",
            "changes",
            "change_sequences", "idempotency_keys",
        ]
        let all = try await harness.pool.query(
            "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = 'communication' ORDER BY 1"
        ).rows.map { try $0.string("name") }
        #expect(Set(all) == Set(tables + ["feed_cursors", "kit_migrations", "schema_migrations"]))
        for table in tables {
            let owned = try await harness.pool.transaction(settings: ["app.tenant_id": tenantA]) { c in
                try await c.query("SELECT count(*) AS n FROM communication.\(table)").first!.int("n")
            }
            #expect(owned > 0, "\(table): the test wrote no row of tenant A there")
            let seen = try await harness.pool.transaction(settings: ["app.tenant_id": "rls-b"]) { c in
                try await c.query("SELECT count(*) AS n FROM communication.\(table)").first!.int("n")
            }
            #expect(seen == 0, "\(table)")
            #expect(try await harness.pool.query("SELECT count(*) AS n FROM communication.\(table)").first!.int("n") == 0, "\(table)")
        }
        await #expect(throws: PostgresError.self) {
            try await harness.pool.transaction(settings: ["app.tenant_id": "rls-b"]) { c in
                try await c.query(
                    """
                    INSERT INTO communication.interactions (tenant_id, id, kind, occurred_at, owner_id, created_at, created_by, updated_at, updated_by)
                    VALUES ('someone-else', gen_random_uuid(), 1, now(), 'x', now(), 'x', now(), 'x')
                    """)
            }
        }
        let role = try await harness.pool.query("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user").first!
        #expect(try role.bool("rolbypassrls") == false)
        #expect(try role.bool("rolsuper") == false)
        let forced = try await harness.pool.query(
            """
            SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'communication' AND c.relkind = 'r'
              AND c.relname <> ALL(ARRAY['schema_migrations', 'kit_migrations', 'feed_cursors'])
              AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
            """
        ).first!.int("n")
        #expect(forced == 0, "a tenant table without forced row-level security")
    }

    @Test("auth: no token is UNAUTHENTICATED; read-only reads only; writers write; a service identity gets nothing")
    func authMatrix() async throws {
        let t = tenant()
        let anonymous = CommClient(stub: CommunicationStub(client: RPCClient(transport: harness.channel)), options: CallOptions())
        #expect(await code { _ = try await anonymous.list() } == .unauthenticated)
        #expect(await code { _ = try await anonymous.log(.email) } == .unauthenticated)
        let writer = try await harness.client(tenant: t)
        let logged = try await writer.log(.email, subject: "readable") { $0.followUpAt = Date().addingTimeInterval(-60) }
        let reader = try await harness.client(tenant: t, roles: [.readOnly])
        #expect(try await reader.get(logged.id).id == logged.id)
        #expect(try await reader.list().interactions.count == 1)
        #expect(try await reader.search("readable").interactions.count == 1)
        #expect(try await reader.followUps(owner: "user-1").interactions.count == 1)
        #expect(await code { _ = try await reader.log(.email) } == .permissionDenied)
        #expect(await code { _ = try await reader.update(logged.id, paths: ["subject"]) { $0.subject = "x" } } == .permissionDenied)
        #expect(await code { _ = try await reader.delete(logged.id) } == .permissionDenied)
        #expect(await code { _ = try await reader.undelete(logged.id) } == .permissionDenied)
        let manager = try await harness.client(tenant: t, user: "manager", roles: [.manager])
        #expect(try await manager.log(.call).ownerId == "manager")
        let service = try await harness.client(tenant: "", token: try await ServiceHarness.serviceToken())
        #expect(await code { _ = try await service.list() } == .permissionDenied)
        #expect(await code { _ = try await service.log(.email) } == .permissionDenied)
    }

    @Test("WatchChanges streams created/updated/deleted/undeleted as Interaction proto3 JSON; private content is not published")
    func watchChanges() async throws {
        let client = try await harness.client(tenant: tenant())
        let first = try await client.log(.email, subject: "Watched") { $0.body = "visible body" }
        let stub = client.stub, options = client.options
        let events = Task {
            try await stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: options) { events in
                var seen: [Switchboard_Common_V1_ChangeEvent] = []
                for try await event in events {
                    seen.append(event)
                    if seen.count == 5 { break }
                }
                return seen
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        _ = try await client.update(first.id, paths: ["subject"]) { $0.subject = "Renamed" }
        _ = try await client.delete(first.id)
        _ = try await client.undelete(first.id)
        let secret = try await client.log(.email, subject: "private subject") {
            $0.body = "private body"
            $0.visibility = .private
            $0.addresses = ["someone@example.com"]
            $0.contactIds = [UUID().uuidString.lowercased()]
        }
        let seen = try await events.value
        #expect(seen.map(\.sequence) == [1, 2, 3, 4, 5])
        #expect(seen.map(\.kind) == [.created, .updated, .deleted, .undeleted, .created])
        #expect(Set(seen.map(\.resourceType)) == ["switchboard.communication.v1.Interaction"])
        #expect(seen[1].changedFields == ["subject"])
        let published = try Interaction(protoJSONText: try #require(seen[1].resource).protoJSONText())
        #expect(published.id == first.id)
        #expect(published.subject == "Renamed")
        #expect(published.body == "visible body")
        #expect(published.etag == "\"2\"")
        let redacted = try Interaction(protoJSONText: try #require(seen[4].resource).protoJSONText())
        #expect(redacted.id == secret.id)
        #expect(redacted.visibility == .private)
        #expect(redacted.subject.isEmpty && redacted.body.isEmpty && redacted.addresses.isEmpty)
        // Not even with whom, when, or whose: a stub.
        #expect(redacted.contactIds.isEmpty && redacted.ownerId.isEmpty && redacted.occurredAt == nil && redacted.kind == .unspecified)
        #expect(redacted.audit?.createTime != nil && redacted.etag == secret.etag)
    }

    @Test("a stock grpcio client calls the communication RPCs from stubs generated from Protos/")
    func grpcioClient() async throws {
        let token = try await ServiceHarness.token(tenant: tenant(), roles: [.user])
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("communication-grpcio-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let status = await spawnAndWait(
            [
                pythonPath, repositoryRoot.appendingPathComponent("Tests/Interop/communication_client.py").path,
                "--port", String(harness.service.port), "--token", token,
            ],
            environment: ["SWITCHBOARD_INTEROP_STUBS": interopStubsPath], outputPath: output)
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(log)")
        #expect(log.contains("PASS communication_client"), "\(log)")
        print(log)
    }
}
