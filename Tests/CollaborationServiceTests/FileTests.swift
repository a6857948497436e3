import CollaborationService
import Crypto
import Foundation
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardTestSupport
import Testing

typealias FileMessage = Switchboard_Collaboration_V1_File

/// File uploads and downloads in chunks, with the declared size and SHA-256 checked before anything is stored.
@Suite("Collaboration files", .serialized)
final class FileTests {
    let harness: CollaborationHarness
    init() async throws { harness = try await CollaborationHarness.start(maxFileBytes: 8 << 20) }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// Uploads `content` in `chunkSize` pieces declaring `size` and `sha256` (the content's own by default); `failAfter`
    /// chunks the client aborts the call instead of finishing it.
    func upload(
        _ client: CollabClient, _ content: [UInt8], name: String = "report.pdf", subjects: [Subject] = [], chunkSize: Int = 100_000,
        size: Int64? = nil, sha256: String? = nil, requestID: String = "", failAfter: Int? = nil
    ) async throws -> FileMessage {
        var file = FileMessage()
        file.name = name
        file.contentType = "application/pdf"
        file.sizeBytes = size ?? Int64(content.count)
        file.sha256 = sha256 ?? Self.sha256(content)
        file.subjects = subjects
        var metadata = Switchboard_Collaboration_V1_UploadFileMetadata()
        metadata.file = file
        metadata.requestId = requestID
        return try await client.stub.uploadFile(options: client.options) { [metadata] call in
            var first = Switchboard_Collaboration_V1_UploadFileRequest()
            first.part = .metadata(metadata)
            try await call.send(first)
            var offset = 0, sent = 0
            while offset < content.count {
                if let failAfter, sent == failAfter { throw CancellationError() }
                var chunk = Switchboard_Collaboration_V1_UploadFileRequest()
                chunk.part = .chunk(Array(content[offset..<min(offset + chunkSize, content.count)]))
                // The server may answer (a refusal) before it has read everything: a send then fails, and the call's
                // own status, with its details, is what the response reports. (The transport's send error carries
                // the status code and message but not the trailers with the field violations.)
                do { try await call.send(chunk) } catch { return }
                offset += chunkSize
                sent += 1
            }
        }.message
    }

    func download(_ client: CollabClient, _ id: String) async throws -> (FileMessage?, [UInt8], Int) {
        var request = Switchboard_Collaboration_V1_DownloadFileRequest()
        request.id = id
        return try await client.stub.downloadFile(request, options: client.options) { stream in
            var file: FileMessage?
            var bytes: [UInt8] = []
            var messages = 0
            for try await message in stream {
                if let f = message.file { file = f }
                bytes += message.data
                messages += 1
            }
            return (file, bytes, messages)
        }
    }

    /// Rows of file content stored for the tenant (the service's own role, under row-level security).
    func storedChunks(_ tenantID: String) async throws -> Int64 {
        try await harness.pool.query(
            settings: ["app.tenant_id": tenantID], "SELECT count(*) AS n FROM collaboration.file_chunks", []
        ).first!.int("n")
            + harness.pool.query(settings: ["app.tenant_id": tenantID], "SELECT count(*) AS n FROM collaboration.files", [])
            .first!.int("n")
    }

    @Test("a multi-MiB file round-trips byte for byte, in bounded chunks, linked to its records")
    func roundTrip() async throws {
        let client = try await harness.client(tenant: tenant())
        var generator = SystemRandomNumberGenerator()
        let content = (0..<(5 << 20) + 12_345).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let contact = subject()
        let stored = try await upload(client, content, subjects: [contact], chunkSize: 700_001)
        #expect(stored.sizeBytes == Int64(content.count))
        #expect(stored.sha256 == Self.sha256(content))
        #expect(stored.subjects == [contact])
        let (file, bytes, messages) = try await download(client, stored.id)
        #expect(file == stored)
        #expect(bytes == content)
        // Re-cut to 256 KiB pieces whatever the client sent: 21 pieces and the metadata message.
        #expect(messages == 22)
        var get = Switchboard_Collaboration_V1_GetFileRequest()
        get.id = stored.id
        #expect(try await client.stub.getFile(get, options: client.options) == stored)
        var list = Switchboard_Collaboration_V1_ListFilesRequest()
        list.subject = contact
        #expect(try await client.stub.listFiles(list, options: client.options).files.map(\.id) == [stored.id])
        let empty = try await upload(client, [], name: "empty.txt")
        let (_, none, _) = try await download(client, empty.id)
        #expect(none.isEmpty)
    }

    @Test("a hash or size mismatch, or an interrupted upload, stores nothing")
    func mismatchStoresNothing() async throws {
        let tenantID = tenant()
        let client = try await harness.client(tenant: tenantID)
        let content = Array(repeating: UInt8(7), count: 600_000)
        let wrongHash = await rpcError { _ = try await self.upload(client, content, sha256: String(repeating: "0", count: 64)) }
        #expect(wrongHash?.code == .invalidArgument)
        #expect(fields(wrongHash) == ["metadata.file.sha256"])
        let short = await rpcError { _ = try await self.upload(client, content, size: Int64(content.count + 1)) }
        #expect(fields(short) == ["metadata.file.size_bytes"])
        let long = await rpcError { _ = try await self.upload(client, content, size: Int64(content.count - 1)) }
        #expect(fields(long) == ["metadata.file.size_bytes"])
        let interrupted = await rpcError { _ = try await self.upload(client, content, failAfter: 3) }
        #expect(interrupted != nil)
        // The server sees the reset and rolls the transaction back; nothing remains of any attempt.
        #expect(try await eventually { try await self.storedChunks(tenantID) == 0 })
        #expect(try await storedChunks(tenantID) == 0)
    }

    @Test("bounds: declared size, chunk size, metadata fields; INVALID_ARGUMENT names each")
    func bounds() async throws {
        let client = try await harness.client(tenant: tenant())
        let tooBig = await rpcError { _ = try await self.upload(client, [1], size: (8 << 20) + 1) }
        #expect(fields(tooBig) == ["metadata.file.size_bytes"])
        let bigChunk = Array(repeating: UInt8(1), count: (1 << 20) + 1)
        let chunk = await rpcError { _ = try await self.upload(client, bigChunk, chunkSize: bigChunk.count) }
        #expect(fields(chunk) == ["chunk"])
        let noName = await rpcError { _ = try await self.upload(client, [1], name: "") }
        #expect(fields(noName) == ["metadata.file.name"])
        let slash = await rpcError { _ = try await self.upload(client, [1], name: "../etc/passwd") }
        #expect(fields(slash) == ["metadata.file.name"])
        let hash = await rpcError { _ = try await self.upload(client, [1], sha256: "abc") }
        #expect(fields(hash) == ["metadata.file.sha256"])
        let subjects = await rpcError { _ = try await self.upload(client, [1], subjects: (0...16).map { _ in subject() }) }
        #expect(fields(subjects) == ["metadata.file.subjects"])
        let noMetadata = await rpcError {
            _ = try await client.stub.uploadFile(options: client.options) { call in
                var chunk = Switchboard_Collaboration_V1_UploadFileRequest()
                chunk.part = .chunk([1])
                do { try await call.send(chunk) } catch { return }
            }
        }
        #expect(fields(noMetadata) == ["metadata"])
    }

    @Test("a retried upload returns the first file; other tenants and read-only callers are refused")
    func retriesRolesIsolation() async throws {
        let tenantID = tenant()
        let client = try await harness.client(tenant: tenantID)
        let first = try await upload(client, [1, 2, 3], requestID: "u-1")
        #expect(try await upload(client, [1, 2, 3], requestID: "u-1") == first)
        #expect(try await storedChunks(tenantID) == 2)
        let reader = try await harness.client(tenant: tenantID, user: "reader", roles: [.readOnly])
        #expect(await rpcError { _ = try await self.upload(reader, [1]) }?.code == .permissionDenied)
        #expect(try await download(reader, first.id).1 == [1, 2, 3])
        let foreign = try await harness.client(tenant: tenant(), user: "boss", roles: [.admin])
        #expect(await rpcError { _ = try await self.download(foreign, first.id) }?.code == .notFound)
    }

    @Test("delete hides a file from lists and downloads; the uploader or an admin deletes and restores it")
    func deleteAndRestore() async throws {
        let tenantID = tenant()
        let uploader = try await harness.client(tenant: tenantID, user: "uploader")
        let other = try await harness.client(tenant: tenantID, user: "other")
        let admin = try await harness.client(tenant: tenantID, user: "boss", roles: [.admin])
        let contact = subject()
        let file = try await upload(uploader, [9, 9, 9], subjects: [contact])
        var delete = Switchboard_Collaboration_V1_DeleteFileRequest()
        delete.id = file.id
        #expect(await rpcError { _ = try await other.stub.deleteFile(delete, options: other.options) }?.code == .permissionDenied)
        let deleted = try await uploader.stub.deleteFile(delete, options: uploader.options)
        #expect(deleted.audit?.deleteTime != nil)
        #expect(await rpcError { _ = try await self.download(uploader, file.id) }?.code == .notFound)
        var list = Switchboard_Collaboration_V1_ListFilesRequest()
        list.subject = contact
        #expect(try await uploader.stub.listFiles(list, options: uploader.options).files.isEmpty)
        var get = Switchboard_Collaboration_V1_GetFileRequest()
        get.id = file.id
        get.includeDeleted = true
        #expect(try await other.stub.getFile(get, options: other.options).id == file.id)
        var undelete = Switchboard_Collaboration_V1_UndeleteFileRequest()
        undelete.id = file.id
        #expect(try await admin.stub.undeleteFile(undelete, options: admin.options).audit?.deleteTime == nil)
        #expect(try await download(other, file.id).1 == [9, 9, 9])
    }

    @Test("uploads at once are bounded per tenant: a second one while the first is open is RESOURCE_EXHAUSTED")
    func uploadLimit() async throws {
        // Two places in all, so one per tenant.
        let limited = try await CollaborationHarness.start(uploadStreams: 2)
        defer { Task { await limited.stop() } }
        let tenantID = tenant()
        let slow = try await limited.client(tenant: tenantID, user: "slow")
        let next = try await limited.client(tenant: tenantID, user: "next")
        let (released, release) = AsyncStream<Void>.makeStream()
        var file = FileMessage()
        file.name = "slow.bin"
        file.sizeBytes = 2
        file.sha256 = Self.sha256([1, 2])
        var metadata = Switchboard_Collaboration_V1_UploadFileMetadata()
        metadata.file = file
        let first = Task { [metadata] in
            try await slow.stub.uploadFile(options: slow.options) { call in
                var head = Switchboard_Collaboration_V1_UploadFileRequest()
                head.part = .metadata(metadata)
                try await call.send(head)
                var chunk = Switchboard_Collaboration_V1_UploadFileRequest()
                chunk.part = .chunk([1])
                try await call.send(chunk)
                for await _ in released { break }
                chunk.part = .chunk([2])
                try await call.send(chunk)
            }.message
        }
        // The first upload holds the tenant's place once its transaction waits for content (its last statement linked the
        // file's subjects); only then is the next one tried, so it cannot take the place first.
        let holding = try await eventually {
            try await limited.pool.query(
                """
                SELECT count(*) AS n FROM pg_stat_activity
                WHERE datname = current_database() AND state = 'idle in transaction'
                    AND query LIKE '%INSERT INTO collaboration.file_subjects%'
                """, []
            ).first!.int("n") == 1
        }
        #expect(holding)
        let refused = await rpcError { _ = try await self.upload(next, [7]) }
        #expect(refused?.code == .resourceExhausted)
        release.yield()
        release.finish()
        #expect(try await first.value.sizeBytes == 2)
        #expect(try await upload(next, [7]).sizeBytes == 1)
    }
}
