import Logging
import NIOCore
import NIOEmbedded
import SwitchboardBuiltins
@_spi(Fuzzing) import SwitchboardHTTP2
import SwitchboardInterop
import SwitchboardProtos
import SwitchboardRPC

/// The server side of one HTTP/2 connection fed a client's raw bytes: nghttp2's session, our header and data
/// callbacks, the deframer, call dispatch and the handlers of two real services. Everything runs on one
/// `EmbeddedEventLoop` on this thread (handler tasks prefer the connection's loop), so a run is deterministic.
///
/// After the bytes, virtual time moves past every timer the connection arms (deadlines, idle, keepalive and its
/// acknowledgement), then the connection closes; every call must have ended by then, or a call would outlive its
/// connection (which is reported as a crash here and would be a leak in the server).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP2Server(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let calls = CallCounter()
    let handler = ServerFuzzing.makeConnectionHandler(
        services: [HealthService(services: ["grpc.testing.TestService"]), SleeplessTestService()],
        interceptors: [calls],
        configuration: configuration,
        logger: logger)
    let channel = EmbeddedChannel(handler: handler)
    let loop = channel.embeddedEventLoop
    // Active, as an accepted connection is (the handler writes its SETTINGS on being added).
    _ = try? channel.connect(to: peerAddress).wait()
    var input = channel.allocator.buffer(capacity: size)
    input.writeBytes(UnsafeRawBufferPointer(start: data, count: size))
    do {
        try channel.writeInbound(input)
        loop.run()
        drain(channel)
        // Past every deadline a client can ask for in this time (grpc-timeout is capped at 8 digits of hours by
        // the format, but a day covers what a seed can reach), the idle timeout and a keepalive round.
        for _ in 0..<4 {
            loop.advanceTime(by: .hours(3))
            drain(channel)
        }
    } catch {
        // The handler closed the connection (an error caught); closing again below is fine.
    }
    _ = try? channel.finish(acceptAlreadyClosed: true)
    loop.run()
    drain(channel)
    precondition(calls.active == 0, "\(calls.active) call(s) still running after the connection closed")
    return 0
}

private let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })

private let configuration: ServerConfiguration = {
    var configuration = ServerConfiguration()
    configuration.idleTimeout = .seconds(60)
    configuration.keepaliveInterval = .seconds(3600)
    configuration.keepaliveTimeout = .seconds(20)
    return configuration
}()

private let peerAddress = try! SocketAddress(ipAddress: "127.0.0.1", port: 50000)

/// Discards what the server wrote: only what it does with the input matters here.
private func drain(_ channel: EmbeddedChannel) {
    while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
}

/// Counts calls between the interceptor's entry and exit; only ever touched on the embedded loop's thread.
private final class CallCounter: ServerInterceptor, @unchecked Sendable {
    // @unchecked: every handler task runs its jobs on the one EmbeddedEventLoop, which runs on the fuzzing thread.
    var active = 0

    func intercept<Result: Sendable>(
        context: ServerContext, next: @Sendable (ServerContext) async throws -> Result
    ) async throws -> Result {
        active += 1
        defer { active -= 1 }
        return try await next(context)
    }
}

/// The interop TestService without `interval_us` pauses: `Task.sleep` resumes from the timer's thread, which an
/// `EmbeddedEventLoop` does not allow (and which would make runs depend on timing). The streaming methods answer
/// through `streamingOutputCall`, which is what the real ones do for each request.
private struct SleeplessTestService: Grpc_Testing_TestService_ServiceProtocol {
    let inner = TestService()

    private static func sleepless(_ request: Grpc_Testing_StreamingOutputCallRequest) -> Grpc_Testing_StreamingOutputCallRequest {
        var request = request
        for i in request.responseParameters.indices { request.responseParameters[i].intervalUs = 0 }
        return request
    }

    func emptyCall(request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
        try await inner.emptyCall(request: request, context: context)
    }

    func unaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse {
        try await inner.unaryCall(request: request, context: context)
    }

    func cacheableUnaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse {
        try await inner.cacheableUnaryCall(request: request, context: context)
    }

    func streamingOutputCall(
        request: Grpc_Testing_StreamingOutputCallRequest,
        responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>,
        context: ServerContext
    ) async throws {
        try await inner.streamingOutputCall(request: Self.sleepless(request), responses: responses, context: context)
    }

    func streamingInputCall(
        requests: RPCAsyncSequence<Grpc_Testing_StreamingInputCallRequest>, context: ServerContext
    ) async throws -> Grpc_Testing_StreamingInputCallResponse {
        try await inner.streamingInputCall(requests: requests, context: context)
    }

    func fullDuplexCall(
        requests: RPCAsyncSequence<Grpc_Testing_StreamingOutputCallRequest>,
        responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>,
        context: ServerContext
    ) async throws {
        for try await request in requests {
            try await inner.streamingOutputCall(request: Self.sleepless(request), responses: responses, context: context)
        }
    }

    func halfDuplexCall(
        requests: RPCAsyncSequence<Grpc_Testing_StreamingOutputCallRequest>,
        responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>,
        context: ServerContext
    ) async throws {
        var buffered: [Grpc_Testing_StreamingOutputCallRequest] = []
        for try await request in requests { buffered.append(request) }
        for request in buffered {
            try await inner.streamingOutputCall(request: Self.sleepless(request), responses: responses, context: context)
        }
    }

    func unimplementedCall(request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
        try await inner.unimplementedCall(request: request, context: context)
    }
}
