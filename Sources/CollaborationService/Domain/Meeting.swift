import FoundationEssentials
import SwitchboardServiceKit

/// What a client writes of a meeting.
public struct MeetingData: Sendable, Hashable {
    /// The title.
    public var title: String = ""
    /// The description.
    public var description: String = ""
    /// When it starts.
    public var start: Date?
    /// When it ends.
    public var end: Date?
    /// Where it is held: an IANA time zone name.
    public var timeZone: String = ""
    /// Users attending (the organizer among them).
    public var attendeeUserIDs: [String] = []
    /// Contacts attending or concerned.
    public var contactIDs: [UUID] = []
    /// Minutes before the start at which attendees are reminded (sorted, distinct).
    public var reminderMinutes: [Int] = []
    /// How the meeting repeats.
    public var recurrence = Recurrence()

    /// Creates empty data.
    public init() {}
}

/// How a meeting repeats: every `interval` days, weeks or months, `count` occurrences in all, at the first one's local
/// time, except the occurrences cancelled or moved one by one.
public struct Recurrence: Sendable, Hashable {
    /// The step.
    public enum Frequency: Int, Sendable, Hashable {
        /// No repetition.
        case none = 0
        /// Daily.
        case daily = 1
        /// Weekly.
        case weekly = 2
        /// Monthly, on the first occurrence's day of the month (the month's last day when it has no such day).
        case monthly = 3
    }

    /// The step.
    public var frequency: Frequency = .none
    /// Steps between occurrences.
    public var interval = 1
    /// Occurrences, the first included.
    public var count = 1
    /// The occurrences that differ from the rule, in occurrence order, at most one each.
    public var exceptions: [OccurrenceException] = []

    /// Creates a recurrence (none by default).
    public init(frequency: Frequency = .none, interval: Int = 1, count: Int = 1, exceptions: [OccurrenceException] = []) {
        self.frequency = frequency
        self.interval = interval
        self.count = count
        self.exceptions = exceptions
    }

    /// Whether occurrence `index` is cancelled.
    public func isCancelled(_ index: Int) -> Bool {
        exceptions.contains { $0.occurrence == index && $0.moved == nil }
    }
}

extension Recurrence {
    /// The wall-clock dates of the rule's occurrences in the meeting's time zone, the first on `first` (each at the
    /// first one's local time of day, which the store turns into instants with the zone's rules): every `interval`
    /// days or weeks; or every `interval` months on `first`'s day of the month, on the month's last day when it is
    /// shorter (the step is counted from the first occurrence, so January 31 gives February 28, March 31, April 30).
    /// One date when the meeting does not repeat.
    public func occurrenceDates(from first: LocalDate) -> [LocalDate] {
        let count = frequency == .none ? 1 : max(count, 1)
        return (0..<count).map { i in
            switch frequency {
            case .none: return first
            case .daily: return LocalDate(dayNumber: first.dayNumber + i * interval)
            case .weekly: return LocalDate(dayNumber: first.dayNumber + 7 * i * interval)
            case .monthly:
                let months = first.year * 12 + (first.month - 1) + i * interval
                let (year, month) = (months / 12, months % 12 + 1)
                return LocalDate(year: year, month: month, day: min(first.day, LocalDate.days(inMonth: month, of: year)))
            }
        }
    }
}

/// A wall-clock date without a time zone, in the proleptic Gregorian calendar (PostgreSQL's `date`), year 1 or later.
public struct LocalDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The year (1 or later).
    public var year: Int
    /// The month, 1 to 12.
    public var month: Int
    /// The day of the month, 1 to 31.
    public var day: Int

    /// Creates a date (the parts are not checked).
    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// Parses `YYYY-MM-DD` (as PostgreSQL's `to_char(…, 'YYYY-MM-DD')` prints it); nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 3, let year = parts[0], let month = parts[1], let day = parts[2], year >= 1, (1...12).contains(month),
            (1...Self.days(inMonth: month, of: year)).contains(day)
        else { return nil }
        self.init(year: year, month: month, day: day)
    }

    /// Days since 1970-01-01 (negative before it).
    public var dayNumber: Int {
        // Howard Hinnant's days_from_civil: years counted from March, so February's leap day ends the year.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date `dayNumber` days after 1970-01-01.
    public init(dayNumber: Int) {
        let z = dayNumber + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let month = mp < 10 ? mp + 3 : mp - 9
        self.init(year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month: month, day: dayOfYear - (153 * mp + 2) / 5 + 1)
    }

    /// The number of days of `month` in `year`.
    public static func days(inMonth month: Int, of year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// `YYYY-MM-DD`.
    public var description: String {
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2))"
    }

    /// Earlier dates first.
    public static func < (a: LocalDate, b: LocalDate) -> Bool { (a.year, a.month, a.day) < (b.year, b.month, b.day) }
}

/// One occurrence of a series that differs from its rule.
public struct OccurrenceException: Sendable, Hashable {
    /// Which occurrence (0 = the first).
    public var occurrence: Int
    /// Its own times when moved; nil when cancelled.
    public var moved: TimeSlot?

    /// Creates an exception (`moved` nil: cancelled).
    public init(occurrence: Int, moved: TimeSlot? = nil) {
        self.occurrence = occurrence
        self.moved = moved
    }
}

/// What CancelOccurrence, MoveOccurrence and RestoreOccurrence do to one occurrence.
public enum OccurrenceChange: Sendable, Hashable {
    /// Cancel it.
    case cancel
    /// Move it to these times (each required).
    case move(start: Date?, end: Date?)
    /// Back to the rule's time.
    case restore
}

/// A stored meeting.
public struct MeetingRecord: Sendable, Hashable {
    /// The id.
    public var id: UUID
    /// The content (start and end always set).
    public var data: MeetingData
    /// The creator.
    public var organizerID: String
    /// Increases with every change.
    public var version: Int64
    /// Audit stamps.
    public var audit: Audit
    /// The list order's time in microseconds (the start), for page tokens.
    public var sortMicros: Int64 = 0
    /// Which occurrence this is, in a list (its start and end are that occurrence's).
    public var occurrence = 0

    /// Creates a record.
    public init(id: UUID, data: MeetingData, organizerID: String, version: Int64, audit: Audit) {
        self.id = id
        self.data = data
        self.organizerID = organizerID
        self.version = version
        self.audit = audit
    }

    /// The etag of this version.
    public var etag: String { CollaborationRules.etag(version) }
}

/// A time interval.
public struct TimeSlot: Sendable, Hashable {
    /// Its start.
    public var start: Date
    /// Its end.
    public var end: Date

    /// Creates a slot.
    public init(start: Date, end: Date) {
        self.start = start
        self.end = end
    }
}

/// The rules of meetings and of the free-slot search.
public enum MeetingRules {
    /// Longest title.
    public static let maxTitleBytes = 200
    /// Longest description.
    public static let maxDescriptionBytes = 16_384
    /// Longest meeting (the conflict search relies on it).
    public static let maxDuration: TimeInterval = 14 * 86_400
    /// Most attendee users, and most contacts.
    public static let maxAttendees = 100
    /// Longest time zone name.
    public static let maxTimeZoneBytes = 64
    /// The fields UpdateMeeting may name.
    public static let updatableFields: Set<String> = [
        "title", "description", "start_time", "end_time", "time_zone", "attendee_user_ids", "contact_ids", "reminder_minutes", "recurrence",
    ]
    /// Most occurrences of a series.
    public static let maxOccurrences = 100
    /// Most days, weeks or months between occurrences.
    public static let maxInterval = 52
    /// Most reminders of a meeting.
    public static let maxReminders = 5
    /// The longest lead time of a reminder (28 days).
    public static let maxReminderMinutes = 40_320
    /// Most users of a free-slot search.
    public static let maxSlotUsers = 20
    /// Longest free-slot search range.
    public static let maxSlotRange: TimeInterval = 31 * 86_400
    /// Most slots returned.
    public static let maxSlots = 500
    /// Most busy intervals a free-slot search reads.
    public static let maxBusyIntervals = 10_000
    /// Meetings named in a conflict error.
    public static let maxConflictsReported = 10

    /// The violations of a meeting's data (under `meeting.`); the organizer is added to the attendees and both
    /// lists are deduplicated.
    public static func check(_ data: inout MeetingData, organizer: String) -> [Violation] {
        var violations: [Violation] = []
        CollaborationRules.checkText(data.title, max: maxTitleBytes, required: true, field: "meeting.title", into: &violations)
        CollaborationRules.checkText(data.description, max: maxDescriptionBytes, required: false, field: "meeting.description", into: &violations)
        if data.start == nil { violations.append(Violation("meeting.start_time", "is required", reason: "REQUIRED")) }
        if data.end == nil { violations.append(Violation("meeting.end_time", "is required", reason: "REQUIRED")) }
        if let start = data.start, let end = data.end {
            if end <= start {
                violations.append(Violation("meeting.end_time", "must be after start_time"))
            } else if end.timeIntervalSince(start) > maxDuration {
                violations.append(Violation("meeting.end_time", "a meeting lasts at most 14 days", reason: "TOO_LONG"))
            }
        }
        let zone = data.timeZone
        if zone.isEmpty {
            violations.append(Violation("meeting.time_zone", "is required", reason: "REQUIRED"))
        } else if zone.utf8.count > maxTimeZoneBytes
            || !zone.utf8.allSatisfy({ $0 < 0x80 && (isAlphanumeric($0) || "/_+-".utf8.contains($0)) })
        {
            violations.append(Violation("meeting.time_zone", "is not an IANA time zone name", reason: "INVALID_FORMAT"))
        }
        var seen = Set<String>()
        data.attendeeUserIDs = ([organizer] + data.attendeeUserIDs).filter { seen.insert($0).inserted }
        if data.attendeeUserIDs.count > maxAttendees {
            violations.append(Violation("meeting.attendee_user_ids", "at most \(maxAttendees) users", reason: "TOO_MANY"))
        } else {
            for (i, user) in data.attendeeUserIDs.dropFirst().enumerated() {
                CollaborationRules.checkUserID(user, field: "meeting.attendee_user_ids[\(i)]", into: &violations)
            }
        }
        data.reminderMinutes = Array(Set(data.reminderMinutes)).sorted()
        if data.reminderMinutes.count > maxReminders {
            violations.append(Violation("meeting.reminder_minutes", "at most \(maxReminders) reminders", reason: "TOO_MANY"))
        } else if let bad = data.reminderMinutes.first(where: { !(1...maxReminderMinutes).contains($0) }) {
            violations.append(Violation("meeting.reminder_minutes", "\(bad) is not 1 to \(maxReminderMinutes) minutes"))
        }
        let r = data.recurrence
        if r.frequency == .none {
            if r.count > 1 { violations.append(Violation("meeting.recurrence.frequency", "is required to repeat", reason: "REQUIRED")) }
            data.recurrence = Recurrence()
        } else {
            if !(2...maxOccurrences).contains(r.count) {
                violations.append(Violation("meeting.recurrence.count", "must be 2 to \(maxOccurrences)"))
            }
            if !(1...maxInterval).contains(r.interval) {
                violations.append(Violation("meeting.recurrence.interval", "must be 1 to \(maxInterval)"))
            }
        }
        var seenContacts = Set<UUID>()
        data.contactIDs = data.contactIDs.filter { seenContacts.insert($0).inserted }
        if data.contactIDs.count > maxAttendees {
            violations.append(Violation("meeting.contact_ids", "at most \(maxAttendees) contacts", reason: "TOO_MANY"))
        }
        return violations
    }

    /// Carries a series' exceptions over an update from `current` to `data` (whose own exceptions are ignored: they
    /// are output only). They stay while the rule's dates stay: a new start, time zone, frequency or interval replans
    /// every date, so an index would name another day than the one the user changed, and they are dropped; a shorter
    /// count drops those past its end. A change that would leave every occurrence cancelled is refused (naming
    /// `meeting.recurrence.count`): a live meeting takes place at least once.
    public static func carryExceptions(from current: MeetingData, into data: inout MeetingData) -> [Violation] {
        let old = current.recurrence
        var new = data.recurrence
        if new.frequency == .none || new.frequency != old.frequency || new.interval != old.interval || data.start != current.start
            || data.timeZone != current.timeZone
        {
            new.exceptions = []
        } else {
            new.exceptions = old.exceptions.filter { $0.occurrence < new.count }
        }
        data.recurrence = new
        if new.frequency != .none, (0..<new.count).allSatisfy(new.isCancelled) {
            return [Violation("meeting.recurrence.count", "would leave every occurrence cancelled; delete the meeting instead")]
        }
        return []
    }

    /// The meeting's data with one occurrence changed, or nil when the change changes nothing (cancelling a cancelled
    /// occurrence, restoring one that follows the rule).
    /// - Throws: `failedPrecondition` for a meeting that does not repeat or for cancelling its last occurrence not
    ///   yet cancelled; `invalid` naming `occurrence` (out of range), `start_time` or `end_time`.
    public static func applying(_ change: OccurrenceChange, to occurrence: Int, of current: MeetingData) throws -> MeetingData? {
        var data = current
        var r = data.recurrence
        guard r.frequency != .none else {
            throw CollaborationError.failedPrecondition("the meeting does not repeat; change or delete the meeting itself")
        }
        guard (0..<r.count).contains(occurrence) else {
            throw CollaborationError.invalid("occurrence", "must be 0 to \(r.count - 1), the series' occurrences", reason: "OUT_OF_RANGE")
        }
        let existing = r.exceptions.first { $0.occurrence == occurrence }
        var replacement: OccurrenceException?
        switch change {
        case .cancel:
            if let existing, existing.moved == nil { return nil }
            if (0..<r.count).allSatisfy({ $0 == occurrence || r.isCancelled($0) }) {
                throw CollaborationError.failedPrecondition("it is the series' last occurrence not cancelled; delete the meeting instead")
            }
            replacement = OccurrenceException(occurrence: occurrence)
        case .move(let start, let end):
            var violations: [Violation] = []
            for (date, field) in [(start, "start_time"), (end, "end_time")] {
                if let date {
                    if !date.timeIntervalSince1970.isFinite {
                        violations.append(Violation(field, "must be a time between years 1 and 9999", reason: "OUT_OF_RANGE"))
                    }
                } else {
                    violations.append(Violation(field, "is required", reason: "REQUIRED"))
                }
            }
            if violations.isEmpty, let start, let end {
                if end <= start {
                    violations.append(Violation("end_time", "must be after start_time"))
                } else if end.timeIntervalSince(start) > maxDuration {
                    violations.append(Violation("end_time", "a meeting lasts at most 14 days", reason: "TOO_LONG"))
                }
            }
            if !violations.isEmpty { throw CollaborationError.invalid(violations) }
            replacement = OccurrenceException(occurrence: occurrence, moved: TimeSlot(start: start!, end: end!))
        case .restore:
            if existing == nil { return nil }
        }
        r.exceptions = (r.exceptions.filter { $0.occurrence != occurrence } + (replacement.map { [$0] } ?? []))
            .sorted { $0.occurrence < $1.occurrence }
        data.recurrence = r
        return data
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }

    /// The current meeting with the masked fields of `source` copied in.
    public static func merge(_ current: MeetingData, from source: MeetingData, paths: [String]) throws -> (MeetingData, [String]) {
        guard !paths.isEmpty else { throw CollaborationError.invalid("update_mask", "names no field", reason: "REQUIRED") }
        var data = current
        var changed: [String] = []
        for path in paths {
            switch path {
            case "title": data.title = source.title
            case "description": data.description = source.description
            case "start_time": data.start = source.start
            case "end_time": data.end = source.end
            case "time_zone": data.timeZone = source.timeZone
            case "attendee_user_ids": data.attendeeUserIDs = source.attendeeUserIDs
            case "contact_ids": data.contactIDs = source.contactIDs
            case "reminder_minutes": data.reminderMinutes = source.reminderMinutes
            case "recurrence": data.recurrence = source.recurrence
            default:
                throw CollaborationError.invalid(
                    "update_mask", "\(CustomFieldRules.excerpt(path)) is not one of \(updatableFields.sorted().joined(separator: ", "))")
            }
            if !changed.contains(path) { changed.append(path) }
        }
        return (data, changed)
    }

    /// The free slots of `range` around busy intervals (in any order, overlapping or not): the maximal gaps at
    /// least `minimum` long, at most ``maxSlots``.
    public static func freeSlots(in range: TimeSlot, busy: [TimeSlot], minimum: TimeInterval) -> [TimeSlot] {
        var slots: [TimeSlot] = []
        var cursor = range.start
        for interval in busy.sorted(by: { $0.start < $1.start }) {
            if interval.start > cursor {
                let end = min(interval.start, range.end)
                if end.timeIntervalSince(cursor) >= minimum { slots.append(TimeSlot(start: cursor, end: end)) }
            }
            cursor = max(cursor, interval.end)
            if cursor >= range.end || slots.count >= maxSlots { break }
        }
        if cursor < range.end, range.end.timeIntervalSince(cursor) >= minimum, slots.count < maxSlots {
            slots.append(TimeSlot(start: cursor, end: range.end))
        }
        return Array(slots.prefix(maxSlots))
    }
}
