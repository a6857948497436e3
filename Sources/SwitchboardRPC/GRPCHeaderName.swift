/// The header names gRPC over HTTP/2 uses, in one place for the server, the client and the metadata filter.
///
/// Lower-case, as HTTP/2 requires: compare received names against these directly.
public enum GRPCHeaderName {
    /// `:method` (always `POST` for gRPC).
    public static let method = ":method"
    /// `:path`: `/package.Service/Method`.
    public static let path = ":path"
    /// `:scheme`.
    public static let scheme = ":scheme"
    /// `:authority`.
    public static let authority = ":authority"
    /// `:status`: the HTTP status of a response (200 for every gRPC answer, errors included).
    public static let httpStatus = ":status"
    /// `content-type`: `application/grpc`, optionally with `+format` or `;parameters`.
    public static let contentType = "content-type"
    /// `te`: clients send `trailers`.
    public static let te = "te"
    /// `user-agent`.
    public static let userAgent = "user-agent"
    /// `grpc-timeout`: the caller's timeout (see ``GRPCTimeout``).
    public static let timeout = "grpc-timeout"
    /// `grpc-encoding`: the compression of this side's messages.
    public static let encoding = "grpc-encoding"
    /// `grpc-accept-encoding`: the compressions this side can read.
    public static let acceptEncoding = "grpc-accept-encoding"
    /// `grpc-status`: the status code, in trailers.
    public static let status = "grpc-status"
    /// `grpc-message`: the status message, percent-encoded, in trailers.
    public static let message = "grpc-message"
    /// `grpc-status-details-bin`: a `google.rpc.Status` with rich error details, in trailers.
    public static let statusDetails = "grpc-status-details-bin"
}

/// Header values gRPC over HTTP/2 fixes.
public enum GRPCHeaderValue {
    /// The `content-type` of gRPC requests and responses.
    public static let contentType = "application/grpc"
    /// The `te` value a gRPC client sends.
    public static let trailers = "trailers"
    /// The `:method` of every gRPC request.
    public static let post = "POST"
}
