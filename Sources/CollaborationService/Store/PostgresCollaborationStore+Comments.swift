import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresCollaborationStore {
    static let commentColumns = """
        c.id, c.note_id, c.subject_type, c.subject_id, c.parent_id, c.body, c.author_id, c.version, c.created_at, c.created_by, \
        c.updated_at, c.updated_by, c.deleted_at, (extract(epoch FROM c.created_at) * 1000000)::int8 AS sort_micros
        """

    static func comment(_ row: PostgresRow) throws -> CommentRecord {
        let thread: CommentThread
        if case .uuid(let note) = row["note_id"] {
            thread = .note(note)
        } else {
            thread = .subject(
                SubjectRef(type: SubjectType(rawValue: Int(try row.int("subject_type"))) ?? .contact, id: try row.uuid("subject_id")))
        }
        var parent: UUID?
        if case .uuid(let p) = row["parent_id"] { parent = p }
        var record = CommentRecord(
            id: try row.uuid("id"), thread: thread, parentID: parent, body: try row.string("body"), authorID: try row.string("author_id"),
            version: try row.int("version"), audit: try audit(row))
        record.sortMicros = try row.int("sort_micros")
        return record
    }

    /// The note of a note's thread as the principal reads it: its visibility and author.
    func threadNote(_ thread: CommentThread, principal: Principal, on c: PostgresConnection) async throws -> (redacted: Bool, author: String?) {
        guard case .note(let id) = thread else { return (false, nil) }
        guard
            let row = try await c.query(
                "SELECT visibility, author_id FROM collaboration.notes WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                [.text(principal.actor.tenantID), .uuid(id)]
            ).first
        else { throw CollaborationError.notFound(kind: "note", id: id.lowercaseText) }
        return (try row.int("visibility") != Int64(Visibility.tenant.rawValue), try row.string("author_id"))
    }

    /// The protocol requirement `insertComment` (documented on the protocol).
    public func insertComment(
        thread: CommentThread, parentID: UUID?, body: String, principal: Principal, write: WriteOptions<CommentRecord>
    ) async throws -> WriteOutcome<CommentRecord> {
        try await self.write(write, principal) { c in
            let note = try await threadNote(thread, principal: principal, on: c)
            var noteID: PostgresValue = .null, type: PostgresValue = .null, subject: PostgresValue = .null
            switch thread {
            case .note(let id): noteID = .uuid(id)
            case .subject(let s):
                type = .int(Int64(s.type.rawValue))
                subject = .uuid(s.id)
            }
            let row = try await c.query(
                """
                INSERT INTO collaboration.comments AS c (tenant_id, id, note_id, subject_type, subject_id, parent_id, body, author_id, created_at,
                    created_by, updated_at, updated_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), $8, now(), $8)
                RETURNING \(Self.commentColumns)
                """,
                [
                    .text(principal.actor.tenantID), .uuid(UUID.random()), noteID, type, subject, parentID.map(PostgresValue.uuid) ?? .null,
                    .text(body), .text(principal.userID),
                ]
            ).first!
            let comment = try Self.comment(row)
            // The note's author and the replied-to comment's author hear of it (never the commenter).
            var recipients: [String] = []
            if let author = note.author { recipients.append(author) }
            if let parentID,
                let parent = try await c.query(
                    "SELECT author_id FROM collaboration.comments WHERE tenant_id = $1 AND id = $2",
                    [.text(principal.actor.tenantID), .uuid(parentID)]
                ).first
            {
                recipients.append(try parent.string("author_id"))
            }
            recipients = Array(Set(recipients.filter { $0 != principal.userID })).sorted()
            if !recipients.isEmpty {
                _ = try await appendNotification(
                    NotificationData(
                        kind: .comment, audience: .users(recipients), title: "\(principal.userID) commented", resourceType: Self.commentType,
                        resourceID: comment.id.lowercaseText), principal: principal, on: c)
            }
            try await recordChange(
                Self.commentType, id: comment.id.lowercaseText, kind: .created, json: try publish.comment(comment, note.redacted),
                principal: principal, on: c)
            return comment
        }
    }

    /// The protocol requirement `fetchComment` (documented on the protocol).
    public func fetchComment(id: UUID, principal: Principal) async throws -> CommentRecord? {
        try await read(
            principal, "SELECT \(Self.commentColumns) FROM collaboration.comments c WHERE c.tenant_id = $1 AND c.id = $2",
            [.text(principal.actor.tenantID), .uuid(id)]
        ).first.map(Self.comment)
    }

    /// The protocol requirement `changeComment` (documented on the protocol).
    public func changeComment(
        id: UUID, expectedVersion: Int64?, body: String?, principal: Principal, write: WriteOptions<CommentRecord>
    ) async throws -> WriteOutcome<CommentRecord> {
        try await self.write(write, principal) { c in
            guard
                let row = try await c.query(
                    """
                    UPDATE collaboration.comments AS c SET body = coalesce($4, body), deleted_at = CASE WHEN $4::text IS NULL THEN now() END,
                        version = version + 1, updated_at = now(), updated_by = $5
                    WHERE tenant_id = $1 AND id = $2 AND ($3::int8 IS NULL OR version = $3) AND deleted_at IS NULL
                    RETURNING \(Self.commentColumns)
                    """,
                    [
                        .text(principal.actor.tenantID), .uuid(id), expectedVersion.map(PostgresValue.int) ?? .null,
                        body.map(PostgresValue.text) ?? .null, .text(principal.userID),
                    ]
                ).first
            else {
                let current = try await c.query(
                    "SELECT version, deleted_at FROM collaboration.comments WHERE tenant_id = $1 AND id = $2",
                    [.text(principal.actor.tenantID), .uuid(id)]
                ).first
                guard let current, try current.optionalDate("deleted_at") == nil else {
                    throw CollaborationError.notFound(kind: "comment", id: id.lowercaseText)
                }
                let version = try current.int("version")
                if let expectedVersion, version != expectedVersion {
                    throw CollaborationError.etagMismatch(current: CollaborationRules.etag(version))
                }
                throw CollaborationError.forbidden("only the comment's author or an admin may change or delete it")
            }
            let comment = try Self.comment(row)
            let redacted: Bool
            if case .note(let noteID) = comment.thread {
                let visibility = try await c.query(
                    "SELECT visibility FROM collaboration.notes WHERE tenant_id = $1 AND id = $2", [.text(principal.actor.tenantID), .uuid(noteID)]
                ).first
                redacted = try visibility.map { try $0.int("visibility") } != Int64(Visibility.tenant.rawValue)
            } else {
                redacted = false
            }
            try await recordChange(
                Self.commentType, id: comment.id.lowercaseText, kind: body == nil ? .deleted : .updated, fields: body == nil ? [] : ["body"],
                json: try publish.comment(comment, redacted), principal: principal, on: c)
            return comment
        }
    }

    /// The protocol requirement `listComments` (documented on the protocol).
    public func listComments(
        thread: CommentThread, after: TimeCursor?, limit: Int, includeDeleted: Bool, principal: Principal
    ) async throws -> Rows<CommentRecord> {
        var binds = Binds(values: [.text(principal.actor.tenantID)])
        var conditions = ["c.tenant_id = $1"]
        switch thread {
        case .note(let id): conditions.append("c.note_id = \(binds.add(.uuid(id)))")
        case .subject(let s):
            conditions.append("c.subject_type = \(binds.add(.int(Int64(s.type.rawValue))))")
            conditions.append("c.subject_id = \(binds.add(.uuid(s.id)))")
        }
        if !includeDeleted { conditions.append("c.deleted_at IS NULL") }
        if let after {
            conditions.append("(c.created_at, c.id) > (\(Self.cursorTime(after.micros, &binds)), \(binds.add(.uuid(after.id))))")
        }
        let limitPlaceholder = binds.add(.int(Int64(limit + 1)))
        // Only fixed text and placeholders are spliced.
        let rows = try await read(
            principal,
            """
            SELECT \(Self.commentColumns) FROM collaboration.comments c
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY c.created_at, c.id LIMIT \(limitPlaceholder)
            """, binds.values)
        return Self.page(try rows.map(Self.comment), limit: limit)
    }
}
