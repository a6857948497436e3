import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresCollaborationStore {
    static let meetingType = "switchboard.collaboration.v1.Meeting"
    static let meetingColumns = """
        m.id, m.title, m.description, m.start_at, m.end_at, m.time_zone, m.attendee_user_ids, m.contact_ids::text[] AS contact_ids, \
        m.reminder_minutes::text[] AS reminder_minutes, m.recurrence_frequency, m.recurrence_interval, m.recurrence_count, m.organizer_id, m.version, m.created_at, m.created_by, m.updated_at, m.updated_by, m.deleted_at, \
        (extract(epoch FROM m.start_at) * 1000000)::int8 AS sort_micros, \
        ARRAY(SELECT e.occurrence || coalesce(' ' || (extract(epoch FROM e.start_at) * 1000000)::int8 || ' ' \
            || (extract(epoch FROM e.end_at) * 1000000)::int8, '') FROM collaboration.meeting_exceptions e \
            WHERE e.tenant_id = m.tenant_id AND e.meeting_id = m.id ORDER BY e.occurrence) AS exceptions
        """

    /// An exception as `meetingColumns` spells it: "occurrence" (cancelled) or "occurrence start end" (moved; times in
    /// microseconds since 1970), so a meeting and its exceptions are one row.
    static func exception(_ text: String) -> OccurrenceException? {
        let parts = text.split(separator: " ").compactMap { Int64($0) }
        switch parts.count {
        case 1: return OccurrenceException(occurrence: Int(parts[0]))
        case 3:
            return OccurrenceException(
                occurrence: Int(parts[0]),
                moved: TimeSlot(start: Date(timeIntervalSince1970: Double(parts[1]) / 1e6), end: Date(timeIntervalSince1970: Double(parts[2]) / 1e6)))
        default: return nil
        }
    }

    static func meeting(_ row: PostgresRow) throws -> MeetingRecord {
        var data = MeetingData()
        data.title = try row.string("title")
        data.description = try row.string("description")
        data.start = try row.date("start_at")
        data.end = try row.date("end_at")
        data.timeZone = try row.string("time_zone")
        data.attendeeUserIDs = try row.strings("attendee_user_ids")
        data.contactIDs = try row.strings("contact_ids").compactMap { UUID(text: $0) }
        data.reminderMinutes = try row.strings("reminder_minutes").compactMap { Int($0) }
        data.recurrence = Recurrence(
            frequency: Recurrence.Frequency(rawValue: Int(try row.int("recurrence_frequency"))) ?? .none,
            interval: Int(try row.int("recurrence_interval")), count: Int(try row.int("recurrence_count")),
            exceptions: try row.strings("exceptions").compactMap(Self.exception))
        var record = MeetingRecord(
            id: try row.uuid("id"), data: data, organizerID: try row.string("organizer_id"), version: try row.int("version"),
            audit: try audit(row))
        record.sortMicros = try row.int("sort_micros")
        // A list row is one occurrence: its own times.
        if case .timestamp(let start) = row["occurrence_start"], case .timestamp(let end) = row["occurrence_end"] {
            record.data.start = start
            record.data.end = end
            record.occurrence = Int(try row.int("occurrence"))
            record.sortMicros = try row.int("occurrence_micros")
        }
        return record
    }

    /// Refuses a time zone PostgreSQL does not know (its IANA database).
    func checkTimeZone(_ zone: String, on c: PostgresConnection) async throws {
        let known = try await c.query("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1) AS known", [.text(zone)]).first!
        if try !known.bool("known") {
            throw CollaborationError.invalid("meeting.time_zone", "\(CustomFieldRules.excerpt(zone)) is not an IANA time zone name")
        }
    }

    /// Locks the attendees' calendars in name order, so two bookings sharing users cannot deadlock and a booking sees
    /// every other one committed before it.
    func lockCalendars(_ users: [String], principal: Principal, on c: PostgresConnection) async throws {
        try await c.query(
            """
            SELECT count(pg_advisory_xact_lock(hashtextextended('collaboration.calendar/' || $1 || '/' || u, 0))) AS locked
            FROM (SELECT u FROM unnest($2::text[]) AS u ORDER BY u) ordered
            """, [.text(principal.actor.tenantID), .array(users.map(PostgresValue.text), elementType: .text)])
    }

    /// Throws `meetingConflicts` naming the other live meetings that overlap the meeting's calendar rows (written by
    /// `linkMeeting` in this transaction, under `lockCalendars`), or only those of occurrence `only`.
    func checkConflicts(of id: UUID, only occurrence: Int?, principal: Principal, on c: PostgresConnection) async throws {
        // Every occurrence the meeting takes place at (its calendar rows: cancelled ones have none, moved ones are at
        // their own times) against the attendees' other rows. A meeting lasts at most 14 days, so a row overlapping an
        // occurrence (ending after it starts) starts less than 14 days before the occurrence starts: an index range per
        // user and occurrence. (Bounded by the occurrence's end instead, a multi-day meeting could miss one that began
        // earlier: an offsite on days 0-7 and a booking on days 5-15.)
        let rows = try await c.query(
            """
            SELECT DISTINCT a.meeting_id FROM collaboration.meeting_attendees mine
            JOIN collaboration.meeting_attendees a ON a.tenant_id = mine.tenant_id AND a.user_id = mine.user_id
                AND a.start_at < mine.end_at AND a.start_at > mine.start_at - interval '14 days' AND a.end_at > mine.start_at
            JOIN collaboration.meetings m ON m.tenant_id = a.tenant_id AND m.id = a.meeting_id AND m.deleted_at IS NULL
            WHERE mine.tenant_id = $1 AND mine.meeting_id = $2 AND ($3::int8 IS NULL OR mine.occurrence = $3) AND a.meeting_id <> $2
            ORDER BY a.meeting_id LIMIT \(MeetingRules.maxConflictsReported)
            """, [.text(principal.actor.tenantID), .uuid(id), occurrence.map { .int(Int64($0)) } ?? .null])
        if !rows.rows.isEmpty { throw CollaborationError.meetingConflicts(try rows.rows.map { try $0.uuid("meeting_id").lowercaseText }) }
    }

    /// Refuses a series whose occurrences would overlap one another (a move onto or across another occurrence, a longer
    /// count reaching a moved one, a meeting longer than the step between its dates), naming `overlapField`, or whose
    /// last occurrence would end after 9999-12-31 (no Timestamp can say when), naming `rangeField`. Two occurrences of one
    /// meeting cannot both be attended, and a calendar row and a list position are (start, meeting): two at one
    /// instant could be neither stored nor paged apart. Sorted by start, any overlap shows in a neighbouring pair.
    func checkSeries(
        of id: UUID, plan: [PostgresValue], overlapField: String, rangeField: String, principal: Principal, on c: PostgresConnection
    ) async throws {
        let row = try await c.query(
            """
            SELECT coalesce(bool_or(x.next_start < x.end_at), false) AS overlap,
                coalesce(max(x.end_at) > timestamptz '9999-12-31 23:59:59.999999+00', false) AS beyond
            FROM (SELECT o.start_at, o.end_at, lead(o.start_at) OVER (ORDER BY o.start_at) AS next_start
                FROM collaboration.meetings m, LATERAL \(Self.occurrencesOf) o WHERE m.tenant_id = $1 AND m.id = $2) x
            """, [.text(principal.actor.tenantID), .uuid(id)] + plan
        ).first!
        if try row.bool("beyond") {
            throw CollaborationError.invalid(rangeField, "the series would end after 9999-12-31", reason: "OUT_OF_RANGE")
        }
        if try row.bool("overlap") {
            throw CollaborationError.invalid(overlapField, "occurrences of the series would overlap: each must end before the next starts")
        }
    }

    /// Replaces the meeting's exceptions with `exceptions` (before the meeting row's update, whose RETURNING reads them).
    func writeExceptions(_ exceptions: [OccurrenceException], of id: UUID, principal: Principal, on c: PostgresConnection) async throws {
        let tenant = PostgresValue.text(principal.actor.tenantID)
        try await c.query("DELETE FROM collaboration.meeting_exceptions WHERE tenant_id = $1 AND meeting_id = $2", [tenant, .uuid(id)])
        guard !exceptions.isEmpty else { return }
        func micros(_ date: Date?) -> PostgresValue { .int(date.map { Int64(($0.timeIntervalSince1970 * 1e6).rounded()) } ?? 0) }
        try await c.query(
            """
            INSERT INTO collaboration.meeting_exceptions (tenant_id, meeting_id, occurrence, start_at, end_at)
            SELECT $1, $2, x.occurrence,
                CASE WHEN x.moved THEN timestamptz 'epoch' + x.start_micros * interval '1 microsecond' END,
                CASE WHEN x.moved THEN timestamptz 'epoch' + x.end_micros * interval '1 microsecond' END
            FROM unnest($3::int8[], $4::bool[], $5::int8[], $6::int8[]) AS x(occurrence, moved, start_micros, end_micros)
            """,
            [
                tenant, .uuid(id), .array(exceptions.map { .int(Int64($0.occurrence)) }, elementType: .int),
                .array(exceptions.map { .bool($0.moved != nil) }, elementType: .bool),
                .array(exceptions.map { micros($0.moved?.start) }, elementType: .int),
                .array(exceptions.map { micros($0.moved?.end) }, elementType: .int),
            ])
    }

    /// Rewrites the calendar rows of a meeting (its attendees' and contacts', with its times).
    func linkMeeting(_ id: UUID, plan: [PostgresValue], replacing: Bool, principal: Principal, on c: PostgresConnection) async throws {
        let tenant = PostgresValue.text(principal.actor.tenantID)
        if replacing {
            try await c.query("DELETE FROM collaboration.meeting_attendees WHERE tenant_id = $1 AND meeting_id = $2", [tenant, .uuid(id)])
            try await c.query("DELETE FROM collaboration.meeting_contacts WHERE tenant_id = $1 AND meeting_id = $2", [tenant, .uuid(id)])
        }
        try await c.query(
            """
            INSERT INTO collaboration.meeting_attendees (tenant_id, user_id, start_at, end_at, meeting_id, occurrence)
            SELECT $1, u, o.start_at, o.end_at, m.id, o.occurrence FROM collaboration.meetings m,
                LATERAL \(Self.occurrencesOf) o, unnest(m.attendee_user_ids) AS u
            WHERE m.tenant_id = $1 AND m.id = $2
            """, [tenant, .uuid(id)] + plan)
        try await c.query(
            """
            INSERT INTO collaboration.meeting_contacts (tenant_id, contact_id, start_at, end_at, meeting_id, occurrence)
            SELECT $1, u, o.start_at, o.end_at, m.id, o.occurrence FROM collaboration.meetings m,
                LATERAL \(Self.occurrencesOf) o, unnest(m.contact_ids) AS u
            WHERE m.tenant_id = $1 AND m.id = $2
            """, [tenant, .uuid(id)] + plan)
    }

    /// Replaces a meeting's unsent reminders with its current lead times (a lead time already sent for this start is
    /// not sent again: moving the meeting re-arms every reminder, since its rows are replaced whole).
    func scheduleReminders(_ id: UUID, plan: [PostgresValue], principal: Principal, on c: PostgresConnection) async throws {
        let binds: [PostgresValue] = [.text(principal.actor.tenantID), .uuid(id)] + plan
        // Unsent reminders are planned again; a sent one stays sent unless its occurrence moved (then it is due again at
        // the new time). A reminder of a future occurrence whose time has already passed is due at once.
        try await c.query(
            """
            DELETE FROM collaboration.meeting_reminders r WHERE r.tenant_id = $1 AND r.meeting_id = $2
              AND (r.sent_at IS NULL OR NOT EXISTS (
                SELECT 1 FROM collaboration.meetings m, LATERAL \(Self.occurrencesOf) o
                WHERE m.tenant_id = $1 AND m.id = $2 AND o.occurrence = r.occurrence AND r.minutes = ANY(m.reminder_minutes)
                  AND o.start_at - make_interval(mins => r.minutes) = r.due_at))
            """, binds)
        try await c.query(
            """
            INSERT INTO collaboration.meeting_reminders (tenant_id, meeting_id, occurrence, minutes, due_at)
            SELECT $1, m.id, o.occurrence, r, o.start_at - make_interval(mins => r) FROM collaboration.meetings m,
                LATERAL \(Self.occurrencesOf) o, unnest(m.reminder_minutes) AS r
            WHERE m.tenant_id = $1 AND m.id = $2 AND o.start_at > now()
            ON CONFLICT (tenant_id, meeting_id, occurrence, minutes) DO NOTHING
            """, binds)
    }

    /// The occurrences of the meeting row `m` as they take place (exceptions applied: cancelled ones left out, moved
    /// ones at their own times), with the plan's local dates bound as $3 and its time of day as $4.
    static let occurrencesOf = "collaboration.live_occurrences(m, $3::text[]::date[], $4::int8)"

    /// The local dates of a meeting's occurrences and their local time of day, as binds $3 and $4 of `occurrencesOf`:
    /// PostgreSQL reads the first start's wall clock in the time zone (its zone database), the domain steps the dates
    /// (``Recurrence/occurrenceDates(from:)``), and `occurrencesOf` turns each back into an instant.
    func occurrencePlan(_ data: MeetingData, on c: PostgresConnection) async throws -> [PostgresValue] {
        let row = try await c.query(
            """
            SELECT to_char(l, 'YYYY-MM-DD') AS local_date, (extract(epoch FROM l::time) * 1000000)::int8 AS micros
            FROM (SELECT $1::timestamptz AT TIME ZONE $2 AS l) x
            """, [.timestamp(data.start!), .text(data.timeZone)]
        ).first!
        let text = try row.string("local_date")
        guard let first = LocalDate(text) else {
            throw CollaborationError.invalid("meeting.start_time", "\(CustomFieldRules.excerpt(text)) is not a date a meeting can start on")
        }
        return [
            .array(data.recurrence.occurrenceDates(from: first).map { .text($0.description) }, elementType: .text), .int(try row.int("micros")),
        ]
    }

    static func meetingBinds(_ data: MeetingData) -> [PostgresValue] {
        [
            .text(data.title), .text(data.description), .timestamp(data.start!), .timestamp(data.end!), .text(data.timeZone),
            .array(data.attendeeUserIDs.map(PostgresValue.text), elementType: .text),
            .array(data.contactIDs.map(PostgresValue.uuid), elementType: .uuid),
            .array(data.reminderMinutes.map { .int(Int64($0)) }, elementType: .int), .int(Int64(data.recurrence.frequency.rawValue)),
            .int(Int64(data.recurrence.interval)), .int(Int64(data.recurrence.count)),
        ]
    }

    /// The protocol requirement `insertMeeting` (documented on the protocol).
    public func insertMeeting(
        _ data: MeetingData, allowConflicts: Bool, principal: Principal, write: WriteOptions<MeetingRecord>
    ) async throws
        -> WriteOutcome<MeetingRecord>
    {
        try await self.write(write, principal) { c in
            try await checkTimeZone(data.timeZone, on: c)
            if !allowConflicts { try await lockCalendars(data.attendeeUserIDs, principal: principal, on: c) }
            let row = try await c.query(
                """
                INSERT INTO collaboration.meetings AS m (tenant_id, id, title, description, start_at, end_at, time_zone, attendee_user_ids, contact_ids,
                    reminder_minutes, recurrence_frequency, recurrence_interval, recurrence_count, organizer_id, created_at, created_by,
                    updated_at, updated_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::int8[]::integer[], $11, $12, $13, $14, now(), $14, now(), $14)
                RETURNING \(Self.meetingColumns)
                """, [.text(principal.actor.tenantID), .uuid(UUID.random())] + Self.meetingBinds(data) + [.text(principal.userID)]
            ).first!
            let meeting = try Self.meeting(row)
            let plan = try await occurrencePlan(data, on: c)
            if data.recurrence.frequency != .none {
                try await checkSeries(
                    of: meeting.id, plan: plan, overlapField: "meeting.end_time", rangeField: "meeting.recurrence.count", principal: principal,
                    on: c)
            }
            try await linkMeeting(meeting.id, plan: plan, replacing: false, principal: principal, on: c)
            if !allowConflicts { try await checkConflicts(of: meeting.id, only: nil, principal: principal, on: c) }
            try await scheduleReminders(meeting.id, plan: plan, principal: principal, on: c)
            try await recordChange(
                Self.meetingType, id: meeting.id.lowercaseText, kind: .created, json: try publish.meeting(meeting), principal: principal, on: c)
            return meeting
        }
    }

    /// The protocol requirement `fetchMeeting` (documented on the protocol).
    public func fetchMeeting(id: UUID, principal: Principal) async throws -> MeetingRecord? {
        try await read(
            principal, "SELECT \(Self.meetingColumns) FROM collaboration.meetings m WHERE m.tenant_id = $1 AND m.id = $2",
            [.text(principal.actor.tenantID), .uuid(id)]
        ).first.map(Self.meeting)
    }

    /// A meeting read on a write's own connection (a second pool connection inside a transaction can wait on the one
    /// this transaction holds, or on a pool this call has emptied).
    func fetchMeeting(id: UUID, principal: Principal, on c: PostgresConnection) async throws -> MeetingRecord? {
        try await c.query(
            "SELECT \(Self.meetingColumns) FROM collaboration.meetings m WHERE m.tenant_id = $1 AND m.id = $2",
            [.text(principal.actor.tenantID), .uuid(id)]
        ).first.map(Self.meeting)
    }

    /// The protocol requirement `replaceMeeting` (documented on the protocol).
    public func replaceMeeting(
        id: UUID, expectedVersion: Int64, data: MeetingData, changedFields: [String], allowConflicts: Bool, onlyOccurrence: Int?,
        seriesCheck: (overlapField: String, rangeField: String)?, principal: Principal, write: WriteOptions<MeetingRecord>
    ) async throws -> WriteOutcome<MeetingRecord> {
        try await self.write(write, principal) { c in
            if changedFields.contains("time_zone") { try await checkTimeZone(data.timeZone, on: c) }
            let reschedules = !Set(changedFields).isDisjoint(with: [
                "start_time", "end_time", "attendee_user_ids", "recurrence", "time_zone", "recurrence.exceptions",
            ])
            if reschedules, !allowConflicts { try await lockCalendars(data.attendeeUserIDs, principal: principal, on: c) }
            guard
                try await c.query(
                    """
                    UPDATE collaboration.meetings AS m SET title = $4, description = $5, start_at = $6, end_at = $7, time_zone = $8,
                        attendee_user_ids = $9, contact_ids = $10, reminder_minutes = $11::int8[]::integer[], recurrence_frequency = $12,
                        recurrence_interval = $13, recurrence_count = $14, version = version + 1, updated_at = now(), updated_by = $15
                    WHERE tenant_id = $1 AND id = $2 AND version = $3 AND deleted_at IS NULL
                    RETURNING m.id
                    """, [.text(principal.actor.tenantID), .uuid(id), .int(expectedVersion)] + Self.meetingBinds(data) + [.text(principal.userID)]
                ).first != nil
            else {
                let current = try await fetchMeeting(id: id, principal: principal, on: c)
                guard let current, current.audit.deletedAt == nil else { throw CollaborationError.notFound(kind: "meeting", id: id.lowercaseText) }
                throw CollaborationError.etagMismatch(current: current.etag)
            }
            // Written under the meeting row's lock (the update's): a concurrent change of the same version waits and fails.
            try await writeExceptions(data.recurrence.exceptions, of: id, principal: principal, on: c)
            guard let meeting = try await fetchMeeting(id: id, principal: principal, on: c) else {
                throw CollaborationError.notFound(kind: "meeting", id: id.lowercaseText)
            }
            let plan = try await occurrencePlan(data, on: c)
            if data.recurrence.frequency != .none, let seriesCheck {
                try await checkSeries(
                    of: id, plan: plan, overlapField: seriesCheck.overlapField, rangeField: seriesCheck.rangeField, principal: principal, on: c)
            }
            try await linkMeeting(id, plan: plan, replacing: true, principal: principal, on: c)
            if reschedules, !allowConflicts { try await checkConflicts(of: id, only: onlyOccurrence, principal: principal, on: c) }
            if !Set(changedFields).isDisjoint(with: [
                "start_time", "end_time", "time_zone", "reminder_minutes", "recurrence", "recurrence.exceptions",
            ]) {
                try await scheduleReminders(id, plan: plan, principal: principal, on: c)
            }
            try await recordChange(
                Self.meetingType, id: id.lowercaseText, kind: .updated, fields: changedFields, json: try publish.meeting(meeting),
                principal: principal, on: c)
            return meeting
        }
    }

    /// The protocol requirement `restoreMeeting` (documented on the protocol).
    public func restoreMeeting(
        id: UUID, allowConflicts: Bool, principal: Principal, write: WriteOptions<MeetingRecord>
    ) async throws
        -> WriteOutcome<MeetingRecord>
    {
        try await self.write(write, principal) { c in
            guard let current = try await fetchMeeting(id: id, principal: principal, on: c) else {
                throw CollaborationError.notFound(kind: "meeting", id: id.lowercaseText)
            }
            if !allowConflicts {
                // Its calendar rows stayed when it was cancelled: they are what it takes again.
                try await lockCalendars(current.data.attendeeUserIDs, principal: principal, on: c)
                try await checkConflicts(of: id, only: nil, principal: principal, on: c)
            }
            guard
                let row = try await c.query(
                    """
                    UPDATE collaboration.meetings AS m SET deleted_at = NULL, version = version + 1, updated_at = now(), updated_by = $3
                    WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NOT NULL
                    RETURNING \(Self.meetingColumns)
                    """, [.text(principal.actor.tenantID), .uuid(id), .text(principal.userID)]
                ).first
            else { return current }
            let meeting = try Self.meeting(row)
            try await scheduleReminders(id, plan: try await occurrencePlan(meeting.data, on: c), principal: principal, on: c)
            try await recordChange(
                Self.meetingType, id: id.lowercaseText, kind: .undeleted, json: try publish.meeting(meeting), principal: principal, on: c)
            return meeting
        }
    }

    /// The protocol requirement `cancelMeeting` (documented on the protocol).
    public func cancelMeeting(
        id: UUID, expectedVersion: Int64?, principal: Principal, write: WriteOptions<MeetingRecord>
    ) async throws
        -> WriteOutcome<MeetingRecord>
    {
        try await self.write(write, principal) { c in
            guard
                let row = try await c.query(
                    """
                    UPDATE collaboration.meetings AS m SET deleted_at = now(), version = version + 1, updated_at = now(), updated_by = $4
                    WHERE tenant_id = $1 AND id = $2 AND ($3::int8 IS NULL OR version = $3) AND deleted_at IS NULL
                    RETURNING \(Self.meetingColumns)
                    """, [.text(principal.actor.tenantID), .uuid(id), expectedVersion.map(PostgresValue.int) ?? .null, .text(principal.userID)]
                ).first
            else {
                guard let current = try await fetchMeeting(id: id, principal: principal, on: c) else {
                    throw CollaborationError.notFound(kind: "meeting", id: id.lowercaseText)
                }
                if current.audit.deletedAt != nil { return current }
                throw CollaborationError.etagMismatch(current: current.etag)
            }
            let meeting = try Self.meeting(row)
            // Its unsent reminders go with it (sent ones stay as the record of what was sent).
            try await c.query(
                "DELETE FROM collaboration.meeting_reminders WHERE tenant_id = $1 AND meeting_id = $2 AND sent_at IS NULL",
                [.text(principal.actor.tenantID), .uuid(id)])
            try await recordChange(
                Self.meetingType, id: id.lowercaseText, kind: .deleted, json: try publish.meeting(meeting), principal: principal, on: c)
            return meeting
        }
    }

    /// The protocol requirement `listMeetings` (documented on the protocol).
    public func listMeetings(
        of scope: MeetingScope, window: (min: Date?, max: Date?), after: TimeCursor?, limit: Int, principal: Principal
    ) async throws -> Rows<MeetingRecord> {
        var binds = Binds(values: [.text(principal.actor.tenantID)])
        let from: String, key: String
        var conditions: [String]
        switch scope {
        case .contact(let contact):
            from = "collaboration.meeting_contacts x"
            key = "x.contact_id"
            conditions = ["x.tenant_id = $1", "\(key) = \(binds.add(.uuid(contact)))"]
        case .user(let user):
            from = "collaboration.meeting_attendees x"
            key = "x.user_id"
            conditions = ["x.tenant_id = $1", "\(key) = \(binds.add(.text(user)))"]
        }
        conditions.append("m.deleted_at IS NULL")
        if let min = window.min { conditions.append("x.end_at > \(binds.add(.timestamp(min)))") }
        if let max = window.max { conditions.append("x.start_at < \(binds.add(.timestamp(max)))") }
        if let after {
            conditions.append("(x.start_at, x.meeting_id) > (\(Self.cursorTime(after.micros, &binds)), \(binds.add(.uuid(after.id))))")
        }
        let limitPlaceholder = binds.add(.int(Int64(limit + 1)))
        // Only fixed text and placeholders are spliced.
        let rows = try await read(
            principal,
            """
            SELECT \(Self.meetingColumns), x.start_at AS occurrence_start, x.end_at AS occurrence_end, x.occurrence,
                (extract(epoch FROM x.start_at) * 1000000)::int8 AS occurrence_micros
            FROM \(from)
            JOIN collaboration.meetings m ON m.tenant_id = x.tenant_id AND m.id = x.meeting_id
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY x.start_at, x.meeting_id LIMIT \(limitPlaceholder)
            """, binds.values)
        return Self.page(try rows.map(Self.meeting), limit: limit)
    }

    /// The protocol requirement `busy` (documented on the protocol).
    public func busy(users: [String], range: TimeSlot, limit: Int, principal: Principal) async throws -> [TimeSlot] {
        try await read(
            principal,
            """
            SELECT DISTINCT a.start_at, a.end_at FROM collaboration.meeting_attendees a
            JOIN collaboration.meetings m ON m.tenant_id = a.tenant_id AND m.id = a.meeting_id AND m.deleted_at IS NULL
            WHERE a.tenant_id = $1 AND a.user_id = ANY ($2::text[]) AND a.start_at < $4 AND a.start_at > $3 - interval '14 days'
                AND a.end_at > $3
            ORDER BY a.start_at, a.end_at LIMIT $5
            """,
            [
                .text(principal.actor.tenantID), .array(users.map(PostgresValue.text), elementType: .text), .timestamp(range.start),
                .timestamp(range.end), .int(Int64(limit + 1)),
            ]
        ).map { TimeSlot(start: try $0.date("start_at"), end: try $0.date("end_at")) }
    }
}
