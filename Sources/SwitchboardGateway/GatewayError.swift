import SwitchboardProtos
import SwitchboardRPC

/// An error the gateway answers itself (bad query, no route, no token, rate limit), carried as an ``RPCError`` so
/// that it is written exactly as an upstream's error is: `google.rpc.Status` JSON with the mapped HTTP status.
struct GatewayError: Error {
    let rpcError: RPCError
    var headers: [(String, String)] = []
    /// An HTTP status no gRPC code maps to (405 for a path served under other verbs).
    var httpStatus: Int?

    init(_ code: StatusCode, _ message: String, field: String? = nil, reason: String = "") {
        if code == .invalidArgument, let field {
            var error = RPCError.invalidArgument(violations: [FieldViolation(field: field, description: message, reason: reason)])
            error.message = message
            rpcError = error
        } else {
            rpcError = RPCError(code: code, message: message)
        }
    }
}

/// gRPC status → HTTP status and the `google.rpc.Status` JSON body.
enum HTTPErrorMapping {
    /// The HTTP status for a gRPC code, as grpc-gateway maps it (ABORTED after a failed `If-Match` is 412).
    /// - Parameters:
    ///   - code: the gRPC status code.
    ///   - conditional: whether the request carried `If-Match`.
    /// - Returns: the HTTP status code.
    static func httpStatus(_ code: StatusCode, conditional: Bool = false) -> Int {
        switch code {
        case .ok: 200
        case .cancelled: 499
        case .invalidArgument, .failedPrecondition, .outOfRange: 400
        case .deadlineExceeded: 504
        case .notFound: 404
        case .alreadyExists: 409
        case .aborted: conditional ? 412 : 409
        case .permissionDenied: 403
        case .unauthenticated: 401
        case .resourceExhausted: 429
        case .unimplemented: 501
        case .unavailable: 503
        default: 500
        }
    }

    /// The `google.rpc.Status` of an error as JSON: `code`, `message` and `details` (each an `Any` with `@type`).
    /// - Parameter error: the error.
    /// - Returns: the JSON object.
    static func statusJSON(_ error: RPCError) -> JSON {
        var status = error.statusDetails ?? Google_Rpc_Status()
        status.code = Int32(error.code.rawValue)
        status.message = error.message
        if let json = try? status.protoJSON() { return json }
        return .object(["code": .number(Double(error.code.rawValue)), "message": .string(error.message)])
    }
}
