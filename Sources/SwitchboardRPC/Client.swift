import NIOCore

/// Per-call options for a client call.
public struct CallOptions: Sendable {
    /// Metadata to send with the request.
    public var metadata: Metadata
    /// How long the call may take; sent as `grpc-timeout` and enforced locally.
    public var timeout: Duration?
    /// Whether to compress request messages (gzip), when the transport is configured for it.
    public var compressRequests: Bool

    /// Creates options.
    /// - Parameters:
    ///   - metadata: request metadata.
    ///   - timeout: the call's time limit.
    ///   - compressRequests: whether to gzip request messages.
    public init(metadata: Metadata = [:], timeout: Duration? = nil, compressRequests: Bool = false) {
        self.metadata = metadata
        self.timeout = timeout
        self.compressRequests = compressRequests
    }

    /// No metadata, no timeout.
    public static var defaults: CallOptions { CallOptions() }
}

/// One client call in progress at the byte level: implemented by the transport.
public protocol ClientCallStream: Sendable {
    /// Sends one request message.
    /// - Parameter message: the encoded message.
    /// - Throws: when the call has ended.
    func send(_ message: ByteBuffer) async throws
    /// Half-closes: no more request messages.
    func finishSending() async throws
    /// The response messages; ends normally on OK, or throws the ``RPCError`` of the status.
    var responses: InboundMessages { get }
    /// The response headers' metadata, once received.
    func initialMetadata() async throws -> Metadata
    /// The status and trailing metadata, once the call ends.
    func trailers() async throws -> (Status, Metadata)
    /// Cancels the call (RST_STREAM CANCEL) if it is still running.
    func cancel()
}

/// A connection (or pool of connections) that can start calls: implemented by the transport.
public protocol ClientTransport: Sendable {
    /// Starts a call.
    /// - Parameters:
    ///   - method: the method.
    ///   - options: metadata, timeout and compression.
    /// - Returns: the call.
    /// - Throws: `UNAVAILABLE` when no connection can be made.
    func startCall(_ method: MethodDescriptor, options: CallOptions) async throws -> any ClientCallStream
    /// Starts a unary call and sends its only request message, half-closing after it.
    /// - Parameters:
    ///   - method: the method.
    ///   - message: the encoded request.
    ///   - options: metadata, timeout and compression.
    /// - Returns: the call, its request sent.
    /// - Throws: `UNAVAILABLE` when no connection can be made; the call's status when it ended before sending.
    func startUnaryCall(_ method: MethodDescriptor, message: ByteBuffer, options: CallOptions) async throws -> any ClientCallStream
}

extension ClientTransport {
    /// ``startCall(_:options:)``, then the message and the half-close, one after another (a transport that can do it in
    /// one step implements this itself).
    public func startUnaryCall(_ method: MethodDescriptor, message: ByteBuffer, options: CallOptions) async throws -> any ClientCallStream {
        let call = try await startCall(method, options: options)
        try await call.send(message)
        try await call.finishSending()
        return call
    }
}

/// A unary response with its metadata.
public struct ClientResponse<Message: ProtoMessage>: Sendable {
    /// The response message.
    public var message: Message
    /// The response headers' metadata.
    public var initialMetadata: Metadata
    /// The trailers' metadata.
    public var trailingMetadata: Metadata
}

/// The typed side of a streaming call, handed to the body of ``RPCClient/streaming(_:options:body:)``.
public struct ClientStreamingCall<Request: ProtoMessage, Response: ProtoMessage>: Sendable {
    /// The byte-level call.
    public let raw: any ClientCallStream

    /// Sends one request.
    /// - Parameter request: the message.
    /// - Throws: when the call has ended.
    public func send(_ request: Request) async throws {
        var buffer = ByteBuffer()
        request.encode(into: &buffer)
        try await raw.send(buffer)
    }

    /// Half-closes the request stream.
    /// - Throws: when the call has already ended.
    public func finishSending() async throws { try await raw.finishSending() }

    /// The responses; the sequence throws the call's error status at its end.
    public var responses: RPCAsyncSequence<Response> { RPCAsyncSequence(raw: raw.responses) }

    /// The response headers' metadata.
    /// - Throws: the call's error if it failed before headers arrived.
    public func initialMetadata() async throws -> Metadata { try await raw.initialMetadata() }

    /// The trailing metadata, once the call has ended.
    /// - Throws: the call's error if it failed without trailers.
    public func trailingMetadata() async throws -> Metadata { try await raw.trailers().1 }
}

/// The client that generated typed clients call through: applies interceptors, encodes and decodes.
public struct RPCClient: Sendable {
    /// The transport calls go over.
    public let transport: any ClientTransport
    /// Interceptors, outermost first.
    public let interceptors: [any ClientInterceptor]

    /// Creates a client.
    /// - Parameters:
    ///   - transport: the transport.
    ///   - interceptors: interceptors, outermost first.
    public init(transport: any ClientTransport, interceptors: [any ClientInterceptor] = []) {
        self.transport = transport
        self.interceptors = interceptors
    }

    /// Makes a unary call and returns the response with its metadata.
    /// - Parameters:
    ///   - method: the method.
    ///   - request: the request.
    ///   - options: call options.
    /// - Returns: the response and metadata.
    /// - Throws: ``RPCError`` with the call's status.
    public func unaryWithMetadata<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ request: Request,
        options: CallOptions = .defaults
    ) async throws -> ClientResponse<Response> {
        try await interceptors.run(method: method, options: options) { options in
            var buffer = ByteBuffer()
            request.encode(into: &buffer)
            // A call the server provably never started (it went away or refused the stream first, e.g. a connection
            // closed for idleness just as the call was sent) is sent again on another connection, as gRPC's
            // transparent retry does: at most twice more, so a server refusing everything still fails the call.
            var attempt = 1
            while true {
                do {
                    let call = try await transport.startUnaryCall(method, message: buffer, options: options)
                    return try await Self.singleResponse(call)
                } catch let error as RPCError where error.cause is CallNotProcessed && attempt < Self.transparentAttempts {
                    attempt += 1
                }
            }
        }
    }

    /// Attempts of a unary call the server never processed (see ``CallNotProcessed``).
    static var transparentAttempts: Int { 3 }

    /// Makes a unary call.
    /// - Parameters:
    ///   - method: the method.
    ///   - request: the request.
    ///   - options: call options.
    /// - Returns: the response.
    /// - Throws: ``RPCError`` with the call's status.
    public func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ request: Request,
        options: CallOptions = .defaults
    ) async throws -> Response {
        let response: ClientResponse<Response> = try await unaryWithMetadata(method, request, options: options)
        return response.message
    }

    /// Makes a client-streaming call: `requests` sends, then the single response is returned.
    /// - Parameters:
    ///   - method: the method.
    ///   - options: call options.
    ///   - requests: sends the requests; the stream is half-closed when it returns.
    /// - Returns: the response with metadata.
    /// - Throws: ``RPCError`` with the call's status.
    public func clientStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        options: CallOptions = .defaults,
        requests: @escaping @Sendable (ClientStreamingCall<Request, Response>) async throws -> Void
    ) async throws -> ClientResponse<Response> {
        try await interceptors.run(method: method, options: options) { options in
            let raw = try await transport.startCall(method, options: options)
            let call = ClientStreamingCall<Request, Response>(raw: raw)
            do {
                try await requests(call)
                try await raw.finishSending()
            } catch {
                raw.cancel()
                throw error
            }
            return try await Self.singleResponse(raw)
        }
    }

    /// Makes a server- or bidirectional-streaming call; the call is cancelled if `body` returns before it ends.
    /// - Parameters:
    ///   - method: the method.
    ///   - options: call options.
    ///   - body: sends requests and reads responses through the call.
    /// - Returns: what `body` returned.
    /// - Throws: what `body` threw, or the call's error.
    public func streaming<Request: ProtoMessage, Response: ProtoMessage, Result: Sendable>(
        _ method: MethodDescriptor,
        options: CallOptions = .defaults,
        body: @escaping @Sendable (ClientStreamingCall<Request, Response>) async throws -> Result
    ) async throws -> Result {
        try await interceptors.run(method: method, options: options) { options in
            let raw = try await transport.startCall(method, options: options)
            defer { raw.cancel() }
            return try await body(ClientStreamingCall(raw: raw))
        }
    }

    /// Makes a server-streaming call, handing the responses to `body`.
    /// - Parameters:
    ///   - method: the method.
    ///   - request: the single request.
    ///   - options: call options.
    ///   - body: reads the responses.
    /// - Returns: what `body` returned.
    /// - Throws: what `body` threw, or the call's error.
    public func serverStreaming<Request: ProtoMessage, Response: ProtoMessage, Result: Sendable>(
        _ method: MethodDescriptor,
        _ request: Request,
        options: CallOptions = .defaults,
        body: @escaping @Sendable (RPCAsyncSequence<Response>) async throws -> Result
    ) async throws -> Result {
        try await streaming(method, options: options) { (call: ClientStreamingCall<Request, Response>) in
            try await call.send(request)
            try await call.finishSending()
            return try await body(call.responses)
        }
    }

    private static func singleResponse<Response: ProtoMessage>(
        _ call: any ClientCallStream
    ) async throws -> ClientResponse<Response> {
        var iterator = call.responses.makeAsyncIterator()
        guard let first = try await iterator.next() else {
            let (status, trailing) = try await call.trailers()
            throw RPCError(
                code: status.code == .ok ? .internal : status.code,
                message: status.code == .ok ? "the server sent no response message" : status.message,
                metadata: trailing
            )
        }
        guard try await iterator.next() == nil else {
            call.cancel()
            throw RPCError(code: .internal, message: "the server sent more than one response message")
        }
        let message = try decodeMessage(Response.self, from: first, isResponse: true)
        let initial = try await call.initialMetadata()
        let (_, trailing) = try await call.trailers()
        return ClientResponse(message: message, initialMetadata: initial, trailingMetadata: trailing)
    }
}
