import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// ``CollaborationStore`` on PostgreSQL. Every statement binds its values. Every transaction and read sets the
/// tenant, the user and whether they are an admin (`app.tenant_id`, `app.user_id`, `app.user_admin`), and the tables'
/// row-level security decides what exists for them: a note the caller may not read is not in any result, whatever
/// the query says.
public struct PostgresCollaborationStore: CollaborationStore {
    let pool: PostgresPool
    let feed: ChangeFeed
    let idempotency: Idempotency
    let publish: Publishers

    /// The published forms of resources in change events (proto3 JSON of their messages), made by the handlers'
    /// mapping so that this store never sees protobuf.
    public struct Publishers: Sendable {
        /// A note (a note that is not TENANT-visible without its body).
        public var note: @Sendable (NoteRecord) throws -> String
        /// A comment; `redacted` when its note is not TENANT-visible.
        public var comment: @Sendable (CommentRecord, _ redacted: Bool) throws -> String
        /// A team.
        public var team: @Sendable (TeamRecord) throws -> String
        /// A grant.
        public var grant: @Sendable (GrantRecord) throws -> String
        /// A file's metadata.
        public var file: @Sendable (FileRecord) throws -> String
        /// A meeting.
        public var meeting: @Sendable (MeetingRecord) throws -> String
        /// An erasure receipt.
        public var receipt: @Sendable (ErasureReceiptData) throws -> String

        /// Creates the publishers.
        public init(
            note: @escaping @Sendable (NoteRecord) throws -> String, comment: @escaping @Sendable (CommentRecord, Bool) throws -> String,
            team: @escaping @Sendable (TeamRecord) throws -> String, grant: @escaping @Sendable (GrantRecord) throws -> String,
            file: @escaping @Sendable (FileRecord) throws -> String, meeting: @escaping @Sendable (MeetingRecord) throws -> String,
            receipt: @escaping @Sendable (ErasureReceiptData) throws -> String
        ) {
            self.meeting = meeting
            self.receipt = receipt
            self.note = note
            self.comment = comment
            self.team = team
            self.grant = grant
            self.file = file
        }
    }

    static let noteType = "switchboard.collaboration.v1.Note"
    static let commentType = "switchboard.collaboration.v1.Comment"
    static let teamType = "switchboard.collaboration.v1.Team"
    static let grantType = "switchboard.collaboration.v1.Grant"
    static let fileType = "switchboard.collaboration.v1.File"

    /// Creates the store.
    /// - Parameters:
    ///   - pool: the service's pool.
    ///   - feed: the change feed written in each change's transaction.
    ///   - idempotency: the kit's idempotency keys.
    ///   - publish: the change-event payloads.
    public init(pool: PostgresPool, feed: ChangeFeed, idempotency: Idempotency, publish: Publishers) {
        self.pool = pool
        self.feed = feed
        self.idempotency = idempotency
        self.publish = publish
    }

    /// The transaction settings that row-level security reads.
    static func settings(_ principal: Principal) -> [String: String] {
        ["app.tenant_id": principal.actor.tenantID, "app.user_id": principal.userID, "app.user_admin": principal.isAdmin ? "on" : "off"]
    }

    /// One read as the principal.
    func read(_ principal: Principal, _ sql: String, _ binds: [PostgresValue]) async throws -> [PostgresRow] {
        try await pool.query(settings: Self.settings(principal), sql, binds).rows
    }

    /// An idempotent write as the principal: the kit's transaction (tenant set, request id claimed), with the user
    /// settings added before the work.
    func write<V: Sendable>(
        _ write: WriteOptions<V>, _ principal: Principal, _ body: (PostgresConnection) async throws -> V
    ) async throws -> WriteOutcome<V> {
        try await idempotency.transaction(write, actor: principal.actor, pool: pool) { c in
            try await c.query(
                "SELECT set_config('app.user_id', $1, true), set_config('app.user_admin', $2, true)",
                [.text(principal.userID), .text(principal.isAdmin ? "on" : "off")])
            return try await body(c)
        }
    }

    func recordChange(
        _ type: String, id: String, kind: ChangeKind, fields: [String] = [], json: String, principal: Principal, on c: PostgresConnection
    ) async throws {
        try await feed.record(
            ChangeRecord(resourceType: type, resourceID: id, kind: kind, changedFields: fields, resourceJSON: json, actorID: principal.userID),
            tenantID: principal.actor.tenantID, on: c)
    }

    /// The public form of the `replay` requirement.
    public func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]? {
        try await idempotency.replay(write, actor: actor, pool: pool)
    }

    /// Appends `$n` placeholders as values are added.
    struct Binds {
        var values: [PostgresValue]
        mutating func add(_ value: PostgresValue) -> String {
            values.append(value)
            return "$\(values.count)"
        }
    }

    /// A time cursor's value in SQL (exact to the microsecond).
    static func cursorTime(_ micros: Int64, _ binds: inout Binds) -> String {
        "(timestamptz 'epoch' + \(binds.add(.int(micros)))::int8 * interval '1 microsecond')"
    }

    static func page<R>(_ records: [R], limit: Int) -> Rows<R> {
        Rows(records: Array(records.prefix(limit)), more: records.count > limit)
    }

    static func subjects(_ row: PostgresRow, types: String, ids: String) throws -> [SubjectRef] {
        let t = try row.strings(types), i = try row.strings(ids)
        return zip(t, i).compactMap { type, id in
            guard let n = Int(type), let type = SubjectType(rawValue: n), let id = UUID(text: id) else { return nil }
            return SubjectRef(type: type, id: id)
        }
    }

    static func subjectBinds(_ subjects: [SubjectRef]) -> (types: PostgresValue, ids: PostgresValue) {
        (
            .array(subjects.map { .int(Int64($0.type.rawValue)) }, elementType: .int),
            .array(subjects.map { .uuid($0.id) }, elementType: .uuid)
        )
    }

    static func audit(_ row: PostgresRow) throws -> Audit {
        Audit(
            createdAt: try row.date("created_at"), createdBy: try row.string("created_by"), updatedAt: try row.date("updated_at"),
            updatedBy: try row.string("updated_by"), deletedAt: try row.optionalDate("deleted_at"))
    }

    // MARK: Notes

    static let noteColumns = """
        n.id, n.body, n.subject_types::text[] AS subject_types, n.subject_ids::text[] AS subject_ids, n.visibility, n.team_id, \
        n.mentioned_user_ids, n.author_id, n.version, n.created_at, n.created_by, n.updated_at, n.updated_by, n.deleted_at, \
        (extract(epoch FROM n.created_at) * 1000000)::int8 AS sort_micros
        """

    static func note(_ row: PostgresRow) throws -> NoteRecord {
        var data = NoteData()
        data.body = try row.string("body")
        data.subjects = try subjects(row, types: "subject_types", ids: "subject_ids")
        data.visibility = Visibility(rawValue: Int(try row.int("visibility"))) ?? .private
        if case .uuid(let team) = row["team_id"] { data.teamID = team }
        data.mentionedUserIDs = try row.strings("mentioned_user_ids")
        var record = NoteRecord(
            id: try row.uuid("id"), data: data, authorID: try row.string("author_id"), version: try row.int("version"), audit: try audit(row))
        record.sortMicros = try row.int("sort_micros")
        return record
    }

    func checkTeam(_ team: UUID?, principal: Principal, on c: PostgresConnection) async throws {
        guard let team else { return }
        let found = try await c.query(
            "SELECT 1 AS found FROM collaboration.teams WHERE tenant_id = $1 AND id = $2", [.text(principal.actor.tenantID), .uuid(team)]
        ).first
        if found == nil { throw CollaborationError.notFound(kind: "team", id: team.lowercaseText) }
    }

    func linkSubjects(_ note: NoteRecord, replacing: Bool, principal: Principal, on c: PostgresConnection) async throws {
        let tenant = PostgresValue.text(principal.actor.tenantID)
        if replacing {
            try await c.query("DELETE FROM collaboration.note_subjects WHERE tenant_id = $1 AND note_id = $2", [tenant, .uuid(note.id)])
        }
        let (types, ids) = Self.subjectBinds(note.data.subjects)
        // created_at is copied in SQL: a round trip through a Date could move it by a microsecond.
        try await c.query(
            """
            INSERT INTO collaboration.note_subjects (tenant_id, subject_type, subject_id, created_at, note_id)
            SELECT $1, u.t, u.s, n.created_at, n.id FROM unnest($2::int8[], $3::uuid[]) AS u(t, s), collaboration.notes n
            WHERE n.tenant_id = $1 AND n.id = $4
            """, [tenant, types, ids, .uuid(note.id)])
    }

    /// Mentioned users other than the author get one MENTION notification.
    func notifyMentions(_ users: [String], note: NoteRecord, principal: Principal, on c: PostgresConnection) async throws {
        let recipients = users.filter { $0 != principal.userID }
        guard !recipients.isEmpty else { return }
        // The title names the author only: the body stays in the note, which a mentioned user may not be able to read.
        _ = try await appendNotification(
            NotificationData(
                kind: .mention, audience: .users(recipients), title: "\(principal.userID) mentioned you in a note", resourceType: Self.noteType,
                resourceID: note.id.lowercaseText), principal: principal, on: c)
    }

    /// The protocol requirement `insertNote` (documented on the protocol).
    public func insertNote(_ data: NoteData, principal: Principal, write: WriteOptions<NoteRecord>) async throws -> WriteOutcome<NoteRecord> {
        try await self.write(write, principal) { c in
            try await checkTeam(data.teamID, principal: principal, on: c)
            let (types, ids) = Self.subjectBinds(data.subjects)
            let row = try await c.query(
                """
                INSERT INTO collaboration.notes AS n (tenant_id, id, body, subject_types, subject_ids, visibility, team_id, mentioned_user_ids,
                    author_id, created_at, created_by, updated_at, updated_by)
                VALUES ($1, $2, $3, $4::int8[]::smallint[], $5, $6, $7, $8, $9, now(), $9, now(), $9)
                RETURNING \(Self.noteColumns)
                """,
                [
                    .text(principal.actor.tenantID), .uuid(UUID.random()), .text(data.body), types, ids, .int(Int64(data.visibility.rawValue)),
                    data.teamID.map(PostgresValue.uuid) ?? .null, .array(data.mentionedUserIDs.map(PostgresValue.text), elementType: .text),
                    .text(principal.userID),
                ]
            ).first!
            let note = try Self.note(row)
            try await linkSubjects(note, replacing: false, principal: principal, on: c)
            try await notifyMentions(note.data.mentionedUserIDs, note: note, principal: principal, on: c)
            try await recordChange(
                Self.noteType, id: note.id.lowercaseText, kind: .created, json: try publish.note(note), principal: principal, on: c)
            return note
        }
    }

    /// The protocol requirement `fetchNote` (documented on the protocol).
    public func fetchNote(id: UUID, principal: Principal) async throws -> NoteRecord? {
        try await read(
            principal, "SELECT \(Self.noteColumns) FROM collaboration.notes n WHERE n.tenant_id = $1 AND n.id = $2",
            [.text(principal.actor.tenantID), .uuid(id)]
        ).first.map(Self.note)
    }

    /// Why an UPDATE of a note matched no row: gone, changed, or not the principal's to change.
    func noteRefusal(
        id: UUID, expectedVersion: Int64?, requireLive: Bool, principal: Principal, on c: PostgresConnection
    ) async throws
        -> CollaborationError
    {
        let current = try await c.query(
            "SELECT version, deleted_at FROM collaboration.notes WHERE tenant_id = $1 AND id = $2", [.text(principal.actor.tenantID), .uuid(id)]
        ).first
        guard let current else { return .notFound(kind: "note", id: id.lowercaseText) }
        if requireLive, try current.optionalDate("deleted_at") != nil { return .notFound(kind: "note", id: id.lowercaseText) }
        let version = try current.int("version")
        if let expectedVersion, version != expectedVersion { return .etagMismatch(current: CollaborationRules.etag(version)) }
        return .forbidden("only the note's author, an admin or a user granted EDIT may change it")
    }

    /// The protocol requirement `replaceNote` (documented on the protocol).
    public func replaceNote(
        id: UUID, expectedVersion: Int64, data: NoteData, changedFields: [String], newMentions: [String], principal: Principal,
        write: WriteOptions<NoteRecord>
    ) async throws -> WriteOutcome<NoteRecord> {
        try await self.write(write, principal) { c in
            if changedFields.contains("team_id") { try await checkTeam(data.teamID, principal: principal, on: c) }
            let (types, ids) = Self.subjectBinds(data.subjects)
            guard
                let row = try await c.query(
                    """
                    UPDATE collaboration.notes AS n SET body = $4, subject_types = $5::int8[]::smallint[], subject_ids = $6, visibility = $7,
                        team_id = $8, mentioned_user_ids = $9, version = version + 1, updated_at = now(), updated_by = $10
                    WHERE tenant_id = $1 AND id = $2 AND version = $3 AND deleted_at IS NULL
                    RETURNING \(Self.noteColumns)
                    """,
                    [
                        .text(principal.actor.tenantID), .uuid(id), .int(expectedVersion), .text(data.body), types, ids,
                        .int(Int64(data.visibility.rawValue)), data.teamID.map(PostgresValue.uuid) ?? .null,
                        .array(data.mentionedUserIDs.map(PostgresValue.text), elementType: .text), .text(principal.userID),
                    ]
                ).first
            else {
                throw try await noteRefusal(id: id, expectedVersion: expectedVersion, requireLive: true, principal: principal, on: c)
            }
            let note = try Self.note(row)
            if changedFields.contains("subjects") { try await linkSubjects(note, replacing: true, principal: principal, on: c) }
            try await notifyMentions(newMentions, note: note, principal: principal, on: c)
            try await recordChange(
                Self.noteType, id: note.id.lowercaseText, kind: .updated, fields: changedFields, json: try publish.note(note), principal: principal,
                on: c)
            return note
        }
    }

    /// The protocol requirement `setNoteDeleted` (documented on the protocol).
    public func setNoteDeleted(
        id: UUID, deleted: Bool, expectedVersion: Int64?, principal: Principal, write: WriteOptions<NoteRecord>
    ) async throws -> WriteOutcome<NoteRecord> {
        try await self.write(write, principal) { c in
            guard
                let row = try await c.query(
                    """
                    UPDATE collaboration.notes AS n SET deleted_at = CASE WHEN $4 THEN now() END, version = version + 1, updated_at = now(),
                        updated_by = $5
                    WHERE tenant_id = $1 AND id = $2 AND ($3::int8 IS NULL OR version = $3) AND (deleted_at IS NOT NULL) <> $4
                    RETURNING \(Self.noteColumns)
                    """,
                    [
                        .text(principal.actor.tenantID), .uuid(id), expectedVersion.map(PostgresValue.int) ?? .null, .bool(deleted),
                        .text(principal.userID),
                    ]
                ).first
            else {
                // Already in the asked state: nothing changes and no event is written, if the caller could have changed it.
                let refusal = try await noteRefusal(id: id, expectedVersion: expectedVersion, requireLive: false, principal: principal, on: c)
                if case .forbidden = refusal, let current = try await fetchNote(id: id, principal: principal, on: c),
                    (current.audit.deletedAt != nil) == deleted, try await mayEdit(id, principal: principal, on: c)
                {
                    return current
                }
                throw refusal
            }
            let note = try Self.note(row)
            try await recordChange(
                Self.noteType, id: note.id.lowercaseText, kind: deleted ? .deleted : .undeleted, json: try publish.note(note), principal: principal,
                on: c)
            return note
        }
    }

    func fetchNote(id: UUID, principal: Principal, on c: PostgresConnection) async throws -> NoteRecord? {
        try await c.query(
            "SELECT \(Self.noteColumns) FROM collaboration.notes n WHERE n.tenant_id = $1 AND n.id = $2",
            [.text(principal.actor.tenantID), .uuid(id)]
        ).first.map(Self.note)
    }

    /// Whether the update policy admits the principal to the note (a no-op UPDATE that changes nothing visible).
    func mayEdit(_ id: UUID, principal: Principal, on c: PostgresConnection) async throws -> Bool {
        try await c.query(
            "UPDATE collaboration.notes SET version = version WHERE tenant_id = $1 AND id = $2", [.text(principal.actor.tenantID), .uuid(id)]
        ).affectedRows == 1
    }

    /// The protocol requirement `listNotes` (documented on the protocol).
    public func listNotes(
        subject: SubjectRef, after: TimeCursor?, limit: Int, includeDeleted: Bool, principal: Principal
    ) async throws
        -> Rows<NoteRecord>
    {
        var binds = Binds(values: [.text(principal.actor.tenantID), .int(Int64(subject.type.rawValue)), .uuid(subject.id)])
        var conditions = ["s.tenant_id = $1", "s.subject_type = $2", "s.subject_id = $3"]
        if !includeDeleted { conditions.append("n.deleted_at IS NULL") }
        if let after {
            conditions.append("(s.created_at, s.note_id) < (\(Self.cursorTime(after.micros, &binds)), \(binds.add(.uuid(after.id))))")
        }
        let limitPlaceholder = binds.add(.int(Int64(limit + 1)))
        // Only fixed text and placeholders are spliced; row-level security leaves out notes the principal may not read.
        let rows = try await read(
            principal,
            """
            SELECT \(Self.noteColumns) FROM collaboration.note_subjects s
            JOIN collaboration.notes n ON n.tenant_id = s.tenant_id AND n.id = s.note_id
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY s.created_at DESC, s.note_id DESC LIMIT \(limitPlaceholder)
            """, binds.values)
        return Self.page(try rows.map(Self.note), limit: limit)
    }
}
