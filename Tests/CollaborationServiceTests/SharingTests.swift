import CollaborationService
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardTestSupport
import Testing

/// Teams, grants and what each principal may read and change, enforced by row-level security.
@Suite("Collaboration sharing", .serialized)
final class SharingTests {
    let harness: CollaborationHarness
    init() async throws { harness = try await CollaborationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    /// The principals of one tenant (and one other tenant's admin).
    struct Principals {
        let author, member, grantee, teamGrantee, other, admin, foreignAdmin: CollabClient
        var all: [(String, CollabClient)] {
            [
                ("author", author), ("member", member), ("grantee", grantee), ("teamGrantee", teamGrantee), ("other", other), ("admin", admin),
                ("foreignAdmin", foreignAdmin),
            ]
        }
    }

    func principals(_ tenantID: String) async throws -> Principals {
        Principals(
            author: try await harness.client(tenant: tenantID, user: "author"),
            member: try await harness.client(tenant: tenantID, user: "member"),
            grantee: try await harness.client(tenant: tenantID, user: "grantee"),
            teamGrantee: try await harness.client(tenant: tenantID, user: "team-grantee"),
            other: try await harness.client(tenant: tenantID, user: "other"),
            admin: try await harness.client(tenant: tenantID, user: "boss", roles: [.admin]),
            foreignAdmin: try await harness.client(tenant: tenant(), user: "boss", roles: [.admin]))
    }

    @Test("who reads PRIVATE, TEAM and TENANT notes, with and without grants")
    func visibilityPerPrincipal() async throws {
        let tenantID = tenant()
        let p = try await principals(tenantID)
        let manager = try await harness.client(tenant: tenantID, user: "manager", roles: [.manager])
        let team = try await manager.createTeam("Sales", members: ["author", "member"])
        let reviewers = try await manager.createTeam("Reviewers", members: ["team-grantee"])
        let contact = subject()
        let privateNote = try await p.author.createNote(about: [contact], body: "mine", visibility: .private)
        let teamNote = try await p.author.createNote(about: [contact], body: "ours", visibility: .team, team: team.id)
        let tenantNote = try await p.author.createNote(about: [contact], body: "everyone's", visibility: .tenant)
        let sharedNote = try await p.author.createNote(about: [contact], body: "shared", visibility: .private)
        _ = try await p.author.share(sharedNote.id, user: "grantee")
        _ = try await p.author.share(sharedNote.id, team: reviewers.id)

        let expected: [String: Set<String>] = [
            "author": [privateNote.id, teamNote.id, tenantNote.id, sharedNote.id],
            "member": [teamNote.id, tenantNote.id],
            "grantee": [tenantNote.id, sharedNote.id],
            "teamGrantee": [tenantNote.id, sharedNote.id],
            "other": [tenantNote.id],
            "admin": [privateNote.id, teamNote.id, tenantNote.id, sharedNote.id],
            "foreignAdmin": [],
        ]
        for (name, client) in p.all {
            #expect(Set(try await client.allNotes(contact)) == expected[name], "\(name) lists")
            for note in [privateNote, teamNote, tenantNote, sharedNote] {
                let readable = await rpcError { _ = try await client.getNote(note.id) } == nil
                #expect(readable == expected[name]!.contains(note.id), "\(name) reads \(note.body)")
            }
        }
        // Leaving the team takes the team note away.
        _ = try await manager.members(team.id, ["member"], add: false)
        #expect(Set(try await p.member.allNotes(contact)) == [tenantNote.id])
    }

    @Test("the database itself refuses rows: a query with no WHERE on visibility sees only what the user may")
    func enforcedInDatabase() async throws {
        let tenantID = tenant()
        let author = try await harness.client(tenant: tenantID, user: "author")
        _ = try await author.createNote(about: [subject()], body: "private", visibility: .private)
        _ = try await author.createNote(about: [subject()], body: "public", visibility: .tenant)
        func count(user: String, admin: Bool = false) async throws -> Int64 {
            try await harness.pool.query(
                settings: ["app.tenant_id": tenantID, "app.user_id": user, "app.user_admin": admin ? "on" : "off"],
                "SELECT count(*) AS n FROM collaboration.notes", []
            ).first!.int("n")
        }
        #expect(try await count(user: "author") == 2)
        #expect(try await count(user: "someone") == 1)
        #expect(try await count(user: "someone", admin: true) == 2)
        let noUser = try await harness.pool.query(settings: ["app.tenant_id": tenantID], "SELECT count(*) AS n FROM collaboration.notes", [])
        #expect(try noUser.first!.int("n") == 1)
        // Another user cannot write a note in the author's name, whatever SQL is sent.
        let forged = await rpcError {
            _ = try await self.harness.pool.query(
                settings: ["app.tenant_id": tenantID, "app.user_id": "intruder"],
                """
                INSERT INTO collaboration.notes (tenant_id, id, body, subject_types, subject_ids, visibility, author_id, created_at, created_by,
                    updated_at, updated_by)
                VALUES ($1, gen_random_uuid(), 'x', '{1}', ARRAY[gen_random_uuid()], 3, 'author', now(), 'author', now(), 'author')
                """, [.text(tenantID)])
        }
        #expect(forged != nil)
    }

    @Test("who may change a note: author, admin, EDIT grantees; VIEW grantees and team members may not")
    func editRights() async throws {
        let tenantID = tenant()
        let p = try await principals(tenantID)
        let manager = try await harness.client(tenant: tenantID, user: "manager", roles: [.manager])
        let team = try await manager.createTeam("Sales", members: ["member"])
        let note = try await p.author.createNote(about: [subject()], visibility: .team, team: team.id)
        _ = try await p.author.share(note.id, user: "grantee", permission: .view)
        let editors = try await manager.createTeam("Editors", members: ["team-grantee"])
        _ = try await p.author.share(note.id, team: editors.id, permission: .edit)

        for (name, client) in [("member", p.member), ("grantee", p.grantee)] {
            let error = await rpcError { _ = try await client.updateNote(note.id, paths: ["body"]) { $0.body = name } }
            #expect(error?.code == .permissionDenied, "\(name)")
        }
        #expect(await rpcError { _ = try await p.other.updateNote(note.id, paths: ["body"]) { $0.body = "x" } }?.code == .notFound)
        for (name, client) in [("teamGrantee", p.teamGrantee), ("admin", p.admin), ("author", p.author)] {
            #expect(try await client.updateNote(note.id, paths: ["body"]) { $0.body = name }.body == name)
        }
        // Upgrading the VIEW grant to EDIT replaces it.
        _ = try await p.author.share(note.id, user: "grantee", permission: .edit)
        #expect(try await p.grantee.updateNote(note.id, paths: ["body"]) { $0.body = "now" }.body == "now")
        // An EDIT grantee edits the text but does not decide who reads it: publishing to the tenant, or moving it to
        // another team, is the author's or an admin's.
        let publish = await rpcError { _ = try await p.grantee.updateNote(note.id, paths: ["visibility"]) { $0.visibility = .tenant } }
        #expect(publish?.code == .permissionDenied)
        let move = await rpcError { _ = try await p.teamGrantee.updateNote(note.id, paths: ["team_id"]) { $0.teamId = editors.id } }
        #expect(move?.code == .permissionDenied)
        #expect(
            try await p.admin.updateNote(note.id, paths: ["visibility", "team_id"]) {
                $0.visibility = .tenant
                $0.teamId = ""
            }.visibility == .tenant)
    }

    @Test("only the author or an admin shares and revokes; a revoked grantee loses the note")
    func grants() async throws {
        let tenantID = tenant()
        let p = try await principals(tenantID)
        let note = try await p.author.createNote(about: [subject()], visibility: .private)
        #expect(await rpcError { _ = try await p.other.share(note.id, user: "other") }?.code == .notFound)
        let tenantNote = try await p.author.createNote(about: [subject()], visibility: .tenant)
        #expect(await rpcError { _ = try await p.other.share(tenantNote.id, user: "other") }?.code == .permissionDenied)
        let grant = try await p.author.share(note.id, user: "grantee")
        #expect(grant.grantedBy == "author")
        #expect(try await p.grantee.getNote(note.id).id == note.id)
        var list = Switchboard_Collaboration_V1_ListGrantsRequest()
        list.noteId = note.id
        #expect(try await p.grantee.stub.listGrants(list, options: p.grantee.options).grants.map(\.id) == [grant.id])
        #expect(await rpcError { try await p.grantee.revoke(grant.id) }?.code == .permissionDenied)
        try await p.admin.revoke(grant.id)
        #expect(await rpcError { _ = try await p.grantee.getNote(note.id) }?.code == .notFound)
        #expect(await rpcError { try await p.author.revoke(grant.id) }?.code == .notFound)
        let bad = await rpcError { _ = try await p.author.share(note.id, user: "a", team: newID()) }
        #expect(fields(bad) == ["grant.user_id"])
        var noPermission = Switchboard_Collaboration_V1_ShareNoteRequest()
        var g = Switchboard_Collaboration_V1_Grant()
        g.noteId = note.id
        g.userId = "x"
        noPermission.grant = g
        let missing = await rpcError { _ = try await p.author.stub.shareNote(noPermission, options: p.author.options) }
        #expect(fields(missing) == ["grant.permission"])
        #expect(await rpcError { _ = try await p.foreignAdmin.share(note.id, user: "x") }?.code == .notFound)
    }

    @Test("teams: managers create and change them, names are unique, sizes bounded, users only read")
    func teams() async throws {
        let tenantID = tenant()
        let manager = try await harness.client(tenant: tenantID, user: "manager", roles: [.manager])
        let user = try await harness.client(tenant: tenantID, user: "user")
        let team = try await manager.createTeam(" Sales ", members: ["b", "a", "a"], requestID: "t-1")
        #expect(team.name == "Sales")
        #expect(team.memberUserIds == ["a", "b"])
        #expect(try await manager.createTeam(" Sales ", members: ["b", "a", "a"], requestID: "t-1") == team)
        #expect(await rpcError { _ = try await manager.createTeam("sales") }?.code == .alreadyExists)
        #expect(await rpcError { _ = try await user.createTeam("Mine") }?.code == .permissionDenied)
        #expect(await rpcError { _ = try await user.members(team.id, ["c"]) }?.code == .permissionDenied)
        var get = Switchboard_Collaboration_V1_GetTeamRequest()
        get.id = team.id
        #expect(try await user.stub.getTeam(get, options: user.options) == team)
        let added = try await manager.members(team.id, ["c"])
        #expect(added.memberUserIds == ["a", "b", "c"])
        #expect(added.etag == "\"2\"")
        #expect(fields(await rpcError { _ = try await manager.members(team.id, []) }) == ["user_ids"])
        #expect(fields(await rpcError { _ = try await manager.members(team.id, (0...100).map { "u\($0)" }) }) == ["user_ids"])
        #expect(fields(await rpcError { _ = try await manager.createTeam("") }) == ["team.name"])
        // a, b, c and 997 more: exactly the limit.
        for batch in 0..<10 { _ = try await manager.members(team.id, (0..<(batch == 9 ? 97 : 100)).map { "m\(batch)-\($0)" }) }
        let full = await rpcError { _ = try await manager.members(team.id, ["one-too-many"]) }
        #expect(full?.code == .failedPrecondition)
        _ = try await manager.createTeam("Alpha", members: ["a"])
        var list = Switchboard_Collaboration_V1_ListTeamsRequest()
        list.memberUserId = "a"
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = 1
        list.page = page
        let first = try await user.stub.listTeams(list, options: user.options)
        #expect(first.teams.map(\.name) == ["Alpha"])
        list.page!.pageToken = first.page!.nextPageToken
        #expect(try await user.stub.listTeams(list, options: user.options).teams.map(\.name) == ["Sales"])
        let foreign = try await harness.client(tenant: tenant(), user: "manager", roles: [.manager])
        #expect(await rpcError { _ = try await foreign.members(team.id, ["x"]) }?.code == .notFound)

        var rename = Switchboard_Collaboration_V1_UpdateTeamRequest()
        var renamed = Switchboard_Collaboration_V1_Team()
        renamed.id = team.id
        renamed.name = " Field Sales "
        rename.team = renamed
        rename.updateMask = Google_Protobuf_FieldMask(paths: ["name"])
        rename.etag = team.etag
        #expect(await rpcError { _ = try await manager.stub.updateTeam(rename, options: manager.options) }?.code == .aborted)
        rename.etag = ""
        #expect(await rpcError { _ = try await user.stub.updateTeam(rename, options: user.options) }?.code == .permissionDenied)
        let done = try await manager.stub.updateTeam(rename, options: manager.options)
        #expect(done.name == "Field Sales")
        #expect(done.memberUserIds.count == 1000)
        renamed.name = "alpha"
        rename.team = renamed
        #expect(await rpcError { _ = try await manager.stub.updateTeam(rename, options: manager.options) }?.code == .alreadyExists)
        rename.updateMask = Google_Protobuf_FieldMask(paths: ["member_user_ids"])
        #expect(fields(await rpcError { _ = try await manager.stub.updateTeam(rename, options: manager.options) }) == ["update_mask"])
        #expect(await rpcError { _ = try await foreign.stub.updateTeam(rename, options: foreign.options) } != nil)
    }
}

/// The bounds not covered beside their features: each refused with INVALID_ARGUMENT (or FAILED_PRECONDITION for a
/// full note) naming the field.
@Suite("Collaboration bounds", .serialized)
final class BoundsTests {
    let harness: CollaborationHarness
    init() async throws { harness = try await CollaborationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test("team name and initial members, notification body, muted kinds, meeting description and contacts")
    func bounds() async throws {
        let tenantID = tenant()
        let manager = try await harness.client(tenant: tenantID, user: "manager", roles: [.manager])
        #expect(fields(await rpcError { _ = try await manager.createTeam(String(repeating: "n", count: 201)) }) == ["team.name"])
        #expect(try await manager.createTeam(String(repeating: "n", count: 200)).name.utf8.count == 200)
        #expect(fields(await rpcError { _ = try await manager.createTeam("Big", members: (0...100).map { "u\($0)" }) }) == ["member_user_ids"])
        #expect(fields(await rpcError { _ = try await manager.createTeam("Bad", members: [""]) }) == ["member_user_ids[0]"])

        var notification = Switchboard_Collaboration_V1_Notification()
        notification.userIds = ["a"]
        notification.title = "t"
        notification.body = String(repeating: "b", count: 4097)
        var create = Switchboard_Collaboration_V1_CreateNotificationRequest()
        create.notification = notification
        #expect(fields(await rpcError { _ = try await manager.stub.createNotification(create, options: manager.options) }) == ["notification.body"])

        var preferences = Switchboard_Collaboration_V1_SetNotificationPreferencesRequest()
        var muted = Switchboard_Collaboration_V1_NotificationPreferences()
        muted.mutedKinds = Array(repeating: .mention, count: 4 * NotificationKind.allCases.count + 1)
        preferences.preferences = muted
        let tooMany = await rpcError { _ = try await manager.stub.setNotificationPreferences(preferences, options: manager.options) }
        #expect(fields(tooMany) == ["preferences.muted_kinds"])

        var meeting = Switchboard_Collaboration_V1_Meeting()
        meeting.title = "m"
        meeting.startTime = Date(timeIntervalSince1970: 1_900_000_000)
        meeting.endTime = Date(timeIntervalSince1970: 1_900_003_600)
        meeting.timeZone = "UTC"
        meeting.description = String(repeating: "d", count: 16_385)
        var book = Switchboard_Collaboration_V1_CreateMeetingRequest()
        book.meeting = meeting
        #expect(fields(await rpcError { _ = try await manager.stub.createMeeting(book, options: manager.options) }) == ["meeting.description"])
        meeting.description = ""
        meeting.contactIds = (0...100).map { _ in newID() }
        book.meeting = meeting
        #expect(fields(await rpcError { _ = try await manager.stub.createMeeting(book, options: manager.options) }) == ["meeting.contact_ids"])
    }

    @Test("a note holds at most 1,000 grants; replacing a grantee's permission at the limit is allowed")
    func grantLimit() async throws {
        let tenantID = tenant()
        let author = try await harness.client(tenant: tenantID, user: "author")
        let note = try await author.createNote(about: [subject()], visibility: .private)
        let first = try await author.share(note.id, user: "grantee-0")
        // The other 999 written directly, as the author (the grant policy admits the note's author).
        _ = try await harness.pool.query(
            settings: ["app.tenant_id": tenantID, "app.user_id": "author"],
            """
            INSERT INTO collaboration.grants (tenant_id, id, note_id, user_id, permission, granted_by, created_at)
            SELECT $1, gen_random_uuid(), $2::uuid, 'grantee-' || g, 1, 'author', now() FROM generate_series(1, 999) AS g
            """, [.text(tenantID), .text(note.id)])
        let full = await rpcError { _ = try await author.share(note.id, user: "one-too-many") }
        #expect(full?.code == .failedPrecondition)
        #expect(try await author.share(note.id, user: "grantee-0", permission: .edit).id == first.id)
        var list = Switchboard_Collaboration_V1_ListGrantsRequest()
        list.noteId = note.id
        #expect(try await author.stub.listGrants(list, options: author.options).grants.count == 1000)
    }
}
