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

extension CommClient {
    func exportSubject(_ contact: String) async throws -> [Switchboard_Communication_V1_SubjectRecord] {
        var request = Switchboard_Communication_V1_ExportSubjectRequest()
        request.contactId = contact
        return try await stub.exportSubject(request, options: options) { records in
            var all: [Switchboard_Communication_V1_SubjectRecord] = []
            for try await record in records { all.append(record) }
            return all
        }
    }
}

/// ExportSubject: everything held about a person, for admins only, in byte-bounded batches.
@Suite("Communication service: subject export", .serialized)
final class SubjectExportTests {
    let harness: CommunicationHarness
    init() async throws { harness = try await CommunicationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test("an admin exports the person's interactions (private and deleted too), consent entries and sends; others get nothing")
    func export() async throws {
        let t = tenant()
        let user = try await harness.client(tenant: t)
        let admin = try await harness.client(tenant: t, user: "admin", roles: [.admin])
        let person = newID()
        let shared = try await user.log(.email, subject: "shared") { $0.contactIds = [person] }
        let secret = try await user.log(.call, subject: "private") {
            $0.contactIds = [person]
            $0.visibility = .private
        }
        let gone = try await user.log(.sms, subject: "deleted") { $0.contactIds = [person] }
        _ = try await user.delete(gone.id)
        _ = try await user.log(.email, subject: "someone else") { $0.contactIds = [newID()] }
        let grant = try await user.recordConsent(contact: person)
        let send = try await user.send(contact: person) { $0.sendAt = Date().addingTimeInterval(3600) }
        let records = try await admin.exportSubject(person)
        var interactions: [String] = [], consents: [String] = [], sends: [String] = []
        for record in records {
            switch record.record {
            case .interaction(let i): interactions.append(i.id)
            case .consent(let c): consents.append(c.id)
            case .send(let s): sends.append(s.id)
            default: Issue.record("an empty record")
            }
        }
        #expect(Set(interactions) == [shared.id, secret.id, gone.id])
        #expect(consents == [grant.id] && sends == [send.id])
        #expect(await code { _ = try await user.exportSubject(person) } == .permissionDenied)
        #expect(try await harness.client(tenant: tenant(), roles: [.admin]).exportSubject(person).isEmpty)
        #expect(fields(await rpcError { _ = try await admin.exportSubject("x") }) == ["contact_id"])
    }

    @Test("batches are bounded in bytes: large interactions come a few at a time, small ones many at a time, all of them once")
    func byteBudget() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let person = newID()
        var ids: Set<String> = []
        for i in 0..<6 {
            ids.insert(
                try await client.log(.email, subject: "big \(i)") {
                    $0.contactIds = [person]
                    $0.body = String(repeating: "x", count: 60_000)
                }.id)
        }
        for i in 0..<20 { ids.insert(try await client.log(.email, subject: "small \(i)") { $0.contactIds = [person] }.id) }
        let store = PostgresSubjectStore(pool: harness.pool, batchBytes: 100_000, batchRows: 8)
        var batches: [[String]] = []
        try await store.export(contact: UUID(uuidString: person)!, actor: Actor(tenantID: t, userID: "admin")) { records in
            batches.append(records.compactMap { if case .interaction(let i) = $0 { i.id.uuidString.lowercased() } else { nil } })
        }
        #expect(Set(batches.flatMap { $0 }) == ids)
        #expect(batches.flatMap { $0 }.count == ids.count)
        #expect(batches.allSatisfy { $0.count <= 8 })
        // No batch holds more than about the budget: at most one row past it (a batch's first row is always taken).
        let sizes = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            try await c.query(
                "SELECT id::text AS id, octet_length(subject) + octet_length(body) AS n FROM communication.interactions WHERE tenant_id = $1",
                [.text(t)]
            )
            .rows.reduce(into: [String: Int64]()) { $0[try $1.string("id")] = try $1.int("n") }
        }
        for batch in batches {
            let bytes = batch.map { sizes[$0] ?? 0 }
            #expect(bytes.dropLast().reduce(0, +) < 100_000, "\(bytes)")
        }
    }
}

/// The kit's cross-tenant feed, as the communication service serves it.
@Suite("Communication service: cross-tenant feed", .serialized)
struct CrossTenantFeedTests {
    @Test("a service identity reads every tenant's changes through WatchAllChanges; a tenant's user cannot")
    func watchAll() async throws {
        let harness = try await CommunicationHarness.start()
        defer { Task { await harness.stop() } }
        let (a, b) = (tenant(), tenant())
        _ = try await harness.client(tenant: a).log(.email, subject: "in a")
        _ = try await harness.client(tenant: b).log(.email, subject: "in b")
        let feed = Switchboard_Common_V1_ChangeFeedService_Client(client: RPCClient(transport: harness.channel))
        var options = CallOptions(timeout: .seconds(30))
        options.metadata.addString("Bearer \(try await ServiceHarness.serviceToken())", forKey: "authorization")
        let tenants = try await feed.watchAllChanges(Switchboard_Common_V1_WatchAllChangesRequest(), options: options) { batches in
            var seen: Set<String> = []
            for try await batch in batches {
                for event in batch.events { seen.insert(event.tenantId) }
                if seen.isSuperset(of: [a, b]) { break }
            }
            return seen
        }
        #expect(tenants.isSuperset(of: [a, b]))

        let user = try await harness.client(tenant: a)
        #expect(
            await code {
                _ = try await feed.watchAllChanges(Switchboard_Common_V1_WatchAllChangesRequest(), options: user.options) { batches in
                    for try await _ in batches { break }
                }
            } == .permissionDenied)
    }

    @Test("a private interaction reaches the cross-tenant feed whole (for the services acting for its owner), tenant readers a stub")
    func privateInteractionsWhole() async throws {
        let harness = try await CommunicationHarness.start()
        defer { Task { await harness.stop() } }
        let t = tenant()
        let contact = UUID().uuidString.lowercased()
        let owner = try await harness.client(tenant: t)
        let secret = try await owner.log(.call, subject: "private subject") {
            $0.body = "private body"
            $0.visibility = .private
            $0.contactIds = [contact]
            $0.followUpAt = Date().addingTimeInterval(3600)
        }
        let feed = Switchboard_Common_V1_ChangeFeedService_Client(client: RPCClient(transport: harness.channel))
        var options = CallOptions(timeout: .seconds(60))
        options.metadata.addString("Bearer \(try await ServiceHarness.serviceToken())", forKey: "authorization")
        let whole = try await feed.watchAllChanges(Switchboard_Common_V1_WatchAllChangesRequest(), options: options) {
            batches -> Switchboard_Common_V1_ChangeEvent? in
            for try await batch in batches {
                if let event = batch.events.first(where: { $0.resourceId == secret.id }) { return event }
            }
            return nil
        }
        let service = try Interaction(protoJSONText: try #require(whole?.resource).protoJSONText())
        #expect(service.subject == "private subject" && service.body.isEmpty && service.contactIds == [contact])
        #expect(service.ownerId == secret.ownerId && service.kind == .call && service.followUpAt != nil && service.visibility == .private)

        let tenantView = try await owner.stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: owner.options) {
            events -> Switchboard_Common_V1_ChangeEvent? in
            for try await event in events where event.resourceId == secret.id { return event }
            return nil
        }
        let stub = try Interaction(protoJSONText: try #require(tenantView?.resource).protoJSONText())
        #expect(stub.id == secret.id && stub.subject.isEmpty && stub.contactIds.isEmpty && stub.ownerId.isEmpty && stub.kind == .unspecified)
    }
}
