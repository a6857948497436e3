import AnalyticsService
import CollaborationService
import CommunicationService
import Foundation
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

typealias Interaction = Switchboard_Communication_V1_Interaction

/// Communication and analytics in-process on their own databases, analytics following communication's feed, and
/// collaboration following both (or, with `followFeeds` false, following nothing: the test runs the consumers itself).
final class NotificationFeedHarness: Sendable {
    let communication: ServiceHarness
    let analytics: ServiceHarness
    let collaboration: CollaborationHarness

    static func start(followFeeds: Bool = true, reminderInterval: Duration = .seconds(1)) async throws -> NotificationFeedHarness {
        let communication = try await ServiceHarness.start(CommunicationService.description)
        let analyticsToken = ServiceTokenSource.selfSigned(service: "analytics", hs256Secret: testSecret, issuer: nil, audience: nil)
        let analytics = try await ServiceHarness.start(
            AnalyticsService.description(
                feeds: [AnalyticsService.SourceFeed(source: .communication, host: "127.0.0.1", port: communication.port, token: analyticsToken)]))
        let token = ServiceTokenSource.selfSigned(service: "collaboration", hs256Secret: testSecret, issuer: nil, audience: nil)
        let collaboration = try await CollaborationHarness.start(
            communicationFeed: followFeeds ? .init(host: "127.0.0.1", port: communication.port, token: token) : nil,
            analyticsFeed: followFeeds ? .init(host: "127.0.0.1", port: analytics.port, token: token) : nil, reminderInterval: reminderInterval)
        return NotificationFeedHarness(communication: communication, analytics: analytics, collaboration: collaboration)
    }

    private init(communication: ServiceHarness, analytics: ServiceHarness, collaboration: CollaborationHarness) {
        self.communication = communication
        self.analytics = analytics
        self.collaboration = collaboration
    }

    func stop() async {
        await collaboration.stop()
        await analytics.stop()
        await communication.stop()
    }

    /// A communication client calling as `user` of `tenant`.
    func comm(_ tenant: String, _ user: String, roles: [Role] = [.user]) async throws -> CommClient {
        CommClient(
            stub: Switchboard_Communication_V1_CommunicationService_Client(client: RPCClient(transport: communication.channel)),
            options: try await communication.options(tenant: tenant, user: user, roles: roles))
    }

    /// A collaboration client calling as `user` of `tenant`.
    func inbox(_ tenant: String, _ user: String) async throws -> CollabClient {
        try await collaboration.client(tenant: tenant, user: user)
    }

    /// The notifications stored for `user` (muted kinds included: what was created, not what the inbox shows).
    func stored(_ tenant: String, _ user: String) async throws -> Int64 {
        try await collaboration.pool.query(
            settings: ["app.tenant_id": tenant, "app.user_id": user],
            "SELECT count(*) AS n FROM collaboration.notifications WHERE tenant_id = $1 AND $2 = ANY (user_ids)", [.text(tenant), .text(user)]
        ).first!.int("n")
    }
}

/// The communication service's interaction calls.
struct CommClient: Sendable {
    let stub: Switchboard_Communication_V1_CommunicationService_Client
    let options: CallOptions

    func log(
        _ kind: Switchboard_Communication_V1_InteractionKind = .email, _ direction: Switchboard_Communication_V1_Direction = .outbound,
        owner: String = "", subject: String, outcome: String = "", followUpAt: Date? = nil, occurredAt: Date? = nil, contacts: [String] = [],
        visibility: Switchboard_Communication_V1_Visibility = .unspecified
    ) async throws -> Interaction {
        var interaction = Interaction()
        interaction.kind = kind
        interaction.direction = direction
        interaction.ownerId = owner
        interaction.subject = subject
        interaction.outcome = outcome
        interaction.followUpAt = followUpAt
        interaction.occurredAt = occurredAt
        interaction.contactIds = contacts
        interaction.visibility = visibility
        var request = Switchboard_Communication_V1_LogInteractionRequest()
        request.interaction = interaction
        return try await stub.logInteraction(request, options: options)
    }

    @discardableResult
    func update(_ id: String, _ paths: [String], _ change: (inout Interaction) -> Void) async throws -> Interaction {
        var interaction = Interaction()
        interaction.id = id
        change(&interaction)
        var request = Switchboard_Communication_V1_UpdateInteractionRequest()
        request.interaction = interaction
        request.updateMask = Google_Protobuf_FieldMask(paths: paths)
        return try await stub.updateInteraction(request, options: options)
    }

    func delete(_ id: String) async throws {
        var request = Switchboard_Communication_V1_DeleteInteractionRequest()
        request.id = id
        _ = try await stub.deleteInteraction(request, options: options)
    }

    func undelete(_ id: String) async throws {
        var request = Switchboard_Communication_V1_UndeleteInteractionRequest()
        request.id = id
        _ = try await stub.undeleteInteraction(request, options: options)
    }
}

extension CollabClient {
    /// The caller's notifications of one kind, oldest first.
    func notifications(_ kind: Switchboard_Collaboration_V1_NotificationKind) async throws -> [Switchboard_Collaboration_V1_Notification] {
        try await inbox(pageSize: 200).notifications.filter { $0.kind == kind }.reversed()
    }

    func mute(_ kinds: [Switchboard_Collaboration_V1_NotificationKind]) async throws {
        var preferences = Switchboard_Collaboration_V1_NotificationPreferences()
        preferences.mutedKinds = kinds
        var request = Switchboard_Collaboration_V1_SetNotificationPreferencesRequest()
        request.preferences = preferences
        _ = try await stub.setNotificationPreferences(request, options: options)
    }
}

/// The services started once for the suite's tests (each test uses its own tenants).
private let sharedFeeds = Task { try await NotificationFeedHarness.start() }

/// How long a test waits for what travels through a feed. Generous: the kit's cross-tenant feed holds back changes
/// newer than the cluster's oldest running transaction, and the test cluster is shared with other suites (and
/// importers) that hold transactions open for tens of seconds.
let feedTimeout: Duration = .seconds(120)

/// Follow-ups and calls from the communication feed and alerts from analytics' feed, end to end: the real services
/// in-process over HTTP/2, each on its own database, collaboration following the two feeds with its kit consumers.
@Suite("Collaboration: notifications from communication and analytics", .serialized)
struct NotificationFeedTests {
    var h: NotificationFeedHarness { get async throws { try await sharedFeeds.value } }

    @Test("a follow-up already due notifies its owner at once, a future one at its time, each once; nobody else")
    func followUpsDue() async throws {
        let h = try await self.h
        let t = tenant()
        let alice = try await h.comm(t, "alice")
        let pastDue = try await alice.log(subject: "Send the quote", followUpAt: Date().addingTimeInterval(-3600))
        let dueAt = Date().addingTimeInterval(4)
        let future = try await alice.log(subject: "Check in", followUpAt: dueAt)
        let inbox = try await h.inbox(t, "alice")
        #expect(try await eventually(timeout: feedTimeout) { try await inbox.notifications(.followUp).contains { $0.resourceId == pastDue.id } })
        #expect(try await eventually(timeout: feedTimeout) { try await inbox.notifications(.followUp).contains { $0.resourceId == future.id } })
        let sent = try #require(try await inbox.notifications(.followUp).first { $0.resourceId == future.id })
        // Never before its time (the database's clock is this machine's).
        #expect(try #require(sent.createTime) >= dueAt.addingTimeInterval(-0.5), "sent at \(String(describing: sent.createTime)), due \(dueAt)")
        #expect(sent.title == "Follow up: Check in")
        #expect(sent.resourceType == "switchboard.communication.v1.Interaction" && sent.userIds == ["alice"])
        // A later follow-up's notification proves later scans ran: the earlier ones were not sent again.
        let marker = try await alice.log(subject: "Marker", followUpAt: Date().addingTimeInterval(-60))
        #expect(try await eventually(timeout: feedTimeout) { try await inbox.notifications(.followUp).contains { $0.resourceId == marker.id } })
        #expect(try await inbox.notifications(.followUp).map(\.resourceId) == [pastDue.id, future.id, marker.id])
        #expect(try await h.inbox(t, "bob").inbox().notifications.isEmpty)
    }

    @Test("moved, done, deleted or cleared follow-ups are not sent at the old time; a new owner gets it; a restored one still due is sent")
    func followUpChanges() async throws {
        let h = try await self.h
        let t = tenant()
        let alice = try await h.comm(t, "alice")
        let desk = try await h.comm(t, "desk", roles: [.admin])
        // Far enough ahead that every change below is ingested before it, even on a loaded machine.
        let due = Date().addingTimeInterval(8)
        let moved = try await alice.log(subject: "moved", followUpAt: due)
        let done = try await alice.log(subject: "done", followUpAt: due)
        let deleted = try await alice.log(subject: "deleted", followUpAt: due)
        let cleared = try await alice.log(subject: "cleared", followUpAt: due)
        let handed = try await alice.log(subject: "handed", followUpAt: due)
        let restored = try await alice.log(subject: "restored", followUpAt: due)
        try await alice.update(moved.id, ["follow_up_at"]) { $0.followUpAt = Date().addingTimeInterval(3600) }
        try await alice.update(done.id, ["follow_up_done"]) { $0.followUpDone = true }
        try await alice.delete(deleted.id)
        try await alice.update(cleared.id, ["follow_up_at"]) { $0.followUpAt = nil }
        try await desk.update(handed.id, ["owner_id"]) { $0.ownerId = "bob" }
        try await alice.delete(restored.id)
        // Every change ingested (the rows in their final states). Only if that happened before the old time can nothing
        // have been sent at it: a feed held back mid-sequence (see feedTimeout) may deliver a creation before its due
        // time and its cancellation after it, when sending it was right.
        let ids = [moved, done, deleted, cleared, handed, restored].map { PostgresValue.uuid(UUID(uuidString: $0.id)!) }
        #expect(
            try await eventually(timeout: feedTimeout) {
                try await h.collaboration.pool.query(
                    settings: ["app.tenant_id": t],
                    """
                    SELECT count(*) FILTER (WHERE interaction_id = $1 AND due_at > now() + interval '50 minutes')
                        + count(*) FILTER (WHERE interaction_id = $2 AND done) + count(*) FILTER (WHERE interaction_id = $3 AND deleted)
                        + count(*) FILTER (WHERE interaction_id = $4 AND due_at IS NULL)
                        + count(*) FILTER (WHERE interaction_id = $5 AND owner_id = 'bob') + count(*) FILTER (WHERE interaction_id = $6 AND deleted)
                        AS n
                    FROM collaboration.follow_ups
                    """, ids
                ).first!.int("n") == 6
            })
        let inTime = Date() < due
        // Past the old time, one deleted interaction comes back: its follow-up is still open, so it is due at once.
        try await Task.sleep(for: .seconds(max(0, due.timeIntervalSinceNow) + 1.5))
        try await alice.undelete(restored.id)
        let aliceInbox = try await h.inbox(t, "alice")
        let bobInbox = try await h.inbox(t, "bob")
        #expect(try await eventually(timeout: feedTimeout) { try await bobInbox.notifications(.followUp).contains { $0.resourceId == handed.id } })
        #expect(
            try await eventually(timeout: feedTimeout) { try await aliceInbox.notifications(.followUp).contains { $0.resourceId == restored.id } })
        // A follow-up logged now and already due is sent by a scan that also saw every row due before it.
        let marker = try await alice.log(subject: "marker", followUpAt: Date().addingTimeInterval(-60))
        #expect(try await eventually(timeout: feedTimeout) { try await aliceInbox.notifications(.followUp).contains { $0.resourceId == marker.id } })
        if inTime {
            #expect(Set(try await aliceInbox.notifications(.followUp).map(\.resourceId)) == [restored.id, marker.id])
        }
        #expect(try await bobInbox.notifications(.followUp).map(\.resourceId) == [handed.id])
        let movedRow = try await h.collaboration.pool.query(
            settings: ["app.tenant_id": t],
            "SELECT due_at > now() + interval '50 minutes' AS later, sent_at IS NULL AS pending FROM collaboration.follow_ups WHERE interaction_id = $1",
            [.uuid(UUID(uuidString: moved.id)!)]
        ).first
        #expect(try movedRow?.bool("later") == true && movedRow?.bool("pending") == true)
    }

    @Test("call events notify the owner when someone else logs an inbound call, records a missed one, or hands one over; never for the owner's own")
    func calls() async throws {
        let h = try await self.h
        let t = tenant()
        let desk = try await h.comm(t, "desk", roles: [.admin])
        let alice = try await h.comm(t, "alice")
        let inbound = try await desk.log(.call, .inbound, owner: "alice", subject: "Caller asked for pricing")
        let own = try await alice.log(.call, .outbound, subject: "My own call")
        let ownInbound = try await alice.log(.call, .inbound, subject: "I took this one")
        _ = try await desk.log(.email, .inbound, owner: "alice", subject: "An email, not a call")
        let dialed = try await desk.log(.call, .outbound, owner: "alice", subject: "Dialer call")
        _ = try await desk.log(.call, .inbound, owner: "alice", subject: "Imported", occurredAt: Date().addingTimeInterval(-200 * 86_400))
        try await desk.update(dialed.id, ["outcome"]) { $0.outcome = "No-Answer" }
        try await alice.update(own.id, ["outcome"]) { $0.outcome = "no answer" }
        try await desk.update(ownInbound.id, ["subject"]) { $0.subject = "Renamed" }
        try await desk.update(ownInbound.id, ["owner_id"]) { $0.ownerId = "carol" }
        // The feed is applied in order: once the last event's notification is there, every earlier one was applied.
        let marker = try await desk.log(.call, .inbound, owner: "alice", subject: "Marker")
        let aliceInbox = try await h.inbox(t, "alice")
        #expect(try await eventually(timeout: feedTimeout) { try await aliceInbox.notifications(.call).contains { $0.resourceId == marker.id } })
        let calls = try await aliceInbox.notifications(.call)
        #expect(calls.map(\.resourceId) == [inbound.id, dialed.id, marker.id])
        #expect(calls.map(\.title) == ["Inbound call: Caller asked for pricing", "Call not answered: Dialer call", "Inbound call: Marker"])
        #expect(calls.allSatisfy { $0.createdBy == "communication-feed" && $0.resourceType == "switchboard.communication.v1.Interaction" })
        let carol = try await h.inbox(t, "carol").notifications(.call)
        #expect(carol.map(\.title) == ["Call assigned to you: Renamed"])
        #expect(try await h.inbox(t, "desk").inbox().notifications.isEmpty)
    }

    @Test("private interactions notify their owner too (communication's cross-tenant feed carries them whole); nobody else")
    func privateInteractions() async throws {
        let h = try await self.h
        let t = tenant()
        let desk = try await h.comm(t, "desk", roles: [.admin])
        let alice = try await h.comm(t, "alice")
        let due = try await alice.log(subject: "Private follow-up", followUpAt: Date().addingTimeInterval(-60), visibility: .private)
        let call = try await desk.log(.call, .inbound, owner: "alice", subject: "Private call", visibility: .private)
        let inbox = try await h.inbox(t, "alice")
        #expect(try await eventually(timeout: feedTimeout) { try await inbox.notifications(.followUp).contains { $0.resourceId == due.id } })
        #expect(try await eventually(timeout: feedTimeout) { try await inbox.notifications(.call).contains { $0.resourceId == call.id } })
        #expect(try await inbox.notifications(.followUp).map(\.title) == ["Follow up: Private follow-up"])
        #expect(try await inbox.notifications(.call).map(\.title) == ["Inbound call: Private call"])
        #expect(try await h.inbox(t, "bob").inbox().notifications.isEmpty)
        #expect(try await h.inbox(t, "desk").inbox().notifications.isEmpty)
    }

    @Test("an analytics alert notifies the user who created it, naming the contact")
    func alerts() async throws {
        let h = try await self.h
        let t = tenant()
        let analytics = Switchboard_Analytics_V1_AnalyticsService_Client(client: RPCClient(transport: h.analytics.channel))
        var alert = Switchboard_Analytics_V1_Alert()
        alert.name = "Hot lead"
        alert.metric = .interactions
        alert.threshold = 1
        alert.direction = .above
        var create = Switchboard_Analytics_V1_CreateAlertRequest()
        create.alert = alert
        _ = try await analytics.createAlert(create, options: try await h.analytics.options(tenant: t, user: "mgr", roles: [.manager]))
        let contact = newID()
        let desk = try await h.comm(t, "desk", roles: [.admin])
        _ = try await desk.log(.email, .outbound, subject: "Hello", contacts: [contact])
        let mgr = try await h.inbox(t, "mgr")
        #expect(try await eventually(timeout: feedTimeout) { try await mgr.notifications(.alert).isEmpty == false })
        let alerts = try await mgr.notifications(.alert)
        #expect(alerts.count == 1)
        #expect(alerts.first?.title == "Alert \"Hot lead\" fired" && alerts.first?.body == "interactions: 1 (threshold 1)")
        #expect(alerts.first?.resourceType == "switchboard.contacts.v1.Contact" && alerts.first?.resourceId == contact)
        #expect(alerts.first?.userIds == ["mgr"] && alerts.first?.createdBy == "analytics-feed")
        #expect(try await h.inbox(t, "desk").inbox().notifications.isEmpty)
    }

    @Test("a muted kind creates nothing (not merely hidden); unmuted, the next event notifies")
    func mutedKinds() async throws {
        let h = try await self.h
        let t = tenant()
        let desk = try await h.comm(t, "desk", roles: [.admin])
        let alice = try await h.comm(t, "alice")
        let bob = try await h.comm(t, "bob")
        try await h.inbox(t, "alice").mute([.followUp, .call])
        let call = try await desk.log(.call, .inbound, owner: "alice", subject: "Muted call")
        let followUp = try await alice.log(subject: "Muted follow-up", followUpAt: Date().addingTimeInterval(-60))
        // Bob's, after Alice's in the feed and in due order: once both reached him, Alice's were applied and scanned.
        _ = try await desk.log(.call, .inbound, owner: "bob", subject: "Bob's call")
        _ = try await bob.log(subject: "Bob's follow-up", followUpAt: Date().addingTimeInterval(-30))
        let bobInbox = try await h.inbox(t, "bob")
        #expect(
            try await eventually(timeout: feedTimeout) {
                let calls = try await bobInbox.notifications(.call)
                let followUps = try await bobInbox.notifications(.followUp)
                return !calls.isEmpty && !followUps.isEmpty
            })
        #expect(try await h.stored(t, "alice") == 0)
        let row = try await h.collaboration.pool.query(
            settings: ["app.tenant_id": t],
            "SELECT sent_at IS NOT NULL AS handled, notification_id IS NULL AS none FROM collaboration.follow_ups WHERE interaction_id = $1",
            [.uuid(UUID(uuidString: followUp.id)!)]
        ).first
        #expect(try row?.bool("handled") == true && row?.bool("none") == true)
        try await h.inbox(t, "alice").mute([])
        let next = try await desk.log(.call, .inbound, owner: "alice", subject: "Heard")
        let aliceInbox = try await h.inbox(t, "alice")
        #expect(try await eventually(timeout: feedTimeout) { try await aliceInbox.notifications(.call).contains { $0.resourceId == next.id } })
        #expect(try await aliceInbox.notifications(.call).map(\.resourceId) == [next.id])
        #expect(!(try await aliceInbox.notifications(.call).contains { $0.resourceId == call.id }))
    }

    @Test("tenant isolation: the same user id in another tenant gets nothing of this tenant's calls and follow-ups")
    func tenantIsolation() async throws {
        let h = try await self.h
        let (one, two) = (tenant(), tenant())
        let desk = try await h.comm(one, "desk", roles: [.admin])
        let aliceOne = try await h.comm(one, "alice")
        let aliceTwo = try await h.comm(two, "alice")
        let call = try await desk.log(.call, .inbound, owner: "alice", subject: "Tenant one's call")
        let followUp = try await aliceOne.log(subject: "Tenant one's follow-up", followUpAt: Date().addingTimeInterval(-60))
        let own = try await aliceTwo.log(subject: "Tenant two's follow-up", followUpAt: Date().addingTimeInterval(-30))
        let inboxOne = try await h.inbox(one, "alice")
        let inboxTwo = try await h.inbox(two, "alice")
        #expect(try await eventually(timeout: feedTimeout) { try await inboxTwo.notifications(.followUp).contains { $0.resourceId == own.id } })
        #expect(try await eventually(timeout: feedTimeout) { try await inboxOne.notifications(.followUp).contains { $0.resourceId == followUp.id } })
        #expect(try await eventually(timeout: feedTimeout) { try await inboxOne.notifications(.call).contains { $0.resourceId == call.id } })
        #expect(try await inboxTwo.inbox().notifications.map(\.resourceId) == [own.id])
        #expect(Set(try await inboxOne.inbox().notifications.map(\.resourceId)) == [call.id, followUp.id])
    }
}

/// The consumers' apply functions fed the same events again (at-least-once delivery), older events after newer ones,
/// private interactions' stubs and malformed events.
@Suite("Collaboration: feed notifications under redelivery", .serialized)
struct NotificationRedeliveryTests {
    var h: NotificationFeedHarness { get async throws { try await sharedFeeds.value } }

    func event(
        _ tenant: String, _ type: String, _ id: String, _ kind: Switchboard_Common_V1_ChangeKind, sequence: Int64, actor: String = "desk",
        changed: [String] = [], json: String
    ) throws -> Switchboard_Common_V1_ChangeEvent {
        var e = Switchboard_Common_V1_ChangeEvent()
        e.sequence = sequence
        e.tenantId = tenant
        e.resourceType = type
        e.resourceId = id
        e.kind = kind
        e.actorId = actor
        e.changedFields = changed
        e.commitTime = Date()
        e.resource = try Google_Protobuf_Struct(protoJSONText: json)
        return e
    }

    func interaction(
        _ id: String, owner: String = "alice", kind: Switchboard_Communication_V1_InteractionKind = .email, subject: String, followUpAt: Date?,
        done: Bool = false, contacts: [String] = []
    ) throws -> String {
        var i = Interaction()
        i.id = id
        i.contactIds = contacts
        i.kind = kind
        i.direction = .inbound
        i.ownerId = owner
        i.subject = subject
        i.followUpAt = followUpAt
        i.followUpDone = done
        i.visibility = .tenant
        return try i.protoJSONText()
    }

    func apply(communication events: [Switchboard_Common_V1_ChangeEvent]) async throws {
        let pool = try await self.h.collaboration.pool
        let store = CollaborationService.store(pool: pool)
        _ = try await pool.transaction { c in
            try await CollaborationService.applyCommunicationEvents(events, store: store, logger: .init(label: "test"), on: c)
        }
    }

    func apply(analytics events: [Switchboard_Common_V1_ChangeEvent]) async throws {
        let pool = try await self.h.collaboration.pool
        let store = CollaborationService.store(pool: pool)
        _ = try await pool.transaction { c in
            try await CollaborationService.applyAnalyticsEvents(events, store: store, logger: .init(label: "test"), on: c)
        }
    }

    func followUp(_ tenant: String, _ id: String) async throws -> PostgresRow? {
        try await self.h.collaboration.pool.query(
            settings: ["app.tenant_id": tenant],
            "SELECT due_at IS NOT NULL AS open, done, last_sequence FROM collaboration.follow_ups WHERE interaction_id = $1",
            [.uuid(UUID(uuidString: id)!)]
        ).first
    }

    @Test("a redelivered event notifies once; an older event after a newer one changes nothing; stubs and bad events are handled")
    func redelivery() async throws {
        let h = try await self.h
        let t = tenant()
        let interactionType = "switchboard.communication.v1.Interaction"
        let callID = newID()
        let created = try event(
            t, interactionType, callID, .created, sequence: 1,
            json: try interaction(callID, kind: .call, subject: "Redelivered call", followUpAt: Date().addingTimeInterval(-60)))
        try await apply(communication: [created])
        try await apply(communication: [created, created])
        try await apply(communication: [created])

        var fired = Switchboard_Analytics_V1_AlertFired()
        fired.id = newID()
        fired.alertId = newID()
        fired.contactId = newID()
        fired.metric = .engagementScore
        fired.value = 12.3456
        fired.threshold = 10
        fired.time = Date()
        fired.ownerId = "mgr"
        fired.alertName = "Warm"
        let alert = try event(
            t, "switchboard.analytics.v1.AlertFired", fired.id, .created, sequence: 1, actor: "analytics-feed", json: try fired.protoJSONText())
        try await apply(analytics: [alert, alert])
        try await apply(analytics: [alert])

        // Due longer ago than the age limit (72 hours): handled, never sent.
        let staleID = newID()
        try await apply(communication: [
            try event(
                t, interactionType, staleID, .created, sequence: 5,
                json: try interaction(staleID, subject: "stale", followUpAt: Date().addingTimeInterval(-100 * 3600)))
        ])

        // Done at sequence 11, then the creation (10) again: the follow-up stays done.
        let doneID = newID()
        let open = try event(
            t, interactionType, doneID, .created, sequence: 10,
            json: try interaction(doneID, subject: "x", followUpAt: Date().addingTimeInterval(3600)))
        let closed = try event(
            t, interactionType, doneID, .updated, sequence: 11, changed: ["follow_up_done"],
            json: try interaction(doneID, subject: "x", followUpAt: Date().addingTimeInterval(3600), done: true))
        try await apply(communication: [open, closed])
        try await apply(communication: [open])
        let doneRow = try await followUp(t, doneID)
        #expect(try doneRow?.bool("done") == true && doneRow?.int("last_sequence") == 11)

        // A private interaction is a stub: a change of visibility keeps the follow-up, a change of its fields cancels it.
        let privateID = newID()
        let stub = #"{"id": "\#(privateID)", "visibility": "VISIBILITY_PRIVATE"}"#
        try await apply(
            communication: [
                try event(
                    t, interactionType, privateID, .created, sequence: 20,
                    json: try interaction(privateID, subject: "p", followUpAt: Date().addingTimeInterval(3600))),
                try event(t, interactionType, privateID, .updated, sequence: 21, changed: ["visibility"], json: stub),
            ])
        #expect(try await followUp(t, privateID)?.bool("open") == true)
        try await apply(communication: [try event(t, interactionType, privateID, .updated, sequence: 22, changed: ["follow_up_at"], json: stub)])
        #expect(try await followUp(t, privateID)?.bool("open") == false)

        // Malformed events are set aside per feed, and the rest of the batch applies.
        var ownerless = fired
        ownerless.id = newID()
        ownerless.ownerId = ""
        try await apply(communication: [
            try event(t, interactionType, "not-a-uuid", .created, sequence: 30, json: "{}"),
            try event(t, interactionType, newID(), .created, sequence: 31, json: #"{"followUpAt": "yesterday"}"#),
        ])
        try await apply(analytics: [
            try event(t, "switchboard.analytics.v1.AlertFired", ownerless.id, .created, sequence: 2, json: try ownerless.protoJSONText())
        ])
        let setAside = try await h.collaboration.pool.query(
            settings: ["app.tenant_id": t], "SELECT feed, count(*) AS n FROM collaboration.feed_dead_letters GROUP BY feed ORDER BY feed", []
        ).rows.map { (try $0.string("feed"), try $0.int("n")) }
        #expect(setAside.map(\.0) == ["analytics", "communication"] && setAside.map(\.1) == [1, 2])

        let alice = try await h.inbox(t, "alice")
        #expect(try await eventually(timeout: feedTimeout) { try await alice.notifications(.followUp).isEmpty == false })
        // A later due follow-up: once it is sent, the scans after the first one have run.
        let markerID = newID()
        try await apply(communication: [
            try event(
                t, interactionType, markerID, .created, sequence: 40, actor: "alice",
                json: try interaction(markerID, subject: "m", followUpAt: Date().addingTimeInterval(-1)))
        ])
        #expect(try await eventually(timeout: feedTimeout) { try await alice.notifications(.followUp).contains { $0.resourceId == markerID } })
        #expect(try await alice.notifications(.followUp).map(\.resourceId) == [callID, markerID])
        let stale = try await h.collaboration.pool.query(
            settings: ["app.tenant_id": t],
            "SELECT sent_at IS NOT NULL AS handled, notification_id IS NULL AS none FROM collaboration.follow_ups WHERE interaction_id = $1",
            [.uuid(UUID(uuidString: staleID)!)]
        ).first
        #expect(try stale?.bool("handled") == true && stale?.bool("none") == true)
        #expect(try await alice.notifications(.call).map(\.resourceId) == [callID])
        let mgr = try await h.inbox(t, "mgr").notifications(.alert)
        #expect(mgr.count == 1 && mgr.first?.body == "engagement score: 12.35 (threshold 10)" && mgr.first?.title == "Alert \"Warm\" fired")
    }
}

extension NotificationRedeliveryTests {
    @Test("ERASED redacts the follow-up and call notifications of the person's interactions (and pending follow-ups), and alerts about them")
    func erasure() async throws {
        let h = try await self.h
        let t = tenant()
        let interactionType = "switchboard.communication.v1.Interaction"
        let (person, other) = (newID(), newID())
        let (callID, dueID, laterID, othersID) = (newID(), newID(), newID(), newID())
        try await apply(communication: [
            try event(
                t, interactionType, callID, .created, sequence: 1,
                json: try interaction(callID, kind: .call, subject: "Jane Doe about her loan", followUpAt: nil, contacts: [person])),
            try event(
                t, interactionType, dueID, .created, sequence: 2,
                json: try interaction(dueID, subject: "Jane's debt", followUpAt: Date().addingTimeInterval(-60), contacts: [other, person])),
            try event(
                t, interactionType, laterID, .created, sequence: 3,
                json: try interaction(laterID, subject: "Jane again", followUpAt: Date().addingTimeInterval(3600), contacts: [person, other])),
            try event(
                t, interactionType, othersID, .created, sequence: 4,
                json: try interaction(othersID, kind: .call, subject: "Someone else", followUpAt: nil, contacts: [other])),
        ])
        var fired = Switchboard_Analytics_V1_AlertFired()
        fired.id = newID()
        fired.contactId = person
        fired.metric = .interactions
        fired.value = 3
        fired.threshold = 2
        fired.time = Date()
        fired.ownerId = "alice"
        fired.alertName = "Busy"
        try await apply(analytics: [
            try event(
                t, "switchboard.analytics.v1.AlertFired", fired.id, .created, sequence: 1, actor: "analytics-feed", json: try fired.protoJSONText())
        ])
        let alice = try await h.inbox(t, "alice")
        #expect(try await eventually(timeout: feedTimeout) { try await alice.notifications(.followUp).contains { $0.resourceId == dueID } })

        var erased = Switchboard_Common_V1_ChangeEvent()
        erased.sequence = Int64.random(in: 1...Int64.max / 2)
        erased.tenantId = t
        erased.resourceType = "switchboard.contacts.v1.Contact"
        erased.resourceId = person
        erased.kind = .erased
        let pool = h.collaboration.pool
        let store = CollaborationService.store(pool: pool)
        _ = try await pool.transaction { c in
            try await CollaborationService.applyContactsEvents([erased], store: store, logger: .init(label: "test"), on: c)
        }

        let calls = try await alice.notifications(.call)
        #expect(calls.map(\.resourceId) == [callID, othersID])
        #expect(calls.map(\.title) == ["Inbound call", "Inbound call: Someone else"])
        #expect(try await alice.notifications(.followUp).map(\.title) == ["Follow up on your email"])
        let alert = try #require(try await alice.notifications(.alert).first)
        #expect(alert.title == "Alert \"Busy\" fired" && alert.resourceId.isEmpty && alert.resourceType.isEmpty)
        // The pending follow-up keeps its time and its other contact, and is sent without the subject when due.
        let later = try #require(
            try await pool.query(
                settings: ["app.tenant_id": t],
                "SELECT title, contact_ids::text[] AS contacts, due_at IS NOT NULL AS open FROM collaboration.follow_ups WHERE interaction_id = $1",
                [.uuid(UUID(uuidString: laterID)!)]
            ).first)
        #expect(try later.string("title") == "Follow up on your email" && later.bool("open"))
        #expect(try later.strings("contacts") == [other])
        // Nothing stored names the person any more.
        let naming = try await pool.query(
            settings: ["app.tenant_id": t, "app.user_id": "alice"],
            """
            SELECT (SELECT count(*) FROM collaboration.notifications WHERE tenant_id = $1 AND ($2 = ANY (contact_ids) OR resource_id = $2::text))
                + (SELECT count(*) FROM collaboration.follow_ups WHERE tenant_id = $1 AND $2 = ANY (contact_ids)) AS n
            """, [.text(t), .uuid(UUID(uuidString: person)!)]
        ).first!.int("n")
        #expect(naming == 0)
    }
}

/// The real `collaboration` executable (SWITCHBOARD_COLLABORATION_BIN, or .build/debug/collaboration) following the
/// in-process communication feed: killed with SIGKILL while a follow-up is pending, then run as two replicas at once.
@Suite("Collaboration: pending follow-ups across a restart", .serialized)
final class FollowUpRestartTests {
    let h: NotificationFeedHarness

    // The in-process collaboration service follows no feed and its worker scans once an hour: only the processes this
    // test starts ingest and send.
    init() async throws { h = try await NotificationFeedHarness.start(followFeeds: false, reminderInterval: .seconds(3600)) }
    deinit {
        let h = h
        Task { await h.stop() }
    }

    func launch() throws -> Process {
        let binary =
            ProcessInfo.processInfo.environment["SWITCHBOARD_COLLABORATION_BIN"]
            ?? repositoryRoot.appendingPathComponent(".build/debug/collaboration").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.environment = ProcessInfo.processInfo.environment.merging([
            "SWITCHBOARD_GRPC_PORT": "0", "SWITCHBOARD_ADMIN_PORT": "0", "SWITCHBOARD_DATABASE_URL": h.collaboration.service.serviceConninfo,
            "SWITCHBOARD_JWT_HS256_SECRET": testSecret, "SWITCHBOARD_LOG_LEVEL": "error", "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "2",
            "SWITCHBOARD_COLLABORATION_COMMUNICATION_ADDRESS": "127.0.0.1:\(h.communication.port)",
        ]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    @Test("a follow-up pending when the process is killed is sent once after the restart, by one of two replicas")
    func restart() async throws {
        let t = tenant()
        let alice = try await h.comm(t, "alice")
        let inbox = try await h.inbox(t, "alice")
        var processes = [try launch()]
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let due = Date().addingTimeInterval(12)
        let interaction = try await alice.log(subject: "After the restart", followUpAt: due)
        let pending = try await eventually(timeout: feedTimeout) {
            try await self.h.collaboration.pool.query(
                settings: ["app.tenant_id": t], "SELECT count(*) AS n FROM collaboration.follow_ups WHERE sent_at IS NULL AND due_at IS NOT NULL", []
            ).first!.int("n") == 1
        }
        #expect(pending, "the first process never ingested the follow-up")
        kill(processes[0].processIdentifier, SIGKILL)
        await waitUntilExit(processes[0])
        if Date() < due { #expect(try await inbox.notifications(.followUp).isEmpty) }
        processes += [try launch(), try launch()]
        #expect(try await eventually(timeout: feedTimeout) { try await inbox.notifications(.followUp).isEmpty == false })
        let marker = try await alice.log(subject: "Marker", followUpAt: Date().addingTimeInterval(-60))
        #expect(try await eventually(timeout: feedTimeout) { try await inbox.notifications(.followUp).contains { $0.resourceId == marker.id } })
        #expect(try await inbox.notifications(.followUp).map(\.resourceId) == [interaction.id, marker.id])
    }
}
