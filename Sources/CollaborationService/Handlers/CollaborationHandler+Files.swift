import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension CollaborationHandler {
    /// The `UploadFile` RPC (see `collaboration.proto`): the first message is the metadata, every later one a chunk.
    public func uploadFile(
        requests: RPCAsyncSequence<Switchboard_Collaboration_V1_UploadFileRequest>, context: ServerContext
    ) async throws
        -> Switchboard_Collaboration_V1_File
    {
        var iterator = requests.makeAsyncIterator()
        guard case .metadata(let metadata)? = try await iterator.next()?.part else {
            throw CollaborationError.invalid("metadata", "the first message must carry the metadata", reason: "REQUIRED")
        }
        guard let file = metadata.file else { throw CollaborationError.invalid("metadata.file", "is required", reason: "REQUIRED") }
        let data = try M.fileData(file)
        let write = try Self.write(metadata, metadata.requestId, context, Methods.uploadFile) { (r: FileRecord) in M.proto(r) }
        if let replay = try await references.check(Self.contacts(of: data.subjects, field: "metadata.file.subjects"), for: write, context: context) {
            return replay
        }
        return try write.response(
            try await domain.upload(data, principal: try Self.principal(context), write: write.options) {
                guard let message = try await iterator.next() else { return nil }
                guard case .chunk(let bytes)? = message.part else {
                    throw CollaborationError.invalid("chunk", "every message after the first must carry a chunk", reason: "REQUIRED")
                }
                return bytes
            })
    }

    /// The `DownloadFile` RPC (see `collaboration.proto`).
    public func downloadFile(
        request: Switchboard_Collaboration_V1_DownloadFileRequest, responses: RPCWriter<Switchboard_Collaboration_V1_FileChunk>,
        context: ServerContext
    ) async throws {
        try await domain.download(
            id: try M.requiredID(request.id, field: "id"), principal: try Self.principal(context),
            metadata: { record in
                var message = Switchboard_Collaboration_V1_FileChunk()
                message.file = M.proto(record)
                try await responses.write(message)
            },
            chunk: { data in
                var message = Switchboard_Collaboration_V1_FileChunk()
                message.data = data
                try await responses.write(message)
            })
    }

    /// The `GetFile` RPC (see `collaboration.proto`).
    public func getFile(
        request: Switchboard_Collaboration_V1_GetFileRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_File {
        M.proto(
            try await domain.file(
                id: try M.requiredID(request.id, field: "id"), includeDeleted: request.includeDeleted, principal: try Self.principal(context)))
    }

    /// The `DeleteFile` RPC (see `collaboration.proto`).
    public func deleteFile(
        request: Switchboard_Collaboration_V1_DeleteFileRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_File {
        let write = try Self.write(request, request.requestId, context, Methods.deleteFile) { (r: FileRecord) in M.proto(r) }
        return try write.response(
            try await domain.setFileDeleted(
                id: try M.requiredID(request.id, field: "id"), deleted: true, principal: try Self.principal(context), write: write.options))
    }

    /// The `UndeleteFile` RPC (see `collaboration.proto`).
    public func undeleteFile(
        request: Switchboard_Collaboration_V1_UndeleteFileRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_File {
        let write = try Self.write(request, request.requestId, context, Methods.undeleteFile) { (r: FileRecord) in M.proto(r) }
        return try write.response(
            try await domain.setFileDeleted(
                id: try M.requiredID(request.id, field: "id"), deleted: false, principal: try Self.principal(context), write: write.options))
    }

    /// The `ListFiles` RPC (see `collaboration.proto`).
    public func listFiles(
        request: Switchboard_Collaboration_V1_ListFilesRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_ListFilesResponse {
        let subject = try M.requiredSubject(request.subject, field: "subject")
        let (files, next) = try await domain.listFiles(
            subject: subject, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "",
            principal: try Self.principal(context))
        var response = Switchboard_Collaboration_V1_ListFilesResponse()
        response.files = files.map(M.proto)
        response.page = Self.pageResponse(next)
        return response
    }
}
