import FoundationEssentials
import Logging
import ServiceLifecycle
import SwitchboardPostgres
import SwitchboardServiceKit

/// Turns active campaigns' pending recipients into sends, across tenants (the `app.dispatcher` policies admit reading
/// and updating campaigns and recipients; each send is inserted within its tenant).
///
/// Exactly once per recipient: recipients are claimed `FOR UPDATE SKIP LOCKED` in a transaction that makes each one's
/// send (or records why it was skipped) and marks it, so a restart or another replica sees it pending or done, never
/// half; `sends_one_per_recipient` makes a second send for a recipient impossible even so. Skips: no address of the
/// channel's kind in the directory, a suppressed address, no or withdrawn consent, a contact who asked not to be
/// contacted (their preferences). A paused or cancelled campaign is
/// not expanded; its scheduled sends wait (the dispatcher skips them) or are cancelled. A campaign becomes COMPLETED
/// only when every send it made has settled, so pause and cancel work until the last message has gone.
public struct CampaignRunner: Service {
    let pool: PostgresPool
    let suppressionSecret: [UInt8]?
    let maxAttempts: Int
    let pollInterval: Duration
    let logger: Logger
    /// A send's published form (its CREATED event).
    let publish: @Sendable (SendRecord) throws -> String
    /// Recipients per transaction.
    static let batchSize = 100

    /// Creates the runner.
    public init(
        pool: PostgresPool, suppressionSecret: [UInt8]?, maxAttempts: Int, pollInterval: Duration = .milliseconds(200), logger: Logger,
        publish: @escaping @Sendable (SendRecord) throws -> String = CommunicationService.publishSend
    ) {
        self.pool = pool
        self.publish = publish
        self.suppressionSecret = suppressionSecret
        self.maxAttempts = maxAttempts
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// Runs until graceful shutdown or cancellation.
    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            var expanded = 0
            do {
                expanded = try await expandOnce()
            } catch {
                logger.warning("campaign expansion failed", metadata: ["error": "\(error)"])
            }
            if expanded == 0 { try? await Task.sleep(for: pollInterval) }
        }
    }

    /// One batch: claims pending recipients of active, started campaigns and makes their sends.
    /// - Returns: recipients handled.
    @discardableResult
    public func expandOnce() async throws -> Int {
        try await pool.transaction(settings: ["app.dispatcher": "on"]) { c in
            let claimed = try await c.query(
                """
                SELECT r.tenant_id, r.campaign_id, r.contact_id, k.channel, k.purpose, k.template_id, k.template_version,
                    k.template_values::text AS template_values, k.created_by
                FROM communication.campaign_recipients r
                JOIN communication.campaigns k ON k.tenant_id = r.tenant_id AND k.id = r.campaign_id
                WHERE r.status = 1 AND k.status = 1 AND k.start_at <= now()
                LIMIT $1
                FOR UPDATE OF r SKIP LOCKED
                """, [.int(Int64(Self.batchSize))]
            ).rows
            var templates: [String: TemplateRecord] = [:]
            for row in claimed {
                let tenant = try row.string("tenant_id")
                let (campaign, contact) = (try row.uuid("campaign_id"), try row.uuid("contact_id"))
                let channel = Channel(rawValue: Int(try row.int("channel"))) ?? .email
                let purpose = try row.string("purpose")
                try await c.query("SELECT set_config('app.tenant_id', $1, true) AS tenant", [.text(tenant)])
                func skip(_ reason: String) async throws {
                    try await c.query(
                        "UPDATE communication.campaign_recipients SET status = 3, reason = $4 WHERE tenant_id = $1 AND campaign_id = $2 AND contact_id = $3",
                        [.text(tenant), .uuid(campaign), .uuid(contact), .text(reason)])
                }
                let kind = AddressRules.kind(of: channel)
                guard
                    let address = try await c.query(
                        """
                        SELECT address FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2 AND kind = $3
                        ORDER BY rank, address LIMIT 1
                        """,
                        [.text(tenant), .uuid(contact), .text(kind)]
                    ).first?.string("address")
                else {
                    try await skip("no \(kind) address in the directory")
                    continue
                }
                if let secret = suppressionSecret {
                    let hit = try await c.query(
                        "SELECT 1 AS hit FROM communication.suppressions WHERE tenant_id = $1 AND kind = $2 AND address_hash = $3",
                        [.text(tenant), .text(kind), .text(AddressRules.suppressionHash(address, kind: kind, secret: secret))]
                    ).first
                    if hit != nil {
                        try await skip("the address is on the suppression list")
                        continue
                    }
                }
                // One round trip for what decides the recipient: the latest consent, do-not-contact, the template fields
                // (a campaign of thousands makes these reads per recipient inside the batch's transaction).
                let about = try await c.query(
                    """
                    SELECT
                        (SELECT status FROM communication.consent_ledger WHERE tenant_id = $1 AND contact_id = $2 AND channel = $3
                           AND purpose IN ($4, 'all') ORDER BY stated_at DESC, status DESC, sequence DESC LIMIT 1) AS consent,
                        coalesce((SELECT do_not_contact FROM communication.preferences WHERE tenant_id = $1 AND contact_id = $2), false)
                            AS do_not_contact,
                        coalesce(f.names, '{}') AS names, coalesce(f.field_values, '{}') AS field_values
                    FROM (SELECT 1) one
                    LEFT JOIN communication.contact_fields f ON f.tenant_id = $1 AND f.contact_id = $2
                    """, [.text(tenant), .uuid(contact), .int(Int64(channel.rawValue)), .text(purpose)]
                ).first!
                let consent = try about.optionalInt("consent")
                guard consent == 1 else {
                    try await skip(consent == nil ? "no consent" : "consent withdrawn")
                    continue
                }
                if try about.bool("do_not_contact") {
                    try await skip("the contact asked not to be contacted")
                    continue
                }
                let templateID = try row.uuid("template_id"), version = Int(try row.int("template_version"))
                let key = "\(tenant)/\(templateID)/\(version)"
                if templates[key] == nil {
                    let t = try await c.query(
                        "SELECT \(PostgresTemplateStore.columns) FROM communication.templates t WHERE t.tenant_id = $1 AND t.id = $2 AND t.version = $3",
                        [.text(tenant), .uuid(templateID), .int(Int64(version))]
                    ).first
                    // Checked once per version and batch (an HTML version today's rules refuse renders for nobody).
                    templates[key] = try t.map(PostgresTemplateStore.record).flatMap { (try? TemplateRules.checkRenderable($0)) != nil ? $0 : nil }
                }
                let fields = try PostgresTemplateStore.contactFields(about)
                let values = TemplateRules.values(PostgresCampaignStore.values(fromJSON: try row.string("template_values")), contact: fields)
                guard let template = templates[key], let rendering = try? TemplateRules.render(template, values: values) else {
                    try await skip("the template could not be rendered")
                    continue
                }
                guard rendering.complete else {
                    try await skip("the contact's record has no \(rendering.missing.prefix(3).joined(separator: ", ")), which the template uses")
                    continue
                }
                let id = UUID.random()
                let payload = try ProviderWire.payload(
                    id: id, channel: channel, to: address, subject: rendering.subject, body: rendering.body, html: template.data.html)
                let inserted = try await c.query(
                    """
                    INSERT INTO communication.sends (tenant_id, id, contact_id, channel, purpose, to_address, subject, body, template_id,
                        template_version, payload, send_at, max_attempts, next_attempt_at, created_by, updated_by, campaign_id, body_format)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now(), $12, now(), $13, $13, $14, $15)
                    ON CONFLICT (tenant_id, campaign_id, contact_id) WHERE campaign_id IS NOT NULL DO NOTHING
                    RETURNING id
                    """,
                    [
                        .text(tenant), .uuid(id), .uuid(contact), .int(Int64(channel.rawValue)), .text(purpose), .text(address),
                        .text(rendering.subject), .text(rendering.body), .uuid(templateID), .int(Int64(version)), .bytes(payload),
                        .int(Int64(maxAttempts)), .text(try row.string("created_by")), .uuid(campaign), .int(template.data.html ? 2 : 1),
                    ]
                ).first
                let sendID = try inserted?.uuid("id")
                // Published as a single send's is: the feed's readers (analytics) see every message, a campaign's too.
                if let sendID {
                    try await SendChanges.record(
                        id: sendID, tenantID: tenant, changedFields: [], actorID: "campaign-runner", publish: publish, kind: .created, on: c)
                }
                try await c.query(
                    """
                    UPDATE communication.campaign_recipients SET status = 2,
                        send_id = coalesce($4, (SELECT id FROM communication.sends WHERE tenant_id = $1 AND campaign_id = $2 AND contact_id = $3))
                    WHERE tenant_id = $1 AND campaign_id = $2 AND contact_id = $3
                    """, [.text(tenant), .uuid(campaign), .uuid(contact), sendID.map(PostgresValue.uuid) ?? .null])
            }
            // An active campaign is complete when no recipient is pending and none of its sends is still scheduled or with
            // a dispatcher: until then it can be paused or cancelled (queueing takes a second; sending, with retries, may
            // take hours).
            try await c.query(
                """
                UPDATE communication.campaigns k SET status = 4, updated_at = now(), updated_by = 'campaign-runner'
                WHERE k.status = 1 AND k.start_at <= now()
                  AND NOT EXISTS (SELECT 1 FROM communication.campaign_recipients r WHERE r.tenant_id = k.tenant_id AND r.campaign_id = k.id AND r.status = 1)
                  AND NOT EXISTS (
                      SELECT 1 FROM communication.sends s WHERE s.tenant_id = k.tenant_id AND s.campaign_id = k.id AND s.status IN (1, 2))
                """)
            return claimed.count
        }
    }
}
