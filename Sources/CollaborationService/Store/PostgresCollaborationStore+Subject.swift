import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresCollaborationStore {
    /// Rows one export batch reads.
    static let exportBatch = 200

    /// The protocol requirement `exportSubject` (documented on the protocol).
    public func exportSubject(contact: UUID, principal: Principal, deliver: ([SubjectItem]) async throws -> Void) async throws {
        let tenant = PostgresValue.text(principal.actor.tenantID)
        let contactType = PostgresValue.int(Int64(SubjectType.contact.rawValue))
        // Each kind in keyset batches (time, id), so memory stays flat however much is held about the person.
        var cursor: TimeCursor?
        repeat {
            var binds = Binds(values: [tenant, contactType, .uuid(contact)])
            let after = cursor.map { "AND (s.created_at, s.note_id) > (\(Self.cursorTime($0.micros, &binds)), \(binds.add(.uuid($0.id))))" } ?? ""
            let rows = try await read(
                principal,
                """
                SELECT \(Self.noteColumns) FROM collaboration.note_subjects s
                JOIN collaboration.notes n ON n.tenant_id = s.tenant_id AND n.id = s.note_id
                WHERE s.tenant_id = $1 AND s.subject_type = $2 AND s.subject_id = $3 \(after)
                ORDER BY s.created_at, s.note_id LIMIT \(Self.exportBatch)
                """, binds.values
            ).map(Self.note)
            if !rows.isEmpty { try await deliver(rows.map { .note($0) }) }
            cursor = rows.count == Self.exportBatch ? rows.last.map { TimeCursor(micros: $0.sortMicros, id: $0.id) } : nil
        } while cursor != nil
        repeat {
            var binds = Binds(values: [tenant, contactType, .uuid(contact)])
            let after = cursor.map { "AND (c.created_at, c.id) > (\(Self.cursorTime($0.micros, &binds)), \(binds.add(.uuid($0.id))))" } ?? ""
            let rows = try await read(
                principal,
                """
                SELECT \(Self.commentColumns) FROM collaboration.comments c
                WHERE c.tenant_id = $1 AND ((c.subject_type = $2 AND c.subject_id = $3) OR c.note_id IN (
                    SELECT s.note_id FROM collaboration.note_subjects s WHERE s.tenant_id = $1 AND s.subject_type = $2 AND s.subject_id = $3))
                    \(after)
                ORDER BY c.created_at, c.id LIMIT \(Self.exportBatch)
                """, binds.values
            ).map(Self.comment)
            if !rows.isEmpty { try await deliver(rows.map { .comment($0) }) }
            cursor = rows.count == Self.exportBatch ? rows.last.map { TimeCursor(micros: $0.sortMicros, id: $0.id) } : nil
        } while cursor != nil
        repeat {
            var binds = Binds(values: [tenant, contactType, .uuid(contact)])
            let after = cursor.map { "AND (s.created_at, s.file_id) > (\(Self.cursorTime($0.micros, &binds)), \(binds.add(.uuid($0.id))))" } ?? ""
            let rows = try await read(
                principal,
                """
                SELECT \(Self.fileColumns) FROM collaboration.file_subjects s
                JOIN collaboration.files f ON f.tenant_id = s.tenant_id AND f.id = s.file_id
                WHERE s.tenant_id = $1 AND s.subject_type = $2 AND s.subject_id = $3 \(after)
                ORDER BY s.created_at, s.file_id LIMIT \(Self.exportBatch)
                """, binds.values
            ).map(Self.file)
            if !rows.isEmpty { try await deliver(rows.map { .file($0) }) }
            cursor = rows.count == Self.exportBatch ? rows.last.map { TimeCursor(micros: $0.sortMicros, id: $0.id) } : nil
        } while cursor != nil
        repeat {
            var binds = Binds(values: [tenant, .uuid(contact)])
            let after = cursor.map { "AND (x.start_at, x.meeting_id) > (\(Self.cursorTime($0.micros, &binds)), \(binds.add(.uuid($0.id))))" } ?? ""
            let rows = try await read(
                principal,
                """
                SELECT \(Self.meetingColumns) FROM collaboration.meeting_contacts x
                JOIN collaboration.meetings m ON m.tenant_id = x.tenant_id AND m.id = x.meeting_id
                WHERE x.tenant_id = $1 AND x.contact_id = $2 AND x.occurrence = 0 \(after)
                ORDER BY x.start_at, x.meeting_id LIMIT \(Self.exportBatch)
                """, binds.values
            ).map(Self.meeting)
            if !rows.isEmpty { try await deliver(rows.map { .meeting($0) }) }
            cursor = rows.count == Self.exportBatch ? rows.last.map { TimeCursor(micros: $0.sortMicros, id: $0.id) } : nil
        } while cursor != nil
    }
}
