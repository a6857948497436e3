import SwitchboardInterop
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardTestSupport
import Testing

private typealias TestClient = Grpc_Testing_TestService_Client

/// What a client can ask `grpc.testing.TestService` for is bounded: sizes are checked before anything is allocated,
/// totals cannot overflow, and buffering has a ceiling.
@Suite("TestService limits")
struct TestServiceLimitsTests {
    @Test("a stream's payload total is counted without overflow and refused past Int32.max")
    func payloadTally() throws {
        var tally = PayloadTally()
        try tally.add(Int(Int32.max) - 1)
        try tally.add(1)
        #expect(tally.total == Int32.max)
        // `total += Int32(…)` trapped here, taking the interop server down after 2 GiB on one stream.
        do {
            try tally.add(1)
            Issue.record("a total above Int32.max was accepted")
        } catch let error as RPCError {
            #expect(error.code == .resourceExhausted)
        }
        #expect(tally.total == Int32.max, "a refused addition leaves the total alone")

        var huge = PayloadTally()
        #expect(throws: RPCError.self) { try huge.add(Int.max) }
        try huge.add(5)
        #expect(throws: RPCError.self) { try huge.add(Int.max) }
        #expect(throws: RPCError.self) { try huge.add(-1) }
        #expect(huge.total == 5)
    }

    @Test("response_size above the limit is RESOURCE_EXHAUSTED and a negative one INVALID_ARGUMENT, before allocating")
    func responseSize() async throws {
        try await withServerAndClient(services: [TestService(maxResponseBytes: 1024)]) { client, _ in
            let stub = TestClient(client: client)
            var request = Grpc_Testing_SimpleRequest()
            request.responseSize = 1024
            let atLimit = try await stub.unaryCall(request)
            #expect(atLimit.payload?.body.count == 1024)
            request.responseSize = 1025
            #expect(await code { _ = try await stub.unaryCall(request) } == .resourceExhausted)
            request.responseSize = Int32.max
            #expect(await code { _ = try await stub.unaryCall(request) } == .resourceExhausted)
            request.responseSize = -1
            #expect(await code { _ = try await stub.unaryCall(request) } == .invalidArgument)

            var streaming = Grpc_Testing_StreamingOutputCallRequest()
            var parameters = Grpc_Testing_ResponseParameters()
            parameters.size = Int32.max
            streaming.responseParameters = [parameters]
            let status = await code {
                _ = try await stub.streamingOutputCall(streaming) { responses in
                    for try await _ in responses {}
                }
            }
            #expect(status == .resourceExhausted)
        }
    }

    @Test("HalfDuplexCall buffers at most maxBufferedResponses responses before the client half-closes")
    func halfDuplexBound() async throws {
        try await withServerAndClient(services: [TestService(maxBufferedResponses: 3)]) { client, _ in
            let stub = TestClient(client: client)
            func call(sizes: [[Int32]]) async throws -> Int {
                try await stub.halfDuplexCall { call in
                    for group in sizes {
                        var request = Grpc_Testing_StreamingOutputCallRequest()
                        request.responseParameters = group.map {
                            var p = Grpc_Testing_ResponseParameters()
                            p.size = $0
                            return p
                        }
                        try await call.send(request)
                    }
                    try await call.finishSending()
                    var count = 0
                    for try await _ in call.responses { count += 1 }
                    return count
                }
            }
            let answered = try await call(sizes: [[1, 2], [3]])
            #expect(answered == 3)
            #expect(await code { _ = try await call(sizes: [[1, 2], [3, 4]]) } == .resourceExhausted)
        }
    }
}
