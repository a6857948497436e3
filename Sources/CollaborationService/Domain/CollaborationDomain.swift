import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardServiceKit

/// The collaboration use cases: validation, ownership rules, etags and page tokens, over a ``CollaborationStore``.
/// Visibility itself is the store's (the database's) decision.
public struct CollaborationDomain: Sendable {
    let store: any CollaborationStore
    /// Wakes whenever the tenant may have new notifications (and periodically regardless).
    let wakeups: @Sendable (_ tenantID: String) -> AsyncStream<Void>
    /// The largest file an upload may declare.
    public let maxFileBytes: Int64
    /// Bounds the uploads running at once (each holds a database transaction while its client sends).
    let uploads: StreamLimiter
    /// Bounds the notification streams open at once in this process (each wakes and queries on every write of its
    /// tenant): one tenant may hold half.
    let subscriptions: StreamLimiter
    /// Bounds one user's notification streams at once.
    let userSubscriptions: StreamLimiter

    /// Creates the domain.
    /// - Parameters:
    ///   - store: storage.
    ///   - maxFileBytes: the largest file.
    ///   - uploadStreams: most uploads at once.
    ///   - wakeups: wakeups of a tenant's notification streams.
    ///   - subscriptions: most notification streams open at once (one tenant may hold half).
    ///   - subscriptionsPerUser: most notification streams of one user at once.
    public init(
        store: any CollaborationStore, maxFileBytes: Int64 = FileRules.defaultMaxFileBytes, uploadStreams: Int = 4,
        subscriptions: Int = 10_000, subscriptionsPerUser: Int = 16, wakeups: @escaping @Sendable (String) -> AsyncStream<Void>
    ) {
        self.store = store
        self.maxFileBytes = maxFileBytes
        self.uploads = StreamLimiter(limit: uploadStreams, what: "uploads")
        self.subscriptions = StreamLimiter(limit: subscriptions, what: "notification streams")
        self.userSubscriptions = StreamLimiter(limit: Int.max / 2, perKeyLimit: subscriptionsPerUser, what: "notification streams")
        self.wakeups = wakeups
    }

    func replayed<V>(_ write: WriteOptions<V>, _ principal: Principal) async throws -> WriteOutcome<V>? {
        try await store.replay(write, actor: principal.actor).map { .replayed($0) }
    }

    // MARK: Notes

    /// Creates a note authored by the principal.
    /// - Throws: ``CollaborationError`` (`invalid`, `notFound` for the team).
    public func createNote(_ data: NoteData, principal: Principal, write: WriteOptions<NoteRecord>) async throws -> WriteOutcome<NoteRecord> {
        if let replay = try await replayed(write, principal) { return replay }
        var data = data
        let violations = NoteRules.check(&data)
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        // The author is never notified of their own mention.
        return try await store.insertNote(data, principal: principal, write: write)
    }

    /// A note the principal may read.
    /// - Throws: `notFound` (also for a note the principal may not read, and a deleted one without `includeDeleted`).
    public func note(id: UUID, includeDeleted: Bool, principal: Principal) async throws -> NoteRecord {
        guard let note = try await store.fetchNote(id: id, principal: principal), includeDeleted || note.audit.deletedAt == nil else {
            throw CollaborationError.notFound(kind: "note", id: id.lowercaseText)
        }
        return note
    }

    /// Updates the masked fields of a live note (the author, an admin or an EDIT grantee).
    public func updateNote(
        id: UUID, from source: NoteData, paths: [String], etag: String, principal: Principal, write: WriteOptions<NoteRecord>
    ) async throws -> WriteOutcome<NoteRecord> {
        if let replay = try await replayed(write, principal) { return replay }
        try CollaborationRules.checkETag(etag)
        let current = try await note(id: id, includeDeleted: false, principal: principal)
        if !etag.isEmpty, etag != current.etag { throw CollaborationError.etagMismatch(current: current.etag) }
        var (data, changed) = try NoteRules.merge(current.data, from: source, paths: paths)
        // Who may read the note is its author's (or an admin's) decision: an EDIT grantee of a private note must not
        // be able to publish it to the team or the tenant.
        if data.visibility != current.data.visibility || data.teamID != current.data.teamID, current.authorID != principal.userID,
            !principal.isAdmin
        {
            throw CollaborationError.forbidden("only the note's author or an admin may change its visibility or team")
        }
        // A note made TEAM or PRIVATE drops a team it no longer needs only when asked; say so rather than guess.
        let violations = NoteRules.check(&data)
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        let before = Set(current.data.mentionedUserIDs)
        let newMentions = data.mentionedUserIDs.filter { !before.contains($0) }
        changed = changed.filter { $0 != "mentioned_user_ids" || data.mentionedUserIDs != current.data.mentionedUserIDs }
        return try await store.replaceNote(
            id: id, expectedVersion: current.version, data: data, changedFields: changed, newMentions: newMentions, principal: principal,
            write: write)
    }

    /// Soft-deletes (or restores) a note.
    public func setNoteDeleted(
        id: UUID, deleted: Bool, etag: String, principal: Principal, write: WriteOptions<NoteRecord>
    ) async throws -> WriteOutcome<NoteRecord> {
        if let replay = try await replayed(write, principal) { return replay }
        try CollaborationRules.checkETag(etag)
        let current = try await note(id: id, includeDeleted: true, principal: principal)
        if !etag.isEmpty, etag != current.etag { throw CollaborationError.etagMismatch(current: current.etag) }
        return try await store.setNoteDeleted(
            id: id, deleted: deleted, expectedVersion: etag.isEmpty ? nil : current.version, principal: principal, write: write)
    }

    /// A page of a subject's notes, and the next page's token (empty at the end).
    public func listNotes(
        subject: SubjectRef, pageSize: Int, pageToken: String, includeDeleted: Bool, principal: Principal
    ) async throws -> ([NoteRecord], String) {
        let limit = try CollaborationRules.pageLimit(pageSize)
        let fingerprint = ["notes", String(subject.type.rawValue), subject.id.lowercaseText, String(includeDeleted)]
        let after = try TimeCursor.resume(pageToken, fingerprint: fingerprint)
        let rows = try await store.listNotes(subject: subject, after: after, limit: limit, includeDeleted: includeDeleted, principal: principal)
        let next = rows.more ? rows.records.last.map { TimeCursor(micros: $0.sortMicros, id: $0.id).token(fingerprint: fingerprint) } ?? "" : ""
        return (rows.records, next)
    }

    // MARK: Comments

    /// Comments on a note the principal may read, or on a record; a reply's parent must be in the same thread.
    public func createComment(
        thread: CommentThread, parentID: UUID?, body: String, principal: Principal, write: WriteOptions<CommentRecord>
    ) async throws -> WriteOutcome<CommentRecord> {
        if let replay = try await replayed(write, principal) { return replay }
        let violations = CommentRules.checkBody(body)
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        if case .note(let noteID) = thread { _ = try await note(id: noteID, includeDeleted: false, principal: principal) }
        if let parentID {
            guard let parent = try await store.fetchComment(id: parentID, principal: principal), parent.audit.deletedAt == nil else {
                throw CollaborationError.notFound(kind: "comment", id: parentID.lowercaseText)
            }
            guard parent.thread == thread else {
                throw CollaborationError.invalid("comment.parent_id", "is a comment of another thread")
            }
        }
        return try await store.insertComment(thread: thread, parentID: parentID, body: body, principal: principal, write: write)
    }

    /// Changes a comment's body (`body`) or soft-deletes it (`body` nil): its author or an admin only.
    /// - Throws: `forbidden` for anyone else, `notFound`, `etagMismatch`.
    public func changeComment(
        id: UUID, body: String?, etag: String, principal: Principal, write: WriteOptions<CommentRecord>
    ) async throws -> WriteOutcome<CommentRecord> {
        if let replay = try await replayed(write, principal) { return replay }
        try CollaborationRules.checkETag(etag)
        if let body {
            let violations = CommentRules.checkBody(body)
            if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        }
        guard let current = try await store.fetchComment(id: id, principal: principal), current.audit.deletedAt == nil else {
            throw CollaborationError.notFound(kind: "comment", id: id.lowercaseText)
        }
        guard current.authorID == principal.userID || principal.isAdmin else {
            throw CollaborationError.forbidden("only the comment's author or an admin may change or delete it")
        }
        if !etag.isEmpty, etag != current.etag { throw CollaborationError.etagMismatch(current: current.etag) }
        return try await store.changeComment(
            id: id, expectedVersion: etag.isEmpty ? nil : current.version, body: body, principal: principal, write: write)
    }

    /// A page of a thread, oldest first, and the next page's token.
    public func listComments(
        thread: CommentThread, pageSize: Int, pageToken: String, includeDeleted: Bool, principal: Principal
    ) async throws -> ([CommentRecord], String) {
        let limit = try CollaborationRules.pageLimit(pageSize)
        var fingerprint = ["comments", String(includeDeleted)]
        switch thread {
        case .note(let id):
            _ = try await note(id: id, includeDeleted: true, principal: principal)
            fingerprint += ["note", id.lowercaseText]
        case .subject(let s): fingerprint += [String(s.type.rawValue), s.id.lowercaseText]
        }
        let after = try TimeCursor.resume(pageToken, fingerprint: fingerprint)
        let rows = try await store.listComments(thread: thread, after: after, limit: limit, includeDeleted: includeDeleted, principal: principal)
        let next = rows.more ? rows.records.last.map { TimeCursor(micros: $0.sortMicros, id: $0.id).token(fingerprint: fingerprint) } ?? "" : ""
        return (rows.records, next)
    }
}
