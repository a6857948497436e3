import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension CommunicationError: RPCErrorConvertible {
    /// The message type of each kind of resource a NOT_FOUND names.
    static let resourceTypes = [
        "interaction": "switchboard.communication.v1.Interaction", "template": "switchboard.communication.v1.Template",
        "send": "switchboard.communication.v1.Send", "campaign": "switchboard.communication.v1.Campaign",
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
            info.description = "not found in the caller's tenant"
            return RPCError(code: .notFound, message: "\(kind) \(id) not found").withDetails([Google_Protobuf_Any(packing: info)])
        case .etagMismatch(let current):
            return RPCError(code: .aborted, message: "the resource changed since it was read (current etag \(current)); read it again and retry")
        case .forbidden(let message):
            return RPCError(code: .permissionDenied, message: message)
        case .consentRefused(let reason):
            let why = reason == .withdrawn ? "was withdrawn" : "was never given"
            return RPCError(code: .failedPrecondition, message: "consent for this contact, channel and purpose \(why); nothing was scheduled")
        case .campaignState(let status):
            return RPCError(code: .failedPrecondition, message: "the campaign is \(status); the change does not apply")
        case .suppressed:
            return RPCError(
                code: .failedPrecondition, message: "send.to_address is on the suppression list (an erased person's); nothing was scheduled")
        case .doNotContact:
            var failure = Google_Rpc_PreconditionFailure()
            var violation = Google_Rpc_PreconditionFailure.Violation()
            violation.type = "DO_NOT_CONTACT"
            violation.subject = "send.contact_id"
            violation.description = "the contact asked not to be contacted (preferences.do_not_contact)"
            failure.violations = [violation]
            return RPCError(
                code: .failedPrecondition,
                message: "send.contact_id asked not to be contacted (their preferences' do_not_contact); nothing was scheduled"
            ).withDetails([Google_Protobuf_Any(packing: failure)])
        case .addressNotListed(let kind):
            var failure = Google_Rpc_PreconditionFailure()
            var violation = Google_Rpc_PreconditionFailure.Violation()
            violation.type = "ADDRESS_NOT_LISTED"
            violation.subject = "send.to_address"
            violation.description = "not one of the contact's \(kind == "email" ? "e-mail addresses" : "phone numbers")"
            failure.violations = [violation]
            return RPCError(
                code: .failedPrecondition,
                message:
                    "send.to_address is not one of send.contact_id's \(kind == "email" ? "e-mail addresses" : "phone numbers") "
                    + "(as the contacts service last reported them; a deleted or unknown contact has none); nothing was scheduled"
            ).withDetails([Google_Protobuf_Any(packing: failure)])
        case .notCancellable(let status):
            return RPCError(code: .failedPrecondition, message: "the send is \(status) and can no longer be cancelled")
        case .searchTooExpensive:
            return RPCError(code: .resourceExhausted, message: "the search took too long; use more specific words")
        case .audienceRefused(let field, let type, let description):
            var failure = Google_Rpc_PreconditionFailure()
            var violation = Google_Rpc_PreconditionFailure.Violation()
            violation.type = type
            violation.subject = field
            violation.description = description
            failure.violations = [violation]
            return RPCError(code: .failedPrecondition, message: "\(field): \(description); nothing was created").withDetails([
                Google_Protobuf_Any(packing: failure)
            ])
        case .upstreamUnavailable(let message):
            return RPCError(code: .unavailable, message: "\(message); nothing was created")
        }
    }
}
