import FoundationEssentials
import Logging
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardServiceKit

/// ``ErasureStore`` on PostgreSQL: `contacts.erasures` and `contacts.erasure_receipts`, and the erasure itself across
/// the service's tables, in one transaction within the tenant.
public struct PostgresErasureStore: ErasureStore {
    let pool: PostgresPool
    let feed: ChangeFeed
    let idempotency: Idempotency
    /// The published form of a contact (its Contact message's proto3 JSON), for the contacts whose state is published
    /// again after a redaction.
    let publish: @Sendable (ContactRecord) throws -> String

    static let columns = """
        e.id, e.contact_id, e.contact_ids::text[] AS contact_ids, e.requested_at, e.requested_by, e.deadline, e.completed_at, e.awaited, e.local::text AS local, \
        (extract(epoch FROM e.requested_at) * 1000000)::int8 AS requested_micros, \
        CASE WHEN e.completed_at IS NOT NULL THEN 2 WHEN e.deadline < now() THEN 3 ELSE 1 END AS status
        """

    /// Creates the store.
    /// - Parameters:
    ///   - pool: the service's pool.
    ///   - feed: the change feed (ERASED is written in the erasure's transaction; the history is redacted in it).
    ///   - idempotency: the kit's idempotency keys (stored responses naming the person are deleted).
    ///   - publish: a contact's change-event payload.
    public init(pool: PostgresPool, feed: ChangeFeed, idempotency: Idempotency, publish: @escaping @Sendable (ContactRecord) throws -> String) {
        self.pool = pool
        self.feed = feed
        self.idempotency = idempotency
        self.publish = publish
    }

    /// The protocol requirement `replay<V>` (documented on the protocol).
    public func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]? {
        try await idempotency.replay(write, actor: actor, pool: pool)
    }

    /// The protocol requirement `erase` (documented on the protocol).
    public func erase(
        contactID: UUID, awaited: [String], deadlineHours: Int, actor: Actor, write: WriteOptions<ErasureRecord>
    ) async throws -> WriteOutcome<ErasureRecord>? {
        let tenant = PostgresValue.text(actor.tenantID), id = PostgresValue.uuid(contactID)
        do {
            return try await idempotency.transaction(write, actor: actor, pool: pool) { c in
                // Two requests for one person meet here: the second waits for the first's row lock, then finds its erasure.
                let row = try await c.query(
                    "SELECT \(PostgresContactStore.columns) FROM contacts.contacts WHERE tenant_id = $1 AND id = $2 FOR UPDATE", [tenant, id]
                ).first
                if let earlier = try await Self.erasure(contact: contactID, tenantID: actor.tenantID, on: c) { return earlier }
                guard let row else { throw Missing() }
                let contact = try PostgresContactStore.record(row)
                if contact.mergedInto != nil {
                    // The person lives on in the winner, which holds what the merge gave it: erasing only this row would
                    // leave them there. The last winner of the chain is the one to erase.
                    let root = try await Self.root(of: contactID, tenantID: actor.tenantID, on: c)
                    throw ContactsError.mergedAway(
                        id: contactID.lowercaseText, into: root.lowercaseText,
                        action: "erase that contact: the contacts merged into it are erased with it")
                }
                // The contacts merged into this one (and into those), the same person under other records. Locked, then
                // read again: an unmerge that committed while the lock waited has taken its contact out of the chain.
                var losers: [ContactRecord] = []
                for attempt in 1...5 {
                    let locked = try await c.query(
                        "SELECT \(PostgresContactStore.columns) FROM contacts.contacts WHERE tenant_id = $1 AND id IN (\(Self.losers)) FOR UPDATE",
                        [tenant, id]
                    ).rows.map(PostgresContactStore.record)
                    let current = Set(
                        try await c.query("SELECT id FROM contacts.contacts WHERE tenant_id = $1 AND id IN (\(Self.losers))", [tenant, id]).rows.map {
                            try $0.uuid("id")
                        })
                    losers = locked.filter { current.contains($0.id) }
                    if current.isSubset(of: Set(locked.map(\.id))) { break }
                    // A merge into the chain committed meanwhile: lock its newcomers too.
                    if attempt == 5 {
                        throw ContactsError.concurrentChange("contacts are being merged into \(contactID.lowercaseText); retry the erasure")
                    }
                }
                let everyone = [contact] + losers
                let ids = PostgresValue.array(everyone.map { .uuid($0.id) }, elementType: .uuid)
                let idTexts = everyone.map(\.id.lowercaseText)
                // What names the person in stored text. In change payloads (JSON), the ids and every address and number as
                // a whole token (ChangeFeed.redact): ann@x.io must not match joann@x.io. In stored responses (protobuf),
                // an address or number with the length byte that precedes it, for the same reason.
                var values: [String] = []
                for record in everyone {
                    for email in record.data.emails { values += [email.address, email.address.lowercased()] }
                    for phone in record.data.phones { values += [phone.number, phone.e164] }
                }
                values = Array(Set(values.filter { !$0.isEmpty })).sorted()
                let inJSON = idTexts + values
                let inProtobuf = idTexts + values.map(Idempotency.protobufString)
                // Other contacts whose history mentions the person (a former merge winner that held an address): their
                // events are redacted too, and a consumer reading them late would apply an empty state. Each gets its
                // current state published again after the redaction.
                let others = try await c.query(
                    """
                    SELECT DISTINCT resource_id FROM contacts.changes
                    WHERE tenant_id = $1 AND resource_type = $2 AND NOT (resource_id = ANY($3::text[]))
                      AND resource::jsonb <> jsonb_build_object('id', resource_id)
                      AND EXISTS (SELECT 1 FROM unnest($4::text[], $5::text[]) AS n(needle, pattern)
                                  WHERE strpos(lower(resource::text), lower(n.needle)) > 0 AND lower(resource::text) ~ lower(n.pattern))
                    """,
                    [
                        tenant, .text(PostgresContactStore.resourceType), .array(idTexts.map(PostgresValue.text), elementType: .text),
                        .array(inJSON.map { .text($0) }, elementType: .text),
                        .array(inJSON.map { .text(ChangeFeed.tokenPattern($0)) }, elementType: .text),
                    ]
                ).rows.compactMap { UUID(uuidString: try $0.string("resource_id")) }

                var local = ErasureLocal()
                local.emailsReleased = try await c.query(
                    "DELETE FROM contacts.contact_emails WHERE tenant_id = $1 AND contact_id = ANY($2::uuid[])", [tenant, ids]
                ).affectedRows
                // The ledger has no index by contact: this reads the tenant's import rows of the retention period. Erasure
                // is rare; a resumed import that sends the person again creates them again, as any new input would.
                local.importRowsDeleted = try await c.query(
                    "DELETE FROM contacts.import_rows WHERE tenant_id = $1 AND contact_id = ANY($2::uuid[])", [tenant, ids]
                ).affectedRows
                local.membershipsDeleted = try await c.query(
                    "DELETE FROM contacts.organization_memberships WHERE tenant_id = $1 AND contact_id = ANY($2::uuid[])", [tenant, ids]
                ).affectedRows
                local.deadLettersDeleted = try await c.query(
                    """
                    DELETE FROM contacts.feed_dead_letters d
                    WHERE d.tenant_id = $1 AND EXISTS (
                        SELECT 1 FROM unnest($2::text[]) AS n WHERE d.resource_id = n OR position(convert_to(n, 'UTF8') IN d.event) > 0)
                    """, [tenant, .array(idTexts.map(PostgresValue.text), elementType: .text)]
                ).affectedRows
                // Relationships naming the person (set aside by a merge or not), and what merges of the person did to
                // relationships (the log rows of those merges).
                local.relationshipsDeleted = try await c.query(
                    "DELETE FROM contacts.relationships WHERE tenant_id = $1 AND (contact_id = ANY($2::uuid[]) OR related_id = ANY($2::uuid[]))",
                    [tenant, ids]
                ).affectedRows
                try await c.query(
                    """
                    DELETE FROM contacts.relationship_moves WHERE tenant_id = $1 AND merge_id IN (
                        SELECT id FROM contacts.merges WHERE tenant_id = $1 AND (winner_id = ANY($2::uuid[]) OR loser_id = ANY($2::uuid[])))
                    """, [tenant, ids])
                // The merge log keeps what merges moved: personal data of the same person.
                local.mergesDeleted = try await c.query(
                    "DELETE FROM contacts.merges WHERE tenant_id = $1 AND (winner_id = ANY($2::uuid[]) OR loser_id = ANY($2::uuid[]))", [tenant, ids]
                ).affectedRows
                local.contactsDeleted = try await c.query(
                    "DELETE FROM contacts.contacts WHERE tenant_id = $1 AND id = ANY($2::uuid[])", [tenant, ids]
                ).affectedRows
                local.changesRedacted = try await feed.redact(tenantID: actor.tenantID, resourceIDs: idTexts, mentioning: inJSON, on: c)
                local.storedResponsesRemoved = try await idempotency.forget(tenantID: actor.tenantID, mentioning: inProtobuf, on: c)
                for other in others {
                    guard
                        let row = try await c.query(
                            "SELECT \(PostgresContactStore.columns) FROM contacts.contacts WHERE tenant_id = $1 AND id = $2", [tenant, .uuid(other)]
                        ).first
                    else { continue }
                    try await feed.record(
                        ChangeRecord(
                            resourceType: PostgresContactStore.resourceType, resourceID: other.lowercaseText, kind: .updated,
                            resourceJSON: try publish(try PostgresContactStore.record(row)), actorID: actor.userID),
                        tenantID: actor.tenantID, on: c)
                }

                let erasureID = UUID.random()
                try await c.query(
                    """
                    INSERT INTO contacts.erasures (tenant_id, id, contact_id, contact_ids, requested_by, deadline, awaited, local)
                    VALUES ($1, $2, $3, $4, $5, now() + $6::int8 * interval '1 hour', $7, $8)
                    """,
                    [
                        tenant, .uuid(erasureID), id, ids, .text(actor.userID), .int(Int64(deadlineHours)),
                        .array(awaited.map(PostgresValue.text), elementType: .text), .jsonb(try Self.localJSON(local)),
                    ])
                // One ERASED per record, each naming the erasure: the other services hold rows under every id the person
                // had (a merge moves only some), and each sends a receipt per record. No personal data: the id alone.
                for erased in idTexts {
                    try await feed.record(
                        ChangeRecord(
                            resourceType: PostgresContactStore.resourceType, resourceID: erased, kind: .erased,
                            resourceJSON: JSON.object(["id": .string(erased)]).text, actorID: actor.userID, relatedIDs: [erasureID.lowercaseText]),
                        tenantID: actor.tenantID, on: c)
                }
                // Nothing may be awaited (no feed followed): complete at once.
                if awaited.isEmpty {
                    try await c.query(
                        "UPDATE contacts.erasures SET completed_at = now() WHERE tenant_id = $1 AND id = $2", [tenant, .uuid(erasureID)])
                }
                return try await Self.erasure(id: erasureID, tenantID: actor.tenantID, on: c)!
            }
        } catch is Missing {
            return nil
        }
    }

    private struct Missing: Error {}

    /// The contacts merged into `$2` and into those, as SQL (tenant `$1`).
    static let losers = """
        WITH RECURSIVE losers(id) AS (
            SELECT id FROM contacts.contacts WHERE tenant_id = $1 AND merged_into = $2
            UNION SELECT m.id FROM contacts.contacts m JOIN losers l ON m.tenant_id = $1 AND m.merged_into = l.id
        ) SELECT id FROM losers
        """

    /// The last winner of the merge chain `id` is in (at most 1,000 steps: a chain is made by people, one merge at a time).
    static func root(of id: UUID, tenantID: String, on c: PostgresConnection) async throws -> UUID {
        try await c.query(
            """
            WITH RECURSIVE chain(id, next, depth) AS (
                SELECT id, merged_into, 0 FROM contacts.contacts WHERE tenant_id = $1 AND id = $2
                UNION ALL SELECT c.id, c.merged_into, chain.depth + 1 FROM contacts.contacts c JOIN chain ON c.tenant_id = $1 AND c.id = chain.next
                WHERE chain.depth < 1000
            ) SELECT id FROM chain ORDER BY depth DESC LIMIT 1
            """, [.text(tenantID), .uuid(id)]
        ).first?.uuid("id") ?? id
    }

    /// The protocol requirement `erasure` (documented on the protocol).
    public func erasure(id: UUID, actor: Actor) async throws -> ErasureRecord? {
        try await pool.transaction(settings: ["app.tenant_id": actor.tenantID]) { c in
            try await Self.erasure(id: id, tenantID: actor.tenantID, on: c)
        }
    }

    /// The protocol requirement `erasures` (documented on the protocol).
    public func erasures(
        status: ErasureStatus?, after: (micros: Int64, id: UUID)?, limit: Int, actor: Actor
    ) async throws -> (records: [ErasureRecord], more: Bool, last: (micros: Int64, id: UUID)?) {
        try await pool.transaction(settings: ["app.tenant_id": actor.tenantID]) { c in
            var binds: [PostgresValue] = [.text(actor.tenantID), .int(Int64(limit + 1))]
            var conditions = ["e.tenant_id = $1"]
            switch status {
            case nil: break
            case .complete?: conditions.append("e.completed_at IS NOT NULL")
            case .overdue?: conditions.append("e.completed_at IS NULL AND e.deadline < now()")
            case .pending?: conditions.append("e.completed_at IS NULL AND e.deadline >= now()")
            }
            if let after {
                binds += [.int(after.micros), .uuid(after.id)]
                conditions.append("(e.requested_at, e.id) < (timestamptz 'epoch' + $3::int8 * interval '1 microsecond', $4)")
            }
            let rows = try await c.query(
                """
                SELECT \(Self.columns) FROM contacts.erasures e WHERE \(conditions.joined(separator: " AND "))
                ORDER BY e.requested_at DESC, e.id DESC LIMIT $2
                """, binds
            ).rows
            let page = Array(rows.prefix(limit))
            let receipts = try await Self.receipts(erasures: try page.map { try $0.uuid("id") }, tenantID: actor.tenantID, on: c)
            let records = try page.map { row in try Self.record(row, receipts: receipts[try row.uuid("id")] ?? []) }
            let last = try page.last.map { (micros: try $0.int("requested_micros"), id: try $0.uuid("id")) }
            return (records, rows.count > limit, last)
        }
    }

    // MARK: Rows

    static func erasure(id: UUID, tenantID: String, on c: PostgresConnection) async throws -> ErasureRecord? {
        guard
            let row = try await c.query(
                "SELECT \(columns) FROM contacts.erasures e WHERE e.tenant_id = $1 AND e.id = $2", [.text(tenantID), .uuid(id)]
            ).first
        else { return nil }
        return try record(row, receipts: try await receipts(erasures: [id], tenantID: tenantID, on: c)[id] ?? [])
    }

    static func erasure(contact: UUID, tenantID: String, on c: PostgresConnection) async throws -> ErasureRecord? {
        guard
            let id = try await c.query(
                "SELECT id FROM contacts.erasures WHERE tenant_id = $1 AND (contact_id = $2 OR $2 = ANY(contact_ids)) LIMIT 1",
                [.text(tenantID), .uuid(contact)]
            ).first?.uuid("id")
        else { return nil }
        return try await erasure(id: id, tenantID: tenantID, on: c)
    }

    static func receipts(erasures: [UUID], tenantID: String, on c: PostgresConnection) async throws -> [UUID: [ErasureReceiptRecord]] {
        guard !erasures.isEmpty else { return [:] }
        var receipts: [UUID: [ErasureReceiptRecord]] = [:]
        for row in try await c.query(
            """
            SELECT erasure_id, service, contact_id, receipt::text AS receipt, received_at FROM contacts.erasure_receipts
            WHERE tenant_id = $1 AND erasure_id = ANY($2::uuid[]) ORDER BY erasure_id, service, contact_id
            """, [.text(tenantID), .array(erasures.map(PostgresValue.uuid), elementType: .uuid)]
        ).rows {
            receipts[try row.uuid("erasure_id"), default: []].append(
                ErasureReceiptRecord(
                    service: try row.string("service"), contactID: try row.uuid("contact_id"), receivedAt: try row.date("received_at"),
                    receiptJSON: try row.string("receipt")))
        }
        return receipts
    }

    static func record(_ row: PostgresRow, receipts: [ErasureReceiptRecord]) throws -> ErasureRecord {
        ErasureRecord(
            id: try row.uuid("id"), contactID: try row.uuid("contact_id"),
            contactIDs: try row.strings("contact_ids").compactMap(UUID.init(uuidString:)),
            status: ErasureStatus(rawValue: Int(try row.int("status"))) ?? .pending, requestedAt: try row.date("requested_at"),
            requestedBy: try row.string("requested_by"), deadline: try row.date("deadline"), completedAt: try row.optionalDate("completed_at"),
            awaited: try row.strings("awaited"), receipts: receipts, local: localCounts(try row.string("local")))
    }

    /// The counts as stored: the proto3 JSON of `Erasure.Local` (the contract's own shape, not a Swift encoder's).
    static func localJSON(_ local: ErasureLocal) throws -> String {
        var p = Switchboard_Contacts_V1_Erasure.Local()
        p.emailsReleased = Int32(clamping: local.emailsReleased)
        p.changesRedacted = Int32(clamping: local.changesRedacted)
        p.storedResponsesRemoved = Int32(clamping: local.storedResponsesRemoved)
        p.importRowsDeleted = Int32(clamping: local.importRowsDeleted)
        p.membershipsDeleted = Int32(clamping: local.membershipsDeleted)
        p.deadLettersDeleted = Int32(clamping: local.deadLettersDeleted)
        p.mergesDeleted = Int32(clamping: local.mergesDeleted)
        p.contactsDeleted = Int32(clamping: local.contactsDeleted)
        p.relationshipsDeleted = Int32(clamping: local.relationshipsDeleted)
        return try p.protoJSONText()
    }

    static func localCounts(_ text: String) -> ErasureLocal {
        var local = ErasureLocal()
        guard let p = try? Switchboard_Contacts_V1_Erasure.Local(protoJSONText: text) else { return local }
        local.emailsReleased = Int(p.emailsReleased)
        local.changesRedacted = Int(p.changesRedacted)
        local.storedResponsesRemoved = Int(p.storedResponsesRemoved)
        local.importRowsDeleted = Int(p.importRowsDeleted)
        local.membershipsDeleted = Int(p.membershipsDeleted)
        local.deadLettersDeleted = Int(p.deadLettersDeleted)
        local.mergesDeleted = Int(p.mergesDeleted)
        local.contactsDeleted = Int(p.contactsDeleted)
        local.relationshipsDeleted = Int(p.relationshipsDeleted)
        return local
    }

    // MARK: Receipts

    /// Records a service's receipt for an erasure of the tenant, and marks the erasure complete when every awaited
    /// service has sent one. Runs in the feed consumer's transaction.
    /// - Returns: false when the tenant has no such erasure (the event is then set aside).
    static func recordReceipt(
        tenantID: String, erasureID: UUID, service: String, contactID: UUID, receiptJSON: String, on c: PostgresConnection
    ) async throws -> Bool {
        try await c.query("SELECT set_config('app.tenant_id', $1, true) AS tenant", [.text(tenantID)])
        let tenant = PostgresValue.text(tenantID), id = PostgresValue.uuid(erasureID)
        // Locked: receipts of several services arrive in transactions of their own, and each completion check must see
        // the receipts committed before it (otherwise two at once could each miss the other's, and none completes).
        guard
            try await c.query("SELECT 1 AS found FROM contacts.erasures WHERE tenant_id = $1 AND id = $2 FOR UPDATE", [tenant, id]).first != nil
        else { return false }
        // At least once: a receipt delivered again keeps the first.
        try await c.query(
            """
            INSERT INTO contacts.erasure_receipts (tenant_id, erasure_id, service, contact_id, receipt) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (tenant_id, erasure_id, service, contact_id) DO NOTHING
            """, [tenant, id, .text(service), .uuid(contactID), .jsonb(receiptJSON)])
        // Complete when every awaited service has sent a receipt for every record erased.
        try await c.query(
            """
            UPDATE contacts.erasures e SET completed_at = now()
            WHERE e.tenant_id = $1 AND e.id = $2 AND e.completed_at IS NULL
              AND NOT EXISTS (
                  SELECT 1 FROM unnest(e.awaited) AS a(service)
                  WHERE (SELECT count(DISTINCT r.contact_id) FROM contacts.erasure_receipts r
                         WHERE r.tenant_id = $1 AND r.erasure_id = $2 AND r.service = a.service AND r.contact_id = ANY(e.contact_ids))
                        < cardinality(e.contact_ids))
            """, [tenant, id])
        return true
    }
}
