/// The four shapes an RPC can take.
public enum RPCKind: Sendable, Hashable {
    /// One request, one response.
    case unary
    /// Many requests, one response.
    case clientStreaming
    /// One request, many responses.
    case serverStreaming
    /// Many requests, many responses.
    case bidirectionalStreaming

    /// Whether the client sends exactly one message.
    public var isSingleRequest: Bool { self == .unary || self == .serverStreaming }
    /// Whether the server sends exactly one message.
    public var isSingleResponse: Bool { self == .unary || self == .clientStreaming }
}

/// Identifies one method of one service, as it appears in the HTTP/2 `:path`.
public struct MethodDescriptor: Sendable, Hashable, CustomStringConvertible {
    /// The fully-qualified service name, e.g. `grpc.health.v1.Health`.
    public let service: String
    /// The method name, e.g. `Check`.
    public let method: String
    /// The call shape.
    public let kind: RPCKind
    /// `/service/method`, the HTTP/2 path.
    public let path: String

    /// Creates a descriptor.
    /// - Parameters:
    ///   - service: the fully-qualified service name.
    ///   - method: the method name.
    ///   - kind: the call shape.
    public init(service: String, method: String, kind: RPCKind) {
        self.service = service
        self.method = method
        self.kind = kind
        self.path = "/\(service)/\(method)"
    }

    /// `service/method`.
    public var description: String { "\(service)/\(method)" }
}
