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

    @Option(help: "Seconds a connection has to send its preface, and each request its header block, before it is closed.")
    var headerTimeoutSeconds: Int = 10

    @Option(help: "Most client connections served at once.")
    var maxConnections: Int = 4096

    @Option(help: "Seconds without an open stream after which a connection is closed (0 disables).")
    var idleTimeoutSeconds: Int = 300

    func validate() throws {
        // NIO converts the port to a 16-bit value and traps on anything wider.
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535 (got \(port))") }
        guard (1...3600).contains(headerTimeoutSeconds) else { throw ValidationError("--header-timeout-seconds must be 1...3600") }
        guard (1...1_000_000).contains(maxConnections) else { throw ValidationError("--max-connections must be 1...1000000") }
        guard (0...86_400).contains(idleTimeoutSeconds) else { throw ValidationError("--idle-timeout-seconds must be 0...86400") }
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
        let services: [any RPCService] =
            [TestService(maxResponseBytes: configuration.maxSendMessageSize)]
            + BuiltinServices.make(health: health, applicationServices: [Grpc_Testing_TestService.serviceName])
        configuration.headerTimeout = .seconds(headerTimeoutSeconds)
        configuration.maxConnections = maxConnections
        configuration.idleTimeout = idleTimeoutSeconds == 0 ? nil : .seconds(idleTimeoutSeconds)
        if let tlsCertificate, let tlsKey {
            configuration.tls = ServerTLS(certificateChainPath: tlsCertificate, privateKeyPath: tlsKey)
        }
        let server = GRPCServer(configuration: configuration, services: services)
        try await server.run()
    }
}
