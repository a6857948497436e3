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

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain: serve TLS (ALPN h2) instead of plaintext.")
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    func validate() throws {
        // NIO converts the port to a 16-bit value and traps on anything wider.
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535 (got \(port))") }
        if (tlsCertificate == nil) != (tlsKey == nil) {
            throw ValidationError("--tls-cert and --tls-key must be given together")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let health = HealthService(services: [Grpc_Testing_TestService.serviceName])
        var configuration = ServerConfiguration(host: host, port: port)
        let services: [any RPCService] = [TestService(maxResponseBytes: configuration.maxSendMessageSize)]
            + BuiltinServices.make(health: health, applicationServices: [Grpc_Testing_TestService.serviceName])
        if let tlsCertificate, let tlsKey {
            configuration.tls = ServerTLS(certificateChainPath: tlsCertificate, privateKeyPath: tlsKey)
        }
        let server = GRPCServer(configuration: configuration, services: services)
        try await server.run()
    }
}
