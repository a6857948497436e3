import CollaborationService
import Crypto
import Foundation
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardTestSupport
import Testing

/// GetContactSummary: a contact's first pages of ListNotes, ListFiles and ListMeetings (meetings ending after
/// meetings_after, by default the time of the call) in one call, over HTTP/2 and PostgreSQL.
@Suite("Collaboration contact summary", .serialized)
final class ContactSummaryTests {
    let harness: CollaborationHarness
    init() async throws { harness = try await CollaborationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    private static func summary(
        _ client: CollabClient, _ contact: String, pageSize: Int32 = 0, after: Date? = nil
    ) async throws -> Switchboard_Collaboration_V1_ContactSummary {
        var request = Switchboard_Collaboration_V1_GetContactSummaryRequest()
        request.contactId = contact
        request.pageSize = pageSize
        request.meetingsAfter = after
        return try await client.stub.getContactSummary(request, options: client.options)
    }

    private static func page(_ size: Int32, _ token: String) -> Switchboard_Common_V1_PageRequest {
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = size
        page.pageToken = token
        return page
    }

    private static func files(
        _ client: CollabClient, _ contact: String, pageSize: Int32, token: String = ""
    ) async throws -> Switchboard_Collaboration_V1_ListFilesResponse {
        var request = Switchboard_Collaboration_V1_ListFilesRequest()
        request.subject = subject(.contact, contact)
        request.page = page(pageSize, token)
        return try await client.stub.listFiles(request, options: client.options)
    }

    private static func meetings(
        _ client: CollabClient, _ contact: String, after: Date, pageSize: Int32, token: String = ""
    ) async throws -> Switchboard_Collaboration_V1_ListMeetingsResponse {
        var request = Switchboard_Collaboration_V1_ListMeetingsRequest()
        request.contactId = contact
        request.timeMin = after
        request.page = page(pageSize, token)
        return try await client.stub.listMeetings(request, options: client.options)
    }

    /// A one-hour meeting about `contact` starting `hours` from now (negative: in the past).
    private static func book(_ client: CollabClient, _ contact: String, hours: Double, title: String) async throws -> Meeting {
        var request = Switchboard_Collaboration_V1_CreateMeetingRequest()
        request.meeting = Meeting()
        request.meeting?.title = title
        request.meeting?.startTime = Date().addingTimeInterval(hours * 3600)
        request.meeting?.endTime = Date().addingTimeInterval(hours * 3600 + 3600)
        request.meeting?.timeZone = "UTC"
        request.meeting?.contactIds = [contact]
        return try await client.stub.createMeeting(request, options: client.options)
    }

    /// A small file about `contact`, uploaded in one chunk.
    private static func upload(_ client: CollabClient, _ contact: String, _ content: [UInt8], name: String) async throws -> FileMessage {
        var metadata = Switchboard_Collaboration_V1_UploadFileMetadata()
        metadata.file = FileMessage()
        metadata.file?.name = name
        metadata.file?.contentType = "text/plain"
        metadata.file?.sizeBytes = Int64(content.count)
        metadata.file?.sha256 = SHA256.hash(data: content).map { String(format: "%02x", $0) }.joined()
        metadata.file?.subjects = [subject(.contact, contact)]
        return try await client.stub.uploadFile(options: client.options) { [metadata] call in
            var head = Switchboard_Collaboration_V1_UploadFileRequest()
            head.part = .metadata(metadata)
            try await call.send(head)
            var chunk = Switchboard_Collaboration_V1_UploadFileRequest()
            chunk.part = .chunk(content)
            try await call.send(chunk)
        }.message
    }

    @Test("the summary is the lists' first pages of 10: notes newest first, files, and meetings not yet ended in start order")
    func matchesLists() async throws {
        let t = tenant()
        let client = try await harness.client(tenant: t)
        let (contact, other) = (newID(), newID())
        let first = try await client.createNote(about: [subject(.contact, contact)], body: "first")
        let second = try await client.createNote(about: [subject(.contact, contact), subject(.contact, other)], body: "second")
        _ = try await client.createNote(about: [subject(.contact, other)], body: "another contact's")
        let file = try await Self.upload(client, contact, [1, 2, 3], name: "contract.txt")
        _ = try await Self.upload(client, other, [4], name: "other.txt")
        let past = try await Self.book(client, contact, hours: -48, title: "Past")
        let ongoing = try await Self.book(client, contact, hours: -0.5, title: "Ongoing")
        let coming = try await Self.book(client, contact, hours: 48, title: "Coming")

        let summary = try await Self.summary(client, contact)
        #expect(summary.notes == (try await client.listNotes(subject(.contact, contact), pageSize: 10)))
        #expect(summary.files == (try await Self.files(client, contact, pageSize: 10)))
        #expect(summary.meetings == (try await Self.meetings(client, contact, after: Date(), pageSize: 10)))
        #expect(summary.notes?.notes.map(\.id) == [second.id, first.id])
        #expect(summary.files?.files == [file])
        #expect(summary.meetings?.meetings.map(\.title) == ["Ongoing", "Coming"])
        #expect(summary.meetings?.meetings.map(\.id) == [ongoing.id, coming.id])
        // meetings_after moves the window: three days back includes the past meeting, an hour ahead only the coming one.
        let since = Date().addingTimeInterval(-72 * 3600)
        let all = try await Self.summary(client, contact, after: since)
        #expect(all.meetings == (try await Self.meetings(client, contact, after: since, pageSize: 10)))
        #expect(all.meetings?.meetings.map(\.id) == [past.id, ongoing.id, coming.id])
        #expect(try await Self.summary(client, contact, after: Date().addingTimeInterval(3600)).meetings?.meetings.map(\.id) == [coming.id])
        // A read-only caller gets the same lists.
        let reader = try await harness.client(tenant: t, user: "reader", roles: [.readOnly])
        #expect(try await Self.summary(reader, contact, after: since) == all)
    }

    @Test("page_size bounds every list and the tokens continue through the list RPCs; bad page_size or contact_id is INVALID_ARGUMENT")
    func pagingAndValidation() async throws {
        let client = try await harness.client(tenant: tenant())
        let contact = newID()
        let (n1, n2) = (
            try await client.createNote(about: [subject(.contact, contact)]), try await client.createNote(about: [subject(.contact, contact)])
        )
        let (f1, f2) = (try await Self.upload(client, contact, [1], name: "a.txt"), try await Self.upload(client, contact, [2], name: "b.txt"))
        let (m1, m2) = (try await Self.book(client, contact, hours: 24, title: "One"), try await Self.book(client, contact, hours: 48, title: "Two"))
        let since = Date()

        let one = try await Self.summary(client, contact, pageSize: 1, after: since)
        #expect(one.notes?.notes.map(\.id) == [n2.id])
        #expect(one.files?.files.count == 1)
        #expect(one.meetings?.meetings.map(\.id) == [m1.id])
        let tokens = [one.notes?.page?.nextPageToken, one.files?.page?.nextPageToken, one.meetings?.page?.nextPageToken].map { $0 ?? "" }
        #expect(tokens.allSatisfy { !$0.isEmpty }, "\(tokens)")
        #expect(try await client.listNotes(subject(.contact, contact), pageSize: 1, token: tokens[0]).notes.map(\.id) == [n1.id])
        let nextFile = try await Self.files(client, contact, pageSize: 1, token: tokens[1]).files.map(\.id)
        #expect(Set((one.files?.files.map(\.id) ?? []) + nextFile) == [f1.id, f2.id])
        #expect(try await Self.meetings(client, contact, after: since, pageSize: 1, token: tokens[2]).meetings.map(\.id) == [m2.id])
        let fifty = try await Self.summary(client, contact, pageSize: 50)
        #expect([fifty.notes?.notes.count, fifty.files?.files.count, fifty.meetings?.meetings.count] == [2, 2, 2])

        for size: Int32 in [51, -1, .max, .min] {
            let error = await rpcError { _ = try await Self.summary(client, contact, pageSize: size) }
            #expect(error?.code == .invalidArgument && fields(error) == ["page_size"], "page_size \(size): \(String(describing: error))")
        }
        for id in ["", "nope", "12345678-1234-1234-1234-12345678901z"] {
            let error = await rpcError { _ = try await Self.summary(client, id) }
            #expect(error?.code == .invalidArgument && fields(error) == ["contact_id"], "contact_id \(id): \(String(describing: error))")
        }
    }

    @Test("another tenant's summary of the same contact holds none of the first tenant's notes, files or meetings, as its lists")
    func tenantIsolation() async throws {
        let a = try await harness.client(tenant: tenant())
        let b = try await harness.client(tenant: tenant(), user: "boss", roles: [.admin])
        let contact = newID()
        let note = try await a.createNote(about: [subject(.contact, contact)], body: "tenant secret")
        _ = try await Self.upload(a, contact, [7], name: "secret.txt")
        _ = try await Self.book(a, contact, hours: 24, title: "Secret")
        #expect(try await Self.summary(a, contact).notes?.notes.map(\.id) == [note.id])

        let since = Date()
        let theirs = try await Self.summary(b, contact, after: since)
        #expect(theirs.notes == (try await b.listNotes(subject(.contact, contact), pageSize: 10)))
        #expect(theirs.files == (try await Self.files(b, contact, pageSize: 10)))
        #expect(theirs.meetings == (try await Self.meetings(b, contact, after: since, pageSize: 10)))
        #expect(theirs.notes?.notes.isEmpty == true && theirs.files?.files.isEmpty == true && theirs.meetings?.meetings.isEmpty == true)
        // B's own note about the same contact id is B's alone.
        let mine = try await b.createNote(about: [subject(.contact, contact)], body: "B's")
        #expect(try await Self.summary(b, contact).notes?.notes.map(\.id) == [mine.id])
        #expect(try await Self.summary(a, contact).notes?.notes.map(\.id) == [note.id])
    }

    @Test("without meetings_after the answer names the instant it used, with which the meetings' token continues; a bad meetings_after is named")
    func meetingsWindow() async throws {
        let client = try await harness.client(tenant: tenant())
        let contact = newID()
        _ = try await Self.book(client, contact, hours: 24, title: "One")
        let second = try await Self.book(client, contact, hours: 48, title: "Two")
        let before = Date()
        let summary = try await Self.summary(client, contact, pageSize: 1)
        let token = summary.meetings?.page?.nextPageToken ?? ""
        #expect(!token.isEmpty)
        // The token is bound to the window's start: the server's clock at the call, to the second, which the answer names.
        let after = try #require(summary.meetingsAfter)
        #expect(after.timeIntervalSince1970 == after.timeIntervalSince1970.rounded(.down))
        #expect(after > before.addingTimeInterval(-1) && after <= Date())
        #expect(try await Self.meetings(client, contact, after: after, pageSize: 1, token: token).meetings.map(\.id) == [second.id])
        // A window given by the caller comes back as given.
        let echoed = try #require(try await Self.summary(client, contact, after: before).meetingsAfter)
        #expect(abs(echoed.timeIntervalSince(before)) < 0.000_001)
        let farAhead = await rpcError { _ = try await Self.summary(client, contact, after: Date(timeIntervalSince1970: 1e13)) }
        #expect(farAhead?.code == .invalidArgument)
        #expect(fields(farAhead) == ["meetings_after"], "\(String(describing: farAhead))")
    }
}
