import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardServiceKit

extension CollaborationDomain {
    /// Creates a team with its first members.
    public func createTeam(
        name: String, members: [String], principal: Principal, write: WriteOptions<TeamRecord>
    ) async throws
        -> WriteOutcome<TeamRecord>
    {
        if let replay = try await replayed(write, principal) { return replay }
        var violations: [Violation] = []
        let name = String(name.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
        CollaborationRules.checkText(name, max: TeamRules.maxNameBytes, required: true, field: "team.name", into: &violations)
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        let members = try TeamRules.checkUsers(members, field: "member_user_ids", allowEmpty: true)
        return try await store.insertTeam(name: name, members: members, principal: principal, write: write)
    }

    /// Renames a team (the only field UpdateTeam changes).
    public func updateTeam(
        id: UUID, name: String, paths: [String], etag: String, principal: Principal, write: WriteOptions<TeamRecord>
    )
        async throws -> WriteOutcome<TeamRecord>
    {
        if let replay = try await replayed(write, principal) { return replay }
        try CollaborationRules.checkETag(etag)
        guard !paths.isEmpty else { throw CollaborationError.invalid("update_mask", "names no field", reason: "REQUIRED") }
        if let other = paths.first(where: { $0 != "name" }) {
            throw CollaborationError.invalid("update_mask", "\(CustomFieldRules.excerpt(other)) is not name (the only field UpdateTeam changes)")
        }
        var violations: [Violation] = []
        let name = String(name.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
        CollaborationRules.checkText(name, max: TeamRules.maxNameBytes, required: true, field: "team.name", into: &violations)
        if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        let current = try await team(id: id, principal: principal)
        if !etag.isEmpty, etag != current.etag { throw CollaborationError.etagMismatch(current: current.etag) }
        return try await store.renameTeam(id: id, name: name, expectedVersion: current.version, principal: principal, write: write)
    }

    /// A team of the tenant.
    public func team(id: UUID, principal: Principal) async throws -> TeamRecord {
        guard let team = try await store.fetchTeam(id: id, principal: principal) else {
            throw CollaborationError.notFound(kind: "team", id: id.lowercaseText)
        }
        return team
    }

    /// A page of teams in name order, and the next page's token.
    public func listTeams(member: String, pageSize: Int, pageToken: String, principal: Principal) async throws -> ([TeamRecord], String) {
        let limit = try CollaborationRules.pageLimit(pageSize)
        if !member.isEmpty {
            var violations: [Violation] = []
            CollaborationRules.checkUserID(member, field: "member_user_id", into: &violations)
            if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        }
        let fingerprint = PageToken.fingerprint(["teams", member])
        var after: (name: String, id: UUID)?
        if let parts = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 2) {
            guard let id = UUID(text: parts[1]), parts[0].utf8.count <= TeamRules.maxNameBytes * 2 else {
                throw CollaborationError.invalid("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")
            }
            after = (parts[0], id)
        }
        let rows = try await store.listTeams(member: member.isEmpty ? nil : member, after: after, limit: limit, principal: principal)
        let next =
            rows.more
            ? rows.records.last.map {
                PageToken(cursor: [$0.name.lowercased(), $0.id.lowercaseText], fingerprint: fingerprint).encoded
            } ?? "" : ""
        return (rows.records, next)
    }

    /// Adds or removes members.
    public func changeMembers(
        teamID: UUID, users: [String], adding: Bool, principal: Principal, write: WriteOptions<TeamRecord>
    )
        async throws -> WriteOutcome<TeamRecord>
    {
        if let replay = try await replayed(write, principal) { return replay }
        let users = try TeamRules.checkUsers(users, field: "user_ids", allowEmpty: false)
        return try await store.changeMembers(
            teamID: teamID, add: adding ? users : [], remove: adding ? [] : users, principal: principal, write: write)
    }

    /// Shares a note (its author or an admin).
    public func share(
        noteID: UUID, grantee: Grantee, permission: Permission, principal: Principal, write: WriteOptions<GrantRecord>
    ) async throws -> WriteOutcome<GrantRecord> {
        if let replay = try await replayed(write, principal) { return replay }
        if case .user(let user) = grantee {
            var violations: [Violation] = []
            CollaborationRules.checkUserID(user, field: "grant.user_id", into: &violations)
            if !violations.isEmpty { throw CollaborationError.invalid(violations) }
        }
        let note = try await note(id: noteID, includeDeleted: false, principal: principal)
        guard note.authorID == principal.userID || principal.isAdmin else {
            throw CollaborationError.forbidden("only the note's author or an admin may share it")
        }
        if case .team(let team) = grantee { _ = try await self.team(id: team, principal: principal) }
        return try await store.upsertGrant(noteID: noteID, grantee: grantee, permission: permission, principal: principal, write: write)
    }

    /// Revokes a grant (the note's author or an admin).
    public func revoke(grantID: UUID, principal: Principal, write: WriteOptions<GrantRecord>) async throws -> WriteOutcome<GrantRecord> {
        if let replay = try await replayed(write, principal) { return replay }
        return try await store.deleteGrant(id: grantID, principal: principal, write: write)
    }

    /// The grants of a note the principal may read.
    public func grants(noteID: UUID, principal: Principal) async throws -> [GrantRecord] {
        _ = try await note(id: noteID, includeDeleted: true, principal: principal)
        return try await store.listGrants(noteID: noteID, principal: principal)
    }
}
