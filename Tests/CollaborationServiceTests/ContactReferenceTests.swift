import CollaborationService
import ContactsService
import Crypto
import Foundation
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// The contacts a write names are asked of a real contacts service over HTTP/2, with the caller's token: notes,
/// comments, files and meetings refuse a contact that is not live in the caller's tenant and write nothing.
@Suite("Collaboration: the contacts a write names must be live", .serialized)
final class ContactReferenceTests {
    let contacts: ServiceHarness
    let harness: CollaborationHarness

    init() async throws {
        contacts = try await ServiceHarness.start(ContactsService.description)
        harness = try await CollaborationHarness.start(contactsAddress: ("127.0.0.1", contacts.port))
    }
    deinit {
        let (h, c) = (harness, contacts)
        Task {
            await h.stop()
            await c.stop()
        }
    }

    private func upload(_ client: CollabClient, subjects: [Subject]) async throws -> Switchboard_Collaboration_V1_File {
        let content = Array("quarterly figures".utf8)
        var file = Switchboard_Collaboration_V1_File()
        file.name = "report.txt"
        file.contentType = "text/plain"
        file.sizeBytes = Int64(content.count)
        file.sha256 = SHA256.hash(data: content).map { String(format: "%02x", $0) }.joined()
        file.subjects = subjects
        var metadata = Switchboard_Collaboration_V1_UploadFileMetadata()
        metadata.file = file
        return try await client.stub.uploadFile(options: client.options) { [metadata] call in
            var first = Switchboard_Collaboration_V1_UploadFileRequest()
            first.part = .metadata(metadata)
            try await call.send(first)
            var chunk = Switchboard_Collaboration_V1_UploadFileRequest()
            chunk.part = .chunk(content)
            // The server may refuse before it reads the chunk; the call's status then says why.
            try? await call.send(chunk)
        }.message
    }

    private func count(_ table: String, _ t: String) async throws -> Int64 {
        try await harness.pool.query(
            settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM collaboration.\(table) WHERE tenant_id = $1", [.text(t)]
        ).first!.int("n")
    }

    @Test("notes, comments, files and meetings naming an unknown, deleted or other tenant's contact: NOT_FOUND naming the field")
    func refused() async throws {
        let (t, other) = (tenant(), tenant())
        let client = try await harness.client(tenant: t)
        let (ada, gone) = (try await contacts.person(t, "Ada"), try await contacts.person(t, "Gone"))
        try await contacts.deleteContact(t, gone)
        let stranger = try await contacts.person(other, "Stranger")
        let organization = subject(.organization)

        for bad in [newID(), gone, stranger] {
            let note = await rpcError { _ = try await client.createNote(about: [subject(.contact, ada), organization, subject(.contact, bad)]) }
            #expect(missingContacts(note, field: "note.subjects[2]") == [bad])
            #expect(
                missingContacts(await rpcError { _ = try await client.comment(subject: subject(.contact, bad)) }, field: "comment.subject") == [bad])
            let file = await rpcError { _ = try await self.upload(client, subjects: [subject(.contact, bad)]) }
            #expect(missingContacts(file, field: "metadata.file.subjects[0]") == [bad])
            let meeting = await rpcError {
                _ = try await MeetingTests.book(client, MeetingTests.at(9), MeetingTests.at(10), contacts: [ada, bad], allowConflicts: true)
            }
            #expect(missingContacts(meeting, field: "meeting.contact_ids[1]") == [bad])
        }
        for table in ["notes", "comments", "files", "meetings"] { #expect(try await count(table, t) == 0, "\(table)") }

        // Live contacts pass; organizations and interactions are not the contacts service's to check.
        _ = try await client.createNote(about: [subject(.contact, ada), organization, subject(.interaction)])
        _ = try await client.comment(subject: subject(.contact, ada))
        _ = try await client.comment(subject: subject(.organization))
        _ = try await upload(client, subjects: [subject(.contact, ada)])
        _ = try await MeetingTests.book(client, MeetingTests.at(9), MeetingTests.at(10), contacts: [ada], allowConflicts: true)
    }

    @Test("an update checks only the contacts it adds: one deleted since it was named may stay")
    func updateChecksAdded() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (ada, bob, cy) = (try await contacts.person(t, "Ada"), try await contacts.person(t, "Bob"), try await contacts.person(t, "Cy"))
        let note = try await client.createNote(about: [subject(.contact, ada), subject(.contact, bob)])
        let meeting = try await MeetingTests.book(client, MeetingTests.at(9), MeetingTests.at(10), contacts: [ada, bob], allowConflicts: true)
        try await contacts.deleteContact(t, bob)
        let unknown = newID()

        let moved = try await client.updateNote(note.id, paths: ["subjects"]) { $0.subjects = [subject(.contact, bob), subject(.contact, cy)] }
        #expect(moved.subjects.map(\.id) == [bob, cy])
        let refused = await rpcError {
            _ = try await client.updateNote(note.id, paths: ["subjects"]) { $0.subjects = [subject(.contact, bob), subject(.contact, unknown)] }
        }
        #expect(missingContacts(refused, field: "note.subjects[1]") == [unknown])
        #expect(try await client.getNote(note.id).subjects.map(\.id) == [bob, cy])

        func updateMeeting(_ contactIDs: [String]) async throws -> Meeting {
            var update = Meeting()
            update.id = meeting.id
            update.contactIds = contactIDs
            var request = Switchboard_Collaboration_V1_UpdateMeetingRequest()
            request.meeting = update
            request.updateMask = Google_Protobuf_FieldMask(paths: ["contact_ids"])
            request.allowConflicts = true
            return try await client.stub.updateMeeting(request, options: client.options)
        }
        #expect(try await updateMeeting([bob, cy]).contactIds == [bob, cy])
        #expect(missingContacts(await rpcError { _ = try await updateMeeting([unknown, bob]) }, field: "meeting.contact_ids[0]") == [unknown])
        var get = Switchboard_Collaboration_V1_GetMeetingRequest()
        get.id = meeting.id
        #expect(try await client.stub.getMeeting(get, options: client.options).contactIds == [bob, cy])
        // A note that does not exist is the update's NOT_FOUND, not a contact's.
        let absent = newID()
        let none = await rpcError {
            _ = try await client.updateNote(absent, paths: ["subjects"]) { $0.subjects = [subject(.contact, unknown)] }
        }
        #expect(none?.code == .notFound && none?.message.contains("subjects") == false, "\(String(describing: none))")
    }

    @Test("the contacts service unreachable: UNAVAILABLE, nothing written; a note about an organization goes on")
    func contactsUnreachable() async throws {
        let lonely = try await CollaborationHarness.start(contactsAddress: ("127.0.0.1", 1))
        defer { Task { await lonely.stop() } }
        let t = tenant()
        let client = try await lonely.client(tenant: t)
        let error = await rpcError { _ = try await client.createNote(about: [subject(.contact)]) }
        #expect(error?.code == .unavailable && error?.message.contains("nothing was written") == true, "\(String(describing: error))")
        _ = try await client.createNote(about: [subject(.organization)])
        let notes = try await lonely.pool.query(
            settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM collaboration.notes WHERE tenant_id = $1", [.text(t)]
        ).first!.int("n")
        #expect(notes == 1)
    }

    @Test("a retry of a note whose contact was deleted since replays its first response")
    func retryReplays() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let ada = try await contacts.person(t, "Ada")
        let requestID = UUID().uuidString
        let first = try await client.createNote(about: [subject(.contact, ada)], requestID: requestID)
        try await contacts.deleteContact(t, ada)
        #expect(try await client.createNote(about: [subject(.contact, ada)], requestID: requestID) == first)
        let fresh = await rpcError { _ = try await client.createNote(about: [subject(.contact, ada)], requestID: UUID().uuidString) }
        #expect(missingContacts(fresh, field: "note.subjects[0]") == [ada])
        #expect(try await count("notes", t) == 1)
    }
}
