// A unary echo through the full Switchboard stack (typed messages via protoc-c, an interceptor, an async handler),
// for Benchmarks/run.sh. Usage: echo-server PORT
import Logging
import SwitchboardHTTP2
import SwitchboardProtos
import SwitchboardRPC

/// Echoes the request payload back in the response.
struct EchoService: RPCService {
    func registerMethods(with router: inout RPCRouter) {
        router.registerUnary(Grpc_Testing_TestService.Method.unaryCall) {
            (request: Grpc_Testing_SimpleRequest, _: ServerContext) -> Grpc_Testing_SimpleResponse in
            var response = Grpc_Testing_SimpleResponse()
            response.payload = request.payload
            return response
        }
    }
}

/// Passes every call through, so the benchmark pays for an interceptor as a real service does.
struct PassThroughInterceptor: ServerInterceptor {
    func intercept<Result: Sendable>(
        context: ServerContext, next: @Sendable (ServerContext) async throws -> Result
    ) async throws -> Result {
        try await next(context)
    }
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .warning
    return handler
}
let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 50061 : 50061
let server = GRPCServer(
    configuration: ServerConfiguration(host: "127.0.0.1", port: port), services: [EchoService()],
    interceptors: [PassThroughInterceptor()])
try await server.run()
