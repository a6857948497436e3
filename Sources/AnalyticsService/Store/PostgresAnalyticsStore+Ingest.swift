import FoundationEssentials
import SwitchboardPostgres
import SwitchboardRuntime
import SwitchboardServiceKit

extension PostgresAnalyticsStore {
    /// Who analytics' own feed events made while ingesting are recorded as.
    static let feedActor = "analytics-feed"

    /// A timeline entry to insert for one or more subjects of one type.
    struct NewEntry {
        var subjectType: SubjectKind
        var subjects: [UUID]
        var kind: EntryKind
        var time: Date
        var changedFields: [String] = []
        var summary = ""
        var activityKind = ""
        var statusFrom = "", statusTo = ""
    }

    /// Applies a batch of one source feed's events in order, inside the feed consumer's transaction (the cursor commits
    /// with the effects: exactly once). Each event sets its tenant first; row-level security holds every statement to it.
    /// - Parameters:
    ///   - events: the batch's events analytics follows, in feed order.
    ///   - c: the consumer's transaction.
    public func ingest(_ events: [IngestEvent], on c: PostgresConnection) async throws {
        var tenants = Set<String>()
        var current: String?
        // A tenant's alerts and model, read once per batch (most tenants have no alerts: one query, then nothing).
        var alerts: [String: (alerts: [AlertValue], model: ScoringModelValue)] = [:]
        for event in events {
            // Consecutive events of one tenant (the common case in a batch) share the setting.
            if current != event.tenantID {
                try await c.query("SELECT set_config('app.tenant_id', $1, true) AS tenant", [.text(event.tenantID)])
                current = event.tenantID
            }
            tenants.insert(event.tenantID)
            let touched = try await apply(event, on: c)
            if touched.isEmpty { continue }
            if alerts[event.tenantID] == nil { alerts[event.tenantID] = try await alertsAndModel(tenantID: event.tenantID, on: c) }
            if let found = alerts[event.tenantID], !found.alerts.isEmpty {
                try await checkAlerts(found.alerts, model: found.model, contacts: touched, tenantID: event.tenantID, on: c)
            }
        }
        // Wakes the tenants' WatchTimeline streams at commit (the kit's notifier listens on the feed's channel).
        for tenant in tenants.sorted() { try await c.query("SELECT pg_notify($1, $2)", [.text(feed.channel), .text(tenant)]) }
    }

    /// Applies one event; returns the contacts whose activities changed (for alerts).
    func apply(_ event: IngestEvent, on c: PostgresConnection) async throws -> [UUID] {
        let tenant = PostgresValue.text(event.tenantID)
        switch event.fact {
        case .contact(let state, let kind, let changed):
            let oldStatus = try await upsert(state, event, on: c)
            var entry = NewEntry(subjectType: .contact, subjects: [state.id], kind: kind, time: event.time, changedFields: changed)
            if oldStatus == nil || kind == .created {
                entry.statusTo = state.status
                if !state.status.isEmpty { try await enterStage(state.status, contact: state.id, at: event.time, tenant: event.tenantID, on: c) }
            } else if let oldStatus, oldStatus != state.status, !state.status.isEmpty {
                entry.kind = .statusChanged
                entry.statusFrom = oldStatus
                entry.statusTo = state.status
                entry.summary = "\(oldStatus) → \(state.status)"
                try await enterStage(state.status, contact: state.id, at: event.time, tenant: event.tenantID, on: c)
                let transition = LifecycleTransitionData(
                    id: UUID.random(), contactID: state.id, from: oldStatus, to: state.status, time: event.time)
                try await feed.record(
                    ChangeRecord(
                        resourceType: "switchboard.analytics.v1.LifecycleTransition", resourceID: transition.id.lowercaseText, kind: .created,
                        resourceJSON: try publish.transition(transition), actorID: Self.feedActor, relatedIDs: [state.id.lowercaseText]),
                    tenantID: event.tenantID, on: c)
            }
            try await insert(entry, event, on: c)
            // A restored contact's alerts are checked again (a deleted one's are left as they were).
            return kind == .restored ? [state.id] : []

        case .contactMerged(let loser, let winner):
            try await merge(loser: loser, into: winner, tenant: tenant, on: c)
            try await insert(NewEntry(subjectType: .contact, subjects: [winner], kind: .merged, time: event.time, summary: "merged"), event, on: c)
            return [winner]

        case .contactUnmerged(let state, let formerWinner):
            _ = try await upsert(state, event, on: c)
            try await unmerge(loser: state.id, from: formerWinner, tenant: tenant, on: c)
            let lastStage = try await c.query(
                "SELECT stage FROM analytics.stage_changes WHERE tenant_id = $1 AND contact_id = $2 ORDER BY id DESC LIMIT 1",
                [tenant, .uuid(state.id)]
            ).first
            if !state.status.isEmpty, try lastStage?.string("stage") != state.status {
                // A merge from before the log (nothing restored), or a status the history does not end in: the stage
                // history ends where the contact is.
                try await enterStage(state.status, contact: state.id, at: event.time, tenant: event.tenantID, on: c)
            }
            try await insert(
                NewEntry(subjectType: .contact, subjects: [formerWinner, state.id], kind: .unmerged, time: event.time, summary: "unmerged"), event,
                on: c)
            return [state.id, formerWinner]

        case .contactErased(let person, let request):
            try await erase(person, request: request, tenantID: event.tenantID, on: c)
            return []

        case .organization(let id, let name, let createdAt, let deleted, let kind, let changed):
            try await c.query(
                """
                INSERT INTO analytics.organizations (tenant_id, id, name, created_at, deleted) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (tenant_id, id) DO UPDATE SET name = EXCLUDED.name, deleted = EXCLUDED.deleted
                """, [tenant, .uuid(id), .text(name), .timestamp(createdAt ?? event.time), .bool(deleted)])
            try await insert(NewEntry(subjectType: .organization, subjects: [id], kind: kind, time: event.time, changedFields: changed), event, on: c)
            return []

        case .membership(_, let contact, let organization, let ended):
            let summary = ended ? "removed" : "added"
            try await insert(
                NewEntry(subjectType: .contact, subjects: [contact], kind: .membership, time: event.time, summary: summary), event, on: c)
            try await insert(
                NewEntry(subjectType: .organization, subjects: [organization], kind: .membership, time: event.time, summary: summary), event, on: c)
            return []

        case .activity(let activity):
            // The old contacts are read with a lock: the contacts consumer's merge or unmerge may be rewriting the row in
            // its own transaction, and the diff below must start from what that committed (a locking read waits for it
            // and then reads its version). The insert reads them as its source, so they are read before it writes; a
            // locking read in RETURNING, after the write, would read the statement's own version.
            let row = try await c.query(
                """
                WITH old AS MATERIALIZED (
                    SELECT contact_ids, organization_ids FROM analytics.activities
                    WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3
                    FOR UPDATE
                ), written AS (
                    INSERT INTO analytics.activities (tenant_id, resource_type, resource_id, kind, is_interaction, actor_id, occurred_at, contact_ids,
                        organization_ids)
                    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 FROM (SELECT 1) one LEFT JOIN old ON true
                    ON CONFLICT (tenant_id, resource_type, resource_id) DO UPDATE SET kind = EXCLUDED.kind, is_interaction = EXCLUDED.is_interaction,
                        occurred_at = EXCLUDED.occurred_at, contact_ids = EXCLUDED.contact_ids, organization_ids = EXCLUDED.organization_ids
                )
                SELECT (SELECT contact_ids FROM old) AS old_contacts, (SELECT organization_ids FROM old) AS old_organizations
                """,
                [
                    tenant, .text(activity.resourceType), .text(activity.resourceID), .text(activity.kind), .bool(activity.isInteraction),
                    .text(activity.actorID), .timestamp(activity.occurredAt), .array(activity.contactIDs.map(PostgresValue.uuid), elementType: .uuid),
                    .array(activity.organizationIDs.map(PostgresValue.uuid), elementType: .uuid),
                ]
            ).first
            let oldContacts = Set(try Self.uuids(row?["old_contacts"] ?? .null))
            let oldOrganizations = Set(try Self.uuids(row?["old_organizations"] ?? .null))
            // The timeline follows the activity's subjects: new subjects get its entry, subjects it left lose it.
            let added = (activity.contactIDs.filter { !oldContacts.contains($0) }, activity.organizationIDs.filter { !oldOrganizations.contains($0) })
            let removed = (oldContacts.subtracting(activity.contactIDs), oldOrganizations.subtracting(activity.organizationIDs))
            for (type, subjects) in [(SubjectKind.contact, added.0), (.organization, added.1)] where !subjects.isEmpty {
                try await insert(
                    NewEntry(
                        subjectType: type, subjects: subjects, kind: activity.entryKind, time: activity.occurredAt, summary: activity.summary,
                        activityKind: activity.kind), event, on: c)
            }
            for (type, subjects) in [(SubjectKind.contact, Array(removed.0)), (.organization, Array(removed.1))] where !subjects.isEmpty {
                try await c.query(
                    """
                    DELETE FROM analytics.timeline WHERE tenant_id = $1 AND subject_type = $2 AND subject_id = ANY($3::uuid[])
                      AND resource_type = $4 AND resource_id = $5
                    """,
                    [
                        tenant, .int(Int64(type.rawValue)), .array(subjects.map(PostgresValue.uuid), elementType: .uuid),
                        .text(activity.resourceType),
                        .text(activity.resourceID),
                    ])
            }
            return Array(Set(activity.contactIDs).union(removed.0))

        case .activityRemoved(let type, let id):
            let row = try await c.query(
                "DELETE FROM analytics.activities WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3 RETURNING contact_ids",
                [tenant, .text(type), .text(id)]
            ).first
            try await c.query(
                "DELETE FROM analytics.timeline WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3", [tenant, .text(type), .text(id)])
            return try Self.uuids(row?["contact_ids"] ?? .null)
        }
    }

    /// Keeps a contact's state as the contacts feed last described it. - Returns: its status before, nil if it was new.
    func upsert(_ state: ContactState, _ event: IngestEvent, on c: PostgresConnection) async throws -> String? {
        let tenant = PostgresValue.text(event.tenantID)
        let row = try await c.query(
            """
            WITH old AS (SELECT status FROM analytics.contacts WHERE tenant_id = $1 AND id = $2)
            INSERT INTO analytics.contacts (tenant_id, id, display_name, email, status, owner_id, tags, custom_fields, has_phone, has_address,
                created_at, deleted)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            ON CONFLICT (tenant_id, id) DO UPDATE SET display_name = EXCLUDED.display_name, email = EXCLUDED.email, status = EXCLUDED.status,
                owner_id = EXCLUDED.owner_id, tags = EXCLUDED.tags, custom_fields = EXCLUDED.custom_fields, has_phone = EXCLUDED.has_phone,
                has_address = EXCLUDED.has_address, deleted = EXCLUDED.deleted
            RETURNING (SELECT status FROM old) AS old_status
            """,
            [
                tenant, .uuid(state.id), .text(state.displayName), .text(state.email), .text(state.status), .text(state.ownerID),
                .array(state.tags.map(PostgresValue.text), elementType: .text), .jsonb(state.customFieldsJSON), .bool(state.hasPhone),
                .bool(state.hasAddress), .timestamp(state.createdAt ?? event.time), .bool(state.deleted),
            ]
        ).first
        return try row?.optionalString("old_status")
    }

    static func uuids(_ value: PostgresValue) throws -> [UUID] {
        guard case .array(let elements, _) = value else { return [] }
        return elements.compactMap { if case .uuid(let u) = $0 { return u } else { return nil } }
    }

    func enterStage(_ stage: String, contact: UUID, at time: Date, tenant: String, on c: PostgresConnection) async throws {
        try await c.query(
            "INSERT INTO analytics.stage_changes (tenant_id, contact_id, stage, entered_at) VALUES ($1, $2, $3, $4)",
            [.text(tenant), .uuid(contact), .text(stage), .timestamp(time)])
    }

    func insert(_ entry: NewEntry, _ event: IngestEvent, on c: PostgresConnection) async throws {
        try await c.query(
            """
            INSERT INTO analytics.timeline (tenant_id, subject_type, subject_id, occurred_at, kind, source, resource_type, resource_id, actor_id,
                changed_fields, summary, activity_kind, status_from, status_to)
            SELECT $1, $2, s, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM unnest($3::uuid[]) AS s
            """,
            [
                .text(event.tenantID), .int(Int64(entry.subjectType.rawValue)), .array(entry.subjects.map(PostgresValue.uuid), elementType: .uuid),
                .timestamp(entry.time), .int(Int64(entry.kind.rawValue)), .int(Int64(event.source.rawValue)), .text(event.resourceType),
                .text(event.resourceID), .text(event.actorID), .array(entry.changedFields.map(PostgresValue.text), elementType: .text),
                .text(entry.summary), .text(entry.activityKind), .text(entry.statusFrom), .text(entry.statusTo),
            ])
    }

    /// Deletes what is about the person (their timeline, stage history, contact row, alert states, set-aside events),
    /// takes them out of activities (which stay as anonymous counts), reduces analytics' own stored events and responses
    /// naming them, and publishes a receipt.
    func erase(_ person: UUID, request: String, tenantID: String, on c: PostgresConnection) async throws {
        var receipt = ErasureReceiptData(contactID: person, erasureRequestID: request)
        let binds: [PostgresValue] = [.text(tenantID), .uuid(person)]
        receipt.timelineEntriesDeleted = try await c.query(
            "DELETE FROM analytics.timeline WHERE tenant_id = $1 AND ((subject_type = 1 AND subject_id = $2) OR resource_id = $3)",
            binds + [.text(person.lowercaseText)]
        ).affectedRows
        receipt.activitiesChanged = try await c.query(
            "UPDATE analytics.activities SET contact_ids = array_remove(contact_ids, $2) WHERE tenant_id = $1 AND contact_ids @> ARRAY[$2::uuid]",
            binds
        ).affectedRows
        receipt.stageChangesDeleted = try await c.query("DELETE FROM analytics.stage_changes WHERE tenant_id = $1 AND contact_id = $2", binds)
            .affectedRows
        try await c.query("DELETE FROM analytics.contacts WHERE tenant_id = $1 AND id = $2", binds)
        try await c.query("DELETE FROM analytics.alert_states WHERE tenant_id = $1 AND contact_id = $2", binds)
        try await forgetMergeMoves(of: person, tenantID: tenantID, on: c)
        _ = try await FeedConsumer.forgetSetAside(tenantID: tenantID, resourceID: person.lowercaseText, schema: "analytics", on: c)
        let mentioning = [person.lowercaseText]
        receipt.changesRedacted = try await feed.redact(tenantID: tenantID, resourceIDs: [], mentioning: mentioning, on: c)
        receipt.storedResponsesRemoved = try await idempotency.forget(tenantID: tenantID, mentioning: mentioning, on: c)
        try await feed.record(
            ChangeRecord(
                resourceType: "switchboard.analytics.v1.ErasureReceipt", resourceID: person.lowercaseText, kind: .erased,
                resourceJSON: try publish.receipt(receipt), actorID: Self.feedActor, relatedIDs: request.isEmpty ? [] : [request]),
            tenantID: tenantID, on: c)
    }

    /// The tenant's alerts, and its model when it has any.
    func alertsAndModel(tenantID: String, on c: PostgresConnection) async throws -> (alerts: [AlertValue], model: ScoringModelValue) {
        let alerts = try await c.query(
            "SELECT id, name, metric, threshold, direction, created_at, created_by FROM analytics.alerts WHERE tenant_id = $1", [.text(tenantID)]
        ).rows.map(Self.alert)
        if alerts.isEmpty { return ([], .default) }
        let modelRow = try await c.query(
            "SELECT kinds, weights, half_life_days, version, updated_at FROM analytics.scoring_models WHERE tenant_id = $1", [.text(tenantID)]
        ).first
        return (alerts, try modelRow.map(Self.model) ?? .default)
    }

    /// Fires (publishes AlertFired) each alert a contact newly crossed, and re-arms those it fell back from. A deleted
    /// contact (merged away among them: the sources may move its activities back before its UNMERGED arrives, which
    /// restores the alerts it had firing) is left as it is.
    func checkAlerts(_ alerts: [AlertValue], model: ScoringModelValue, contacts: [UUID], tenantID: String, on c: PostgresConnection) async throws {
        let (kinds, weights) = Self.modelBinds(model)
        let now = Date()
        for contact in contacts {
            let row = try await c.query(
                """
                SELECT count(*) FILTER (WHERE a.is_interaction)::float8 AS interactions,
                    coalesce(sum(\(Self.decayedWeight(kinds: 3, weights: 4, time: 5, halfLife: 6))), 0)::float8 AS score,
                    coalesce((SELECT deleted FROM analytics.contacts WHERE tenant_id = $1 AND id = $2), false) AS deleted
                FROM analytics.activities a WHERE a.tenant_id = $1 AND a.contact_ids @> ARRAY[$2::uuid]
                """, [.text(tenantID), .uuid(contact), kinds, weights, .timestamp(now), .double(model.halfLifeDays)]
            ).first
            if try row?.bool("deleted") == true { continue }
            let firing = Set(
                try await c.query(
                    "SELECT alert_id FROM analytics.alert_states WHERE tenant_id = $1 AND contact_id = $2", [.text(tenantID), .uuid(contact)]
                ).rows.map { try $0.uuid("alert_id") })
            for alert in alerts {
                let value = try row?.double(alert.metric == .interactions ? "interactions" : "score") ?? 0
                let crossed = alert.above ? value >= alert.threshold : value < alert.threshold
                if crossed, !firing.contains(alert.id) {
                    try await c.query(
                        "INSERT INTO analytics.alert_states (tenant_id, alert_id, contact_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        [.text(tenantID), .uuid(alert.id), .uuid(contact)])
                    let fired = AlertFiring(
                        id: UUID.random(), alertID: alert.id, contactID: contact, metric: alert.metric, value: value, threshold: alert.threshold,
                        time: now,
                        ownerID: alert.created.by, alertName: alert.name)
                    try await feed.record(
                        ChangeRecord(
                            resourceType: "switchboard.analytics.v1.AlertFired", resourceID: fired.id.lowercaseText, kind: .created,
                            resourceJSON: try publish.alertFired(fired), actorID: Self.feedActor,
                            relatedIDs: [alert.id.lowercaseText, contact.lowercaseText]),
                        tenantID: tenantID, on: c)
                } else if !crossed, firing.contains(alert.id) {
                    try await c.query(
                        "DELETE FROM analytics.alert_states WHERE tenant_id = $1 AND alert_id = $2 AND contact_id = $3",
                        [.text(tenantID), .uuid(alert.id), .uuid(contact)])
                }
            }
        }
    }
}
