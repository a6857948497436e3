import SwitchboardRPC

/// A request field that failed validation.
public struct FieldViolation: Sendable, Hashable {
    /// The field path, e.g. `contact.emails[1].address`.
    public var field: String
    /// What is wrong with it, for the caller's developer.
    public var description: String
    /// A machine-readable reason, e.g. `REQUIRED` or `INVALID_FORMAT`.
    public var reason: String

    /// Creates a violation.
    /// - Parameters:
    ///   - field: the field path.
    ///   - description: what is wrong.
    ///   - reason: a machine-readable reason.
    public init(field: String, description: String, reason: String = "") {
        self.field = field
        self.description = description
        self.reason = reason
    }
}

extension RPCError {
    /// The trailer carrying a serialized `google.rpc.Status`.
    public static let statusDetailsKey = "grpc-status-details-bin"

    /// `INVALID_ARGUMENT` with a `google.rpc.BadRequest` listing every violation, so clients can show each
    /// field's problem; the message names the fields too, for clients that only read `grpc-message`.
    /// - Parameter violations: the violations (at least one).
    /// - Returns: the error.
    public static func invalidArgument(violations: [FieldViolation]) -> RPCError {
        let summary = violations.map { "\($0.field): \($0.description)" }.joined(separator: "; ")
        var badRequest = Google_Rpc_BadRequest()
        badRequest.fieldViolations = violations.map {
            var v = Google_Rpc_BadRequest.FieldViolation()
            v.field = $0.field
            v.description = $0.description
            v.reason = $0.reason
            return v
        }
        return RPCError(code: .invalidArgument, message: summary).withDetails([Google_Protobuf_Any(packing: badRequest)])
    }

    /// A copy of the error carrying `google.rpc.Status` details in `grpc-status-details-bin`.
    /// - Parameter details: the detail messages, packed as `Any`.
    /// - Returns: the error with the trailer set.
    public func withDetails(_ details: [Google_Protobuf_Any]) -> RPCError {
        var status = Google_Rpc_Status()
        status.code = Int32(code.rawValue)
        status.message = message
        status.details = details
        var copy = self
        copy.metadata.removeAll(Self.statusDetailsKey)
        copy.metadata.addBinary(status.serializedBytes(), forKey: Self.statusDetailsKey)
        return copy
    }

    /// The `google.rpc.Status` in the trailers, if the server sent one.
    public var statusDetails: Google_Rpc_Status? {
        metadata[binaryValues: Self.statusDetailsKey].first.flatMap { try? Google_Rpc_Status(serializedBytes: $0) }
    }

    /// The field violations of a `google.rpc.BadRequest` detail, if any.
    public var fieldViolations: [FieldViolation] {
        guard let details = statusDetails?.details else { return [] }
        return details.compactMap { try? $0.unpack(Google_Rpc_BadRequest.self) }.flatMap { request in
            request.fieldViolations.map { FieldViolation(field: $0.field, description: $0.description, reason: $0.reason) }
        }
    }
}

extension Google_Protobuf_Any {
    /// Packs a message with the `type.googleapis.com/` prefix every gRPC implementation expects.
    /// - Parameter message: the message.
    public init<M: ProtoMessage>(packing message: M) {
        self.init()
        self.typeUrl = "type.googleapis.com/" + M.protoMessageName
        self.value = message.serializedBytes()
    }

    /// Unpacks the message when the type matches.
    /// - Parameter type: the expected type.
    /// - Returns: the message, or nil for another type.
    /// - Throws: when the bytes do not decode.
    public func unpack<M: ProtoMessage>(_ type: M.Type) throws -> M? {
        guard typeUrl.hasSuffix("/" + M.protoMessageName) else { return nil }
        return try M(serializedBytes: value)
    }
}

extension ProtoDecodingError {
    /// A decoding error for a value a service cannot hold, carrying a `google.rpc.Status` whose `google.rpc.BadRequest`
    /// names the field (as a handler's own validation would), for the server to send.
    static func invalidValue(messageName: String, field: String, reason: String) -> ProtoDecodingError {
        let details = RPCError.invalidArgument(violations: [FieldViolation(field: field, description: reason, reason: "INVALID_VALUE")])
            .metadata[binaryValues: RPCError.statusDetailsKey].first
        return ProtoDecodingError(messageName: messageName, reason: reason, invalidField: field, statusDetails: details)
    }
}
