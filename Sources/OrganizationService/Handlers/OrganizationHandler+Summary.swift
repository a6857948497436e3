import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension OrganizationHandler {
    /// The `GetContactSummary` RPC (see `organization.proto`): the first pages of `ListContactMemberships` and
    /// `ListContactGroups`, answered by those RPCs' own code, and the organizations the memberships name.
    public func getContactSummary(
        request: Switchboard_Organization_V1_GetContactSummaryRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_ContactSummary {
        // Checked here so that an error names this request's fields.
        _ = try OrganizationMapping.requiredID(request.contactId, field: "contact_id")
        let page = try ContactSummaryPage.request(request.pageSize)
        var membershipsRequest = Switchboard_Organization_V1_ListContactMembershipsRequest()
        membershipsRequest.contactId = request.contactId
        membershipsRequest.page = page
        var groupsRequest = Switchboard_Organization_V1_ListContactGroupsRequest()
        groupsRequest.contactId = request.contactId
        groupsRequest.page = page
        // The two lists read at once, in one round trip; the organizations need the memberships first.
        // Values for the child tasks (a variable may not be sent to them).
        let groupsList = groupsRequest
        return try await ContactSummaryPage.readingTogether {
            async let groups = listContactGroups(request: groupsList, context: context)
            let memberships = try await listContactMemberships(request: membershipsRequest, context: context)
            var ids: [UUID] = []
            for membership in memberships.memberships {
                if let id = UUID(text: membership.organizationId), !ids.contains(id) { ids.append(id) }
            }
            let found = ids.isEmpty ? [:] : try await domain.batchGet(ids: ids, actor: try context.actor())
            var summary = Switchboard_Organization_V1_ContactSummary()
            summary.memberships = memberships
            summary.organizations = ids.compactMap { found[$0].map(OrganizationMapping.proto) }
            summary.groups = try await groups
            return summary
        }
    }
}
