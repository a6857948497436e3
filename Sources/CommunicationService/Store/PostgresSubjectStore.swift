import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// One record held about a person.
public enum SubjectRecord: Sendable, Hashable {
    /// An interaction they take part in.
    case interaction(InteractionRecord)
    /// A consent ledger entry.
    case consent(ConsentRecord)
    /// A send to them.
    case send(SendRecord)
    /// Their stored preferences.
    case preferences(PreferencesRecord)
}

/// Reads everything held about one person (ExportSubject) in keyset batches bounded in rows and in bytes: a batch ends
/// before the row that would take its text past the byte budget (the first row of a batch is always taken), so memory
/// stays near one budget however large the rows are.
public struct PostgresSubjectStore: Sendable {
    let pool: PostgresPool
    /// Bytes of text one batch may hold (about).
    let batchBytes: Int
    /// Rows one batch may hold.
    let batchRows: Int

    /// Creates the store.
    public init(pool: PostgresPool, batchBytes: Int, batchRows: Int = 256) {
        self.pool = pool
        self.batchBytes = batchBytes
        self.batchRows = batchRows
    }

    /// Delivers the person's records in batches: interactions, consent entries, sends, then their preferences.
    public func export(contact: UUID, actor: Actor, deliver: ([SubjectRecord]) async throws -> Void) async throws {
        let (tenant, person) = (PostgresValue.text(actor.tenantID), PostgresValue.uuid(contact))
        let (budget, rows) = (PostgresValue.int(Int64(batchBytes)), PostgresValue.int(Int64(batchRows)))
        // Each query reads up to `rows` rows past the cursor, then keeps those whose running text size (before them)
        // is within the budget.
        var after: String?
        repeat {
            let batch = try await pool.query(
                settings: ["app.tenant_id": actor.tenantID],
                """
                SELECT * FROM (
                    SELECT \(PostgresInteractionStore.columns), i.id::text AS cursor,
                        sum(octet_length(i.subject) + octet_length(i.body) + 256) OVER (ORDER BY i.id) - (octet_length(i.subject) + octet_length(i.body) + 256) AS before
                    FROM communication.interaction_contacts ic
                    JOIN communication.interactions i ON i.tenant_id = ic.tenant_id AND i.id = ic.interaction_id
                    WHERE ic.tenant_id = $1 AND ic.contact_id = $2 AND ($3::uuid IS NULL OR i.id > $3::uuid)
                    ORDER BY i.id LIMIT $5
                ) t WHERE before < $4 ORDER BY id
                """, [tenant, person, after.map(PostgresValue.text) ?? .null, budget, rows]
            ).rows
            if !batch.isEmpty { try await deliver(try batch.map { .interaction(try PostgresInteractionStore.record($0)) }) }
            after = batch.isEmpty ? nil : try batch.last!.string("cursor")
        } while after != nil
        var afterSequence: Int64 = 0
        while true {
            let batch = try await pool.query(
                settings: ["app.tenant_id": actor.tenantID],
                """
                SELECT * FROM (
                    SELECT \(PostgresConsentStore.columns),
                        sum(octet_length(source) + 256) OVER (ORDER BY sequence) - (octet_length(source) + 256) AS before
                    FROM communication.consent_ledger WHERE tenant_id = $1 AND contact_id = $2 AND sequence > $3 ORDER BY sequence LIMIT $5
                ) t WHERE before < $4 ORDER BY sequence
                """, [tenant, person, .int(afterSequence), budget, rows]
            ).rows
            guard let last = batch.last else { break }
            try await deliver(try batch.map { .consent(try PostgresConsentStore.record($0)) })
            afterSequence = try last.int("sequence")
        }
        after = nil
        repeat {
            let batch = try await pool.query(
                settings: ["app.tenant_id": actor.tenantID],
                """
                SELECT * FROM (
                    SELECT \(PostgresSendStore.columns), id::text AS cursor,
                        sum(octet_length(subject) + octet_length(body) + 256) OVER (ORDER BY id) - (octet_length(subject) + octet_length(body) + 256) AS before
                    FROM communication.sends WHERE tenant_id = $1 AND contact_id = $2 AND ($3::uuid IS NULL OR id > $3::uuid) ORDER BY id LIMIT $5
                ) t WHERE before < $4 ORDER BY id
                """, [tenant, person, after.map(PostgresValue.text) ?? .null, budget, rows]
            ).rows
            if !batch.isEmpty { try await deliver(try batch.map { .send(try PostgresSendStore.record($0)) }) }
            after = batch.isEmpty ? nil : try batch.last!.string("cursor")
        } while after != nil
        if let row = try await pool.query(
            settings: ["app.tenant_id": actor.tenantID],
            "SELECT \(PostgresPreferencesStore.columns) FROM communication.preferences p WHERE p.tenant_id = $1 AND p.contact_id = $2",
            [tenant, person]
        ).first {
            try await deliver([.preferences(try PostgresPreferencesStore.record(row))])
        }
    }
}
