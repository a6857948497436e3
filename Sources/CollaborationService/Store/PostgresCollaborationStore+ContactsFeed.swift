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
            case .erased(let request): try await erase(change.contactID, request: request, principal: principal, on: c)
            }
        }
        // Later statements of the batch run without the erasure's rights.
        try await c.query("SELECT set_config('app.erasure', 'off', true)", [])
    }

    /// Re-points notes, files, comments and meetings from the loser to the winner, publishing each changed note,
    /// file and meeting as UPDATED.
    func merge(_ loser: UUID, into winner: UUID, principal: Principal, on c: PostgresConnection) async throws {
        let binds: [PostgresValue] = [.text(principal.actor.tenantID), .uuid(loser), .uuid(winner)]
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
