import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension OrganizationError: RPCErrorConvertible {
    /// The message type of each kind of resource a NOT_FOUND names.
    static let resourceTypes = [
        "organization": "switchboard.organization.v1.Organization", "unit": "switchboard.organization.v1.Unit",
        "membership": "switchboard.organization.v1.Membership", "group": "switchboard.organization.v1.Group",
        "contact": "switchboard.contacts.v1.Contact", "parent organization": "switchboard.organization.v1.Organization",
        "parent unit": "switchboard.organization.v1.Unit", "parent group": "switchboard.organization.v1.Group",
    ]

    /// The status each domain error is sent as.
    public var rpcError: RPCError {
        switch self {
        case .invalid(let violations):
            return InvalidRequest(violations).rpcError
        case .notFound(let kind, let id):
            // google.rpc.ResourceInfo says which resource was missing, so a client (and the gateway's JSON) need not
            // parse the message.
            var info = Google_Rpc_ResourceInfo()
            info.resourceType = Self.resourceTypes[kind] ?? kind
            info.resourceName = id
            info.description = "not found in the caller's tenant"
            return RPCError(code: .notFound, message: "\(kind) \(id) not found").withDetails([Google_Protobuf_Any(packing: info)])
        case .domainTaken(let domain, let existing):
            var info = Google_Rpc_ResourceInfo()
            info.resourceType = "switchboard.organization.v1.Organization"
            info.resourceName = existing.uuidString.lowercased()
            info.description = "already uses \(domain)"
            return RPCError(
                code: .alreadyExists,
                message: "organization.domains: \(domain) already belongs to organization \(existing.uuidString.lowercased())"
            ).withDetails([Google_Protobuf_Any(packing: info)])
        case .etagMismatch(let current):
            return RPCError(code: .aborted, message: "the resource changed since it was read (current etag \(current)); read it again and retry")
        case .fieldExists(let key):
            return RPCError(code: .alreadyExists, message: "custom field \(key) is already defined")
        case .fieldNotFound(let key):
            return RPCError(code: .notFound, message: "custom field \(key) is not defined")
        case .tooManyFields(let limit):
            return RPCError(code: .failedPrecondition, message: "the tenant already has \(limit) custom field definitions, the most it may have")
        case .cycle(let kind, let id, let parent):
            return RPCError(
                code: .failedPrecondition, message: "\(kind) \(id) cannot move under \(parent): that is the \(kind) itself or one below it")
        case .tooDeep(let limit):
            return RPCError(code: .failedPrecondition, message: "the hierarchy would be more than \(limit) levels deep")
        case .hasChildren(let kind, let id):
            return RPCError(code: .failedPrecondition, message: "\(kind) \(id) still has live children: move or delete them first")
        case .parentDeleted(let kind, let id):
            return RPCError(code: .failedPrecondition, message: "the parent \(kind) \(id) is deleted: undelete it first")
        case .roleExists(let key):
            return RPCError(code: .alreadyExists, message: "role.key: membership role \(key) is already defined")
        case .tooManyRoles(let limit):
            return RPCError(code: .failedPrecondition, message: "the tenant already has \(limit) membership roles, the most it may have")
        case .roleLimitReached(let role, let limit, let organization):
            return RPCError(
                code: .failedPrecondition,
                message:
                    "membership.roles: organization \(organization) already has \(limit) current membership(s) with role \(role), the most the role allows"
            )
        }
    }
}
