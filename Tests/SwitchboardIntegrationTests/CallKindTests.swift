import NIOCore
import SwitchboardHTTP2
import SwitchboardInterop
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardTestSupport
import Testing

private typealias TestClient = Grpc_Testing_TestService_Client

private func payload(_ size: Int) -> Grpc_Testing_Payload {
    var p = Grpc_Testing_Payload()
    p.body = [UInt8](repeating: 0, count: size)
    return p
}

private func parameters(_ sizes: [Int32], intervalUs: Int32 = 0) -> [Grpc_Testing_ResponseParameters] {
    sizes.map {
        var p = Grpc_Testing_ResponseParameters()
        p.size = $0
        p.intervalUs = intervalUs
        return p
    }
}

@Suite("Every call kind over HTTP/2 loopback with the Swift client")
struct CallKindTests {
    @Test("unary, including a message close to the 4 MiB limit")
    func unary() async throws {
        try await withServerAndClient(services: [TestService()]) { client, _ in
            let stub = TestClient(client: client)
            _ = try await stub.emptyCall(Grpc_Testing_Empty())
            var request = Grpc_Testing_SimpleRequest()
            request.responseSize = 314_159
            request.payload = payload(271_828)
            #expect(try await stub.unaryCall(request).payload?.body.count == 314_159)
            request.responseSize = 4 * 1024 * 1024 - 64
            request.payload = payload(4 * 1024 * 1024 - 64)
            #expect(try await stub.unaryCall(request).payload?.body.count == 4 * 1024 * 1024 - 64)
        }
    }

    @Test("a request above the server's limit is RESOURCE_EXHAUSTED and the connection keeps working")
    func tooLarge() async throws {
        try await withServerAndClient(services: [TestService()]) { client, _ in
            let stub = TestClient(client: client)
            var request = Grpc_Testing_SimpleRequest()
            request.payload = payload(5 * 1024 * 1024)
            await #expect(throws: RPCError.self) {
                do { _ = try await stub.unaryCall(request) } catch let error as RPCError {
                    #expect(error.code == .resourceExhausted)
                    throw error
                }
            }
            _ = try await stub.emptyCall(Grpc_Testing_Empty())
        }
    }

    @Test("client streaming aggregates every request")
    func clientStreaming() async throws {
        try await withServerAndClient(services: [TestService()]) { client, _ in
            let response = try await TestClient(client: client).streamingInputCall { call in
                for size in [27182, 8, 1828, 45904] {
                    var r = Grpc_Testing_StreamingInputCallRequest()
                    r.payload = payload(size)
                    try await call.send(r)
                }
            }
            #expect(response.message.aggregatedPayloadSize == 74922)
        }
    }

    @Test("server streaming delivers the prescribed sizes in order")
    func serverStreaming() async throws {
        try await withServerAndClient(services: [TestService()]) { client, _ in
            var request = Grpc_Testing_StreamingOutputCallRequest()
            request.responseParameters = parameters([31415, 9, 2653, 58979])
            let sizes = try await TestClient(client: client).streamingOutputCall(request) { responses in
                var sizes: [Int] = []
                for try await r in responses { sizes.append(r.payload?.body.count ?? -1) }
                return sizes
            }
            #expect(sizes == [31415, 9, 2653, 58979])
        }
    }

    @Test("bidirectional ping-pong interleaves requests and responses")
    func pingPong() async throws {
        try await withServerAndClient(services: [TestService()]) { client, _ in
            let sizes = try await TestClient(client: client).fullDuplexCall { call in
                var iterator = call.responses.makeAsyncIterator()
                var sizes: [Int] = []
                for (responseSize, requestSize) in [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)] {
                    var r = Grpc_Testing_StreamingOutputCallRequest()
                    r.responseParameters = parameters([Int32(responseSize)])
                    r.payload = payload(requestSize)
                    try await call.send(r)
                    sizes.append(try await iterator.next()?.payload?.body.count ?? -1)
                }
                try await call.finishSending()
                #expect(try await iterator.next() == nil)
                return sizes
            }
            #expect(sizes == [31415, 9, 2653, 58979])
        }
    }

    @Test("an empty bidirectional stream ends with OK and no messages")
    func emptyStream() async throws {
        try await withServerAndClient(services: [TestService()]) { client, _ in
            let count = try await TestClient(client: client).fullDuplexCall { call in
                try await call.finishSending()
                var count = 0
                for try await _ in call.responses { count += 1 }
                return count
            }
            #expect(count == 0)
        }
    }

    @Test("metadata is echoed in headers and trailers, including binary values")
    func metadataEcho() async throws {
        try await withServerAndClient(services: [TestService()]) { client, _ in
            var options = CallOptions()
            options.metadata.addString("test_initial_metadata_value", forKey: "x-grpc-test-echo-initial")
            options.metadata.addBinary([0xAB, 0xAB, 0xAB], forKey: "x-grpc-test-echo-trailing-bin")
            let response: ClientResponse<Grpc_Testing_SimpleResponse> = try await client.unaryWithMetadata(
                Grpc_Testing_TestService.Method.unaryCall, Grpc_Testing_SimpleRequest(), options: options)
            #expect(response.initialMetadata.firstString("x-grpc-test-echo-initial") == "test_initial_metadata_value")
            #expect(response.trailingMetadata[binaryValues: "x-grpc-test-echo-trailing-bin"] == [[0xAB, 0xAB, 0xAB]])
        }
    }

    @Test("status codes and Unicode messages reach the client intact")
    func statusMessages() async throws {
        try await withServerAndClient(services: [TestService()]) { client, _ in
            let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
            var request = Grpc_Testing_SimpleRequest()
            var status = Grpc_Testing_EchoStatus()
            status.code = 2
            status.message = message
            request.responseStatus = status
            do {
                _ = try await TestClient(client: client).unaryCall(request)
                Issue.record("expected an error")
            } catch let error as RPCError {
                #expect(error.code == .unknown)
                #expect(error.message == message)
            }
        }
    }

    @Test("unknown methods and services are UNIMPLEMENTED")
    func unimplemented() async throws {
        try await withServerAndClient(services: [TestService()]) { client, _ in
            do {
                _ = try await Grpc_Testing_UnimplementedService_Client(client: client).unimplementedCall(Grpc_Testing_Empty())
                Issue.record("expected UNIMPLEMENTED")
            } catch let error as RPCError {
                #expect(error.code == .unimplemented)
                #expect(error.message.contains("grpc.testing.UnimplementedService"))
            }
        }
    }

    @Test("gzip in both directions, and the server checks expect_compressed")
    func compression() async throws {
        try await withServerAndClient(services: [TestService()]) { client, _ in
            let stub = TestClient(client: client)
            var request = Grpc_Testing_SimpleRequest()
            request.responseSize = 100_000
            request.payload = payload(100_000)
            var expect = Grpc_Testing_BoolValue()
            expect.value = true
            request.expectCompressed = expect
            var compressResponse = Grpc_Testing_BoolValue()
            compressResponse.value = true
            request.responseCompressed = compressResponse
            #expect(try await stub.unaryCall(request, options: CallOptions(compressRequests: true)).payload?.body.count == 100_000)
            do {
                _ = try await stub.unaryCall(request)
                Issue.record("an uncompressed request was accepted as compressed")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument)
            }
        }
    }

    @Test("a request message that does not decode is INTERNAL naming the type, for unary and streaming calls alike")
    func undecodableRequest() async throws {
        try await withServerAndClient(services: [TestService()]) { client, _ in
            // Field 1 (response_type) as a length-delimited field of 5 bytes with only 1 present: malformed.
            let garbled = ByteBuffer(bytes: [0x0A, 0x05, 0x61])
            for method in [Grpc_Testing_TestService.Method.unaryCall, Grpc_Testing_TestService.Method.fullDuplexCall] {
                let call = try await client.transport.startCall(method, options: CallOptions())
                try await call.send(garbled)
                try await call.finishSending()
                let (status, _) = try await call.trailers()
                #expect(status.code == .internal, "\(method): \(status)")
                let type = method.kind == .unary ? "grpc.testing.SimpleRequest" : "grpc.testing.StreamingOutputCallRequest"
                #expect(status.message.contains(type), "\(method): \(status)")
            }
        }
    }
}
