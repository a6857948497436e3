import SwitchboardProtos
import SwitchboardRPC
import Testing

@Suite("Router and generated descriptors")
struct RouterTests {
    private struct Health: Grpc_Health_V1_Health_ServiceProtocol {
        func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
            Grpc_Health_V1_HealthCheckResponse()
        }
        func watch(
            request: Grpc_Health_V1_HealthCheckRequest, responses: RPCWriter<Grpc_Health_V1_HealthCheckResponse>, context: ServerContext
        ) async throws {}
    }

    @Test("a generated service registers every method under its HTTP/2 path with the right kind")
    func registration() {
        var router = RPCRouter()
        router.register(Health())
        #expect(router["/grpc.health.v1.Health/Check"]?.method.kind == .unary)
        #expect(router["/grpc.health.v1.Health/Watch"]?.method.kind == .serverStreaming)
        #expect(router["/grpc.health.v1.Health/Nope"] == nil)
        #expect(router.serviceNames == ["grpc.health.v1.Health"])
        #expect(Grpc_Testing_TestService.Method.fullDuplexCall.kind == .bidirectionalStreaming)
        #expect(Grpc_Testing_TestService.Method.streamingInputCall.kind == .clientStreaming)
    }

    @Test("the embedded descriptor registry covers every proto with its symbols")
    func registry() {
        let names = Set(SwitchboardProtoFiles.all.map(\.name))
        #expect(names.contains("grpc/testing/test.proto"))
        #expect(names.contains("google/protobuf/timestamp.proto"))
        let test = SwitchboardProtoFiles.all.first { $0.name == "grpc/testing/test.proto" }!
        #expect(test.symbols.contains("grpc.testing.TestService.UnaryCall"))
        #expect(test.dependencies == ["grpc/testing/empty.proto", "grpc/testing/messages.proto"])
        #expect(SwitchboardProtoFiles.all.allSatisfy { !$0.serializedDescriptor.isEmpty })
    }

    @Test("enums keep values they do not know")
    func unknownEnum() throws {
        var message = Switchboard_Testing_V1_Everything()
        message.fEnum = .init(protoValue: 99)
        message.rEnum = [.red, .init(protoValue: -5)]
        let decoded = try Switchboard_Testing_V1_Everything(serializedBytes: message.serializedBytes())
        #expect(decoded.fEnum == .unrecognized(99))
        #expect(decoded.rEnum == [.red, .unrecognized(-5)])
    }
}
