import NIOCore

/// A service implementation the server can route calls to.
///
/// Generated service protocols refine this and implement `registerMethods` for you.
public protocol RPCService: Sendable {
    /// Adds a handler for each of the service's methods.
    /// - Parameter router: the router to register with.
    func registerMethods(with router: inout RPCRouter)
}

/// Maps `:path` to handlers.
public struct RPCRouter: Sendable {
    /// One method's handler, in the untyped form the transport calls.
    public struct Handler: Sendable {
        /// The method.
        public let method: MethodDescriptor
        /// Runs the call: reads requests, writes streamed responses to the sink, and returns the single response
        /// of unary and client-streaming calls (sent with the trailers in one go) or nil.
        public let run: @Sendable (InboundMessages, any ServerResponseSink, ServerContext) async throws -> ByteBuffer?
    }

    private var handlers: [String: Handler] = [:]

    /// Creates an empty router.
    public init() {}

    /// The registered methods.
    public var methods: [MethodDescriptor] { handlers.values.map(\.method) }

    /// The fully-qualified names of the registered services.
    public var serviceNames: Set<String> { Set(handlers.values.map(\.method.service)) }

    /// The handler for a path.
    /// - Parameter path: the HTTP/2 `:path`.
    public subscript(path: String) -> Handler? { handlers[path] }

    /// Registers every method of a service.
    /// - Parameter service: the implementation.
    public mutating func register(_ service: some RPCService) { service.registerMethods(with: &self) }

    /// Registers a raw handler; a later registration for the same path replaces it.
    /// - Parameter handler: the handler.
    public mutating func register(_ handler: Handler) { handlers[handler.method.path] = handler }

    /// Registers a unary method.
    /// - Parameters:
    ///   - method: the method.
    ///   - handler: the implementation.
    public mutating func registerUnary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) {
        register(
            Handler(method: method) { requests, _, context in
                let request = try await Self.single(Request.self, from: requests)
                var buffer = ByteBuffer.withFramingHeadroom()
                try await handler(request, context).encode(into: &buffer)
                return buffer
            })
    }

    /// Registers a client-streaming method.
    /// - Parameters:
    ///   - method: the method.
    ///   - handler: the implementation.
    public mutating func registerClientStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        handler: @escaping @Sendable (RPCAsyncSequence<Request>, ServerContext) async throws -> Response
    ) {
        register(
            Handler(method: method) { requests, _, context in
                var buffer = ByteBuffer.withFramingHeadroom()
                try await handler(RPCAsyncSequence(raw: requests), context).encode(into: &buffer)
                return buffer
            })
    }

    /// Registers a server-streaming method.
    /// - Parameters:
    ///   - method: the method.
    ///   - handler: the implementation.
    public mutating func registerServerStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        handler: @escaping @Sendable (Request, RPCWriter<Response>, ServerContext) async throws -> Void
    ) {
        register(
            Handler(method: method) { requests, sink, context in
                let request = try await Self.single(Request.self, from: requests)
                try await handler(request, RPCWriter(sink: sink), context)
                return nil
            })
    }

    /// Registers a bidirectional-streaming method.
    /// - Parameters:
    ///   - method: the method.
    ///   - handler: the implementation.
    public mutating func registerBidirectionalStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        handler: @escaping @Sendable (RPCAsyncSequence<Request>, RPCWriter<Response>, ServerContext) async throws -> Void
    ) {
        register(
            Handler(method: method) { requests, sink, context in
                try await handler(RPCAsyncSequence(raw: requests), RPCWriter(sink: sink), context)
                return nil
            })
    }

    private static func single<M: ProtoMessage>(_ type: M.Type, from requests: InboundMessages) async throws -> M {
        var iterator = requests.makeAsyncIterator()
        guard let first = try await iterator.next() else {
            throw RPCError(code: .unimplemented, message: "expected one request message, received none")
        }
        guard try await iterator.next() == nil else {
            throw RPCError(code: .unimplemented, message: "expected one request message, received several")
        }
        return try decodeMessage(M.self, from: first)
    }
}

extension ByteBuffer {
    /// An empty buffer whose first 5 bytes are reserved (and skipped), so that the transport can write the gRPC
    /// message prefix in front of the encoded message without copying it.
    public static func withFramingHeadroom(capacity: Int = 256) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: capacity)
        buffer.writeRepeatingByte(0, count: 5)
        buffer.moveReaderIndex(forwardBy: 5)
        return buffer
    }
}
