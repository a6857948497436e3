import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

/// `switchboard.analytics.v1.AnalyticsService`: turns protobuf requests into domain calls and domain errors into
/// precise gRPC statuses. No SQL here.
public struct AnalyticsHandler: Switchboard_Analytics_V1_AnalyticsService_ServiceProtocol {
    typealias Methods = Switchboard_Analytics_V1_AnalyticsService.Method
    typealias M = AnalyticsMapping
    let domain: AnalyticsDomain
    let changes: TenantChangeWatcher

    /// Creates the handler.
    /// - Parameters:
    ///   - domain: the use cases.
    ///   - changes: the kit's `WatchChanges`.
    public init(domain: AnalyticsDomain, changes: TenantChangeWatcher) {
        self.domain = domain
        self.changes = changes
    }

    static func pageResponse(_ next: String) -> Switchboard_Common_V1_PageResponse {
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        return page
    }

    // MARK: Timeline

    /// The `GetTimeline` RPC (see `analytics.proto`).
    public func getTimeline(
        request: Switchboard_Analytics_V1_GetTimelineRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_GetTimelineResponse {
        var query = TimelineQuery(subject: try M.subject(request.subjectType, request.subjectId))
        guard request.kinds.count <= AnalyticsRules.maxFilterKinds else {
            throw InvalidRequest("kinds", "at most \(AnalyticsRules.maxFilterKinds) values", reason: "TOO_MANY")
        }
        query.kinds = try request.kinds.enumerated().map { i, kind in
            guard let k = EntryKind(rawValue: Int16(clamping: kind.protoValue)) else {
                throw InvalidRequest("kinds[\(i)]", "is not a timeline entry kind", reason: "UNKNOWN")
            }
            return k
        }
        guard request.sources.count <= FeedSource.allCases.count else {
            throw InvalidRequest("sources", "at most \(FeedSource.allCases.count) values", reason: "TOO_MANY")
        }
        query.sources = try request.sources.enumerated().map { i, source in
            guard let s = FeedSource(rawValue: Int16(clamping: source.protoValue)) else {
                throw InvalidRequest("sources[\(i)]", "is not a source", reason: "UNKNOWN")
            }
            return s
        }
        guard request.actorId.utf8.count <= 256 else { throw InvalidRequest("actor_id", "must be at most 256 bytes", reason: "TOO_LONG") }
        query.actorID = request.actorId
        query.start = request.startTime
        query.end = request.endTime
        let (entries, next) = try await domain.timeline(
            query, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Analytics_V1_GetTimelineResponse()
        response.entries = entries.map(M.proto)
        response.page = Self.pageResponse(next)
        return response
    }

    /// The `WatchTimeline` RPC (see `analytics.proto`).
    public func watchTimeline(
        request: Switchboard_Analytics_V1_WatchTimelineRequest, responses: RPCWriter<Switchboard_Analytics_V1_TimelineEntry>,
        context: ServerContext
    ) async throws {
        let subject = try M.subject(request.subjectType, request.subjectId)
        try await domain.watchTimeline(subject, actor: try context.actor()) { entry in try await responses.write(M.proto(entry)) }
    }

    // MARK: Metrics

    /// The `GetContactMetrics` RPC (see `analytics.proto`).
    public func getContactMetrics(
        request: Switchboard_Analytics_V1_GetContactMetricsRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_ContactMetrics {
        M.proto(try await domain.metrics(contact: try M.requiredID(request.contactId, field: "contact_id"), actor: try context.actor()))
    }

    /// The `GetActivityStats` RPC (see `analytics.proto`).
    public func getActivityStats(
        request: Switchboard_Analytics_V1_GetActivityStatsRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_GetActivityStatsResponse {
        let grouping = try M.grouping(request.groupBy, field: "group_by")
        return M.stats(
            try await domain.activityStats(
                start: request.startTime, end: request.endTime, grouping: grouping, kinds: request.kinds, actor: try context.actor()))
    }

    /// The `GetLifecycleFunnel` RPC (see `analytics.proto`).
    public func getLifecycleFunnel(
        request: Switchboard_Analytics_V1_GetLifecycleFunnelRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_GetLifecycleFunnelResponse {
        M.funnel(try await domain.funnel(stages: request.stages, start: request.startTime, end: request.endTime, actor: try context.actor()))
    }

    /// The `ListTop` RPC (see `analytics.proto`).
    public func listTop(
        request: Switchboard_Analytics_V1_ListTopRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_ListTopResponse {
        let kind = try M.subjectKind(request.subjectType, field: "subject_type")
        let metric = try M.metric(request.metric, field: "metric")
        return M.top(
            try await domain.top(
                kind, metric: metric, limit: Int(request.limit), start: request.startTime, end: request.endTime, actor: try context.actor()))
    }

    /// The `GetDataCompleteness` RPC (see `analytics.proto`).
    public func getDataCompleteness(
        request: Switchboard_Analytics_V1_GetDataCompletenessRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_DataCompleteness {
        M.proto(try await domain.completeness(actor: try context.actor()))
    }

    // MARK: Scores

    /// The `GetScoringModel` RPC (see `analytics.proto`).
    public func getScoringModel(
        request: Switchboard_Analytics_V1_GetScoringModelRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_ScoringModel {
        M.proto(try await domain.scoringModel(actor: try context.actor()))
    }

    /// The `SetScoringModel` RPC (see `analytics.proto`).
    public func setScoringModel(
        request: Switchboard_Analytics_V1_SetScoringModelRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_ScoringModel {
        guard let model = request.model else { throw InvalidRequest("model", "is required", reason: "REQUIRED") }
        let (value, kinds) = M.model(model)
        let write = try IdempotentWrite(request: request, requestID: request.requestId, method: Methods.setScoringModel) { (m: ScoringModelValue) in
            M.proto(m)
        }
        return try write.response(try await domain.setScoringModel(value, kinds: kinds, actor: try context.actor(), write: write.options))
    }

    /// The `GetEngagementScore` RPC (see `analytics.proto`).
    public func getEngagementScore(
        request: Switchboard_Analytics_V1_GetEngagementScoreRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_EngagementScore {
        M.proto(try await domain.score(contact: try M.requiredID(request.contactId, field: "contact_id"), actor: try context.actor()))
    }

    // MARK: Reports

    /// The `CreateReport` RPC (see `analytics.proto`).
    public func createReport(
        request: Switchboard_Analytics_V1_CreateReportRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_ReportDefinition {
        guard var report = request.report else { throw InvalidRequest("report", "is required", reason: "REQUIRED") }
        try AnalyticsRules.checkName(report.name, field: "report.name")
        _ = try M.spec(report, prefix: "report.")
        let write = try IdempotentWrite(request: request, requestID: request.requestId, method: Methods.createReport) { (s: StoredDefinition) in
            (try? M.report(s)) ?? Switchboard_Analytics_V1_ReportDefinition()
        }
        let definition = report
        let outcome = try await domain.createDefinition(
            .report, name: report.name, scheduleHours: Int(report.scheduleHours),
            json: { id, created in
                var stored = definition
                stored.id = id.lowercaseText
                stored.audit = M.audit(created)
                return try stored.protoJSONText()
            }, actor: try context.actor(), write: write.options)
        report = try write.response(outcome)
        return report
    }

    /// The `GetReport` RPC (see `analytics.proto`).
    public func getReport(
        request: Switchboard_Analytics_V1_GetReportRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_ReportDefinition {
        try M.report(try await domain.definition(.report, id: try M.requiredID(request.id, field: "id"), actor: try context.actor()))
    }

    /// The `ListReports` RPC (see `analytics.proto`).
    public func listReports(
        request: Switchboard_Analytics_V1_ListReportsRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_ListReportsResponse {
        let (found, next) = try await domain.definitions(
            .report, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Analytics_V1_ListReportsResponse()
        response.reports = try found.map(M.report)
        response.page = Self.pageResponse(next)
        return response
    }

    /// The `DeleteReport` RPC (see `analytics.proto`).
    public func deleteReport(
        request: Switchboard_Analytics_V1_DeleteReportRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_DeleteReportResponse {
        let id = try M.requiredID(request.id, field: "id")
        let write = try IdempotentWrite(request: request, requestID: request.requestId, method: Methods.deleteReport) { (_: Bool) in
            Switchboard_Analytics_V1_DeleteReportResponse()
        }
        return try write.response(
            try await domain.deleteDefinition(
                .report, id: id, othersToo: try context.caller().has(atLeast: .manager), actor: try context.actor(), write: write.options))
    }

    /// The definition a run or export names: a stored report's, or the inline one.
    func spec(reportID: String, inline: Switchboard_Analytics_V1_ReportDefinition?, actor: Actor) async throws -> ReportSpec {
        if !reportID.isEmpty {
            let stored = try await domain.definition(.report, id: try M.requiredID(reportID, field: "report_id"), actor: actor)
            return try M.spec(try M.report(stored), prefix: "report.", stored: true)
        }
        guard let inline else { throw InvalidRequest("report_id", "a report_id or a definition is required", reason: "REQUIRED") }
        return try M.spec(inline, prefix: "definition.")
    }

    /// The `RunReport` RPC (see `analytics.proto`).
    public func runReport(
        request: Switchboard_Analytics_V1_RunReportRequest, responses: RPCWriter<Switchboard_Analytics_V1_ReportRow>, context: ServerContext
    ) async throws {
        let actor = try context.actor()
        let spec = try await spec(reportID: request.reportId, inline: request.definition, actor: actor)
        try await domain.runReport(spec, actor: actor) { values, header in
            var row = Switchboard_Analytics_V1_ReportRow()
            row.values = values
            row.header = header
            try await responses.write(row)
        }
    }

    /// The `ExportReport` RPC (see `analytics.proto`).
    public func exportReport(
        request: Switchboard_Analytics_V1_ExportReportRequest, responses: RPCWriter<Switchboard_Analytics_V1_CsvChunk>, context: ServerContext
    ) async throws {
        let actor = try context.actor()
        let spec = try await spec(reportID: request.reportId, inline: request.definition, actor: actor)
        try await domain.exportReport(spec, spreadsheetSafe: request.spreadsheetSafe, actor: actor) { bytes in
            var chunk = Switchboard_Analytics_V1_CsvChunk()
            chunk.data = bytes
            try await responses.write(chunk)
        }
    }

    // MARK: Dashboards

    /// The `CreateDashboard` RPC (see `analytics.proto`).
    public func createDashboard(
        request: Switchboard_Analytics_V1_CreateDashboardRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_Dashboard {
        guard let dashboard = request.dashboard else { throw InvalidRequest("dashboard", "is required", reason: "REQUIRED") }
        try AnalyticsRules.checkName(dashboard.name, field: "dashboard.name")
        guard (1...AnalyticsRules.maxWidgets).contains(dashboard.widgets.count) else {
            throw InvalidRequest("dashboard.widgets", "1 to \(AnalyticsRules.maxWidgets) widgets", reason: "OUT_OF_RANGE")
        }
        for (i, widget) in dashboard.widgets.enumerated() { try checkWidget(widget, field: "dashboard.widgets[\(i)]") }
        // A widget of a report that is not there would show an empty table forever.
        for (i, widget) in dashboard.widgets.enumerated() where widget.type == "report" {
            do {
                _ = try await domain.definition(
                    .report, id: try M.requiredID(widget.reportId, field: "dashboard.widgets[\(i)].report_id"), actor: try context.actor())
            } catch AnalyticsError.notFound {
                throw InvalidRequest("dashboard.widgets[\(i)].report_id", "no report with this id in the tenant", reason: "NOT_FOUND")
            }
        }
        let write = try IdempotentWrite(request: request, requestID: request.requestId, method: Methods.createDashboard) { (s: StoredDefinition) in
            (try? M.dashboard(s)) ?? Switchboard_Analytics_V1_Dashboard()
        }
        return try write.response(
            try await domain.createDefinition(
                .dashboard, name: dashboard.name,
                json: { id, created in
                    var stored = dashboard
                    stored.id = id.lowercaseText
                    stored.audit = M.audit(created)
                    return try stored.protoJSONText()
                }, actor: try context.actor(), write: write.options))
    }

    func checkWidget(_ w: Switchboard_Analytics_V1_Widget, field: String) throws {
        guard w.title.utf8.count <= AnalyticsRules.maxNameBytes else {
            throw InvalidRequest(field + ".title", "must be at most \(AnalyticsRules.maxNameBytes) bytes", reason: "TOO_LONG")
        }
        guard (0...domain.limits.maxRangeDays).contains(Int(w.days)) else {
            throw InvalidRequest(field + ".days", "must be between 0 and \(domain.limits.maxRangeDays)", reason: "OUT_OF_RANGE")
        }
        switch w.type {
        case "activity_stats": _ = try M.grouping(w.groupBy, field: field + ".group_by")
        case "funnel", "completeness": break
        case "top":
            _ = try M.subjectKind(w.subjectType, field: field + ".subject_type")
            _ = try M.metric(w.metric, field: field + ".metric")
            guard (0...domain.limits.maxTop).contains(Int(w.limit)) else {
                throw InvalidRequest(field + ".limit", "must be between 0 and \(domain.limits.maxTop)", reason: "OUT_OF_RANGE")
            }
        case "report": _ = try M.requiredID(w.reportId, field: field + ".report_id")
        default: throw InvalidRequest(field + ".type", "must be activity_stats, funnel, top, completeness or report", reason: "UNKNOWN")
        }
    }

    /// The `GetDashboard` RPC (see `analytics.proto`).
    public func getDashboard(
        request: Switchboard_Analytics_V1_GetDashboardRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_Dashboard {
        try M.dashboard(try await domain.definition(.dashboard, id: try M.requiredID(request.id, field: "id"), actor: try context.actor()))
    }

    /// The `GetDashboardData` RPC (see `analytics.proto`): every widget's data in one call.
    public func getDashboardData(
        request: Switchboard_Analytics_V1_GetDashboardRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_DashboardData {
        let actor = try context.actor()
        let dashboard = try M.dashboard(try await domain.definition(.dashboard, id: try M.requiredID(request.id, field: "id"), actor: actor))
        let now = Date()
        var response = Switchboard_Analytics_V1_DashboardData()
        response.dashboard = dashboard
        response.asOf = now
        for widget in dashboard.widgets {
            var data = Switchboard_Analytics_V1_WidgetData()
            data.widget = widget
            let start = now.addingTimeInterval(-Double(widget.days == 0 ? 30 : widget.days) * 86_400)
            switch widget.type {
            case "activity_stats":
                data.data = .activityStats(
                    M.stats(
                        try await domain.activityStats(
                            start: start, end: now, grouping: try M.grouping(widget.groupBy, field: "group_by"), kinds: [], actor: actor))
                )
            case "funnel":
                data.data = .funnel(M.funnel(try await domain.funnel(stages: [], start: start, end: now, actor: actor)))
            case "top":
                data.data = .top(
                    M.top(
                        try await domain.top(
                            try M.subjectKind(widget.subjectType, field: "subject_type"), metric: try M.metric(widget.metric, field: "metric"),
                            limit: Int(widget.limit), start: start, end: now, actor: actor)))
            case "completeness":
                data.data = .completeness(M.proto(try await domain.completeness(actor: actor)))
            case "report":
                var rows = Switchboard_Analytics_V1_ReportRows()
                // A report deleted since the dashboard was made: the widget says so (the other widgets still show).
                var stored: StoredDefinition?
                do {
                    stored = try await domain.definition(.report, id: try M.requiredID(widget.reportId, field: "report_id"), actor: actor)
                } catch AnalyticsError.notFound {
                    var status = Google_Rpc_Status()
                    status.code = Int32(StatusCode.notFound.rawValue)
                    status.message = "report \(widget.reportId) was deleted"
                    data.error = status
                }
                if let stored {
                    do {
                        let spec = try M.spec(try M.report(stored), prefix: "report.", stored: true)
                        let collected = RowCollector()
                        try await domain.runReport(spec, actor: actor, maxRows: 100) { values, header in
                            var row = Switchboard_Analytics_V1_ReportRow()
                            row.values = values
                            row.header = header
                            collected.rows.append(row)
                        }
                        rows.rows = collected.rows
                        data.data = .report(rows)
                    } catch let error as InvalidRequest {
                        // A definition this version no longer accepts: that widget says why, the others still show.
                        var status = Google_Rpc_Status()
                        status.code = Int32(StatusCode.invalidArgument.rawValue)
                        status.message = "report \(widget.reportId): \(error.rpcError.message)"
                        data.error = status
                    }
                }
            default: break
            }
            response.widgets.append(data)
        }
        return response
    }

    /// Collects a dashboard widget's (at most 100) report rows.
    final class RowCollector: @unchecked Sendable {
        // Used by one task at a time: runReport calls its body sequentially.
        var rows: [Switchboard_Analytics_V1_ReportRow] = []
    }

    // MARK: Alerts

    /// The `CreateAlert` RPC (see `analytics.proto`).
    public func createAlert(
        request: Switchboard_Analytics_V1_CreateAlertRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_Alert {
        guard let alert = request.alert else { throw InvalidRequest("alert", "is required", reason: "REQUIRED") }
        let metric = try M.metric(alert.metric, field: "alert.metric")
        guard alert.direction == .above || alert.direction == .below else {
            throw InvalidRequest("alert.direction", "must be ABOVE or BELOW", reason: "REQUIRED")
        }
        let actor = try context.actor()
        let value = AlertValue(
            id: UUID(), name: alert.name, metric: metric, threshold: alert.threshold, above: alert.direction == .above,
            created: Created(at: Date(), by: actor.userID))
        let write = try IdempotentWrite(request: request, requestID: request.requestId, method: Methods.createAlert) { (a: AlertValue) in M.proto(a) }
        return try write.response(try await domain.createAlert(value, actor: actor, write: write.options))
    }

    /// The `ListAlerts` RPC (see `analytics.proto`).
    public func listAlerts(
        request: Switchboard_Analytics_V1_ListAlertsRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_ListAlertsResponse {
        var response = Switchboard_Analytics_V1_ListAlertsResponse()
        response.alerts = try await domain.alerts(actor: try context.actor()).map(M.proto)
        return response
    }

    /// The `DeleteAlert` RPC (see `analytics.proto`).
    public func deleteAlert(
        request: Switchboard_Analytics_V1_DeleteAlertRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_DeleteAlertResponse {
        let id = try M.requiredID(request.id, field: "id")
        let write = try IdempotentWrite(request: request, requestID: request.requestId, method: Methods.deleteAlert) { (_: Bool) in
            Switchboard_Analytics_V1_DeleteAlertResponse()
        }
        return try write.response(try await domain.deleteAlert(id: id, actor: try context.actor(), write: write.options))
    }

    // MARK: Feed and subject access

    /// The `WatchChanges` RPC (see `analytics.proto`).
    public func watchChanges(
        request: Switchboard_Common_V1_WatchChangesRequest, responses: RPCWriter<Switchboard_Common_V1_ChangeEvent>, context: ServerContext
    ) async throws {
        try await changes.watch(request, responses: responses, context: context)
    }

    /// The `ExportSubject` RPC (see `analytics.proto`).
    public func exportSubject(
        request: Switchboard_Analytics_V1_ExportSubjectRequest, responses: RPCWriter<Switchboard_Analytics_V1_SubjectRecord>,
        context: ServerContext
    ) async throws {
        let contact = try M.requiredID(request.contactId, field: "contact_id")
        let (metrics, score) = try await domain.exportSubject(
            contact: contact, actor: try context.actor(),
            snapshot: { state in
                var record = Switchboard_Analytics_V1_SubjectRecord()
                record.record = .contact(M.proto(state))
                try await responses.write(record)
            }
        ) { entries in
            for entry in entries {
                var record = Switchboard_Analytics_V1_SubjectRecord()
                record.record = .timelineEntry(M.proto(entry))
                try await responses.write(record)
            }
        }
        var record = Switchboard_Analytics_V1_SubjectRecord()
        record.record = .metrics(M.proto(metrics))
        try await responses.write(record)
        record.record = .score(M.proto(score))
        try await responses.write(record)
    }
}
