import FoundationEssentials
import SwitchboardPostgres  // UUID text only (UUID.lowercaseText, UUID(text:)): no pool or database types here
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

/// `switchboard.organization.v1.OrganizationService`: turns protobuf requests into domain calls and domain errors into
/// precise gRPC statuses. No SQL here.
public struct OrganizationHandler: Switchboard_Organization_V1_OrganizationService_ServiceProtocol {
    public typealias Proto = Switchboard_Organization_V1_Organization
    typealias Methods = Switchboard_Organization_V1_OrganizationService.Method
    let domain: OrganizationDomain
    let memberships: MembershipDomain
    let groups: GroupDomain
    let subjects: any SubjectStore
    let changes: TenantChangeWatcher
    /// Longest etag and custom field key a request may name.
    static let maxETagBytes = 64, maxKeyBytes = 64

    /// Creates the handler.
    /// - Parameters:
    ///   - domain: the organization use cases.
    ///   - memberships: the membership use cases.
    ///   - groups: the group use cases.
    ///   - subjects: what is held about a person (ExportSubject).
    ///   - changes: the kit's `WatchChanges`.
    public init(
        domain: OrganizationDomain, memberships: MembershipDomain, groups: GroupDomain, subjects: any SubjectStore, changes: TenantChangeWatcher
    ) {
        self.domain = domain
        self.memberships = memberships
        self.groups = groups
        self.subjects = subjects
        self.changes = changes
    }

    private static func checkETag(_ etag: String) throws {
        guard etag.utf8.count <= maxETagBytes else {
            throw OrganizationError.invalid([Violation("etag", "must be at most \(maxETagBytes) bytes", reason: "TOO_LONG")])
        }
    }

    private static func write(
        _ request: some ProtoJSONMessage, _ requestID: String, _ method: MethodDescriptor
    ) throws -> IdempotentWrite<OrganizationRecord, Proto> {
        try IdempotentWrite(request: request, requestID: requestID, method: method, response: { OrganizationMapping.proto($0) })
    }

    private static func unitWrite(
        _ request: some ProtoJSONMessage, _ requestID: String, _ method: MethodDescriptor
    ) throws -> IdempotentWrite<UnitRecord, Switchboard_Organization_V1_Unit> {
        try IdempotentWrite(request: request, requestID: requestID, method: method, response: { OrganizationMapping.proto($0) })
    }

    // MARK: Organizations

    public func createOrganization(request: Switchboard_Organization_V1_CreateOrganizationRequest, context: ServerContext) async throws -> Proto {
        guard let organization = request.organization else {
            throw OrganizationError.invalid([Violation("organization", "is required", reason: "REQUIRED")])
        }
        let data = try OrganizationMapping.data(organization, prefix: "organization")
        let write = try Self.write(request, request.requestId, Methods.createOrganization)
        return try write.response(try await domain.create(data, actor: try context.actor(), write: write.options))
    }

    public func getOrganization(request: Switchboard_Organization_V1_GetOrganizationRequest, context: ServerContext) async throws -> Proto {
        OrganizationMapping.proto(
            try await domain.get(
                id: try OrganizationMapping.requiredID(request.id, field: "id"), includeDeleted: request.includeDeleted,
                actor: try context.actor()))
    }

    public func batchGetOrganizations(
        request: Switchboard_Organization_V1_BatchGetOrganizationsRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_BatchGetOrganizationsResponse {
        guard request.ids.count <= OrganizationDomain.maxBatchIDs else {
            throw OrganizationError.invalid([Violation("ids", "at most \(OrganizationDomain.maxBatchIDs) ids", reason: "TOO_MANY")])
        }
        let ids = try request.ids.enumerated().map { try OrganizationMapping.requiredID($1, field: "ids[\($0)]") }
        let found = try await domain.batchGet(ids: ids, actor: try context.actor())
        var response = Switchboard_Organization_V1_BatchGetOrganizationsResponse()
        for (text, id) in zip(request.ids, ids) {
            if let record = found[id] { response.organizations.append(OrganizationMapping.proto(record)) } else { response.missingIds.append(text) }
        }
        return response
    }

    public func updateOrganization(request: Switchboard_Organization_V1_UpdateOrganizationRequest, context: ServerContext) async throws -> Proto {
        guard let organization = request.organization else {
            throw OrganizationError.invalid([Violation("organization", "is required", reason: "REQUIRED")])
        }
        let id = try OrganizationMapping.requiredID(organization.id, field: "organization.id")
        let source = try OrganizationMapping.data(organization, prefix: "organization")
        try Self.checkETag(request.etag)
        let write = try Self.write(request, request.requestId, Methods.updateOrganization)
        return try write.response(
            try await domain.update(
                id: id, from: source, paths: request.updateMask?.paths ?? [], etag: request.etag, actor: try context.actor(),
                write: write.options))
    }

    public func deleteOrganization(request: Switchboard_Organization_V1_DeleteOrganizationRequest, context: ServerContext) async throws -> Proto {
        try Self.checkETag(request.etag)
        let write = try Self.write(request, request.requestId, Methods.deleteOrganization)
        return try write.response(
            try await domain.setDeleted(
                id: try OrganizationMapping.requiredID(request.id, field: "id"), deleted: true, etag: request.etag,
                actor: try context.actor(), write: write.options))
    }

    public func undeleteOrganization(
        request: Switchboard_Organization_V1_UndeleteOrganizationRequest, context: ServerContext
    ) async throws -> Proto {
        let write = try Self.write(request, request.requestId, Methods.undeleteOrganization)
        return try write.response(
            try await domain.setDeleted(
                id: try OrganizationMapping.requiredID(request.id, field: "id"), deleted: false, etag: "", actor: try context.actor(),
                write: write.options))
    }

    public func listOrganizations(
        request: Switchboard_Organization_V1_ListOrganizationsRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_ListOrganizationsResponse {
        var query = OrganizationQuery()
        var violations: [Violation] = []
        query.parentID = OrganizationMapping.optionalID(request.parentId, field: "parent_id", violations: &violations)
        if request.topLevelOnly, query.parentID != nil {
            violations.append(Violation("top_level_only", "cannot be combined with parent_id", reason: "CONFLICT"))
        }
        query.topLevelOnly = request.topLevelOnly
        if !OrganizationRules.industryBound.allows(request.industry) {
            violations.append(Violation("industry", OrganizationRules.industryBound.description, reason: "TOO_LONG"))
        } else if !request.industry.isEmpty {
            query.industry = request.industry.trimmingSpaces.lowercased()
        }
        if let band = OrganizationMapping.size(request.size) {
            query.size = band
        } else if request.size != .unspecified {
            violations.append(Violation("size", "is not a size band"))
        }
        if !OrganizationRules.tagBound.allows(request.tag) {
            violations.append(Violation("tag", OrganizationRules.tagBound.description, reason: "TOO_LONG"))
        } else if !request.tag.isEmpty {
            query.tag = request.tag.trimmingSpaces.lowercased()
        }
        if !OrganizationRules.nameBound.allows(request.namePrefix) {
            violations.append(Violation("name_prefix", OrganizationRules.nameBound.description, reason: "TOO_LONG"))
        } else if !request.namePrefix.isEmpty {
            query.namePrefix = request.namePrefix.lowercased()
        }
        if !request.domain.isEmpty {
            let domainText = request.domain.utf8.count <= 253 ? request.domain.trimmingSpaces.lowercased() : request.domain
            if OrganizationRules.isValidDomain(domainText) {
                query.domain = domainText
            } else {
                violations.append(Violation("domain", "is not an internet domain such as example.com", reason: "INVALID_FORMAT"))
            }
        }
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        query.includeDeleted = request.includeDeleted
        var organizations: [Proto] = []
        let (page, next) = try await domain.list(
            query, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor()
        ) { record in
            // Each organization is encoded once: the size decides whether it joins the page, and it is kept if so.
            let proto = OrganizationMapping.proto(record)
            organizations.append(proto)
            return proto.serializedBytes().count + 6
        }
        var response = Switchboard_Organization_V1_ListOrganizationsResponse()
        response.organizations = Array(organizations.prefix(page.count))
        var pageResponse = Switchboard_Common_V1_PageResponse()
        pageResponse.nextPageToken = next
        response.page = pageResponse
        return response
    }

    // MARK: Field definitions

    public func defineField(
        request: Switchboard_Organization_V1_DefineFieldRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_FieldDefinition {
        guard let proto = request.definition else {
            throw OrganizationError.invalid([Violation("definition", "is required", reason: "REQUIRED")])
        }
        guard let type = OrganizationMapping.fieldType(proto.type) else {
            throw OrganizationError.invalid([Violation("definition.type", "must be STRING, NUMBER, BOOL, DATE or ENUM", reason: "REQUIRED")])
        }
        let definition = CustomFieldDefinition(
            key: proto.key, displayName: proto.displayName, type: type, allowedValues: proto.allowedValues, required: proto.required)
        let write = try IdempotentWrite(
            request: request, requestID: request.requestId, method: Methods.defineField,
            response: { (d: CustomFieldDefinition) in OrganizationMapping.proto(d) })
        return try write.response(try await domain.define(definition, actor: try context.actor(), write: write.options))
    }

    public func listFieldDefinitions(
        request: Switchboard_Organization_V1_ListFieldDefinitionsRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_ListFieldDefinitionsResponse {
        var response = Switchboard_Organization_V1_ListFieldDefinitionsResponse()
        response.definitions = try await domain.fieldDefinitions(actor: try context.actor(), includeRetired: request.includeRetired)
            .map(OrganizationMapping.proto)
        return response
    }

    public func retireField(
        request: Switchboard_Organization_V1_RetireFieldRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_FieldDefinition {
        guard !request.key.isEmpty else { throw OrganizationError.invalid([Violation("key", "is required", reason: "REQUIRED")]) }
        guard request.key.utf8.count <= Self.maxKeyBytes else {
            throw OrganizationError.invalid([Violation("key", "must be at most \(Self.maxKeyBytes) bytes", reason: "TOO_LONG")])
        }
        let write = try IdempotentWrite(
            request: request, requestID: request.requestId, method: Methods.retireField,
            response: { (d: CustomFieldDefinition) in OrganizationMapping.proto(d) })
        return try write.response(try await domain.retire(key: request.key, actor: try context.actor(), write: write.options))
    }

    // MARK: Hierarchy

    public func streamOrganizationTree(
        request: Switchboard_Organization_V1_StreamOrganizationTreeRequest,
        responses: RPCWriter<Switchboard_Organization_V1_OrganizationTreeNode>, context: ServerContext
    ) async throws {
        let root = try OrganizationMapping.requiredID(request.id, field: "id")
        try await domain.tree(root: root, maxDepth: Int(request.maxDepth), actor: try context.actor()) { nodes in
            try await responses.write(contentsOf: nodes.lazy.map(OrganizationMapping.proto))
        }
    }

    public func listAncestors(
        request: Switchboard_Organization_V1_ListAncestorsRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_ListAncestorsResponse {
        var response = Switchboard_Organization_V1_ListAncestorsResponse()
        response.ancestors = try await domain.ancestors(
            of: try OrganizationMapping.requiredID(request.id, field: "id"), actor: try context.actor()
        ).map(OrganizationMapping.proto)
        return response
    }

    // MARK: Units

    /// Unit data from a request's unit; `organization_id` is required on create only.
    private static func unitData(_ unit: Switchboard_Organization_V1_Unit, requireOrganization: Bool) throws -> UnitData {
        var violations: [Violation] = []
        // On update the organization never changes (the domain keeps the stored one), so it is not read.
        var organization: UUID?
        if requireOrganization {
            organization = OrganizationMapping.optionalID(unit.organizationId, field: "unit.organization_id", violations: &violations)
            if unit.organizationId.isEmpty { violations.append(Violation("unit.organization_id", "is required", reason: "REQUIRED")) }
        }
        let parent = OrganizationMapping.optionalID(unit.parentUnitId, field: "unit.parent_unit_id", violations: &violations)
        var kind = UnitKind.department
        if let k = OrganizationMapping.unitKind(unit.kind) {
            kind = k
        } else if unit.kind != .unspecified {
            violations.append(Violation("unit.kind", "is not a unit kind"))
        }
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        let placeholder = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        return UnitData(organizationID: organization ?? placeholder, parentUnitID: parent, name: unit.name, kind: kind)
    }

    public func createUnit(
        request: Switchboard_Organization_V1_CreateUnitRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_Unit {
        guard let unit = request.unit else { throw OrganizationError.invalid([Violation("unit", "is required", reason: "REQUIRED")]) }
        let data = try Self.unitData(unit, requireOrganization: true)
        let write = try Self.unitWrite(request, request.requestId, Methods.createUnit)
        return try write.response(try await domain.createUnit(data, actor: try context.actor(), write: write.options))
    }

    public func getUnit(request: Switchboard_Organization_V1_GetUnitRequest, context: ServerContext) async throws -> Switchboard_Organization_V1_Unit
    {
        OrganizationMapping.proto(
            try await domain.getUnit(
                id: try OrganizationMapping.requiredID(request.id, field: "id"), includeDeleted: request.includeDeleted,
                actor: try context.actor()))
    }

    public func updateUnit(
        request: Switchboard_Organization_V1_UpdateUnitRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_Unit {
        guard let unit = request.unit else { throw OrganizationError.invalid([Violation("unit", "is required", reason: "REQUIRED")]) }
        let id = try OrganizationMapping.requiredID(unit.id, field: "unit.id")
        let paths = request.updateMask?.paths ?? []
        if paths.contains("kind"), unit.kind == .unspecified {
            throw OrganizationError.invalid([Violation("unit.kind", "must be DEPARTMENT, TEAM or OTHER", reason: "REQUIRED")])
        }
        let source = try Self.unitData(unit, requireOrganization: false)
        try Self.checkETag(request.etag)
        let write = try Self.unitWrite(request, request.requestId, Methods.updateUnit)
        return try write.response(
            try await domain.updateUnit(
                id: id, from: source, paths: paths, etag: request.etag, actor: try context.actor(), write: write.options))
    }

    public func deleteUnit(
        request: Switchboard_Organization_V1_DeleteUnitRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_Unit {
        try Self.checkETag(request.etag)
        let write = try Self.unitWrite(request, request.requestId, Methods.deleteUnit)
        return try write.response(
            try await domain.setUnitDeleted(
                id: try OrganizationMapping.requiredID(request.id, field: "id"), deleted: true, etag: request.etag,
                actor: try context.actor(), write: write.options))
    }

    public func undeleteUnit(
        request: Switchboard_Organization_V1_UndeleteUnitRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_Unit {
        let write = try Self.unitWrite(request, request.requestId, Methods.undeleteUnit)
        return try write.response(
            try await domain.setUnitDeleted(
                id: try OrganizationMapping.requiredID(request.id, field: "id"), deleted: false, etag: "", actor: try context.actor(),
                write: write.options))
    }

    public func listUnits(
        request: Switchboard_Organization_V1_ListUnitsRequest, context: ServerContext
    ) async throws -> Switchboard_Organization_V1_ListUnitsResponse {
        var query = UnitQuery(organizationID: try OrganizationMapping.requiredID(request.organizationId, field: "organization_id"))
        var violations: [Violation] = []
        query.parentUnitID = OrganizationMapping.optionalID(request.parentUnitId, field: "parent_unit_id", violations: &violations)
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        query.includeDeleted = request.includeDeleted
        let (units, next) = try await domain.listUnits(
            query, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Organization_V1_ListUnitsResponse()
        response.units = units.map(OrganizationMapping.proto)
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = next
        response.page = page
        return response
    }

    // MARK: Changes

    public func watchChanges(
        request: Switchboard_Common_V1_WatchChangesRequest, responses: RPCWriter<Switchboard_Common_V1_ChangeEvent>,
        context: ServerContext
    ) async throws {
        try await changes.watch(request, responses: responses, context: context)
    }
}
