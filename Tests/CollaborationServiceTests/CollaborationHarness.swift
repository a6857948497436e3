import CollaborationService
import Foundation
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport

typealias Note = Switchboard_Collaboration_V1_Note
typealias Comment = Switchboard_Collaboration_V1_Comment
typealias Subject = Switchboard_Collaboration_V1_Subject
typealias CollaborationStub = Switchboard_Collaboration_V1_CollaborationService_Client

/// The collaboration service in-process over real HTTP/2 on a fresh database, as the `collaboration_service` role,
/// assembled as the executable assembles it (the kit's ``ServiceHarness``).
final class CollaborationHarness: Sendable {
    let service: ServiceHarness
    var pool: PostgresPool { service.pool }
    var channel: GRPCChannel { service.channel }

    static func start(
        maxFileBytes: Int64 = 100 << 20, uploadStreams: Int = 4, contactsFeed: CollaborationService.SourceFeed? = nil,
        communicationFeed: CollaborationService.SourceFeed? = nil, analyticsFeed: CollaborationService.SourceFeed? = nil,
        reminderInterval: Duration = .seconds(1), contactsAddress: (host: String, port: Int)? = nil
    ) async throws -> CollaborationHarness {
        CollaborationHarness(
            service: try await ServiceHarness.start(
                CollaborationService.description(
                    maxFileBytes: maxFileBytes, uploadStreams: uploadStreams, contactsFeed: contactsFeed, communicationFeed: communicationFeed,
                    analyticsFeed: analyticsFeed, reminderInterval: reminderInterval, contactsAddress: contactsAddress)))
    }

    private init(service: ServiceHarness) { self.service = service }

    func stop() async { await service.stop() }

    /// A typed client calling as `user` of `tenant` with `roles`.
    func client(tenant: String, user: String = "user-1", roles: [Role] = [.user]) async throws -> CollabClient {
        CollabClient(
            stub: CollaborationStub(client: RPCClient(transport: channel)),
            options: try await service.options(tenant: tenant, user: user, roles: roles))
    }
}

/// The typed client plus the call options carrying the token.
struct CollabClient: Sendable {
    let stub: CollaborationStub
    let options: CallOptions

    func createNote(
        about subjects: [Subject], body: String = "a note", visibility: Switchboard_Collaboration_V1_Visibility = .tenant, team: String = "",
        mentions: [String] = [], requestID: String = ""
    ) async throws -> Note {
        var note = Note()
        note.subjects = subjects
        note.body = body
        note.visibility = visibility
        note.teamId = team
        note.mentionedUserIds = mentions
        var request = Switchboard_Collaboration_V1_CreateNoteRequest()
        request.note = note
        request.requestId = requestID
        return try await stub.createNote(request, options: options)
    }

    func getNote(_ id: String, includeDeleted: Bool = false) async throws -> Note {
        var request = Switchboard_Collaboration_V1_GetNoteRequest()
        request.id = id
        request.includeDeleted = includeDeleted
        return try await stub.getNote(request, options: options)
    }

    func updateNote(_ id: String, paths: [String], etag: String = "", change: (inout Note) -> Void) async throws -> Note {
        var note = Note()
        note.id = id
        change(&note)
        var request = Switchboard_Collaboration_V1_UpdateNoteRequest()
        request.note = note
        request.updateMask = Google_Protobuf_FieldMask(paths: paths)
        request.etag = etag
        return try await stub.updateNote(request, options: options)
    }

    func deleteNote(_ id: String, etag: String = "") async throws -> Note {
        var request = Switchboard_Collaboration_V1_DeleteNoteRequest()
        request.id = id
        request.etag = etag
        return try await stub.deleteNote(request, options: options)
    }

    func undeleteNote(_ id: String) async throws -> Note {
        var request = Switchboard_Collaboration_V1_UndeleteNoteRequest()
        request.id = id
        return try await stub.undeleteNote(request, options: options)
    }

    func listNotes(
        _ subject: Subject, pageSize: Int32 = 0, token: String = "", includeDeleted: Bool = false
    ) async throws
        -> Switchboard_Collaboration_V1_ListNotesResponse
    {
        var request = Switchboard_Collaboration_V1_ListNotesRequest()
        request.subject = subject
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        request.includeDeleted = includeDeleted
        return try await stub.listNotes(request, options: options)
    }

    /// The ids of every note of a subject the caller can read, following page tokens.
    func allNotes(_ subject: Subject, pageSize: Int32 = 2) async throws -> [String] {
        var ids: [String] = []
        var token = ""
        repeat {
            let page = try await listNotes(subject, pageSize: pageSize, token: token)
            ids += page.notes.map(\.id)
            token = page.page?.nextPageToken ?? ""
        } while !token.isEmpty
        return ids
    }

    func comment(note: String = "", subject: Subject? = nil, parent: String = "", body: String = "a comment") async throws -> Comment {
        var comment = Comment()
        comment.noteId = note
        comment.subject = subject
        comment.parentId = parent
        comment.body = body
        var request = Switchboard_Collaboration_V1_CreateCommentRequest()
        request.comment = comment
        return try await stub.createComment(request, options: options)
    }

    func editComment(_ id: String, body: String) async throws -> Comment {
        var comment = Comment()
        comment.id = id
        comment.body = body
        var request = Switchboard_Collaboration_V1_UpdateCommentRequest()
        request.comment = comment
        return try await stub.updateComment(request, options: options)
    }

    func deleteComment(_ id: String) async throws -> Comment {
        var request = Switchboard_Collaboration_V1_DeleteCommentRequest()
        request.id = id
        return try await stub.deleteComment(request, options: options)
    }

    func listComments(
        note: String = "", subject: Subject? = nil, pageSize: Int32 = 0, token: String = ""
    ) async throws
        -> Switchboard_Collaboration_V1_ListCommentsResponse
    {
        var request = Switchboard_Collaboration_V1_ListCommentsRequest()
        request.noteId = note
        request.subject = subject
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        return try await stub.listComments(request, options: options)
    }

    func createTeam(_ name: String, members: [String] = [], requestID: String = "") async throws -> Switchboard_Collaboration_V1_Team {
        var team = Switchboard_Collaboration_V1_Team()
        team.name = name
        var request = Switchboard_Collaboration_V1_CreateTeamRequest()
        request.team = team
        request.memberUserIds = members
        request.requestId = requestID
        return try await stub.createTeam(request, options: options)
    }

    func members(_ team: String, _ users: [String], add: Bool = true) async throws -> Switchboard_Collaboration_V1_Team {
        var request = Switchboard_Collaboration_V1_TeamMembersRequest()
        request.teamId = team
        request.userIds = users
        return add ? try await stub.addTeamMembers(request, options: options) : try await stub.removeTeamMembers(request, options: options)
    }

    func share(
        _ note: String, user: String = "", team: String = "", permission: Switchboard_Collaboration_V1_Permission = .view
    ) async throws
        -> Switchboard_Collaboration_V1_Grant
    {
        var grant = Switchboard_Collaboration_V1_Grant()
        grant.noteId = note
        grant.userId = user
        grant.teamId = team
        grant.permission = permission
        var request = Switchboard_Collaboration_V1_ShareNoteRequest()
        request.grant = grant
        return try await stub.shareNote(request, options: options)
    }

    func revoke(_ grant: String) async throws {
        var request = Switchboard_Collaboration_V1_RevokeGrantRequest()
        request.id = grant
        _ = try await stub.revokeGrant(request, options: options)
    }

    func notify(
        users: [String] = [], team: String = "", tenantWide: Bool = false, title: String = "hello", requestID: String = ""
    ) async throws
        -> Switchboard_Collaboration_V1_Notification
    {
        var notification = Switchboard_Collaboration_V1_Notification()
        notification.userIds = users
        notification.teamId = team
        notification.tenantWide = tenantWide
        notification.title = title
        var request = Switchboard_Collaboration_V1_CreateNotificationRequest()
        request.notification = notification
        request.requestId = requestID
        return try await stub.createNotification(request, options: options)
    }

    func inbox(
        unreadOnly: Bool = false, pageSize: Int32 = 0, token: String = ""
    ) async throws
        -> Switchboard_Collaboration_V1_ListNotificationsResponse
    {
        var request = Switchboard_Collaboration_V1_ListNotificationsRequest()
        request.unreadOnly = unreadOnly
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        return try await stub.listNotifications(request, options: options)
    }
}

func subject(_ type: Switchboard_Collaboration_V1_SubjectType = .contact, _ id: String = newID()) -> Subject {
    var s = Subject()
    s.type = type
    s.id = id
    return s
}

func rpcError(_ body: () async throws -> Void) async -> RPCError? {
    do {
        try await body()
        return nil
    } catch let error as RPCError {
        return error
    } catch {
        return RPCError(code: .unknown, message: "\(error)")
    }
}

func fields(_ error: RPCError?) -> Set<String> { Set(error?.fieldViolations.map(\.field) ?? []) }

func tenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

func newID() -> String { UUID().uuidString.lowercased() }
