import FoundationEssentials
import Logging
import ServiceLifecycle
import SwitchboardPostgres
import SwitchboardServiceKit

/// Sends scheduled notifications when they fall due: every `interval` it claims due, unsent meeting reminders and
/// follow-ups of every tenant (`FOR UPDATE SKIP LOCKED`, so replicas share the work and none is sent twice), and for
/// each writes its notification (REMINDER to the meeting's attendee users, FOLLOW_UP to the interaction's owner) and
/// marks it sent, in one transaction. A reminder of an occurrence that has started, or of a cancelled meeting, and a
/// follow-up due longer ago than `notifyMaxAge` or muted by its owner, are marked sent without a notification.
public struct ReminderService: Service {
    let store: PostgresCollaborationStore
    let interval: Duration
    let notifyMaxAge: Duration
    let logger: Logger
    /// Reminders (or follow-ups) one transaction sends at most.
    static let batch = 100
    /// Scans between two purges of old feed notification keys.
    static let purgeEvery = 600

    /// Creates the service.
    /// - Parameters:
    ///   - store: the store that writes notifications.
    ///   - interval: the time between scans.
    ///   - notifyMaxAge: how long after its due time a follow-up is still worth a notification (the age limit of every
    ///     notification from a feed, so also how long the keys of call and alert notifications are kept).
    ///   - logger: where failures go.
    public init(store: PostgresCollaborationStore, interval: Duration = .seconds(1), notifyMaxAge: Duration = .seconds(72 * 3600), logger: Logger) {
        self.store = store
        self.interval = interval
        self.notifyMaxAge = notifyMaxAge
        self.logger = logger
    }

    /// Scans until shutdown; a failed scan is logged and retried at the next tick.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var scans = 0
            while !Task.isCancelled {
                do {
                    while try await store.sendDueReminders(limit: Self.batch) == Self.batch {}
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("sending meeting reminders failed", metadata: ["error": "\(error)"])
                }
                do {
                    while try await store.sendDueFollowUps(limit: Self.batch, maxAge: notifyMaxAge) == Self.batch {}
                    // A key outlives the age limit by a day: a redelivered event older than that notifies nobody anyway.
                    if scans % Self.purgeEvery == 0 { try await store.purgeFeedNotificationKeys(olderThan: notifyMaxAge + .seconds(86_400)) }
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("sending follow-ups failed", metadata: ["error": "\(error)"])
                }
                scans += 1
                try? await Task.sleep(for: interval)
            }
        }
    }
}

extension PostgresCollaborationStore {
    /// Who reminders are sent as.
    static let reminderActor = "reminders"

    /// Sends up to `limit` due reminders in one transaction.
    /// - Returns: how many were claimed.
    func sendDueReminders(limit: Int) async throws -> Int {
        try await pool.transaction(settings: ["app.reminder_worker": "on"]) { c in
            let due = try await c.query(
                """
                SELECT tenant_id, meeting_id, occurrence, minutes, due_at + make_interval(mins => minutes) > now() AS upcoming
                FROM collaboration.meeting_reminders
                WHERE sent_at IS NULL AND due_at <= now() ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED
                """, [.int(Int64(limit))]
            ).rows
            // Each tenant's notifications take that tenant's counter lock until commit: taken in tenant order, two
            // replicas sending reminders of the same tenants never wait for each other in a cycle.
            let ordered = try due.map { (try $0.string("tenant_id"), $0) }.sorted { $0.0 < $1.0 }.map(\.1)
            for row in ordered {
                let tenant = try row.string("tenant_id")
                let meetingID = try row.uuid("meeting_id")
                let minutes = try row.int("minutes")
                let occurrence = try row.int("occurrence")
                // The notification's sender is the reminder worker: its read policy admits the row it returns.
                try await c.query(
                    "SELECT set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true)", [.text(tenant), .text(Self.reminderActor)])
                let principal = Principal(actor: Actor(tenantID: tenant, userID: Self.reminderActor), isAdmin: true, isManager: true)
                if let meeting = try await c.query(
                    """
                    SELECT \(Self.meetingColumns) FROM collaboration.meetings m
                    WHERE m.tenant_id = $1 AND m.id = $2 AND m.deleted_at IS NULL
                    """, [.text(tenant), .uuid(meetingID)]
                ).first.map(Self.meeting), try row.bool("upcoming") {
                    _ = try await appendNotification(
                        NotificationData(
                            kind: .reminder, audience: .users(meeting.data.attendeeUserIDs),
                            title: "\(meeting.data.title) starts in \(minutes) minutes", resourceType: Self.meetingType,
                            resourceID: meetingID.lowercaseText), principal: principal, on: c)
                }
                try await c.query(
                    """
                    UPDATE collaboration.meeting_reminders SET sent_at = now()
                    WHERE tenant_id = $1 AND meeting_id = $2 AND occurrence = $3 AND minutes = $4
                    """, [.text(tenant), .uuid(meetingID), .int(occurrence), .int(minutes)])
            }
            return due.count
        }
    }
}
