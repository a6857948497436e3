import CollaborationService
import Foundation
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardTestSupport
import Testing

/// Comment threads on notes and on records.
@Suite("Collaboration comments", .serialized)
final class CommentTests {
    let harness: CollaborationHarness
    init() async throws { harness = try await CollaborationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test("threads on a note and on a record, replies, oldest first in pages")
    func threads() async throws {
        let tenantID = tenant()
        let author = try await harness.client(tenant: tenantID, user: "author")
        let other = try await harness.client(tenant: tenantID, user: "other")
        let contact = subject()
        let note = try await author.createNote(about: [contact])
        let first = try await other.comment(note: note.id, body: "first")
        let reply = try await author.comment(note: note.id, parent: first.id, body: "reply")
        #expect(reply.parentId == first.id)
        let onRecord = try await other.comment(subject: contact, body: "on the contact")
        #expect(onRecord.subject == contact)
        let page1 = try await author.listComments(note: note.id, pageSize: 1)
        #expect(page1.comments.map(\.id) == [first.id])
        let page2 = try await author.listComments(note: note.id, pageSize: 1, token: page1.page!.nextPageToken)
        #expect(page2.comments.map(\.id) == [reply.id])
        #expect(page2.page?.nextPageToken == "")
        #expect(try await author.listComments(subject: contact).comments.map(\.id) == [onRecord.id])
        // A reply must stay in its thread.
        let crossed = await rpcError { _ = try await author.comment(subject: contact, parent: first.id) }
        #expect(fields(crossed) == ["comment.parent_id"])
    }

    @Test("edit and delete: the author or an admin; anyone else PERMISSION_DENIED")
    func authorship() async throws {
        let tenantID = tenant()
        let author = try await harness.client(tenant: tenantID, user: "author")
        let other = try await harness.client(tenant: tenantID, user: "other")
        let admin = try await harness.client(tenant: tenantID, user: "boss", roles: [.admin])
        let comment = try await author.comment(subject: subject(), body: "typo")
        #expect(await rpcError { _ = try await other.editComment(comment.id, body: "mine now") }?.code == .permissionDenied)
        #expect(await rpcError { _ = try await other.deleteComment(comment.id) }?.code == .permissionDenied)
        let edited = try await author.editComment(comment.id, body: "fixed")
        #expect(edited.body == "fixed")
        #expect(edited.etag == "\"2\"")
        let deleted = try await admin.deleteComment(comment.id)
        #expect(deleted.audit?.deleteTime != nil)
        #expect(await rpcError { _ = try await author.editComment(comment.id, body: "again") }?.code == .notFound)
    }

    @Test("comments on a private note exist only for the note's readers")
    func privateThread() async throws {
        let tenantID = tenant()
        let author = try await harness.client(tenant: tenantID, user: "author")
        let other = try await harness.client(tenant: tenantID, user: "other")
        let note = try await author.createNote(about: [subject()], visibility: .private)
        let comment = try await author.comment(note: note.id, body: "to self")
        #expect(await rpcError { _ = try await other.listComments(note: note.id) }?.code == .notFound)
        #expect(await rpcError { _ = try await other.comment(note: note.id) }?.code == .notFound)
        #expect(await rpcError { _ = try await other.deleteComment(comment.id) }?.code == .notFound)
        _ = try await author.share(note.id, user: "other")
        #expect(try await other.listComments(note: note.id).comments.map(\.id) == [comment.id])
    }

    @Test("INVALID_ARGUMENT names the fields; a second tenant sees nothing")
    func validationAndIsolation() async throws {
        let client = try await harness.client(tenant: tenant())
        #expect(fields(await rpcError { _ = try await client.comment(body: "x") }) == ["comment.note_id"])
        #expect(fields(await rpcError { _ = try await client.comment(note: newID(), subject: subject()) }) == ["comment.subject"])
        #expect(fields(await rpcError { _ = try await client.comment(subject: subject(), body: "") }) == ["comment.body"])
        let long = String(repeating: "x", count: 16_385)
        #expect(fields(await rpcError { _ = try await client.comment(subject: subject(), body: long) }) == ["comment.body"])
        #expect(fields(await rpcError { _ = try await client.comment(note: "nope") }) == ["comment.note_id"])
        #expect(fields(await rpcError { _ = try await client.listComments() }) == ["note_id"])
        let contact = subject()
        let comment = try await client.comment(subject: contact)
        let foreign = try await harness.client(tenant: tenant(), user: "boss", roles: [.admin])
        #expect(try await foreign.listComments(subject: contact).comments.isEmpty)
        #expect(await rpcError { _ = try await foreign.deleteComment(comment.id) }?.code == .notFound)
    }
}
