import FoundationEssentials
import SwitchboardPostgres
import SwitchboardProtos  // JSON only (the jsonb columns' text), as in JSONText
import SwitchboardServiceKit

/// A batch lost a race for an address to a concurrent writer after reading its holders: the batch rolls back and runs
/// again (its next read sees the new holder).
private struct ImportAddressRace: Error {}

extension PostgresContactStore {
    public func beginImport(_ settings: ImportSettings, actor: Actor) async throws -> Int {
        let tenant = PostgresValue.text(actor.tenantID)
        let importID = PostgresValue.text(settings.importID)
        if !settings.dryRun {
            // The import's row, committed before any batch: a batch's transaction that inserted it would make every
            // other batch's insert wait for that transaction, which may itself wait its turn behind them.
            let found = try await pool.transaction(settings: ["app.tenant_id": actor.tenantID]) { c in
                try await c.pipeline([
                    (
                        sql: """
                        INSERT INTO contacts.imports (tenant_id, import_id, fingerprint, created_by) VALUES ($1, $2, $3, $4)
                        ON CONFLICT (tenant_id, import_id) DO NOTHING
                        """, binds: [tenant, importID, .text(settings.fingerprint), .text(actor.userID)]
                    ),
                    (sql: "SELECT fingerprint FROM contacts.imports WHERE tenant_id = $1 AND import_id = $2", binds: [tenant, importID]),
                ])
            }
            if try found[1].first?.string("fingerprint") != settings.fingerprint {
                try await replaceImportOptions(settings, actor: actor)
            }
        }
        let rows = try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            "SELECT coalesce(max(row_number), 0) AS n FROM contacts.import_rows WHERE tenant_id = $1 AND import_id = $2", [tenant, importID]
        ).rows
        return Int(try rows.first?.int("n") ?? 0)
    }

    /// Records other options for an import id that has written nothing yet (a first call whose rows were all invalid,
    /// or whose client went before a batch was written, fixes nothing); refuses
    /// (``ContactsError/importOptionsChanged(importID:)``) one that has written rows, or has a batch in flight.
    ///
    /// A batch holds the import's row `FOR SHARE` from its options check to its commit. Taking the row `FOR UPDATE`
    /// `NOWAIT` therefore fails while a batch under the recorded options is in flight (those options are in use), and
    /// once taken, the ledger read after it sees every row a batch committed; a batch that starts later reads the new
    /// options and is refused. Waiting for the lock instead could wait for a whole import: batches' share locks may
    /// overtake a waiting update.
    private func replaceImportOptions(_ settings: ImportSettings, actor: Actor) async throws {
        let tenant = PostgresValue.text(actor.tenantID)
        let importID = PostgresValue.text(settings.importID)
        do {
            try await pool.transaction(settings: ["app.tenant_id": actor.tenantID]) { c in
                let found = try await c.pipeline([
                    (
                        sql: "SELECT fingerprint FROM contacts.imports WHERE tenant_id = $1 AND import_id = $2 FOR UPDATE NOWAIT",
                        binds: [tenant, importID]
                    ),
                    (
                        sql: """
                        SELECT EXISTS (SELECT 1 FROM contacts.import_rows WHERE tenant_id = $1 AND import_id = $2) AS written
                        """, binds: [tenant, importID]
                    ),
                ])
                if try found[0].first?.string("fingerprint") == settings.fingerprint { return }
                guard try found[1].first?.bool("written") == false else {
                    throw ContactsError.importOptionsChanged(importID: settings.importID)
                }
                // Recorded again (also when the retention pruned the row meanwhile): a new start for the retention.
                _ = try await c.query(
                    """
                    INSERT INTO contacts.imports (tenant_id, import_id, fingerprint, created_by) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (tenant_id, import_id) DO UPDATE
                    SET fingerprint = excluded.fingerprint, created_by = excluded.created_by, created_at = now(), updated_at = now()
                    """, [tenant, importID, .text(settings.fingerprint), .text(actor.userID)])
            }
        } catch let error as PostgresError where error.sqlState == "55P03" {
            // lock_not_available: a batch under the recorded options is being written.
            throw ContactsError.importOptionsChanged(importID: settings.importID)
        }
    }

    public func importBatch(
        _ rows: [ImportBatchRow], settings: ImportSettings, actor: Actor, turn: ImportTurn,
        plan: @Sendable ([ImportBatchRow], ImportExisting, Date) -> ImportPlan
    ) async throws -> [ImportRowResult] {
        // Decided outside the batch's transaction (a probe's error would abort it).
        let words = await searchWords.words(pool: pool)
        await turn.connect()
        // Every attempt on the one connection: a batch running again after a race is the import's first unended one, and
        // a later batch waiting for its turn may hold the connection it gave back.
        return try await pool.withConnection { c in
            turn.connected()
            var attempt = 0
            while true {
                attempt += 1
                do {
                    return try await c.transaction(settings: ["app.tenant_id": actor.tenantID]) { c in
                        try await importBatch(rows, settings: settings, actor: actor, words: words, turn: turn.write, plan: plan, on: c)
                    }
                } catch is ImportAddressRace where attempt < 5 {
                    continue
                } catch let error as PostgresError where error.sqlState == "23505" && attempt < 5 && c.isHealthy {
                    // Another stream of this import wrote some of these rows first (the ledger's key): the next attempt
                    // reads them as resumed.
                    continue
                } catch let error as PostgresError where error.isRetryableTransactionFailure && attempt < 5 && c.isHealthy {
                    try await Task.sleep(for: .milliseconds(Int64.random(in: 5...(20 * Int64(attempt)))))
                }
            }
        }
    }

    private func importBatch(
        _ rows: [ImportBatchRow], settings: ImportSettings, actor: Actor, words: SearchWords?, turn: () async -> Void,
        plan: ([ImportBatchRow], ImportExisting, Date) -> ImportPlan, on c: PostgresConnection
    ) async throws -> [ImportRowResult] {
        let tenant = PostgresValue.text(actor.tenantID)
        let importID = PostgresValue.text(settings.importID)
        if !settings.dryRun {
            // The import's row (``beginImport(_:actor:)`` committed it), share-locked: batches of one stream overlap in
            // the database, and a call that would record other options for an import that has written nothing is refused
            // while one is in flight (``replaceImportOptions(_:actor:)``). Rows are written at most once by the ledger's key: a
            // batch that finds rows of its own written by a concurrent one fails on that key and runs again, reading
            // them as resumed. Another stream of this import id with other options is refused here too.
            let found = try await c.query(
                "SELECT fingerprint FROM contacts.imports WHERE tenant_id = $1 AND import_id = $2 FOR SHARE", [tenant, importID])
            guard try found.rows.first?.string("fingerprint") == settings.fingerprint else {
                throw ContactsError.importOptionsChanged(importID: settings.importID)
            }
        }
        // Updating, a batch locks the contacts its rows match (FOR UPDATE below) before it writes: it waits its turn
        // first, or it could hold a contact the batch before it needs while waiting for that batch to end.
        if settings.policy == .update && !settings.dryRun { await turn() }
        let valid = rows.compactMap(\.contact)
        let emails = Set(valid.flatMap { $0.data.emails.map { $0.address.lowercased() } })
        let phones = settings.matchPhone ? Set(valid.flatMap { $0.data.phones.map(\.e164).filter { !$0.isEmpty } }) : []
        var reads: [(sql: String, binds: [PostgresValue])] = [
            (
                sql: """
                SELECT row_number, outcome, contact_id, record_digest FROM contacts.import_rows
                WHERE tenant_id = $1 AND import_id = $2 AND row_number BETWEEN $3 AND $4
                """, binds: [tenant, importID, .int(Int64(rows.first?.row ?? 0)), .int(Int64(rows.last?.row ?? 0))]
            ),
            (
                sql: "SELECT address, contact_id FROM contacts.contact_emails WHERE tenant_id = $1 AND address = ANY($2::text[])",
                binds: [tenant, .array(emails.sorted().map(PostgresValue.text), elementType: .text)]
            ),
        ]
        if !phones.isEmpty {
            reads.append(
                (
                    sql: """
                    SELECT value, contact_id FROM (
                        SELECT number.value, c.id AS contact_id, row_number() OVER (PARTITION BY number.value ORDER BY c.id) AS n
                        FROM contacts.contacts c CROSS JOIN LATERAL unnest(c.phone_numbers) AS number(value)
                        WHERE c.tenant_id = $1 AND c.deleted_at IS NULL AND c.phone_numbers && $2::text[] AND number.value = ANY($2::text[])
                    ) m WHERE n <= 2
                    """, binds: [tenant, .array(phones.sorted().map(PostgresValue.text), elementType: .text)]
                ))
        }
        let results = try await c.pipeline(reads)
        var existing = ImportExisting()
        let digests = Dictionary(rows.map { ($0.row, $0.digest) }, uniquingKeysWith: { first, _ in first })
        for row in results[0].rows {
            guard let outcome = ImportOutcome(rawValue: Int(try row.int("outcome"))) else { continue }
            let number = Int(try row.int("row_number"))
            // A row written before from another record (or now unreadable, digest 0): the client sent another input
            // under this id. Refused before anything of it is written or skipped as written.
            if let written = try row.optionalInt("record_digest"), let sent = digests[number], written != sent {
                throw ContactsError.importInputChanged(importID: settings.importID, row: number)
            }
            existing.ledger[number] = (outcome, try row.uuid("contact_id"))
        }
        for row in results[1].rows { existing.emailHolders[try row.string("address")] = try row.uuid("contact_id") }
        if results.count > 2 {
            for row in results[2].rows { existing.phoneHolders[try row.string("value"), default: []].append(try row.uuid("contact_id")) }
        }
        if settings.policy == .update {
            let ids = Set(existing.emailHolders.values).union(existing.phoneHolders.values.flatMap { $0 })
            if !ids.isEmpty {
                let lock = settings.dryRun ? "" : " FOR UPDATE"
                for row in try await c.query(
                    "SELECT \(Self.columns) FROM contacts.contacts WHERE tenant_id = $1 AND id = ANY($2) AND deleted_at IS NULL ORDER BY id\(lock)",
                    [tenant, .array(ids.sorted { $0.lowercaseText < $1.lowercaseText }.map(PostgresValue.uuid), elementType: .uuid)]
                ).rows {
                    let record = try Self.record(row)
                    existing.records[record.id] = record
                }
            }
        }
        // Whole microseconds: what PostgreSQL stores, so the change events match every later read.
        let now = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1_000_000).rounded() / 1_000_000)
        let decided = plan(rows, existing, now)
        // A dry run writes nothing; its plan's results are already as a preview gives them (``ImportPreview``).
        if settings.dryRun { return decided.results }
        var statements: [(sql: String, binds: [PostgresValue])] = []
        var expectedReservations: [Int: Int] = [:]
        // The new contacts' words, when the service splits them as the database does; their terms then come from them.
        var terms = SearchWords.Terms(collect: true)
        let given = words.map { words in decided.creates.map { words.contactWords($0.data, terms: &terms) } }
        if !decided.creates.isEmpty {
            statements.append(Self.insertStatement(decided.creates, actor: actor, words: given))
            // In address order: two batches reserving the same addresses take their locks in one order (no deadlock).
            let pairs = decided.creates.flatMap { record in record.data.emails.map { ($0.address.lowercased(), record.id) } }.sorted { $0.0 < $1.0 }
            if !pairs.isEmpty {
                expectedReservations[statements.count] = pairs.count
                statements.append(
                    (
                        sql: """
                        INSERT INTO contacts.contact_emails (tenant_id, address, contact_id)
                        SELECT $1, a, c FROM unnest($2::text[], $3::uuid[]) AS t(a, c)
                        ON CONFLICT (tenant_id, address) DO NOTHING RETURNING 1 AS reserved
                        """,
                        binds: [
                            tenant, .array(pairs.map { .text($0.0) }, elementType: .text), .array(pairs.map { .uuid($0.1) }, elementType: .uuid),
                        ]
                    ))
            }
        }
        for update in decided.updates {
            let record = update.record
            expectedReservations[statements.count] = 1
            statements.append(
                (
                    sql: """
                    UPDATE contacts.contacts SET given_name = $4, family_name = $5, middle_name = $6, name_prefix = $7,
                        name_suffix = $8, display_name = $9, emails = $10, phones = $11, addresses = $12, contact_type = $13,
                        status = $14, tags = $15, owner_id = $16, custom_fields = $17, version = version + 1,
                        updated_at = $18, updated_by = $19
                    WHERE tenant_id = $1 AND id = $2 AND version = $3 AND deleted_at IS NULL RETURNING 1 AS reserved
                    """,
                    binds: [tenant, .uuid(record.id), .int(update.expectedVersion)] + Self.dataBinds(record.data) + [
                        .timestamp(record.updatedAt), .text(actor.userID),
                    ]
                ))
            statements.append(Self.releaseEmailsStatement(id: record.id, tenantID: actor.tenantID))
            if !record.data.emails.isEmpty {
                expectedReservations[statements.count] = record.data.emails.count
                statements.append(
                    (
                        sql: """
                        INSERT INTO contacts.contact_emails (tenant_id, address, contact_id) SELECT $1, unnest($2::text[]), $3
                        ON CONFLICT (tenant_id, address) DO NOTHING RETURNING 1 AS reserved
                        """,
                        binds: [tenant, .array(record.data.emails.map { .text($0.address.lowercased()) }, elementType: .text), .uuid(record.id)]
                    ))
            }
        }
        let changes =
            try decided.creates.map {
                ChangeRecord(
                    resourceType: Self.resourceType, resourceID: $0.id.lowercaseText, kind: .created, resourceJSON: try publish($0),
                    actorID: actor.userID)
            }
            + decided.updates.map {
                ChangeRecord(
                    resourceType: Self.resourceType, resourceID: $0.record.id.lowercaseText, kind: .updated, changedFields: $0.changedFields,
                    resourceJSON: try publish($0.record), actorID: actor.userID)
            }
        if !changes.isEmpty {
            statements.append(feed.recordStatement(changes, tenantID: actor.tenantID))
            if given != nil {
                statements.append(Self.termsStatement(decided.updates.map(\.record.id), words: Array(terms.words), tenantID: actor.tenantID))
            } else {
                statements.append(Self.termsStatement(changes.map { UUID(text: $0.resourceID)! }, tenantID: actor.tenantID))
            }
        }
        let written = decided.results.filter { !$0.resumed && $0.outcome != .invalid && $0.contactID != nil }
        if !written.isEmpty {
            statements.append(
                (
                    sql: """
                    INSERT INTO contacts.import_rows (tenant_id, import_id, row_number, outcome, contact_id, record_digest)
                    SELECT $1, $2, r, o, c, nullif(d, 0) FROM unnest($3::int8[], $4::int8[], $5::uuid[], $6::int8[]) AS t(r, o, c, d)
                    """,
                    binds: [
                        tenant, importID, .array(written.map { .int(Int64($0.row)) }, elementType: .int),
                        .array(written.map { .int(Int64($0.outcome.rawValue)) }, elementType: .int),
                        .array(written.map { .uuid($0.contactID!) }, elementType: .uuid),
                        .array(written.map { .int(digests[$0.row] ?? 0) }, elementType: .int),
                    ]
                ))
        }
        // The new contacts' rows (the batch's dearest statement, which takes nothing another batch needs) go in while an
        // earlier batch may still be writing; the addresses and the rest wait for the earlier batches' end, so an earlier
        // row keeps an address a later row also gives (that row reads it taken and runs again as its duplicate).
        guard !statements.isEmpty else { return decided.results }
        let head = decided.creates.isEmpty ? 0 : 1
        var outcomes = head > 0 ? try await c.pipeline(Array(statements[..<head])) : []
        await turn()
        if statements.count > head { outcomes += try await c.pipeline(Array(statements[head...])) }
        for (index, expected) in expectedReservations where outcomes[index].rows.count != expected {
            // An address taken (or a contact changed) by a concurrent writer since this batch read them.
            throw ImportAddressRace()
        }
        return decided.results
    }

    /// Inserts contacts in one statement: one array per column, unnested (jsonb values as JSON text, text[] values as
    /// array literals).
    /// - Parameter given: each contact's search words and name words (``SearchWords/contactWords(_:organizationNames:terms:)``),
    ///   when the service splits words as the database does (``SearchWordsSource``): the trigger keeps them (migration
    ///   018); nil leaves them to the trigger.
    static func insertStatement(
        _ records: [ContactRecord], actor: Actor, words given: [(words: String, names: String)]?
    ) -> (sql: String, binds: [PostgresValue]) {
        func texts(_ values: [String]) -> PostgresValue { .array(values.map(PostgresValue.text), elementType: .text) }
        func ints(_ values: [Int]) -> PostgresValue { .array(values.map { .int(Int64($0)) }, elementType: .int) }
        let data = records.map(\.data)
        let wordTexts: PostgresValue = given.map { texts($0.map(\.words)) } ?? .array(records.map { _ in .null }, elementType: .text)
        let nameTexts: PostgresValue = given.map { texts($0.map(\.names)) } ?? .array(records.map { _ in .null }, elementType: .text)
        return (
            sql: """
            INSERT INTO contacts.contacts (tenant_id, id, given_name, family_name, middle_name, name_prefix, name_suffix,
                display_name, emails, phones, addresses, contact_type, status, tags, owner_id, custom_fields,
                created_at, created_by, updated_at, updated_by, search_words, search_names)
            SELECT $1, u.id, u.given, u.family, u.middle, u.prefix, u.suffix, u.display, u.emails::jsonb, u.phones::jsonb,
                u.addresses::jsonb, u.kind, u.status, u.tags::text[], u.owner, u.custom::jsonb,
                $17, $18, $17, $18, coalesce(array_to_tsvector(string_to_array(u.words, ' ')), ''), coalesce(string_to_array(u.names, ' '), '{}')
            FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                $11::text[], $12::int8[], $13::int8[], $14::text[], $15::text[], $16::text[], $19::text[], $20::text[])
                AS u(id, given, family, middle, prefix, suffix, display, emails, phones, addresses, kind, status, tags, owner, custom,
                    words, names)
            """,
            binds: [
                .text(actor.tenantID), .array(records.map { .uuid($0.id) }, elementType: .uuid), texts(data.map(\.name.given)),
                texts(data.map(\.name.family)), texts(data.map(\.name.middle)), texts(data.map(\.name.prefix)), texts(data.map(\.name.suffix)),
                texts(data.map(\.name.display)), texts(data.map { JSONText.emails($0.emails) }), texts(data.map { JSONText.phones($0.phones) }),
                texts(data.map { JSONText.addresses($0.addresses) }), ints(data.map(\.kind.rawValue)), ints(data.map(\.status.rawValue)),
                texts(data.map { PostgresValue.arrayLiteral($0.tags.map(PostgresValue.text)) }), texts(data.map(\.ownerID)),
                texts(data.map { JSONText.object($0.customFields) }), .timestamp(records.first?.createdAt ?? Date()), .text(actor.userID),
                wordTexts, nameTexts,
            ]
        )
    }
}
