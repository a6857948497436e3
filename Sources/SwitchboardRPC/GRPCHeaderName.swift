/// The header names gRPC over HTTP/2 uses, in one place for the server, the client and the metadata filter.
///
/// Lower-case, as HTTP/2 requires: compare received names against these directly. Inlinable computed properties
/// rather than stored constants, so the transport's per-header comparisons compile to literals (no cross-module
/// accessor or lazy-initialisation check on the hot path).
public enum GRPCHeaderName {
    /// `:method` (always `POST` for gRPC).
    @inlinable public static var method: String { ":method" }
    /// `:path`: `/package.Service/Method`.
    @inlinable public static var path: String { ":path" }
    /// `:scheme`.
    @inlinable public static var scheme: String { ":scheme" }
    /// `:authority`.
    @inlinable public static var authority: String { ":authority" }
    /// `:status`: the HTTP status of a response (200 for every gRPC answer, errors included).
    @inlinable public static var httpStatus: String { ":status" }
    /// `content-type`: `application/grpc`, optionally with `+format` or `;parameters`.
    @inlinable public static var contentType: String { "content-type" }
    /// `te`: clients send `trailers`.
    @inlinable public static var te: String { "te" }
    /// `user-agent`.
    @inlinable public static var userAgent: String { "user-agent" }
    /// `grpc-timeout`: the caller's timeout (see ``GRPCTimeout``).
    @inlinable public static var timeout: String { "grpc-timeout" }
    /// `grpc-encoding`: the compression of this side's messages.
    @inlinable public static var encoding: String { "grpc-encoding" }
    /// `grpc-accept-encoding`: the compressions this side can read.
    @inlinable public static var acceptEncoding: String { "grpc-accept-encoding" }
    /// `grpc-status`: the status code, in trailers.
    @inlinable public static var status: String { "grpc-status" }
    /// `grpc-message`: the status message, percent-encoded, in trailers.
    @inlinable public static var message: String { "grpc-message" }
    /// `grpc-status-details-bin`: a `google.rpc.Status` with rich error details, in trailers.
    @inlinable public static var statusDetails: String { "grpc-status-details-bin" }
}

/// Header values gRPC over HTTP/2 fixes (inlinable for the same reason as ``GRPCHeaderName``).
public enum GRPCHeaderValue {
    /// The `content-type` of gRPC requests and responses.
    @inlinable public static var contentType: String { "application/grpc" }
    /// The `te` value a gRPC client sends.
    @inlinable public static var trailers: String { "trailers" }
    /// The `:method` of every gRPC request.
    @inlinable public static var post: String { "POST" }
}
