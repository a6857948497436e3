import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresCollaborationStore {
    /// Who notifications made from the communication feed are sent as.
    static let communicationFeedActor = "communication-feed"
    /// Who notifications made from analytics' feed are sent as.
    static let analyticsFeedActor = "analytics-feed"
    /// Who follow-up notifications are sent as (by the reminder worker).
    static let followUpActor = "follow-ups"
    static let interactionType = "switchboard.communication.v1.Interaction"

    /// Sets the event's tenant for what follows in the consumer's transaction, as `sender` (the notifications' sender:
    /// their read policy then admits the rows `appendNotification` returns), allowed to read muted kinds.
    func enterTenant(_ tenantID: String, as sender: String, on c: PostgresConnection) async throws {
        try await c.query(
            """
            SELECT set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true), set_config('app.user_admin', 'off', true),
                set_config('app.notification_sender', 'on', true)
            """, [.text(tenantID), .text(sender)])
    }

    /// Whether `user` muted `kind` (the transaction has `app.notification_sender` on and the tenant set).
    func isMuted(_ kind: NotificationKind, user: String, tenantID: String, on c: PostgresConnection) async throws -> Bool {
        try await c.query(
            """
            SELECT EXISTS (SELECT 1 FROM collaboration.notification_preferences
                           WHERE tenant_id = $1 AND user_id = $2 AND $3::int8::smallint = ANY (muted_kinds)) AS muted
            """, [.text(tenantID), .text(user), .int(Int64(kind.rawValue))]
        ).first!.bool("muted")
    }

    /// Writes a notification for one feed event once: a key already recorded (a redelivered event) makes nothing, and a
    /// recipient who muted the kind gets nothing (the key is kept, so a redelivery after unmuting stays silent).
    /// - Returns: the notification, or nil when none was written.
    @discardableResult
    func notifyOnce(
        _ data: NotificationData, feed: String, key: String, recipient: String, principal: Principal, on c: PostgresConnection
    ) async throws -> NotificationRecord? {
        let tenant = principal.actor.tenantID
        let fresh = try await c.query(
            "INSERT INTO collaboration.feed_notifications (tenant_id, feed, event_key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [.text(tenant), .text(feed), .text(key)]
        ).affectedRows
        guard fresh == 1 else { return nil }
        let muted = try await isMuted(data.kind, user: recipient, tenantID: tenant, on: c)
        guard !muted else { return nil }
        return try await appendNotification(data, principal: principal, on: c)
    }

    /// Applies the communication feed's interaction changes in order inside the feed consumer's batch transaction (the
    /// cursor commits with the effects): each change moves its interaction's follow-up (``FeedNotificationRules/followUpPlan(_:)``)
    /// and may notify its owner of a call (``FeedNotificationRules/callNotice(_:now:maxAge:)``).
    /// - Parameters:
    ///   - changes: the changes, in feed order.
    ///   - maxAge: how old a call may be and still notify.
    ///   - c: the consumer's transaction.
    public func applyInteractionChanges(_ changes: [InteractionChange], maxAge: Duration, on c: PostgresConnection) async throws {
        let now = Date()
        var calls: [PendingNotification] = []
        for change in changes {
            try await enterTenant(change.tenantID, as: Self.communicationFeedActor, on: c)
            try await applyFollowUp(FeedNotificationRules.followUpPlan(change), of: change, on: c)
            guard let notice = FeedNotificationRules.callNotice(change, now: now, maxAge: maxAge) else { continue }
            calls.append(
                PendingNotification(
                    tenantID: change.tenantID, key: String(change.sequence), recipient: notice.ownerID,
                    data: NotificationData(
                        kind: .call, audience: .users([notice.ownerID]), title: notice.title, resourceType: Self.interactionType,
                        resourceID: change.interactionID.lowercaseText, contactIDs: change.facts?.contactIDs ?? [],
                        redactedTitle: notice.redactedTitle)))
        }
        try await notifyOnce(calls, feed: "communication", sender: Self.communicationFeedActor, on: c)
    }

    /// A feed notification to write once the batch's other effects are applied.
    struct PendingNotification {
        var tenantID: String
        var key: String
        var recipient: String
        var data: NotificationData
    }

    /// Writes a batch's notifications in tenant order (feed order within a tenant). Each tenant's notification counter
    /// stays locked until the batch commits; taken in tenant order, as the reminder worker takes them, a consumer and
    /// the worker never wait for each other in a cycle.
    func notifyOnce(_ pending: [PendingNotification], feed: String, sender: String, on c: PostgresConnection) async throws {
        let ordered = pending.enumerated().sorted { ($0.element.tenantID, $0.offset) < ($1.element.tenantID, $1.offset) }.map(\.element)
        for notification in ordered {
            try await enterTenant(notification.tenantID, as: sender, on: c)
            let principal = Principal(actor: Actor(tenantID: notification.tenantID, userID: sender), isAdmin: false, isManager: false)
            try await notifyOnce(
                notification.data, feed: feed, key: notification.key, recipient: notification.recipient, principal: principal, on: c)
        }
    }

    /// Moves an interaction's follow-up row as the plan says. Every write is conditional on the row's last applied
    /// sequence being older than the change's, so a repeated or older event changes nothing.
    func applyFollowUp(_ plan: FollowUpPlan, of change: InteractionChange, on c: PostgresConnection) async throws {
        let key: [PostgresValue] = [.text(change.tenantID), .uuid(change.interactionID), .int(change.sequence)]
        // Whom the title may name, and the title without the subject: an erasure of one of them finds the row.
        let contacts: [PostgresValue] = [
            .array((change.facts?.contactIDs ?? []).map(PostgresValue.uuid), elementType: .uuid),
            .text(change.facts.map(FeedNotificationRules.redactedFollowUpTitle) ?? ""),
        ]
        switch plan {
        case .unchanged:
            return
        case .set(let owner, let due?, let done, let deleted, let title):
            // A new time or a new owner re-arms a sent follow-up (the new owner has not been told; the new time is news);
            // anything else (the subject, done and undone, a delete and restore) keeps what was sent.
            try await c.query(
                """
                INSERT INTO collaboration.follow_ups AS f (tenant_id, interaction_id, last_sequence, owner_id, due_at, done, deleted, title,
                    contact_ids, redacted_title, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
                ON CONFLICT (tenant_id, interaction_id) DO UPDATE SET
                    sent_at = CASE WHEN f.due_at IS DISTINCT FROM EXCLUDED.due_at OR f.owner_id <> EXCLUDED.owner_id THEN NULL ELSE f.sent_at END,
                    notification_id = CASE WHEN f.due_at IS DISTINCT FROM EXCLUDED.due_at OR f.owner_id <> EXCLUDED.owner_id THEN NULL
                        ELSE f.notification_id END,
                    owner_id = EXCLUDED.owner_id, due_at = EXCLUDED.due_at, done = EXCLUDED.done, deleted = EXCLUDED.deleted,
                    title = EXCLUDED.title, contact_ids = EXCLUDED.contact_ids, redacted_title = EXCLUDED.redacted_title,
                    last_sequence = EXCLUDED.last_sequence, updated_at = now()
                WHERE f.last_sequence < EXCLUDED.last_sequence
                """, key + [.text(owner), .timestamp(due), .bool(done), .bool(deleted), .text(title)] + contacts)
        case .set(let owner, .none, let done, let deleted, let title):
            // No follow-up (cleared, or never set): an existing row stops being pending; none is made.
            try await c.query(
                """
                UPDATE collaboration.follow_ups SET due_at = NULL, owner_id = $4, done = $5, deleted = $6, title = $7, contact_ids = $8,
                    redacted_title = $9, last_sequence = $3, updated_at = now()
                WHERE tenant_id = $1 AND interaction_id = $2 AND last_sequence < $3
                """, key + [.text(owner), .bool(done), .bool(deleted), .text(title)] + contacts)
        case .setDeleted(let deleted):
            try await c.query(
                """
                UPDATE collaboration.follow_ups SET deleted = $4, last_sequence = $3, updated_at = now()
                WHERE tenant_id = $1 AND interaction_id = $2 AND last_sequence < $3
                """, key + [.bool(deleted)])
        case .unknown:
            try await c.query(
                """
                UPDATE collaboration.follow_ups SET due_at = NULL, last_sequence = $3, updated_at = now()
                WHERE tenant_id = $1 AND interaction_id = $2 AND last_sequence < $3
                """, key)
        }
    }

    /// Applies analytics' alert firings inside the feed consumer's batch transaction: each notifies the alert's creator
    /// once (keyed by the firing's id), unless it is older than `maxAge`.
    /// - Parameters:
    ///   - notices: the firings, in feed order.
    ///   - maxAge: how old a firing may be and still notify.
    ///   - c: the consumer's transaction.
    public func applyAlertNotices(_ notices: [AlertNotice], maxAge: Duration, on c: PostgresConnection) async throws {
        let now = Date()
        let pending = notices.filter { FeedNotificationRules.isTimely([$0.firedAt, $0.commitTime], now: now, maxAge: maxAge) }.map {
            PendingNotification(tenantID: $0.tenantID, key: $0.firingID, recipient: $0.ownerID, data: FeedNotificationRules.alertNotification($0))
        }
        try await notifyOnce(pending, feed: "analytics", sender: Self.analyticsFeedActor, on: c)
    }

    /// Sends up to `limit` due follow-ups of every tenant in one transaction, as the reminder worker does with meeting
    /// reminders: claimed `FOR UPDATE SKIP LOCKED` (replicas share the work and none is sent twice), each written as one
    /// FOLLOW_UP notification to its owner and marked sent in the same transaction. One due longer than `maxAge` ago, or
    /// whose owner muted FOLLOW_UP, is marked sent without a notification.
    /// - Returns: how many were claimed.
    func sendDueFollowUps(limit: Int, maxAge: Duration) async throws -> Int {
        try await pool.transaction(settings: ["app.reminder_worker": "on", "app.notification_sender": "on"]) { c in
            let due = try await c.query(
                """
                SELECT tenant_id, interaction_id, owner_id, title, body, contact_ids::text[] AS contact_ids, redacted_title,
                    due_at > now() - make_interval(secs => $2::float8) AS timely
                FROM collaboration.follow_ups
                WHERE sent_at IS NULL AND due_at IS NOT NULL AND NOT done AND NOT deleted AND due_at <= now()
                ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED
                """, [.int(Int64(limit)), .double(Double(maxAge.components.seconds))]
            ).rows
            // Tenant order, as for reminders: each tenant's counter lock is taken in the same order by every replica; due
            // order within a tenant, so its notifications are numbered in the order they fell due.
            let ordered = try due.enumerated().map { (try $0.element.string("tenant_id"), $0.offset, $0.element) }
                .sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.2)
            for row in ordered {
                let tenant = try row.string("tenant_id")
                let interaction = try row.uuid("interaction_id")
                let owner = try row.string("owner_id")
                try await c.query(
                    "SELECT set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true)", [.text(tenant), .text(Self.followUpActor)])
                var sent: PostgresValue = .null
                let muted = try await isMuted(.followUp, user: owner, tenantID: tenant, on: c)
                if try row.bool("timely"), !muted {
                    let principal = Principal(actor: Actor(tenantID: tenant, userID: Self.followUpActor), isAdmin: false, isManager: false)
                    let notification = try await appendNotification(
                        NotificationData(
                            kind: .followUp, audience: .users([owner]), title: try row.string("title"), body: try row.string("body"),
                            resourceType: Self.interactionType, resourceID: interaction.lowercaseText,
                            contactIDs: try row.strings("contact_ids").compactMap { UUID(text: $0) }, redactedTitle: try row.string("redacted_title")),
                        principal: principal, on: c)
                    sent = .int(notification.id)
                }
                try await c.query(
                    "UPDATE collaboration.follow_ups SET sent_at = now(), notification_id = $3 WHERE tenant_id = $1 AND interaction_id = $2",
                    [.text(tenant), .uuid(interaction), sent])
            }
            return due.count
        }
    }

    /// Forgets the feed notification keys older than `age` across tenants (an event that old notifies nobody anyway).
    /// - Returns: how many were deleted.
    @discardableResult
    func purgeFeedNotificationKeys(olderThan age: Duration) async throws -> Int {
        try await pool.transaction(settings: ["app.reminder_worker": "on"]) { c in
            try await c.query(
                "DELETE FROM collaboration.feed_notifications WHERE created_at < now() - make_interval(secs => $1::float8)",
                [.double(Double(age.components.seconds))]
            ).affectedRows
        }
    }
}
