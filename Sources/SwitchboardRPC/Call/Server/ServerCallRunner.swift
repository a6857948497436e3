import Logging
import NIOCore

/// The server side of gRPC call semantics, above any transport: routing, deadlines, interceptors, the handler, and
/// the mapping of its outcome to the status the caller sees.
///
/// A transport parses a request into a ``ServerRequestHead``, asks ``makeCall(for:)`` for the call (or the error
/// to answer with), feeds request messages to ``ServerCall/run(requests:responses:)``, and sends back what it
/// produces: response messages through the sink, then the ``ServerResponseStatus`` from ``finalStatus(_:of:)``.
/// When ``ServerCall/timeout`` passes first, the transport cancels the handler and ends the call with
/// ``deadlineExceeded``: the timer lives with the transport only so that it fires on the connection's own event
/// loop, without a task or a thread hop per call.
public struct ServerCallRunner: Sendable {
    /// The error a call whose deadline passed ends with.
    public static let deadlineExceeded = RPCError(code: .deadlineExceeded, message: "deadline exceeded")

    private let router: RPCRouter
    private let interceptors: [any ServerInterceptor]
    private let compressResponses: Bool
    private let logger: Logger

    /// Creates a runner.
    /// - Parameters:
    ///   - router: the methods served.
    ///   - interceptors: run around every call, outermost first.
    ///   - compressResponses: whether responses are compressed unless a handler says otherwise.
    ///   - logger: the logger calls log to; failures whose cause is not sent are logged here.
    public init(router: RPCRouter, interceptors: [any ServerInterceptor], compressResponses: Bool, logger: Logger) {
        self.router = router
        self.interceptors = interceptors
        self.compressResponses = compressResponses
        self.logger = logger
    }

    /// Resolves a request head to a call.
    /// - Parameter head: the parsed request head.
    /// - Returns: the call, ready to run, or `UNIMPLEMENTED` for a path no service serves.
    public func makeCall(for head: ServerRequestHead) -> Result<ServerCall, RPCError> {
        guard let handler = router[head.path] else {
            return .failure(RPCError(code: .unimplemented, message: "unknown method \(head.path)"))
        }
        let deadline = head.timeout.map { ContinuousClock.now + $0 }
        let context = ServerContext(
            method: handler.method, requestMetadata: head.metadata, deadline: deadline, peer: head.peer,
            compressResponses: compressResponses, logger: logger)
        return .success(ServerCall(handler: handler, context: context, timeout: head.timeout, interceptors: interceptors))
    }

    /// The status (and trailing metadata) that ends a call.
    ///
    /// Only failures the handler did not turn into a status on purpose (`UNKNOWN` or `INTERNAL` with a cause) are
    /// logged: their cause is never sent.
    /// - Parameters:
    ///   - outcome: nil for success, or the error the call ends with.
    ///   - call: the call, when one was made (its trailing metadata is sent, and its method logged).
    /// - Returns: the status and the trailing metadata to send.
    public func finalStatus(_ outcome: RPCError?, of call: ServerCall?) -> ServerResponseStatus {
        guard let error = outcome else {
            return ServerResponseStatus(
                status: Status(code: .ok, message: ""),
                trailingMetadata: call?.context.trailingMetadata ?? Metadata())
        }
        if let cause = error.cause, error.code == .unknown || error.code == .internal {
            logger.error("call failed", metadata: ["rpc.method": "\(call?.method.description ?? "?")", "error": "\(cause)"])
        }
        var metadata = call?.context.trailingMetadata ?? Metadata()
        metadata.add(contentsOf: error.metadata)
        return ServerResponseStatus(status: error.status, trailingMetadata: metadata)
    }
}

/// One routed call: its handler, its context, and the interceptors around it.
public struct ServerCall: Sendable {
    /// The handler the path resolved to.
    public let handler: RPCRouter.Handler
    /// The call's context, shared with interceptors and the handler.
    public let context: ServerContext
    /// How long the caller waits, from the `grpc-timeout` it sent; the transport enforces it (see
    /// ``ServerCallRunner``).
    public let timeout: Duration?
    @usableFromInline let interceptors: [any ServerInterceptor]

    init(handler: RPCRouter.Handler, context: ServerContext, timeout: Duration?, interceptors: [any ServerInterceptor]) {
        self.handler = handler
        self.context = context
        self.timeout = timeout
        self.interceptors = interceptors
    }

    /// The method called.
    public var method: MethodDescriptor { handler.method }

    /// Whether the call takes exactly one request message (unary and server-streaming): the transport collects it
    /// before running the handler, and refuses a second.
    public var isSingleRequest: Bool { handler.method.kind.isSingleRequest }

    /// Runs the interceptors and the handler.
    /// - Parameters:
    ///   - requests: the request messages (for a single-request call, the finished stream holding its message).
    ///   - responses: where streamed response messages go.
    /// - Returns: the single response message of unary and client-streaming calls (nil for streaming responses),
    ///   or the error the call ends with, already mapped by ``RPCError/from(_:)``.
    @inlinable
    public func run(requests: InboundMessages, responses: any ServerResponseSink) async -> ServerCallOutcome {
        // Inlinable so the transport's handler task runs the chain as directly as when it lived there.
        let handler = self.handler
        do {
            let response = try await interceptors.run(context: context) { context in
                try await handler.run(requests, responses, context)
            }
            return .success(response)
        } catch {
            return .failure(RPCError.from(error))
        }
    }
}

/// How a call's handler ended.
public enum ServerCallOutcome: Sendable {
    /// The handler returned; the message is the single response of unary and client-streaming calls.
    case success(ByteBuffer?)
    /// The call ends with this error.
    case failure(RPCError)
}

/// The end of a response as a value: the status and the trailing metadata sent with it.
public struct ServerResponseStatus: Sendable, Hashable {
    /// The status.
    public var status: Status
    /// The trailing metadata (the handler's, then the error's).
    public var trailingMetadata: Metadata

    /// Creates a final status.
    /// - Parameters:
    ///   - status: the status.
    ///   - trailingMetadata: the trailing metadata.
    public init(status: Status, trailingMetadata: Metadata) {
        self.status = status
        self.trailingMetadata = trailingMetadata
    }

    /// Whether a trailing metadata entry goes on the wire: application metadata, rich error details, and (for an
    /// error) the `grpc-accept-encoding` an unsupported-encoding error carries; never other reserved headers.
    /// - Parameter name: a lower-case header name.
    /// - Returns: whether to send it.
    public func sends(_ name: String) -> Bool {
        !Metadata.isReserved(name) || name == GRPCHeaderName.statusDetails
            || (status.code != .ok && name == GRPCHeaderName.acceptEncoding)
    }
}
