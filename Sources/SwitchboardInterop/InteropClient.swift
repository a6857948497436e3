import SwitchboardProtos
import SwitchboardRPC

/// gRPC's standard interop test cases, client side (grpc/grpc `doc/interop-test-descriptions.md`), run with our
/// ``RPCClient`` against any server implementing `grpc.testing.TestService`: how our client is checked against other
/// implementations (the test command runs them against Python grpcio's server, plaintext and TLS).
public struct InteropClient: Sendable {
    /// A case that did not behave as the description requires.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public var description: String
    }

    /// Every case, in the order the descriptions list them.
    public static let cases = [
        "empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong", "empty_stream", "custom_metadata",
        "status_code_and_message", "special_status_message", "unimplemented_method", "unimplemented_service", "cancel_after_begin",
        "cancel_after_first_response", "timeout_on_sleeping_server",
    ]

    let client: RPCClient
    private var stub: Grpc_Testing_TestService_Client { Grpc_Testing_TestService_Client(client: client) }

    /// Creates the runner.
    /// - Parameter client: the client calls go through.
    public init(client: RPCClient) { self.client = client }

    private func check(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw Failure(description: message()) }
    }

    private func payload(_ size: Int) -> Grpc_Testing_Payload {
        var payload = Grpc_Testing_Payload()
        payload.body = [UInt8](repeating: 0, count: size)
        return payload
    }

    private func expectError(_ code: StatusCode, message: String? = nil, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as RPCError {
            try check(error.code == code, "expected \(code), got \(error.code): \(error.message)")
            if let message {
                try check(error.message == message, "expected message \(message.debugDescription), got \(error.message.debugDescription)")
            }
            return
        }
        throw Failure(description: "expected \(code), the call succeeded")
    }

    /// Runs one case.
    /// - Parameter name: a name from ``cases``.
    /// - Throws: ``Failure`` or the call's error.
    public func run(_ name: String) async throws {
        switch name {
        case "empty_unary":
            _ = try await stub.emptyCall(Grpc_Testing_Empty())
        case "large_unary":
            var request = Grpc_Testing_SimpleRequest()
            request.responseSize = 314_159
            request.payload = payload(271_828)
            let response = try await stub.unaryCall(request)
            try check(response.payload?.body.count == 314_159, "large_unary: wrong response size")
        case "client_streaming":
            let sizes = [27_182, 8, 1828, 45_904]
            let response = try await stub.streamingInputCall { call in
                for size in sizes {
                    var request = Grpc_Testing_StreamingInputCallRequest()
                    request.payload = payload(size)
                    try await call.send(request)
                }
            }
            try check(response.message.aggregatedPayloadSize == 74_922, "client_streaming: aggregated \(response.message.aggregatedPayloadSize)")
        case "server_streaming":
            let sizes: [Int32] = [31_415, 9, 2653, 58_979]
            var request = Grpc_Testing_StreamingOutputCallRequest()
            request.responseParameters = sizes.map {
                var p = Grpc_Testing_ResponseParameters()
                p.size = $0
                return p
            }
            let got = try await stub.streamingOutputCall(request) { responses in
                var got: [Int] = []
                for try await response in responses { got.append(response.payload?.body.count ?? 0) }
                return got
            }
            try check(got == sizes.map(Int.init), "server_streaming: got sizes \(got)")
        case "ping_pong":
            let pairs: [(Int32, Int)] = [(31_415, 27_182), (9, 8), (2653, 1828), (58_979, 45_904)]
            try await stub.fullDuplexCall { call in
                var iterator = call.responses.makeAsyncIterator()
                for (responseSize, requestSize) in pairs {
                    var request = Grpc_Testing_StreamingOutputCallRequest()
                    var parameters = Grpc_Testing_ResponseParameters()
                    parameters.size = responseSize
                    request.responseParameters = [parameters]
                    request.payload = payload(requestSize)
                    try await call.send(request)
                    let response = try await iterator.next()
                    try check(response?.payload?.body.count == Int(responseSize), "ping_pong: wrong response size")
                }
                try await call.finishSending()
                try check(try await iterator.next() == nil, "ping_pong: a response after the last")
            }
        case "empty_stream":
            try await stub.fullDuplexCall { call in
                try await call.finishSending()
                for try await _ in call.responses { throw Failure(description: "empty_stream: a response") }
            }
        case "custom_metadata":
            var options = CallOptions()
            options.metadata.addString("test_initial_metadata_value", forKey: "x-grpc-test-echo-initial")
            options.metadata.addBinary([0xab, 0xab, 0xab], forKey: "x-grpc-test-echo-trailing-bin")
            var request = Grpc_Testing_SimpleRequest()
            request.responseSize = 314_159
            request.payload = payload(271_828)
            let response: ClientResponse<Grpc_Testing_SimpleResponse> = try await client.unaryWithMetadata(
                Grpc_Testing_TestService.Method.unaryCall, request, options: options)
            try check(response.initialMetadata.firstString("x-grpc-test-echo-initial") == "test_initial_metadata_value", "custom_metadata: initial")
            try check(
                response.trailingMetadata[binaryValues: "x-grpc-test-echo-trailing-bin"].first == [0xab, 0xab, 0xab], "custom_metadata: trailing")
            let (initial, trailing) = try await stub.fullDuplexCall(options: options) { call in
                var r = Grpc_Testing_StreamingOutputCallRequest()
                var p = Grpc_Testing_ResponseParameters()
                p.size = 314_159
                r.responseParameters = [p]
                r.payload = payload(271_828)
                try await call.send(r)
                try await call.finishSending()
                for try await _ in call.responses {}
                return (try await call.initialMetadata(), try await call.trailingMetadata())
            }
            try check(initial.firstString("x-grpc-test-echo-initial") == "test_initial_metadata_value", "custom_metadata: stream initial")
            try check(trailing[binaryValues: "x-grpc-test-echo-trailing-bin"].first == [0xab, 0xab, 0xab], "custom_metadata: stream trailing")
        case "status_code_and_message", "special_status_message":
            let message =
                name == "special_status_message" ? "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n" : "test status message"
            var status = Grpc_Testing_EchoStatus()
            status.code = 2
            status.message = message
            var request = Grpc_Testing_SimpleRequest()
            request.responseStatus = status
            try await expectError(.unknown, message: message) { _ = try await stub.unaryCall(request) }
            if name == "status_code_and_message" {
                var failing = Grpc_Testing_StreamingOutputCallRequest()
                failing.responseStatus = status
                let streamRequest = failing
                try await expectError(.unknown, message: message) {
                    try await stub.fullDuplexCall { call in
                        try await call.send(streamRequest)
                        try await call.finishSending()
                        for try await _ in call.responses {}
                    }
                }
            }
        case "unimplemented_method":
            try await expectError(.unimplemented) { _ = try await stub.unimplementedCall(Grpc_Testing_Empty()) }
        case "unimplemented_service":
            let unimplemented = Grpc_Testing_UnimplementedService_Client(client: client)
            try await expectError(.unimplemented) { _ = try await unimplemented.unimplementedCall(Grpc_Testing_Empty()) }
        case "cancel_after_begin":
            try await expectError(.cancelled) {
                _ = try await stub.streamingInputCall { call in call.raw.cancel() }
            }
        case "cancel_after_first_response":
            try await expectError(.cancelled) {
                try await stub.fullDuplexCall { call in
                    var r = Grpc_Testing_StreamingOutputCallRequest()
                    var p = Grpc_Testing_ResponseParameters()
                    p.size = 31_415
                    r.responseParameters = [p]
                    r.payload = payload(27_182)
                    try await call.send(r)
                    var iterator = call.responses.makeAsyncIterator()
                    _ = try await iterator.next()
                    call.raw.cancel()
                    _ = try await iterator.next()
                }
            }
        case "timeout_on_sleeping_server":
            try await expectError(.deadlineExceeded) {
                try await stub.fullDuplexCall(options: CallOptions(timeout: .milliseconds(1))) { call in
                    var r = Grpc_Testing_StreamingOutputCallRequest()
                    r.payload = payload(27_182)
                    try await call.send(r)
                    for try await _ in call.responses {}
                }
            }
        default:
            throw Failure(description: "no interop case named \(name)")
        }
    }
}
