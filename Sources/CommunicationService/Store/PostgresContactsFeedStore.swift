import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// Applies the contacts feed inside the feed consumer's batch transaction (the cursor commits with the effects).
/// Each event sets its tenant first (`app.tenant_id`), so row-level security holds for every statement.
public struct PostgresContactsFeedStore: Sendable {
    /// The resource type of the erasure receipts published in the service's feed.
    static let receiptType = "switchboard.communication.v1.ErasureReceipt"

    /// The secret of the suppression hashes.
    let suppressionSecret: [UInt8]
    /// The receipt's payload (the contract's proto3 JSON), made by the handlers' mapping.
    let publishReceipt: @Sendable (ErasureReceiptData) throws -> String
    /// The published form of a send, for the cancellations and moves the feed makes.
    let publishSend: @Sendable (SendRecord) throws -> String

    /// Creates the store.
    public init(suppressionSecret: [UInt8]) {
        self.suppressionSecret = suppressionSecret
        self.publishReceipt = ContactsFeedMapping.receiptJSON
        self.publishSend = CommunicationService.publishSend
    }

    /// Applies events in order on `c`.
    public func apply(_ events: [ContactEvent], on c: PostgresConnection) async throws {
        for event in events {
            try await c.query("SELECT set_config('app.tenant_id', $1, true) AS tenant", [.text(event.tenantID)])
            let (tenant, contact) = (PostgresValue.text(event.tenantID), PostgresValue.uuid(event.contactID))
            switch event.kind {
            case .addresses(let emails, let phones):
                try await c.query("DELETE FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact])
                let rows =
                    emails.map { ("email", AddressRules.normalized($0, kind: "email")) }
                    + phones.map { ("phone", AddressRules.normalized($0, kind: "phone")) }
                let kept = rows.filter { !$0.1.isEmpty && $0.1.utf8.count <= SendRules.maxAddressBytes && !$0.1.utf8.contains(0) }
                if !kept.isEmpty {
                    try await c.query(
                        """
                        INSERT INTO communication.contact_addresses (tenant_id, kind, address, contact_id)
                        SELECT $1, k, a, $4 FROM unnest($2::text[], $3::text[]) AS t (k, a) ON CONFLICT DO NOTHING
                        """,
                        [
                            tenant, .array(kept.map { .text($0.0) }, elementType: .text), .array(kept.map { .text($0.1) }, elementType: .text),
                            contact,
                        ])
                }
            case .deleted:
                try await c.query("DELETE FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact])
                try await cancelPendingSends(tenant, contact, reason: "the contact was deleted", on: c)
            case .merged(let winner):
                try await merge(tenant, loser: event.contactID, winner: winner, on: c)
            case .erased(let request):
                try await erase(tenant, event.contactID, request: request, on: c)
            }
        }
    }

    private func cancelPendingSends(_ tenant: PostgresValue, _ contact: PostgresValue, reason: String, on c: PostgresConnection) async throws {
        // SCHEDULED only: a send a dispatcher holds is in flight; the dispatcher's consent check still applies.
        let cancelled = try await c.query(
            """
            UPDATE communication.sends SET status = 5, last_error = $3, version = version + 1, updated_at = now(), updated_by = 'contacts-feed'
            WHERE tenant_id = $1 AND contact_id = $2 AND status = 1
            RETURNING id
            """, [tenant, contact, .text(reason)]
        ).rows.map { try $0.uuid("id") }
        for id in cancelled {
            try await SendChanges.record(
                id: id, tenantID: tenantString(tenant), changedFields: ["status", "last_error"], actorID: "contacts-feed", publish: publishSend, on: c
            )
        }
    }

    /// Re-points the loser's interactions and pending sends to the winner, and merges consent: for every channel and
    /// purpose where the loser's latest entry withdraws and the winner's latest does not, a withdrawal is appended for
    /// the winner (the most restrictive wins; the ledger is only appended to). A grant of the loser is not copied: a
    /// grant the winner never gave is not assumed.
    private func merge(_ tenant: PostgresValue, loser: UUID, winner: UUID, on c: PostgresConnection) async throws {
        let (l, w) = (PostgresValue.uuid(loser), PostgresValue.uuid(winner))
        try await c.query(
            """
            UPDATE communication.interactions SET
                contact_ids = ARRAY(SELECT DISTINCT x FROM unnest(array_replace(contact_ids, $2, $3)) AS x),
                version = version + 1, updated_at = now(), updated_by = 'contacts-feed'
            WHERE tenant_id = $1 AND contact_ids @> ARRAY[$2::uuid]
            """, [tenant, l, w])
        try await c.query(
            """
            INSERT INTO communication.interaction_contacts (tenant_id, contact_id, occurred_at, interaction_id)
            SELECT tenant_id, $3, occurred_at, interaction_id FROM communication.interaction_contacts WHERE tenant_id = $1 AND contact_id = $2
            ON CONFLICT DO NOTHING
            """, [tenant, l, w])
        try await c.query("DELETE FROM communication.interaction_contacts WHERE tenant_id = $1 AND contact_id = $2", [tenant, l])
        let moved = try await c.query(
            """
            UPDATE communication.sends SET contact_id = $3, version = version + 1, updated_at = now(), updated_by = 'contacts-feed'
            WHERE tenant_id = $1 AND contact_id = $2 AND status = 1 RETURNING id
            """, [tenant, l, w]
        ).rows.map { try $0.uuid("id") }
        for id in moved {
            try await SendChanges.record(
                id: id, tenantID: tenantString(tenant), changedFields: ["contact_id"], actorID: "contacts-feed", publish: publishSend, on: c)
        }
        try await c.query(
            """
            WITH latest AS (
                SELECT DISTINCT ON (contact_id, channel, purpose) contact_id, channel, purpose, status, stated_at
                FROM communication.consent_ledger WHERE tenant_id = $1 AND contact_id IN ($2, $3)
                ORDER BY contact_id, channel, purpose, stated_at DESC, status DESC, sequence DESC
            )
            INSERT INTO communication.consent_ledger (tenant_id, id, contact_id, channel, purpose, status, legal_basis, source, stated_at, recorded_by)
            SELECT $1, gen_random_uuid(), $3, l.channel, l.purpose, 2, 0, 'merged from contact ' || $2::text, l.stated_at, 'contacts-feed'
            FROM latest l
            WHERE l.contact_id = $2 AND l.status = 2
              AND NOT EXISTS (SELECT 1 FROM latest w WHERE w.contact_id = $3 AND w.channel = l.channel AND w.purpose = l.purpose AND w.status = 2)
            """, [tenant, l, w])
        try await c.query("DELETE FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2", [tenant, l])
    }

    /// Suppresses the person's addresses (HMAC only); takes them out of every interaction they took part in, by contact
    /// or by a free address in any spelling, blanking the content where nobody else took part; removes the address and
    /// text of their sends (one in flight loses them when it settles: migration 010's trigger); reduces the stored
    /// change events and idempotent responses that mention them; forgets their addresses and set-aside events; and
    /// publishes an erasure receipt with the counts.
    private func erase(_ tenant: PostgresValue, _ person: UUID, request: String, on c: PostgresConnection) async throws {
        let contact = PostgresValue.uuid(person)
        let tenantID = tenantString(tenant)
        let addresses = try await c.query(
            "SELECT kind, address FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact]
        ).rows.map { (try $0.string("kind"), try $0.string("address")) }
        // The addresses of the person's sends too: a message may have gone to an address the directory never had.
        let sent = try await c.query(
            "SELECT channel, to_address FROM communication.sends WHERE tenant_id = $1 AND contact_id = $2 AND to_address <> ''",
            [tenant, contact]
        ).rows.map { (AddressRules.kind(of: Channel(rawValue: Int(try $0.int("channel"))) ?? .email), try $0.string("to_address")) }
        var normalized: [String: Set<String>] = ["email": [], "phone": []]
        for (kind, address) in addresses + sent {
            let n = AddressRules.normalized(address, kind: kind)
            if !n.isEmpty { normalized[kind, default: []].insert(n) }
        }
        var suppressed = 0
        for (kind, values) in normalized {
            for address in values.sorted() {
                suppressed += try await c.query(
                    """
                    INSERT INTO communication.suppressions (tenant_id, kind, address_hash, reason) VALUES ($1, $2, $3, 'erased')
                    ON CONFLICT DO NOTHING
                    """, [tenant, .text(kind), .text(AddressRules.suppressionHash(address, kind: kind, secret: suppressionSecret))]
                ).affectedRows
            }
        }
        let emails = PostgresValue.array((normalized["email"] ?? []).sorted().map { .text($0) }, elementType: .text)
        let phones = PostgresValue.array((normalized["phone"] ?? []).sorted().map { .text($0) }, elementType: .text)
        // Interactions: the person leaves contact_ids, the contact index and the free addresses (in any spelling); one
        // with nobody else left loses its content. The rows are locked first, so the values computed are the latest.
        let interactions = try await c.query(
            """
            WITH target AS (
                SELECT id, array_remove(contact_ids, $2) AS others,
                    ARRAY(SELECT a FROM unnest(addresses) AS a WHERE NOT communication.address_matches(a, $3, $4)) AS kept,
                    ARRAY(SELECT a FROM unnest(addresses) AS a WHERE communication.address_matches(a, $3, $4)) AS spellings
                FROM communication.interactions
                WHERE tenant_id = $1
                  AND (contact_ids @> ARRAY[$2::uuid]
                       OR EXISTS (SELECT 1 FROM unnest(addresses) AS a WHERE communication.address_matches(a, $3, $4)))
                FOR UPDATE
            )
            UPDATE communication.interactions i SET
                contact_ids = t.others, addresses = t.kept,
                subject = CASE WHEN cardinality(t.others) = 0 AND cardinality(t.kept) = 0 THEN '' ELSE i.subject END,
                body = CASE WHEN cardinality(t.others) = 0 AND cardinality(t.kept) = 0 THEN '' ELSE i.body END,
                outcome = CASE WHEN cardinality(t.others) = 0 AND cardinality(t.kept) = 0 THEN '' ELSE i.outcome END,
                version = i.version + 1, updated_at = now(), updated_by = 'contacts-feed'
            FROM target t WHERE i.tenant_id = $1 AND i.id = t.id
            RETURNING i.id::text AS id, t.spellings
            """, [tenant, contact, emails, phones]
        ).rows.map { (id: try $0.string("id"), spellings: try $0.strings("spellings")) }
        try await c.query("DELETE FROM communication.interaction_contacts WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact])
        // Sends to the person, or to one of their addresses under another contact: a scheduled one is cancelled and a
        // settled one loses its address and text now, one in flight when it settles (migration 010's trigger).
        let sends = try await c.query(
            """
            UPDATE communication.sends SET erased_at = now(), version = version + 1, updated_at = now(), updated_by = 'contacts-feed'
            WHERE tenant_id = $1 AND erased_at IS NULL AND (contact_id = $2 OR communication.address_matches(to_address, $3, $4))
            RETURNING id::text AS id
            """, [tenant, contact, emails, phones]
        ).rows.map { try $0.string("id") }
        // What the service stored about the person in other forms: the change events and idempotent responses that
        // mention their id or an address as it was written.
        let written = Set(
            [person.lowercaseText] + addresses.map(\.1) + sent.map(\.1) + interactions.flatMap(\.spellings)
                + (normalized["email"] ?? []) + (normalized["phone"] ?? [])
        ).sorted()
        let changes = try await ChangeFeed(schema: "communication").redact(
            tenantID: tenantID, resourceIDs: interactions.map(\.id) + sends, mentioning: written, on: c)
        let responses = try await Idempotency(schema: "communication").forget(tenantID: tenantID, mentioning: written, on: c)
        try await c.query("DELETE FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact])
        // The ledger's one exception to append-only (migration 011): only while this transaction declares an erasure.
        try await c.query("SELECT set_config('app.erasure', 'on', true)", [])
        let consent = try await c.query(
            "DELETE FROM communication.consent_ledger WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact]
        ).affectedRows
        try await c.query("SELECT set_config('app.erasure', '', true)", [])
        _ = try await FeedConsumer.forgetSetAside(tenantID: tenantID, resourceID: person.lowercaseText, schema: "communication", on: c)
        let receipt = ErasureReceiptData(
            contactID: person, erasureRequestID: request, interactionsRedacted: interactions.count, sendsRedacted: sends.count,
            addressesSuppressed: suppressed, changesRedacted: changes, storedResponsesRemoved: responses, consentEntriesDeleted: consent)
        try await ChangeFeed(schema: "communication").record(
            ChangeRecord(
                resourceType: Self.receiptType, resourceID: person.lowercaseText, kind: .erased, resourceJSON: try publishReceipt(receipt),
                actorID: "contacts-feed", relatedIDs: request.isEmpty ? [] : [request]),
            tenantID: tenantID, on: c)
    }

    private func tenantString(_ value: PostgresValue) -> String {
        if case .text(let t) = value { return t }
        return ""
    }
}
