import Foundation
import Logging
import Metrics
import SwitchboardRPC

/// W3C trace context of a call: the caller's trace id (or a new one) and a new span id for this call.
public struct TraceContext: Sendable, Hashable {
    /// 32 lower-case hex digits.
    public var traceID: String
    /// This call's span, 16 hex digits.
    public var spanID: String
    /// The caller's span, if it sent `traceparent`.
    public var parentSpanID: String?

    /// Parses a `traceparent` header (`00-<trace>-<parent>-<flags>`), starting a new trace when it is absent or invalid.
    /// - Parameter header: the header value.
    public init(traceparent header: String?) {
        let parts = header?.split(separator: "-").map(String.init) ?? []
        func isHex(_ s: String, _ n: Int) -> Bool { s.count == n && s.allSatisfy(\.isHexDigit) && s.contains { $0 != "0" } }
        if parts.count == 4, parts[0] == "00", isHex(parts[1], 32), isHex(parts[2], 16) {
            traceID = parts[1].lowercased()
            parentSpanID = parts[2].lowercased()
        } else {
            traceID = Self.randomHex(16)
            parentSpanID = nil
        }
        spanID = Self.randomHex(8)
    }

    /// The header to send downstream: this call as the parent.
    public var traceparent: String { "00-\(traceID)-\(spanID)-01" }

    /// Runs on every call: a lookup table, not `String(format:)` per byte (which showed up in profiles).
    static func randomHex(_ bytes: Int) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes * 2)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<bytes {
            let byte = UInt8.random(in: 0...255, using: &generator)
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Gives each call a request id (the caller's `x-request-id`, or a new one, echoed back) and a trace context
/// (`traceparent`), puts both on every log line of the call, writes one access-log line when it ends, and records
/// RPC metrics: `rpc_requests_total` and `rpc_duration_seconds` by method and status, `rpc_in_flight` by method.
public struct CallContextInterceptor: ServerInterceptor {
    /// Creates the interceptor; access-log lines go to the server's logger with the call's metadata.
    public init() {}

    public func intercept<Result: Sendable>(
        context: ServerContext, next: @Sendable (ServerContext) async throws -> Result
    ) async throws -> Result {
        let requestID = context.requestMetadata.firstString("x-request-id").flatMap { $0.count <= 128 ? $0 : nil }
            ?? UUID().uuidString.lowercased()
        let trace = TraceContext(traceparent: context.requestMetadata.firstString("traceparent"))
        context[TraceContext.self] = trace
        context.addLoggerMetadata("request_id", requestID)
        context.addLoggerMetadata("trace_id", trace.traceID)
        context.addLoggerMetadata("span_id", trace.spanID)
        var initial = context.initialMetadata
        initial.replaceOrAddString(requestID, forKey: "x-request-id")
        context.initialMetadata = initial

        let method = context.method.description
        let inFlight = Meter(label: "rpc_in_flight", dimensions: [("method", method)])
        inFlight.increment()
        let started = ContinuousClock.now
        let code: StatusCode
        defer {
            inFlight.decrement()
            let elapsed = ContinuousClock.now - started
            Counter(label: "rpc_requests_total", dimensions: [("method", method), ("code", code.description)]).increment()
            Timer(label: "rpc_duration_seconds", dimensions: [("method", method), ("code", code.description)])
                .recordNanoseconds(Int64(elapsed.components.seconds) * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
            var callLogger = context.logger
            callLogger[metadataKey: "grpc.code"] = "\(code)"
            callLogger[metadataKey: "duration_ms"] = "\(Double(elapsed.components.attoseconds / 1_000_000_000 + elapsed.components.seconds * 1_000_000_000) / 1e6)"
            callLogger[metadataKey: "peer"] = "\(context.peer)"
            callLogger.log(level: code == .unknown || code == .internal ? .error : .info, "rpc")
        }
        do {
            let result = try await next(context)
            code = .ok
            return result
        } catch {
            code = RPCError.from(error).code
            throw error
        }
    }
}
