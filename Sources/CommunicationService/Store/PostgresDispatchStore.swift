import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// A send a dispatcher claimed: what the provider call needs, and the fencing values its result is recorded with.
public struct ClaimedSend: Sendable, Hashable {
    /// The tenant (never sent to the provider; used to check consent and to record the result).
    public var tenantID: String
    /// The send, and the provider's idempotency key.
    public var id: UUID
    /// The recipient.
    public var contactID: UUID
    /// The channel.
    public var channel: Channel
    /// The purpose consent is checked for.
    public var purpose: String
    /// The address (checked against the suppression list).
    public var toAddress: String
    /// The exact bytes to post.
    public var payload: [UInt8]
    /// This attempt's number (1 for the first); with the lease owner it fences the result.
    public var attempt: Int
    /// Attempts allowed.
    public var maxAttempts: Int
    /// The send may go out inside the contact's quiet hours.
    public var ignoreQuietHours = false
}

/// How a dispatch attempt ended, as recorded.
public enum DispatchOutcome: Sendable, Hashable {
    /// The provider accepted the message.
    case sent(providerMessageID: String)
    /// Refused before any provider call (consent).
    case refused(reason: String)
    /// The provider refused it for good.
    case failed(reason: String)
    /// A retryable failure: try again after `delaySeconds` (from the database's now), unless attempts are exhausted.
    case retry(reason: String, delaySeconds: Double)
}

/// The dispatcher's side of `communication.sends`: claims across tenants (the `app.dispatcher` RLS policies admit
/// SELECT and UPDATE only), consent reads within the send's tenant, results fenced by lease owner and attempt.
public struct PostgresDispatchStore: Sendable {
    let pool: PostgresPool
    /// This process's dispatcher id: the lease owner.
    let owner: UUID
    /// The secret of the suppression hashes; nil when the service keeps no suppression list.
    let suppressionSecret: [UInt8]?
    /// The change feed the logged interaction is recorded in.
    let feed: ChangeFeed
    /// The published form of the logged interaction.
    let publish: @Sendable (InteractionRecord) throws -> (tenant: String, service: String?)
    /// The published form of a send, for its progress changes.
    let publishSend: @Sendable (SendRecord) throws -> String

    /// Creates the store.
    /// - Parameters:
    ///   - pool: the service's pool.
    ///   - owner: the lease owner id of this dispatcher.
    ///   - suppressionSecret: the secret of the suppression hashes, if the service keeps the list.
    ///   - publish: the change-event payloads of the interaction a SENT send logs (``CommunicationService/publishInteraction``).
    ///   - publishSend: the change-event payload of a send (``CommunicationService/publishSend``).
    public init(
        pool: PostgresPool, owner: UUID, suppressionSecret: [UInt8]? = nil,
        publish: @escaping @Sendable (InteractionRecord) throws -> (tenant: String, service: String?) = CommunicationService.publishInteraction,
        publishSend: @escaping @Sendable (SendRecord) throws -> String = CommunicationService.publishSend
    ) {
        self.publishSend = publishSend
        self.pool = pool
        self.owner = owner
        self.suppressionSecret = suppressionSecret
        self.feed = ChangeFeed(schema: CommunicationService.defaults.name)
        self.publish = publish
    }

    static let dispatcher = ["app.dispatcher": "on"]

    /// Fails sends whose last lease expired with no attempts left (their dispatcher died mid-call: the outcome of that
    /// call is unknown, and the provider deduplicates by idempotency key if it did arrive).
    /// - Returns: how many were failed.
    @discardableResult
    public func failExhausted() async throws -> Int {
        try await pool.transaction(settings: Self.dispatcher) { c in
            let failed = try await c.query(
                """
                UPDATE communication.sends SET status = 4, lease_owner = NULL, lease_until = NULL, version = version + 1, updated_at = now(),
                    updated_by = 'dispatcher',
                    last_error = 'gave up after ' || attempts || ' attempts; the last one''s outcome is unknown (its dispatcher stopped)'
                WHERE status = 2 AND lease_until < now() AND attempts >= max_attempts
                RETURNING tenant_id, id
                """
            ).rows.map { (tenant: try $0.string("tenant_id"), id: try $0.uuid("id")) }
            for send in failed {
                try await SendChanges.record(
                    id: send.id, tenantID: send.tenant, changedFields: ["status", "last_error"], actorID: "dispatcher", publish: publishSend, on: c)
            }
            return failed.count
        }
    }

    /// Claims up to `limit` due sends with attempts left: SCHEDULED ones whose time came, and SENDING ones whose
    /// lease expired. `FOR UPDATE SKIP LOCKED` lets replicas claim side by side without waiting or claiming twice.
    public func claim(limit: Int, leaseSeconds: Int) async throws -> [ClaimedSend] {
        try await pool.query(
            settings: Self.dispatcher,
            """
            UPDATE communication.sends s SET status = 2, attempts = s.attempts + 1, lease_owner = $1,
                lease_until = now() + $2::int8 * interval '1 second', version = s.version + 1, updated_at = now(), updated_by = 'dispatcher'
            FROM (
                SELECT tenant_id, id FROM communication.sends
                WHERE status IN (1, 2) AND next_attempt_at <= now() AND (status = 1 OR lease_until < now()) AND attempts < max_attempts
                  -- A paused or cancelled campaign's sends wait.
                  AND (campaign_id IS NULL OR NOT EXISTS (
                      SELECT 1 FROM communication.campaigns k WHERE k.tenant_id = sends.tenant_id AND k.id = sends.campaign_id AND k.status IN (2, 3)))
                ORDER BY next_attempt_at
                LIMIT $3
                FOR UPDATE SKIP LOCKED
            ) due
            WHERE s.tenant_id = due.tenant_id AND s.id = due.id
            RETURNING s.tenant_id, s.id, s.contact_id, s.channel, s.purpose, s.to_address, s.payload, s.attempts, s.max_attempts, s.ignore_quiet_hours
            """, [.uuid(owner), .int(Int64(leaseSeconds)), .int(Int64(limit))]
        ).rows.map { row in
            ClaimedSend(
                tenantID: try row.string("tenant_id"), id: try row.uuid("id"), contactID: try row.uuid("contact_id"),
                channel: Channel(rawValue: Int(try row.int("channel"))) ?? .email, purpose: try row.string("purpose"),
                toAddress: try row.string("to_address"), payload: try row.bytes("payload"),
                attempt: Int(try row.int("attempts")), maxAttempts: Int(try row.int("max_attempts")),
                ignoreQuietHours: try row.bool("ignore_quiet_hours"))
        }
    }

    /// What the dispatcher does with a claimed send.
    public enum Verdict: Sendable, Hashable {
        /// Send it now.
        case send
        /// Refuse it, for this reason.
        case refuse(String)
        /// Hold it: the contact's quiet hours are on (``holdForQuietHours(_:)``).
        case hold
    }

    /// Whether this send may go out now, read in the send's tenant at dispatch time: refused when its address is
    /// suppressed (an erased person's), consent is missing or withdrawn, or the contact asked not to be contacted;
    /// held during the contact's quiet hours unless it asked to ignore them. Consent and preferences are read in one statement: the dispatcher makes
    /// this check for every send, each read taking a pooled connection.
    public func verdict(for send: ClaimedSend) async throws -> Verdict {
        if let secret = suppressionSecret {
            let kind = AddressRules.kind(of: send.channel)
            let suppressed = try await pool.query(
                settings: ["app.tenant_id": send.tenantID],
                "SELECT 1 AS hit FROM communication.suppressions WHERE tenant_id = $1 AND kind = $2 AND address_hash = $3",
                [.text(send.tenantID), .text(kind), .text(AddressRules.suppressionHash(send.toAddress, kind: kind, secret: secret))]
            ).first
            if suppressed != nil { return .refuse("the address is on the suppression list") }
        }
        let row = try await pool.query(
            settings: ["app.tenant_id": send.tenantID],
            """
            SELECT
                (SELECT status FROM communication.consent_ledger
                 WHERE tenant_id = $1 AND contact_id = $2 AND channel = $3 AND purpose IN ($4, 'all')
                 ORDER BY stated_at DESC, status DESC, sequence DESC LIMIT 1) AS consent,
                coalesce(p.do_not_contact, false) AS do_not_contact,
                communication.quiet_until(p.time_zone, p.quiet_start, p.quiet_end, now()) IS NOT NULL AS quiet
            FROM (SELECT 1) one
            LEFT JOIN communication.preferences p ON p.tenant_id = $1 AND p.contact_id = $2
            """, [.text(send.tenantID), .uuid(send.contactID), .int(Int64(send.channel.rawValue)), .text(send.purpose)]
        ).first!
        switch try row.optionalInt("consent") {
        case 1: break
        case nil: return .refuse("no consent when the send was due")
        default: return .refuse("consent was withdrawn before the send was due")
        }
        if try row.bool("do_not_contact") { return .refuse("the contact asked not to be contacted") }
        return try row.bool("quiet") && !send.ignoreQuietHours ? .hold : .send
    }

    /// Puts a claimed send back to SCHEDULED until the contact's quiet hours end, if the database's now is inside them
    /// (in the contact's time zone). The attempt the claim counted is given back: a hold is not a failure.
    /// - Returns: whether the send was held.
    public func holdForQuietHours(_ send: ClaimedSend) async throws -> Bool {
        try await pool.transaction(settings: Self.dispatcher) { c in
            // The preferences are read in the send's tenant (their row-level security knows no dispatcher).
            try await c.query("SELECT set_config('app.tenant_id', $1, true) AS tenant", [.text(send.tenantID)])
            guard
                try await c.query(
                    """
                    UPDATE communication.sends s SET status = 1, attempts = s.attempts - 1, next_attempt_at = q.until,
                        last_error = 'held by the contact''s quiet hours until '
                            || to_char(q.until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                        lease_owner = NULL, lease_until = NULL, version = s.version + 1, updated_at = now(), updated_by = 'dispatcher'
                    FROM (
                        SELECT communication.quiet_until(p.time_zone, p.quiet_start, p.quiet_end, now()) AS until
                        FROM communication.preferences p WHERE p.tenant_id = $1 AND p.contact_id = $5
                    ) q
                    WHERE s.tenant_id = $1 AND s.id = $2 AND s.status = 2 AND s.lease_owner = $3 AND s.attempts = $4 AND q.until IS NOT NULL
                    RETURNING s.id
                    """, [.text(send.tenantID), .uuid(send.id), .uuid(owner), .int(Int64(send.attempt)), .uuid(send.contactID)]
                ).rows.count == 1
            else { return false }
            try await SendChanges.record(
                id: send.id, tenantID: send.tenantID, changedFields: ["status", "attempts", "last_error"], actorID: "dispatcher",
                publish: publishSend, on: c)
            return true
        }
    }

    /// Records an attempt's outcome, if this dispatcher still holds the send at this attempt (a dispatcher whose lease
    /// expired and whose send was claimed again records nothing).
    /// - Returns: whether the outcome was recorded.
    @discardableResult
    public func record(_ outcome: DispatchOutcome, for send: ClaimedSend) async throws -> Bool {
        let fence = "tenant_id = $1 AND id = $2 AND status = 2 AND lease_owner = $3 AND attempts = $4"
        let base: [PostgresValue] = [.text(send.tenantID), .uuid(send.id), .uuid(owner), .int(Int64(send.attempt))]
        let common = "lease_owner = NULL, lease_until = NULL, version = version + 1, updated_at = now(), updated_by = 'dispatcher'"
        let sql: String
        var binds = base
        let changed: [String]
        switch outcome {
        case .sent:
            changed = ["status", "sent_at", "provider_message_id", "last_error"]
        case .refused, .failed:
            changed = ["status", "last_error"]
        case .retry:
            changed = ["status", "attempts", "last_error"]
        }
        switch outcome {
        case .sent(let messageID):
            sql = "UPDATE communication.sends SET status = 3, sent_at = now(), provider_message_id = $5, last_error = '', \(common) WHERE \(fence)"
            binds.append(.text(messageID))
        case .refused(let reason):
            sql = "UPDATE communication.sends SET status = 6, last_error = $5, \(common) WHERE \(fence)"
            binds.append(.text(reason))
        case .failed(let reason):
            sql = "UPDATE communication.sends SET status = 4, last_error = $5, \(common) WHERE \(fence)"
            binds.append(.text(reason))
        case .retry(let reason, let delay):
            // Out of attempts: failed, with the last reason. Otherwise scheduled again at the database's now + delay.
            sql = """
                UPDATE communication.sends SET
                    status = CASE WHEN attempts >= max_attempts THEN 4 ELSE 1 END,
                    last_error = CASE WHEN attempts >= max_attempts THEN 'gave up after ' || attempts || ' attempts: ' || $5 ELSE $5 END,
                    next_attempt_at = now() + $6::float8 * interval '1 second', \(common)
                WHERE \(fence)
                """
            binds += [.text(reason), .double(delay)]
        }
        return try await pool.transaction(settings: Self.dispatcher) { c in
            guard try await c.query(sql + " RETURNING id", binds).rows.count == 1 else { return false }
            try await SendChanges.record(
                id: send.id, tenantID: send.tenantID, changedFields: changed, actorID: "dispatcher", publish: publishSend, on: c)
            if case .sent = outcome { try await logInteraction(send, on: c) }
            return true
        }
    }

    /// Logs a SENT send as an outbound interaction (id = the send's id) in the recording's transaction, within the
    /// send's tenant, with its change event.
    private func logInteraction(_ send: ClaimedSend, on c: PostgresConnection) async throws {
        try await c.query("SELECT set_config('app.tenant_id', $1, true) AS tenant", [.text(send.tenantID)])
        guard
            let row = try await c.query(
                """
                INSERT INTO communication.interactions AS i (tenant_id, id, kind, direction, contact_ids, addresses, subject, body, occurred_at,
                    visibility, owner_id, template_id, template_version, created_at, created_by, updated_at, updated_by)
                SELECT tenant_id, id, CASE channel WHEN 1 THEN 1 WHEN 2 THEN 3 ELSE 2 END, 2, ARRAY[contact_id], ARRAY[to_address], subject, body,
                    now(), 1, created_by, template_id, template_version, now(), 'dispatcher', now(), 'dispatcher'
                FROM communication.sends WHERE tenant_id = $1 AND id = $2
                ON CONFLICT (tenant_id, id) DO NOTHING
                RETURNING \(PostgresInteractionStore.columns)
                """, [.text(send.tenantID), .uuid(send.id)]
            ).first
        else { return }
        let record = try PostgresInteractionStore.record(row)
        try await c.query(
            """
            INSERT INTO communication.interaction_contacts (tenant_id, contact_id, occurred_at, interaction_id)
            SELECT tenant_id, $2, occurred_at, id FROM communication.interactions WHERE tenant_id = $1 AND id = $3
            """, [.text(send.tenantID), .uuid(send.contactID), .uuid(send.id)])
        let payload = try publish(record)
        try await feed.record(
            ChangeRecord(
                resourceType: PostgresInteractionStore.interactionType, resourceID: send.id.lowercaseText, kind: .created,
                resourceJSON: payload.tenant, actorID: "dispatcher", relatedIDs: [send.id.lowercaseText], serviceResourceJSON: payload.service),
            tenantID: send.tenantID, on: c)
    }
}
