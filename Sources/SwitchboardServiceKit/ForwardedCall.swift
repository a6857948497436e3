import SwitchboardRPC
import SwitchboardRuntime

/// The caller's credentials and trace, forwarded to another service a request needs, and when the caller stops
/// waiting: the upstream checks the caller's own tenant and rights, never the calling service's.
public struct ForwardedCall: Sendable {
    /// Headers to send as they are (`authorization`, `traceparent`, `tracestate`).
    public var headers: [(name: String, value: String)]
    /// When every upstream call must have ended.
    public var deadline: ContinuousClock.Instant

    /// Creates a forwarded call.
    public init(headers: [(name: String, value: String)], deadline: ContinuousClock.Instant) {
        self.headers = headers
        self.deadline = deadline
    }

    /// The call's headers and the time left, as options of one upstream call.
    /// - Parameter what: what the call is doing, for the error's message ("the audience was read").
    /// - Returns: the options.
    /// - Throws: DEADLINE_EXCEEDED when no time is left.
    public func options(doing what: String) throws -> CallOptions {
        let left = deadline - .now
        guard left > .zero else { throw RPCError(code: .deadlineExceeded, message: "the deadline passed while \(what)") }
        var options = CallOptions(timeout: left)
        for header in headers { options.metadata.addString(header.value, forKey: header.name) }
        return options
    }
}

extension ServerContext {
    /// The caller's token and trace for the services this call asks, within the caller's deadline (or `budget` from
    /// now when the caller set none).
    /// - Parameter budget: how long the upstream calls may take when the caller set no deadline.
    /// - Returns: the headers to forward and the deadline of every upstream call.
    public func forwardedCall(budget: Duration) -> ForwardedCall {
        var headers: [(name: String, value: String)] = []
        if let authorization = requestMetadata.firstString("authorization") { headers.append(("authorization", authorization)) }
        // This call is the upstream's parent span; the caller's vendor state travels unchanged.
        if let trace = self[TraceContext.self] { headers.append(("traceparent", trace.traceparent)) }
        if let state = requestMetadata.firstString("tracestate") { headers.append(("tracestate", state)) }
        return ForwardedCall(headers: headers, deadline: deadline ?? .now + budget)
    }
}
