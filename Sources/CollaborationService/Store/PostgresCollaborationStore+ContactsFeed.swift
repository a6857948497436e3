import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresCollaborationStore {
    /// Who the contacts feed's changes are recorded as.
    static let feedActor = "contacts-feed"

    /// A subject list without `person`, or with `person` replaced by `winner` (deduplicated, order kept), as an SQL
    /// expression over the row's `subject_types` and `subject_ids` ($2 the person, $3 the winner or NULL).
    static let rewrittenSubjects = """
        (SELECT coalesce(array_agg(y.t ORDER BY y.ord), '{}'), coalesce(array_agg(y.i ORDER BY y.ord), '{}') FROM (
            SELECT DISTINCT ON (x.t, x.i) x.t, x.i, x.ord FROM (
                SELECT u.t, CASE WHEN u.t = 1 AND u.i = $2 THEN $3::uuid ELSE u.i END AS i, u.ord
                FROM unnest(subject_types, subject_ids) WITH ORDINALITY AS u (t, i, ord)) x
            WHERE x.i IS NOT NULL ORDER BY x.t, x.i, x.ord) y)
        """

    /// Applies the contacts feed's changes in order inside the feed consumer's batch transaction (the cursor commits
    /// with the effects). Each change sets its tenant first, as an admin of it (every note is in reach) and, for an
    /// erasure, with `app.erasure` on (the only way past the notes' and comments' DELETE policies).
    public func applyContactChanges(_ changes: [ContactChange], on c: PostgresConnection) async throws {
        for change in changes {
            let principal = Principal(actor: Actor(tenantID: change.tenantID, userID: Self.feedActor), isAdmin: true, isManager: true)
            var erasing = false
            if case .erased = change.kind { erasing = true }
            try await c.query(
                """
                SELECT set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true), set_config('app.user_admin', 'on', true),
                    set_config('app.erasure', $3, true)
                """, [.text(change.tenantID), .text(Self.feedActor), .text(erasing ? "on" : "off")])
            switch change.kind {
            case .merged(let winner): try await merge(change.contactID, into: winner, principal: principal, on: c)
            case .unmerged(let formerWinner): try await unmerge(change.contactID, from: formerWinner, principal: principal, on: c)
            case .erased(let request): try await erase(change.contactID, request: request, principal: principal, on: c)
            }
        }
        // Later statements of the batch run without the erasure's rights.
        try await c.query("SELECT set_config('app.erasure', 'off', true)", [])
    }

    /// Re-points notes, files, comments and meetings from the loser to the winner, publishing each changed note,
    /// file and meeting as UPDATED, and logs what it moved (`merge_moves`, migration 011) for an unmerge. A second
    /// MERGED of a loser not unmerged in between keeps the first log of each row.
    func merge(_ loser: UUID, into winner: UUID, principal: Principal, on c: PostgresConnection) async throws {
        let binds: [PostgresValue] = [.text(principal.actor.tenantID), .uuid(loser), .uuid(winner)]
        // The rows are locked and their lists logged before they change, so the log holds what the merge rewrote.
        let logged: [(kind: String, table: String, types: String, ids: String, rows: String)] = [
            (
                "note", "notes", "subject_types", "subject_ids",
                "SELECT s.note_id FROM collaboration.note_subjects s WHERE s.tenant_id = $1 AND s.subject_type = 1 AND s.subject_id = $2"
            ),
            (
                "file", "files", "subject_types", "subject_ids",
                "SELECT s.file_id FROM collaboration.file_subjects s WHERE s.tenant_id = $1 AND s.subject_type = 1 AND s.subject_id = $2"
            ),
            (
                "comment", "comments", "NULL::smallint[]", "NULL::uuid[]",
                "SELECT id FROM collaboration.comments WHERE tenant_id = $1 AND subject_type = 1 AND subject_id = $2"
            ),
            (
                "meeting", "meetings", "NULL::smallint[]", "contact_ids",
                "SELECT x.meeting_id FROM collaboration.meeting_contacts x WHERE x.tenant_id = $1 AND x.contact_id = $2"
            ),
        ]
        for move in logged {
            // `table`, `types`, `ids` and `rows` are this function's own constants. One statement locks and logs, so no
            // row starts naming the loser between the two.
            try await c.query(
                """
                INSERT INTO collaboration.merge_moves (tenant_id, loser, winner, kind, row_id, before_types, before_ids)
                SELECT tenant_id, $2, $3, '\(move.kind)', id, \(move.types), \(move.ids) FROM collaboration.\(move.table)
                WHERE tenant_id = $1 AND id IN (\(move.rows))
                FOR UPDATE
                ON CONFLICT DO NOTHING
                """, binds)
        }
        try await moveAll(loser, into: winner, binds: binds, principal: principal, on: c)
        for move in logged where move.kind != "comment" {
            try await c.query(
                """
                UPDATE collaboration.merge_moves m SET after_types = \(move.types == "NULL::smallint[]" ? "NULL" : "r.subject_types"), after_ids = r.\(move.ids)
                FROM collaboration.\(move.table) r
                WHERE m.tenant_id = $1 AND m.loser = $2 AND m.kind = '\(move.kind)' AND m.after_ids IS NULL AND r.tenant_id = $1 AND r.id = m.row_id
                """, Array(binds.prefix(2)))
        }
    }

    /// The moves of ``merge(_:into:principal:on:)``.
    private func moveAll(_ loser: UUID, into winner: UUID, binds: [PostgresValue], principal: Principal, on c: PostgresConnection) async throws {
        let notes = try await c.query(
            """
            UPDATE collaboration.notes AS n SET (subject_types, subject_ids) = \(Self.rewrittenSubjects),
                version = version + 1, updated_at = now(), updated_by = '\(Self.feedActor)'
            WHERE n.tenant_id = $1 AND n.id IN (
                SELECT s.note_id FROM collaboration.note_subjects s WHERE s.tenant_id = $1 AND s.subject_type = 1 AND s.subject_id = $2)
            RETURNING \(Self.noteColumns)
            """, binds
        ).rows.map(Self.note)
        try await moveIndex("note_subjects", key: "note_id", binds, on: c)
        for note in notes {
            try await recordChange(
                Self.noteType, id: note.id.lowercaseText, kind: .updated, fields: ["subjects"], json: try publish.note(note), principal: principal,
                on: c)
        }
        let files = try await c.query(
            """
            UPDATE collaboration.files AS f SET (subject_types, subject_ids) = \(Self.rewrittenSubjects)
            WHERE f.tenant_id = $1 AND f.id IN (
                SELECT s.file_id FROM collaboration.file_subjects s WHERE s.tenant_id = $1 AND s.subject_type = 1 AND s.subject_id = $2)
            RETURNING \(Self.fileColumns)
            """, binds
        ).rows.map(Self.file)
        try await moveIndex("file_subjects", key: "file_id", binds, on: c)
        for file in files {
            try await recordChange(
                Self.fileType, id: file.id.lowercaseText, kind: .updated, fields: ["subjects"], json: try publish.file(file), principal: principal,
                on: c)
        }
        try await c.query(
            """
            UPDATE collaboration.comments SET subject_id = $3, version = version + 1, updated_at = now(), updated_by = '\(Self.feedActor)'
            WHERE tenant_id = $1 AND subject_type = 1 AND subject_id = $2
            """, binds)
        let meetings = try await c.query(
            """
            UPDATE collaboration.meetings AS m SET contact_ids = ARRAY(
                    SELECT x FROM unnest(array_replace(m.contact_ids, $2, $3)) WITH ORDINALITY AS u (x, ord) GROUP BY x ORDER BY min(ord)),
                version = version + 1, updated_at = now(), updated_by = '\(Self.feedActor)'
            WHERE m.tenant_id = $1 AND m.id IN (
                SELECT x.meeting_id FROM collaboration.meeting_contacts x WHERE x.tenant_id = $1 AND x.contact_id = $2)
            RETURNING \(Self.meetingColumns)
            """, binds
        ).rows.map(Self.meeting)
        try await c.query(
            """
            INSERT INTO collaboration.meeting_contacts (tenant_id, contact_id, start_at, end_at, meeting_id, occurrence)
            SELECT tenant_id, $3, start_at, end_at, meeting_id, occurrence FROM collaboration.meeting_contacts
            WHERE tenant_id = $1 AND contact_id = $2
            ON CONFLICT DO NOTHING
            """, binds)
        try await c.query("DELETE FROM collaboration.meeting_contacts WHERE tenant_id = $1 AND contact_id = $2", Array(binds.prefix(2)))
        for meeting in meetings {
            try await recordChange(
                Self.meetingType, id: meeting.id.lowercaseText, kind: .updated, fields: ["contact_ids"], json: try publish.meeting(meeting),
                principal: principal, on: c)
        }
    }

    /// A subject of a note or file as the lists hold it: its type's number and its id.
    private struct ListedSubject: Equatable {
        var type: Int
        var id: UUID
    }

    /// Reverses the logged merge of `loser` into `winner` (``MergeLog/restored(before:after:current:loser:winner:)`` for
    /// each note, file and meeting; a comment still on the winner goes back), rebuilds the subject and contact indexes
    /// of what changed, publishes each changed note, file and meeting as UPDATED, and forgets the log. A merge applied
    /// before the log existed (migration 011) has none: nothing moves back.
    func unmerge(_ loser: UUID, from winner: UUID, principal: Principal, on c: PostgresConnection) async throws {
        let tenant = PostgresValue.text(principal.actor.tenantID)
        let (l, w) = (PostgresValue.uuid(loser), PostgresValue.uuid(winner))
        let log = try await c.query(
            """
            SELECT kind, row_id, coalesce(before_types::text[], '{}') AS before_types, coalesce(before_ids::text[], '{}') AS before_ids,
                coalesce(after_types::text[], '{}') AS after_types, coalesce(after_ids::text[], '{}') AS after_ids
            FROM collaboration.merge_moves WHERE tenant_id = $1 AND loser = $2 AND winner = $3 ORDER BY kind, row_id
            """, [tenant, l, w]
        ).rows
        func subjects(_ types: [String], _ ids: [String]) -> [ListedSubject] {
            zip(types, ids).compactMap { t, i in Int(t).flatMap { type in UUID(uuidString: i).map { ListedSubject(type: type, id: $0) } } }
        }
        var notes: [UUID] = [], files: [UUID] = [], meetings: [UUID] = [], comments: [UUID] = []
        for row in log {
            let id = try row.uuid("row_id")
            let kind = try row.string("kind")
            if kind == "comment" {
                comments.append(id)
                continue
            }
            let (table, columns) =
                kind == "note"
                ? ("notes", "subject_types::text[] AS t, subject_ids::text[] AS i")
                : kind == "file"
                    ? ("files", "subject_types::text[] AS t, subject_ids::text[] AS i") : ("meetings", "'{}'::text[] AS t, contact_ids::text[] AS i")
            guard
                let current = try await c.query(
                    "SELECT \(columns) FROM collaboration.\(table) WHERE tenant_id = $1 AND id = $2 FOR UPDATE", [tenant, .uuid(id)]
                ).first
            else { continue }
            if kind == "meeting" {
                let restored = MergeLog.restored(
                    before: try row.strings("before_ids"), after: try row.strings("after_ids"), current: try current.strings("i"),
                    loser: loser.lowercaseText, winner: winner.lowercaseText)
                guard let restored else { continue }
                try await c.query(
                    """
                    UPDATE collaboration.meetings SET contact_ids = $3::text[]::uuid[], version = version + 1, updated_at = now(),
                        updated_by = '\(Self.feedActor)'
                    WHERE tenant_id = $1 AND id = $2
                    """, [tenant, .uuid(id), .array(restored.map { .text($0) }, elementType: .text)])
                meetings.append(id)
            } else {
                let restored = MergeLog.restored(
                    before: subjects(try row.strings("before_types"), try row.strings("before_ids")),
                    after: subjects(try row.strings("after_types"), try row.strings("after_ids")),
                    current: subjects(try current.strings("t"), try current.strings("i")),
                    loser: ListedSubject(type: 1, id: loser), winner: ListedSubject(type: 1, id: winner))
                guard let restored else { continue }
                try await c.query(
                    """
                    UPDATE collaboration.\(table) SET subject_types = $3::text[]::smallint[], subject_ids = $4::text[]::uuid[]
                        \(kind == "note" ? ", version = version + 1, updated_at = now(), updated_by = '\(Self.feedActor)'" : "")
                    WHERE tenant_id = $1 AND id = $2
                    """,
                    [
                        tenant, .uuid(id), .array(restored.map { .text(String($0.type)) }, elementType: .text),
                        .array(restored.map { .text($0.id.lowercaseText) }, elementType: .text),
                    ])
                if kind == "note" { notes.append(id) } else { files.append(id) }
            }
        }
        // The indexes of what changed, for the two contacts: rebuilt from the lists.
        for (table, index, key, ids) in [("notes", "note_subjects", "note_id", notes), ("files", "file_subjects", "file_id", files)]
        where !ids.isEmpty {
            let array = PostgresValue.array(ids.map { .uuid($0) }, elementType: .uuid)
            try await c.query(
                "DELETE FROM collaboration.\(index) WHERE tenant_id = $1 AND subject_type = 1 AND subject_id IN ($2, $3) AND \(key) = ANY($4::uuid[])",
                [tenant, l, w, array])
            try await c.query(
                """
                INSERT INTO collaboration.\(index) (tenant_id, subject_type, subject_id, created_at, \(key))
                SELECT r.tenant_id, 1, u.i, r.created_at, r.id FROM collaboration.\(table) r, unnest(r.subject_types, r.subject_ids) AS u (t, i)
                WHERE r.tenant_id = $1 AND r.id = ANY($4::uuid[]) AND u.t = 1 AND u.i IN ($2, $3)
                ON CONFLICT DO NOTHING
                """, [tenant, l, w, array])
        }
        if !meetings.isEmpty {
            let array = PostgresValue.array(meetings.map { .uuid($0) }, elementType: .uuid)
            // Each occurrence row of the winner is the restored contact's too where the meeting names them again.
            try await c.query(
                """
                INSERT INTO collaboration.meeting_contacts (tenant_id, contact_id, start_at, end_at, meeting_id, occurrence)
                SELECT x.tenant_id, $2, x.start_at, x.end_at, x.meeting_id, x.occurrence FROM collaboration.meeting_contacts x
                JOIN collaboration.meetings m ON m.tenant_id = x.tenant_id AND m.id = x.meeting_id
                WHERE x.tenant_id = $1 AND x.contact_id = $3 AND x.meeting_id = ANY($4::uuid[]) AND m.contact_ids @> ARRAY[$2::uuid]
                ON CONFLICT DO NOTHING
                """, [tenant, l, w, array])
            try await c.query(
                """
                DELETE FROM collaboration.meeting_contacts x USING collaboration.meetings m
                WHERE x.tenant_id = $1 AND x.contact_id = $3 AND x.meeting_id = ANY($4::uuid[]) AND m.tenant_id = $1 AND m.id = x.meeting_id
                  AND NOT m.contact_ids @> ARRAY[$3::uuid]
                """, [tenant, l, w, .array(meetings.map { .uuid($0) }, elementType: .uuid)])
        }
        if !comments.isEmpty {
            try await c.query(
                """
                UPDATE collaboration.comments SET subject_id = $2, version = version + 1, updated_at = now(), updated_by = '\(Self.feedActor)'
                WHERE tenant_id = $1 AND id = ANY($4::uuid[]) AND subject_type = 1 AND subject_id = $3
                """, [tenant, l, w, .array(comments.map { .uuid($0) }, elementType: .uuid)])
        }
        // What changed, published as it is now (ordered by id, so the feed's order is stable).
        let changed: [(type: String, ids: [UUID], select: String, field: String)] = [
            (
                Self.noteType, notes, "SELECT \(Self.noteColumns) FROM collaboration.notes n WHERE n.tenant_id = $1 AND n.id = ANY($2::uuid[])",
                "subjects"
            ),
            (
                Self.fileType, files, "SELECT \(Self.fileColumns) FROM collaboration.files f WHERE f.tenant_id = $1 AND f.id = ANY($2::uuid[])",
                "subjects"
            ),
            (
                Self.meetingType, meetings,
                "SELECT \(Self.meetingColumns) FROM collaboration.meetings m WHERE m.tenant_id = $1 AND m.id = ANY($2::uuid[])",
                "contact_ids"
            ),
        ]
        for kind in changed where !kind.ids.isEmpty {
            for row in try await c.query(kind.select + " ORDER BY 1", [tenant, .array(kind.ids.map { .uuid($0) }, elementType: .uuid)]).rows {
                let (id, json): (UUID, String)
                switch kind.type {
                case Self.noteType:
                    let note = try Self.note(row)
                    (id, json) = (note.id, try publish.note(note))
                case Self.fileType:
                    let file = try Self.file(row)
                    (id, json) = (file.id, try publish.file(file))
                default:
                    let meeting = try Self.meeting(row)
                    (id, json) = (meeting.id, try publish.meeting(meeting))
                }
                try await recordChange(kind.type, id: id.lowercaseText, kind: .updated, fields: [kind.field], json: json, principal: principal, on: c)
            }
        }
        try await c.query("DELETE FROM collaboration.merge_moves WHERE tenant_id = $1 AND loser = $2 AND winner = $3", [tenant, l, w])
    }

    /// Moves a subject index's rows from the loser ($2) to the winner ($3).
    private func moveIndex(_ table: String, key: String, _ binds: [PostgresValue], on c: PostgresConnection) async throws {
        // `table` and `key` are this file's own constants.
        try await c.query(
            """
            INSERT INTO collaboration.\(table) (tenant_id, subject_type, subject_id, created_at, \(key))
            SELECT tenant_id, 1, $3, created_at, \(key) FROM collaboration.\(table) WHERE tenant_id = $1 AND subject_type = 1 AND subject_id = $2
            ON CONFLICT DO NOTHING
            """, binds)
        try await c.query(
            "DELETE FROM collaboration.\(table) WHERE tenant_id = $1 AND subject_type = 1 AND subject_id = $2", Array(binds.prefix(2)))
    }

    /// Takes the person out of notifications: a follow-up or call notification of an interaction with them (and a
    /// follow-up still to be sent) gets the title without the interaction's subject, which may name them, and keeps
    /// only the other contacts; an alert about them no longer names them as what it is about.
    func redactNotifications(about person: UUID, tenantID: String, on c: PostgresConnection) async throws {
        let binds: [PostgresValue] = [.text(tenantID), .uuid(person)]
        try await c.query(
            """
            UPDATE collaboration.follow_ups SET title = CASE WHEN redacted_title <> '' THEN redacted_title ELSE 'Follow up' END,
                contact_ids = array_remove(contact_ids, $2), updated_at = now()
            WHERE tenant_id = $1 AND contact_ids @> ARRAY[$2::uuid]
            """, binds)
        // Run with app.erasure on: the notifications' erasure policies (migration 009) admit these reads and writes.
        try await c.query(
            """
            UPDATE collaboration.notifications SET
                title = CASE WHEN contact_ids @> ARRAY[$2::uuid] THEN coalesce(nullif(redacted_title, ''), 'Notification') ELSE title END,
                contact_ids = array_remove(contact_ids, $2),
                resource_type = CASE WHEN resource_id = $2::text THEN '' ELSE resource_type END,
                resource_id = CASE WHEN resource_id = $2::text THEN '' ELSE resource_id END
            WHERE tenant_id = $1 AND (contact_ids @> ARRAY[$2::uuid] OR (resource_type = 'switchboard.contacts.v1.Contact' AND resource_id = $2::text))
            """, binds)
    }

    /// Deletes what was only about the person (notes, files, comments on their record) and takes them out of the
    /// rest (notes and files about others too, meetings); removed items are published as DELETED with no content.
    func erase(_ person: UUID, request: String, principal: Principal, on c: PostgresConnection) async throws {
        var receipt = ErasureReceiptData(contactID: person, erasureRequestID: request)
        let binds: [PostgresValue] = [.text(principal.actor.tenantID), .uuid(person), .null]
        let only = "cardinality(subject_ids) = 1 AND subject_ids[1] = $2 AND subject_types[1] = 1"
        let deletedNotes = try await c.query(
            "DELETE FROM collaboration.notes WHERE tenant_id = $1 AND \(only) RETURNING id, version", Array(binds.prefix(2))
        ).rows
        receipt.notesDeleted = deletedNotes.count
        for row in deletedNotes {
            let stub = NoteRecord(
                id: try row.uuid("id"), data: NoteData(), authorID: "", version: try row.int("version"),
                audit: Audit(createdAt: Date(), createdBy: "", updatedAt: Date(), updatedBy: Self.feedActor, deletedAt: Date()))
            try await recordChange(
                Self.noteType, id: stub.id.lowercaseText, kind: .deleted, json: try publish.note(stub), principal: principal, on: c)
        }
        let notes = try await c.query(
            """
            UPDATE collaboration.notes AS n SET (subject_types, subject_ids) = \(Self.rewrittenSubjects),
                version = version + 1, updated_at = now(), updated_by = '\(Self.feedActor)'
            WHERE n.tenant_id = $1 AND n.id IN (
                SELECT s.note_id FROM collaboration.note_subjects s WHERE s.tenant_id = $1 AND s.subject_type = 1 AND s.subject_id = $2)
            RETURNING \(Self.noteColumns)
            """, binds
        ).rows.map(Self.note)
        receipt.notesChanged = notes.count
        for note in notes {
            try await recordChange(
                Self.noteType, id: note.id.lowercaseText, kind: .updated, fields: ["subjects"], json: try publish.note(note), principal: principal,
                on: c)
        }
        try await c.query(
            "DELETE FROM collaboration.note_subjects WHERE tenant_id = $1 AND subject_type = 1 AND subject_id = $2", Array(binds.prefix(2)))
        let deletedFiles = try await c.query(
            "DELETE FROM collaboration.files WHERE tenant_id = $1 AND \(only) RETURNING id", Array(binds.prefix(2))
        ).rows
        receipt.filesDeleted = deletedFiles.count
        for row in deletedFiles {
            let stub = FileRecord(id: try row.uuid("id"), data: FileData(), createdAt: Date(), createdBy: "")
            try await recordChange(
                Self.fileType, id: stub.id.lowercaseText, kind: .deleted, json: try publish.file(stub), principal: principal, on: c)
        }
        let files = try await c.query(
            """
            UPDATE collaboration.files AS f SET (subject_types, subject_ids) = \(Self.rewrittenSubjects)
            WHERE f.tenant_id = $1 AND f.id IN (
                SELECT s.file_id FROM collaboration.file_subjects s WHERE s.tenant_id = $1 AND s.subject_type = 1 AND s.subject_id = $2)
            RETURNING \(Self.fileColumns)
            """, binds
        ).rows.map(Self.file)
        receipt.filesChanged = files.count
        for file in files {
            try await recordChange(
                Self.fileType, id: file.id.lowercaseText, kind: .updated, fields: ["subjects"], json: try publish.file(file), principal: principal,
                on: c)
        }
        try await c.query(
            "DELETE FROM collaboration.file_subjects WHERE tenant_id = $1 AND subject_type = 1 AND subject_id = $2", Array(binds.prefix(2)))
        // Replies to the person's thread go with it (the parent's foreign key cascades).
        let deletedComments = try await c.query(
            "DELETE FROM collaboration.comments WHERE tenant_id = $1 AND subject_type = 1 AND subject_id = $2 RETURNING id", Array(binds.prefix(2))
        ).rows
        receipt.commentsDeleted = deletedComments.count
        for row in deletedComments {
            let id = try row.uuid("id")
            let stub = CommentRecord(
                id: id, thread: .subject(SubjectRef(type: .contact, id: person)), parentID: nil, body: "", authorID: "", version: 0,
                audit: Audit(createdAt: Date(), createdBy: "", updatedAt: Date(), updatedBy: Self.feedActor, deletedAt: Date()))
            try await recordChange(
                Self.commentType, id: id.lowercaseText, kind: .deleted, json: try publish.comment(stub, true), principal: principal, on: c)
        }
        // Meetings stay booked for their users; one that was only with the person loses its title and description.
        let meetings = try await c.query(
            """
            UPDATE collaboration.meetings AS m SET
                title = CASE WHEN contact_ids = ARRAY[$2::uuid] THEN 'Meeting' ELSE title END,
                description = CASE WHEN contact_ids = ARRAY[$2::uuid] THEN '' ELSE description END,
                contact_ids = array_remove(contact_ids, $2), version = version + 1, updated_at = now(), updated_by = '\(Self.feedActor)'
            WHERE tenant_id = $1 AND contact_ids @> ARRAY[$2::uuid]
            RETURNING \(Self.meetingColumns)
            """, Array(binds.prefix(2))
        ).rows.map(Self.meeting)
        try await c.query("DELETE FROM collaboration.meeting_contacts WHERE tenant_id = $1 AND contact_id = $2", Array(binds.prefix(2)))
        try await redactNotifications(about: person, tenantID: principal.actor.tenantID, on: c)
        // The merge log forgets every move that names the person.
        try await c.query(
            """
            DELETE FROM collaboration.merge_moves WHERE tenant_id = $1
              AND (loser = $2 OR winner = $2 OR before_ids @> ARRAY[$2::uuid] OR after_ids @> ARRAY[$2::uuid])
            """, Array(binds.prefix(2)))
        _ = try await FeedConsumer.forgetSetAside(
            tenantID: principal.actor.tenantID, resourceID: person.lowercaseText, schema: "collaboration", on: c)
        // What was published or stored earlier that names the person (a meeting's contact ids, a note's subjects) keeps
        // nothing of them; then the meetings' new state and the receipt are published.
        let mentioning = [person.lowercaseText]
        receipt.changesRedacted = try await ChangeFeed(schema: "collaboration").redact(
            tenantID: principal.actor.tenantID, resourceIDs: [], mentioning: mentioning, on: c)
        receipt.storedResponsesRemoved = try await Idempotency(schema: "collaboration").forget(
            tenantID: principal.actor.tenantID, mentioning: mentioning, on: c)
        receipt.meetingsChanged = meetings.count
        for meeting in meetings {
            try await recordChange(
                Self.meetingType, id: meeting.id.lowercaseText, kind: .updated, fields: ["contact_ids"], json: try publish.meeting(meeting),
                principal: principal, on: c)
        }
        try await ChangeFeed(schema: "collaboration").record(
            ChangeRecord(
                resourceType: "switchboard.collaboration.v1.ErasureReceipt", resourceID: person.lowercaseText, kind: .erased,
                resourceJSON: try publish.receipt(receipt), actorID: Self.feedActor, relatedIDs: request.isEmpty ? [] : [request]),
            tenantID: principal.actor.tenantID, on: c)
    }
}
