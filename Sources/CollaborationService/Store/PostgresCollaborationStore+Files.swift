import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresCollaborationStore {
    static let fileColumns = """
        f.id, f.name, f.content_type, f.size_bytes, f.sha256, f.subject_types::text[] AS subject_types, f.subject_ids::text[] AS subject_ids, \
        f.created_at, f.created_by, f.deleted_at, (extract(epoch FROM f.created_at) * 1000000)::int8 AS sort_micros
        """

    static func file(_ row: PostgresRow) throws -> FileRecord {
        var data = FileData()
        data.name = try row.string("name")
        data.contentType = try row.string("content_type")
        data.sizeBytes = try row.int("size_bytes")
        data.sha256 = try row.string("sha256")
        data.subjects = try subjects(row, types: "subject_types", ids: "subject_ids")
        var record = FileRecord(id: try row.uuid("id"), data: data, createdAt: try row.date("created_at"), createdBy: try row.string("created_by"))
        record.sortMicros = try row.int("sort_micros")
        record.deletedAt = try row.optionalDate("deleted_at")
        return record
    }

    /// How long an upload may wait for its client's next chunk (30 s).
    static let uploadIdleMilliseconds = 30_000

    /// The protocol requirement `insertFile` (documented on the protocol).
    public func insertFile(
        _ data: FileData, principal: Principal, write: WriteOptions<FileRecord>, content: (ChunkWriter) async throws -> Void
    ) async throws -> WriteOutcome<FileRecord> {
        try await self.write(write, principal) { c in
            // The transaction waits for the client between chunks: a client that stops sending must not hold it (and an
            // upload slot) for ever. PostgreSQL ends a session idle in its transaction this long; the upload then fails
            // and stores nothing.
            try await c.query(
                "SELECT set_config('idle_in_transaction_session_timeout', $1, true) AS timeout", [.text(String(Self.uploadIdleMilliseconds))])
            let tenant = PostgresValue.text(principal.actor.tenantID)
            let (types, ids) = Self.subjectBinds(data.subjects)
            let row = try await c.query(
                """
                INSERT INTO collaboration.files AS f (tenant_id, id, name, content_type, size_bytes, sha256, subject_types, subject_ids, created_at,
                    created_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7::int8[]::smallint[], $8, now(), $9)
                RETURNING \(Self.fileColumns)
                """,
                [
                    tenant, .uuid(UUID.random()), .text(data.name), .text(data.contentType), .int(data.sizeBytes), .text(data.sha256), types, ids,
                    .text(principal.userID),
                ]
            ).first!
            let file = try Self.file(row)
            try await c.query(
                """
                INSERT INTO collaboration.file_subjects (tenant_id, subject_type, subject_id, created_at, file_id)
                SELECT $1, u.t, u.s, f.created_at, f.id FROM unnest($2::int8[], $3::uuid[]) AS u(t, s), collaboration.files f
                WHERE f.tenant_id = $1 AND f.id = $4
                """, [tenant, types, ids, .uuid(file.id)])
            var index: Int64 = 0
            let writer: ChunkWriter = { bytes in
                try await c.query(
                    "INSERT INTO collaboration.file_chunks (tenant_id, file_id, index, data) VALUES ($1, $2, $3, $4)",
                    [tenant, .uuid(file.id), .int(index), .bytes(bytes)])
                index += 1
            }
            try await content(writer)
            try await recordChange(
                Self.fileType, id: file.id.lowercaseText, kind: .created, json: try publish.file(file), principal: principal, on: c)
            return file
        }
    }

    /// The protocol requirement `fetchFile` (documented on the protocol).
    public func fetchFile(id: UUID, principal: Principal) async throws -> FileRecord? {
        try await read(
            principal, "SELECT \(Self.fileColumns) FROM collaboration.files f WHERE f.tenant_id = $1 AND f.id = $2",
            [.text(principal.actor.tenantID), .uuid(id)]
        ).first.map(Self.file)
    }

    /// A file read on a write's own connection.
    func fetchFile(id: UUID, principal: Principal, on c: PostgresConnection) async throws -> FileRecord? {
        try await c.query(
            "SELECT \(Self.fileColumns) FROM collaboration.files f WHERE f.tenant_id = $1 AND f.id = $2",
            [.text(principal.actor.tenantID), .uuid(id)]
        ).first.map(Self.file)
    }

    /// The protocol requirement `setFileDeleted` (documented on the protocol).
    public func setFileDeleted(
        id: UUID, deleted: Bool, principal: Principal, write: WriteOptions<FileRecord>
    ) async throws
        -> WriteOutcome<FileRecord>
    {
        try await self.write(write, principal) { c in
            guard
                let row = try await c.query(
                    """
                    UPDATE collaboration.files AS f SET deleted_at = CASE WHEN $3 THEN now() END
                    WHERE tenant_id = $1 AND id = $2 AND (deleted_at IS NOT NULL) <> $3
                    RETURNING \(Self.fileColumns)
                    """, [.text(principal.actor.tenantID), .uuid(id), .bool(deleted)]
                ).first
            else {
                // Already in the asked state (a concurrent call won): answer with the file as it is.
                guard let current = try await fetchFile(id: id, principal: principal, on: c) else {
                    throw CollaborationError.notFound(kind: "file", id: id.lowercaseText)
                }
                return current
            }
            let file = try Self.file(row)
            try await recordChange(
                Self.fileType, id: id.lowercaseText, kind: deleted ? .deleted : .undeleted, json: try publish.file(file), principal: principal, on: c)
            return file
        }
    }

    /// The protocol requirement `fileChunk` (documented on the protocol).
    public func fileChunk(id: UUID, index: Int, principal: Principal) async throws -> [UInt8]? {
        try await read(
            principal, "SELECT data FROM collaboration.file_chunks WHERE tenant_id = $1 AND file_id = $2 AND index = $3",
            [.text(principal.actor.tenantID), .uuid(id), .int(Int64(index))]
        ).first.map { try $0.bytes("data") }
    }

    /// The protocol requirement `listFiles` (documented on the protocol).
    public func listFiles(subject: SubjectRef, after: TimeCursor?, limit: Int, principal: Principal) async throws -> Rows<FileRecord> {
        var binds = Binds(values: [.text(principal.actor.tenantID), .int(Int64(subject.type.rawValue)), .uuid(subject.id)])
        var conditions = ["s.tenant_id = $1", "s.subject_type = $2", "s.subject_id = $3", "f.deleted_at IS NULL"]
        if let after {
            conditions.append("(s.created_at, s.file_id) < (\(Self.cursorTime(after.micros, &binds)), \(binds.add(.uuid(after.id))))")
        }
        let limitPlaceholder = binds.add(.int(Int64(limit + 1)))
        // Only fixed text and placeholders are spliced.
        let rows = try await read(
            principal,
            """
            SELECT \(Self.fileColumns) FROM collaboration.file_subjects s
            JOIN collaboration.files f ON f.tenant_id = s.tenant_id AND f.id = s.file_id
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY s.created_at DESC, s.file_id DESC LIMIT \(limitPlaceholder)
            """, binds.values)
        return Self.page(try rows.map(Self.file), limit: limit)
    }
}
