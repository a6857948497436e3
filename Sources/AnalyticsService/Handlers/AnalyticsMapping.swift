import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// Protobuf ⇄ domain for the analytics contract.
enum AnalyticsMapping {
    static func requiredID(_ text: String, field: String) throws -> UUID {
        guard !text.isEmpty else { throw InvalidRequest(field, "is required", reason: "REQUIRED") }
        guard let id = UUID(text: text) else { throw InvalidRequest(field, "must be a UUID", reason: "INVALID_FORMAT") }
        return id
    }

    static func subject(_ type: Switchboard_Analytics_V1_SubjectType, _ id: String, prefix: String = "") throws -> SubjectRef {
        let kind: SubjectKind
        switch type {
        case .contact: kind = .contact
        case .organization: kind = .organization
        default: throw InvalidRequest(prefix + "subject_type", "must be CONTACT or ORGANIZATION", reason: "REQUIRED")
        }
        return SubjectRef(kind, try requiredID(id, field: prefix + "subject_id"))
    }

    static func subjectKind(_ type: Switchboard_Analytics_V1_SubjectType, field: String) throws -> SubjectKind {
        switch type {
        case .contact: return .contact
        case .organization: return .organization
        default: throw InvalidRequest(field, "must be CONTACT or ORGANIZATION", reason: "REQUIRED")
        }
    }

    static func proto(_ e: TimelineEntry) -> Switchboard_Analytics_V1_TimelineEntry {
        var p = Switchboard_Analytics_V1_TimelineEntry()
        p.id = String(e.id)
        p.subjectType = .init(protoValue: Int32(e.subject.kind.rawValue))
        p.subjectId = e.subject.id.lowercaseText
        p.kind = .init(protoValue: Int32(e.kind.rawValue))
        p.source = .init(protoValue: Int32(e.source.rawValue))
        p.resourceType = e.resourceType
        p.resourceId = e.resourceID
        p.actorId = e.actorID
        p.time = e.time
        p.changedFields = e.changedFields
        p.summary = e.summary
        p.activityKind = e.activityKind
        p.statusFrom = e.statusFrom
        p.statusTo = e.statusTo
        return p
    }

    static func proto(_ c: ContactState) -> Switchboard_Analytics_V1_ContactSnapshot {
        var p = Switchboard_Analytics_V1_ContactSnapshot()
        p.contactId = c.id.lowercaseText
        p.displayName = c.displayName
        p.email = c.email
        p.status = c.status
        p.ownerId = c.ownerID
        p.tags = c.tags
        p.customFields = try? Google_Protobuf_Struct(protoJSONText: c.customFieldsJSON)
        p.hasPhone = c.hasPhone
        p.hasAddress = c.hasAddress
        p.createTime = c.createdAt
        p.deleted = c.deleted
        return p
    }

    static func proto(_ m: ContactMetrics) -> Switchboard_Analytics_V1_ContactMetrics {
        var p = Switchboard_Analytics_V1_ContactMetrics()
        p.contactId = m.contactID.lowercaseText
        p.counts = m.counts.map {
            var c = Switchboard_Analytics_V1_ActivityCount()
            c.kind = $0.kind
            c.count = $0.count
            return c
        }
        p.interactions = m.interactions
        p.firstContactTime = m.firstContact
        p.lastContactTime = m.lastContact
        p.interactionsPer30Days = m.perThirtyDays
        p.lifecycleStage = m.stage
        p.stageHistory = m.stageHistory.map {
            var s = Switchboard_Analytics_V1_StageChange()
            s.stage = $0.stage
            s.time = $0.time
            return s
        }
        return p
    }

    static func grouping(_ g: Switchboard_Analytics_V1_Grouping, field: String) throws -> StatsGrouping {
        switch g {
        case .kind: return .kind
        case .user: return .user
        case .day: return .day
        default: throw InvalidRequest(field, "must be KIND, USER or DAY", reason: "REQUIRED")
        }
    }

    static func metric(_ m: Switchboard_Analytics_V1_Metric, field: String) throws -> RankMetric {
        guard let metric = RankMetric(rawValue: Int(m.protoValue)) else {
            throw InvalidRequest(field, "must be ACTIVITIES, ENGAGEMENT_SCORE or INTERACTIONS", reason: "REQUIRED")
        }
        return metric
    }

    static func stats(_ buckets: [(key: String, count: Int64)]) -> Switchboard_Analytics_V1_GetActivityStatsResponse {
        var p = Switchboard_Analytics_V1_GetActivityStatsResponse()
        p.buckets = buckets.map {
            var b = Switchboard_Analytics_V1_ActivityBucket()
            b.key = $0.key
            b.count = $0.count
            return b
        }
        p.total = buckets.reduce(0) { $0 + $1.count }
        return p
    }

    static func funnel(_ steps: [FunnelStepValue]) -> Switchboard_Analytics_V1_GetLifecycleFunnelResponse {
        var p = Switchboard_Analytics_V1_GetLifecycleFunnelResponse()
        p.steps = steps.map {
            var s = Switchboard_Analytics_V1_FunnelStep()
            s.stage = $0.stage
            s.reached = $0.reached
            s.conversion = $0.conversion
            return s
        }
        return p
    }

    static func top(_ entries: [(id: UUID, value: Double)]) -> Switchboard_Analytics_V1_ListTopResponse {
        var p = Switchboard_Analytics_V1_ListTopResponse()
        p.entries = entries.map {
            var e = Switchboard_Analytics_V1_TopEntry()
            e.subjectId = $0.id.lowercaseText
            e.value = $0.value
            return e
        }
        return p
    }

    static func proto(_ c: Completeness) -> Switchboard_Analytics_V1_DataCompleteness {
        var p = Switchboard_Analytics_V1_DataCompleteness()
        p.contacts = c.contacts
        p.fields = c.fields.map {
            var f = Switchboard_Analytics_V1_FieldCompleteness()
            f.field = $0.field
            f.filled = $0.filled
            f.ratio = c.contacts == 0 ? 0 : Double($0.filled) / Double(c.contacts)
            return f
        }
        p.overall = p.fields.isEmpty ? 0 : p.fields.reduce(0) { $0 + $1.ratio } / Double(p.fields.count)
        return p
    }

    static func proto(_ m: ScoringModelValue) -> Switchboard_Analytics_V1_ScoringModel {
        var p = Switchboard_Analytics_V1_ScoringModel()
        p.weights = ActivityKinds.all.compactMap { kind in
            m.weights[kind].map {
                var w = Switchboard_Analytics_V1_KindWeight()
                w.kind = kind
                w.weight = $0
                return w
            }
        }
        p.halfLifeDays = m.halfLifeDays
        p.version = m.version
        p.updateTime = m.updatedAt
        return p
    }

    static func model(_ p: Switchboard_Analytics_V1_ScoringModel) -> (ScoringModelValue, [String]) {
        var weights: [String: Double] = [:]
        for w in p.weights where weights[w.kind] == nil { weights[w.kind] = w.weight }
        return (ScoringModelValue(weights: weights, halfLifeDays: p.halfLifeDays), p.weights.map(\.kind))
    }

    static func proto(_ s: EngagementScoreValue) -> Switchboard_Analytics_V1_EngagementScore {
        var p = Switchboard_Analytics_V1_EngagementScore()
        p.contactId = s.contactID.lowercaseText
        p.score = s.score
        p.components = s.components.map {
            var c = Switchboard_Analytics_V1_ScoreComponent()
            c.kind = $0.kind
            c.count = $0.count
            c.weight = $0.weight
            c.decayedCount = $0.decayedCount
            c.contribution = $0.contribution
            return c
        }
        p.asOf = s.asOf
        p.modelVersion = s.model.version
        p.halfLifeDays = s.model.halfLifeDays
        return p
    }

    static func audit(_ created: Created) -> Switchboard_Common_V1_AuditStamps {
        var a = Switchboard_Common_V1_AuditStamps()
        a.createTime = created.at
        a.createdBy = created.by
        a.updateTime = created.at
        a.updatedBy = created.by
        return a
    }

    /// Validates a report definition (`stored`: one saved earlier, under the rules of its day).
    static func spec(_ d: Switchboard_Analytics_V1_ReportDefinition, prefix: String, stored: Bool = false) throws -> ReportSpec {
        try ReportSpec.make(
            columns: d.columns, filters: d.filters.map { ($0.column, $0.op, $0.value) }, groupBy: d.groupBy, start: d.startTime, end: d.endTime,
            prefix: prefix, stored: stored)
    }

    static func report(_ stored: StoredDefinition) throws -> Switchboard_Analytics_V1_ReportDefinition {
        var options = ProtoJSONDecodingOptions()
        options.ignoreUnknownFields = true
        return try Switchboard_Analytics_V1_ReportDefinition(protoJSONText: stored.json, options: options)
    }

    static func dashboard(_ stored: StoredDefinition) throws -> Switchboard_Analytics_V1_Dashboard {
        var options = ProtoJSONDecodingOptions()
        options.ignoreUnknownFields = true
        return try Switchboard_Analytics_V1_Dashboard(protoJSONText: stored.json, options: options)
    }

    static func proto(_ a: AlertValue) -> Switchboard_Analytics_V1_Alert {
        var p = Switchboard_Analytics_V1_Alert()
        p.id = a.id.lowercaseText
        p.name = a.name
        p.metric = .init(protoValue: Int32(a.metric.rawValue))
        p.threshold = a.threshold
        p.direction = a.above ? .above : .below
        p.audit = audit(a.created)
        return p
    }

    static func proto(_ f: AlertFiring) -> Switchboard_Analytics_V1_AlertFired {
        var p = Switchboard_Analytics_V1_AlertFired()
        p.id = f.id.lowercaseText
        p.alertId = f.alertID.lowercaseText
        p.contactId = f.contactID.lowercaseText
        p.metric = .init(protoValue: Int32(f.metric.rawValue))
        p.value = f.value
        p.threshold = f.threshold
        p.time = f.time
        p.ownerId = f.ownerID
        p.alertName = f.alertName
        return p
    }

    static func proto(_ t: LifecycleTransitionData) -> Switchboard_Analytics_V1_LifecycleTransition {
        var p = Switchboard_Analytics_V1_LifecycleTransition()
        p.id = t.id.lowercaseText
        p.contactId = t.contactID.lowercaseText
        p.fromStage = t.from
        p.toStage = t.to
        p.time = t.time
        return p
    }

    static func proto(_ r: ReportRunData) -> Switchboard_Analytics_V1_ReportRun {
        var p = Switchboard_Analytics_V1_ReportRun()
        p.id = r.id.lowercaseText
        p.reportId = r.reportID.lowercaseText
        p.rows = r.rows
        p.csvBytes = r.csvBytes
        p.runTime = r.time
        return p
    }

    static func proto(_ r: ErasureReceiptData) -> Switchboard_Analytics_V1_ErasureReceipt {
        var p = Switchboard_Analytics_V1_ErasureReceipt()
        p.contactId = r.contactID.lowercaseText
        p.erasureRequestId = r.erasureRequestID
        p.timelineEntriesDeleted = Int32(clamping: r.timelineEntriesDeleted)
        p.activitiesChanged = Int32(clamping: r.activitiesChanged)
        p.stageChangesDeleted = Int32(clamping: r.stageChangesDeleted)
        p.changesRedacted = Int32(clamping: r.changesRedacted)
        p.storedResponsesRemoved = Int32(clamping: r.storedResponsesRemoved)
        return p
    }
}
