import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresOrganizationStore: SubjectStore {
    public func export(contact: UUID, batchSize: Int, actor: Actor, deliver: ([SubjectRecord]) async throws -> Void) async throws {
        let limit = PostgresValue.int(Int64(max(1, batchSize)))
        var after: UUID?
        while true {
            let rows = try await pool.query(
                settings: ["app.tenant_id": actor.tenantID],
                """
                SELECT \(Self.membershipColumns), p.display_name AS contact_display_name FROM organization.memberships m
                LEFT JOIN organization.contacts p ON p.tenant_id = m.tenant_id AND p.contact_id = m.contact_id
                WHERE m.tenant_id = $1 AND m.contact_id = $2 AND ($3::uuid IS NULL OR m.id > $3) ORDER BY m.id LIMIT $4
                """, [.text(actor.tenantID), .uuid(contact), after.map(PostgresValue.uuid) ?? .null, limit]
            ).rows
            let records = try rows.map(Self.membership)
            if !records.isEmpty { try await deliver(records.map(SubjectRecord.membership)) }
            guard records.count == batchSize, let last = records.last else { break }
            after = last.id
        }
        after = nil
        while true {
            let rows = try await pool.query(
                settings: ["app.tenant_id": actor.tenantID],
                """
                SELECT \(Self.groupColumns) FROM organization.group_members gm
                JOIN organization.groups g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id
                WHERE gm.tenant_id = $1 AND gm.contact_id = $2 AND ($3::uuid IS NULL OR g.id > $3) ORDER BY g.id LIMIT $4
                """, [.text(actor.tenantID), .uuid(contact), after.map(PostgresValue.uuid) ?? .null, limit]
            ).rows
            let records = try rows.map(Self.group)
            if !records.isEmpty { try await deliver(records.map(SubjectRecord.group)) }
            guard records.count == batchSize, let last = records.last else { break }
            after = last.id
        }
    }
}
