import FoundationEssentials
import Logging
import SwitchboardPostgres
import SwitchboardServiceKit

/// ``ContactStore`` on PostgreSQL. Every statement binds its values; every transaction sets `app.tenant_id`, and the
/// tables' row-level security admits only that tenant's rows, so a query that forgot its tenant filter still
/// cannot reach another tenant.
public struct PostgresContactStore: ContactStore {
    let pool: PostgresPool
    let feed: ChangeFeed
    let idempotency: Idempotency
    /// The published form of a contact in change events: the proto3 JSON of the Contact message (the contract), made
    /// by the handlers' mapping so that this store never sees protobuf.
    let publish: @Sendable (ContactRecord) throws -> String
    /// A relationship's change-event payload: the proto3 JSON of its Relationship message, as stated (from contact_id).
    let publishRelationship: @Sendable (RelationshipRecord) throws -> String
    /// Whether inserts bring the words they computed (decided against the database on first use).
    let searchWords: SearchWordsSource
    static let resourceType = "switchboard.contacts.v1.Contact"
    static let columns = """
        id, given_name, family_name, middle_name, name_prefix, name_suffix, display_name, emails::text AS emails, \
        phones::text AS phones, addresses::text AS addresses, contact_type, status, tags, owner_id, \
        custom_fields::text AS custom_fields, version, created_at, created_by, updated_at, updated_by, deleted_at, merged_into
        """

    /// Creates the store.
    /// - Parameters:
    ///   - pool: the service's pool.
    ///   - feed: the change feed written in each change's transaction.
    ///   - idempotency: the kit's idempotency keys.
    ///   - publish: a contact's change-event payload (the proto3 JSON of its Contact message).
    ///   - publishRelationship: a relationship's change-event payload (the proto3 JSON of its Relationship message).
    ///   - logger: where the store says, once, which side splits new contacts' search words.
    public init(
        pool: PostgresPool, feed: ChangeFeed, idempotency: Idempotency, publish: @escaping @Sendable (ContactRecord) throws -> String,
        publishRelationship: @escaping @Sendable (RelationshipRecord) throws -> String, logger: Logger? = nil
    ) {
        self.init(
            pool: pool, feed: feed, idempotency: idempotency, publish: publish, publishRelationship: publishRelationship,
            searchWords: SearchWordsSource(logger: logger))
    }

    /// Creates the store with its own decision on search words (tests: a source decided already; relationships' payloads
    /// by the handlers' mapping unless given).
    init(
        pool: PostgresPool, feed: ChangeFeed, idempotency: Idempotency, publish: @escaping @Sendable (ContactRecord) throws -> String,
        publishRelationship: @escaping @Sendable (RelationshipRecord) throws -> String = { try ContactsMapping.proto($0).protoJSONText() },
        searchWords: SearchWordsSource
    ) {
        self.pool = pool
        self.feed = feed
        self.idempotency = idempotency
        self.publish = publish
        self.publishRelationship = publishRelationship
        self.searchWords = searchWords
    }

    // MARK: Idempotency

    public func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]? {
        try await idempotency.replay(write, actor: actor, pool: pool)
    }

    /// One read in one round trip: the tenant setting and the statement pipelined into one implicit transaction.
    private func read(_ actor: Actor, _ sql: String, _ binds: [PostgresValue]) async throws -> [PostgresRow] {
        try await pool.query(settings: ["app.tenant_id": actor.tenantID], sql, binds).rows
    }

    // MARK: Field definitions

    public func fieldDefinitions(actor: Actor, includeRetired: Bool) async throws -> [FieldDefinition] {
        try await read(
            actor,
            """
            SELECT key, display_name, field_type, allowed_values, required, retired_at IS NOT NULL AS retired
            FROM contacts.field_definitions WHERE tenant_id = $1 AND ($2 OR retired_at IS NULL) ORDER BY key
            """, [.text(actor.tenantID), .bool(includeRetired)]
        ).map(Self.definition)
    }

    static func definition(_ row: PostgresRow) throws -> FieldDefinition {
        FieldDefinition(
            key: try row.string("key"), displayName: try row.string("display_name"),
            type: FieldType(rawValue: Int(try row.int("field_type"))) ?? .string, allowedValues: try row.strings("allowed_values"),
            required: try row.bool("required"), retired: try row.bool("retired"))
    }

    public func define(
        _ definition: FieldDefinition, actor: Actor, write: WriteOptions<FieldDefinition>
    ) async throws -> WriteOutcome<FieldDefinition> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            // Two concurrent defines can both pass this count by one; the bound is about size, not exactness.
            let existing =
                try await c.query(
                    "SELECT count(*) AS n FROM contacts.field_definitions WHERE tenant_id = $1", [.text(actor.tenantID)]
                ).first?.int("n") ?? 0
            guard existing < ContactRules.maxFieldDefinitions else { throw ContactsError.tooManyFields(limit: ContactRules.maxFieldDefinitions) }
            let inserted = try await c.query(
                """
                INSERT INTO contacts.field_definitions (tenant_id, key, display_name, field_type, allowed_values, required)
                VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key
                """,
                [
                    .text(actor.tenantID), .text(definition.key), .text(definition.displayName), .int(Int64(definition.type.rawValue)),
                    .array(definition.allowedValues.map(PostgresValue.text), elementType: .text), .bool(definition.required),
                ])
            guard !inserted.rows.isEmpty else { throw ContactsError.fieldExists(key: definition.key) }
            return definition
        }
    }

    public func retire(key: String, actor: Actor, write: WriteOptions<FieldDefinition>) async throws -> WriteOutcome<FieldDefinition> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            guard
                let row = try await c.query(
                    """
                    UPDATE contacts.field_definitions SET retired_at = coalesce(retired_at, now()) WHERE tenant_id = $1 AND key = $2
                    RETURNING key, display_name, field_type, allowed_values, required, true AS retired
                    """, [.text(actor.tenantID), .text(key)]
                ).first
            else { throw ContactsError.fieldNotFound(key: key) }
            return try Self.definition(row)
        }
    }

    // MARK: Contacts

    static func record(_ row: PostgresRow) throws -> ContactRecord {
        var data = ContactData()
        data.name.given = try row.string("given_name")
        data.name.family = try row.string("family_name")
        data.name.middle = try row.string("middle_name")
        data.name.prefix = try row.string("name_prefix")
        data.name.suffix = try row.string("name_suffix")
        data.name.display = try row.string("display_name")
        data.emails = try JSONText.emails(try row.string("emails"))
        data.phones = try JSONText.phones(try row.string("phones"))
        data.addresses = try JSONText.addresses(try row.string("addresses"))
        data.kind = ContactKind(rawValue: Int(try row.int("contact_type"))) ?? .person
        data.status = ContactStatus(rawValue: Int(try row.int("status"))) ?? .lead
        data.tags = try row.strings("tags")
        data.ownerID = try row.string("owner_id")
        data.customFields = try JSONText.object(try row.string("custom_fields"))
        var record = ContactRecord(
            id: try row.uuid("id"), data: data, version: try row.int("version"), createdAt: try row.date("created_at"),
            createdBy: try row.string("created_by"), updatedAt: try row.date("updated_at"), updatedBy: try row.string("updated_by"),
            deletedAt: try row.optionalDate("deleted_at"))
        if case .uuid(let winner) = row["merged_into"] { record.mergedInto = winner }
        return record
    }

    static func dataBinds(_ data: ContactData) -> [PostgresValue] {
        [
            .text(data.name.given), .text(data.name.family), .text(data.name.middle), .text(data.name.prefix),
            .text(data.name.suffix), .text(data.name.display), .jsonb(JSONText.emails(data.emails)), .jsonb(JSONText.phones(data.phones)),
            .jsonb(JSONText.addresses(data.addresses)), .int(Int64(data.kind.rawValue)), .int(Int64(data.status.rawValue)),
            .array(data.tags.map(PostgresValue.text), elementType: .text), .text(data.ownerID), .jsonb(JSONText.object(data.customFields)),
        ]
    }

    /// The values of `search_words` and `search_names` in an insert, from two text placeholders holding a contact's
    /// words as ``SearchWords/contactWords(_:organizationNames:terms:)`` gives them, or NULL: then the columns keep their
    /// defaults and the trigger computes them (migration 018).
    static func givenWords(_ words: String, _ names: String) -> String {
        "coalesce(array_to_tsvector(string_to_array(\(words), ' ')), ''), coalesce(string_to_array(\(names), ' '), '{}')"
    }

    /// The binds of ``givenWords(_:_:)``.
    static func givenWordsBinds(_ given: (words: String, names: String)?) -> [PostgresValue] {
        given.map { [.text($0.words), .text($0.names)] } ?? [.null, .null]
    }

    /// Reserves the contact's addresses; a clash names the contact that holds the address.
    func reserveEmails(_ data: ContactData, id: UUID, actor: Actor, on c: PostgresConnection) async throws {
        for email in data.emails {
            let address = email.address.lowercased()
            let taken = try await c.query(
                """
                INSERT INTO contacts.contact_emails (tenant_id, address, contact_id) VALUES ($1, $2, $3)
                ON CONFLICT (tenant_id, address) DO NOTHING RETURNING 1 AS reserved
                """, [.text(actor.tenantID), .text(address), .uuid(id)]
            ).rows.isEmpty
            if taken {
                let holder = try await c.query(
                    "SELECT contact_id FROM contacts.contact_emails WHERE tenant_id = $1 AND address = $2",
                    [.text(actor.tenantID), .text(address)]
                ).first
                throw ContactsError.emailTaken(email: email.address, existingContactID: try holder?.uuid("contact_id") ?? id)
            }
        }
    }

    func releaseEmails(id: UUID, actor: Actor, on c: PostgresConnection) async throws {
        let statement = Self.releaseEmailsStatement(id: id, tenantID: actor.tenantID)
        try await c.query(statement.sql, statement.binds)
    }

    /// Frees every address a contact holds in the tenant, to send in a pipeline with the contact's write.
    static func releaseEmailsStatement(id: UUID, tenantID: String) -> (sql: String, binds: [PostgresValue]) {
        ("DELETE FROM contacts.contact_emails WHERE tenant_id = $1 AND contact_id = $2", [.text(tenantID), .uuid(id)])
    }

    func recordChange(_ record: ContactRecord, kind: ChangeKind, fields: [String], actor: Actor, on c: PostgresConnection) async throws {
        try await feed.record(try change(record, kind: kind, fields: fields, actor: actor), tenantID: actor.tenantID, on: c)
    }

    /// The change a write of `record` publishes.
    func change(_ record: ContactRecord, kind: ChangeKind, fields: [String], actor: Actor) throws -> ChangeRecord {
        ChangeRecord(
            resourceType: Self.resourceType, resourceID: record.id.lowercaseText, kind: kind, changedFields: fields,
            resourceJSON: try publish(record), actorID: actor.userID)
    }

    /// The tenant's search-terms lock, as SQL on a tenant placeholder: writers of terms hold it shared until they
    /// commit, the maintenance's sweep of unused terms exclusively (`ContactsMaintenance.sweepTerms`). A word already
    /// in the terms costs a writer no row lock, so without it the sweep could delete a word a writer's uncommitted
    /// contact relies on.
    static func termsLock(_ tenant: String, shared: Bool = true) -> String {
        "pg_\(shared ? "" : "try_")advisory_xact_lock\(shared ? "_shared" : "")(hashtext('contacts.search_terms'), hashtext(\(tenant)))"
    }

    /// Adds the words of letters of the contacts `ids` (their stored `search_words`) and `words` (words that begin with a
    /// letter already, ``SearchWords/Terms``, of contacts whose words the service gave) to the tenant's
    /// search terms, which a search expands a query's words of letters against (a word of digits matches by
    /// prefix in the contacts' own index, migration 015). One statement, in term order: two writers adding the
    /// same new words take their locks in the same order, so they never deadlock. Words already there cost an index
    /// probe each and take no row lock; the tenant's terms lock, taken first (the sorted input is read whole before
    /// the first insert), keeps the sweep of unused terms away until the transaction ends.
    static func termsStatement(_ ids: [UUID], words: [String] = [], tenantID: String) -> (sql: String, binds: [PostgresValue]) {
        let lock = "WITH writer AS MATERIALIZED (SELECT \(termsLock("$1")) AS locked) INSERT INTO contacts.search_terms (tenant_id, term)"
        guard !ids.isEmpty else {
            // Words alone: a statement PostgreSQL plans in microseconds (with the contacts' read beside them, planning at
            // bind was 210 µs of a CreateContact's PostgreSQL time).
            return (
                sql: "\(lock) SELECT DISTINCT $1, w FROM writer, unnest($2::text[]) AS w ORDER BY 2 ON CONFLICT DO NOTHING",
                binds: [.text(tenantID), .array(words.map(PostgresValue.text), elementType: .text)]
            )
        }
        let read = """
            SELECT w FROM contacts.contacts, unnest(tsvector_to_array(search_words)) AS w
            WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND w ~ '^[[:alpha:]]'
            """
        let ids = PostgresValue.array(ids.map { .uuid($0) }, elementType: .uuid)
        guard !words.isEmpty else {
            return (sql: "\(lock) SELECT DISTINCT $1, w FROM writer, (\(read)) t ORDER BY 2 ON CONFLICT DO NOTHING", binds: [.text(tenantID), ids])
        }
        return (
            sql: "\(lock) SELECT DISTINCT $1, w FROM writer, (\(read) UNION ALL SELECT unnest($3::text[])) t ORDER BY 2 ON CONFLICT DO NOTHING",
            binds: [.text(tenantID), ids, .array(words.map(PostgresValue.text), elementType: .text)]
        )
    }

    func recordTerms(_ ids: [UUID], actor: Actor, on c: PostgresConnection) async throws {
        guard !ids.isEmpty else { return }
        let statement = Self.termsStatement(ids, tenantID: actor.tenantID)
        try await c.query(statement.sql, statement.binds)
    }

    public func insert(_ data: ContactData, actor: Actor, write: WriteOptions<ContactRecord>) async throws -> WriteOutcome<ContactRecord> {
        do {
            return try await insertInOneRoundTrip(data, actor: actor, write: write)
        } catch let error as PostgresError where error.sqlState == "23505" || error.isRetryableTransactionFailure {
            // A request id seen before, an address another contact holds, or a lost race: the step-by-step path
            // replays the stored response or names the contact holding the address (and retries conflicts).
            return try await insertStepByStep(data, actor: actor, write: write)
        }
    }

    /// The common case in one round trip: every statement of the insert is known before the first runs (the id and
    /// the time stamps are made here, so the response — and the copy kept for idempotent replays — is too), so they
    /// go out as one pipeline in one implicit transaction. Measured: a third of the step-by-step path's time, and
    /// the tenant's change-sequence row is locked for one round trip instead of five.
    private func insertInOneRoundTrip(
        _ data: ContactData, actor: Actor, write: WriteOptions<ContactRecord>
    ) async throws -> WriteOutcome<ContactRecord> {
        // Whole microseconds: what PostgreSQL stores, so the response matches every later read.
        let now = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1_000_000).rounded() / 1_000_000)
        let record = ContactRecord(
            id: UUID.timeOrdered(now: now), data: data, version: 1, createdAt: now, createdBy: actor.userID, updatedAt: now,
            updatedBy: actor.userID, deletedAt: nil)
        var statements: [(sql: String, binds: [PostgresValue])] = []
        if let claim = idempotency.claimStatement(write, value: record, actor: actor) { statements.append(claim) }
        var terms = SearchWords.Terms(collect: true)
        let given = await searchWords.words(pool: pool)?.contactWords(data, terms: &terms)
        statements.append(
            (
                sql: """
                INSERT INTO contacts.contacts (tenant_id, id, given_name, family_name, middle_name, name_prefix, name_suffix,
                    display_name, emails, phones, addresses, contact_type, status, tags, owner_id, custom_fields,
                    created_at, created_by, updated_at, updated_by, search_words, search_names)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $18, $17, $18, $17, \(Self.givenWords("$19", "$20")))
                """,
                binds: [.text(actor.tenantID), .uuid(record.id)] + Self.dataBinds(data) + [.text(actor.userID), .timestamp(now)]
                    + Self.givenWordsBinds(given)
            ))
        if !data.emails.isEmpty {
            statements.append(
                (
                    sql: """
                    INSERT INTO contacts.contact_emails (tenant_id, address, contact_id) SELECT $1, unnest($2::text[]), $3
                    """,
                    binds: [.text(actor.tenantID), .array(data.emails.map { .text($0.address.lowercased()) }, elementType: .text), .uuid(record.id)]
                ))
        }
        statements.append(
            feed.recordStatement(
                ChangeRecord(
                    resourceType: Self.resourceType, resourceID: record.id.lowercaseText, kind: .created,
                    resourceJSON: try publish(record), actorID: actor.userID),
                tenantID: actor.tenantID))
        if given != nil {
            if !terms.words.isEmpty { statements.append(Self.termsStatement([], words: Array(terms.words), tenantID: actor.tenantID)) }
        } else {
            statements.append(Self.termsStatement([record.id], tenantID: actor.tenantID))
        }
        // With the tenant's other creates of the moment, in one transaction (one commit for all; each alone again if
        // any of them fails, which then lands here as its own error).
        try await pool.coalescedPipeline(settings: ["app.tenant_id": actor.tenantID], statements)
        return .fresh(record)
    }

    private func insertStepByStep(_ data: ContactData, actor: Actor, write: WriteOptions<ContactRecord>) async throws -> WriteOutcome<ContactRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            let id = UUID.timeOrdered()
            let row = try await c.query(
                """
                INSERT INTO contacts.contacts (tenant_id, id, given_name, family_name, middle_name, name_prefix, name_suffix,
                    display_name, emails, phones, addresses, contact_type, status, tags, owner_id, custom_fields,
                    created_at, created_by, updated_at, updated_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, now(), $17, now(), $17)
                RETURNING \(Self.columns)
                """, [.text(actor.tenantID), .uuid(id)] + Self.dataBinds(data) + [.text(actor.userID)]
            ).first!
            try await reserveEmails(data, id: id, actor: actor, on: c)
            let record = try Self.record(row)
            try await recordChange(record, kind: .created, fields: [], actor: actor, on: c)
            try await recordTerms([id], actor: actor, on: c)
            return record
        }
    }

    public func insert(
        batch: [ContactData], results: [ContactBatchResult?], allOrNothing: Bool, actor: Actor, write: WriteOptions<[ContactBatchResult]>
    ) async throws -> WriteOutcome<[ContactBatchResult]> {
        let splitting = await searchWords.words(pool: pool)
        return try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            var outcome: [ContactBatchResult] = []
            outcome.reserveCapacity(batch.count)
            var terms = SearchWords.Terms(collect: true)
            var changes: [ChangeRecord] = []
            // One round trip per item: the previous item's savepoint released, this one's set, its row and its addresses
            // (its id is made here, so the addresses need nothing back from the row). The changes of the stored items
            // are recorded together at the end, in item order. (It was seven round trips an item: a batch of 1,000 held
            // its transaction, and with it every feed's horizon, for half a minute on a busy machine.)
            var releasePending = false
            for (index, (data, decided)) in zip(batch, results).enumerated() {
                if let decided {
                    outcome.append(decided)
                    continue
                }
                // Its terms join the batch's once it is stored (a rolled-back contact's would be terms of no contact).
                var itemTerms = SearchWords.Terms(collect: true)
                let given = splitting?.contactWords(data, terms: &itemTerms)
                let id = UUID.timeOrdered()
                var statements: [(sql: String, binds: [PostgresValue])] = []
                // A savepoint per item, so an item whose address is taken rolls back alone (unless all or nothing).
                if releasePending { statements.append(("RELEASE SAVEPOINT batch_item", [])) }
                if !allOrNothing { statements.append(("SAVEPOINT batch_item", [])) }
                let rowIndex = statements.count
                statements.append(
                    (
                        """
                        INSERT INTO contacts.contacts (tenant_id, id, given_name, family_name, middle_name, name_prefix, name_suffix,
                            display_name, emails, phones, addresses, contact_type, status, tags, owner_id, custom_fields,
                            created_at, created_by, updated_at, updated_by, search_words, search_names)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, now(), $17, now(), $17,
                            \(Self.givenWords("$18", "$19")))
                        RETURNING \(Self.columns)
                        """,
                        [.text(actor.tenantID), .uuid(id)] + Self.dataBinds(data) + [.text(actor.userID)] + Self.givenWordsBinds(given)
                    ))
                let reservation = Self.reserveEmailsStatement(data, id: id, tenantID: actor.tenantID)
                if let reservation { statements.append(reservation) }
                let results = try await c.pipeline(statements)
                releasePending = !allOrNothing
                let record = try Self.record(results[rowIndex].first!)
                if reservation != nil, let clash = try await emailClash(data, reserved: results[rowIndex + 1], id: id, actor: actor, on: c) {
                    if allOrNothing { throw clash.failingBatch(item: "contacts[\(index)]") }
                    // The savepoint stays (released with the next item's), now without the item.
                    try await c.query("ROLLBACK TO SAVEPOINT batch_item")
                    outcome.append(.failed(clash))
                    continue
                }
                changes.append(try change(record, kind: .created, fields: [], actor: actor))
                outcome.append(.succeeded(record))
                terms.words.formUnion(itemTerms.words)
            }
            var closing: [(sql: String, binds: [PostgresValue])] = []
            if releasePending { closing.append(("RELEASE SAVEPOINT batch_item", [])) }
            if !changes.isEmpty { closing.append(feed.recordStatement(changes, tenantID: actor.tenantID)) }
            if splitting != nil {
                if !terms.words.isEmpty { closing.append(Self.termsStatement([], words: Array(terms.words), tenantID: actor.tenantID)) }
            } else {
                let stored = outcome.compactMap(\.storedID)
                if !stored.isEmpty { closing.append(Self.termsStatement(stored, tenantID: actor.tenantID)) }
            }
            if !closing.isEmpty { _ = try await c.pipeline(closing) }
            return outcome
        }
    }

    public func modify(
        ids: [UUID?], results: [ContactBatchResult?], allOrNothing: Bool, actor: Actor, write: WriteOptions<[ContactBatchResult]>,
        decide: @Sendable (_ index: Int, _ current: ContactRecord) throws -> ContactModification
    ) async throws -> WriteOutcome<[ContactBatchResult]> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            var outcome: [ContactBatchResult] = []
            outcome.reserveCapacity(ids.count)
            var changes: [ChangeRecord] = []
            // Two round trips per item: the previous item's savepoint released, this one's set and its row locked; then
            // its writes. The changes are recorded together at the end, in item order (see `insert(batch:…)`).
            var releasePending = false
            for (index, (id, decided)) in zip(ids, results).enumerated() {
                if let decided {
                    outcome.append(decided)
                    continue
                }
                guard let id else { continue }
                // A savepoint per item, so a failed item rolls back alone (unless all or nothing).
                var opening: [(sql: String, binds: [PostgresValue])] = []
                if releasePending { opening.append(("RELEASE SAVEPOINT batch_item", [])) }
                if !allOrNothing { opening.append(("SAVEPOINT batch_item", [])) }
                opening.append(
                    (
                        "SELECT \(Self.columns) FROM contacts.contacts WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE",
                        [.text(actor.tenantID), .uuid(id)]
                    ))
                let current = try await c.pipeline(opening).last!.first
                releasePending = !allOrNothing
                do {
                    let (record, change) = try await modify(id: id, index: index, current: current, actor: actor, on: c, decide: decide)
                    changes.append(change)
                    outcome.append(.succeeded(record))
                } catch let error as ContactsError where !allOrNothing {
                    // The savepoint stays (released with the next item's), now without the item.
                    try await c.query("ROLLBACK TO SAVEPOINT batch_item")
                    outcome.append(.failed(error))
                } catch let error as ContactsError {
                    throw error.failingBatch(item: "requests[\(index)]")
                }
            }
            var closing: [(sql: String, binds: [PostgresValue])] = []
            if releasePending { closing.append(("RELEASE SAVEPOINT batch_item", [])) }
            if !changes.isEmpty { closing.append(feed.recordStatement(changes, tenantID: actor.tenantID)) }
            let stored = outcome.compactMap(\.storedID)
            if !stored.isEmpty { closing.append(Self.termsStatement(stored, tenantID: actor.tenantID)) }
            if !closing.isEmpty { _ = try await c.pipeline(closing) }
            return outcome
        }
    }

    /// One item of ``modify(ids:results:allOrNothing:actor:write:decide:)``, its live row read and locked: decide,
    /// store (one round trip), and the change to record.
    private func modify(
        id: UUID, index: Int, current row: PostgresRow?, actor: Actor, on c: PostgresConnection,
        decide: (Int, ContactRecord) throws -> ContactModification
    ) async throws -> (ContactRecord, ChangeRecord) {
        guard let row else { throw ContactsError.notFound(id.lowercaseText) }
        let current = try Self.record(row)
        let releaseEmails = Self.releaseEmailsStatement(id: id, tenantID: actor.tenantID)
        switch try decide(index, current) {
        case .replace(let data, let changedFields):
            var statements: [(sql: String, binds: [PostgresValue])] = [
                (
                    """
                    UPDATE contacts.contacts SET given_name = $3, family_name = $4, middle_name = $5, name_prefix = $6,
                        name_suffix = $7, display_name = $8, emails = $9, phones = $10, addresses = $11, contact_type = $12,
                        status = $13, tags = $14, owner_id = $15, custom_fields = $16, version = version + 1,
                        updated_at = now(), updated_by = $17
                    WHERE tenant_id = $1 AND id = $2 RETURNING \(Self.columns)
                    """, [.text(actor.tenantID), .uuid(id)] + Self.dataBinds(data) + [.text(actor.userID)]
                ),
                releaseEmails,
            ]
            let reservation = Self.reserveEmailsStatement(data, id: id, tenantID: actor.tenantID)
            if let reservation { statements.append(reservation) }
            let results = try await c.pipeline(statements)
            if reservation != nil, let clash = try await emailClash(data, reserved: results[2], id: id, actor: actor, on: c) { throw clash }
            let record = try Self.record(results[0].first!)
            return (record, try change(record, kind: .updated, fields: changedFields, actor: actor))
        case .delete:
            let results = try await c.pipeline([
                (
                    """
                    UPDATE contacts.contacts SET deleted_at = now(), version = version + 1, updated_at = now(), updated_by = $3
                    WHERE tenant_id = $1 AND id = $2 RETURNING \(Self.columns)
                    """, [.text(actor.tenantID), .uuid(id), .text(actor.userID)]
                ),
                releaseEmails,
            ])
            let record = try Self.record(results[0].first!)
            return (record, try change(record, kind: .deleted, fields: [], actor: actor))
        }
    }

    /// Reserves the contact's addresses in one statement; nil when all were free, otherwise the clash (naming the
    /// contact that holds the first taken address), with the free ones reserved (the caller rolls back).
    private func reserveEmailsOrFindHolder(_ data: ContactData, id: UUID, actor: Actor, on c: PostgresConnection) async throws -> ContactsError? {
        guard let reservation = Self.reserveEmailsStatement(data, id: id, tenantID: actor.tenantID) else { return nil }
        return try await emailClash(data, reserved: try await c.query(reservation.sql, reservation.binds), id: id, actor: actor, on: c)
    }

    /// Reserves a contact's addresses in the tenant (nil when it has none); the statement returns each address it
    /// reserved, and ``emailClash(_:reserved:id:actor:on:)`` reads that.
    static func reserveEmailsStatement(_ data: ContactData, id: UUID, tenantID: String) -> (sql: String, binds: [PostgresValue])? {
        guard !data.emails.isEmpty else { return nil }
        return (
            """
            INSERT INTO contacts.contact_emails (tenant_id, address, contact_id) SELECT $1, unnest($2::text[]), $3
            ON CONFLICT (tenant_id, address) DO NOTHING RETURNING address
            """,
            [.text(tenantID), .array(data.emails.map { .text($0.address.lowercased()) }, elementType: .text), .uuid(id)]
        )
    }

    /// The first of a contact's addresses another contact holds, with its holder, from what its reservation returned;
    /// nil when every address was reserved.
    private func emailClash(
        _ data: ContactData, reserved result: PostgresResult, id: UUID, actor: Actor, on c: PostgresConnection
    ) async throws
        -> ContactsError?
    {
        let addresses = data.emails.map { $0.address.lowercased() }
        let reserved = try result.rows.map { try $0.string("address") }
        guard reserved.count < addresses.count else { return nil }
        let free = Set(reserved)
        let (index, taken) = addresses.enumerated().first { !free.contains($0.element) }!
        let holder = try await c.query(
            "SELECT contact_id FROM contacts.contact_emails WHERE tenant_id = $1 AND address = $2", [.text(actor.tenantID), .text(taken)]
        ).first
        return .emailTaken(email: data.emails[index].address, existingContactID: try holder?.uuid("contact_id") ?? id)
    }

    /// One contact by id, deleted or not. Concurrent fetches for one tenant share one statement.
    static let byID = CoalescedRead(
        one: "SELECT \(columns) FROM contacts.contacts WHERE tenant_id = $1 AND id = $2",
        many: "SELECT \(columns) FROM contacts.contacts WHERE tenant_id = $1 AND id = ANY($2)", keyColumn: "id", elementType: .uuid)

    public func fetch(id: UUID, actor: Actor) async throws -> ContactRecord? {
        try await pool.query(Self.byID, settings: ["app.tenant_id": actor.tenantID], [.text(actor.tenantID)], key: .uuid(id))
            .first.map(Self.record)
    }

    public func fetch(ids: [UUID], actor: Actor) async throws -> [ContactRecord] {
        try await read(
            actor,
            """
            SELECT \(Self.columns) FROM contacts.contacts WHERE tenant_id = $1 AND id = ANY($2) AND deleted_at IS NULL
            """, [.text(actor.tenantID), .array(ids.map(PostgresValue.uuid), elementType: .uuid)]
        ).map(Self.record)
    }

    public func lookup(
        emails: [String], phones: [String], limit: Int, actor: Actor
    ) async throws -> (emails: [String: [UUID]], phones: [String: [UUID]]) {
        // One statement: addresses through contact_emails (live contacts only, by its key), numbers through the GIN index
        // on the phones' E.164 forms (migration 005), each value's ids cut to limit + 1.
        let rows = try await read(
            actor,
            """
            SELECT kind, value, contact_id FROM (
                SELECT kind, value, contact_id, row_number() OVER (PARTITION BY kind, value ORDER BY contact_id) AS n FROM (
                    SELECT 'e' AS kind, address AS value, contact_id FROM contacts.contact_emails
                    WHERE tenant_id = $1 AND address = ANY($2::text[])
                    UNION ALL
                    SELECT DISTINCT 'p', number.value, c.id FROM contacts.contacts c
                    CROSS JOIN LATERAL unnest(c.phone_numbers) AS number(value)
                    WHERE c.tenant_id = $1 AND c.deleted_at IS NULL
                      AND c.phone_numbers && $3::text[] AND number.value = ANY($3::text[])
                ) matches
            ) numbered
            WHERE n <= $4 ORDER BY kind, value, contact_id
            """,
            [
                .text(actor.tenantID), .array(emails.map(PostgresValue.text), elementType: .text),
                .array(phones.map(PostgresValue.text), elementType: .text), .int(Int64(limit + 1)),
            ])
        var found: (emails: [String: [UUID]], phones: [String: [UUID]]) = ([:], [:])
        for row in rows {
            let value = try row.string("value")
            let id = try row.uuid("contact_id")
            if try row.string("kind") == "e" { found.emails[value, default: []].append(id) } else { found.phones[value, default: []].append(id) }
        }
        return found
    }

    /// A contact's data written over, if it is still at version `$3` (and live, when `live`): tenant `$1`, id `$2`, then
    /// ``dataBinds(_:)`` from `$4` and the actor at `$18`; returns the row.
    static func dataUpdate(live: Bool) -> String {
        """
        UPDATE contacts.contacts SET given_name = $4, family_name = $5, middle_name = $6, name_prefix = $7,
            name_suffix = $8, display_name = $9, emails = $10, phones = $11, addresses = $12, contact_type = $13,
            status = $14, tags = $15, owner_id = $16, custom_fields = $17, version = version + 1,
            updated_at = now(), updated_by = $18
        WHERE tenant_id = $1 AND id = $2 AND version = $3\(live ? " AND deleted_at IS NULL" : "")
        RETURNING \(columns)
        """
    }

    public func replace(
        id: UUID, expectedVersion: Int64, data: ContactData, changedFields: [String], actor: Actor, write: WriteOptions<ContactRecord>
    ) async throws -> WriteOutcome<ContactRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            guard
                let row = try await c.query(
                    Self.dataUpdate(live: true),
                    [.text(actor.tenantID), .uuid(id), .int(expectedVersion)] + Self.dataBinds(data) + [.text(actor.userID)]
                ).first
            else {
                try await throwVersionConflict(id: id, actor: actor, on: c)
            }
            try await releaseEmails(id: id, actor: actor, on: c)
            try await reserveEmails(data, id: id, actor: actor, on: c)
            let record = try Self.record(row)
            try await recordChange(record, kind: .updated, fields: changedFields, actor: actor, on: c)
            try await recordTerms([id], actor: actor, on: c)
            return record
        }
    }

    func throwVersionConflict(id: UUID, actor: Actor, on c: PostgresConnection) async throws -> Never {
        let current = try await c.query(
            "SELECT version, deleted_at FROM contacts.contacts WHERE tenant_id = $1 AND id = $2", [.text(actor.tenantID), .uuid(id)]
        ).first
        guard let current, try current.optionalDate("deleted_at") == nil else { throw ContactsError.notFound(id.uuidString.lowercased()) }
        throw ContactsError.etagMismatch(current: "\"\(try current.int("version"))\"")
    }

    public func setDeleted(
        id: UUID, deleted: Bool, expectedVersion: Int64?, actor: Actor, write: WriteOptions<ContactRecord>
    ) async throws -> WriteOutcome<ContactRecord> {
        try await idempotency.transaction(write, actor: actor, pool: pool) { c in
            guard
                let row = try await c.query(
                    """
                    UPDATE contacts.contacts SET deleted_at = CASE WHEN $3 THEN now() ELSE NULL END, version = version + 1,
                        updated_at = now(), updated_by = $5
                    WHERE tenant_id = $1 AND id = $2 AND (deleted_at IS NULL) = $3 AND ($4::int8 IS NULL OR version = $4)
                      AND ($3 OR merged_into IS NULL)
                    RETURNING \(Self.columns)
                    """, [.text(actor.tenantID), .uuid(id), .bool(deleted), expectedVersion.map(PostgresValue.int) ?? .null, .text(actor.userID)]
                ).first
            else {
                // Merged away since it was read: restoring it here would leave it pointing at its winner.
                if !deleted,
                    let winner = try await c.query(
                        "SELECT merged_into FROM contacts.contacts WHERE tenant_id = $1 AND id = $2 AND merged_into IS NOT NULL",
                        [.text(actor.tenantID), .uuid(id)]
                    ).first?.uuid("merged_into")
                {
                    throw ContactsError.mergedAway(
                        id: id.uuidString.lowercased(), into: winner.uuidString.lowercased(), action: "UnmergeContact restores it")
                }
                if expectedVersion != nil { try await throwVersionConflict(id: id, actor: actor, on: c) }
                throw ContactsError.notFound(id.uuidString.lowercased())
            }
            let record = try Self.record(row)
            if deleted {
                try await releaseEmails(id: id, actor: actor, on: c)
            } else {
                try await reserveEmails(record.data, id: id, actor: actor, on: c)
            }
            try await recordChange(record, kind: deleted ? .deleted : .undeleted, fields: [], actor: actor, on: c)
            // A restored contact's words may have been swept from the terms while it was deleted. After the change, as
            // on every write path: writers take the tenant's change sequence, then new terms, always in that order.
            if !deleted { try await recordTerms([id], actor: actor, on: c) }
            return record
        }
    }

    public func list(_ query: ContactQuery, actor: Actor) async throws -> ContactRows {
        var conditions = ["tenant_id = $1"]
        var binds: [PostgresValue] = [.text(actor.tenantID)]
        func bind(_ value: PostgresValue) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        if !query.includeDeleted { conditions.append("deleted_at IS NULL") }
        if !query.statuses.isEmpty {
            conditions.append("status = ANY(\(bind(.array(query.statuses.map { .int(Int64($0.rawValue)) }, elementType: .int))))")
        }
        if !query.kinds.isEmpty {
            conditions.append("contact_type = ANY(\(bind(.array(query.kinds.map { .int(Int64($0.rawValue)) }, elementType: .int))))")
        }
        if let tag = query.tag { conditions.append("tags @> ARRAY[\(bind(.text(tag.lowercased())))]::text[]") }
        if let owner = query.ownerID { conditions.append("owner_id = \(bind(.text(owner)))") }
        if let d = query.createdAfter { conditions.append("created_at > \(bind(.timestamp(d)))") }
        if let d = query.createdBefore { conditions.append("created_at < \(bind(.timestamp(d)))") }
        if let d = query.updatedAfter { conditions.append("updated_at > \(bind(.timestamp(d)))") }
        if let d = query.updatedBefore { conditions.append("updated_at < \(bind(.timestamp(d)))") }
        let sortColumn: String
        switch query.order {
        case .createTime: sortColumn = "created_at"
        case .updateTime: sortColumn = "updated_at"
        case .familyName: sortColumn = "family_name"
        }
        let direction = query.descending ? "DESC" : "ASC"
        if let cursor = query.after {
            let key: String
            if query.order == .familyName {
                key = bind(.text(cursor.key))
            } else {
                // Microseconds as an exact integer: a double of seconds would lose the last digit. The domain
                // checked the cursor's range.
                key = "('epoch'::timestamptz + \(bind(.int(Int64(cursor.key) ?? 0))) * interval '1 microsecond')"
            }
            conditions.append("(\(sortColumn), id) \(query.descending ? "<" : ">") (\(key), \(bind(.uuid(cursor.id))))")
        }
        let limit = bind(.int(Int64(max(0, min(query.limit, ContactsDomain.maxPageSize)) + 1)))
        let maxBytes = bind(.int(Int64(max(0, query.maxBytes))))
        let order = "\(sortColumn) \(direction), id \(direction)"
        // Only fixed column names and placeholders are spliced; every value above is bound.
        // The innermost query finds the candidate rows by index; around it, each row's text size and those before
        // it: rows that start past the byte budget are left in the database (the row that crosses it is read, so
        // a page is never empty). `candidates` tells whether rows were left.
        let sql = """
            SELECT * FROM (
                SELECT r.*, count(*) OVER () AS candidates,
                       coalesce(sum(octet_length(r::text)) OVER (ORDER BY \(order) ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                           AS bytes_before
                FROM (
                    SELECT \(Self.columns) FROM contacts.contacts WHERE \(conditions.joined(separator: " AND "))
                    ORDER BY \(order) LIMIT \(limit)
                ) r
            ) w WHERE bytes_before < \(maxBytes) ORDER BY \(order)
            """
        let rows = try await read(actor, sql, binds)
        let candidates = try rows.first?.int("candidates") ?? 0
        var records = try rows.map(Self.record)
        if records.count > query.limit { records.removeLast(records.count - max(0, query.limit)) }
        return ContactRows(records: records, more: candidates > records.count)
    }
}
