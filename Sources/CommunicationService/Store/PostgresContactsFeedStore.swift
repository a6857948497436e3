import FoundationEssentials
import Logging
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
    /// The published forms of an interaction (tenant readers', services'), for the interactions an erasure changes.
    let publishInteraction: @Sendable (InteractionRecord) throws -> (tenant: String, service: String?)
    /// The published form of preferences, for the ones a merge or an unmerge writes.
    let publishPreferences: @Sendable (PreferencesRecord) throws -> String
    /// Where an event that can only be partly applied is reported.
    let logger: Logger

    /// Creates the store.
    public init(suppressionSecret: [UInt8], logger: Logger = Logger(label: "communication.contacts-feed")) {
        self.suppressionSecret = suppressionSecret
        self.logger = logger
        self.publishReceipt = ContactsFeedMapping.receiptJSON
        self.publishSend = CommunicationService.publishSend
        self.publishInteraction = InteractionMapping.published
        self.publishPreferences = PreferencesMapping.json
    }

    /// Applies events in order on `c`.
    public func apply(_ events: [ContactEvent], on c: PostgresConnection) async throws {
        for event in events {
            try await c.query("SELECT set_config('app.tenant_id', $1, true) AS tenant", [.text(event.tenantID)])
            let (tenant, contact) = (PostgresValue.text(event.tenantID), PostgresValue.uuid(event.contactID))
            switch event.kind {
            case .addresses(let emails, let phones):
                try await replaceAddresses(tenant, contact, emails: emails, phones: phones, on: c)
                try await replaceFields(tenant, contact, event.fields ?? [:], on: c)
            case .deleted:
                try await c.query("DELETE FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact])
                try await replaceFields(tenant, contact, [:], on: c)
                try await cancelPendingSends(tenant, contact, reason: "the contact was deleted", on: c)
            case .merged(let winner):
                try await merge(tenant, loser: event.contactID, winner: winner, on: c)
            case .unmerged(let formerWinner, let emails, let phones):
                try await unmerge(tenant, loser: event.contactID, winner: formerWinner, on: c)
                if let emails, let phones { try await replaceAddresses(tenant, contact, emails: emails, phones: phones, on: c) }
                if let fields = event.fields { try await replaceFields(tenant, contact, fields, on: c) }
            case .erased(let request):
                try await erase(tenant, event.contactID, request: request, on: c)
            }
        }
    }

    /// The contact's e-mails and phones replace its rows in the address directory.
    private func replaceAddresses(
        _ tenant: PostgresValue, _ contact: PostgresValue, emails: [String], phones: [String], on c: PostgresConnection
    ) async throws {
        try await c.query("DELETE FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact])
        let rows =
            emails.map { ("email", AddressRules.normalized($0, kind: "email")) }
            + phones.map { ("phone", AddressRules.normalized($0, kind: "phone")) }
        let kept = rows.filter { !$0.1.isEmpty && $0.1.utf8.count <= SendRules.maxAddressBytes && !$0.1.utf8.contains(0) }
        if !kept.isEmpty {
            try await c.query(
                """
                INSERT INTO communication.contact_addresses (tenant_id, kind, address, contact_id, rank)
                SELECT $1, k, a, $4, n FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t (k, a, n) ON CONFLICT DO NOTHING
                """,
                [
                    tenant, .array(kept.map { .text($0.0) }, elementType: .text), .array(kept.map { .text($0.1) }, elementType: .text),
                    contact,
                ])
        }
    }

    /// The contact's template fields replace its row (none: the row goes).
    private func replaceFields(_ tenant: PostgresValue, _ contact: PostgresValue, _ fields: [String: String], on c: PostgresConnection) async throws {
        guard !fields.isEmpty else {
            try await c.query("DELETE FROM communication.contact_fields WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact])
            return
        }
        let sorted = fields.sorted { $0.key < $1.key }
        try await c.query(
            """
            INSERT INTO communication.contact_fields (tenant_id, contact_id, names, field_values) VALUES ($1, $2, $3, $4)
            ON CONFLICT (tenant_id, contact_id) DO UPDATE SET names = excluded.names, field_values = excluded.field_values
            """,
            [
                tenant, contact, .array(sorted.map { .text($0.key) }, elementType: .text),
                .array(sorted.map { .text($0.value) }, elementType: .text),
            ])
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
    /// grant the winner never gave is not assumed. Every change is logged (`merges`, `merge_moves`: migration 013) for
    /// ``unmerge(_:loser:winner:on:)``.
    private func merge(_ tenant: PostgresValue, loser: UUID, winner: UUID, on c: PostgresConnection) async throws {
        let (l, w) = (PostgresValue.uuid(loser), PostgresValue.uuid(winner))
        // A second MERGED of a loser not unmerged in between keeps the first log: that is the merge an UNMERGED reverses.
        try await c.query(
            """
            INSERT INTO communication.merges (tenant_id, loser, winner, ledger_sequence)
            VALUES ($1, $2, $3, 0) ON CONFLICT (tenant_id, loser) DO NOTHING
            """, [tenant, l, w])
        try await c.query(
            """
            WITH target AS (
                SELECT id, contact_ids AS before FROM communication.interactions
                WHERE tenant_id = $1 AND contact_ids @> ARRAY[$2::uuid]
                FOR UPDATE
            ), moved AS (
                UPDATE communication.interactions i SET
                    contact_ids = ARRAY(SELECT DISTINCT x FROM unnest(array_replace(t.before, $2, $3)) AS x),
                    version = i.version + 1, updated_at = now(), updated_by = 'contacts-feed'
                FROM target t WHERE i.tenant_id = $1 AND i.id = t.id
                RETURNING i.id, t.before, i.contact_ids AS after
            )
            INSERT INTO communication.merge_moves (tenant_id, loser, kind, row_id, before, after)
            SELECT $1, $2, 'interaction', id, before, after FROM moved
            ON CONFLICT DO NOTHING
            """, [tenant, l, w])
        try await c.query(
            """
            INSERT INTO communication.interaction_contacts (tenant_id, contact_id, occurred_at, interaction_id)
            SELECT tenant_id, $3, occurred_at, interaction_id FROM communication.interaction_contacts WHERE tenant_id = $1 AND contact_id = $2
            ON CONFLICT DO NOTHING
            """, [tenant, l, w])
        try await c.query("DELETE FROM communication.interaction_contacts WHERE tenant_id = $1 AND contact_id = $2", [tenant, l])
        let movedInteractions = try await c.query(
            "SELECT row_id FROM communication.merge_moves WHERE tenant_id = $1 AND loser = $2 AND kind = 'interaction'", [tenant, l]
        ).rows.map { try $0.uuid("row_id") }
        try await publishInteractions(movedInteractions, tenantID: tenantString(tenant), fields: ["contact_ids"], on: c)
        // A campaign that reached both records sends once: the loser's scheduled copy is cancelled, not moved (moving it
        // would give the winner two sends of one campaign, which sends_one_per_recipient refuses, and the batch would
        // fail for ever).
        let duplicates = try await c.query(
            """
            UPDATE communication.sends s SET status = 5, last_error = 'the contact was merged into one this campaign also sends to',
                version = s.version + 1, updated_at = now(), updated_by = 'contacts-feed'
            WHERE s.tenant_id = $1 AND s.contact_id = $2 AND s.status = 1 AND s.campaign_id IS NOT NULL
              AND EXISTS (SELECT 1 FROM communication.sends w WHERE w.tenant_id = $1 AND w.campaign_id = s.campaign_id AND w.contact_id = $3)
            RETURNING s.id
            """, [tenant, l, w]
        ).rows.map { try $0.uuid("id") }
        for id in duplicates {
            try await SendChanges.record(
                id: id, tenantID: tenantString(tenant), changedFields: ["status", "last_error"], actorID: "contacts-feed", publish: publishSend,
                on: c)
        }
        let moved = try await c.query(
            """
            WITH moved AS (
                UPDATE communication.sends SET contact_id = $3, version = version + 1, updated_at = now(), updated_by = 'contacts-feed'
                WHERE tenant_id = $1 AND contact_id = $2 AND status = 1 RETURNING id
            ), logged AS (
                INSERT INTO communication.merge_moves (tenant_id, loser, kind, row_id)
                SELECT $1, $2, 'send', id FROM moved ON CONFLICT DO NOTHING
            )
            SELECT id FROM moved
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
            ), appended AS (
                INSERT INTO communication.consent_ledger (tenant_id, id, contact_id, channel, purpose, status, legal_basis, source, stated_at,
                    recorded_by)
                SELECT $1, gen_random_uuid(), $3, l.channel, l.purpose, 2, 0, 'merged from contact ' || $2::text, l.stated_at, 'contacts-feed'
                FROM latest l
                WHERE l.contact_id = $2 AND l.status = 2
                  AND NOT EXISTS (SELECT 1 FROM latest w WHERE w.contact_id = $3 AND w.channel = l.channel AND w.purpose = l.purpose AND w.status = 2)
                RETURNING id
            )
            INSERT INTO communication.merge_moves (tenant_id, loser, kind, row_id)
            SELECT $1, $2, 'consent', id FROM appended ON CONFLICT DO NOTHING
            """, [tenant, l, w])
        // Where the winner's ledger stood after the merge: what it gains later was stated while the two were one.
        try await c.query(
            """
            UPDATE communication.merges SET ledger_sequence = coalesce(
                (SELECT max(sequence) FROM communication.consent_ledger WHERE tenant_id = $1 AND contact_id = $3), 0)
            WHERE tenant_id = $1 AND loser = $2 AND winner = $3 AND ledger_sequence = 0
            """, [tenant, l, w])
        try await mergePreferences(tenant, loser, winner, on: c)
        try await c.query("DELETE FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2", [tenant, l])
        try await replaceFields(tenant, l, [:], on: c)
    }

    /// The loser's preferences combined into the winner's: the winner keeps what it stated and gains what it did not
    /// (a channel, a language, a time zone; quiet hours travel with their time zone, so a winner without quiet hours
    /// takes the loser's with the loser's zone); do_not_contact if either asked (the most restrictive wins, as with
    /// consent). The loser's own row stays as it was, for an unmerge. The merge log keeps the winner's row as it was and
    /// as the merge wrote it (migration 017), once per merge.
    private func mergePreferences(_ tenant: PostgresValue, _ loser: UUID, _ winner: UUID, on c: PostgresConnection) async throws {
        let (l, w) = (PostgresValue.uuid(loser), PostgresValue.uuid(winner))
        guard
            try await c.query(
                "SELECT 1 AS hit FROM communication.preferences WHERE tenant_id = $1 AND contact_id = $2", [tenant, l]
            ).first != nil,
            try await c.query(
                "SELECT 1 AS hit FROM communication.merges WHERE tenant_id = $1 AND loser = $2 AND winner = $3 AND NOT preferences_merged",
                [tenant, l, w]
            ).first != nil
        else { return }
        // Requests writing the winner's preferences wait, so the row kept as it was is the row the merge combines.
        try await PostgresPreferencesStore.lock(tenantID: tenantString(tenant), contactID: winner, on: c)
        try await c.query(
            """
            UPDATE communication.merges SET preferences_merged = true, preferences_before = (
                SELECT to_jsonb(p) FROM communication.preferences p WHERE p.tenant_id = $1 AND p.contact_id = $3)
            WHERE tenant_id = $1 AND loser = $2 AND winner = $3
            """, [tenant, l, w])
        let row = try await c.query(
            """
            INSERT INTO communication.preferences AS p (tenant_id, contact_id, preferred_channel, language, time_zone, quiet_start, quiet_end,
                do_not_contact, created_by, updated_by)
            SELECT $1, $3, preferred_channel, language, time_zone, quiet_start, quiet_end, do_not_contact, 'contacts-feed', 'contacts-feed'
            FROM communication.preferences WHERE tenant_id = $1 AND contact_id = $2
            ON CONFLICT (tenant_id, contact_id) DO UPDATE SET
                preferred_channel = CASE WHEN p.preferred_channel = 0 THEN excluded.preferred_channel ELSE p.preferred_channel END,
                language = CASE WHEN p.language = '' THEN excluded.language ELSE p.language END,
                time_zone = CASE
                    WHEN p.quiet_start IS NOT NULL THEN p.time_zone
                    WHEN excluded.quiet_start IS NOT NULL THEN excluded.time_zone
                    WHEN p.time_zone <> '' THEN p.time_zone
                    ELSE excluded.time_zone END,
                quiet_start = coalesce(p.quiet_start, excluded.quiet_start),
                quiet_end = CASE WHEN p.quiet_start IS NOT NULL THEN p.quiet_end ELSE excluded.quiet_end END,
                do_not_contact = p.do_not_contact OR excluded.do_not_contact,
                version = p.version + 1, updated_at = now(), updated_by = 'contacts-feed'
            RETURNING \(PostgresPreferencesStore.columns)
            """, [tenant, l, w]
        ).first!
        try await c.query(
            """
            UPDATE communication.merges SET preferences_after = (
                SELECT to_jsonb(p) FROM communication.preferences p WHERE p.tenant_id = $1 AND p.contact_id = $3)
            WHERE tenant_id = $1 AND loser = $2 AND winner = $3
            """, [tenant, l, w])
        try await publishPreferences(try PostgresPreferencesStore.record(row), tenantID: tenantString(tenant), on: c)
    }

    /// Publishes a contact's preferences as they are now (CREATED at version 1, else UPDATED; actor `contacts-feed`).
    private func publishPreferences(_ record: PreferencesRecord, tenantID: String, on c: PostgresConnection) async throws {
        try await ChangeFeed(schema: "communication").record(
            ChangeRecord(
                resourceType: PostgresPreferencesStore.preferencesType, resourceID: record.contactID.lowercaseText,
                kind: record.version == 1 ? .created : .updated, resourceJSON: try publishPreferences(record), actorID: "contacts-feed",
                relatedIDs: [record.contactID.lowercaseText]),
            tenantID: tenantID, on: c)
    }

    /// Reverses ``mergePreferences(_:_:_:on:)`` field by field (``PreferencesRules/unmerged(before:merged:current:)``):
    /// what the merge wrote and nobody changed since goes back; a do_not_contact said while the two were one contact
    /// is said for the restored contact too.
    private func unmergePreferences(_ tenant: PostgresValue, _ loser: UUID, _ winner: UUID, on c: PostgresConnection) async throws {
        let tenantID = tenantString(tenant)
        let (l, w) = (PostgresValue.uuid(loser), PostgresValue.uuid(winner))
        guard
            let log = try await c.query(
                """
                SELECT \(PostgresPreferencesStore.jsonColumns("preferences_before", prefix: "b_")),
                    \(PostgresPreferencesStore.jsonColumns("preferences_after", prefix: "a_"))
                FROM communication.merges WHERE tenant_id = $1 AND loser = $2 AND winner = $3 AND preferences_merged
                """, [tenant, l, w]
            ).first,
            let merged = try PostgresPreferencesStore.data(log, prefix: "a_")
        else { return }
        let before = try PostgresPreferencesStore.data(log, prefix: "b_")
        try await PostgresPreferencesStore.lock(tenantID: tenantID, contactID: winner, on: c)
        guard
            let current = try await c.query(
                "SELECT \(PostgresPreferencesStore.columns) FROM communication.preferences p WHERE p.tenant_id = $1 AND p.contact_id = $2",
                [tenant, w]
            ).first.map(PostgresPreferencesStore.record)
        else { return }
        let (restored, meanwhile) = PreferencesRules.unmerged(before: before, merged: merged, current: current.data)
        if let restored {
            if restored != current.data {
                let row = try await c.query(
                    """
                    UPDATE communication.preferences p SET preferred_channel = $3, language = $4, time_zone = $5,
                        quiet_start = CASE WHEN $6::int8 IS NULL THEN NULL ELSE make_time(($6 / 60)::int4, ($6 % 60)::int4, 0) END,
                        quiet_end = CASE WHEN $7::int8 IS NULL THEN NULL ELSE make_time(($7 / 60)::int4, ($7 % 60)::int4, 0) END,
                        do_not_contact = $8, version = p.version + 1, updated_at = now(), updated_by = 'contacts-feed'
                    WHERE p.tenant_id = $1 AND p.contact_id = $2
                    RETURNING \(PostgresPreferencesStore.columns)
                    """,
                    [
                        tenant, w, .int(Int64(restored.preferredChannel?.rawValue ?? 0)), .text(restored.language), .text(restored.timeZone),
                        restored.quietHours.map { .int(Int64($0.start)) } ?? .null, restored.quietHours.map { .int(Int64($0.end)) } ?? .null,
                        .bool(restored.doNotContact),
                    ]
                ).first!
                try await publishPreferences(try PostgresPreferencesStore.record(row), tenantID: tenantID, on: c)
            }
        } else if let row = try await c.query(
            "DELETE FROM communication.preferences p WHERE p.tenant_id = $1 AND p.contact_id = $2 RETURNING \(PostgresPreferencesStore.columns)",
            [tenant, w]
        ).first {
            let record = try PostgresPreferencesStore.record(row)
            try await ChangeFeed(schema: "communication").record(
                ChangeRecord(
                    resourceType: PostgresPreferencesStore.preferencesType, resourceID: record.contactID.lowercaseText, kind: .deleted,
                    resourceJSON: try publishPreferences(record), actorID: "contacts-feed", relatedIDs: [record.contactID.lowercaseText]),
                tenantID: tenantID, on: c)
        }
        guard meanwhile else { return }
        try await PostgresPreferencesStore.lock(tenantID: tenantID, contactID: loser, on: c)
        if let row = try await c.query(
            """
            INSERT INTO communication.preferences AS p (tenant_id, contact_id, do_not_contact, created_by, updated_by)
            VALUES ($1, $2, true, 'contacts-feed', 'contacts-feed')
            ON CONFLICT (tenant_id, contact_id) DO UPDATE SET do_not_contact = true, version = p.version + 1, updated_at = now(),
                updated_by = 'contacts-feed'
            WHERE NOT p.do_not_contact
            RETURNING \(PostgresPreferencesStore.columns)
            """, [tenant, l]
        ).first {
            try await publishPreferences(try PostgresPreferencesStore.record(row), tenantID: tenantID, on: c)
        }
    }

    /// Publishes the interactions `ids` as they are now (UPDATED, actor `contacts-feed`): what the contacts feed did to
    /// them reaches the readers of this service's feed, as a user's change would.
    private func publishInteractions(_ ids: [UUID], tenantID: String, fields: [String], on c: PostgresConnection) async throws {
        guard !ids.isEmpty else { return }
        for row in try await c.query(
            "SELECT \(PostgresInteractionStore.columns) FROM communication.interactions i WHERE i.tenant_id = $1 AND i.id = ANY($2::uuid[]) ORDER BY i.id",
            [.text(tenantID), .array(ids.map(PostgresValue.uuid), elementType: .uuid)]
        ).rows {
            let record = try PostgresInteractionStore.record(row)
            let payload = try publishInteraction(record)
            try await ChangeFeed(schema: "communication").record(
                ChangeRecord(
                    resourceType: PostgresInteractionStore.interactionType, resourceID: record.id.lowercaseText, kind: .updated,
                    changedFields: fields, resourceJSON: payload.tenant, actorID: "contacts-feed", serviceResourceJSON: payload.service),
                tenantID: tenantID, on: c)
        }
    }

    /// Reverses the logged merge of `loser` into `winner`, as far as what it moved is still as the merge left it, then
    /// forgets the log:
    /// - an interaction whose contact_ids are still what the merge wrote gets its array back exactly; one edited since
    ///   that still names the winner but not the restored contact gets the restored contact back (beside the winner
    ///   when both took part, in the winner's place otherwise); one that no longer names the winner is left as it is;
    /// - a re-pointed send still naming the winner goes back (whatever its status since: the message was for the
    ///   restored contact), with the interaction that logs it if it was sent;
    /// - consent: a withdrawal the merge appended for the winner that is still the winner's latest word on its channel
    ///   and purpose is answered by re-stating the winner's own latest statement before it, if that was a grant
    ///   (appended: the ledger is never rewritten); and every withdrawal the winner's ledger gained while the two were
    ///   one contact is appended for the restored contact too, unless its latest entry already withdraws (either of
    ///   them may have made it: the most restrictive wins again). Grants made meanwhile are not copied.
    /// A merge applied before the log existed (migration 013) has no log: nothing moves back, and a warning is logged.
    private func unmerge(_ tenant: PostgresValue, loser: UUID, winner: UUID, on c: PostgresConnection) async throws {
        let (l, w) = (PostgresValue.uuid(loser), PostgresValue.uuid(winner))
        guard
            let merge = try await c.query(
                """
                SELECT ledger_sequence FROM communication.merges WHERE tenant_id = $1 AND loser = $2 AND winner = $3 FOR UPDATE
                """, [tenant, l, w]
            ).first
        else {
            logger.warning(
                "an UNMERGED event with no logged merge: nothing moves back",
                metadata: ["tenant": "\(tenantString(tenant))", "contact": "\(loser.lowercaseText)", "former_winner": "\(winner.lowercaseText)"])
            return
        }
        let ledgerSequence = try merge.int("ledger_sequence")
        // Sends first: the interaction of a re-pointed send that went out since is restored with the logged ones.
        let sends = try await c.query(
            """
            UPDATE communication.sends s SET contact_id = $2, version = s.version + 1, updated_at = now(), updated_by = 'contacts-feed'
            FROM communication.merge_moves m
            WHERE m.tenant_id = $1 AND m.loser = $2 AND m.kind = 'send' AND s.tenant_id = $1 AND s.id = m.row_id AND s.contact_id = $3
            RETURNING s.id
            """, [tenant, l, w]
        ).rows.map { try $0.uuid("id") }
        let restored = try await c.query(
            """
            WITH log AS (
                SELECT row_id, before, after FROM communication.merge_moves WHERE tenant_id = $1 AND loser = $2 AND kind = 'interaction'
                UNION ALL
                SELECT id, ARRAY[$2::uuid], ARRAY[$3::uuid] FROM unnest($4::uuid[]) AS id
            ), target AS (
                SELECT i.id, CASE
                        WHEN i.contact_ids = log.after THEN log.before
                        WHEN i.contact_ids @> ARRAY[$2::uuid] OR NOT i.contact_ids @> ARRAY[$3::uuid] THEN NULL
                        WHEN log.before @> ARRAY[$3::uuid] THEN i.contact_ids || $2::uuid
                        ELSE array_replace(i.contact_ids, $3, $2)
                    END AS contact_ids
                FROM communication.interactions i JOIN log ON i.id = log.row_id
                WHERE i.tenant_id = $1
                FOR UPDATE OF i
            )
            UPDATE communication.interactions i SET contact_ids = t.contact_ids, version = i.version + 1, updated_at = now(),
                updated_by = 'contacts-feed'
            FROM target t WHERE i.tenant_id = $1 AND i.id = t.id AND t.contact_ids IS NOT NULL
            RETURNING i.id
            """, [tenant, l, w, .array(sends.map { .uuid($0) }, elementType: .uuid)]
        ).rows.map { try $0.uuid("id") }
        if !restored.isEmpty {
            // The contact index follows the arrays: both contacts' rows of those interactions, rebuilt.
            let ids = PostgresValue.array(restored.map { .uuid($0) }, elementType: .uuid)
            try await c.query(
                """
                DELETE FROM communication.interaction_contacts x USING communication.interactions i
                WHERE x.tenant_id = $1 AND i.tenant_id = $1 AND i.id = ANY($4::uuid[]) AND x.contact_id IN ($2, $3)
                  AND x.occurred_at = i.occurred_at AND x.interaction_id = i.id
                """, [tenant, l, w, ids])
            try await c.query(
                """
                INSERT INTO communication.interaction_contacts (tenant_id, contact_id, occurred_at, interaction_id)
                SELECT i.tenant_id, x, i.occurred_at, i.id FROM communication.interactions i, unnest(i.contact_ids) AS x
                WHERE i.tenant_id = $1 AND i.id = ANY($4::uuid[]) AND x IN ($2, $3)
                ON CONFLICT DO NOTHING
                """, [tenant, l, w, ids])
            try await publishInteractions(restored, tenantID: tenantString(tenant), fields: ["contact_ids"], on: c)
        }
        for id in sends {
            try await SendChanges.record(
                id: id, tenantID: tenantString(tenant), changedFields: ["contact_id"], actorID: "contacts-feed", publish: publishSend, on: c)
        }
        // The winner: each appended withdrawal that is still its latest word is answered by its own earlier grant.
        try await c.query(
            """
            WITH appended AS (
                SELECT e.* FROM communication.consent_ledger e JOIN communication.merge_moves m ON m.row_id = e.id
                WHERE m.tenant_id = $1 AND m.loser = $2 AND m.kind = 'consent' AND e.tenant_id = $1 AND e.contact_id = $3
            ), still_latest AS (
                SELECT a.* FROM appended a
                WHERE a.id = (SELECT e.id FROM communication.consent_ledger e
                              WHERE e.tenant_id = $1 AND e.contact_id = $3 AND e.channel = a.channel AND e.purpose = a.purpose
                              ORDER BY e.stated_at DESC, e.status DESC, e.sequence DESC LIMIT 1)
            ), own AS (
                SELECT a.stated_at AS withdrawn_at, g.* FROM still_latest a
                CROSS JOIN LATERAL (
                    SELECT e.* FROM communication.consent_ledger e
                    WHERE e.tenant_id = $1 AND e.contact_id = $3 AND e.channel = a.channel AND e.purpose = a.purpose
                      AND e.id NOT IN (SELECT id FROM appended)
                    ORDER BY e.stated_at DESC, e.status DESC, e.sequence DESC LIMIT 1) g
                WHERE g.status = 1
            )
            INSERT INTO communication.consent_ledger (tenant_id, id, contact_id, channel, purpose, status, legal_basis, source, stated_at, recorded_by)
            SELECT $1, gen_random_uuid(), $3, channel, purpose, 1, legal_basis,
                'restored when contact ' || $2::text || ' was unmerged (entry ' || id::text || ')',
                greatest(now(), withdrawn_at + interval '1 microsecond'), 'contacts-feed'
            FROM own
            """, [tenant, l, w])
        // The restored contact: withdrawals stated to the winner while the two were one contact.
        try await c.query(
            """
            WITH meanwhile AS (
                SELECT DISTINCT ON (channel, purpose) channel, purpose, stated_at FROM communication.consent_ledger
                WHERE tenant_id = $1 AND contact_id = $3 AND sequence > $4 AND status = 2 AND recorded_by <> 'contacts-feed'
                ORDER BY channel, purpose, stated_at DESC, sequence DESC
            ), own AS (
                SELECT DISTINCT ON (channel, purpose) channel, purpose, status FROM communication.consent_ledger
                WHERE tenant_id = $1 AND contact_id = $2
                ORDER BY channel, purpose, stated_at DESC, status DESC, sequence DESC
            )
            INSERT INTO communication.consent_ledger (tenant_id, id, contact_id, channel, purpose, status, legal_basis, source, stated_at, recorded_by)
            SELECT $1, gen_random_uuid(), $2, m.channel, m.purpose, 2, 0, 'withdrawn while merged into contact ' || $3::text, m.stated_at,
                'contacts-feed'
            FROM meanwhile m
            WHERE NOT EXISTS (SELECT 1 FROM own o WHERE o.channel = m.channel AND o.purpose = m.purpose AND o.status = 2)
            """, [tenant, l, w, .int(ledgerSequence)])
        try await unmergePreferences(tenant, loser, winner, on: c)
        try await c.query("DELETE FROM communication.merges WHERE tenant_id = $1 AND loser = $2", [tenant, l])
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
        // mention their id or an address as it was written, an address as a whole token (ann@x.io is not joann@x.io's).
        let written = Set(
            addresses.map(\.1) + sent.map(\.1) + interactions.flatMap(\.spellings) + (normalized["email"] ?? []) + (normalized["phone"] ?? [])
        ).filter { !$0.isEmpty }.sorted()
        let changes = try await ChangeFeed(schema: "communication").redact(
            tenantID: tenantID, resourceIDs: interactions.map(\.id) + sends,
            mentioning: [person.lowercaseText] + written, on: c)
        let responses = try await Idempotency(schema: "communication").forget(
            tenantID: tenantID, mentioning: [person.lowercaseText] + written.map(Idempotency.protobufString), on: c)
        // The interactions changed are published as they are now (the redacted history no longer says what they were):
        // a consumer that kept a copy learns the person left it.
        try await publishInteractions(
            interactions.compactMap { UUID(uuidString: $0.id) }, tenantID: tenantID,
            fields: ["contact_ids", "addresses", "subject", "body", "outcome"], on: c)
        try await c.query("DELETE FROM communication.contact_addresses WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact])
        try await replaceFields(tenant, contact, [:], on: c)
        // The merge log forgets the person: merges they were part of, and their id in other merges' arrays (as the
        // interactions themselves lost it above, so an unmerge still finds them as the merge left them).
        try await c.query("DELETE FROM communication.merges WHERE tenant_id = $1 AND (loser = $2 OR winner = $2)", [tenant, contact])
        try await c.query(
            """
            UPDATE communication.merge_moves SET before = array_remove(before, $2), after = array_remove(after, $2)
            WHERE tenant_id = $1 AND kind = 'interaction' AND (before @> ARRAY[$2::uuid] OR after @> ARRAY[$2::uuid])
            """, [tenant, contact])
        // The ledger's one exception to append-only (migration 011): only while this transaction declares an erasure.
        try await c.query("SELECT set_config('app.erasure', 'on', true)", [])
        let consent = try await c.query(
            "DELETE FROM communication.consent_ledger WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact]
        ).affectedRows
        try await c.query("SELECT set_config('app.erasure', '', true)", [])
        let preferences = try await c.query(
            "DELETE FROM communication.preferences WHERE tenant_id = $1 AND contact_id = $2", [tenant, contact]
        ).affectedRows
        _ = try await FeedConsumer.forgetSetAside(tenantID: tenantID, resourceID: person.lowercaseText, schema: "communication", on: c)
        let receipt = ErasureReceiptData(
            contactID: person, erasureRequestID: request, interactionsRedacted: interactions.count, sendsRedacted: sends.count,
            addressesSuppressed: suppressed, changesRedacted: changes, storedResponsesRemoved: responses, consentEntriesDeleted: consent,
            preferencesDeleted: preferences)
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
