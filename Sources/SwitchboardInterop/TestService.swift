import SwitchboardProtos
import SwitchboardRPC

/// `grpc.testing.TestService` as gRPC's interop test descriptions require: served by `interop-server` and used by
/// the integration tests.
public struct TestService: Grpc_Testing_TestService_ServiceProtocol {
    /// The largest payload body a response may carry; larger requested sizes are refused before anything is
    /// allocated.
    public let maxResponseBytes: Int
    /// The most responses `HalfDuplexCall` holds back until the client half-closes.
    public let maxBufferedResponses: Int

    /// Creates the service.
    /// - Parameters:
    ///   - maxResponseBytes: the largest response payload (match the server's `maxSendMessageSize`).
    ///   - maxBufferedResponses: the most responses one `HalfDuplexCall` may ask for before it half-closes.
    public init(maxResponseBytes: Int = 4 * 1024 * 1024, maxBufferedResponses: Int = 10_000) {
        self.maxResponseBytes = maxResponseBytes
        self.maxBufferedResponses = maxBufferedResponses
    }

    private static let echoInitialKey = "x-grpc-test-echo-initial"
    private static let echoTrailingKey = "x-grpc-test-echo-trailing-bin"

    /// Copies the echo headers into the response headers and trailers.
    private func echoMetadata(_ context: ServerContext) {
        var initial = Metadata()
        for value in context.requestMetadata[stringValues: Self.echoInitialKey] {
            initial.addString(value, forKey: Self.echoInitialKey)
        }
        if !initial.isEmpty { context.initialMetadata = initial }
        var trailing = Metadata()
        for value in context.requestMetadata[binaryValues: Self.echoTrailingKey] {
            trailing.addBinary(value, forKey: Self.echoTrailingKey)
        }
        if !trailing.isEmpty { context.trailingMetadata = trailing }
    }

    /// A payload of `size` zero bytes; the size is checked before anything is allocated, so a client cannot make the
    /// server build a 2 GiB body only to have the transport refuse to send it.
    private func payload(size: Int32, field: String) throws -> Grpc_Testing_Payload {
        guard size >= 0 else { throw RPCError(code: .invalidArgument, message: "\(field) must not be negative (got \(size))") }
        guard Int(size) <= maxResponseBytes else {
            throw RPCError(
                code: .resourceExhausted, message: "\(field) of \(size) bytes exceeds this server's limit of \(maxResponseBytes)")
        }
        var payload = Grpc_Testing_Payload()
        payload.type = .compressable
        payload.body = [UInt8](repeating: 0, count: Int(size))
        return payload
    }

    private func checkEchoStatus(_ status: Grpc_Testing_EchoStatus?) throws {
        guard let status, status.code != 0 else { return }
        throw RPCError(code: StatusCode(rawValue: Int(status.code)), message: status.message)
    }

    private func checkCompression(expected: Grpc_Testing_BoolValue?, context: ServerContext) throws {
        if expected?.value == true, !context.requestMessageCompressed {
            throw RPCError(code: .invalidArgument, message: "expected a compressed request message")
        }
    }

    public func emptyCall(request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
        echoMetadata(context)
        return Grpc_Testing_Empty()
    }

    public func unaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse {
        echoMetadata(context)
        try checkCompression(expected: request.expectCompressed, context: context)
        try checkEchoStatus(request.responseStatus)
        if let compressed = request.responseCompressed { context.compressResponses = compressed.value }
        var response = Grpc_Testing_SimpleResponse()
        if request.responseSize != 0 { response.payload = try payload(size: request.responseSize, field: "response_size") }
        return response
    }

    public func cacheableUnaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse {
        try await unaryCall(request: request, context: context)
    }

    public func streamingOutputCall(
        request: Grpc_Testing_StreamingOutputCallRequest,
        responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>,
        context: ServerContext
    ) async throws {
        echoMetadata(context)
        try await respond(to: request, responses: responses)
    }

    public func streamingInputCall(
        requests: RPCAsyncSequence<Grpc_Testing_StreamingInputCallRequest>,
        context: ServerContext
    ) async throws -> Grpc_Testing_StreamingInputCallResponse {
        echoMetadata(context)
        var tally = PayloadTally()
        for try await request in requests {
            try checkCompression(expected: request.expectCompressed, context: context)
            try tally.add(request.payload?.body.count ?? 0)
        }
        var response = Grpc_Testing_StreamingInputCallResponse()
        response.aggregatedPayloadSize = tally.total
        return response
    }

    public func fullDuplexCall(
        requests: RPCAsyncSequence<Grpc_Testing_StreamingOutputCallRequest>,
        responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>,
        context: ServerContext
    ) async throws {
        echoMetadata(context)
        for try await request in requests {
            try await respond(to: request, responses: responses)
        }
    }

    public func halfDuplexCall(
        requests: RPCAsyncSequence<Grpc_Testing_StreamingOutputCallRequest>,
        responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>,
        context: ServerContext
    ) async throws {
        echoMetadata(context)
        // Only what the responses need is kept (not the request payloads), and only up to a bound: the client
        // decides when to half-close, so it would otherwise decide how much this stream holds.
        var buffered: [Grpc_Testing_StreamingOutputCallRequest] = []
        var promised = 0
        for try await request in requests {
            promised += max(1, request.responseParameters.count)
            guard promised <= maxBufferedResponses else {
                throw RPCError(
                    code: .resourceExhausted,
                    message: "HalfDuplexCall holds at most \(maxBufferedResponses) responses until the client half-closes")
            }
            var kept = Grpc_Testing_StreamingOutputCallRequest()
            kept.responseParameters = request.responseParameters
            kept.responseStatus = request.responseStatus
            buffered.append(kept)
        }
        for request in buffered { try await respond(to: request, responses: responses) }
    }

    public func unimplementedCall(request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
        throw RPCError(code: .unimplemented, message: "UnimplementedCall is never implemented")
    }

    private func respond(
        to request: Grpc_Testing_StreamingOutputCallRequest,
        responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>
    ) async throws {
        try checkEchoStatus(request.responseStatus)
        for parameters in request.responseParameters {
            if parameters.intervalUs > 0 { try await Task.sleep(for: .microseconds(Int64(parameters.intervalUs))) }
            var response = Grpc_Testing_StreamingOutputCallResponse()
            response.payload = try payload(size: parameters.size, field: "response_parameters.size")
            try await responses.write(response, compress: parameters.compressed?.value)
        }
    }
}

/// Sums the payload bytes of a client stream for `StreamingInputCall`'s `aggregated_payload_size`, an int32.
///
/// A stream may carry more than 2 GiB in total; the sum is kept in an `Int` and refused (RESOURCE_EXHAUSTED) once it
/// no longer fits the field, instead of trapping on `Int32` overflow and taking the process down.
public struct PayloadTally: Sendable {
    /// The bytes counted so far; always fits the field.
    public private(set) var total: Int32 = 0

    /// Starts at zero.
    public init() {}

    /// Adds one message's payload size.
    /// - Parameter bytes: the payload's length.
    /// - Throws: RESOURCE_EXHAUSTED when the sum would exceed `Int32.max` (or `bytes` is not a size).
    public mutating func add(_ bytes: Int) throws {
        let (sum, overflow) = Int(total).addingReportingOverflow(bytes)
        guard bytes >= 0, !overflow, let narrowed = Int32(exactly: sum) else {
            throw RPCError(
                code: .resourceExhausted,
                message: "the stream's payloads exceed \(Int32.max) bytes, the most aggregated_payload_size can report")
        }
        total = narrowed
    }
}
