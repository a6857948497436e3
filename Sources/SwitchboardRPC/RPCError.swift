/// An error that ends an RPC with a non-OK status.
///
/// Handlers throw it (or a type conforming to ``RPCErrorConvertible``) to choose the status the caller sees.
/// Any other error becomes `UNKNOWN` with a generic message; its details are logged, never sent.
public struct RPCError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The status code; never `.ok`.
    public var code: StatusCode
    /// The message sent as `grpc-message`.
    public var message: String
    /// Trailing metadata sent with the status (e.g. `grpc-status-details-bin`).
    public var metadata: Metadata
    /// The underlying error, for logs only. Not sent to the peer and not part of equality.
    public var cause: (any Error)?

    /// Creates an error.
    /// - Parameters:
    ///   - code: the status code; `.ok` is turned into `.unknown` since an error cannot succeed.
    ///   - message: the message for the caller.
    ///   - metadata: trailing metadata to send with the status.
    ///   - cause: the underlying error, kept for logging.
    public init(code: StatusCode, message: String, metadata: Metadata = [:], cause: (any Error)? = nil) {
        self.code = code == .ok ? .unknown : code
        self.message = message
        self.metadata = metadata
        self.cause = cause
    }

    /// The status this error represents.
    public var status: Status { Status(code: code, message: message) }

    /// `CODE: message`.
    public var description: String { "\(code): \(message)" }

    public static func == (lhs: RPCError, rhs: RPCError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.metadata == rhs.metadata
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
    }
}

/// A domain error that knows which RPC error it should become.
public protocol RPCErrorConvertible: Error {
    /// The RPC error to send for this error.
    var rpcError: RPCError { get }
}

extension RPCError {
    /// Maps any error to the `RPCError` to send: `RPCError` itself, an ``RPCErrorConvertible``, a cancellation,
    /// or otherwise `UNKNOWN` with a generic message (the original kept as `cause` for logs).
    /// - Parameter error: the error a handler threw.
    /// - Returns: the error to send.
    public static func from(_ error: any Error) -> RPCError {
        switch error {
        case let rpc as RPCError:
            return rpc
        case let convertible as any RPCErrorConvertible:
            return convertible.rpcError
        case is CancellationError:
            return RPCError(code: .cancelled, message: "The call was cancelled.", cause: error)
        default:
            return RPCError(code: .unknown, message: "The server failed to process the request.", cause: error)
        }
    }
}

/// The cause of an `UNAVAILABLE` that the server provably never started to process (it refused the stream, or its
/// GOAWAY named a last stream below it): the client may send the call again on another connection, as gRPC's
/// transparent retry does, without risk of running it twice.
public struct CallNotProcessed: Error, Sendable {
    /// Creates the marker.
    public init() {}
}
