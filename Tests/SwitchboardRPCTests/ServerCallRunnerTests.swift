import Logging
import NIOCore
import SwitchboardProtos
import SwitchboardRPC
import Testing

/// The RPC core's server call semantics, run without a transport.
@Suite("Server call runner")
struct ServerCallRunnerTests {
    private static let echo = MethodDescriptor(service: "test.Echo", method: "Say", kind: .unary)
    private static let stream = MethodDescriptor(service: "test.Echo", method: "Stream", kind: .bidirectionalStreaming)

    private struct NoSink: ServerResponseSink {
        func write(_ message: ByteBuffer, compress: Bool?) async throws {}
    }

    /// Rejects calls without `authorization`, and tags every call's trailers.
    private struct Gate: ServerInterceptor {
        func intercept<Result: Sendable>(
            context: ServerContext, next: @Sendable (ServerContext) async throws -> Result
        ) async throws -> Result {
            context.trailingMetadata.addString("seen", forKey: "x-gate")
            guard context.requestMetadata.firstString("authorization") != nil else {
                throw RPCError(code: .unauthenticated, message: "no credentials")
            }
            return try await next(context)
        }
    }

    private func runner(interceptors: [any ServerInterceptor] = []) -> ServerCallRunner {
        var router = RPCRouter()
        router.registerUnary(Self.echo) { (request: Google_Protobuf_StringValue, context: ServerContext) in
            if request.value == "fail" { throw RPCError(code: .failedPrecondition, message: "asked to fail") }
            context.trailingMetadata.addString("done", forKey: "x-echo")
            return Google_Protobuf_StringValue(value: request.value.uppercased())
        }
        router.registerBidirectionalStreaming(Self.stream) {
            (requests: RPCAsyncSequence<Google_Protobuf_StringValue>, _: RPCWriter<Google_Protobuf_StringValue>, _: ServerContext) in
            for try await _ in requests {}
        }
        return ServerCallRunner(
            router: router, interceptors: interceptors, compressResponses: false,
            logger: Logger(label: "test"))
    }

    private func request(_ value: String) -> InboundMessages {
        var buffer = ByteBuffer()
        Google_Protobuf_StringValue(value: value).encode(into: &buffer)
        return InboundMessages(finishedWith: [buffer])
    }

    private func head(_ path: String, metadata: Metadata = [:], timeout: Duration? = nil) -> ServerRequestHead {
        ServerRequestHead(path: path, metadata: metadata, timeout: timeout, peer: "ipv4:127.0.0.1:1")
    }

    @Test("an unknown path is UNIMPLEMENTED naming it")
    func unknownPath() {
        guard case .failure(let error) = runner().makeCall(for: head("/test.Echo/Nope")) else {
            Issue.record("routed")
            return
        }
        #expect(error.code == .unimplemented)
        #expect(error.message == "unknown method /test.Echo/Nope")
    }

    @Test("a routed call carries its method, kind, metadata and a deadline from the timeout")
    func routing() throws {
        let call = try runner().makeCall(for: head(Self.echo.path, metadata: ["x-a": "1"], timeout: .seconds(5))).get()
        #expect(call.method == Self.echo)
        #expect(call.isSingleRequest)
        #expect(call.timeout == .seconds(5))
        #expect(call.context.requestMetadata.firstString("x-a") == "1")
        let remaining = try #require(call.context.timeRemaining)
        #expect(remaining > .seconds(4) && remaining <= .seconds(5))
        let streaming = try runner().makeCall(for: head(Self.stream.path)).get()
        #expect(!streaming.isSingleRequest)
        #expect(streaming.timeout == nil && streaming.context.deadline == nil)
    }

    @Test("a successful call returns its response; the final status is OK with the handler's trailers")
    func success() async throws {
        let runner = runner()
        let call = try runner.makeCall(for: head(Self.echo.path)).get()
        guard case .success(let response?) = await call.run(requests: request("hi"), responses: NoSink()) else {
            Issue.record("no response")
            return
        }
        #expect(try Google_Protobuf_StringValue(decoding: response).value == "HI")
        let final = runner.finalStatus(nil, of: call)
        #expect(final.status == Status(code: .ok))
        #expect(final.trailingMetadata == ["x-echo": "done"])
    }

    @Test("an interceptor rejects before the handler; its trailers and the error's metadata go with the status")
    func interceptorRejects() async throws {
        let runner = runner(interceptors: [Gate()])
        let call = try runner.makeCall(for: head(Self.echo.path)).get()
        guard case .failure(var error) = await call.run(requests: request("hi"), responses: NoSink()) else {
            Issue.record("ran")
            return
        }
        #expect(error.code == .unauthenticated)
        error.metadata.addString("why", forKey: "x-error")
        let final = runner.finalStatus(error, of: call)
        #expect(final.status == Status(code: .unauthenticated, message: "no credentials"))
        #expect(final.trailingMetadata == ["x-gate": "seen", "x-error": "why"])
        let allowed = try runner.makeCall(for: head(Self.echo.path, metadata: ["authorization": "Bearer x"])).get()
        guard case .success = await allowed.run(requests: request("hi"), responses: NoSink()) else {
            Issue.record("refused with credentials")
            return
        }
    }

    @Test("handler errors keep their status; undecodable requests are INTERNAL; other errors UNKNOWN")
    func errorMapping() async throws {
        let runner = runner()
        let call = try runner.makeCall(for: head(Self.echo.path)).get()
        guard case .failure(let refused) = await call.run(requests: request("fail"), responses: NoSink()) else {
            Issue.record("succeeded")
            return
        }
        #expect(refused == RPCError(code: .failedPrecondition, message: "asked to fail"))
        let garbled = InboundMessages(finishedWith: [ByteBuffer(bytes: [0x0A, 0x05, 0x61])])
        guard case .failure(let undecodable) = await call.run(requests: garbled, responses: NoSink()) else {
            Issue.record("decoded")
            return
        }
        #expect(undecodable.code == .internal)
        #expect(undecodable.message.contains("google.protobuf.StringValue"))
        #expect(RPCError.from(CancellationError()).code == .cancelled)
    }

    @Test("only application metadata, rich details and (on errors) grpc-accept-encoding go in the trailers")
    func trailerFilter() {
        let ok = ServerResponseStatus(status: .ok, trailingMetadata: [:])
        let failed = ServerResponseStatus(status: Status(code: .unimplemented), trailingMetadata: [:])
        #expect(ok.sends("x-anything") && ok.sends(GRPCHeaderName.statusDetails))
        #expect(!ok.sends(GRPCHeaderName.acceptEncoding) && failed.sends(GRPCHeaderName.acceptEncoding))
        #expect(!failed.sends(GRPCHeaderName.status) && !failed.sends(GRPCHeaderName.contentType) && !failed.sends(":path"))
        #expect(ServerCallRunner.deadlineExceeded.code == .deadlineExceeded)
    }
}
