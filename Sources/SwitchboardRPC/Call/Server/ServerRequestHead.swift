/// A call's request head, parsed by the transport: what the RPC core needs to route and set up the call.
///
/// Transport concerns (HTTP method, `content-type`, message compression) are settled before a head is built; what
/// remains is gRPC's: which method, whose metadata, how long the caller waits.
public struct ServerRequestHead: Sendable {
    /// The HTTP/2 `:path`, `/package.Service/Method`.
    public var path: String
    /// The caller's metadata, less the reserved headers (see ``Metadata/isReserved(_:)``).
    public var metadata: Metadata
    /// The caller's `grpc-timeout`, parsed; nil when absent or malformed (a malformed value is ignored, as
    /// grpc-go does, rather than failing the call).
    public var timeout: Duration?
    /// The caller's address, e.g. `ipv4:127.0.0.1:53122`.
    public var peer: String

    /// Creates a request head.
    /// - Parameters:
    ///   - path: the `:path`.
    ///   - metadata: the caller's metadata.
    ///   - timeout: the parsed `grpc-timeout`.
    ///   - peer: the caller's address.
    public init(path: String, metadata: Metadata, timeout: Duration?, peer: String) {
        self.path = path
        self.metadata = metadata
        self.timeout = timeout
        self.peer = peer
    }
}
