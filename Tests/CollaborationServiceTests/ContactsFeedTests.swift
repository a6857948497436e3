import CollaborationService
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// The contacts feed applied as the consumer applies it (one batch in one transaction), with real ChangeEvents.
@Suite("Collaboration: the contacts feed", .serialized)
final class ContactsFeedTests {
    let harness: CollaborationHarness

    init() async throws {
        // The feed's address is a closed port: the consumer retries in the background; the tests apply events directly.
        harness = try await CollaborationHarness.start(
            contactsFeed: CollaborationService.ContactsFeed(host: "127.0.0.1", port: 1, token: .file("/nonexistent")))
    }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    func event(
        _ tenant: String, _ contact: String, _ kind: Switchboard_Common_V1_ChangeKind, related: [String] = []
    )
        -> Switchboard_Common_V1_ChangeEvent
    {
        var e = Switchboard_Common_V1_ChangeEvent()
        // Distinct sequences: set-aside events are kept by feed sequence.
        e.sequence = Int64.random(in: 1...Int64.max / 2)
        e.tenantId = tenant
        e.resourceType = "switchboard.contacts.v1.Contact"
        e.resourceId = contact
        e.kind = kind
        e.relatedIds = related
        return e
    }

    func apply(_ events: [Switchboard_Common_V1_ChangeEvent]) async throws {
        let store = CollaborationService.store(pool: harness.pool)
        _ = try await harness.pool.transaction { c in
            try await CollaborationService.applyContactsEvents(events, store: store, logger: .init(label: "feed"), on: c)
        }
    }

    @Test("MERGED moves notes, files, comments and meetings from the loser to the winner, without duplicates")
    func merged() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (loser, winner) = (subject(.contact), subject(.contact))
        let organization = subject(.organization)
        let both = try await client.createNote(about: [loser, winner], body: "both")
        let onlyLoser = try await client.createNote(about: [organization, loser], body: "loser", visibility: .private)
        let comment = try await client.comment(subject: loser)
        var meeting = Switchboard_Collaboration_V1_Meeting()
        meeting.title = "Call"
        meeting.startTime = Date(timeIntervalSince1970: 1_900_000_000)
        meeting.endTime = Date(timeIntervalSince1970: 1_900_003_600)
        meeting.timeZone = "UTC"
        meeting.contactIds = [loser.id, winner.id]
        var book = Switchboard_Collaboration_V1_CreateMeetingRequest()
        book.meeting = meeting
        let booked = try await client.stub.createMeeting(book, options: client.options)

        try await apply([event(t, loser.id, .merged, related: [winner.id])])
        #expect(try await client.allNotes(loser).isEmpty)
        #expect(Set(try await client.allNotes(winner)) == [both.id, onlyLoser.id])
        #expect(try await client.getNote(both.id).subjects == [winner])
        #expect(try await client.getNote(onlyLoser.id).subjects == [organization, winner])
        #expect(try await client.listComments(subject: winner).comments.map(\.id) == [comment.id])
        var get = Switchboard_Collaboration_V1_GetMeetingRequest()
        get.id = booked.id
        #expect(try await client.stub.getMeeting(get, options: client.options).contactIds == [winner.id])
    }

    @Test("UNMERGED puts back what the merge moved: exactly where nothing changed since, beside or instead of the winner where it did")
    func unmerged() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (loser, winner) = (subject(.contact), subject(.contact))
        let organization = subject(.organization)
        let both = try await client.createNote(about: [loser, winner], body: "both")
        let onlyLoser = try await client.createNote(about: [organization, loser], body: "loser")
        let edited = try await client.createNote(about: [loser], body: "edited later")
        let comment = try await client.comment(subject: loser)
        var meeting = Switchboard_Collaboration_V1_Meeting()
        meeting.title = "Call"
        meeting.startTime = Date(timeIntervalSince1970: 1_900_000_000)
        meeting.endTime = Date(timeIntervalSince1970: 1_900_003_600)
        meeting.timeZone = "UTC"
        meeting.contactIds = [loser.id]
        var book = Switchboard_Collaboration_V1_CreateMeetingRequest()
        book.meeting = meeting
        let booked = try await client.stub.createMeeting(book, options: client.options)
        let content = Array("minutes".utf8)
        var upload = Switchboard_Collaboration_V1_UploadFileMetadata()
        var fileInfo = FileMessage()
        fileInfo.name = "minutes.txt"
        fileInfo.contentType = "text/plain"
        fileInfo.sizeBytes = Int64(content.count)
        fileInfo.sha256 = FileTests.sha256(content)
        fileInfo.subjects = [loser, organization]
        upload.file = fileInfo
        let file = try await client.stub.uploadFile(options: client.options) { [upload] call in
            var first = Switchboard_Collaboration_V1_UploadFileRequest()
            first.part = .metadata(upload)
            try await call.send(first)
            var chunk = Switchboard_Collaboration_V1_UploadFileRequest()
            chunk.part = .chunk(content)
            try await call.send(chunk)
        }.message
        func fileSubjects() async throws -> [Subject] {
            var get = Switchboard_Collaboration_V1_GetFileRequest()
            get.id = file.id
            return try await client.stub.getFile(get, options: client.options).subjects
        }

        try await apply([event(t, loser.id, .merged, related: [winner.id])])
        #expect(try await client.allNotes(loser).isEmpty)
        #expect(try await fileSubjects() == [winner, organization])
        // The log: one row per note, file, comment and meeting moved, in the tenant's reach only.
        func logged(as reader: String) async throws -> Int64 {
            try await harness.pool.transaction(settings: ["app.tenant_id": reader]) { c in
                try await c.query("SELECT count(*) AS n FROM collaboration.merge_moves", []).first!.int("n")
            }
        }
        #expect(try await logged(as: t) == 6)
        #expect(try await logged(as: tenant()) == 0)
        // Edited while merged: an organization added beside the winner.
        var update = Switchboard_Collaboration_V1_UpdateNoteRequest()
        var note = try await client.getNote(edited.id)
        note.subjects = [winner, organization]
        update.note = note
        var mask = Google_Protobuf_FieldMask()
        mask.paths = ["subjects"]
        update.updateMask = mask
        _ = try await client.stub.updateNote(update, options: client.options)

        try await apply([event(t, loser.id, .unmerged, related: [winner.id])])
        #expect(try await client.getNote(both.id).subjects == [loser, winner])
        #expect(try await client.getNote(onlyLoser.id).subjects == [organization, loser])
        #expect(try await client.getNote(edited.id).subjects == [loser, organization])
        #expect(Set(try await client.allNotes(loser)) == [both.id, onlyLoser.id, edited.id])
        #expect(Set(try await client.allNotes(winner)) == [both.id])
        #expect(try await client.listComments(subject: loser).comments.map(\.id) == [comment.id])
        #expect(try await client.listComments(subject: winner).comments.isEmpty)
        var get = Switchboard_Collaboration_V1_GetMeetingRequest()
        get.id = booked.id
        #expect(try await client.stub.getMeeting(get, options: client.options).contactIds == [loser.id])
        #expect(try await fileSubjects() == [loser, organization])
        // The log is gone: a second UNMERGED moves nothing.
        try await apply([event(t, loser.id, .unmerged, related: [winner.id])])
        #expect(try await client.getNote(both.id).subjects == [loser, winner])
        #expect(try await logged(as: t) == 0)
        // An erasure forgets the moves that name the person.
        try await apply([event(t, loser.id, .merged, related: [winner.id])])
        #expect(try await logged(as: t) > 0)
        try await apply([event(t, winner.id, .erased, related: ["erasure-1"])])
        #expect(try await logged(as: t) == 0)
    }

    @Test("the unmerge rule: exact when unchanged, beside or instead of the winner when changed, left alone otherwise")
    func unmergeRule() {
        let (l, w, o) = ("l", "w", "o")
        #expect(MergeLog.restored(before: [l, w], after: [w], current: [w], loser: l, winner: w) == [l, w])
        #expect(MergeLog.restored(before: [o, l], after: [o, w], current: [o, w], loser: l, winner: w) == [o, l])
        #expect(MergeLog.restored(before: [l], after: [w], current: [w, o], loser: l, winner: w) == [l, o])
        #expect(MergeLog.restored(before: [l, w], after: [w], current: [w, o], loser: l, winner: w) == [w, o, l])
        #expect(MergeLog.restored(before: [l], after: [w], current: [o], loser: l, winner: w) == nil)
        #expect(MergeLog.restored(before: [l], after: [w], current: [w, l], loser: l, winner: w) == nil)
    }

    @Test("ERASED deletes what was only about the person and takes them out of the rest; malformed events are set aside")
    func erased() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let person = subject(.contact)
        let other = subject(.contact)
        let only = try await client.createNote(about: [person], body: "about the person")
        let shared = try await client.createNote(about: [person, other], body: "about both")
        let thread = try await client.comment(note: only.id)
        let onRecord = try await client.comment(subject: person)
        _ = try await client.comment(subject: person, parent: onRecord.id)

        try await apply([event(t, person.id, .erased, related: ["erasure-9"]), event(t, "not-a-uuid", .erased), event(t, other.id, .merged)])
        let admin = try await harness.client(tenant: t, user: "boss", roles: [.admin])
        #expect(await rpcError { _ = try await admin.getNote(only.id, includeDeleted: true) }?.code == .notFound)
        #expect(try await admin.getNote(shared.id).subjects == [other])
        #expect(try await admin.allNotes(person).isEmpty)
        #expect(try await admin.listComments(subject: person).comments.isEmpty)
        #expect(await rpcError { _ = try await client.editComment(thread.id, body: "x") }?.code == .notFound)
        let setAside = try await harness.pool.query(
            settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM collaboration.feed_dead_letters", []
        ).first!.int("n")
        #expect(setAside == 2)
        // The stored events that named the person keep nothing of them, and a receipt with the counts is published.
        let (mentions, receipts) = try await harness.pool.transaction(settings: ["app.tenant_id": t]) { c in
            (
                try await c.query(
                    "SELECT count(*) AS n FROM collaboration.changes WHERE tenant_id = $1 AND kind <> 7 AND strpos(resource::text, $2) > 0",
                    [.text(t), .text(person.id)]
                ).first!.int("n"),
                try await c.query(
                    "SELECT related_ids, resource::text AS r FROM collaboration.changes WHERE tenant_id = $1 AND kind = 7", [.text(t)]
                ).rows.map { (try $0.strings("related_ids"), try $0.string("r")) }
            )
        }
        #expect(mentions == 0)
        #expect(receipts.count == 1 && receipts.first?.0 == ["erasure-9"])
        let receipt = try Switchboard_Collaboration_V1_ErasureReceipt(protoJSONText: try #require(receipts.first?.1))
        #expect(receipt.contactId == person.id && receipt.notesDeleted == 1 && receipt.notesChanged == 1 && receipt.commentsDeleted >= 1)
        #expect(receipt.changesRedacted >= 2, "\(receipt)")
        // Nothing outside the erasure may delete a note: the policy needs app.erasure.
        let refused = try await harness.pool.query(
            settings: ["app.tenant_id": t, "app.user_admin": "on"], "DELETE FROM collaboration.notes WHERE tenant_id = $1", [.text(t)]
        ).affectedRows
        #expect(refused == 0)
    }
}
