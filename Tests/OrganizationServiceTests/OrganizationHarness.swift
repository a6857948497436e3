import Foundation
import OrganizationService
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport

typealias Organization = Switchboard_Organization_V1_Organization
typealias OrganizationStub = Switchboard_Organization_V1_OrganizationService_Client

/// The organization service in-process over real HTTP/2 on a fresh database, as the `organization_service` role,
/// assembled as the executable assembles it (the kit's ``ServiceHarness``).
final class OrganizationHarness: Sendable {
    let service: ServiceHarness
    var pool: PostgresPool { service.pool }
    var channel: GRPCChannel { service.channel }

    static func start() async throws -> OrganizationHarness {
        OrganizationHarness(service: try await ServiceHarness.start(OrganizationService.description))
    }

    private init(service: ServiceHarness) { self.service = service }

    func stop() async { await service.stop() }

    /// A typed client calling as `user` of `tenant` with `roles`.
    func client(tenant: String, user: String = "user-1", roles: [Role] = [.user], token: String? = nil) async throws -> OrgClient {
        OrgClient(
            stub: OrganizationStub(client: RPCClient(transport: channel)),
            options: try await service.options(tenant: tenant, user: user, roles: roles, token: token))
    }
}

/// The typed client plus the call options carrying the token.
struct OrgClient: Sendable {
    let stub: OrganizationStub
    let options: CallOptions

    func create(
        _ name: String, parent: String = "", domains: [String] = [], tags: [String] = [], industry: String = "", requestID: String = "",
        configure: (inout Organization) -> Void = { _ in }
    ) async throws -> Organization {
        var organization = Organization()
        organization.name = name
        organization.parentId = parent
        organization.domains = domains
        organization.tags = tags
        organization.industry = industry
        configure(&organization)
        var request = Switchboard_Organization_V1_CreateOrganizationRequest()
        request.organization = organization
        request.requestId = requestID
        return try await stub.createOrganization(request, options: options)
    }

    func get(_ id: String, includeDeleted: Bool = false) async throws -> Organization {
        var request = Switchboard_Organization_V1_GetOrganizationRequest()
        request.id = id
        request.includeDeleted = includeDeleted
        return try await stub.getOrganization(request, options: options)
    }

    func update(
        _ id: String, paths: [String], etag: String = "", requestID: String = "", change: (inout Organization) -> Void
    ) async throws -> Organization {
        var organization = Organization()
        organization.id = id
        change(&organization)
        var request = Switchboard_Organization_V1_UpdateOrganizationRequest()
        request.organization = organization
        request.updateMask = Google_Protobuf_FieldMask(paths: paths)
        request.etag = etag
        request.requestId = requestID
        return try await stub.updateOrganization(request, options: options)
    }

    func move(_ id: String, under parent: String) async throws -> Organization {
        try await update(id, paths: ["parent_id"]) { $0.parentId = parent }
    }

    func delete(_ id: String, etag: String = "", requestID: String = "") async throws -> Organization {
        var request = Switchboard_Organization_V1_DeleteOrganizationRequest()
        request.id = id
        request.etag = etag
        request.requestId = requestID
        return try await stub.deleteOrganization(request, options: options)
    }

    func undelete(_ id: String) async throws -> Organization {
        var request = Switchboard_Organization_V1_UndeleteOrganizationRequest()
        request.id = id
        return try await stub.undeleteOrganization(request, options: options)
    }

    func list(
        pageSize: Int32 = 0, token: String = "", configure: (inout Switchboard_Organization_V1_ListOrganizationsRequest) -> Void = { _ in }
    ) async throws -> Switchboard_Organization_V1_ListOrganizationsResponse {
        var request = Switchboard_Organization_V1_ListOrganizationsRequest()
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        configure(&request)
        return try await stub.listOrganizations(request, options: options)
    }

    func tree(_ id: String, maxDepth: Int32 = 0) async throws -> [Switchboard_Organization_V1_OrganizationTreeNode] {
        var request = Switchboard_Organization_V1_StreamOrganizationTreeRequest()
        request.id = id
        request.maxDepth = maxDepth
        return try await stub.streamOrganizationTree(request, options: options) { nodes in
            var all: [Switchboard_Organization_V1_OrganizationTreeNode] = []
            for try await node in nodes { all.append(node) }
            return all
        }
    }

    func ancestors(_ id: String) async throws -> [String] {
        var request = Switchboard_Organization_V1_ListAncestorsRequest()
        request.id = id
        return try await stub.listAncestors(request, options: options).ancestors.map(\.id)
    }

    func createUnit(
        _ name: String, organization: String, parent: String = "", kind: Switchboard_Organization_V1_UnitKind = .unspecified,
        requestID: String = ""
    ) async throws -> Switchboard_Organization_V1_Unit {
        var unit = Switchboard_Organization_V1_Unit()
        unit.name = name
        unit.organizationId = organization
        unit.parentUnitId = parent
        unit.kind = kind
        var request = Switchboard_Organization_V1_CreateUnitRequest()
        request.unit = unit
        request.requestId = requestID
        return try await stub.createUnit(request, options: options)
    }

    func getUnit(_ id: String, includeDeleted: Bool = false) async throws -> Switchboard_Organization_V1_Unit {
        var request = Switchboard_Organization_V1_GetUnitRequest()
        request.id = id
        request.includeDeleted = includeDeleted
        return try await stub.getUnit(request, options: options)
    }

    func updateUnit(
        _ id: String, paths: [String], etag: String = "", change: (inout Switchboard_Organization_V1_Unit) -> Void
    ) async throws -> Switchboard_Organization_V1_Unit {
        var unit = Switchboard_Organization_V1_Unit()
        unit.id = id
        change(&unit)
        var request = Switchboard_Organization_V1_UpdateUnitRequest()
        request.unit = unit
        request.updateMask = Google_Protobuf_FieldMask(paths: paths)
        request.etag = etag
        return try await stub.updateUnit(request, options: options)
    }

    func deleteUnit(_ id: String) async throws -> Switchboard_Organization_V1_Unit {
        var request = Switchboard_Organization_V1_DeleteUnitRequest()
        request.id = id
        return try await stub.deleteUnit(request, options: options)
    }

    func undeleteUnit(_ id: String) async throws -> Switchboard_Organization_V1_Unit {
        var request = Switchboard_Organization_V1_UndeleteUnitRequest()
        request.id = id
        return try await stub.undeleteUnit(request, options: options)
    }

    func listUnits(
        _ organization: String, parent: String = "", pageSize: Int32 = 0, token: String = ""
    ) async throws
        -> Switchboard_Organization_V1_ListUnitsResponse
    {
        var request = Switchboard_Organization_V1_ListUnitsRequest()
        request.organizationId = organization
        request.parentUnitId = parent
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        return try await stub.listUnits(request, options: options)
    }
}

func rpcError(_ body: () async throws -> Void) async -> RPCError? {
    do {
        try await body()
        return nil
    } catch let error as RPCError {
        return error
    } catch {
        return RPCError(code: .unknown, message: "\(error)")
    }
}

func fields(_ error: RPCError?) -> Set<String> { Set(error?.fieldViolations.map(\.field) ?? []) }

func tenant() -> String { "tenant-" + UUID().uuidString.prefix(8).lowercased() }

func string(_ s: String) -> Google_Protobuf_Value {
    var v = Google_Protobuf_Value()
    v.kind = .stringValue(s)
    return v
}

func number(_ n: Double) -> Google_Protobuf_Value {
    var v = Google_Protobuf_Value()
    v.kind = .numberValue(n)
    return v
}
