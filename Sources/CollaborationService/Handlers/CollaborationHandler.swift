import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

/// `switchboard.collaboration.v1.CollaborationService`: turns protobuf requests into domain calls and domain errors
/// into precise gRPC statuses. No SQL here.
public struct CollaborationHandler: Switchboard_Collaboration_V1_CollaborationService_ServiceProtocol {
    typealias Methods = Switchboard_Collaboration_V1_CollaborationService.Method
    typealias M = CollaborationMapping
    let domain: CollaborationDomain
    let changes: TenantChangeWatcher
    /// Whether the contacts a write names are live (asked of the contacts service).
    let references: ContactReferences

    /// Creates the handler.
    /// - Parameters:
    ///   - domain: the use cases.
    ///   - changes: the kit's `WatchChanges`.
    ///   - references: the check of the contacts a write names.
    public init(domain: CollaborationDomain, changes: TenantChangeWatcher, references: ContactReferences) {
        self.domain = domain
        self.changes = changes
        self.references = references
    }

    /// The contacts among `subjects` as references named `field[i]`, leaving out `known` (ones a record already names).
    static func contacts(of subjects: [SubjectRef], field: String, except known: [SubjectRef] = []) -> [ContactReference] {
        let known = Set(known)
        return subjects.enumerated().compactMap { i, subject in
            subject.type == .contact && !known.contains(subject) ? ContactReference(field: "\(field)[\(i)]", id: subject.id) : nil
        }
    }

    /// The verified caller with the roles the domain's rules ask about.
    static func principal(_ context: ServerContext) throws -> Principal {
        let caller = try context.caller()
        return Principal(actor: try context.actor(), isAdmin: caller.has(atLeast: .admin), isManager: caller.has(atLeast: .manager))
    }

    /// An idempotent write keyed by the caller's request id (the kit keeps a key per user: another user of the tenant
    /// reusing the id never gets a private note's response replayed).
    static func write<V, R: ProtoMessage>(
        _ request: some ProtoJSONMessage, _ requestID: String, _ context: ServerContext, _ method: MethodDescriptor,
        _ response: @escaping @Sendable (V) -> R
    ) throws -> IdempotentWrite<V, R> {
        try IdempotentWrite(request: request, requestID: requestID, method: method, response: response)
    }

    static func pageResponse(_ next: String) -> Switchboard_Common_V1_PageResponse {
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        return page
    }

    // MARK: Notes

    /// The `CreateNote` RPC (see `collaboration.proto`).
    public func createNote(
        request: Switchboard_Collaboration_V1_CreateNoteRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Note {
        guard let note = request.note else { throw CollaborationError.invalid("note", "is required", reason: "REQUIRED") }
        let data = try M.noteData(note)
        let write = try Self.write(request, request.requestId, context, Methods.createNote) { (r: NoteRecord) in M.proto(r) }
        if let replay = try await references.check(Self.contacts(of: data.subjects, field: "note.subjects"), for: write, context: context) {
            return replay
        }
        return try write.response(try await domain.createNote(data, principal: try Self.principal(context), write: write.options))
    }

    /// The `GetNote` RPC (see `collaboration.proto`).
    public func getNote(
        request: Switchboard_Collaboration_V1_GetNoteRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Note {
        M.proto(
            try await domain.note(
                id: try M.requiredID(request.id, field: "id"), includeDeleted: request.includeDeleted, principal: try Self.principal(context)))
    }

    /// The `UpdateNote` RPC (see `collaboration.proto`).
    public func updateNote(
        request: Switchboard_Collaboration_V1_UpdateNoteRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Note {
        guard let note = request.note else { throw CollaborationError.invalid("note", "is required", reason: "REQUIRED") }
        let id = try M.requiredID(note.id, field: "note.id")
        let source = try M.noteData(note)
        let write = try Self.write(request, request.requestId, context, Methods.updateNote) { (r: NoteRecord) in M.proto(r) }
        if request.updateMask?.paths.contains("subjects") == true, references.isEnabled, source.subjects.contains(where: { $0.type == .contact }) {
            // Only contacts the update adds must be live: one deleted since the note named it may stay named.
            // The note's own errors (not found, not the caller's to read) are the update's too.
            let named = try await domain.note(id: id, includeDeleted: false, principal: try Self.principal(context)).data.subjects
            let added = Self.contacts(of: source.subjects, field: "note.subjects", except: named)
            if let replay = try await references.check(added, for: write, context: context) { return replay }
        }
        return try write.response(
            try await domain.updateNote(
                id: id, from: source, paths: request.updateMask?.paths ?? [], etag: request.etag, principal: try Self.principal(context),
                write: write.options))
    }

    /// The `DeleteNote` RPC (see `collaboration.proto`).
    public func deleteNote(
        request: Switchboard_Collaboration_V1_DeleteNoteRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Note {
        let write = try Self.write(request, request.requestId, context, Methods.deleteNote) { (r: NoteRecord) in M.proto(r) }
        return try write.response(
            try await domain.setNoteDeleted(
                id: try M.requiredID(request.id, field: "id"), deleted: true, etag: request.etag, principal: try Self.principal(context),
                write: write.options))
    }

    /// The `UndeleteNote` RPC (see `collaboration.proto`).
    public func undeleteNote(
        request: Switchboard_Collaboration_V1_UndeleteNoteRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Note {
        let write = try Self.write(request, request.requestId, context, Methods.undeleteNote) { (r: NoteRecord) in M.proto(r) }
        return try write.response(
            try await domain.setNoteDeleted(
                id: try M.requiredID(request.id, field: "id"), deleted: false, etag: "", principal: try Self.principal(context),
                write: write.options))
    }

    /// The `ListNotes` RPC (see `collaboration.proto`).
    public func listNotes(
        request: Switchboard_Collaboration_V1_ListNotesRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_ListNotesResponse {
        let subject = try M.requiredSubject(request.subject, field: "subject")
        let (notes, next) = try await domain.listNotes(
            subject: subject, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "",
            includeDeleted: request.includeDeleted, principal: try Self.principal(context))
        var response = Switchboard_Collaboration_V1_ListNotesResponse()
        response.notes = notes.map(M.proto)
        response.page = Self.pageResponse(next)
        return response
    }

    // MARK: Comments

    /// The `CreateComment` RPC (see `collaboration.proto`).
    public func createComment(
        request: Switchboard_Collaboration_V1_CreateCommentRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Comment {
        guard let comment = request.comment else { throw CollaborationError.invalid("comment", "is required", reason: "REQUIRED") }
        let thread = try M.thread(noteID: comment.noteId, subject: comment.subject, prefix: "comment.")
        var violations: [Violation] = []
        let parent = M.optionalID(comment.parentId, field: "comment.parent_id", violations: &violations)
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        let write = try Self.write(request, request.requestId, context, Methods.createComment) { (r: CommentRecord) in M.proto(r) }
        if case .subject(let subject) = thread, subject.type == .contact {
            let named = [ContactReference(field: "comment.subject", id: subject.id)]
            if let replay = try await references.check(named, for: write, context: context) { return replay }
        }
        return try write.response(
            try await domain.createComment(
                thread: thread, parentID: parent, body: comment.body, principal: try Self.principal(context), write: write.options))
    }

    /// The `UpdateComment` RPC (see `collaboration.proto`).
    public func updateComment(
        request: Switchboard_Collaboration_V1_UpdateCommentRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Comment {
        guard let comment = request.comment else { throw CollaborationError.invalid("comment", "is required", reason: "REQUIRED") }
        let id = try M.requiredID(comment.id, field: "comment.id")
        let write = try Self.write(request, request.requestId, context, Methods.updateComment) { (r: CommentRecord) in M.proto(r) }
        return try write.response(
            try await domain.changeComment(
                id: id, body: comment.body, etag: request.etag, principal: try Self.principal(context), write: write.options))
    }

    /// The `DeleteComment` RPC (see `collaboration.proto`).
    public func deleteComment(
        request: Switchboard_Collaboration_V1_DeleteCommentRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Comment {
        let write = try Self.write(request, request.requestId, context, Methods.deleteComment) { (r: CommentRecord) in M.proto(r) }
        return try write.response(
            try await domain.changeComment(
                id: try M.requiredID(request.id, field: "id"), body: nil, etag: request.etag, principal: try Self.principal(context),
                write: write.options))
    }

    /// The `ListComments` RPC (see `collaboration.proto`).
    public func listComments(
        request: Switchboard_Collaboration_V1_ListCommentsRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_ListCommentsResponse {
        let thread = try M.thread(noteID: request.noteId, subject: request.subject, prefix: "")
        let (comments, next) = try await domain.listComments(
            thread: thread, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "",
            includeDeleted: request.includeDeleted, principal: try Self.principal(context))
        var response = Switchboard_Collaboration_V1_ListCommentsResponse()
        response.comments = comments.map(M.proto)
        response.page = Self.pageResponse(next)
        return response
    }

    // MARK: Changes and subjects

    /// The `WatchChanges` RPC (see `collaboration.proto`).
    public func watchChanges(
        request: Switchboard_Common_V1_WatchChangesRequest, responses: RPCWriter<Switchboard_Common_V1_ChangeEvent>, context: ServerContext
    ) async throws {
        try await changes.watch(request, responses: responses, context: context)
    }

    /// The `ExportSubject` RPC (see `collaboration.proto`).
    public func exportSubject(
        request: Switchboard_Collaboration_V1_ExportSubjectRequest, responses: RPCWriter<Switchboard_Collaboration_V1_SubjectRecord>,
        context: ServerContext
    ) async throws {
        let contact = try M.requiredID(request.contactId, field: "contact_id")
        try await domain.exportSubject(contact: contact, principal: try Self.principal(context)) { items in
            for item in items {
                var message = Switchboard_Collaboration_V1_SubjectRecord()
                switch item {
                case .note(let n): message.record = .note(M.proto(n))
                case .comment(let c): message.record = .comment(M.proto(c))
                case .file(let f): message.record = .file(M.proto(f))
                case .meeting(let m): message.record = .meeting(M.proto(m))
                }
                try await responses.write(message)
            }
        }
    }
}
