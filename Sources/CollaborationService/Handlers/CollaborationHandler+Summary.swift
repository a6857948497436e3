import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension CollaborationHandler {
    /// The `GetContactSummary` RPC (see `collaboration.proto`): the first pages of the contact's `ListNotes`,
    /// `ListFiles` and `ListMeetings` (meetings ending after `meetings_after`, or after now, which the answer names),
    /// answered by those RPCs' own code and read at once.
    public func getContactSummary(
        request: Switchboard_Collaboration_V1_GetContactSummaryRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_ContactSummary {
        // Checked here so that an error names this request's fields, not the lists' (`subject.id`).
        _ = try M.requiredID(request.contactId, field: "contact_id")
        let page = try ContactSummaryPage.request(request.pageSize)
        var subject = Switchboard_Collaboration_V1_Subject()
        subject.type = .contact
        subject.id = request.contactId
        var notesRequest = Switchboard_Collaboration_V1_ListNotesRequest()
        notesRequest.subject = subject
        notesRequest.page = page
        var filesRequest = Switchboard_Collaboration_V1_ListFilesRequest()
        filesRequest.subject = subject
        filesRequest.page = page
        var meetingsRequest = Switchboard_Collaboration_V1_ListMeetingsRequest()
        meetingsRequest.contactId = request.contactId
        // ListMeetings' own check would name its field, time_min.
        if let after = request.meetingsAfter, !after.timeIntervalSince1970.isFinite {
            throw CollaborationError.invalid("meetings_after", "must be a time between years 1 and 9999", reason: "OUT_OF_RANGE")
        }
        // Whole seconds: the caller gets the instant back (as a Timestamp) to continue the meetings with their page token,
        // which is bound to it, and a whole second survives that round trip exactly.
        let after = request.meetingsAfter ?? Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        meetingsRequest.timeMin = after
        meetingsRequest.page = page
        // Values for the child tasks (a variable may not be sent to them).
        let filesList = filesRequest
        let meetingsList = meetingsRequest
        return try await ContactSummaryPage.readingTogether {
            async let files = listFiles(request: filesList, context: context)
            async let meetings = listMeetings(request: meetingsList, context: context)
            var summary = Switchboard_Collaboration_V1_ContactSummary()
            summary.notes = try await listNotes(request: notesRequest, context: context)
            summary.files = try await files
            summary.meetings = try await meetings
            summary.meetingsAfter = after
            return summary
        }
    }
}
