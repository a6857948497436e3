import NIOCore

/// A protobuf message that can be carried in an RPC.
///
/// Generated message types conform; handlers and clients only ever see these Swift values.
public protocol ProtoMessage: Sendable, Equatable {
    /// The fully-qualified protobuf name, e.g. `grpc.testing.SimpleRequest`.
    static var protoMessageName: String { get }

    /// Creates the message with every field at its default value.
    init()

    /// Decodes the protobuf wire format.
    /// - Parameter bytes: the readable bytes of a buffer, exactly one message.
    /// - Throws: ``ProtoDecodingError`` when the bytes are not a valid encoding of this message.
    init(decoding bytes: ByteBuffer) throws

    /// Appends the protobuf wire format of this message to a buffer.
    /// - Parameter buffer: the buffer to write to.
    func encode(into buffer: inout ByteBuffer)
}

/// Thrown when bytes do not decode as the expected message.
public struct ProtoDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The message type that failed to decode.
    public let messageName: String
    /// Why, when the bytes were refused for a limit rather than for being malformed.
    public let reason: String?
    /// The field (a dotted path of field names) whose well-formed value a service cannot hold, e.g. a string with a
    /// NUL byte: the request is then INVALID_ARGUMENT naming it, not malformed.
    public let invalidField: String?
    /// A serialized `google.rpc.Status` naming ``invalidField`` in a `google.rpc.BadRequest`, for the server to send
    /// in `grpc-status-details-bin` (this module has no message types to build one).
    public let statusDetails: [UInt8]?
    /// Creates the error.
    /// - Parameters:
    ///   - messageName: the message type that failed to decode.
    ///   - reason: the limit that was passed, if that is why.
    ///   - invalidField: the field whose value cannot be held, if that is why.
    ///   - statusDetails: a serialized `google.rpc.Status` with the field's violation, if any.
    public init(messageName: String, reason: String? = nil, invalidField: String? = nil, statusDetails: [UInt8]? = nil) {
        self.messageName = messageName
        self.reason = reason
        self.invalidField = invalidField
        self.statusDetails = statusDetails
    }
    /// A description naming the type (and the limit, if one was passed).
    public var description: String {
        reason.map { "\(messageName) refused: \($0)" } ?? "bytes are not a valid \(messageName)"
    }
}

extension ProtoMessage {
    /// Decodes the protobuf wire format from bytes.
    /// - Parameter bytes: exactly one encoded message.
    /// - Throws: ``ProtoDecodingError`` when the bytes are invalid.
    public init(serializedBytes bytes: [UInt8]) throws {
        try self.init(decoding: ByteBuffer(bytes: bytes))
    }

    /// The protobuf wire format of this message.
    public func serializedBytes() -> [UInt8] {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return Array(buffer.readableBytesView)
    }
}

/// A protobuf enum: keeps values it does not know, as proto3 requires.
public protocol ProtoEnum: Sendable, Hashable {
    /// Creates the enum from its wire value; unknown values become `.unrecognized`.
    /// - Parameter protoValue: the wire value.
    init(protoValue: Int32)
    /// The wire value.
    var protoValue: Int32 { get }
}
