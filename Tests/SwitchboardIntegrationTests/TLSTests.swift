import Foundation
import SwitchboardHTTP2
import SwitchboardInterop
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardTestSupport
import Testing

@Suite("TLS with ALPN h2", .serialized)
struct TLSTests {
    @Test("the Swift client calls a TLS server, verifying its certificate")
    func swiftClient() async throws {
        let cert = try await TestCertificate()
        let running = try await startServer(services: [TestService()]) {
            $0.tls = ServerTLS(certificateChainPath: cert.certificate, privateKeyPath: cert.key)
        }
        var configuration = ClientConfiguration()
        configuration.tls = ClientTLS(trustRootsPath: cert.certificate, serverHostname: "localhost")
        let channel = running.channel(configuration: configuration)
        let stub = Grpc_Testing_TestService_Client(client: RPCClient(transport: channel))
        var request = Grpc_Testing_SimpleRequest()
        request.responseSize = 100_000
        #expect(try await stub.unaryCall(request).payload?.body.count == 100_000)
        await channel.close()

        // A client that does not trust the certificate cannot call.
        var untrusting = ClientConfiguration()
        untrusting.tls = ClientTLS(serverHostname: "localhost")
        untrusting.initialBackoff = .milliseconds(10)
        let refused = running.channel(configuration: untrusting)
        do {
            _ = try await Grpc_Testing_TestService_Client(client: RPCClient(transport: refused)).emptyCall(Grpc_Testing_Empty())
            Issue.record("an untrusted certificate was accepted")
        } catch let error as RPCError {
            #expect(error.code == .unavailable)
        }
        await refused.close()
        await running.stop()
    }

    @Test("grpcio connects over TLS and negotiates h2")
    func grpcioClient() async throws {
        let cert = try await TestCertificate()
        let running = try await startServer(services: [TestService()]) {
            $0.tls = ServerTLS(certificateChainPath: cert.certificate, privateKeyPath: cert.key)
        }
        let port = running.port
        for name in ["empty_unary", "large_unary", "ping_pong"] {
            let (status, output) = try await runProcess(
                pythonPath,
                [
                    repositoryRoot.appendingPathComponent("Tests/Interop/interop_client.py").path,
                    "--host", "localhost", "--port", String(port), "--test_case", name, "--tls_ca", cert.certificate,
                ],
                environment: ["SWITCHBOARD_INTEROP_STUBS": interopStubsPath])
            #expect(status == 0, "\(name) over TLS: \(output)")
        }
        await running.stop()
    }
}
