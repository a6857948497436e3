import Foundation

/// A self-signed certificate and its key, made with openssl for this test run (for `localhost` / `127.0.0.1` unless
/// told otherwise): the server's certificate and the client's only trust root at once.
public struct TestCertificate: Sendable {
    /// The folder holding `cert.pem` and `key.pem`.
    public let directory: URL
    /// The certificate (PEM).
    public var certificate: String { directory.appendingPathComponent("cert.pem").path }
    /// The private key (PEM, unencrypted).
    public var key: String { directory.appendingPathComponent("key.pem").path }

    /// Why openssl made no certificate.
    public struct Failure: Error, CustomStringConvertible {
        /// openssl's output.
        public let description: String
    }

    /// Makes the certificate.
    /// - Parameter subjectAlternativeNames: the names and addresses it is valid for, as openssl writes them.
    /// - Throws: ``Failure`` when openssl fails.
    public init(subjectAlternativeNames: String = "DNS:localhost,IP:127.0.0.1") async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-tls-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let (status, output) = try await runProcess(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=\(subjectAlternativeNames)",
                "-keyout", directory.appendingPathComponent("key.pem").path,
                "-out", directory.appendingPathComponent("cert.pem").path,
            ])
        guard status == 0 else { throw Failure(description: "openssl failed: \(output)") }
    }
}
