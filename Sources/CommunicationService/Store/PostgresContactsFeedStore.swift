import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// Applies the contacts feed inside the feed consumer's batch transaction (the cursor commits with the effects).
/// Each event sets its tenant first (`app.tenant_id`), so row-level security holds for every statement.
public struct PostgresContactsFeedStore: Sendable {
    /// The secret of the suppression hashes.
    let suppressionSecret: [UInt8]

    /// Creates the store.
    public init(suppressionSecret: [UInt8]) { self.suppressionSecret = suppressionSecret }

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
            case .erased:
                try await erase(tenant, event.contactID, on: c)
            }
        }
    }

    private func cancelPendingSends(_ tenant: PostgresValue, _ contact: PostgresValue, reason: String, on c: PostgresConnection) async throws {
        // SCHEDULED only: a send a dispatcher holds is in flight; the dispatcher's consent check still applies.
        try await c.query(
            """
            UPDATE communication.sends SET status = 5, last_error = $3, version = version + 1, updated_at = now(), updated_by = 'contacts-feed'
            WHERE tenant_id = $1 AND contact_id = $2 AND status = 1
            """, [tenant, contact, .text(reason)])
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
        try await c.query(
            "UPDATE communication.sends SET contact_id = $3, version = version + 1, updated_at = now() WHERE tenant_id = $1 AND contact_id = $2 AND status = 1",
            [tenant, l, w])
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

    /// Suppresses the person's addresses (HMAC only), redacts their interactions and sends, forgets their addresses.
    private func erase(_ tenant: PostgresValue, _ person: UUID, on c: PostgresConnection) async throws {
        let contact = PostgresValue.uuid(person)
        let addresses = try await c.query(
            "SELECT kind, address FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact]
        ).rows.map { (try $0.string("kind"), try $0.string("address")) }
        // The addresses of the person's sends too: a message may have gone to an address the directory never had.
        let sent = try await c.query(
            "SELECT channel, to_address FROM communication.sends WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact]
        ).rows.map { (AddressRules.kind(of: Channel(rawValue: Int(try $0.int("channel"))) ?? .email), try $0.string("to_address")) }
        let all = Set((addresses + sent).filter { !$0.1.isEmpty }.map { "\($0.0)\u{1}\($0.1)" })
        for entry in all {
            let parts = entry.split(separator: "\u{1}", maxSplits: 1).map(String.init)
            try await c.query(
                """
                INSERT INTO communication.suppressions (tenant_id, kind, address_hash, reason) VALUES ($1, $2, $3, 'erased')
                ON CONFLICT DO NOTHING
                """, [tenant, .text(parts[0]), .text(AddressRules.suppressionHash(parts[1], kind: parts[0], secret: suppressionSecret))])
        }
        let plain = addresses.map { PostgresValue.text($0.1) } + sent.map { PostgresValue.text($0.1) }
        // Interactions: the person leaves contact_ids and the contact index; their addresses leave the free addresses;
        // an interaction that was only about them loses its content.
        try await c.query(
            """
            UPDATE communication.interactions SET
                subject = CASE WHEN contact_ids = ARRAY[$2::uuid] THEN '' ELSE subject END,
                body = CASE WHEN contact_ids = ARRAY[$2::uuid] THEN '' ELSE body END,
                outcome = CASE WHEN contact_ids = ARRAY[$2::uuid] THEN '' ELSE outcome END,
                addresses = ARRAY(SELECT a FROM unnest(addresses) AS a WHERE lower(a) <> ALL($3::text[])),
                contact_ids = array_remove(contact_ids, $2),
                version = version + 1, updated_at = now(), updated_by = 'contacts-feed'
            WHERE tenant_id = $1 AND contact_ids @> ARRAY[$2::uuid]
            """, [tenant, contact, .array(plain, elementType: .text)])
        try await c.query("DELETE FROM communication.interaction_contacts WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact])
        try await cancelPendingSends(tenant, contact, reason: "the person was erased", on: c)
        // Sends keep their status for the record; the person's address and text go (a send in flight keeps its payload
        // until its dispatcher records the outcome).
        try await c.query(
            """
            UPDATE communication.sends SET to_address = '', subject = '', body = '', payload = '\\x'::bytea, version = version + 1,
                updated_at = now(), updated_by = 'contacts-feed'
            WHERE tenant_id = $1 AND contact_id = $2 AND status <> 2
            """, [tenant, contact])
        try await c.query("DELETE FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact])
        _ = try await FeedConsumer.forgetSetAside(tenantID: tenantString(tenant), resourceID: person.lowercaseText, schema: "communication", on: c)
    }

    private func tenantString(_ value: PostgresValue) -> String {
        if case .text(let t) = value { return t }
        return ""
    }
}
