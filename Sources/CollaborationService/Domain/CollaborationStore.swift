import FoundationEssentials
import SwitchboardServiceKit

/// Writes a file's content inside its upload's transaction, one stored chunk at a time.
public typealias ChunkWriter = ([UInt8]) async throws -> Void

/// What the collaboration use cases need of storage. Every read and write runs as the principal: the database's
/// row-level security decides which notes, comments and notifications exist for them, so an implementation reports
/// a row the principal may not see exactly as a missing one.
public protocol CollaborationStore: Sendable {
    /// The stored response of a write made before under the same request id, or nil.
    func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]?

    // MARK: Notes
    /// Stores a new note by the principal, with a MENTION notification for the mentioned users, and its change.
    func insertNote(_ data: NoteData, principal: Principal, write: WriteOptions<NoteRecord>) async throws -> WriteOutcome<NoteRecord>
    /// A note the principal may read (deleted ones included), or nil.
    func fetchNote(id: UUID, principal: Principal) async throws -> NoteRecord?
    /// Replaces a live note's data if it is still at `expectedVersion` and the principal may edit it, notifying
    /// `newMentions`. Throws `notFound`, `etagMismatch` or `forbidden`.
    func replaceNote(
        id: UUID, expectedVersion: Int64, data: NoteData, changedFields: [String], newMentions: [String], principal: Principal,
        write: WriteOptions<NoteRecord>
    ) async throws -> WriteOutcome<NoteRecord>
    /// Soft-deletes or restores a note the principal may edit (at `expectedVersion` when given).
    func setNoteDeleted(
        id: UUID, deleted: Bool, expectedVersion: Int64?, principal: Principal, write: WriteOptions<NoteRecord>
    ) async throws -> WriteOutcome<NoteRecord>
    /// A page of the notes about a subject that the principal may read, newest first.
    func listNotes(subject: SubjectRef, after: TimeCursor?, limit: Int, includeDeleted: Bool, principal: Principal) async throws -> Rows<NoteRecord>

    // MARK: Comments
    /// Stores a comment by the principal (the thread's note must be readable by them; the parent in the same thread),
    /// notifying the note's author or the parent's author.
    func insertComment(
        thread: CommentThread, parentID: UUID?, body: String, principal: Principal, write: WriteOptions<CommentRecord>
    ) async throws -> WriteOutcome<CommentRecord>
    /// A comment the principal may read, or nil.
    func fetchComment(id: UUID, principal: Principal) async throws -> CommentRecord?
    /// Changes a comment's body, or soft-deletes it (`body` nil), if the principal is its author or an admin.
    func changeComment(
        id: UUID, expectedVersion: Int64?, body: String?, principal: Principal, write: WriteOptions<CommentRecord>
    ) async throws -> WriteOutcome<CommentRecord>
    /// A page of a thread, oldest first.
    func listComments(
        thread: CommentThread, after: TimeCursor?, limit: Int, includeDeleted: Bool, principal: Principal
    ) async throws -> Rows<CommentRecord>

    // MARK: Teams and grants
    /// Stores a team (ALREADY_EXISTS for a taken name).
    func insertTeam(name: String, members: [String], principal: Principal, write: WriteOptions<TeamRecord>) async throws -> WriteOutcome<TeamRecord>
    /// Renames a team if still at `expectedVersion` (ALREADY_EXISTS for a taken name).
    func renameTeam(
        id: UUID, name: String, expectedVersion: Int64?, principal: Principal, write: WriteOptions<TeamRecord>
    ) async throws
        -> WriteOutcome<TeamRecord>
    /// A team of the tenant, or nil.
    func fetchTeam(id: UUID, principal: Principal) async throws -> TeamRecord?
    /// A page of teams in name order.
    func listTeams(member: String?, after: (name: String, id: UUID)?, limit: Int, principal: Principal) async throws -> Rows<TeamRecord>
    /// Adds and removes members (FAILED_PRECONDITION past ``TeamRules/maxMembers``).
    func changeMembers(
        teamID: UUID, add: [String], remove: [String], principal: Principal, write: WriteOptions<TeamRecord>
    ) async throws -> WriteOutcome<TeamRecord>
    /// Shares a note the principal authored (or any, for an admin), replacing an earlier grant to the same grantee,
    /// and notifies the grantee.
    func upsertGrant(
        noteID: UUID, grantee: Grantee, permission: Permission, principal: Principal, write: WriteOptions<GrantRecord>
    ) async throws -> WriteOutcome<GrantRecord>
    /// Revokes a grant of a note the principal authored (or any, for an admin).
    func deleteGrant(id: UUID, principal: Principal, write: WriteOptions<GrantRecord>) async throws -> WriteOutcome<GrantRecord>
    /// The grants of a note the principal may read, oldest first.
    func listGrants(noteID: UUID, principal: Principal) async throws -> [GrantRecord]

    // MARK: Notifications
    /// Stores a notification from the principal and wakes its audience's streams at commit.
    func insertNotification(
        _ data: NotificationData, principal: Principal, write: WriteOptions<NotificationRecord>
    ) async throws -> WriteOutcome<NotificationRecord>
    /// The principal's notifications after an id in id order (`ascending`), or before one newest first, leaving out
    /// muted kinds.
    func notifications(
        from id: Int64?, ascending: Bool, unreadOnly: Bool, limit: Int, principal: Principal
    ) async throws -> Rows<NotificationRecord>
    /// Marks the principal's notifications read (or acknowledged); returns how many changed.
    func markNotifications(ids: [Int64], acknowledge: Bool, principal: Principal) async throws -> Int
    /// The kinds the principal muted.
    func mutedKinds(principal: Principal) async throws -> [NotificationKind]
    /// Replaces the kinds the principal muted.
    func setMutedKinds(_ kinds: [NotificationKind], principal: Principal) async throws

    // MARK: Files
    /// Stores a file in one transaction: the metadata row, then whatever `content` writes through the writer it is
    /// given; if `content` throws, nothing is stored.
    func insertFile(
        _ data: FileData, principal: Principal, write: WriteOptions<FileRecord>, content: (ChunkWriter) async throws -> Void
    ) async throws -> WriteOutcome<FileRecord>
    /// A file's metadata, or nil.
    func fetchFile(id: UUID, principal: Principal) async throws -> FileRecord?
    /// Soft-deletes or restores a file (the uploader or an admin; `forbidden` otherwise).
    func setFileDeleted(id: UUID, deleted: Bool, principal: Principal, write: WriteOptions<FileRecord>) async throws -> WriteOutcome<FileRecord>
    /// A file's stored chunk (0-based), or nil past the end.
    func fileChunk(id: UUID, index: Int, principal: Principal) async throws -> [UInt8]?
    /// A page of the files of a subject, newest first.
    func listFiles(subject: SubjectRef, after: TimeCursor?, limit: Int, principal: Principal) async throws -> Rows<FileRecord>

    // MARK: Meetings
    /// Stores a meeting organized by the principal. Unless `allowConflicts`, throws `meetingConflicts` when an
    /// attendee user has another live meeting overlapping it (checked under per-user locks, so two concurrent
    /// bookings cannot both pass); `invalid` naming `meeting.time_zone` for an unknown zone.
    func insertMeeting(
        _ data: MeetingData, allowConflicts: Bool, principal: Principal, write: WriteOptions<MeetingRecord>
    ) async throws
        -> WriteOutcome<MeetingRecord>
    /// A meeting of the tenant (cancelled ones included), or nil.
    func fetchMeeting(id: UUID, principal: Principal) async throws -> MeetingRecord?
    /// Replaces a live meeting's data (its exceptions included) if still at `expectedVersion`, with the same conflict
    /// check when the change reschedules it (only occurrence `onlyOccurrence`'s times, when given), and, with
    /// `seriesCheck`, the series checked not to overlap itself or run past 9999 (naming those fields).
    func replaceMeeting(
        id: UUID, expectedVersion: Int64, data: MeetingData, changedFields: [String], allowConflicts: Bool, onlyOccurrence: Int?,
        seriesCheck: (overlapField: String, rangeField: String)?, principal: Principal, write: WriteOptions<MeetingRecord>
    ) async throws -> WriteOutcome<MeetingRecord>
    /// Restores a cancelled meeting, with the conflict check of a booking unless `allowConflicts`.
    func restoreMeeting(
        id: UUID, allowConflicts: Bool, principal: Principal, write: WriteOptions<MeetingRecord>
    ) async throws
        -> WriteOutcome<MeetingRecord>
    /// Cancels (soft-deletes) a live meeting.
    func cancelMeeting(
        id: UUID, expectedVersion: Int64?, principal: Principal, write: WriteOptions<MeetingRecord>
    ) async throws
        -> WriteOutcome<MeetingRecord>
    /// A page of a contact's or a user's live meetings in start order, overlapping the window.
    func listMeetings(
        of scope: MeetingScope, window: (min: Date?, max: Date?), after: TimeCursor?, limit: Int, principal: Principal
    ) async throws -> Rows<MeetingRecord>
    /// The live meetings of the users overlapping a range, as intervals; at most `limit` + 1.
    func busy(users: [String], range: TimeSlot, limit: Int, principal: Principal) async throws -> [TimeSlot]

    // MARK: Subjects
    /// Everything held about a contact, in batches: the notes about them, the comments on their record and on those
    /// notes, their files (deleted ones included; what the principal may read, which for an admin is everything).
    func exportSubject(contact: UUID, principal: Principal, deliver: ([SubjectItem]) async throws -> Void) async throws
}

/// One item ExportSubject streams.
public enum SubjectItem: Sendable, Hashable {
    /// A note about the person.
    case note(NoteRecord)
    /// A comment on their record or on a note about them.
    case comment(CommentRecord)
    /// A file of their record.
    case file(FileRecord)
    /// A meeting with them.
    case meeting(MeetingRecord)
}

/// Whose meetings a list reads.
public enum MeetingScope: Sendable, Hashable {
    /// A contact's.
    case contact(UUID)
    /// A user's (as attendee).
    case user(String)
}
