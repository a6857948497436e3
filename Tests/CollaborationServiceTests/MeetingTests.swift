import CollaborationService
import Foundation
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardTestSupport
import Testing

typealias Meeting = Switchboard_Collaboration_V1_Meeting

/// Meetings: attendees, time zones, conflicts, lists and free slots.
@Suite("Collaboration meetings", .serialized)
final class MeetingTests {
    let harness: CollaborationHarness
    init() async throws { harness = try await CollaborationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    /// 2030-01-08 at `hour`:`minute` UTC.
    static func at(_ hour: Int, _ minute: Int = 0, day: Int = 0) -> Date {
        Date(timeIntervalSince1970: 1_894_060_800 + Double(day * 86_400 + hour * 3600 + minute * 60))
    }

    static func book(
        _ client: CollabClient, _ start: Date, _ end: Date, attendees: [String] = [], contacts: [String] = [], zone: String = "Europe/Berlin",
        title: String = "Meeting", allowConflicts: Bool = false, requestID: String = ""
    ) async throws -> Meeting {
        var meeting = Meeting()
        meeting.title = title
        meeting.startTime = start
        meeting.endTime = end
        meeting.timeZone = zone
        meeting.attendeeUserIds = attendees
        meeting.contactIds = contacts
        var request = Switchboard_Collaboration_V1_CreateMeetingRequest()
        request.meeting = meeting
        request.allowConflicts = allowConflicts
        request.requestId = requestID
        return try await client.stub.createMeeting(request, options: client.options)
    }

    func list(
        _ client: CollabClient, contact: String = "", user: String = "", from: Date? = nil, to: Date? = nil, pageSize: Int32 = 0
    )
        async throws -> [String]
    {
        var ids: [String] = []
        var token = ""
        repeat {
            var request = Switchboard_Collaboration_V1_ListMeetingsRequest()
            request.contactId = contact
            request.userId = user
            request.timeMin = from
            request.timeMax = to
            var page = Switchboard_Common_V1_PageRequest()
            page.pageSize = pageSize
            page.pageToken = token
            request.page = page
            let response = try await client.stub.listMeetings(request, options: client.options)
            ids += response.meetings.map(\.id)
            token = response.page?.nextPageToken ?? ""
        } while !token.isEmpty
        return ids
    }

    @Test("book with attendees and contacts; the organizer attends; retries book once; lists by contact and user in start order")
    func bookAndList() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        let contact = newID()
        let first = try await Self.book(alice, Self.at(9), Self.at(10), attendees: ["bob", "bob"], contacts: [contact], requestID: "m-1")
        #expect(first.attendeeUserIds == ["alice", "bob"])
        #expect(first.organizerId == "alice")
        #expect(first.timeZone == "Europe/Berlin")
        #expect(try await Self.book(alice, Self.at(9), Self.at(10), attendees: ["bob", "bob"], contacts: [contact], requestID: "m-1") == first)
        let second = try await Self.book(alice, Self.at(11), Self.at(12), contacts: [contact])
        let third = try await Self.book(alice, Self.at(8), Self.at(9), attendees: ["carol"])
        #expect(try await list(alice, contact: contact, pageSize: 1) == [first.id, second.id])
        #expect(try await list(alice, user: "alice") == [third.id, first.id, second.id])
        #expect(try await list(alice, user: "bob") == [first.id])
        #expect(try await list(alice, user: "alice", from: Self.at(9, 30), to: Self.at(11)) == [first.id])
        var get = Switchboard_Collaboration_V1_GetMeetingRequest()
        get.id = first.id
        #expect(try await alice.stub.getMeeting(get, options: alice.options) == first)
    }

    @Test("a window bound outside years 1-9999 is INVALID_ARGUMENT naming it, not an empty list")
    func windowOutOfRange() async throws {
        let alice = try await harness.client(tenant: tenant(), user: "alice")
        var request = Switchboard_Collaboration_V1_ListMeetingsRequest()
        request.userId = "alice"
        request.timeMin = Date(timeIntervalSince1970: 1e13)
        let error = await rpcError { _ = try await alice.stub.listMeetings(request, options: alice.options) }
        #expect(error?.code == .invalidArgument && error?.message.contains("time_min") == true, "\(String(describing: error))")
    }

    @Test("multi-day meetings conflict however long ago the earlier one began (an offsite on days 0-7, a booking on days 5-15)")
    func multiDayConflicts() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        let offsite = try await Self.book(alice, Self.at(9, day: 0), Self.at(17, day: 7), title: "Offsite")
        let error = await rpcError { _ = try await Self.book(alice, Self.at(9, day: 5), Self.at(17, day: 15), title: "Trip") }
        #expect(error?.code == .failedPrecondition && error?.message.contains(offsite.id) == true, "\(String(describing: error))")
        // Starting when the offsite ends is no conflict.
        _ = try await Self.book(alice, Self.at(17, day: 7), Self.at(9, day: 20), title: "After")
    }

    @Test("a conflict for any attendee user is FAILED_PRECONDITION naming the meetings, unless allow_conflicts")
    func conflicts() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        let bob = try await harness.client(tenant: tenantID, user: "bob")
        let standup = try await Self.book(bob, Self.at(9), Self.at(10))
        let error = await rpcError { _ = try await Self.book(alice, Self.at(9, 30), Self.at(10, 30), attendees: ["bob"]) }
        #expect(error?.code == .failedPrecondition)
        #expect(error?.message.contains(standup.id) == true)
        let details = try #require(error?.statusDetails?.details.first)
        let failure = try #require(try details.unpack(Google_Rpc_PreconditionFailure.self))
        #expect(failure.violations.map(\.subject) == ["switchboard.collaboration.v1.Meeting/\(standup.id)"])
        // Back to back is no conflict; nor is a meeting without bob.
        _ = try await Self.book(alice, Self.at(10), Self.at(11), attendees: ["bob"])
        _ = try await Self.book(alice, Self.at(9, 30), Self.at(10))
        let forced = try await Self.book(alice, Self.at(9, 30), Self.at(10, 30), attendees: ["bob"], allowConflicts: true)
        // Rescheduling into a conflict is refused the same way; cancelling frees the time.
        var update = Switchboard_Collaboration_V1_UpdateMeetingRequest()
        var change = Meeting()
        change.id = standup.id
        change.startTime = Self.at(13)
        change.endTime = Self.at(14)
        update.meeting = change
        update.updateMask = Google_Protobuf_FieldMask(paths: ["start_time", "end_time"])
        let moved = try await bob.stub.updateMeeting(update, options: bob.options)
        #expect(moved.startTime == Self.at(13))
        #expect(moved.etag == "\"2\"")
        var cancel = Switchboard_Collaboration_V1_DeleteMeetingRequest()
        cancel.id = forced.id
        #expect(try await alice.stub.deleteMeeting(cancel, options: alice.options).audit?.deleteTime != nil)
        let taken = try await Self.book(bob, Self.at(9, 30), Self.at(10))
        // Restoring the cancelled meeting now conflicts; with allow_conflicts it is restored.
        var undelete = Switchboard_Collaboration_V1_UndeleteMeetingRequest()
        undelete.id = forced.id
        let restoreError = await rpcError { _ = try await alice.stub.undeleteMeeting(undelete, options: alice.options) }
        #expect(restoreError?.code == .failedPrecondition)
        #expect(restoreError?.message.contains(taken.id) == true)
        undelete.allowConflicts = true
        #expect(try await alice.stub.undeleteMeeting(undelete, options: alice.options).audit?.deleteTime == nil)
        // Only the organizer, an attendee user or an admin changes a meeting.
        let carol = try await harness.client(tenant: tenantID, user: "carol")
        #expect(await rpcError { _ = try await carol.stub.updateMeeting(update, options: carol.options) }?.code == .permissionDenied)
    }

    @Test("two concurrent bookings of the same user at the same time: exactly one succeeds")
    func concurrentBookings() async throws {
        let tenantID = tenant()
        let clients = try await (0..<4).asyncMap { try await self.harness.client(tenant: tenantID, user: "organizer-\($0)") }
        let results = await withTaskGroup(of: Bool.self) { group in
            for client in clients {
                group.addTask { (try? await Self.book(client, Self.at(15), Self.at(16), attendees: ["busy-person"])) != nil }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 1)
    }

    @Test("free slots: the gaps all users share, at least the duration, within the range")
    func freeSlots() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        let bob = try await harness.client(tenant: tenantID, user: "bob")
        _ = try await Self.book(alice, Self.at(9), Self.at(10))
        _ = try await Self.book(bob, Self.at(9, 30), Self.at(11))
        _ = try await Self.book(bob, Self.at(11, 15), Self.at(12))
        _ = try await Self.book(alice, Self.at(14), Self.at(15))
        let cancelled = try await Self.book(alice, Self.at(16), Self.at(17))
        var cancel = Switchboard_Collaboration_V1_DeleteMeetingRequest()
        cancel.id = cancelled.id
        _ = try await alice.stub.deleteMeeting(cancel, options: alice.options)
        var request = Switchboard_Collaboration_V1_FindFreeSlotsRequest()
        request.userIds = ["alice", "bob"]
        request.rangeStart = Self.at(8)
        request.rangeEnd = Self.at(18)
        request.durationMinutes = 30
        let slots = try await alice.stub.findFreeSlots(request, options: alice.options).slots.map { ($0.startTime!, $0.endTime!) }
        let expected = [(Self.at(8), Self.at(9)), (Self.at(12), Self.at(14)), (Self.at(15), Self.at(18))]
        #expect(slots.map(\.0) == expected.map(\.0))
        #expect(slots.map(\.1) == expected.map(\.1))
        request.durationMinutes = 0
        #expect(fields(await rpcError { _ = try await alice.stub.findFreeSlots(request, options: alice.options) }) == ["duration_minutes"])
        request.durationMinutes = 30
        request.rangeEnd = Self.at(8, day: 32)
        #expect(fields(await rpcError { _ = try await alice.stub.findFreeSlots(request, options: alice.options) }) == ["range_end"])
        request.rangeEnd = Self.at(18)
        request.userIds = (0...20).map { "u\($0)" }
        #expect(fields(await rpcError { _ = try await alice.stub.findFreeSlots(request, options: alice.options) }) == ["user_ids"])
    }

    @Test("INVALID_ARGUMENT names the fields; another tenant sees nothing; ExportSubject includes the contact's meetings")
    func validationIsolationExport() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        let missing = await rpcError {
            _ = try await self.harness.client(tenant: tenantID).stub.createMeeting(
                Switchboard_Collaboration_V1_CreateMeetingRequest(), options: alice.options)
        }
        #expect(fields(missing) == ["meeting"])
        #expect(fields(await rpcError { _ = try await Self.book(alice, Self.at(10), Self.at(9)) }) == ["meeting.end_time"])
        #expect(fields(await rpcError { _ = try await Self.book(alice, Self.at(9), Self.at(9, day: 15)) }) == ["meeting.end_time"])
        #expect(fields(await rpcError { _ = try await Self.book(alice, Self.at(9), Self.at(10), zone: "Mars/Olympus") }) == ["meeting.time_zone"])
        #expect(fields(await rpcError { _ = try await Self.book(alice, Self.at(9), Self.at(10), zone: "") }) == ["meeting.time_zone"])
        #expect(fields(await rpcError { _ = try await Self.book(alice, Self.at(9), Self.at(10), title: "") }) == ["meeting.title"])
        #expect(fields(await rpcError { _ = try await Self.book(alice, Self.at(9), Self.at(10), contacts: ["x"]) }) == ["meeting.contact_ids[0]"])
        let crowd = (0...100).map { "u\($0)" }
        #expect(fields(await rpcError { _ = try await Self.book(alice, Self.at(9), Self.at(10), attendees: crowd) }) == ["meeting.attendee_user_ids"])
        #expect(fields(await rpcError { _ = try await self.list(alice) }) == ["contact_id"])

        let contact = newID()
        let meeting = try await Self.book(alice, Self.at(9), Self.at(10), contacts: [contact], zone: "America/New_York")
        let foreign = try await harness.client(tenant: tenant(), user: "alice", roles: [.admin])
        #expect(try await list(foreign, contact: contact).isEmpty)
        var get = Switchboard_Collaboration_V1_GetMeetingRequest()
        get.id = meeting.id
        #expect(await rpcError { _ = try await foreign.stub.getMeeting(get, options: foreign.options) }?.code == .notFound)
        // Another tenant's bookings never conflict.
        _ = try await Self.book(foreign, Self.at(9), Self.at(10))

        let admin = try await harness.client(tenant: tenantID, user: "boss", roles: [.admin])
        var export = Switchboard_Collaboration_V1_ExportSubjectRequest()
        export.contactId = contact
        let exported = try await admin.stub.exportSubject(export, options: admin.options) { stream in
            var ids: [String] = []
            for try await record in stream { if case .meeting(let m) = record.record { ids.append(m.id) } }
            return ids
        }
        #expect(exported == [meeting.id])
    }

    @Test("free slots around meetings in any order, overlapping or not (no I/O)")
    func freeSlotRule() {
        let range = TimeSlot(start: Self.at(8), end: Self.at(12))
        let busy = [
            TimeSlot(start: Self.at(10), end: Self.at(11)), TimeSlot(start: Self.at(7), end: Self.at(8, 30)),
            TimeSlot(start: Self.at(10, 30), end: Self.at(10, 45)),
        ]
        #expect(
            MeetingRules.freeSlots(in: range, busy: busy, minimum: 1800) == [
                TimeSlot(start: Self.at(8, 30), end: Self.at(10)), TimeSlot(start: Self.at(11), end: Self.at(12)),
            ])
        #expect(MeetingRules.freeSlots(in: range, busy: busy, minimum: 5401).isEmpty)
        #expect(MeetingRules.freeSlots(in: range, busy: [], minimum: 60) == [range])
    }

    @Test("a due reminder notifies every attendee user once; a later one waits; bad lead times are refused")
    func reminders() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        let bob = try await harness.client(tenant: tenantID, user: "bob")
        var meeting = Meeting()
        meeting.title = "Review"
        meeting.startTime = Date().addingTimeInterval(600)
        meeting.endTime = Date().addingTimeInterval(3600)
        meeting.timeZone = "Europe/Paris"
        meeting.attendeeUserIds = ["bob"]
        // 15 minutes before a start 10 minutes away is already due; 5 minutes before is not yet.
        meeting.reminderMinutes = [15, 5, 15]
        var book = Switchboard_Collaboration_V1_CreateMeetingRequest()
        book.meeting = meeting
        let booked = try await alice.stub.createMeeting(book, options: alice.options)
        #expect(booked.reminderMinutes == [5, 15])
        #expect(try await eventually { try await bob.inbox().notifications.contains { $0.kind == .reminder } })
        for client in [alice, bob] {
            let reminders = try await client.inbox().notifications.filter { $0.kind == .reminder }
            #expect(reminders.count == 1)
            #expect(reminders.first?.resourceId == booked.id)
        }
        let sent = try await harness.pool.query(
            settings: ["app.tenant_id": tenantID],
            "SELECT minutes, sent_at IS NOT NULL AS sent FROM collaboration.meeting_reminders ORDER BY minutes", []
        ).rows.map { (try $0.int("minutes"), try $0.bool("sent")) }
        #expect(sent.map(\.0) == [5, 15])
        #expect(sent.map(\.1) == [false, true])
        // Adding a lead time re-plans the unsent ones; the one already sent is not sent again, and the new 30 minutes,
        // due at once, reminds nobody: the attendees were already reminded closer to the start.
        var update = Switchboard_Collaboration_V1_UpdateMeetingRequest()
        var change = Meeting()
        change.id = booked.id
        change.reminderMinutes = [5, 15, 30]
        update.meeting = change
        update.updateMask = Google_Protobuf_FieldMask(paths: ["reminder_minutes"])
        _ = try await alice.stub.updateMeeting(update, options: alice.options)
        #expect(
            try await eventually {
                try await harness.pool.query(
                    settings: ["app.tenant_id": tenantID],
                    "SELECT count(*) AS n FROM collaboration.meeting_reminders WHERE minutes = 30 AND sent_at IS NOT NULL", []
                ).first!.int("n") == 1
            })
        #expect(try await bob.inbox().notifications.filter { $0.kind == .reminder }.count == 1)
        var cancel = Switchboard_Collaboration_V1_DeleteMeetingRequest()
        cancel.id = booked.id
        _ = try await alice.stub.deleteMeeting(cancel, options: alice.options)
        let left = try await harness.pool.query(
            settings: ["app.tenant_id": tenantID], "SELECT count(*) AS n FROM collaboration.meeting_reminders WHERE sent_at IS NULL", []
        ).first!.int("n")
        #expect(left == 0)

        meeting.reminderMinutes = [1, 2, 3, 4, 5, 6]
        book.meeting = meeting
        #expect(fields(await rpcError { _ = try await alice.stub.createMeeting(book, options: alice.options) }) == ["meeting.reminder_minutes"])
        meeting.reminderMinutes = [0]
        book.meeting = meeting
        #expect(fields(await rpcError { _ = try await alice.stub.createMeeting(book, options: alice.options) }) == ["meeting.reminder_minutes"])
    }

    @Test("a meeting booked inside several lead times reminds once, saying how far away its start really is")
    func catchUpReminder() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        var meeting = Meeting()
        meeting.title = String(repeating: "é", count: 100)  // 200 bytes: the longest title a meeting may have
        meeting.startTime = Date().addingTimeInterval(330)
        meeting.endTime = Date().addingTimeInterval(1800)
        meeting.timeZone = "UTC"
        meeting.reminderMinutes = [60, 30, 15, 10, 1]
        var book = Switchboard_Collaboration_V1_CreateMeetingRequest()
        book.meeting = meeting
        _ = try await alice.stub.createMeeting(book, options: alice.options)
        #expect(
            try await eventually {
                try await harness.pool.query(
                    settings: ["app.tenant_id": tenantID],
                    "SELECT count(*) AS n FROM collaboration.meeting_reminders WHERE sent_at IS NOT NULL", []
                ).first!.int("n") == 4
            })
        let reminders = try await alice.inbox().notifications.filter { $0.kind == .reminder }
        #expect(reminders.count == 1)
        let title = reminders.first?.title ?? ""
        #expect(title.hasSuffix(" starts in 6 minutes") || title.hasSuffix(" starts in 5 minutes"), "\(title)")
        #expect(title.utf8.count <= NotificationRules.maxTitleBytes && title.hasPrefix("éé"))
    }

    @Test("a local time daylight saving repeats is its earlier instant (RFC 5545); a skipped one moves forward by the gap")
    func ambiguousLocalTimes() async throws {
        let alice = try await harness.client(tenant: tenant(), user: "alice")
        // Daily at 01:30 in New York from 2030-11-02 (EDT, UTC-4): on 2030-11-03 01:30 happens twice (05:30Z in EDT,
        // then 06:30Z in EST); from 2030-11-04 it is EST (UTC-5).
        let november2 = Date(timeIntervalSince1970: 1_919_808_000)  // 2030-11-02T00:00:00Z
        func utc(day: Int, hour: Int, minute: Int = 0) -> Date { november2.addingTimeInterval(Double(day * 86_400 + hour * 3600 + minute * 60)) }
        var meeting = Meeting()
        meeting.title = "Night shift"
        meeting.startTime = utc(day: 0, hour: 5, minute: 30)
        meeting.endTime = utc(day: 0, hour: 5, minute: 45)
        meeting.timeZone = "America/New_York"
        var recurrence = Switchboard_Collaboration_V1_Recurrence()
        recurrence.frequency = .daily
        recurrence.count = 3
        meeting.recurrence = recurrence
        var book = Switchboard_Collaboration_V1_CreateMeetingRequest()
        book.meeting = meeting
        _ = try await alice.stub.createMeeting(book, options: alice.options)
        var list = Switchboard_Collaboration_V1_ListMeetingsRequest()
        list.userId = "alice"
        let occurrences = try await alice.stub.listMeetings(list, options: alice.options).meetings
        #expect(
            occurrences.map(\.startTime) == [utc(day: 0, hour: 5, minute: 30), utc(day: 1, hour: 5, minute: 30), utc(day: 2, hour: 6, minute: 30)])
    }

    @Test("a weekly series keeps its local time across daylight saving; every occurrence lists, conflicts and blocks slots")
    func recurrence() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        // Mondays at 09:00 in Berlin from 2030-03-18: CET (UTC+1) until the change on 2030-03-31, then CEST (UTC+2).
        let march18 = Date(timeIntervalSince1970: 1_900_022_400)  // 2030-03-18T00:00:00Z
        func utc(day: Int, hour: Int, minute: Int = 0) -> Date { march18.addingTimeInterval(Double(day * 86_400 + hour * 3600 + minute * 60)) }
        var meeting = Meeting()
        meeting.title = "Weekly"
        meeting.startTime = utc(day: 0, hour: 8)
        meeting.endTime = utc(day: 0, hour: 9)
        meeting.timeZone = "Europe/Berlin"
        var recurrence = Switchboard_Collaboration_V1_Recurrence()
        recurrence.frequency = .weekly
        recurrence.count = 3
        meeting.recurrence = recurrence
        var book = Switchboard_Collaboration_V1_CreateMeetingRequest()
        book.meeting = meeting
        let series = try await alice.stub.createMeeting(book, options: alice.options)
        #expect(series.recurrence?.count == 3)
        #expect(series.recurrence?.interval == 1)

        var list = Switchboard_Collaboration_V1_ListMeetingsRequest()
        list.userId = "alice"
        let occurrences = try await alice.stub.listMeetings(list, options: alice.options).meetings
        #expect(occurrences.map(\.id) == [series.id, series.id, series.id])
        #expect(occurrences.map(\.occurrence) == [0, 1, 2])
        #expect(occurrences.map(\.startTime) == [utc(day: 0, hour: 8), utc(day: 7, hour: 8), utc(day: 14, hour: 7)])
        #expect(occurrences.map(\.endTime) == [utc(day: 0, hour: 9), utc(day: 7, hour: 9), utc(day: 14, hour: 8)])

        let clash = await rpcError { _ = try await Self.book(alice, utc(day: 7, hour: 8, minute: 30), utc(day: 7, hour: 10)) }
        #expect(clash?.code == .failedPrecondition)
        #expect(clash?.message.contains(series.id) == true)
        var slots = Switchboard_Collaboration_V1_FindFreeSlotsRequest()
        slots.userIds = ["alice"]
        slots.rangeStart = utc(day: 14, hour: 6)
        slots.rangeEnd = utc(day: 14, hour: 10)
        slots.durationMinutes = 30
        let free = try await alice.stub.findFreeSlots(slots, options: alice.options).slots
        #expect(free.map(\.startTime) == [utc(day: 14, hour: 6), utc(day: 14, hour: 8)])
        #expect(free.map(\.endTime) == [utc(day: 14, hour: 7), utc(day: 14, hour: 10)])

        recurrence.count = 1
        meeting.recurrence = recurrence
        book.meeting = meeting
        book.allowConflicts = true
        #expect(fields(await rpcError { _ = try await alice.stub.createMeeting(book, options: alice.options) }) == ["meeting.recurrence.count"])
        recurrence.count = 101
        recurrence.interval = 53
        meeting.recurrence = recurrence
        book.meeting = meeting
        #expect(
            fields(await rpcError { _ = try await alice.stub.createMeeting(book, options: alice.options) }) == [
                "meeting.recurrence.count", "meeting.recurrence.interval",
            ])
        recurrence.frequency = .unspecified
        recurrence.count = 3
        recurrence.interval = 1
        meeting.recurrence = recurrence
        book.meeting = meeting
        #expect(fields(await rpcError { _ = try await alice.stub.createMeeting(book, options: alice.options) }) == ["meeting.recurrence.frequency"])
    }
}
