import CollaborationService
import Foundation
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardTestSupport
import Synchronization
import Testing

typealias NotificationMessage = Switchboard_Collaboration_V1_Notification

/// Notifications: audiences, the inbox, read and acknowledge, preferences, and the subscription stream.
@Suite("Collaboration notifications", .serialized)
final class NotificationTests {
    let harness: CollaborationHarness
    init() async throws { harness = try await CollaborationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    /// Reads a user's stream after `afterID` until `count` notifications arrived, running `whileOpen` once the first
    /// `trigger` have been read (0: as soon as the stream is open, signalled by a first notification being awaited).
    func read(
        _ client: CollabClient, after afterID: Int64 = 0, count: Int, trigger: Int = 0, whileOpen: @escaping @Sendable () async throws -> Void = {}
    ) async throws -> [NotificationMessage] {
        var request = Switchboard_Collaboration_V1_SubscribeNotificationsRequest()
        request.afterId = afterID
        return try await client.stub.subscribeNotifications(request, options: client.options) { stream in
            var received: [NotificationMessage] = []
            var iterator = stream.makeAsyncIterator()
            // The action is awaited before returning: its errors fail the test, and what it records is set (the
            // notification it causes can arrive before the action itself has returned).
            var action: Task<Void, any Error>?
            if trigger == 0 { action = Task { try await whileOpen() } }
            while received.count < count, let next = try await iterator.next() {
                received.append(next)
                if received.count == trigger { action = Task { try await whileOpen() } }
            }
            try await action?.value
            return received
        }
    }

    @Test("the stream sends the backlog in order, then live ones, and a resumed subscriber sees no gap or duplicate")
    func backlogThenLive() async throws {
        let tenantID = tenant()
        let sender = try await harness.client(tenant: tenantID, user: "sender")
        let reader = try await harness.client(tenant: tenantID, user: "reader")
        var backlog: [Int64] = []
        for i in 0..<3 { backlog.append(try await sender.notify(users: ["reader"], title: "backlog \(i)").id) }
        _ = try await sender.notify(users: ["someone-else"], title: "not for the reader")
        let received = try await read(reader, count: 5, trigger: 3) {
            for i in 0..<2 { _ = try await sender.notify(users: ["reader"], title: "live \(i)") }
        }
        #expect(Array(received.prefix(3).map(\.id)) == backlog)
        #expect(received.map(\.title) == ["backlog 0", "backlog 1", "backlog 2", "live 0", "live 1"])
        #expect(received.map(\.id) == received.map(\.id).sorted())
        // Disconnected after the second, the reader resumes from it.
        let resumed = try await read(reader, after: received[1].id, count: 3)
        #expect(resumed.map(\.id) == Array(received.suffix(3).map(\.id)))
    }

    @Test("notifications committed concurrently while a subscriber switches from backlog to live arrive exactly once, in order")
    func concurrentWriters() async throws {
        let tenantID = tenant()
        let reader = try await harness.client(tenant: tenantID, user: "reader")
        let writers = try await (0..<4).asyncMap { try await self.harness.client(tenant: tenantID, user: "writer-\($0)") }
        for writer in writers { _ = try await writer.notify(users: ["reader"], title: "before") }
        let received = try await read(reader, count: 4 + 4 * 10, trigger: 1) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in writers {
                    group.addTask { for i in 0..<10 { _ = try await writer.notify(users: ["reader"], title: "live \(i)") } }
                }
                try await group.waitForAll()
            }
        }
        let ids = received.map(\.id)
        #expect(Set(ids).count == ids.count)
        #expect(ids == ids.sorted())
        let inbox = try await reader.inbox(pageSize: 200).notifications.map(\.id)
        #expect(Set(inbox) == Set(ids))
    }

    @Test("a mention notifies the mentioned user in the note's transaction and reaches their open stream")
    func mention() async throws {
        let tenantID = tenant()
        let author = try await harness.client(tenant: tenantID, user: "author")
        let mentioned = try await harness.client(tenant: tenantID, user: "mentioned")
        let noteID = Mutex<String>("")
        let started = Mutex<ContinuousClock.Instant?>(nil)
        let received = try await read(mentioned, count: 1) {
            // The stream's wakeup subscription is made before its first read; give the call a moment to start.
            try await Task.sleep(for: .milliseconds(200))
            started.withLock { $0 = .now }
            let note = try await author.createNote(about: [subject()], body: "ask @mentioned", mentions: ["mentioned", "author"])
            noteID.withLock { $0 = note.id }
        }
        let latency = ContinuousClock.now - started.withLock { $0! }
        print("mention reached the open stream \(latency) after CreateNote was sent")
        #expect(received.first?.kind == .mention)
        #expect(received.first?.resourceId == noteID.withLock { $0 })
        #expect(received.first?.userIds == ["mentioned"])
        // The author is not notified of their own mention; the note's body is not in the notification.
        #expect(try await author.inbox().notifications.isEmpty)
        #expect(received.first?.body == "")
        // Mentions added by an update notify only the new users.
        _ = try await author.updateNote(noteID.withLock { $0 }, paths: ["mentioned_user_ids"]) { $0.mentionedUserIds = ["mentioned", "late"] }
        let late = try await harness.client(tenant: tenantID, user: "late")
        #expect(try await late.inbox().notifications.count == 1)
        #expect(try await mentioned.inbox().notifications.count == 1)
    }

    @Test("audiences: users, a team's members, the tenant (managers only); nobody else, no other tenant")
    func audiences() async throws {
        let tenantID = tenant()
        let manager = try await harness.client(tenant: tenantID, user: "manager", roles: [.manager])
        let member = try await harness.client(tenant: tenantID, user: "member")
        let outsider = try await harness.client(tenant: tenantID, user: "outsider")
        let team = try await manager.createTeam("Team", members: ["member"])
        let toTeam = try await outsider.notify(team: team.id, title: "team")
        let toAll = try await manager.notify(tenantWide: true, title: "all")
        #expect(await rpcError { _ = try await member.notify(tenantWide: true) }?.code == .permissionDenied)
        #expect(try await member.inbox().notifications.map(\.id) == [toAll.id, toTeam.id])
        #expect(try await outsider.inbox().notifications.map(\.id) == [toAll.id])
        let foreign = try await harness.client(tenant: tenant(), user: "member")
        #expect(try await foreign.inbox().notifications.isEmpty)
        #expect(await rpcError { _ = try await foreign.notify(team: team.id) }?.code == .notFound)
    }

    @Test("read, acknowledge, unread filter and pages; only one's own notifications change")
    func readAndAcknowledge() async throws {
        let tenantID = tenant()
        let sender = try await harness.client(tenant: tenantID, user: "sender")
        let reader = try await harness.client(tenant: tenantID, user: "reader")
        let ids = try await (0..<3).asyncMap { _ in try await sender.notify(users: ["reader"]).id }
        var mark = Switchboard_Collaboration_V1_NotificationIdsRequest()
        mark.ids = [ids[0], ids[1]]
        #expect(try await reader.stub.markNotificationsRead(mark, options: reader.options).updated == 2)
        #expect(try await reader.stub.markNotificationsRead(mark, options: reader.options).updated == 0)
        #expect(try await sender.stub.markNotificationsRead(mark, options: sender.options).updated == 0)
        #expect(try await reader.inbox(unreadOnly: true).notifications.map(\.id) == [ids[2]])
        mark.ids = [ids[1]]
        #expect(try await reader.stub.acknowledgeNotifications(mark, options: reader.options).updated == 1)
        let inbox = try await reader.inbox().notifications
        #expect(inbox.map(\.id) == ids.reversed())
        #expect(inbox[1].acknowledgeTime != nil && inbox[1].readTime != nil)
        #expect(inbox[0].readTime == nil)
        let page = try await reader.inbox(pageSize: 2)
        #expect(page.notifications.count == 2)
        #expect(try await reader.inbox(pageSize: 2, token: page.page!.nextPageToken).notifications.map(\.id) == [ids[0]])
        mark.ids = []
        #expect(fields(await rpcError { _ = try await reader.stub.markNotificationsRead(mark, options: reader.options) }) == ["ids"])
        mark.ids = (1...101).map { Int64($0) }
        #expect(fields(await rpcError { _ = try await reader.stub.markNotificationsRead(mark, options: reader.options) }) == ["ids"])
    }

    @Test("muted kinds are left out of the inbox and the stream")
    func preferences() async throws {
        let tenantID = tenant()
        let author = try await harness.client(tenant: tenantID, user: "author")
        let reader = try await harness.client(tenant: tenantID, user: "reader")
        var set = Switchboard_Collaboration_V1_SetNotificationPreferencesRequest()
        var preferences = Switchboard_Collaboration_V1_NotificationPreferences()
        preferences.mutedKinds = [.mention, .mention]
        set.preferences = preferences
        #expect(try await reader.stub.setNotificationPreferences(set, options: reader.options).mutedKinds == [.mention])
        let get = Switchboard_Collaboration_V1_GetNotificationPreferencesRequest()
        #expect(try await reader.stub.getNotificationPreferences(get, options: reader.options).mutedKinds == [.mention])
        _ = try await author.createNote(about: [subject()], mentions: ["reader"])
        let announcement = try await author.notify(users: ["reader"], title: "still heard")
        #expect(try await reader.inbox().notifications.map(\.id) == [announcement.id])
        #expect(try await read(reader, count: 1).map(\.id) == [announcement.id])
        preferences.mutedKinds = [.unspecified]
        set.preferences = preferences
        #expect(
            fields(await rpcError { _ = try await reader.stub.setNotificationPreferences(set, options: reader.options) }) == [
                "preferences.muted_kinds[0]"
            ])
    }

    @Test("INVALID_ARGUMENT names the fields; a retried create sends once")
    func validation() async throws {
        let client = try await harness.client(tenant: tenant())
        #expect(fields(await rpcError { _ = try await client.notify() }) == ["notification.user_ids"])
        #expect(fields(await rpcError { _ = try await client.notify(users: ["a"], tenantWide: true) }) == ["notification.user_ids"])
        #expect(fields(await rpcError { _ = try await client.notify(users: ["a"], title: "") }) == ["notification.title"])
        #expect(fields(await rpcError { _ = try await client.notify(users: (0...100).map { "u\($0)" }) }) == ["notification.user_ids"])
        #expect(fields(await rpcError { _ = try await client.notify(team: "nope") }) == ["notification.team_id"])
        let long = String(repeating: "t", count: 201)
        #expect(fields(await rpcError { _ = try await client.notify(users: ["a"], title: long) }) == ["notification.title"])
        var request = Switchboard_Collaboration_V1_SubscribeNotificationsRequest()
        request.afterId = -1
        let negative = await rpcError {
            _ = try await client.stub.subscribeNotifications(request, options: client.options) { stream in
                for try await _ in stream {}
            }
        }
        #expect(fields(negative) == ["after_id"])
        let first = try await client.notify(users: ["a"], requestID: "n-1")
        #expect(try await client.notify(users: ["a"], requestID: "n-1") == first)
        let reader = try await harness.client(tenant: tenant(), user: "a")
        #expect(try await reader.inbox().notifications.isEmpty)
    }
}

extension Sequence where Element: Sendable {
    /// Maps in order, awaiting each.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
