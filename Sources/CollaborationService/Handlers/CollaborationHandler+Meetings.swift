import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension CollaborationHandler {
    /// The meeting's contacts as references named `meeting.contact_ids[i]` (by their place in the request), leaving out
    /// `known`.
    static func contacts(of meeting: Switchboard_Collaboration_V1_Meeting, except known: Set<UUID> = []) -> [ContactReference] {
        meeting.contactIds.enumerated().compactMap { i, text in
            UUID(uuidString: text).flatMap { known.contains($0) ? nil : ContactReference(field: "meeting.contact_ids[\(i)]", id: $0) }
        }
    }

    /// The `CreateMeeting` RPC (see `collaboration.proto`).
    public func createMeeting(
        request: Switchboard_Collaboration_V1_CreateMeetingRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Meeting {
        guard let meeting = request.meeting else { throw CollaborationError.invalid("meeting", "is required", reason: "REQUIRED") }
        let data = try M.meetingData(meeting)
        let write = try Self.write(request, request.requestId, context, Methods.createMeeting) { (r: MeetingRecord) in M.proto(r) }
        if let replay = try await references.check(Self.contacts(of: meeting), for: write, context: context) { return replay }
        return try write.response(
            try await domain.createMeeting(
                data, allowConflicts: request.allowConflicts, principal: try Self.principal(context), write: write.options))
    }

    /// The `GetMeeting` RPC (see `collaboration.proto`).
    public func getMeeting(
        request: Switchboard_Collaboration_V1_GetMeetingRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Meeting {
        M.proto(
            try await domain.meeting(
                id: try M.requiredID(request.id, field: "id"), includeDeleted: request.includeDeleted, principal: try Self.principal(context)))
    }

    /// The `UpdateMeeting` RPC (see `collaboration.proto`).
    public func updateMeeting(
        request: Switchboard_Collaboration_V1_UpdateMeetingRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Meeting {
        guard let meeting = request.meeting else { throw CollaborationError.invalid("meeting", "is required", reason: "REQUIRED") }
        let id = try M.requiredID(meeting.id, field: "meeting.id")
        let source = try M.meetingData(meeting)
        let write = try Self.write(request, request.requestId, context, Methods.updateMeeting) { (r: MeetingRecord) in M.proto(r) }
        if request.updateMask?.paths.contains("contact_ids") == true, references.isEnabled, !source.contactIDs.isEmpty {
            // Only contacts the update adds must be live: one deleted since the meeting named it may stay named.
            // The meeting's own errors (not found, not the caller's to read) are the update's too.
            let named = try await domain.meeting(id: id, includeDeleted: false, principal: try Self.principal(context)).data.contactIDs
            if let replay = try await references.check(Self.contacts(of: meeting, except: Set(named)), for: write, context: context) {
                return replay
            }
        }
        return try write.response(
            try await domain.updateMeeting(
                id: id, from: source, paths: request.updateMask?.paths ?? [], etag: request.etag, allowConflicts: request.allowConflicts,
                principal: try Self.principal(context), write: write.options))
    }

    /// The `DeleteMeeting` RPC (see `collaboration.proto`).
    public func deleteMeeting(
        request: Switchboard_Collaboration_V1_DeleteMeetingRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Meeting {
        let write = try Self.write(request, request.requestId, context, Methods.deleteMeeting) { (r: MeetingRecord) in M.proto(r) }
        return try write.response(
            try await domain.cancelMeeting(
                id: try M.requiredID(request.id, field: "id"), etag: request.etag, principal: try Self.principal(context), write: write.options))
    }

    /// The `UndeleteMeeting` RPC (see `collaboration.proto`).
    public func undeleteMeeting(
        request: Switchboard_Collaboration_V1_UndeleteMeetingRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Meeting {
        let write = try Self.write(request, request.requestId, context, Methods.undeleteMeeting) { (r: MeetingRecord) in M.proto(r) }
        return try write.response(
            try await domain.undeleteMeeting(
                id: try M.requiredID(request.id, field: "id"), allowConflicts: request.allowConflicts, principal: try Self.principal(context),
                write: write.options))
    }

    /// The `ListMeetings` RPC (see `collaboration.proto`).
    public func listMeetings(
        request: Switchboard_Collaboration_V1_ListMeetingsRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_ListMeetingsResponse {
        let scope: MeetingScope
        switch (request.contactId.isEmpty, request.userId.isEmpty) {
        case (false, true): scope = .contact(try M.requiredID(request.contactId, field: "contact_id"))
        case (true, false): scope = .user(request.userId)
        default: throw CollaborationError.invalid("contact_id", "name exactly one of contact_id and user_id", reason: "REQUIRED")
        }
        let (meetings, next) = try await domain.listMeetings(
            of: scope, window: (request.timeMin, request.timeMax), pageSize: Int(request.page?.pageSize ?? 0),
            pageToken: request.page?.pageToken ?? "", principal: try Self.principal(context))
        var response = Switchboard_Collaboration_V1_ListMeetingsResponse()
        response.meetings = meetings.map(M.proto)
        response.page = Self.pageResponse(next)
        return response
    }

    /// The `CancelOccurrence` RPC (see `collaboration.proto`).
    public func cancelOccurrence(
        request: Switchboard_Collaboration_V1_CancelOccurrenceRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Meeting {
        let write = try Self.write(request, request.requestId, context, Methods.cancelOccurrence) { (r: MeetingRecord) in M.proto(r) }
        return try write.response(
            try await domain.changeOccurrence(
                id: try M.requiredID(request.id, field: "id"), occurrence: Int(request.occurrence), change: .cancel, etag: request.etag,
                allowConflicts: false, principal: try Self.principal(context), write: write.options))
    }

    /// The `MoveOccurrence` RPC (see `collaboration.proto`).
    public func moveOccurrence(
        request: Switchboard_Collaboration_V1_MoveOccurrenceRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Meeting {
        let write = try Self.write(request, request.requestId, context, Methods.moveOccurrence) { (r: MeetingRecord) in M.proto(r) }
        return try write.response(
            try await domain.changeOccurrence(
                id: try M.requiredID(request.id, field: "id"), occurrence: Int(request.occurrence),
                change: .move(start: request.startTime, end: request.endTime), etag: request.etag, allowConflicts: request.allowConflicts,
                principal: try Self.principal(context), write: write.options))
    }

    /// The `RestoreOccurrence` RPC (see `collaboration.proto`).
    public func restoreOccurrence(
        request: Switchboard_Collaboration_V1_RestoreOccurrenceRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_Meeting {
        let write = try Self.write(request, request.requestId, context, Methods.restoreOccurrence) { (r: MeetingRecord) in M.proto(r) }
        return try write.response(
            try await domain.changeOccurrence(
                id: try M.requiredID(request.id, field: "id"), occurrence: Int(request.occurrence), change: .restore, etag: request.etag,
                allowConflicts: request.allowConflicts, principal: try Self.principal(context), write: write.options))
    }

    /// The `FindFreeSlots` RPC (see `collaboration.proto`).
    public func findFreeSlots(
        request: Switchboard_Collaboration_V1_FindFreeSlotsRequest, context: ServerContext
    ) async throws -> Switchboard_Collaboration_V1_FindFreeSlotsResponse {
        guard request.userIds.count <= 10 * MeetingRules.maxSlotUsers else {
            throw CollaborationError.invalid("user_ids", "at most \(MeetingRules.maxSlotUsers) users", reason: "TOO_MANY")
        }
        let slots = try await domain.freeSlots(
            users: request.userIds, range: (request.rangeStart, request.rangeEnd), minutes: Int(request.durationMinutes),
            principal: try Self.principal(context))
        var response = Switchboard_Collaboration_V1_FindFreeSlotsResponse()
        response.slots = slots.map { slot in
            var p = Switchboard_Collaboration_V1_TimeSlot()
            p.startTime = slot.start
            p.endTime = slot.end
            return p
        }
        return response
    }
}
