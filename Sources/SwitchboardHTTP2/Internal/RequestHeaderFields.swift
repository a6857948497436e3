import SwitchboardRPC

/// A request's header fields, parsed as nghttp2 delivers them, then judged: refused by the transport (HTTP method,
/// content type, bad metadata), or turned into the RPC core's ``ServerRequestHead``.
///
/// A value fed name/value bytes, so it is tested without sockets. Compares bytes before making Strings: most
/// requests carry headers never needed as Strings (`user-agent`, `te`, ...).
struct RequestHeaderFields {
    private(set) var isPost = false
    private(set) var path = ""
    private(set) var isGRPCContentType = false
    private(set) var timeout: String?
    private(set) var encoding: String?
    private(set) var acceptEncoding: String?
    private(set) var metadata = Metadata()
    /// The first metadata value that could not be read (a `-bin` value that is not base64).
    private(set) var metadataError: RPCError?

    /// How the transport answers a request head before the RPC core sees it.
    enum Refusal: Equatable {
        /// Not gRPC at all: an HTTP status alone (405 for a method other than POST, 415 for another content type).
        case http(status: Int)
        /// gRPC, but unreadable: a status.
        case rpc(RPCError)
    }

    /// Takes one header field.
    /// - Parameters:
    ///   - name: the lower-case name.
    ///   - value: the value.
    mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        if name.first == UInt8(ascii: ":") {
            if name.elementsEqual(GRPCHeaderName.method.utf8) {
                isPost = value.elementsEqual(GRPCHeaderValue.post.utf8)
            } else if name.elementsEqual(GRPCHeaderName.path.utf8) {
                path = String(decoding: value, as: UTF8.self)
            }
            return
        }
        if name.elementsEqual(GRPCHeaderName.contentType.utf8) {
            isGRPCContentType = Self.isGRPCContentType(value)
            return
        }
        if name.elementsEqual(GRPCHeaderName.te.utf8) || name.elementsEqual(GRPCHeaderName.userAgent.utf8) { return }
        let nameString = String(decoding: name, as: UTF8.self)
        switch nameString {
        case GRPCHeaderName.timeout: timeout = String(decoding: value, as: UTF8.self)
        case GRPCHeaderName.encoding: encoding = String(decoding: value, as: UTF8.self)
        case GRPCHeaderName.acceptEncoding: acceptEncoding = String(decoding: value, as: UTF8.self)
        default:
            guard !Metadata.isReserved(nameString), metadataError == nil else { return }
            do {
                try metadata.addWire(String(decoding: value, as: UTF8.self), forKey: nameString)
            } catch {
                metadataError = RPCError.from(error)
            }
        }
    }

    /// The transport's verdict on the complete head, in the order gRPC servers apply it.
    /// - Returns: why the request is refused, or nil when it goes on to the RPC core.
    func refusal() -> Refusal? {
        if let metadataError { return .rpc(metadataError) }
        guard isPost else { return .http(status: 405) }
        guard isGRPCContentType else { return .http(status: 415) }
        return nil
    }

    /// The head the RPC core routes.
    /// - Parameter peer: the caller's address.
    /// - Returns: the head, with `grpc-timeout` parsed (a malformed value is ignored).
    func head(peer: String) -> ServerRequestHead {
        ServerRequestHead(path: path, metadata: metadata, timeout: timeout.flatMap(GRPCTimeout.parse), peer: peer)
    }

    /// `application/grpc`, optionally followed by `+format` or `;parameters`.
    private static func isGRPCContentType(_ value: UnsafeRawBufferPointer) -> Bool {
        let prefix = GRPCHeaderValue.contentType.utf8
        guard value.count >= prefix.count, value.prefix(prefix.count).elementsEqual(prefix) else { return false }
        return value.count == prefix.count || value[prefix.count] == UInt8(ascii: "+") || value[prefix.count] == UInt8(ascii: ";")
    }
}
