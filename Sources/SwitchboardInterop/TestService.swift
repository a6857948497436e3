import SwitchboardProtos
import SwitchboardRPC

/// `grpc.testing.TestService` as gRPC's interop test descriptions require: served by `interop-server` and used by
/// the integration tests.
public struct TestService: Grpc_Testing_TestService_ServiceProtocol {
    /// Creates the service.
    public init() {}

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

    private func payload(size: Int32) throws -> Grpc_Testing_Payload {
        guard size >= 0 else { throw RPCError(code: .invalidArgument, message: "response_size must not be negative") }
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
        if request.responseSize > 0 { response.payload = try payload(size: request.responseSize) }
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
        var total: Int32 = 0
        for try await request in requests {
            try checkCompression(expected: request.expectCompressed, context: context)
            total += Int32(request.payload?.body.count ?? 0)
        }
        var response = Grpc_Testing_StreamingInputCallResponse()
        response.aggregatedPayloadSize = total
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
        var buffered: [Grpc_Testing_StreamingOutputCallRequest] = []
        for try await request in requests { buffered.append(request) }
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
            response.payload = try payload(size: parameters.size)
            try await responses.write(response, compress: parameters.compressed?.value)
        }
    }
}
