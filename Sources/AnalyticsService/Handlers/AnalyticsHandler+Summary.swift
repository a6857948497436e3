import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension AnalyticsHandler {
    /// The `GetContactSummary` RPC (see `analytics.proto`): the contact's `GetContactMetrics` and the first page of its
    /// `GetTimeline`, answered by those RPCs' own code and read at once.
    public func getContactSummary(
        request: Switchboard_Analytics_V1_GetContactSummaryRequest, context: ServerContext
    ) async throws -> Switchboard_Analytics_V1_ContactSummary {
        // Checked here so that an error names this request's fields, not the timeline's (`subject_id`).
        _ = try M.requiredID(request.contactId, field: "contact_id")
        var timelineRequest = Switchboard_Analytics_V1_GetTimelineRequest()
        timelineRequest.subjectType = .contact
        timelineRequest.subjectId = request.contactId
        timelineRequest.page = try ContactSummaryPage.request(request.pageSize)
        var metricsRequest = Switchboard_Analytics_V1_GetContactMetricsRequest()
        metricsRequest.contactId = request.contactId
        // Values for the child tasks (a variable may not be sent to them).
        let timelineList = timelineRequest
        return try await ContactSummaryPage.readingTogether {
            async let timeline = getTimeline(request: timelineList, context: context)
            var summary = Switchboard_Analytics_V1_ContactSummary()
            summary.metrics = try await getContactMetrics(request: metricsRequest, context: context)
            summary.timeline = try await timeline
            return summary
        }
    }
}
