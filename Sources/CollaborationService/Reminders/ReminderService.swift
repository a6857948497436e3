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

    /// Sends the due reminders of up to `limit` occurrences in one transaction. The due reminders of one occurrence make
    /// one notification (a meeting booked or moved inside several lead times would otherwise remind every attendee once
    /// per lead time at once), saying how far away the start really is. An occurrence is claimed whole, under a lock of
    /// its own, so two replicas (or two batches) never split its lead times between them; a reminder due before the
    /// occurrence was last reminded (a lead time added after a shorter one was sent) is marked sent without a
    /// notification.
    /// - Returns: how many occurrences were claimed.
    func sendDueReminders(limit: Int) async throws -> Int {
        try await pool.transaction(settings: ["app.reminder_worker": "on"]) { c in
            let claimed = try await c.query(
                """
                SELECT tenant_id, meeting_id, occurrence FROM (
                    SELECT tenant_id, meeting_id, occurrence, min(due_at) AS first_due FROM collaboration.meeting_reminders
                    WHERE sent_at IS NULL AND due_at <= now() GROUP BY tenant_id, meeting_id, occurrence ORDER BY first_due LIMIT $1
                ) due
                WHERE pg_try_advisory_xact_lock(hashtextextended(
                    'collaboration.reminder/' || tenant_id || '/' || meeting_id || '/' || occurrence, 0))
                """, [.int(Int64(limit))]
            ).rows
            guard !claimed.isEmpty else { return 0 }
            // Read again under the locks: another replica may have sent some in between.
            let due = try await c.query(
                """
                SELECT r.tenant_id, r.meeting_id, r.occurrence, r.minutes,
                    ceil(extract(epoch FROM r.due_at + make_interval(mins => r.minutes) - now()) / 60)::int8 AS minutes_left,
                    EXISTS (SELECT 1 FROM collaboration.meeting_reminders s
                        WHERE s.tenant_id = r.tenant_id AND s.meeting_id = r.meeting_id AND s.occurrence = r.occurrence
                          AND s.sent_at >= r.due_at) AS superseded
                FROM collaboration.meeting_reminders r
                JOIN unnest($1::text[], $2::uuid[], $3::int8[]) AS o (tenant_id, meeting_id, occurrence)
                    ON r.tenant_id = o.tenant_id AND r.meeting_id = o.meeting_id AND r.occurrence = o.occurrence
                WHERE r.sent_at IS NULL AND r.due_at <= now() FOR UPDATE OF r
                """,
                [
                    .array(try claimed.map { .text(try $0.string("tenant_id")) }, elementType: .text),
                    .array(try claimed.map { .uuid(try $0.uuid("meeting_id")) }, elementType: .uuid),
                    .array(try claimed.map { .int(try $0.int("occurrence")) }, elementType: .int),
                ]
            ).rows
            // Each tenant's notifications take that tenant's counter lock until commit: taken in tenant order, two
            // replicas sending reminders of the same tenants never wait for each other in a cycle.
            struct Occurrence: Hashable {
                let tenant: String, meeting: UUID, occurrence: Int64
            }
            var groups: [Occurrence: (minutesLeft: Int64, notify: Bool, leadTimes: [Int64])] = [:]
            for row in due {
                let key = Occurrence(tenant: try row.string("tenant_id"), meeting: try row.uuid("meeting_id"), occurrence: try row.int("occurrence"))
                let superseded = try row.bool("superseded"), minutesLeft = try row.int("minutes_left")
                let notify = !superseded && minutesLeft > 0
                var group = groups[key] ?? (minutesLeft: minutesLeft, notify: false, leadTimes: [])
                group.notify = group.notify || notify
                group.leadTimes.append(try row.int("minutes"))
                groups[key] = group
            }
            for (key, group) in groups.sorted(by: { ($0.key.tenant, $0.key.meeting.lowercaseText) < ($1.key.tenant, $1.key.meeting.lowercaseText) }) {
                // The notification's sender is the reminder worker: its read policy admits the row it returns.
                try await c.query(
                    "SELECT set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true)",
                    [.text(key.tenant), .text(Self.reminderActor)])
                let principal = Principal(actor: Actor(tenantID: key.tenant, userID: Self.reminderActor), isAdmin: true, isManager: true)
                if group.notify,
                    let meeting = try await c.query(
                        """
                        SELECT \(Self.meetingColumns) FROM collaboration.meetings m
                        WHERE m.tenant_id = $1 AND m.id = $2 AND m.deleted_at IS NULL
                        """, [.text(key.tenant), .uuid(key.meeting)]
                    ).first.map(Self.meeting)
                {
                    _ = try await appendNotification(
                        NotificationData(
                            kind: .reminder, audience: .users(meeting.data.attendeeUserIDs),
                            title: Self.reminderTitle(meeting.data.title, minutesLeft: Int(group.minutesLeft)), resourceType: Self.meetingType,
                            resourceID: key.meeting.lowercaseText), principal: principal, on: c)
                }
                try await c.query(
                    """
                    UPDATE collaboration.meeting_reminders SET sent_at = now()
                    WHERE tenant_id = $1 AND meeting_id = $2 AND occurrence = $3 AND minutes = ANY($4::int8[])
                    """,
                    [
                        .text(key.tenant), .uuid(key.meeting), .int(key.occurrence),
                        .array(group.leadTimes.map { .int($0) }, elementType: .int),
                    ])
            }
            return claimed.count
        }
    }

    /// "<title> starts in N minutes", the title cut (at a character) so the whole stays within a notification's
    /// title limit.
    static func reminderTitle(_ title: String, minutesLeft: Int) -> String {
        let suffix = minutesLeft == 1 ? " starts in 1 minute" : " starts in \(minutesLeft) minutes"
        let room = NotificationRules.maxTitleBytes - suffix.utf8.count
        var cut = ""
        for character in title {
            guard cut.utf8.count + character.utf8.count <= room else { break }
            cut.append(character)
        }
        return cut + suffix
    }
}
