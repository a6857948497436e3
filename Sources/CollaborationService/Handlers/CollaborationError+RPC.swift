import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension CollaborationError: RPCErrorConvertible {
    /// The message type of each kind of resource a NOT_FOUND names.
    static let resourceTypes = [
        "note": "switchboard.collaboration.v1.Note", "comment": "switchboard.collaboration.v1.Comment", "team": "switchboard.collaboration.v1.Team",
        "grant": "switchboard.collaboration.v1.Grant", "file": "switchboard.collaboration.v1.File",
        "meeting": "switchboard.collaboration.v1.Meeting",
    ]

    /// The status each domain error is sent as.
    public var rpcError: RPCError {
        switch self {
        case .invalid(let violations):
            return InvalidRequest(violations).rpcError
        case .notFound(let kind, let id):
            var info = Google_Rpc_ResourceInfo()
            info.resourceType = Self.resourceTypes[kind] ?? kind
            info.resourceName = id
            info.description = "not found in the caller's tenant, or not visible to the caller"
            return RPCError(code: .notFound, message: "\(kind) \(id) not found").withDetails([Google_Protobuf_Any(packing: info)])
        case .etagMismatch(let current):
            return RPCError(code: .aborted, message: "the resource changed since it was read (current etag \(current)); read it again and retry")
        case .forbidden(let message):
            return RPCError(code: .permissionDenied, message: message)
        case .alreadyExists(let message):
            return RPCError(code: .alreadyExists, message: message)
        case .failedPrecondition(let message):
            return RPCError(code: .failedPrecondition, message: message)
        case .meetingConflicts(let ids):
            var failure = Google_Rpc_PreconditionFailure()
            failure.violations = ids.map { id in
                var violation = Google_Rpc_PreconditionFailure.Violation()
                violation.type = "MEETING_CONFLICT"
                violation.subject = "switchboard.collaboration.v1.Meeting/\(id)"
                violation.description = "an attendee user has this meeting at the same time"
                return violation
            }
            return RPCError(
                code: .failedPrecondition,
                message: "attendees have other meetings then: \(ids.joined(separator: ", ")); set allow_conflicts to book anyway"
            ).withDetails([Google_Protobuf_Any(packing: failure)])
        }
    }
}
