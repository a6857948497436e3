import FoundationEssentials
import SwitchboardPostgres

/// The projections of the organization feed that put organization names into contact search
/// (`contacts.organizations`, `contacts.organization_memberships`) and the names each contact keeps
/// (`contacts.contacts.organization_names`, which the search trigger adds to its words). ``apply(_:on:)`` runs inside
/// the feed consumer's transaction, which also stores the feed's cursor: a batch's effects and its cursor commit
/// together. The consumer's transaction has no tenant; each change sets its own before touching tenant tables, so
/// row-level security holds for every write.
public struct PostgresOrganizationNames: Sendable {
    /// Creates the projections' writer.
    public init() {}

    /// Applies changes in feed order, then rewrites the names of the contacts they touched. An event older than the
    /// one a row holds (by the feed's sequence) changes nothing.
    public func apply(_ changes: [OrganizationChange], on c: PostgresConnection) async throws {
        // Contacts whose memberships changed, per tenant: their names are rewritten once, at the end of the batch.
        var touched: [String: Set<UUID>] = [:]
        var tenants: [String] = []
        for change in changes {
            try await setTenant(change.tenantID, on: c)
            let tenant = PostgresValue.text(change.tenantID), sequence = PostgresValue.int(change.sequence)
            var contacts: [UUID] = []
            switch change.kind {
            case .organization(let id, let name, let deleted):
                let applied = try await c.query(
                    """
                    INSERT INTO contacts.organizations AS o (tenant_id, organization_id, name, deleted, last_sequence)
                    VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (tenant_id, organization_id) DO UPDATE
                    SET name = EXCLUDED.name, deleted = EXCLUDED.deleted, last_sequence = EXCLUDED.last_sequence, updated_at = now()
                    WHERE o.last_sequence < EXCLUDED.last_sequence
                    RETURNING 1 AS applied
                    """, [tenant, .uuid(id), .text(name), .bool(deleted), sequence]
                ).first
                guard applied != nil else { continue }
                if !deleted { try await addTerms(of: name, tenant: tenant, on: c) }
                // Every member's names, in one statement (a rename of a large organization rewrites its members here).
                try await c.query(
                    Self.rewrite("SELECT DISTINCT contact_id FROM contacts.organization_memberships WHERE tenant_id = $1 AND organization_id = $2"),
                    [tenant, .uuid(id)])
            case .membership(let id, let contact, let organization, let endDate):
                contacts = try await c.query(
                    """
                    WITH before AS (
                        SELECT contact_id FROM contacts.organization_memberships WHERE tenant_id = $1 AND membership_id = $2
                    ), written AS (
                        INSERT INTO contacts.organization_memberships AS m
                            (tenant_id, membership_id, contact_id, organization_id, end_date, end_applied, last_sequence)
                        VALUES ($1, $2, $3, $4, $5::date, coalesce($5::date < current_date, false), $6)
                        ON CONFLICT (tenant_id, membership_id) DO UPDATE
                        SET contact_id = EXCLUDED.contact_id, organization_id = EXCLUDED.organization_id, end_date = EXCLUDED.end_date,
                            end_applied = EXCLUDED.end_applied, last_sequence = EXCLUDED.last_sequence, updated_at = now()
                        WHERE m.last_sequence < EXCLUDED.last_sequence
                        RETURNING contact_id
                    )
                    SELECT contact_id FROM before UNION SELECT contact_id FROM written
                    """,
                    [tenant, .uuid(id), .uuid(contact), .uuid(organization), endDate.isEmpty ? .null : .text(endDate), sequence]
                ).rows.map { try $0.uuid("contact_id") }
            case .membershipRemoved(let id):
                contacts = try await c.query(
                    "DELETE FROM contacts.organization_memberships WHERE tenant_id = $1 AND membership_id = $2 RETURNING contact_id",
                    [tenant, .uuid(id)]
                ).rows.map { try $0.uuid("contact_id") }
            }
            guard !contacts.isEmpty else { continue }
            if touched[change.tenantID] == nil { tenants.append(change.tenantID) }
            touched[change.tenantID, default: []].formUnion(contacts)
        }
        for tenantID in tenants {
            guard let ids = touched[tenantID] else { continue }
            try await setTenant(tenantID, on: c)
            try await c.query(
                Self.rewrite("SELECT unnest($2::uuid[])"),
                [.text(tenantID), .array(ids.sorted { $0.lowercaseText < $1.lowercaseText }.map { .uuid($0) }, elementType: .uuid)])
        }
    }

    private func setTenant(_ tenantID: String, on c: PostgresConnection) async throws {
        try await c.query("SELECT set_config('app.tenant_id', $1, true) AS tenant", [.text(tenantID)])
    }

    /// Adds an organization name's words of letters to the tenant's search terms, which a search expands a query's words against
    /// (in term order, as every writer adds them, so concurrent writers never deadlock; under the tenant's terms lock,
    /// see `PostgresContactStore.termsLock`).
    private func addTerms(of name: String, tenant: PostgresValue, on c: PostgresConnection) async throws {
        try await c.query(
            """
            WITH writer AS MATERIALIZED (SELECT \(PostgresContactStore.termsLock("$1")) AS locked)
            INSERT INTO contacts.search_terms (tenant_id, term)
            SELECT DISTINCT $1, w FROM writer, unnest(contacts.search_words_of($2)) AS w WHERE w ~ '^[[:alpha:]]' ORDER BY 2
            ON CONFLICT DO NOTHING
            """, [tenant, .text(name)])
    }

    /// Rewrites the names of the contacts holding memberships that have ended (by their date) since their names were
    /// last written, across tenants: read under the maintenance read policy, then written tenant by tenant under
    /// row-level security, at most `limit` memberships per call.
    /// - Returns: the memberships seen as ended.
    public func sweepEndedMemberships(pool: PostgresPool, limit: Int = 10_000) async throws -> Int {
        let ended = try await pool.transaction(settings: ["app.retention_purge": "on"]) { c in
            try await c.query(
                """
                SELECT tenant_id, membership_id, contact_id FROM contacts.organization_memberships
                WHERE end_date IS NOT NULL AND NOT end_applied AND end_date < current_date
                ORDER BY tenant_id, end_date LIMIT $1
                """, [.int(Int64(limit))]
            ).rows.map { (tenant: try $0.string("tenant_id"), membership: try $0.uuid("membership_id"), contact: try $0.uuid("contact_id")) }
        }
        for (tenantID, rows) in Dictionary(grouping: ended, by: \.tenant) {
            try await pool.transaction(settings: ["app.tenant_id": tenantID]) { c in
                let contacts = Set(rows.map(\.contact)).sorted { $0.lowercaseText < $1.lowercaseText }
                try await c.query(
                    Self.rewrite("SELECT unnest($2::uuid[])"), [.text(tenantID), .array(contacts.map { .uuid($0) }, elementType: .uuid)])
                try await c.query(
                    """
                    UPDATE contacts.organization_memberships SET end_applied = true
                    WHERE tenant_id = $1 AND membership_id = ANY($2::uuid[]) AND end_date < current_date
                    """,
                    [.text(tenantID), .array(rows.map { .uuid($0.membership) }, elementType: .uuid)])
            }
        }
        return ended.count
    }

    /// Rewrites the names of the contacts `targets` selects (a query on $1, the tenant, and $2): the distinct names,
    /// in order, of the live organizations they belong to now (memberships without an end date, or ending today or
    /// later). Only rows whose names change are written (the trigger then rewrites their words).
    static func rewrite(_ targets: String) -> String {
        """
        WITH target AS (\(targets)),
        named AS (
            SELECT t.contact_id AS id, coalesce((
                SELECT array_agg(DISTINCT o.name ORDER BY o.name)
                FROM contacts.organization_memberships m
                JOIN contacts.organizations o ON o.tenant_id = m.tenant_id AND o.organization_id = m.organization_id
                WHERE m.tenant_id = $1 AND m.contact_id = t.contact_id AND NOT o.deleted AND o.name <> ''
                  AND (m.end_date IS NULL OR m.end_date >= current_date)
            ), '{}') AS names
            FROM target AS t (contact_id)
        )
        UPDATE contacts.contacts c SET organization_names = n.names
        FROM named n
        WHERE c.tenant_id = $1 AND c.id = n.id AND c.organization_names IS DISTINCT FROM n.names
        """
    }
}
