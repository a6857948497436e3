import CollaborationService
import Foundation
import SwitchboardServiceKit
import Testing

/// The pure rules, without I/O.
@Suite("Collaboration rules")
struct RulesTests {
    @Test("notes: mentions deduplicated, team rules, merge copies only masked fields and refuses unknown ones")
    func notes() throws {
        var data = NoteData()
        data.subjects = [SubjectRef(type: .contact, id: UUID())]
        data.body = "x"
        data.visibility = .tenant
        data.mentionedUserIDs = ["a", "b", "a"]
        #expect(NoteRules.check(&data).isEmpty)
        #expect(data.mentionedUserIDs == ["a", "b"])
        data.teamID = UUID()
        #expect(NoteRules.check(&data).map(\.field) == ["note.team_id"])
        var source = NoteData()
        source.body = "new"
        source.visibility = .private
        let (merged, changed) = try NoteRules.merge(data, from: source, paths: ["body", "body"])
        #expect(merged.body == "new")
        #expect(merged.visibility == .tenant)
        #expect(changed == ["body"])
        #expect(throws: CollaborationError.self) { try NoteRules.merge(data, from: source, paths: ["author_id"]) }
        #expect(throws: CollaborationError.self) { try NoteRules.merge(data, from: source, paths: []) }
    }

    @Test("files: the hash is lower-cased, the content type defaulted, sizes and names checked")
    func files() {
        var data = FileData()
        data.name = "a.txt"
        data.sizeBytes = 10
        data.sha256 = String(repeating: "AB", count: 32)
        #expect(FileRules.check(&data, maxFileBytes: 10).isEmpty)
        #expect(data.sha256 == String(repeating: "ab", count: 32))
        #expect(data.contentType == "application/octet-stream")
        data.sizeBytes = 11
        data.name = "a/b"
        #expect(Set(FileRules.check(&data, maxFileBytes: 10).map(\.field)) == ["metadata.file.size_bytes", "metadata.file.name"])
    }

    @Test("meetings: the organizer attends first, lists deduplicated, reminders sorted, recurrence bounded")
    func meetings() {
        var data = MeetingData()
        data.title = "t"
        data.start = Date(timeIntervalSince1970: 0)
        data.end = Date(timeIntervalSince1970: 60)
        data.timeZone = "America/Argentina/Buenos_Aires"
        data.attendeeUserIDs = ["b", "organizer", "b"]
        data.reminderMinutes = [30, 5, 30]
        #expect(MeetingRules.check(&data, organizer: "organizer").isEmpty)
        #expect(data.attendeeUserIDs == ["organizer", "b"])
        #expect(data.reminderMinutes == [5, 30])
        data.timeZone = "Europe/Berlin; DROP"
        data.recurrence = Recurrence(frequency: .weekly, interval: 0, count: 1)
        #expect(
            Set(MeetingRules.check(&data, organizer: "organizer").map(\.field)) == [
                "meeting.time_zone", "meeting.recurrence.count", "meeting.recurrence.interval",
            ])
    }
}

/// The limiter of streams held at once: a process-wide limit, and one per key (a tenant, or a tenant's user).
@Suite("Stream limiter")
struct StreamLimiterTests {
    @Test("a key holds at most its limit, the process at most the total; a finished stream frees its place")
    func limits() async throws {
        let perUser = StreamLimiter(limit: 100, perKeyLimit: 2, what: "notification streams")
        // One gate per holder: an AsyncStream has one consumer.
        let gates = (0..<2).map { _ in AsyncStream<Void>.makeStream() }
        let (started, markStarted) = AsyncStream<Void>.makeStream()
        let holders = gates.map { gate in
            Task {
                try await perUser.run(tenant: "t/ada") {
                    markStarted.yield()
                    for await _ in gate.stream { break }
                }
            }
        }
        var iterator = started.makeAsyncIterator()
        for _ in 0..<2 { _ = await iterator.next() }
        await #expect(throws: TooManyStreams(limit: 2, what: "notification streams")) { try await perUser.run(tenant: "t/ada") {} }
        // Another user is not held back by Ada's streams.
        try await perUser.run(tenant: "t/bob") {}
        for gate in gates { gate.continuation.yield() }
        for holder in holders { try await holder.value }
        try await perUser.run(tenant: "t/ada") {}
        #expect(perUser.active == 0)
        let total = StreamLimiter(limit: 1, what: "uploads")
        #expect(total.perTenantLimit == 1)
    }
}
