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

/// Exceptions to recurring meetings (one occurrence cancelled, moved, restored) and monthly recurrence.
@Suite("Collaboration meeting occurrences", .serialized)
final class OccurrenceTests {
    let harness: CollaborationHarness
    init() async throws { harness = try await CollaborationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    /// 2030-01-08 at `hour`:`minute` UTC, plus `day` days.
    static func at(_ hour: Int, _ minute: Int = 0, day: Int = 0) -> Date { MeetingTests.at(hour, minute, day: day) }

    /// Books a series of `count` occurrences (daily unless told) for `client`.
    static func series(
        _ client: CollabClient, _ start: Date, _ end: Date, count: Int32 = 3, frequency: Switchboard_Collaboration_V1_Recurrence.Frequency = .daily,
        attendees: [String] = [], contacts: [String] = [], zone: String = "UTC", reminders: [Int32] = [], title: String = "Series"
    ) async throws -> Meeting {
        var meeting = Meeting()
        meeting.title = title
        meeting.startTime = start
        meeting.endTime = end
        meeting.timeZone = zone
        meeting.attendeeUserIds = attendees
        meeting.contactIds = contacts
        meeting.reminderMinutes = reminders
        var recurrence = Switchboard_Collaboration_V1_Recurrence()
        recurrence.frequency = frequency
        recurrence.count = count
        meeting.recurrence = recurrence
        var request = Switchboard_Collaboration_V1_CreateMeetingRequest()
        request.meeting = meeting
        return try await client.stub.createMeeting(request, options: client.options)
    }

    static func cancel(_ client: CollabClient, _ id: String, _ occurrence: Int32, etag: String = "", requestID: String = "") async throws -> Meeting {
        var request = Switchboard_Collaboration_V1_CancelOccurrenceRequest()
        request.id = id
        request.occurrence = occurrence
        request.etag = etag
        request.requestId = requestID
        return try await client.stub.cancelOccurrence(request, options: client.options)
    }

    static func move(
        _ client: CollabClient, _ id: String, _ occurrence: Int32, _ start: Date?, _ end: Date?, allowConflicts: Bool = false, etag: String = "",
        requestID: String = ""
    ) async throws -> Meeting {
        var request = Switchboard_Collaboration_V1_MoveOccurrenceRequest()
        request.id = id
        request.occurrence = occurrence
        request.startTime = start
        request.endTime = end
        request.allowConflicts = allowConflicts
        request.etag = etag
        request.requestId = requestID
        return try await client.stub.moveOccurrence(request, options: client.options)
    }

    static func restore(_ client: CollabClient, _ id: String, _ occurrence: Int32, allowConflicts: Bool = false) async throws -> Meeting {
        var request = Switchboard_Collaboration_V1_RestoreOccurrenceRequest()
        request.id = id
        request.occurrence = occurrence
        request.allowConflicts = allowConflicts
        return try await client.stub.restoreOccurrence(request, options: client.options)
    }

    /// The occurrences listed for a user or a contact: (meeting id, occurrence, start, end).
    static func occurrences(_ client: CollabClient, user: String = "", contact: String = "") async throws -> [(String, Int32, Date, Date)] {
        var request = Switchboard_Collaboration_V1_ListMeetingsRequest()
        request.userId = user
        request.contactId = contact
        return try await client.stub.listMeetings(request, options: client.options).meetings.map {
            ($0.id, $0.occurrence, $0.startTime!, $0.endTime!)
        }
    }

    static func freeSlots(_ client: CollabClient, users: [String], _ from: Date, _ to: Date) async throws -> [(Date, Date)] {
        var request = Switchboard_Collaboration_V1_FindFreeSlotsRequest()
        request.userIds = users
        request.rangeStart = from
        request.rangeEnd = to
        request.durationMinutes = 30
        return try await client.stub.findFreeSlots(request, options: client.options).slots.map { ($0.startTime!, $0.endTime!) }
    }

    @Test("a cancelled occurrence leaves lists, conflicts and free slots; a moved one is at its new time in each; restore checks conflicts")
    func cancelAndMove() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        let bob = try await harness.client(tenant: tenantID, user: "bob")
        let contact = newID()
        // Daily 09:00-10:00 UTC on days 0, 1, 2.
        let series = try await Self.series(alice, Self.at(9), Self.at(10), attendees: ["bob"], contacts: [contact])
        let cancelled = try await Self.cancel(alice, series.id, 1, etag: series.etag, requestID: "cancel-1")
        #expect(cancelled.etag == "\"2\"")
        #expect(try await Self.cancel(alice, series.id, 1, etag: series.etag, requestID: "cancel-1") == cancelled)
        // Cancelling it again changes nothing.
        #expect(try await Self.cancel(alice, series.id, 1).etag == cancelled.etag)
        let moved = try await Self.move(bob, series.id, 2, Self.at(14, day: 2), Self.at(15, day: 2), etag: cancelled.etag)
        let exceptions = try #require(moved.recurrence?.exceptions)
        #expect(exceptions.map(\.occurrence) == [1, 2])
        #expect(exceptions.map(\.cancelled) == [true, false])
        #expect(exceptions[1].startTime == Self.at(14, day: 2) && exceptions[1].endTime == Self.at(15, day: 2))
        var get = Switchboard_Collaboration_V1_GetMeetingRequest()
        get.id = series.id
        #expect(try await alice.stub.getMeeting(get, options: alice.options) == moved)
        // The series keeps its own times; the exceptions only change occurrences.
        #expect(moved.startTime == Self.at(9) && moved.recurrence?.count == 3)

        for listed in [try await Self.occurrences(alice, user: "bob"), try await Self.occurrences(alice, contact: contact)] {
            #expect(listed.map(\.1) == [0, 2])
            #expect(listed.map(\.2) == [Self.at(9), Self.at(14, day: 2)])
            #expect(listed.map(\.3) == [Self.at(10), Self.at(15, day: 2)])
        }
        // The cancelled time and the moved occurrence's old time are free; its new time is not.
        _ = try await MeetingTests.book(bob, Self.at(9, 15, day: 1), Self.at(9, 45, day: 1), title: "In the cancelled slot")
        _ = try await MeetingTests.book(bob, Self.at(9, day: 2), Self.at(10, day: 2), title: "In the old slot")
        let clash = await rpcError { _ = try await MeetingTests.book(bob, Self.at(14, 30, day: 2), Self.at(16, day: 2)) }
        #expect(clash?.code == .failedPrecondition && clash?.message.contains(series.id) == true, "\(String(describing: clash))")
        let slots = try await Self.freeSlots(alice, users: ["alice"], Self.at(8, day: 2), Self.at(16, day: 2))
        #expect(slots.map(\.0) == [Self.at(8, day: 2), Self.at(15, day: 2)])
        #expect(slots.map(\.1) == [Self.at(14, day: 2), Self.at(16, day: 2)])

        // Moving into bob's meeting is refused naming it (only the moved occurrence is checked), unless allowed.
        let other = try await MeetingTests.book(bob, Self.at(12, day: 5), Self.at(13, day: 5), title: "Lunch")
        let moveClash = await rpcError { _ = try await Self.move(alice, series.id, 0, Self.at(12, 30, day: 5), Self.at(13, 30, day: 5)) }
        #expect(moveClash?.code == .failedPrecondition && moveClash?.message.contains(other.id) == true, "\(String(describing: moveClash))")
        _ = try await Self.move(alice, series.id, 0, Self.at(12, 30, day: 5), Self.at(13, 30, day: 5), allowConflicts: true)
        // Restoring the cancelled occurrence conflicts with what bob booked in its slot meanwhile.
        let restoreClash = await rpcError { _ = try await Self.restore(alice, series.id, 1) }
        #expect(restoreClash?.code == .failedPrecondition, "\(String(describing: restoreClash))")
        let restored = try await Self.restore(alice, series.id, 1, allowConflicts: true)
        #expect(restored.recurrence?.exceptions.map(\.occurrence) == [0, 2])
        #expect(try await Self.occurrences(alice, user: "alice").map(\.1) == [1, 2, 0])
        // A stale etag is ABORTED; someone neither organizer nor attendee is PERMISSION_DENIED.
        #expect(await rpcError { _ = try await Self.cancel(alice, series.id, 2, etag: series.etag) }?.code == .aborted)
        let carol = try await harness.client(tenant: tenantID, user: "carol")
        #expect(await rpcError { _ = try await Self.cancel(carol, series.id, 2) }?.code == .permissionDenied)
    }

    @Test("bad occurrences and times name the field; a single meeting and the last occurrence refuse; series changes keep or drop exceptions")
    func boundsAndSeriesChanges() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        let series = try await Self.series(alice, Self.at(9), Self.at(10), count: 4)
        #expect(fields(await rpcError { _ = try await Self.cancel(alice, series.id, 4) }) == ["occurrence"])
        #expect(fields(await rpcError { _ = try await Self.cancel(alice, series.id, -1) }) == ["occurrence"])
        #expect(fields(await rpcError { _ = try await Self.move(alice, series.id, 1, Self.at(11), Self.at(10)) }) == ["end_time"])
        #expect(fields(await rpcError { _ = try await Self.move(alice, series.id, 1, Self.at(11), Self.at(11, day: 15)) }) == ["end_time"])
        #expect(fields(await rpcError { _ = try await Self.move(alice, series.id, 1, nil, Self.at(11)) }) == ["start_time"])
        #expect(
            fields(await rpcError { _ = try await Self.move(alice, series.id, 1, Date(timeIntervalSince1970: 1e13), Self.at(11)) }) == ["start_time"])
        // Two occurrences of a series never start at the same time, nor overlap (occurrence 2 is 09:00-10:00 on day 2).
        #expect(fields(await rpcError { _ = try await Self.move(alice, series.id, 1, Self.at(9, day: 2), Self.at(9, 30, day: 2)) }) == ["start_time"])
        #expect(
            fields(await rpcError { _ = try await Self.move(alice, series.id, 1, Self.at(8, 30, day: 2), Self.at(9, 15, day: 2)) }) == ["start_time"])
        #expect(fields(await rpcError { _ = try await Self.move(alice, series.id, 1, Self.at(23, day: 1), Self.at(9, 1, day: 2)) }) == ["start_time"])
        _ = try await Self.move(alice, series.id, 1, Self.at(23, day: 1), Self.at(9, day: 2))  // back to back is no overlap
        _ = try await Self.restore(alice, series.id, 1)
        // A daily meeting longer than a day overlaps itself.
        #expect(fields(await rpcError { _ = try await Self.series(alice, Self.at(9, day: 40), Self.at(10, day: 41)) }) == ["meeting.end_time"])
        // No occurrence may end after 9999-12-31 (no Timestamp could say when): a listing of it would fail for every
        // attendee and contact.
        let lastDay = Date(timeIntervalSince1970: 253_402_300_799 - 86_400 * 2)
        #expect(
            fields(await rpcError { _ = try await Self.series(alice, lastDay, lastDay + 3_600, count: 3) }) == ["meeting.recurrence.count"])
        #expect(
            fields(await rpcError { _ = try await Self.series(alice, lastDay, lastDay + 3_600, count: 2, frequency: .monthly) })
                == ["meeting.recurrence.count"])
        let fits = try await Self.series(alice, lastDay, lastDay + 3_600, count: 2)
        #expect(fits.recurrence?.count == 2)
        let single = try await MeetingTests.book(alice, Self.at(9, day: 30), Self.at(10, day: 30))
        #expect(await rpcError { _ = try await Self.cancel(alice, single.id, 0) }?.code == .failedPrecondition)
        #expect(await rpcError { _ = try await Self.cancel(alice, newID(), 0) }?.code == .notFound)

        // One exception per occurrence: moving one twice keeps one; cancelling all but one leaves the last refused.
        _ = try await Self.move(alice, series.id, 3, Self.at(11, day: 3), Self.at(12, day: 3))
        _ = try await Self.move(alice, series.id, 3, Self.at(13, day: 3), Self.at(14, day: 3))
        for occurrence: Int32 in [0, 1, 2] { _ = try await Self.cancel(alice, series.id, occurrence) }
        let last = await rpcError { _ = try await Self.cancel(alice, series.id, 3) }
        #expect(last?.code == .failedPrecondition, "\(String(describing: last))")
        var current = try await Self.restore(alice, series.id, 0)
        #expect(current.recurrence?.exceptions.map(\.occurrence) == [1, 2, 3])
        #expect(current.recurrence?.exceptions.last?.startTime == Self.at(13, day: 3))

        func update(_ paths: [String], _ change: (inout Meeting) -> Void) async throws -> Meeting {
            var meeting = current
            change(&meeting)
            var request = Switchboard_Collaboration_V1_UpdateMeetingRequest()
            request.meeting = meeting
            request.updateMask = Google_Protobuf_FieldMask(paths: paths)
            request.etag = current.etag
            return try await alice.stub.updateMeeting(request, options: alice.options)
        }
        // A new end keeps the exceptions (a moved occurrence keeps its own times); the exceptions a client sends are
        // ignored (output only).
        current = try await update(["end_time", "recurrence"]) {
            $0.endTime = Self.at(10, 30)
            $0.recurrence?.exceptions = []
        }
        #expect(current.recurrence?.exceptions.map(\.occurrence) == [1, 2, 3])
        #expect(current.recurrence?.exceptions.last?.endTime == Self.at(14, day: 3))
        // A shorter count drops the exceptions past its end.
        current = try await update(["recurrence"]) { $0.recurrence?.count = 3 }
        #expect(current.recurrence?.exceptions.map(\.occurrence) == [1, 2])
        #expect(try await Self.occurrences(alice, user: "alice").filter { $0.0 == series.id }.map(\.1) == [0])
        #expect(await rpcError { _ = try await Self.cancel(alice, series.id, 0) }?.code == .failedPrecondition)
        // A shorter count that would leave only cancelled occurrences is refused.
        current = try await Self.restore(alice, series.id, 2)
        current = try await Self.cancel(alice, series.id, 0)
        let allCancelled = await rpcError { _ = try await update(["recurrence"]) { $0.recurrence?.count = 2 } }
        #expect(fields(allCancelled) == ["meeting.recurrence.count"], "\(String(describing: allCancelled))")
        // A longer count reaching a moved occurrence's start is refused the same way.
        current = try await Self.move(alice, series.id, 1, Self.at(9, day: 4), Self.at(10, day: 4))
        let reached = await rpcError { _ = try await update(["recurrence"]) { $0.recurrence?.count = 5 } }
        #expect(fields(reached) == ["meeting.recurrence"], "\(String(describing: reached))")
        // A new start replans every date: the exceptions are dropped.
        current = try await update(["start_time", "end_time"]) {
            $0.startTime = Self.at(8)
            $0.endTime = Self.at(9)
        }
        #expect(current.recurrence?.exceptions.isEmpty == true)
        #expect(
            try await Self.occurrences(alice, user: "alice").filter { $0.0 == series.id }.map(\.2) == [
                Self.at(8), Self.at(8, day: 1), Self.at(8, day: 2),
            ])
    }

    @Test("exceptions are the tenant's: another tenant cannot see or change them, and their rows are under row-level security")
    func tenantIsolation() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        let series = try await Self.series(alice, Self.at(9), Self.at(10))
        _ = try await Self.cancel(alice, series.id, 1)
        _ = try await Self.move(alice, series.id, 2, Self.at(15, day: 2), Self.at(16, day: 2))
        let foreignTenant = tenant()
        let intruder = try await harness.client(tenant: foreignTenant, user: "alice", roles: [.admin])
        #expect(await rpcError { _ = try await Self.cancel(intruder, series.id, 0) }?.code == .notFound)
        #expect(await rpcError { _ = try await Self.move(intruder, series.id, 0, Self.at(11), Self.at(12)) }?.code == .notFound)
        #expect(await rpcError { _ = try await Self.restore(intruder, series.id, 1) }?.code == .notFound)
        // A read-only user of the tenant, even an attendee, may not change occurrences.
        let reader = try await harness.client(tenant: tenantID, user: "alice", roles: [.readOnly])
        #expect(await rpcError { _ = try await Self.cancel(reader, series.id, 0) }?.code == .permissionDenied)
        #expect(await rpcError { _ = try await Self.move(reader, series.id, 0, Self.at(11), Self.at(12)) }?.code == .permissionDenied)
        #expect(await rpcError { _ = try await Self.restore(reader, series.id, 1) }?.code == .permissionDenied)
        // The other tenant's alice is free when this tenant's alice is busy.
        _ = try await Self.series(intruder, Self.at(15, day: 2), Self.at(16, day: 2))
        let id = try #require(UUID(uuidString: series.id))
        func exceptionRows(_ tenant: String) async throws -> Int64 {
            try await harness.pool.query(
                settings: ["app.tenant_id": tenant], "SELECT count(*) AS n FROM collaboration.meeting_exceptions WHERE meeting_id = $1",
                [.uuid(id)]
            ).first!.int("n")
        }
        #expect(try await exceptionRows(tenantID) == 2)
        #expect(try await exceptionRows(foreignTenant) == 0)
        // Row-level security refuses a row written for another tenant.
        await #expect(throws: (any Error).self) {
            _ = try await self.harness.pool.query(
                settings: ["app.tenant_id": foreignTenant],
                "INSERT INTO collaboration.meeting_exceptions (tenant_id, meeting_id, occurrence) VALUES ($1, $2, 0)",
                [.text(tenantID), .uuid(id)])
        }
    }

    @Test("a series stored before the overlap check, overlapping itself, can still be renamed and have an occurrence cancelled")
    func legacySeriesStayEditable() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        let series = try await Self.series(alice, Self.at(9, day: 50), Self.at(10, day: 50), count: 3)
        // As an older version stored it: a daily series of 25-hour meetings.
        _ = try await harness.pool.query(
            settings: ["app.tenant_id": tenantID], "UPDATE collaboration.meetings SET end_at = start_at + interval '25 hours' WHERE id = $1",
            [.uuid(try #require(UUID(uuidString: series.id)))])
        var rename = Switchboard_Collaboration_V1_UpdateMeetingRequest()
        var meeting = Meeting()
        meeting.id = series.id
        meeting.title = "Renamed"
        rename.meeting = meeting
        rename.updateMask = Google_Protobuf_FieldMask(paths: ["title"])
        #expect(try await alice.stub.updateMeeting(rename, options: alice.options).title == "Renamed")
        _ = try await Self.cancel(alice, series.id, 1)
        // A change of its times is checked: still overlapping, it is refused naming what changed.
        var longer = rename
        longer.meeting!.endTime = Self.at(10, 30, day: 52)  // across occurrence 2 (occurrence 1 is cancelled)
        longer.updateMask = Google_Protobuf_FieldMask(paths: ["end_time"])
        #expect(fields(await rpcError { _ = try await alice.stub.updateMeeting(longer, options: alice.options) }) == ["meeting.end_time"])
    }

    @Test("monthly: the same day of the month at the same local time across daylight saving; the 31st falls on the last day of shorter months")
    func monthly() async throws {
        let alice = try await harness.client(tenant: tenant(), user: "alice")
        // 2030-01-31 09:00 Berlin (CET, UTC+1) monthly, 4 times: Feb 28 (CET), Mar 31 and Apr 30 (CEST, UTC+2, from
        // 2030-03-31 02:00).
        let january31 = Date(timeIntervalSince1970: 1_896_048_000)  // 2030-01-31T00:00:00Z
        func utc(day: Int, hour: Int) -> Date { january31.addingTimeInterval(Double(day * 86_400 + hour * 3600)) }
        let series = try await Self.series(
            alice, utc(day: 0, hour: 8), utc(day: 0, hour: 9), count: 4, frequency: .monthly, zone: "Europe/Berlin")
        #expect(series.recurrence?.frequency == .monthly)
        let listed = try await Self.occurrences(alice, user: "alice")
        #expect(listed.map(\.1) == [0, 1, 2, 3])
        // Feb 28 = day 28, Mar 31 = day 59, Apr 30 = day 89.
        #expect(listed.map(\.2) == [utc(day: 0, hour: 8), utc(day: 28, hour: 8), utc(day: 59, hour: 7), utc(day: 89, hour: 7)])
        #expect(listed.map(\.3) == [utc(day: 0, hour: 9), utc(day: 28, hour: 9), utc(day: 59, hour: 8), utc(day: 89, hour: 8)])
        // Every other month from the 31st: Mar 31, May 31, Jul 31.
        var request = Switchboard_Collaboration_V1_UpdateMeetingRequest()
        var change = series
        change.recurrence?.interval = 2
        request.meeting = change
        request.updateMask = Google_Protobuf_FieldMask(paths: ["recurrence"])
        _ = try await alice.stub.updateMeeting(request, options: alice.options)
        #expect(
            try await Self.occurrences(alice, user: "alice").map(\.2) == [
                utc(day: 0, hour: 8), utc(day: 59, hour: 7), utc(day: 120, hour: 7), utc(day: 181, hour: 7),
            ])
        // A monthly occurrence conflicts like any other.
        let clash = await rpcError { _ = try await MeetingTests.book(alice, utc(day: 120, hour: 7), utc(day: 120, hour: 8)) }
        #expect(clash?.code == .failedPrecondition && clash?.message.contains(series.id) == true)
    }

    @Test("a cancelled occurrence has no reminder; a moved one is reminded at its new time, once")
    func reminders() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        let bob = try await harness.client(tenant: tenantID, user: "bob")
        let start = Date().addingTimeInterval(2 * 86_400)
        let series = try await Self.series(alice, start, start.addingTimeInterval(1800), attendees: ["bob"], reminders: [10])
        _ = try await Self.cancel(alice, series.id, 0)
        // Occurrence 2 moved to 5 minutes from now: its 10-minute reminder is due at once.
        let soon = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 300).rounded(.down))
        _ = try await Self.move(alice, series.id, 2, soon, soon.addingTimeInterval(1800))
        #expect(try await eventually { try await bob.inbox().notifications.contains { $0.kind == .reminder } })
        let reminders = try await bob.inbox().notifications.filter { $0.kind == .reminder }
        #expect(reminders.count == 1 && reminders.first?.resourceId == series.id)
        let rows = try await harness.pool.query(
            settings: ["app.tenant_id": tenantID],
            """
            SELECT occurrence, sent_at IS NOT NULL AS sent, (extract(epoch FROM due_at))::int8 AS due
            FROM collaboration.meeting_reminders WHERE meeting_id = $1 ORDER BY occurrence
            """, [.uuid(try #require(UUID(uuidString: series.id)))]
        ).rows.map { (try $0.int("occurrence"), try $0.bool("sent"), try $0.int("due")) }
        #expect(rows.map(\.0) == [1, 2])
        #expect(rows.map(\.1) == [false, true])
        #expect(rows.last?.2 == Int64(soon.timeIntervalSince1970) - 600)
    }

    @Test("occurrence dates (no I/O): daily and weekly steps across month, year and leap day; monthly on the day or the month's last day")
    func occurrenceDates() throws {
        func dates(_ frequency: Recurrence.Frequency, every interval: Int = 1, _ count: Int, from first: String) throws -> [String] {
            Recurrence(frequency: frequency, interval: interval, count: count).occurrenceDates(from: try #require(LocalDate(first))).map(
                \.description)
        }
        #expect(try dates(.none, 5, from: "2030-01-31") == ["2030-01-31"])
        #expect(try dates(.daily, every: 2, 3, from: "2030-02-27") == ["2030-02-27", "2030-03-01", "2030-03-03"])
        #expect(try dates(.daily, 3, from: "2028-02-28") == ["2028-02-28", "2028-02-29", "2028-03-01"])
        #expect(try dates(.weekly, 2, from: "2030-12-25") == ["2030-12-25", "2031-01-01"])
        #expect(try dates(.weekly, every: 52, 2, from: "2030-01-07") == ["2030-01-07", "2031-01-06"])
        // The 31st: the month's last day when it is shorter, and back to the 31st after, never drifting.
        #expect(try dates(.monthly, 5, from: "2030-01-31") == ["2030-01-31", "2030-02-28", "2030-03-31", "2030-04-30", "2030-05-31"])
        #expect(try dates(.monthly, 2, from: "2028-01-31") == ["2028-01-31", "2028-02-29"])
        #expect(try dates(.monthly, 3, from: "2030-01-30") == ["2030-01-30", "2030-02-28", "2030-03-30"])
        #expect(try dates(.monthly, every: 12, 5, from: "2028-02-29") == ["2028-02-29", "2029-02-28", "2030-02-28", "2031-02-28", "2032-02-29"])
        #expect(try dates(.monthly, every: 5, 3, from: "2030-10-31") == ["2030-10-31", "2031-03-31", "2031-08-31"])
        #expect(try dates(.monthly, every: 52, 100, from: "2030-01-15").last == "2459-01-15")
        // Day numbers round-trip across eras; parsing refuses impossible dates.
        #expect(LocalDate(year: 1970, month: 1, day: 1).dayNumber == 0)
        #expect(LocalDate(dayNumber: -1) == LocalDate(year: 1969, month: 12, day: 31))
        for text in ["0001-01-01", "1600-02-29", "1900-02-28", "2000-02-29", "9999-12-31"] {
            let date = try #require(LocalDate(text))
            #expect(LocalDate(dayNumber: date.dayNumber) == date && date.description == text)
        }
        #expect(LocalDate(dayNumber: LocalDate(year: 2030, month: 3, day: 1).dayNumber - 1) == LocalDate(year: 2030, month: 2, day: 28))
        for bad in ["2030-02-29", "1900-02-29", "2030-13-01", "2030-04-31", "0000-01-01", "2030-1", "x"] { #expect(LocalDate(bad) == nil) }
    }

    @Test("occurrence exception rules (no I/O): cancel, move, restore, bounds, and what a series change keeps")
    func rules() throws {
        var data = MeetingData()
        data.start = Self.at(9)
        data.end = Self.at(10)
        data.timeZone = "Europe/Berlin"
        data.recurrence = Recurrence(frequency: .weekly, interval: 1, count: 3)
        let slot = TimeSlot(start: Self.at(11), end: Self.at(12))
        var changed = try #require(try MeetingRules.applying(.cancel, to: 1, of: data))
        #expect(changed.recurrence.exceptions == [OccurrenceException(occurrence: 1)])
        #expect(try MeetingRules.applying(.cancel, to: 1, of: changed) == nil)
        #expect(try MeetingRules.applying(.restore, to: 2, of: changed) == nil)
        changed = try #require(try MeetingRules.applying(.move(start: slot.start, end: slot.end), to: 0, of: changed))
        #expect(changed.recurrence.exceptions == [OccurrenceException(occurrence: 0, moved: slot), OccurrenceException(occurrence: 1)])
        // Moving a cancelled occurrence un-cancels it (still one exception per occurrence); restoring removes one.
        let bothMoved = try #require(try MeetingRules.applying(.move(start: slot.start, end: slot.end), to: 1, of: changed))
        #expect(bothMoved.recurrence.exceptions.map(\.moved) == [slot, slot])
        #expect(try MeetingRules.applying(.restore, to: 0, of: changed)?.recurrence.exceptions == [OccurrenceException(occurrence: 1)])
        // Every occurrence may be moved, but the last one not cancelled cannot be cancelled.
        let oneCancelled = try #require(try MeetingRules.applying(.cancel, to: 1, of: data))
        let twoCancelled = try #require(try MeetingRules.applying(.cancel, to: 2, of: oneCancelled))
        #expect(throws: CollaborationError.self) { _ = try MeetingRules.applying(.cancel, to: 0, of: twoCancelled) }
        #expect(try MeetingRules.applying(.cancel, to: 2, of: changed)?.recurrence.exceptions.count == 3)
        // Out of range, a bad move and a meeting that does not repeat are refused.
        #expect(throws: CollaborationError.invalid([Violation("occurrence", "must be 0 to 2, the series' occurrences", reason: "OUT_OF_RANGE")])) {
            _ = try MeetingRules.applying(.cancel, to: 3, of: data)
        }
        #expect(throws: CollaborationError.invalid([Violation("end_time", "must be after start_time")])) {
            _ = try MeetingRules.applying(.move(start: slot.end, end: slot.start), to: 0, of: data)
        }
        #expect(throws: CollaborationError.invalid([Violation("start_time", "is required", reason: "REQUIRED")])) {
            _ = try MeetingRules.applying(.move(start: nil, end: slot.end), to: 0, of: data)
        }
        var single = data
        single.recurrence = Recurrence()
        #expect(throws: CollaborationError.self) { _ = try MeetingRules.applying(.restore, to: 0, of: single) }

        // Series changes: an end keeps them; a shorter count drops those past it; a new start, zone, frequency or
        // interval drops all; a count leaving only cancelled occurrences is a violation.
        func carried(_ change: (inout MeetingData) -> Void) -> [OccurrenceException] {
            var next = changed
            next.recurrence.exceptions = []
            change(&next)
            #expect(MeetingRules.carryExceptions(from: changed, into: &next).isEmpty)
            return next.recurrence.exceptions
        }
        #expect(carried { $0.end = Self.at(11) } == changed.recurrence.exceptions)
        #expect(carried { $0.recurrence.count = 2 } == changed.recurrence.exceptions)
        #expect(carried { $0.recurrence.count = 1 } == [OccurrenceException(occurrence: 0, moved: slot)])
        #expect(carried { $0.start = Self.at(8) }.isEmpty)
        #expect(carried { $0.timeZone = "UTC" }.isEmpty)
        #expect(carried { $0.recurrence.frequency = .monthly }.isEmpty)
        #expect(carried { $0.recurrence.interval = 2 }.isEmpty)
        let cancelFirst = try #require(try MeetingRules.applying(.cancel, to: 0, of: oneCancelled))
        var shorter = cancelFirst
        shorter.recurrence.count = 2
        #expect(MeetingRules.carryExceptions(from: cancelFirst, into: &shorter).map(\.field) == ["meeting.recurrence.count"])
    }
}

/// The real `collaboration` executable (SWITCHBOARD_COLLABORATION_BIN, or .build/debug/collaboration) with a reminder of
/// a moved occurrence pending: killed with SIGKILL before it is due, then run as two replicas at once.
@Suite("Collaboration: a moved occurrence's reminder across a restart", .serialized)
final class MovedOccurrenceReminderRestartTests {
    let harness: CollaborationHarness

    // The in-process service's worker scans once an hour: only the processes this test starts send.
    init() async throws { harness = try await CollaborationHarness.start(reminderInterval: .seconds(3600)) }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    func launch() throws -> Process {
        let binary =
            ProcessInfo.processInfo.environment["SWITCHBOARD_COLLABORATION_BIN"]
            ?? repositoryRoot.appendingPathComponent(".build/debug/collaboration").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.environment = ProcessInfo.processInfo.environment.merging([
            "SWITCHBOARD_GRPC_PORT": "0", "SWITCHBOARD_ADMIN_PORT": "0", "SWITCHBOARD_DATABASE_URL": harness.service.serviceConninfo,
            "SWITCHBOARD_JWT_HS256_SECRET": testSecret, "SWITCHBOARD_LOG_LEVEL": "error", "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "2",
        ]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    @Test("the reminder of a moved occurrence, pending when the process is killed, is sent once at the new time by one of two replicas")
    func restart() async throws {
        let tenantID = tenant()
        let alice = try await harness.client(tenant: tenantID, user: "alice")
        let bob = try await harness.client(tenant: tenantID, user: "bob")
        let tomorrow = Date().addingTimeInterval(86_400)
        let series = try await OccurrenceTests.series(
            alice, tomorrow, tomorrow.addingTimeInterval(1800), count: 2, attendees: ["bob"], reminders: [10])
        // Occurrence 1 (the day after tomorrow by its rule) moved so that its 10-minute reminder is due in 12 seconds.
        let due = Date().addingTimeInterval(12)
        _ = try await OccurrenceTests.move(alice, series.id, 1, due.addingTimeInterval(600), due.addingTimeInterval(2400))
        var processes = [try launch()]
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        try await Task.sleep(for: .seconds(2))
        kill(processes[0].processIdentifier, SIGKILL)
        await waitUntilExit(processes[0])
        if Date() < due { #expect(try await bob.inbox().notifications.filter { $0.kind == .reminder }.isEmpty) }
        processes += [try launch(), try launch()]
        #expect(try await eventually(timeout: .seconds(60)) { try await bob.inbox().notifications.contains { $0.kind == .reminder } })
        // Both replicas scan every second: a few more scans must not send it again.
        try await Task.sleep(for: .seconds(3))
        let reminders = try await bob.inbox().notifications.filter { $0.kind == .reminder }
        #expect(reminders.count == 1 && reminders.first?.resourceId == series.id)
        #expect(reminders.first.map { $0.createTime! >= due.addingTimeInterval(-1) } == true)
    }
}
