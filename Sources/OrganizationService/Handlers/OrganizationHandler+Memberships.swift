import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension OrganizationHandler {
    public typealias MembershipProto = Switchboard_Organization_V1_Membership

    private static func membershipWrite(
        _ request: some ProtoJSONMessage, _ requestID: String, _ method: MethodDescriptor
    ) throws -> IdempotentWrite<MembershipRecord, MembershipProto> {
        try IdempotentWrite(request: request, requestID: requestID, method: method, response: { MembershipMapping.proto($0) })
    }

    public func defineMembershipRole(
        request: Switchboard_Organization_V1_DefineMembershipRoleRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_MembershipRole {
        guard let proto = request.role else { throw OrganizationError.invalid([Violation("role", "is required", reason: "REQUIRED")]) }
        let role = MembershipRole(key: proto.key, displayName: proto.displayName, maxPerOrganization: Int(proto.maxPerOrganization))
        let write = try IdempotentWrite(
            request: request, requestID: request.requestId, method: Methods.defineMembershipRole,
            response: { (r: MembershipRole) in MembershipMapping.proto(r) })
        return try write.response(try await memberships.defineRole(role, actor: try context.actor(), write: write.options))
    }

    public func listMembershipRoles(
        request: Switchboard_Organization_V1_ListMembershipRolesRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_ListMembershipRolesResponse {
        var response = Switchboard_Organization_V1_ListMembershipRolesResponse()
        response.roles = try await memberships.roles(actor: try context.actor(), includeRetired: request.includeRetired).map(MembershipMapping.proto)
        return response
    }

    public func createMembership(
        request: Switchboard_Organization_V1_CreateMembershipRequest, context: ServerContext
    ) async throws -> MembershipProto {
        guard let membership = request.membership else {
            throw OrganizationError.invalid([Violation("membership", "is required", reason: "REQUIRED")])
        }
        let data = try MembershipMapping.data(membership, create: true)
        let write = try Self.membershipWrite(request, request.requestId, Methods.createMembership)
        return try write.response(try await memberships.create(data, actor: try context.actor(), write: write.options))
    }

    public func getMembership(request: Switchboard_Organization_V1_GetMembershipRequest, context: ServerContext) async throws -> MembershipProto {
        MembershipMapping.proto(
            try await memberships.get(id: try OrganizationMapping.requiredID(request.id, field: "id"), actor: try context.actor()))
    }

    public func updateMembership(
        request: Switchboard_Organization_V1_UpdateMembershipRequest, context: ServerContext
    ) async throws -> MembershipProto {
        guard let membership = request.membership else {
            throw OrganizationError.invalid([Violation("membership", "is required", reason: "REQUIRED")])
        }
        let id = try OrganizationMapping.requiredID(membership.id, field: "membership.id")
        let source = try MembershipMapping.data(membership, create: false)
        guard request.etag.utf8.count <= Self.maxETagBytes else {
            throw OrganizationError.invalid([Violation("etag", "must be at most \(Self.maxETagBytes) bytes", reason: "TOO_LONG")])
        }
        let write = try Self.membershipWrite(request, request.requestId, Methods.updateMembership)
        return try write.response(
            try await memberships.update(
                id: id, from: source, paths: request.updateMask?.paths ?? [], etag: request.etag, actor: try context.actor(),
                write: write.options))
    }

    public func deleteMembership(
        request: Switchboard_Organization_V1_DeleteMembershipRequest, context: ServerContext
    ) async throws -> MembershipProto {
        guard request.etag.utf8.count <= Self.maxETagBytes else {
            throw OrganizationError.invalid([Violation("etag", "must be at most \(Self.maxETagBytes) bytes", reason: "TOO_LONG")])
        }
        let write = try Self.membershipWrite(request, request.requestId, Methods.deleteMembership)
        return try write.response(
            try await memberships.delete(
                id: try OrganizationMapping.requiredID(request.id, field: "id"), etag: request.etag, actor: try context.actor(),
                write: write.options))
    }

    public func listOrganizationMembers(
        request: Switchboard_Organization_V1_ListOrganizationMembersRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_ListOrganizationMembersResponse {
        var query = MembershipQuery()
        query.organizationID = try OrganizationMapping.requiredID(request.organizationId, field: "organization_id")
        var violations: [Violation] = []
        query.unitID = OrganizationMapping.optionalID(request.unitId, field: "unit_id", violations: &violations)
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        query.includeDescendants = request.includeDescendants
        query.role = request.role.isEmpty ? nil : request.role
        query.includeEnded = request.includeEnded
        query.asOf = request.asOf.isEmpty ? nil : request.asOf
        let (records, next) = try await memberships.list(
            query, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Organization_V1_ListOrganizationMembersResponse()
        response.memberships = records.map(MembershipMapping.proto)
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        response.page = page
        return response
    }

    public func listContactMemberships(
        request: Switchboard_Organization_V1_ListContactMembershipsRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_ListContactMembershipsResponse {
        var query = MembershipQuery()
        query.contactID = try OrganizationMapping.requiredID(request.contactId, field: "contact_id")
        query.includeEnded = request.includeEnded
        query.asOf = request.asOf.isEmpty ? nil : request.asOf
        let (records, next) = try await memberships.list(
            query, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Organization_V1_ListContactMembershipsResponse()
        response.memberships = records.map(MembershipMapping.proto)
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        response.page = page
        return response
    }
}
