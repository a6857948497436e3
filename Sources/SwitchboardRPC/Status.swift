/// A gRPC status code.
///
/// A struct over a private enum so that codes the library does not know yet (a peer may send any integer)
/// survive a round trip, and so new codes can be added without breaking exhaustive switches.
public struct StatusCode: Hashable, Sendable, CustomStringConvertible {
    /// The numeric value sent in `grpc-status`.
    public let rawValue: Int

    /// Creates a code from its numeric value; any integer is kept as-is.
    /// - Parameter rawValue: the value of `grpc-status`.
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Not an error; returned on success.
    public static let ok = StatusCode(rawValue: 0)
    /// The operation was cancelled, typically by the caller.
    public static let cancelled = StatusCode(rawValue: 1)
    /// Unknown error.
    public static let unknown = StatusCode(rawValue: 2)
    /// The client specified an invalid argument.
    public static let invalidArgument = StatusCode(rawValue: 3)
    /// The deadline expired before the operation could complete.
    public static let deadlineExceeded = StatusCode(rawValue: 4)
    /// Some requested entity was not found.
    public static let notFound = StatusCode(rawValue: 5)
    /// The entity that a client attempted to create already exists.
    public static let alreadyExists = StatusCode(rawValue: 6)
    /// The caller does not have permission to execute the operation.
    public static let permissionDenied = StatusCode(rawValue: 7)
    /// Some resource has been exhausted (quota, message size, ...).
    public static let resourceExhausted = StatusCode(rawValue: 8)
    /// The system is not in a state required for the operation's execution.
    public static let failedPrecondition = StatusCode(rawValue: 9)
    /// The operation was aborted, typically due to a concurrency conflict.
    public static let aborted = StatusCode(rawValue: 10)
    /// The operation was attempted past the valid range.
    public static let outOfRange = StatusCode(rawValue: 11)
    /// The operation is not implemented or not supported.
    public static let unimplemented = StatusCode(rawValue: 12)
    /// An internal invariant was broken.
    public static let `internal` = StatusCode(rawValue: 13)
    /// The service is currently unavailable; retrying may help.
    public static let unavailable = StatusCode(rawValue: 14)
    /// Unrecoverable data loss or corruption.
    public static let dataLoss = StatusCode(rawValue: 15)
    /// The request does not have valid authentication credentials.
    public static let unauthenticated = StatusCode(rawValue: 16)

    private static let names = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]

    /// The canonical upper-case name, e.g. `NOT_FOUND`, or the number for codes outside the standard set.
    public var description: String {
        Self.names.indices.contains(rawValue) ? Self.names[rawValue] : "CODE_\(rawValue)"
    }
}

/// The outcome of an RPC: a code and a human-readable message.
public struct Status: Hashable, Sendable, CustomStringConvertible {
    /// The status code.
    public var code: StatusCode
    /// A developer-facing message; empty for success.
    public var message: String

    /// Creates a status.
    /// - Parameters:
    ///   - code: the status code.
    ///   - message: the developer-facing message.
    public init(code: StatusCode, message: String = "") {
        self.code = code
        self.message = message
    }

    /// The successful status.
    public static let ok = Status(code: .ok)

    /// `CODE: message`.
    public var description: String { message.isEmpty ? code.description : "\(code): \(message)" }
}
