import Crypto
import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardServiceKit

extension CollaborationDomain {
    /// Stores an upload: checks the metadata, then writes the content in fixed-size chunks inside one transaction
    /// while hashing and counting it; a content that exceeds or falls short of the declared size, or hashes to
    /// another SHA-256, throws before the commit, so nothing is stored. An interrupted upload (the client stream
    /// ends with an error) is rolled back the same way.
    /// - Parameters:
    ///   - data: the declared metadata.
    ///   - nextChunk: the content as the client sends it, one chunk (at most ``FileRules/maxChunkBytes``) per call, nil
    ///     at its end.
    /// - Throws: ``CollaborationError/invalid(_:)`` naming the metadata field, `chunk` or the size/hash mismatch.
    public func upload(
        _ data: FileData, principal: Principal, write: WriteOptions<FileRecord>, nextChunk: () async throws -> [UInt8]?
    ) async throws -> WriteOutcome<FileRecord> {
        if let replay = try await replayed(write, principal) { return replay }
        var data = data
        let violations = FileRules.check(&data, maxFileBytes: maxFileBytes)
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        let declared = data
        return try await uploads.run(tenant: principal.actor.tenantID) {
            try await store.insertFile(declared, principal: principal, write: write) { writeChunk in
                var hasher = SHA256()
                var total: Int64 = 0
                var pending: [UInt8] = []
                pending.reserveCapacity(FileRules.storedChunkBytes)
                while let chunk = try await nextChunk() {
                    guard !chunk.isEmpty, chunk.count <= FileRules.maxChunkBytes else {
                        throw CollaborationError.invalid("chunk", "must be 1 to \(FileRules.maxChunkBytes) bytes", reason: "INVALID_SIZE")
                    }
                    total += Int64(chunk.count)
                    // Checked as the content arrives, so an oversized upload stops at the limit, not at its end.
                    guard total <= declared.sizeBytes else {
                        throw CollaborationError.invalid(
                            "metadata.file.size_bytes", "the content is longer than the declared \(declared.sizeBytes) bytes; nothing was stored",
                            reason: "SIZE_MISMATCH")
                    }
                    hasher.update(data: chunk)
                    var rest = chunk[...]
                    while !rest.isEmpty {
                        let take = min(FileRules.storedChunkBytes - pending.count, rest.count)
                        pending += rest.prefix(take)
                        rest = rest.dropFirst(take)
                        if pending.count == FileRules.storedChunkBytes {
                            try await writeChunk(pending)
                            pending.removeAll(keepingCapacity: true)
                        }
                    }
                }
                if !pending.isEmpty { try await writeChunk(pending) }
                guard total == declared.sizeBytes else {
                    throw CollaborationError.invalid(
                        "metadata.file.size_bytes", "the content is \(total) bytes, not the declared \(declared.sizeBytes); nothing was stored",
                        reason: "SIZE_MISMATCH")
                }
                let digest = hasher.finalize().map { byte in
                    let hex = Array("0123456789abcdef".utf8)
                    return String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]], as: UTF8.self)
                }.joined()
                guard digest == declared.sha256 else {
                    throw CollaborationError.invalid(
                        "metadata.file.sha256", "the content's SHA-256 is \(digest), not the declared one; nothing was stored",
                        reason: "HASH_MISMATCH")
                }
            }
        }
    }

    /// A file's metadata (a deleted one only with `includeDeleted`).
    public func file(id: UUID, includeDeleted: Bool = false, principal: Principal) async throws -> FileRecord {
        guard let file = try await store.fetchFile(id: id, principal: principal), includeDeleted || file.deletedAt == nil else {
            throw CollaborationError.notFound(kind: "file", id: id.lowercaseText)
        }
        return file
    }

    /// Soft-deletes or restores a file: its uploader or an admin.
    public func setFileDeleted(
        id: UUID, deleted: Bool, principal: Principal, write: WriteOptions<FileRecord>
    ) async throws
        -> WriteOutcome<FileRecord>
    {
        if let replay = try await replayed(write, principal) { return replay }
        let current = try await file(id: id, includeDeleted: true, principal: principal)
        guard current.createdBy == principal.userID || principal.isAdmin else {
            throw CollaborationError.forbidden("only the file's uploader or an admin may delete or restore it")
        }
        if (current.deletedAt != nil) == deleted { return .fresh(current) }
        return try await store.setFileDeleted(id: id, deleted: deleted, principal: principal, write: write)
    }

    /// Streams a file: its metadata, then its stored chunks one at a time (one row in memory at a time).
    public func download(
        id: UUID, principal: Principal, metadata: (FileRecord) async throws -> Void, chunk: ([UInt8]) async throws -> Void
    ) async throws {
        let record = try await file(id: id, principal: principal)
        try await metadata(record)
        var index = 0
        var sent: Int64 = 0
        while let data = try await store.fileChunk(id: id, index: index, principal: principal) {
            try await chunk(data)
            sent += Int64(data.count)
            index += 1
        }
        // The chunks are read one statement at a time: a file erased or purged meanwhile ends early, and a client must
        // not take a short file for the whole one.
        guard sent == record.data.sizeBytes else {
            throw CollaborationError.notFound(kind: "file", id: id.lowercaseText)
        }
    }

    /// A page of a subject's files, newest first, and the next page's token.
    public func listFiles(subject: SubjectRef, pageSize: Int, pageToken: String, principal: Principal) async throws -> ([FileRecord], String) {
        let limit = try CollaborationRules.pageLimit(pageSize)
        let fingerprint = ["files", String(subject.type.rawValue), subject.id.lowercaseText]
        let after = try TimeCursor.resume(pageToken, fingerprint: fingerprint)
        let rows = try await store.listFiles(subject: subject, after: after, limit: limit, principal: principal)
        let next = rows.more ? rows.records.last.map { TimeCursor(micros: $0.sortMicros, id: $0.id).token(fingerprint: fingerprint) } ?? "" : ""
        return (rows.records, next)
    }
}

extension CollaborationDomain {
    /// Streams everything held about a contact (an admin's GDPR access request).
    public func exportSubject(contact: UUID, principal: Principal, deliver: ([SubjectItem]) async throws -> Void) async throws {
        try await store.exportSubject(contact: contact, principal: principal, deliver: deliver)
    }
}
