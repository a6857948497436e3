import CollaborationService
import Foundation
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardTestSupport
import Testing

/// Notes over real HTTP/2 against a real PostgreSQL, as the service's own (RLS-bound) role.
@Suite("Collaboration notes", .serialized)
final class NoteTests {
    let harness: CollaborationHarness
    init() async throws { harness = try await CollaborationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test("create, get, update with mask and etag, delete, undelete")
    func lifecycle() async throws {
        let client = try await harness.client(tenant: tenant())
        let contact = subject(.contact), organization = subject(.organization)
        let created = try await client.createNote(about: [contact, organization], body: "met at the fair")
        #expect(created.authorId == "user-1")
        #expect(created.etag == "\"1\"")
        #expect(created.visibility == .tenant)
        #expect(created.subjects == [contact, organization])
        #expect(try await client.getNote(created.id) == created)

        let updated = try await client.updateNote(created.id, paths: ["body"], etag: created.etag) { $0.body = "met twice" }
        #expect(updated.body == "met twice")
        #expect(updated.subjects == created.subjects)
        #expect(updated.etag == "\"2\"")
        let stale = await rpcError { _ = try await client.updateNote(created.id, paths: ["body"], etag: created.etag) { $0.body = "x" } }
        #expect(stale?.code == .aborted)
        let unknownPath = await rpcError { _ = try await client.updateNote(created.id, paths: ["author_id"]) { _ in } }
        #expect(fields(unknownPath) == ["update_mask"])

        let moved = try await client.updateNote(created.id, paths: ["subjects"]) { $0.subjects = [organization] }
        #expect(try await client.allNotes(contact).isEmpty)
        #expect(try await client.allNotes(organization) == [moved.id])

        let deleted = try await client.deleteNote(created.id)
        #expect(deleted.audit?.deleteTime != nil)
        #expect(await rpcError { _ = try await client.getNote(created.id) }?.code == .notFound)
        #expect(try await client.getNote(created.id, includeDeleted: true).id == created.id)
        #expect(try await client.allNotes(organization).isEmpty)
        #expect(try await client.listNotes(organization, includeDeleted: true).notes.map(\.id) == [created.id])
        let restored = try await client.undeleteNote(created.id)
        #expect(restored.audit?.deleteTime == nil)
        #expect(try await client.allNotes(organization) == [created.id])
    }

    @Test("list by subject pages newest first with keyset tokens bound to their subject")
    func listPages() async throws {
        let client = try await harness.client(tenant: tenant())
        let contact = subject(.contact)
        var ids: [String] = []
        for i in 0..<5 { ids.append(try await client.createNote(about: [contact], body: "note \(i)").id) }
        _ = try await client.createNote(about: [subject(.contact)], body: "another contact's")
        #expect(try await client.allNotes(contact, pageSize: 2) == ids.reversed())
        let first = try await client.listNotes(contact, pageSize: 2)
        let wrongSubject = await rpcError { _ = try await client.listNotes(subject(.contact), token: first.page!.nextPageToken) }
        #expect(fields(wrongSubject) == ["page.page_token"])
        let garbage = await rpcError { _ = try await client.listNotes(contact, token: "not-a-token") }
        #expect(fields(garbage) == ["page.page_token"])
        let negative = await rpcError { _ = try await client.listNotes(contact, pageSize: -1) }
        #expect(fields(negative) == ["page.page_size"])
    }

    @Test("INVALID_ARGUMENT names each bad field; every bound is enforced")
    func validation() async throws {
        let client = try await harness.client(tenant: tenant())
        let noSubjects = await rpcError { _ = try await client.createNote(about: [], body: "") }
        #expect(fields(noSubjects) == ["note.subjects", "note.body"])
        var badSubject = subject(.contact, "nope")
        badSubject.type = .unspecified
        let bad = await rpcError { _ = try await client.createNote(about: [badSubject]) }
        #expect(fields(bad) == ["note.subjects[0].type", "note.subjects[0].id"])
        let tooMany = await rpcError { _ = try await client.createNote(about: (0...16).map { _ in subject() }) }
        #expect(fields(tooMany) == ["note.subjects"])
        let contact = subject()
        let duplicate = await rpcError { _ = try await client.createNote(about: [contact, contact]) }
        #expect(fields(duplicate) == ["note.subjects"])
        let long = await rpcError { _ = try await client.createNote(about: [subject()], body: String(repeating: "x", count: 65_537)) }
        #expect(fields(long) == ["note.body"])
        #expect(try await client.createNote(about: [subject()], body: String(repeating: "x", count: 65_536)).body.utf8.count == 65_536)
        let teamless = await rpcError { _ = try await client.createNote(about: [subject()], visibility: .team) }
        #expect(fields(teamless) == ["note.team_id"])
        let unknownTeam = await rpcError { _ = try await client.createNote(about: [subject()], visibility: .team, team: newID()) }
        #expect(unknownTeam?.code == .notFound)
        let mentions = await rpcError { _ = try await client.createNote(about: [subject()], mentions: (0...32).map { "u\($0)" }) }
        #expect(fields(mentions) == ["note.mentioned_user_ids"])
        let privateMention = await rpcError { _ = try await client.createNote(about: [subject()], visibility: .private, mentions: ["u2"]) }
        #expect(fields(privateMention) == ["note.mentioned_user_ids"])
        let badID = await rpcError { _ = try await client.getNote("x") }
        #expect(fields(badID) == ["id"])
        let requestID = await rpcError { _ = try await client.createNote(about: [subject()], requestID: String(repeating: "r", count: 129)) }
        #expect(fields(requestID) == ["request_id"])
    }

    @Test("a create retried with its request id returns the first note and writes nothing twice")
    func idempotentCreate() async throws {
        let tenantID = tenant()
        let client = try await harness.client(tenant: tenantID)
        let contact = subject()
        let first = try await client.createNote(about: [contact], body: "once", requestID: "req-1")
        let retry = try await client.createNote(about: [contact], body: "once", requestID: "req-1")
        #expect(retry == first)
        #expect(try await client.allNotes(contact) == [first.id])
        // Request ids are the caller's: another user reusing one gets no replay of a note they may not read.
        let secret = try await client.createNote(about: [contact], body: "secret", visibility: .private, requestID: "req-2")
        let other = try await harness.client(tenant: tenantID, user: "someone-else")
        let theirs = try await other.createNote(about: [contact], body: "mine", visibility: .private, requestID: "req-2")
        #expect(theirs.id != secret.id)
        #expect(theirs.body == "mine")
    }

    @Test("a second tenant sees and touches nothing")
    func tenantIsolation() async throws {
        let tenantA = tenant()
        let a = try await harness.client(tenant: tenantA)
        let b = try await harness.client(tenant: tenant())
        let bAdmin = try await harness.client(tenant: tenant(), user: "admin", roles: [.admin])
        let contact = subject()
        let note = try await a.createNote(about: [contact])
        for other in [b, bAdmin] {
            #expect(await rpcError { _ = try await other.getNote(note.id) }?.code == .notFound)
            #expect(await rpcError { _ = try await other.updateNote(note.id, paths: ["body"]) { $0.body = "x" } }?.code == .notFound)
            #expect(await rpcError { _ = try await other.deleteNote(note.id) }?.code == .notFound)
            #expect(try await other.allNotes(contact).isEmpty)
            #expect(await rpcError { _ = try await other.comment(note: note.id) }?.code == .notFound)
        }
    }

    @Test("roles: read-only users read, only users write")
    func roles() async throws {
        let tenantID = tenant()
        let writer = try await harness.client(tenant: tenantID)
        let reader = try await harness.client(tenant: tenantID, user: "reader", roles: [.readOnly])
        let note = try await writer.createNote(about: [subject()])
        #expect(try await reader.getNote(note.id).id == note.id)
        #expect(await rpcError { _ = try await reader.createNote(about: [subject()]) }?.code == .permissionDenied)
        #expect(await rpcError { _ = try await reader.deleteNote(note.id) }?.code == .permissionDenied)
        #expect(await rpcError { _ = try await reader.comment(note: note.id) }?.code == .permissionDenied)
    }

    @Test("change events: created, updated with fields, deleted, undeleted; non-tenant notes without their body")
    func changeEvents() async throws {
        let client = try await harness.client(tenant: tenant())
        let note = try await client.createNote(about: [subject()], body: "public")
        _ = try await client.updateNote(note.id, paths: ["body"]) { $0.body = "public 2" }
        _ = try await client.deleteNote(note.id)
        _ = try await client.undeleteNote(note.id)
        let secret = try await client.createNote(about: [subject()], body: "secret", visibility: .private)
        var request = Switchboard_Common_V1_WatchChangesRequest()
        request.fromSequence = 0
        let events = try await client.stub.watchChanges(request, options: client.options) { stream in
            var events: [Switchboard_Common_V1_ChangeEvent] = []
            for try await event in stream {
                events.append(event)
                if events.count == 5 { break }
            }
            return events
        }
        #expect(events.map(\.kind) == [.created, .updated, .deleted, .undeleted, .created])
        #expect(events.map(\.resourceId) == [note.id, note.id, note.id, note.id, secret.id])
        #expect(events[1].changedFields == ["body"])
        let published = try Note(protoJSONText: try events[1].resource!.protoJSONText())
        #expect(published.body == "public 2")
        let hidden = try Note(protoJSONText: try events[4].resource!.protoJSONText())
        #expect(hidden.body.isEmpty)
        #expect(hidden.id == secret.id)
        // Nothing else of a private note either: not what it is about, who wrote it, or when.
        #expect(hidden.subjects.isEmpty && hidden.authorId.isEmpty && hidden.audit == nil && hidden.visibility == .private)
    }
}
