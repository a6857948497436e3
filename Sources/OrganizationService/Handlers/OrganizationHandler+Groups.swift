import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension OrganizationHandler {
    public typealias GroupProto = Switchboard_Organization_V1_Group
    public typealias BulkResponse = Switchboard_Organization_V1_BulkGroupMembersResponse

    private static func groupWrite(
        _ request: some ProtoJSONMessage, _ requestID: String, _ method: MethodDescriptor
    ) throws -> IdempotentWrite<GroupRecord, GroupProto> {
        try IdempotentWrite(request: request, requestID: requestID, method: method, response: { GroupMapping.proto($0) })
    }

    public func createGroup(request: Switchboard_Organization_V1_CreateGroupRequest, context: ServerContext) async throws -> GroupProto {
        guard let group = request.group else { throw OrganizationError.invalid([Violation("group", "is required", reason: "REQUIRED")]) }
        let data = try GroupMapping.data(group)
        let write = try Self.groupWrite(request, request.requestId, Methods.createGroup)
        return try write.response(try await groups.create(data, actor: try context.actor(), write: write.options))
    }

    public func getGroup(request: Switchboard_Organization_V1_GetGroupRequest, context: ServerContext) async throws -> GroupProto {
        GroupMapping.proto(
            try await groups.get(
                id: try OrganizationMapping.requiredID(request.id, field: "id"), includeDeleted: request.includeDeleted, actor: try context.actor()))
    }

    public func updateGroup(request: Switchboard_Organization_V1_UpdateGroupRequest, context: ServerContext) async throws -> GroupProto {
        guard let group = request.group else { throw OrganizationError.invalid([Violation("group", "is required", reason: "REQUIRED")]) }
        let id = try OrganizationMapping.requiredID(group.id, field: "group.id")
        let source = try GroupMapping.data(group)
        guard request.etag.utf8.count <= Self.maxETagBytes else {
            throw OrganizationError.invalid([Violation("etag", "must be at most \(Self.maxETagBytes) bytes", reason: "TOO_LONG")])
        }
        let write = try Self.groupWrite(request, request.requestId, Methods.updateGroup)
        return try write.response(
            try await groups.update(
                id: id, from: source, paths: request.updateMask?.paths ?? [], etag: request.etag, actor: try context.actor(), write: write.options))
    }

    public func deleteGroup(request: Switchboard_Organization_V1_DeleteGroupRequest, context: ServerContext) async throws -> GroupProto {
        guard request.etag.utf8.count <= Self.maxETagBytes else {
            throw OrganizationError.invalid([Violation("etag", "must be at most \(Self.maxETagBytes) bytes", reason: "TOO_LONG")])
        }
        let write = try Self.groupWrite(request, request.requestId, Methods.deleteGroup)
        return try write.response(
            try await groups.setDeleted(
                id: try OrganizationMapping.requiredID(request.id, field: "id"), deleted: true, etag: request.etag, actor: try context.actor(),
                write: write.options))
    }

    public func undeleteGroup(request: Switchboard_Organization_V1_UndeleteGroupRequest, context: ServerContext) async throws -> GroupProto {
        let write = try Self.groupWrite(request, request.requestId, Methods.undeleteGroup)
        return try write.response(
            try await groups.setDeleted(
                id: try OrganizationMapping.requiredID(request.id, field: "id"), deleted: false, etag: "", actor: try context.actor(),
                write: write.options))
    }

    public func listGroups(
        request: Switchboard_Organization_V1_ListGroupsRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_ListGroupsResponse {
        var query = GroupQuery()
        var violations: [Violation] = []
        query.parentGroupID = OrganizationMapping.optionalID(request.parentGroupId, field: "parent_group_id", violations: &violations)
        if !OrganizationRules.nameBound.allows(request.namePrefix) {
            violations.append(Violation("name_prefix", OrganizationRules.nameBound.description, reason: "TOO_LONG"))
        } else if !request.namePrefix.isEmpty {
            query.namePrefix = request.namePrefix.lowercased()
        }
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        query.includeDeleted = request.includeDeleted
        let (records, next) = try await groups.list(
            query, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Organization_V1_ListGroupsResponse()
        response.groups = records.map(GroupMapping.proto)
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        response.page = page
        return response
    }

    /// Longest contact id a bulk request may carry; a UUID's text is 36 bytes.
    static let maxEchoedIDBytes = 64

    /// A bulk add or remove: the ids that are UUIDs go to the domain; every requested id gets a result, in order.
    private func bulk(
        _ request: some ProtoJSONMessage, groupID: String, contactIDs: [String], requestID: String, adding: Bool, method: MethodDescriptor,
        context: ServerContext
    ) async throws -> BulkResponse {
        let group = try OrganizationMapping.requiredID(groupID, field: "group_id")
        guard !contactIDs.isEmpty else {
            throw OrganizationError.invalid([Violation("contact_ids", "give at least one contact id", reason: "REQUIRED")])
        }
        guard contactIDs.count <= GroupRules.maxBulkContacts else {
            throw OrganizationError.invalid([Violation("contact_ids", "at most \(GroupRules.maxBulkContacts) ids", reason: "TOO_MANY")])
        }
        // Each id is echoed in its result: one far longer than an id could make the response larger than the request
        // allowed (and fail after the change committed), so it is refused before anything is written.
        let tooLong = contactIDs.indices.filter { contactIDs[$0].utf8.count > Self.maxEchoedIDBytes }
        if !tooLong.isEmpty {
            throw OrganizationError.invalid(
                tooLong.prefix(20).map { Violation("contact_ids[\($0)]", "at most \(Self.maxEchoedIDBytes) bytes (an id)", reason: "TOO_LONG") })
        }
        let write = try IdempotentWrite(
            request: request, requestID: requestID, method: method,
            response: { (change: GroupBulkChange) in GroupMapping.proto(change.results(for: contactIDs, adding: adding)) })
        let valid = contactIDs.compactMap { UUID(uuidString: $0) }
        return try write.response(
            try await groups.change(group: group, contacts: valid, adding: adding, actor: try context.actor(), write: write.options))
    }

    public func addGroupMembers(request: Switchboard_Organization_V1_AddGroupMembersRequest, context: ServerContext) async throws -> BulkResponse {
        try await bulk(
            request, groupID: request.groupId, contactIDs: request.contactIds, requestID: request.requestId, adding: true,
            method: Methods.addGroupMembers,
            context: context)
    }

    public func removeGroupMembers(
        request: Switchboard_Organization_V1_RemoveGroupMembersRequest, context: ServerContext
    ) async throws -> BulkResponse {
        try await bulk(
            request, groupID: request.groupId, contactIDs: request.contactIds, requestID: request.requestId, adding: false,
            method: Methods.removeGroupMembers, context: context)
    }

    public func listGroupMembers(
        request: Switchboard_Organization_V1_ListGroupMembersRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_ListGroupMembersResponse {
        let (members, next) = try await groups.members(
            group: try OrganizationMapping.requiredID(request.groupId, field: "group_id"), includeSubgroups: request.includeSubgroups,
            pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Organization_V1_ListGroupMembersResponse()
        response.members = members.map { member in
            var m = Switchboard_Organization_V1_GroupMember()
            m.contactId = member.contactID.uuidString.lowercased()
            m.contactDisplayName = member.displayName
            m.groupId = member.groupID.uuidString.lowercased()
            return m
        }
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        response.page = page
        return response
    }

    public func listContactGroups(
        request: Switchboard_Organization_V1_ListContactGroupsRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_ListContactGroupsResponse {
        let (records, next) = try await groups.groups(
            of: try OrganizationMapping.requiredID(request.contactId, field: "contact_id"), pageSize: Int(request.page?.pageSize ?? 0),
            pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Organization_V1_ListContactGroupsResponse()
        response.groups = records.map(GroupMapping.proto)
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        response.page = page
        return response
    }
}
