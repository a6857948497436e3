import FoundationEssentials
import SwitchboardServiceKit

/// The analytics use cases: validation and bounds, page tokens, live streams; storage behind ``AnalyticsStore``.
public struct AnalyticsDomain: Sendable {
    let store: any AnalyticsStore
    /// The bounds from the settings.
    public let limits: AnalyticsLimits
    let watchers: StreamLimiter
    let wakeups: @Sendable (String) -> AsyncStream<Void>

    /// Creates the domain.
    /// - Parameters:
    ///   - store: the storage.
    ///   - limits: the bounds.
    ///   - wakeups: a stream that yields when the tenant may have new timeline entries (and on a heartbeat).
    public init(store: any AnalyticsStore, limits: AnalyticsLimits, wakeups: @escaping @Sendable (String) -> AsyncStream<Void>) {
        self.store = store
        self.limits = limits
        self.watchers = StreamLimiter(limit: limits.watchStreams, perKeyLimit: limits.watchStreamsPerUser, what: "timeline streams")
        self.wakeups = wakeups
    }

    // MARK: Timeline

    /// A page of a timeline, newest first, and the next page's token (empty after the last).
    /// - Throws: ``InvalidRequest`` for a bad range or token.
    public func timeline(_ query: TimelineQuery, pageSize: Int, pageToken: String, actor: Actor) async throws -> ([TimelineEntry], String) {
        try AnalyticsRules.checkRange(query.start, query.end, required: false, maxDays: Int.max / 86_400_000)
        guard pageSize >= 0 else { throw InvalidRequest("page.page_size", "must not be negative", reason: "OUT_OF_RANGE") }
        var query = query
        query.limit = pageSize == 0 ? 50 : min(pageSize, limits.maxPageSize)
        let fingerprint = PageToken.fingerprint(
            [
                "\(query.subject.kind.rawValue)", query.subject.id.lowercaseText, query.kinds.map { "\($0.rawValue)" }.joined(separator: ","),
                query.sources.map { "\($0.rawValue)" }.joined(separator: ","), query.actorID,
                query.start.map { "\($0.timeIntervalSince1970)" } ?? "", query.end.map { "\($0.timeIntervalSince1970)" } ?? "",
            ])
        if let cursor = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 2) {
            guard let micros = Int64(cursor[0]), let id = Int64(cursor[1]) else {
                throw InvalidRequest("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")
            }
            query.after = (Date(timeIntervalSince1970: Double(micros) / 1_000_000), id)
        }
        var entries = try await store.timeline(
            {
                var q = query
                q.limit += 1
                return q
            }(), actor: actor)
        var next = ""
        if entries.count > query.limit {
            entries.removeLast(entries.count - query.limit)
            let last = entries[entries.count - 1]
            next =
                PageToken(
                    cursor: [String(Int64((last.time.timeIntervalSince1970 * 1_000_000).rounded())), String(last.id)], fingerprint: fingerprint
                )
                .encoded
        }
        return (entries, next)
    }

    /// Streams the subject's entries ingested after the call starts, until the caller goes away.
    /// - Throws: ``TooManyStreams`` past the limits.
    public func watchTimeline(_ subject: SubjectRef, actor: Actor, emit: @Sendable (TimelineEntry) async throws -> Void) async throws {
        try await watchers.run(tenant: actor.tenantID + "\u{0}" + actor.userID) {
            var wakeups = self.wakeups(actor.tenantID).makeAsyncIterator()
            var (position, visible) = try await store.timelinePosition(subject, actor: actor)
            while !Task.isCancelled {
                while true {
                    let (entries, next) = try await store.timeline(subject, after: position, limit: 200, actor: actor)
                    for (entry, at) in entries where !visible.contains(at) { try await emit(entry) }
                    position = next
                    if entries.count < 200 { break }
                }
                guard await wakeups.next() != nil else { break }
            }
        }
    }

    // MARK: Metrics

    /// A contact's metrics.
    public func metrics(contact: UUID, actor: Actor) async throws -> ContactMetrics {
        try await store.metrics(contact: contact, actor: actor)
    }

    /// Activity statistics over a range.
    /// - Throws: ``InvalidRequest`` for a missing or too wide range, or bad kinds.
    public func activityStats(
        start: Date?, end: Date?, grouping: StatsGrouping, kinds: [String], actor: Actor
    ) async throws -> [(
        key: String, count: Int64
    )] {
        try AnalyticsRules.checkRange(start, end, required: true, maxDays: limits.maxRangeDays)
        try Self.checkKinds(kinds, field: "kinds")
        return try await store.activityStats(start: start!, end: end!, grouping: grouping, kinds: kinds, actor: actor)
    }

    static func checkKinds(_ kinds: [String], field: String) throws {
        guard kinds.count <= AnalyticsRules.maxFilterKinds else {
            throw InvalidRequest(field, "at most \(AnalyticsRules.maxFilterKinds) values", reason: "TOO_MANY")
        }
        if let i = kinds.firstIndex(where: { !ActivityKinds.all.contains($0) }) {
            throw InvalidRequest("\(field)[\(i)]", "must be one of \(ActivityKinds.all.joined(separator: ", "))", reason: "UNKNOWN")
        }
    }

    /// The lifecycle funnel between stages.
    /// - Throws: ``InvalidRequest`` for unknown or repeated stages or a bad range.
    public func funnel(stages: [String], start: Date?, end: Date?, actor: Actor) async throws -> [FunnelStepValue] {
        let stages = stages.isEmpty ? ["LEAD", "PROSPECT", "CUSTOMER"] : stages
        guard stages.count <= AnalyticsRules.maxStages else {
            throw InvalidRequest("stages", "at most \(AnalyticsRules.maxStages) stages", reason: "TOO_MANY")
        }
        for (i, stage) in stages.enumerated() {
            guard AnalyticsRules.stages.contains(stage) else {
                throw InvalidRequest("stages[\(i)]", "must be one of \(AnalyticsRules.stages.joined(separator: ", "))", reason: "UNKNOWN")
            }
            guard !stages[..<i].contains(stage) else { throw InvalidRequest("stages[\(i)]", "appears twice", reason: "DUPLICATE") }
        }
        try AnalyticsRules.checkRange(start, end, required: false, maxDays: Int.max / 86_400_000)
        let furthest = try await store.furthestStages(stages, start: start, end: end, actor: actor)
        var steps: [FunnelStepValue] = []
        for (i, stage) in stages.enumerated() {
            let reached = furthest[i...].reduce(0, +)
            let previous = steps.last?.reached
            let conversion = previous.map { $0 == 0 ? 0 : Double(reached) / Double($0) } ?? 1
            steps.append(FunnelStepValue(stage: stage, reached: reached, conversion: conversion))
        }
        return steps
    }

    /// The top contacts or organizations by a metric.
    /// - Throws: ``InvalidRequest`` for a bad limit, range or combination.
    public func top(
        _ kind: SubjectKind, metric: RankMetric, limit: Int, start: Date?, end: Date?, actor: Actor
    ) async throws -> [(
        id: UUID, value: Double
    )] {
        guard (0...limits.maxTop).contains(limit) else {
            throw InvalidRequest("limit", "must be between 1 and \(limits.maxTop)", reason: "OUT_OF_RANGE")
        }
        if metric == .engagementScore, kind != .contact {
            throw InvalidRequest("metric", "ENGAGEMENT_SCORE ranks contacts only", reason: "UNSUPPORTED")
        }
        try AnalyticsRules.checkRange(start, end, required: false, maxDays: limits.maxRangeDays)
        let model = try await store.scoringModel(actor: actor)
        return try await store.top(
            kind, metric: metric, limit: limit == 0 ? 10 : limit, start: start, end: end, model: model, asOf: Date(), actor: actor)
    }

    /// Completeness of live contacts.
    public func completeness(actor: Actor) async throws -> Completeness { try await store.completeness(actor: actor) }

    // MARK: Scores

    /// The tenant's model.
    public func scoringModel(actor: Actor) async throws -> ScoringModelValue { try await store.scoringModel(actor: actor) }

    /// Replaces the tenant's model: every score is computed with it from now on.
    /// - Throws: ``InvalidRequest`` naming bad weights or half-life.
    public func setScoringModel(
        _ model: ScoringModelValue, kinds: [String], actor: Actor, write: WriteOptions<ScoringModelValue>
    ) async throws -> WriteOutcome<ScoringModelValue> {
        try AnalyticsRules.validate(model, kinds: kinds)
        return try await store.setScoringModel(model, actor: actor, write: write)
    }

    /// A contact's score now, with its components.
    public func score(contact: UUID, actor: Actor) async throws -> EngagementScoreValue {
        let model = try await store.scoringModel(actor: actor)
        let asOf = Date()
        return EngagementScoreValue(
            contactID: contact, components: try await store.scoreComponents(contact: contact, model: model, asOf: asOf, actor: actor),
            asOf: asOf, model: model)
    }

    // MARK: Reports and dashboards

    /// Stores a report or dashboard.
    /// - Throws: ``AnalyticsError/failedPrecondition(_:)`` at the tenant's limit.
    public func createDefinition(
        _ kind: DefinitionKind, name: String, scheduleHours: Int = 0, json: @escaping @Sendable (UUID, Created) throws -> String, actor: Actor,
        write: WriteOptions<StoredDefinition>
    ) async throws -> WriteOutcome<StoredDefinition> {
        guard (0...AnalyticsRules.maxScheduleHours).contains(scheduleHours) else {
            throw InvalidRequest("report.schedule_hours", "must be between 0 and \(AnalyticsRules.maxScheduleHours)", reason: "OUT_OF_RANGE")
        }
        return try await store.createDefinition(
            kind, name: name, scheduleHours: scheduleHours, json: json, actor: actor, limit: limits.maxDefinitions, write: write)
    }

    /// Who scheduled runs are made as.
    public static let schedulerUser = "analytics-scheduler"

    /// Runs the scheduled reports due now (up to `limit`), each as its tenant: counts its rows and CSV bytes (reading
    /// page by page, as an export does) and publishes a ReportRun. A run that fails after its claim is logged by the
    /// caller and skipped until the next period.
    /// - Parameter spec: the report's definition, from its stored JSON.
    /// - Returns: how many were due (whether or not this replica claimed them).
    @discardableResult
    public func runDueReports(limit: Int, spec: (StoredDefinition) throws -> ReportSpec) async throws -> Int {
        let due = try await store.dueReports(limit: limit)
        for report in due {
            guard let stored = try await store.claimRun(tenantID: report.tenantID, id: report.id) else { continue }
            let actor = Actor(tenantID: report.tenantID, userID: Self.schedulerUser)
            var rows: Int64 = 0, bytes: Int64 = 0
            try await runReport(try spec(stored), actor: actor) { values, header in
                if !header { rows += 1 }
                bytes += Int64(ReportSpec.csvLine(values).utf8.count)
            }
            try await store.recordRun(
                ReportRunData(id: UUID(), reportID: stored.id, rows: rows, csvBytes: bytes, time: Date()), tenantID: report.tenantID)
        }
        return due.count
    }

    /// A stored report or dashboard.
    /// - Throws: ``AnalyticsError/notFound(kind:id:)``.
    public func definition(_ kind: DefinitionKind, id: UUID, actor: Actor) async throws -> StoredDefinition {
        guard let found = try await store.definition(kind, id: id, actor: actor) else {
            throw AnalyticsError.notFound(kind: kind == .report ? "report" : "dashboard", id: id.lowercaseText)
        }
        return found
    }

    /// A page of stored reports, oldest first, and the next token.
    public func definitions(_ kind: DefinitionKind, pageSize: Int, pageToken: String, actor: Actor) async throws -> ([StoredDefinition], String) {
        guard pageSize >= 0 else { throw InvalidRequest("page.page_size", "must not be negative", reason: "OUT_OF_RANGE") }
        let limit = pageSize == 0 ? 50 : min(pageSize, limits.maxPageSize)
        let fingerprint = PageToken.fingerprint([kind.rawValue])
        var after: (Date, UUID)?
        if let cursor = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 2) {
            guard let micros = Int64(cursor[0]), let id = UUID(uuidString: cursor[1]) else {
                throw InvalidRequest("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")
            }
            after = (Date(timeIntervalSince1970: Double(micros) / 1_000_000), id)
        }
        var found = try await store.definitions(kind, after: after, limit: limit + 1, actor: actor)
        var next = ""
        if found.count > limit {
            found.removeLast(found.count - limit)
            let last = found[found.count - 1]
            next =
                PageToken(
                    cursor: [String(Int64((last.created.at.timeIntervalSince1970 * 1_000_000).rounded())), last.id.uuidString],
                    fingerprint: fingerprint
                ).encoded
        }
        return (found, next)
    }

    /// Deletes a stored definition: its creator may, and with `othersToo` (a manager) anyone's.
    /// - Throws: ``AnalyticsError/notFound(kind:id:)``, or ``AnalyticsError/permissionDenied(_:)`` for another user's
    ///   definition without `othersToo`.
    public func deleteDefinition(
        _ kind: DefinitionKind, id: UUID, othersToo: Bool, actor: Actor, write: WriteOptions<Bool>
    ) async throws -> WriteOutcome<Bool> {
        let outcome = try await store.deleteDefinition(kind, id: id, othersToo: othersToo, actor: actor, write: write)
        if case .fresh(false) = outcome { throw AnalyticsError.notFound(kind: kind == .report ? "report" : "dashboard", id: id.lowercaseText) }
        return outcome
    }

    /// Streams a report's rows, header first, reading a page of rows at a time (never every row at once).
    public func runReport(_ spec: ReportSpec, actor: Actor, maxRows: Int = .max, emit: ([String], Bool) async throws -> Void) async throws {
        try await emit(spec.header, true)
        let model = try await store.scoringModel(actor: actor)
        let asOf = Date()
        var after: String?
        var sent = 0
        while sent < maxRows {
            let want = min(limits.reportPageRows, maxRows - sent)
            let page = try await store.reportRows(spec, after: after, limit: want, model: model, asOf: asOf, actor: actor)
            for row in page { try await emit(row.values, false) }
            sent += page.count
            guard page.count == want, let last = page.last else { break }
            after = last.key
        }
    }

    /// Streams a report as CSV chunks of at most ``AnalyticsLimits/exportChunkBytes`` (a longer row is one chunk);
    /// `spreadsheetSafe` writes the cells a spreadsheet would run as formulas as text (``SpreadsheetSafety``).
    public func exportReport(
        _ spec: ReportSpec, spreadsheetSafe: Bool = false, actor: Actor, emit: @Sendable ([UInt8]) async throws -> Void
    ) async throws {
        var buffer: [UInt8] = []
        let chunk = limits.exportChunkBytes
        buffer.reserveCapacity(chunk)
        try await runReport(spec, actor: actor) { values, _ in
            let line = Array(ReportSpec.csvLine(values, spreadsheetSafe: spreadsheetSafe).utf8)
            if !buffer.isEmpty, buffer.count + line.count > chunk {
                try await emit(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
            buffer += line
        }
        if !buffer.isEmpty { try await emit(buffer) }
    }

    // MARK: Alerts

    /// Stores an alert.
    /// - Throws: ``InvalidRequest`` for a bad name, metric or threshold.
    public func createAlert(_ alert: AlertValue, actor: Actor, write: WriteOptions<AlertValue>) async throws -> WriteOutcome<AlertValue> {
        try AnalyticsRules.checkName(alert.name, field: "alert.name")
        guard alert.metric == .engagementScore || alert.metric == .interactions else {
            throw InvalidRequest("alert.metric", "must be METRIC_ENGAGEMENT_SCORE or METRIC_INTERACTIONS", reason: "UNSUPPORTED")
        }
        guard alert.threshold.isFinite, abs(alert.threshold) <= 1e12 else {
            throw InvalidRequest("alert.threshold", "must be a finite number up to 1e12", reason: "OUT_OF_RANGE")
        }
        return try await store.createAlert(alert, actor: actor, limit: limits.maxDefinitions, write: write)
    }

    /// The tenant's alerts.
    public func alerts(actor: Actor) async throws -> [AlertValue] { try await store.alerts(actor: actor) }

    /// Deletes an alert.
    /// - Throws: ``AnalyticsError/notFound(kind:id:)``.
    public func deleteAlert(id: UUID, actor: Actor, write: WriteOptions<Bool>) async throws -> WriteOutcome<Bool> {
        let outcome = try await store.deleteAlert(id: id, actor: actor, write: write)
        if case .fresh(false) = outcome { throw AnalyticsError.notFound(kind: "alert", id: id.lowercaseText) }
        return outcome
    }

    // MARK: Subject access

    /// Everything held about a person: its contact snapshot (when there is one), the timeline, then metrics and score.
    public func exportSubject(
        contact: UUID, actor: Actor, snapshot: (ContactState) async throws -> Void, timeline: ([TimelineEntry]) async throws -> Void
    ) async throws -> (ContactMetrics, EngagementScoreValue) {
        if let state = try await store.contactSnapshot(contact, actor: actor) { try await snapshot(state) }
        try await store.exportTimeline(contact: contact, actor: actor, timeline)
        return (try await metrics(contact: contact, actor: actor), try await score(contact: contact, actor: actor))
    }
}
