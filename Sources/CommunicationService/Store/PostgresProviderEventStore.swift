import FoundationEssentials
import SwitchboardPostgres

/// Applies provider events: finds the send across tenants (the dispatcher's read policy), then, in the send's tenant,
/// records the event once (by the provider's event id) and raises the send's delivery state, never lowering it.
public struct PostgresProviderEventStore: Sendable {
    let pool: PostgresPool
    /// The published form of a send, for its delivery-state changes.
    let publishSend: @Sendable (SendRecord) throws -> String

    /// What applying an event did.
    public enum Applied: Sendable, Hashable {
        /// Recorded; the send's state is now `state` (which may be higher than the event's).
        case applied(state: DeliveryState)
        /// The event id was seen before: nothing changed.
        case duplicate
        /// No send has this id.
        case unknownSend
    }

    /// Creates the store.
    public init(pool: PostgresPool, publishSend: @escaping @Sendable (SendRecord) throws -> String = CommunicationService.publishSend) {
        self.pool = pool
        self.publishSend = publishSend
    }

    /// Applies one event in one transaction.
    public func apply(_ event: ProviderEvent) async throws -> Applied {
        try await pool.transaction(settings: ["app.dispatcher": "on"]) { c in
            guard
                let send = try await c.query(
                    "SELECT tenant_id, delivery_state FROM communication.sends WHERE id = $1 FOR UPDATE", [.uuid(event.sendID)]
                ).first
            else { return .unknownSend }
            let tenant = try send.string("tenant_id")
            try await c.query("SELECT set_config('app.tenant_id', $1, true) AS tenant", [.text(tenant)])
            let inserted = try await c.query(
                """
                INSERT INTO communication.provider_events (tenant_id, event_id, send_id, state) VALUES ($1, $2, $3, $4)
                ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING event_id
                """, [.text(tenant), .text(event.eventID), .uuid(event.sendID), .int(Int64(event.state.rawValue))])
            guard !inserted.rows.isEmpty else { return .duplicate }
            // greatest(): ranks only rise, whatever order the events arrive in.
            let row = try await c.query(
                """
                UPDATE communication.sends SET delivery_state = greatest(delivery_state, $3), version = version + 1, updated_at = now(),
                    updated_by = 'provider'
                WHERE tenant_id = $1 AND id = $2 RETURNING delivery_state
                """, [.text(tenant), .uuid(event.sendID), .int(Int64(event.state.rawValue))]
            ).first!
            // The interaction that logs the send follows the same rule (absent if the send is not SENT).
            try await c.query(
                "UPDATE communication.interactions SET delivery_state = greatest(delivery_state, $3) WHERE tenant_id = $1 AND id = $2",
                [.text(tenant), .uuid(event.sendID), .int(Int64(event.state.rawValue))])
            let state = try row.int("delivery_state")
            if state != (try send.int("delivery_state")) {
                try await SendChanges.record(
                    id: event.sendID, tenantID: tenant, changedFields: ["delivery_state"], actorID: "provider", publish: publishSend, on: c)
            }
            return .applied(state: DeliveryState(rawValue: Int(state)) ?? event.state)
        }
    }
}
