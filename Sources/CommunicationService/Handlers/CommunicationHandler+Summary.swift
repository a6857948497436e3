import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension CommunicationHandler {
    /// The `GetContactSummary` RPC (see `communication.proto`): the first pages of the contact's `ListInteractions` and
    /// `ListConsentHistory` and its preferences, answered by those RPCs' own code and read at once.
    public func getContactSummary(
        request: Switchboard_Communication_V1_GetContactSummaryRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_ContactSummary {
        // Checked here: an empty id would list every interaction of the tenant, and an error names this request's fields.
        _ = try InteractionMapping.requiredID(request.contactId, field: "contact_id")
        let page = try ContactSummaryPage.request(request.pageSize)
        var interactionsRequest = Switchboard_Communication_V1_ListInteractionsRequest()
        interactionsRequest.contactId = request.contactId
        interactionsRequest.page = page
        var consentsRequest = Switchboard_Communication_V1_ListConsentHistoryRequest()
        consentsRequest.contactId = request.contactId
        consentsRequest.page = page
        // Values for the child tasks (a variable may not be sent to them).
        let consentsList = consentsRequest
        let preferencesRequest = {
            var r = Switchboard_Communication_V1_GetContactPreferencesRequest()
            r.contactId = request.contactId
            return r
        }()
        return try await ContactSummaryPage.readingTogether {
            async let consents = listConsentHistory(request: consentsList, context: context)
            async let preferences = getContactPreferences(request: preferencesRequest, context: context)
            var summary = Switchboard_Communication_V1_ContactSummary()
            summary.interactions = try await listInteractions(request: interactionsRequest, context: context)
            summary.consents = try await consents
            summary.preferences = try await preferences
            return summary
        }
    }
}
