import ArgumentParser
import SwitchboardHTTP2
import SwitchboardInterop
import SwitchboardRPC

/// `interop-client`: gRPC's interop test cases run by our client against any TestService server, as gRPC's own
/// interop clients are run (`--server_host`, `--server_port`, `--test_case`, `--use_tls`).
@main
struct InteropClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interop-client", abstract: "Runs gRPC's interop test cases against a grpc.testing.TestService server.")

    @Option(name: .customLong("server_host"), help: "The server's host.")
    var serverHost = "127.0.0.1"
    @Option(name: .customLong("server_port"), help: "The server's port.")
    var serverPort = 50051
    @Option(name: .customLong("test_case"), help: "A case, or all: \(InteropClient.cases.joined(separator: ", ")).")
    var testCase = "all"
    @Flag(name: .customLong("use_tls"), help: "Connect over TLS (ALPN h2).")
    var useTLS = false
    @Option(name: .customLong("ca_file"), help: "PEM roots to trust with --use_tls (default: the system's).")
    var caFile: String?
    @Option(name: .customLong("server_host_override"), help: "The name the server's certificate must carry.")
    var serverHostOverride: String?

    func run() async throws {
        var configuration = ClientConfiguration()
        if useTLS { configuration.tls = ClientTLS(trustRootsPath: caFile, serverHostname: serverHostOverride) }
        let channel = GRPCChannel(host: serverHost, port: serverPort, configuration: configuration)
        let runner = InteropClient(client: RPCClient(transport: channel))
        var failed: [String] = []
        for name in testCase == "all" ? InteropClient.cases : [testCase] {
            do {
                try await runner.run(name)
                print("PASS \(name)")
            } catch {
                print("FAIL \(name): \(error)")
                failed.append(name)
            }
        }
        await channel.close()
        if !failed.isEmpty { throw ExitCode(1) }
    }
}
