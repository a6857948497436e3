import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardServiceKit

extension CollaborationDomain {
    /// Books a meeting organized by the principal.
    public func createMeeting(
        _ data: MeetingData, allowConflicts: Bool, principal: Principal, write: WriteOptions<MeetingRecord>
    )
        async throws -> WriteOutcome<MeetingRecord>
    {
        if let replay = try await replayed(write, principal) { return replay }
        var data = data
        let violations = MeetingRules.check(&data, organizer: principal.userID)
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        return try await store.insertMeeting(data, allowConflicts: allowConflicts, principal: principal, write: write)
    }

    /// A meeting of the tenant.
    public func meeting(id: UUID, includeDeleted: Bool, principal: Principal) async throws -> MeetingRecord {
        guard let meeting = try await store.fetchMeeting(id: id, principal: principal), includeDeleted || meeting.audit.deletedAt == nil else {
            throw CollaborationError.notFound(kind: "meeting", id: id.lowercaseText)
        }
        return meeting
    }

    /// Changes the masked fields of a live meeting (its organizer, its attendee users, or an admin).
    public func updateMeeting(
        id: UUID, from source: MeetingData, paths: [String], etag: String, allowConflicts: Bool, principal: Principal,
        write: WriteOptions<MeetingRecord>
    ) async throws -> WriteOutcome<MeetingRecord> {
        if let replay = try await replayed(write, principal) { return replay }
        try CollaborationRules.checkETag(etag)
        let current = try await meeting(id: id, includeDeleted: false, principal: principal)
        try Self.checkMayChange(current, principal)
        if !etag.isEmpty, etag != current.etag { throw CollaborationError.etagMismatch(current: current.etag) }
        var (data, changed) = try MeetingRules.merge(current.data, from: source, paths: paths)
        var violations = MeetingRules.check(&data, organizer: current.organizerID)
        if violations.isEmpty { violations = MeetingRules.carryExceptions(from: current.data, into: &data) }
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        if data.recurrence.exceptions != current.data.recurrence.exceptions, !changed.contains("recurrence") {
            changed.append("recurrence")
        }
        // Only a change of the series' times can make it overlap itself or run past 9999: a series stored before those
        // checks existed can still be renamed.
        // The overlap is named by what changed: a longer count reaching a moved occurrence, a longer meeting, …
        let overlapField = ["recurrence", "end_time", "start_time", "time_zone"].first(where: changed.contains).map { "meeting.\($0)" }
        return try await store.replaceMeeting(
            id: id, expectedVersion: current.version, data: data, changedFields: changed, allowConflicts: allowConflicts,
            onlyOccurrence: nil, seriesCheck: overlapField.map { (overlapField: $0, rangeField: "meeting.recurrence.count") },
            principal: principal, write: write)
    }

    /// Cancels, moves or restores one occurrence of a live recurring meeting (its organizer, its attendee users, or an
    /// admin); a move or a restore is conflict-checked for that occurrence unless `allowConflicts`. A change that
    /// changes nothing returns the meeting as it is.
    public func changeOccurrence(
        id: UUID, occurrence: Int, change: OccurrenceChange, etag: String, allowConflicts: Bool, principal: Principal,
        write: WriteOptions<MeetingRecord>
    ) async throws -> WriteOutcome<MeetingRecord> {
        if let replay = try await replayed(write, principal) { return replay }
        try CollaborationRules.checkETag(etag)
        let current = try await meeting(id: id, includeDeleted: false, principal: principal)
        try Self.checkMayChange(current, principal)
        if !etag.isEmpty, etag != current.etag { throw CollaborationError.etagMismatch(current: current.etag) }
        guard let data = try MeetingRules.applying(change, to: occurrence, of: current.data) else { return .fresh(current) }
        // A cancellation only frees time: it cannot make a conflict, nor make the series overlap itself.
        let seriesCheck: (overlapField: String, rangeField: String)? =
            switch change {
            case .cancel: nil
            case .move: (overlapField: "start_time", rangeField: "start_time")
            case .restore: (overlapField: "occurrence", rangeField: "occurrence")
            }
        return try await store.replaceMeeting(
            id: id, expectedVersion: current.version, data: data, changedFields: ["recurrence.exceptions"],
            allowConflicts: allowConflicts || change == .cancel, onlyOccurrence: occurrence, seriesCheck: seriesCheck, principal: principal,
            write: write)
    }

    /// Cancels a meeting (its organizer, its attendee users, or an admin).
    public func cancelMeeting(
        id: UUID, etag: String, principal: Principal, write: WriteOptions<MeetingRecord>
    ) async throws
        -> WriteOutcome<MeetingRecord>
    {
        if let replay = try await replayed(write, principal) { return replay }
        try CollaborationRules.checkETag(etag)
        let current = try await meeting(id: id, includeDeleted: true, principal: principal)
        try Self.checkMayChange(current, principal)
        if !etag.isEmpty, etag != current.etag { throw CollaborationError.etagMismatch(current: current.etag) }
        if current.audit.deletedAt != nil { return .fresh(current) }
        return try await store.cancelMeeting(id: id, expectedVersion: etag.isEmpty ? nil : current.version, principal: principal, write: write)
    }

    /// Restores a cancelled meeting (its organizer, its attendee users, or an admin), checking conflicts again.
    public func undeleteMeeting(
        id: UUID, allowConflicts: Bool, principal: Principal, write: WriteOptions<MeetingRecord>
    ) async throws
        -> WriteOutcome<MeetingRecord>
    {
        if let replay = try await replayed(write, principal) { return replay }
        let current = try await meeting(id: id, includeDeleted: true, principal: principal)
        try Self.checkMayChange(current, principal)
        if current.audit.deletedAt == nil { return .fresh(current) }
        return try await store.restoreMeeting(id: id, allowConflicts: allowConflicts, principal: principal, write: write)
    }

    static func checkMayChange(_ meeting: MeetingRecord, _ principal: Principal) throws {
        guard principal.isAdmin || meeting.organizerID == principal.userID || meeting.data.attendeeUserIDs.contains(principal.userID) else {
            throw CollaborationError.forbidden("only the meeting's organizer, its attendee users or an admin may change it")
        }
    }

    /// A page of a contact's or a user's meetings in start order, and the next page's token.
    public func listMeetings(
        of scope: MeetingScope, window: (min: Date?, max: Date?), pageSize: Int, pageToken: String, principal: Principal
    ) async throws -> ([MeetingRecord], String) {
        let limit = try CollaborationRules.pageLimit(pageSize)
        if case .user(let user) = scope {
            var violations: [Violation] = []
            CollaborationRules.checkUserID(user, field: "user_id", into: &violations)
            if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        }
        // A timestamp outside 0001-9999 decodes as a date no range admits (-infinity): refused here, not read as "no
        // bound" further down.
        for (date, field) in [(window.min, "time_min"), (window.max, "time_max")] {
            if let date, !date.timeIntervalSince1970.isFinite {
                throw CollaborationError.invalid(field, "must be a time between years 1 and 9999", reason: "OUT_OF_RANGE")
            }
        }
        if let min = window.min, let max = window.max, max <= min {
            throw CollaborationError.invalid("time_max", "must be after time_min")
        }
        var fingerprint = [
            "meetings", window.min.map { String($0.timeIntervalSince1970) } ?? "", window.max.map { String($0.timeIntervalSince1970) } ?? "",
        ]
        switch scope {
        case .contact(let id): fingerprint += ["contact", id.lowercaseText]
        case .user(let user): fingerprint += ["user", user]
        }
        let after = try TimeCursor.resume(pageToken, fingerprint: fingerprint)
        let rows = try await store.listMeetings(of: scope, window: window, after: after, limit: limit, principal: principal)
        let next = rows.more ? rows.records.last.map { TimeCursor(micros: $0.sortMicros, id: $0.id).token(fingerprint: fingerprint) } ?? "" : ""
        return (rows.records, next)
    }

    /// The intervals of a range in which none of the users has a meeting, at least `minutes` long.
    public func freeSlots(users: [String], range: (start: Date?, end: Date?), minutes: Int, principal: Principal) async throws -> [TimeSlot] {
        var violations: [Violation] = []
        var seen = Set<String>()
        let users = users.filter { seen.insert($0).inserted }
        if users.isEmpty {
            violations.append(Violation("user_ids", "at least one user", reason: "REQUIRED"))
        } else if users.count > MeetingRules.maxSlotUsers {
            violations.append(Violation("user_ids", "at most \(MeetingRules.maxSlotUsers) users", reason: "TOO_MANY"))
        } else {
            for (i, user) in users.enumerated() { CollaborationRules.checkUserID(user, field: "user_ids[\(i)]", into: &violations) }
        }
        if range.start == nil { violations.append(Violation("range_start", "is required", reason: "REQUIRED")) }
        if range.end == nil { violations.append(Violation("range_end", "is required", reason: "REQUIRED")) }
        if let start = range.start, let end = range.end {
            if end <= start {
                violations.append(Violation("range_end", "must be after range_start"))
            } else if end.timeIntervalSince(start) > MeetingRules.maxSlotRange {
                violations.append(Violation("range_end", "the range spans at most 31 days", reason: "TOO_LONG"))
            }
        }
        if !(1...1440).contains(minutes) { violations.append(Violation("duration_minutes", "must be 1 to 1440")) }
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        let slot = TimeSlot(start: range.start!, end: range.end!)
        let busy = try await store.busy(users: users, range: slot, limit: MeetingRules.maxBusyIntervals, principal: principal)
        guard busy.count <= MeetingRules.maxBusyIntervals else {
            throw CollaborationError.failedPrecondition("more than \(MeetingRules.maxBusyIntervals) meetings in the range; search a shorter one")
        }
        return MeetingRules.freeSlots(in: slot, busy: busy, minimum: TimeInterval(minutes * 60))
    }
}
