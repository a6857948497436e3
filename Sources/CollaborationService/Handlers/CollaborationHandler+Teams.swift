import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension CollaborationHandler {
    /// The `CreateTeam` RPC (see `collaboration.proto`).
    public func createTeam(
        request: Switchboard_Collaboration_V1_CreateTeamRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Team {
        let write = try Self.write(request, request.requestId, context, Methods.createTeam) { (r: TeamRecord) in M.proto(r) }
        return try write.response(
            try await domain.createTeam(
                name: request.team?.name ?? "", members: request.memberUserIds, principal: try Self.principal(context), write: write.options))
    }

    /// The `GetTeam` RPC (see `collaboration.proto`).
    public func getTeam(
        request: Switchboard_Collaboration_V1_GetTeamRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Team {
        M.proto(try await domain.team(id: try M.requiredID(request.id, field: "id"), principal: try Self.principal(context)))
    }

    /// The `UpdateTeam` RPC (see `collaboration.proto`).
    public func updateTeam(
        request: Switchboard_Collaboration_V1_UpdateTeamRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Team {
        guard let team = request.team else { throw CollaborationError.invalid("team", "is required", reason: "REQUIRED") }
        let id = try M.requiredID(team.id, field: "team.id")
        let write = try Self.write(request, request.requestId, context, Methods.updateTeam) { (r: TeamRecord) in M.proto(r) }
        return try write.response(
            try await domain.updateTeam(
                id: id, name: team.name, paths: request.updateMask?.paths ?? [], etag: request.etag, principal: try Self.principal(context),
                write: write.options))
    }

    /// The `ListTeams` RPC (see `collaboration.proto`).
    public func listTeams(
        request: Switchboard_Collaboration_V1_ListTeamsRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_ListTeamsResponse {
        let (teams, next) = try await domain.listTeams(
            member: request.memberUserId, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "",
            principal: try Self.principal(context))
        var response = Switchboard_Collaboration_V1_ListTeamsResponse()
        response.teams = teams.map(M.proto)
        response.page = Self.pageResponse(next)
        return response
    }

    /// The `AddTeamMembers` RPC (see `collaboration.proto`).
    public func addTeamMembers(
        request: Switchboard_Collaboration_V1_TeamMembersRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Team {
        try await changeMembers(request, adding: true, method: Methods.addTeamMembers, context: context)
    }

    /// The `RemoveTeamMembers` RPC (see `collaboration.proto`).
    public func removeTeamMembers(
        request: Switchboard_Collaboration_V1_TeamMembersRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Team {
        try await changeMembers(request, adding: false, method: Methods.removeTeamMembers, context: context)
    }

    private func changeMembers(
        _ request: Switchboard_Collaboration_V1_TeamMembersRequest, adding: Bool, method: MethodDescriptor, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Team {
        let team = try M.requiredID(request.teamId, field: "team_id")
        let write = try Self.write(request, request.requestId, context, method) { (r: TeamRecord) in M.proto(r) }
        return try write.response(
            try await domain.changeMembers(
                teamID: team, users: request.userIds, adding: adding, principal: try Self.principal(context), write: write.options))
    }

    /// The `ShareNote` RPC (see `collaboration.proto`).
    public func shareNote(
        request: Switchboard_Collaboration_V1_ShareNoteRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Grant {
        guard let grant = request.grant else { throw CollaborationError.invalid("grant", "is required", reason: "REQUIRED") }
        let note = try M.requiredID(grant.noteId, field: "grant.note_id")
        let grantee: Grantee
        switch (grant.userId.isEmpty, grant.teamId.isEmpty) {
        case (false, true): grantee = .user(grant.userId)
        case (true, false): grantee = .team(try M.requiredID(grant.teamId, field: "grant.team_id"))
        default: throw CollaborationError.invalid("grant.user_id", "name exactly one of user_id and team_id", reason: "REQUIRED")
        }
        guard let permission = Permission(rawValue: Int(grant.permission.protoValue)) else {
            throw CollaborationError.invalid("grant.permission", "must be VIEW or EDIT", reason: "REQUIRED")
        }
        let write = try Self.write(request, request.requestId, context, Methods.shareNote) { (r: GrantRecord) in M.proto(r) }
        return try write.response(
            try await domain.share(
                noteID: note, grantee: grantee, permission: permission, principal: try Self.principal(context), write: write.options))
    }

    /// The `RevokeGrant` RPC (see `collaboration.proto`).
    public func revokeGrant(
        request: Switchboard_Collaboration_V1_RevokeGrantRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_RevokeGrantResponse {
        let write = try Self.write(request, request.requestId, context, Methods.revokeGrant) { (_: GrantRecord) in
            Switchboard_Collaboration_V1_RevokeGrantResponse()
        }
        return try write.response(
            try await domain.revoke(grantID: try M.requiredID(request.id, field: "id"), principal: try Self.principal(context), write: write.options))
    }

    /// The `ListGrants` RPC (see `collaboration.proto`).
    public func listGrants(
        request: Switchboard_Collaboration_V1_ListGrantsRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_ListGrantsResponse {
        var response = Switchboard_Collaboration_V1_ListGrantsResponse()
        response.grants = try await domain.grants(
            noteID: try M.requiredID(request.noteId, field: "note_id"), principal: try Self.principal(context)
        ).map(M.proto)
        return response
    }
}
