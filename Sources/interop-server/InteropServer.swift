import ArgumentParser
import Logging
import SwitchboardBuiltins
import SwitchboardHTTP2
import SwitchboardInterop
import SwitchboardProtos
import SwitchboardRPC

/// Serves `grpc.testing.TestService` (plus health and reflection) so any language's gRPC interop client can be
/// pointed at Switchboard's RPC stack.
@main
struct InteropServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interop-server",
        abstract: "gRPC interop test server (grpc.testing.TestService) on Switchboard's RPC stack.")

    @Option(help: "Port to listen on.")
    var port: Int = 50051

    @Option(help: "Address to bind.")
    var host: String = "127.0.0.1"

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let health = HealthService(services: [Grpc_Testing_TestService.serviceName])
        let services: [any RPCService] = [TestService()]
            + BuiltinServices.make(health: health, applicationServices: [Grpc_Testing_TestService.serviceName])
        let server = GRPCServer(configuration: ServerConfiguration(host: host, port: port), services: services)
        try await server.run()
    }
}
