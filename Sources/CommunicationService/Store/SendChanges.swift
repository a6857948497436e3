import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

/// A send's progress in the change feed: what the dispatcher, the provider's events and the contacts feed do to a
/// send is published as an UPDATED change of `switchboard.communication.v1.Send`, in the transaction that did it,
/// so a consumer (analytics' engagement flow) sees SENT, FAILED, REFUSED, CANCELLED and delivery states in order.
enum SendChanges {
    /// Reads the send as changed (within `tenantID`, which the transaction sets) and records its change.
    /// - Parameters:
    ///   - id: the send.
    ///   - tenantID: its tenant.
    ///   - changedFields: the fields that changed (`status`, `delivery_state`, …).
    ///   - actorID: who changed it (`dispatcher`, `provider`, `contacts-feed`).
    ///   - publish: the send's published form.
    ///   - kind: CREATED for a send just made (a campaign's), UPDATED otherwise.
    ///   - c: the transaction.
    static func record(
        id: UUID, tenantID: String, changedFields: [String], actorID: String, publish: @Sendable (SendRecord) throws -> String,
        kind: ChangeKind = .updated, on c: PostgresConnection
    ) async throws {
        try await c.query("SELECT set_config('app.tenant_id', $1, true) AS tenant", [.text(tenantID)])
        guard
            let row = try await c.query(
                "SELECT \(PostgresSendStore.columns) FROM communication.sends WHERE tenant_id = $1 AND id = $2", [.text(tenantID), .uuid(id)]
            ).first
        else { return }
        let send = try PostgresSendStore.record(row)
        try await ChangeFeed(schema: "communication").record(
            ChangeRecord(
                resourceType: PostgresSendStore.sendType, resourceID: id.lowercaseText, kind: kind, changedFields: changedFields,
                resourceJSON: try publish(send), actorID: actorID, relatedIDs: [send.contactID.lowercaseText]),
            tenantID: tenantID, on: c)
    }
}
