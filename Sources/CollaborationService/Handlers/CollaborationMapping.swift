import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// Protobuf ⇄ domain conversions.
enum CollaborationMapping {
    typealias Note = Switchboard_Collaboration_V1_Note
    typealias Comment = Switchboard_Collaboration_V1_Comment
    typealias Team = Switchboard_Collaboration_V1_Team
    typealias Grant = Switchboard_Collaboration_V1_Grant
    typealias Notification = Switchboard_Collaboration_V1_Notification
    typealias File = Switchboard_Collaboration_V1_File
    typealias Subject = Switchboard_Collaboration_V1_Subject

    /// An id a request names: nil when empty, a violation when malformed.
    static func optionalID(_ text: String, field: String, violations: inout [Violation]) -> UUID? {
        guard !text.isEmpty else { return nil }
        guard let id = UUID(text: text) else {
            violations.append(Violation(field, "\(CustomFieldRules.excerpt(text)) is not an id (UUID)", reason: "INVALID_FORMAT"))
            return nil
        }
        return id
    }

    /// An id a request must name.
    static func requiredID(_ text: String, field: String) throws -> UUID {
        var violations: [Violation] = []
        guard let id = optionalID(text, field: field, violations: &violations) else {
            throw CollaborationError.invalid(violations.isEmpty ? [Violation(field, "is required", reason: "REQUIRED")] : violations)
        }
        return id
    }

    static func subject(_ p: Subject?, field: String, violations: inout [Violation]) -> SubjectRef? {
        guard let p else {
            violations.append(Violation(field, "is required", reason: "REQUIRED"))
            return nil
        }
        let type = SubjectType(rawValue: Int(p.type.protoValue))
        if type == nil {
            violations.append(
                Violation(
                    "\(field).type", p.type == .unspecified ? "is required" : "is not a subject type",
                    reason: p.type == .unspecified ? "REQUIRED" : "INVALID"))
        }
        var idViolations: [Violation] = []
        let id = optionalID(p.id, field: "\(field).id", violations: &idViolations)
        if p.id.isEmpty { idViolations.append(Violation("\(field).id", "is required", reason: "REQUIRED")) }
        violations += idViolations
        guard let type, let id else { return nil }
        return SubjectRef(type: type, id: id)
    }

    static func requiredSubject(_ p: Subject?, field: String) throws -> SubjectRef {
        var violations: [Violation] = []
        guard let subject = subject(p, field: field, violations: &violations), violations.isEmpty else {
            throw CollaborationError.invalid(violations)
        }
        return subject
    }

    static func subjects(_ list: [Subject], field: String, violations: inout [Violation]) -> [SubjectRef] {
        // A request naming thousands of subjects is refused before each is looked at.
        guard list.count <= CollaborationRules.maxSubjects else {
            violations.append(Violation(field, "at most \(CollaborationRules.maxSubjects) subjects", reason: "TOO_MANY"))
            return []
        }
        return list.enumerated().compactMap { i, s in subject(s, field: "\(field)[\(i)]", violations: &violations) }
    }

    static func proto(_ s: SubjectRef) -> Subject {
        var p = Subject()
        p.type = .init(protoValue: Int32(s.type.rawValue))
        p.id = s.id.lowercaseText
        return p
    }

    static func audit(_ a: Audit) -> Switchboard_Common_V1_AuditStamps {
        var p = Switchboard_Common_V1_AuditStamps()
        p.createTime = a.createdAt
        p.createdBy = a.createdBy
        p.updateTime = a.updatedAt
        p.updatedBy = a.updatedBy
        p.deleteTime = a.deletedAt
        return p
    }

    // MARK: Notes

    /// Note data from a request (every field; the domain keeps only masked ones on update).
    static func noteData(_ p: Note, prefix: String = "note") throws -> NoteData {
        var violations: [Violation] = []
        var data = NoteData()
        data.subjects = subjects(p.subjects, field: "\(prefix).subjects", violations: &violations)
        data.body = p.body
        switch p.visibility {
        case .unspecified, .private: data.visibility = .private
        case .team: data.visibility = .team
        case .tenant: data.visibility = .tenant
        case .unrecognized: violations.append(Violation("\(prefix).visibility", "is not PRIVATE, TEAM or TENANT"))
        }
        data.teamID = optionalID(p.teamId, field: "\(prefix).team_id", violations: &violations)
        if p.mentionedUserIds.count > NoteRules.maxMentions {
            violations.append(Violation("\(prefix).mentioned_user_ids", "at most \(NoteRules.maxMentions) users", reason: "TOO_MANY"))
        } else {
            data.mentionedUserIDs = p.mentionedUserIds
        }
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        return data
    }

    static func proto(_ r: NoteRecord) -> Note {
        var p = Note()
        p.id = r.id.lowercaseText
        p.subjects = r.data.subjects.map(proto)
        p.body = r.data.body
        p.visibility = .init(protoValue: Int32(r.data.visibility.rawValue))
        p.teamId = r.data.teamID?.lowercaseText ?? ""
        p.mentionedUserIds = r.data.mentionedUserIDs
        p.authorId = r.authorID
        p.audit = audit(r.audit)
        p.etag = r.etag
        return p
    }

    /// The change-event payload of a note. WatchChanges is open to every reader of the tenant: a note that is not
    /// TENANT-visible is published as its id, visibility and etag only, saying that something changed and no more
    /// (not what it is about, who wrote it, its team or when).
    static func published(_ r: NoteRecord) throws -> String {
        guard r.data.visibility != .tenant else { return try proto(r).protoJSONText() }
        var p = Note()
        p.id = r.id.lowercaseText
        p.visibility = proto(r).visibility
        p.etag = r.etag
        return try p.protoJSONText()
    }

    // MARK: Comments

    static func proto(_ r: CommentRecord) -> Comment {
        var p = Comment()
        p.id = r.id.lowercaseText
        switch r.thread {
        case .note(let id): p.noteId = id.lowercaseText
        case .subject(let s): p.subject = proto(s)
        }
        p.parentId = r.parentID?.lowercaseText ?? ""
        p.body = r.body
        p.authorId = r.authorID
        p.audit = audit(r.audit)
        p.etag = r.etag
        return p
    }

    /// The change-event payload of a comment: on a note the tenant may not read (`redacted`), its id and note only.
    static func published(_ r: CommentRecord, redacted: Bool) throws -> String {
        guard redacted else { return try proto(r).protoJSONText() }
        var p = Comment()
        p.id = r.id.lowercaseText
        if case .note(let id) = r.thread { p.noteId = id.lowercaseText }
        return try p.protoJSONText()
    }

    /// The change-event payload of a grant: its id and note only (who a note is shared with is the note's readers'
    /// business, and grants exist for notes the tenant may not read).
    static func published(_ r: GrantRecord) throws -> String {
        var p = Grant()
        p.id = r.id.lowercaseText
        p.noteId = r.noteID.lowercaseText
        return try p.protoJSONText()
    }

    /// The thread a request names: exactly one of a note id and a subject.
    static func thread(noteID: String, subject: Subject?, prefix: String) throws -> CommentThread {
        var violations: [Violation] = []
        switch (noteID.isEmpty, subject) {
        case (false, nil):
            return .note(try requiredID(noteID, field: "\(prefix)note_id"))
        case (true, let s?):
            if let ref = self.subject(s, field: "\(prefix)subject", violations: &violations), violations.isEmpty { return .subject(ref) }
        case (false, _?):
            violations.append(Violation("\(prefix)subject", "name either note_id or subject, not both"))
        case (true, nil):
            violations.append(Violation("\(prefix)note_id", "either note_id or subject is required", reason: "REQUIRED"))
        }
        throw CollaborationError.invalid(violations)
    }

    // MARK: Teams and grants

    static func proto(_ r: TeamRecord) -> Team {
        var p = Team()
        p.id = r.id.lowercaseText
        p.name = r.name
        p.memberUserIds = r.members
        p.audit = audit(r.audit)
        p.etag = r.etag
        return p
    }

    static func proto(_ r: GrantRecord) -> Grant {
        var p = Grant()
        p.id = r.id.lowercaseText
        p.noteId = r.noteID.lowercaseText
        switch r.grantee {
        case .user(let u): p.userId = u
        case .team(let t): p.teamId = t.lowercaseText
        }
        p.permission = .init(protoValue: Int32(r.permission.rawValue))
        p.grantedBy = r.grantedBy
        p.createTime = r.createdAt
        return p
    }

    // MARK: Notifications

    static func kind(_ k: Switchboard_Collaboration_V1_NotificationKind) -> NotificationKind? {
        NotificationKind(rawValue: Int(k.protoValue))
    }

    /// An announcement from a request: exactly one audience.
    static func notificationData(_ p: Notification) throws -> NotificationData {
        var violations: [Violation] = []
        let audiences = (p.userIds.isEmpty ? 0 : 1) + (p.teamId.isEmpty ? 0 : 1) + (p.tenantWide ? 1 : 0)
        var audience = Audience.tenant
        if audiences != 1 {
            violations.append(Violation("notification.user_ids", "name exactly one audience: user_ids, team_id or tenant_wide", reason: "REQUIRED"))
        } else if !p.userIds.isEmpty {
            audience = .users(p.userIds)
        } else if !p.teamId.isEmpty {
            if let team = optionalID(p.teamId, field: "notification.team_id", violations: &violations) { audience = .team(team) }
        }
        if p.kind != .unspecified && p.kind != .announcement {
            violations.append(Violation("notification.kind", "must be ANNOUNCEMENT (or unset): other kinds are the service's own"))
        }
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        return NotificationData(
            kind: .announcement, audience: audience, title: p.title, body: p.body, resourceType: p.resourceType, resourceID: p.resourceId)
    }

    static func proto(_ r: NotificationRecord) -> Notification {
        var p = Notification()
        p.id = r.id
        p.kind = .init(protoValue: Int32(r.data.kind.rawValue))
        switch r.data.audience {
        case .users(let users): p.userIds = users
        case .team(let team): p.teamId = team.lowercaseText
        case .tenant: p.tenantWide = true
        }
        p.title = r.data.title
        p.body = r.data.body
        p.resourceType = r.data.resourceType
        p.resourceId = r.data.resourceID
        p.createdBy = r.createdBy
        p.createTime = r.createdAt
        p.readTime = r.readAt
        p.acknowledgeTime = r.acknowledgedAt
        return p
    }

    // MARK: Files

    static func fileData(_ p: File) throws -> FileData {
        var violations: [Violation] = []
        var data = FileData()
        data.name = p.name
        data.contentType = p.contentType
        data.sizeBytes = p.sizeBytes
        data.sha256 = p.sha256
        data.subjects = subjects(p.subjects, field: "metadata.file.subjects", violations: &violations)
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        return data
    }

    static func proto(_ r: FileRecord) -> File {
        var p = File()
        p.id = r.id.lowercaseText
        p.name = r.data.name
        p.contentType = r.data.contentType
        p.sizeBytes = r.data.sizeBytes
        p.sha256 = r.data.sha256
        p.subjects = r.data.subjects.map(proto)
        p.audit = audit(Audit(createdAt: r.createdAt, createdBy: r.createdBy, updatedAt: r.createdAt, updatedBy: r.createdBy, deletedAt: r.deletedAt))
        return p
    }

    // MARK: Meetings

    typealias Meeting = Switchboard_Collaboration_V1_Meeting

    /// Meeting data from a request (every field; the domain keeps only masked ones on update).
    static func meetingData(_ p: Meeting) throws -> MeetingData {
        var violations: [Violation] = []
        var data = MeetingData()
        data.title = p.title
        data.description = p.description
        data.start = p.startTime
        data.end = p.endTime
        data.timeZone = p.timeZone
        if p.attendeeUserIds.count > MeetingRules.maxAttendees {
            violations.append(Violation("meeting.attendee_user_ids", "at most \(MeetingRules.maxAttendees) users", reason: "TOO_MANY"))
        } else {
            data.attendeeUserIDs = p.attendeeUserIds
        }
        if let r = p.recurrence {
            switch r.frequency {
            case .unspecified: data.recurrence.frequency = .none
            case .daily: data.recurrence.frequency = .daily
            case .weekly: data.recurrence.frequency = .weekly
            case .monthly: data.recurrence.frequency = .monthly
            case .unrecognized: violations.append(Violation("meeting.recurrence.frequency", "is not DAILY, WEEKLY or MONTHLY"))
            }
            data.recurrence.interval = r.interval == 0 ? 1 : Int(r.interval)
            data.recurrence.count = Int(r.count)
        }
        if p.reminderMinutes.count > MeetingRules.maxReminders * 4 {
            violations.append(Violation("meeting.reminder_minutes", "at most \(MeetingRules.maxReminders) reminders", reason: "TOO_MANY"))
        } else {
            data.reminderMinutes = p.reminderMinutes.map(Int.init)
        }
        if p.contactIds.count > MeetingRules.maxAttendees {
            violations.append(Violation("meeting.contact_ids", "at most \(MeetingRules.maxAttendees) contacts", reason: "TOO_MANY"))
        } else {
            data.contactIDs = p.contactIds.enumerated().compactMap { i, id in
                optionalID(id, field: "meeting.contact_ids[\(i)]", violations: &violations)
            }
        }
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        return data
    }

    static func proto(_ r: MeetingRecord) -> Meeting {
        var p = Meeting()
        p.id = r.id.lowercaseText
        p.title = r.data.title
        p.description = r.data.description
        p.startTime = r.data.start
        p.endTime = r.data.end
        p.timeZone = r.data.timeZone
        p.attendeeUserIds = r.data.attendeeUserIDs
        p.contactIds = r.data.contactIDs.map(\.lowercaseText)
        p.organizerId = r.organizerID
        p.audit = audit(r.audit)
        p.etag = r.etag
        p.reminderMinutes = r.data.reminderMinutes.map { Int32($0) }
        if r.data.recurrence.frequency != .none {
            var recurrence = Switchboard_Collaboration_V1_Recurrence()
            recurrence.frequency = .init(protoValue: Int32(r.data.recurrence.frequency.rawValue))
            recurrence.interval = Int32(r.data.recurrence.interval)
            recurrence.count = Int32(r.data.recurrence.count)
            recurrence.exceptions = r.data.recurrence.exceptions.map { e in
                var x = Switchboard_Collaboration_V1_OccurrenceException()
                x.occurrence = Int32(e.occurrence)
                x.cancelled = e.moved == nil
                x.startTime = e.moved?.start
                x.endTime = e.moved?.end
                return x
            }
            p.recurrence = recurrence
        }
        p.occurrence = Int32(r.occurrence)
        return p
    }

    /// The erasure receipt published after the contacts feed's ERASED.
    static func proto(_ r: ErasureReceiptData) -> Switchboard_Collaboration_V1_ErasureReceipt {
        var p = Switchboard_Collaboration_V1_ErasureReceipt()
        p.contactId = r.contactID.lowercaseText
        p.erasureRequestId = r.erasureRequestID
        p.notesDeleted = Int32(clamping: r.notesDeleted)
        p.filesDeleted = Int32(clamping: r.filesDeleted)
        p.commentsDeleted = Int32(clamping: r.commentsDeleted)
        p.notesChanged = Int32(clamping: r.notesChanged)
        p.filesChanged = Int32(clamping: r.filesChanged)
        p.meetingsChanged = Int32(clamping: r.meetingsChanged)
        p.changesRedacted = Int32(clamping: r.changesRedacted)
        p.storedResponsesRemoved = Int32(clamping: r.storedResponsesRemoved)
        return p
    }
}
