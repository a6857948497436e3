import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension AnalyticsError: RPCErrorConvertible {
    /// The status each domain error is sent as.
    public var rpcError: RPCError {
        switch self {
        case .notFound(let kind, let id):
            var info = Google_Rpc_ResourceInfo()
            info.resourceType = "switchboard.analytics.v1.\(kind)"
            info.resourceName = id
            info.description = "not found in the caller's tenant"
            return RPCError(code: .notFound, message: "\(kind) \(id) not found").withDetails([Google_Protobuf_Any(packing: info)])
        case .failedPrecondition(let message):
            return RPCError(code: .failedPrecondition, message: message)
        case .permissionDenied(let message):
            return RPCError(code: .permissionDenied, message: message)
        }
    }
}
