import Foundation
import SwitchboardServiceKit
import SwitchboardTestSupport
import Testing

/// The compose file is validated with `docker-compose config` by hand (no engine here); these checks keep the
/// properties that matter for safety from regressing without one.
@Suite("compose/ deployment files")
struct ComposeFileTests {
    private func read(_ path: String) throws -> String {
        try String(contentsOf: repositoryRoot.appendingPathComponent(path), encoding: .utf8)
    }

    @Test("every secret in the compose files is required (${VAR:?…}), never defaulted to a published value")
    func secretsHaveNoDefaults() throws {
        for file in ["compose/docker-compose.yml"] {
            let text = try read(file)
            // Every `${NAME…}` reference whose name says it is a secret.
            let references = text.components(separatedBy: "${").dropFirst().compactMap { rest -> (String, String)? in
                let name = String(rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" })
                guard name.contains("PASSWORD") || name.contains("SECRET") else { return nil }
                return (name, String(rest.dropFirst(name.count).prefix(2)))
            }
            #expect(!references.isEmpty, "\(file) names no secrets: has it moved?")
            for (name, operation) in references {
                #expect(operation == ":?", "\(file): ${\(name)\(operation)…} must be ${\(name):?message}")
            }
        }
    }

    @Test("every service in services/index has a container, a role password and a provisioning file; the image checks health itself")
    func everyServiceDeployed() throws {
        let compose = try read("compose/docker-compose.yml")
        let names = try read("services/index").split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }
            .map { String($0.split(separator: " ")[0]) }
        #expect(!names.isEmpty)
        for name in names {
            #expect(compose.contains("\n  \(name):\n"), "no container for \(name)")
            #expect(compose.contains("SERVICE: \(name)\n"))
            #expect(compose.contains("\(name.uppercased())_DB_PASSWORD: ${\(name.uppercased())_DB_PASSWORD:?"))
            #expect(FileManager.default.fileExists(atPath: repositoryRoot.appendingPathComponent("services/\(name)/provision.sql").path))
        }
        let provision = try read("compose/provision.sh")
        #expect(provision.contains("exit 1"), "a missing role password stops provisioning")
        let image = try read("services/Containerfile")
        #expect(image.contains(#"HEALTHCHECK --interval=10s --timeout=3s CMD ["/usr/local/bin/service", "healthcheck"]"#))
        #expect(!image.contains("/dev/tcp"))
    }

    @Test("the admin endpoint is reachable through its published port (it binds all addresses in the container)")
    func adminHostInContainer() throws {
        let text = try read("compose/docker-compose.yml")
        #expect(text.contains("SWITCHBOARD_ADMIN_HOST: 0.0.0.0"))
        #expect(text.contains("\"127.0.0.1:9461:9461\""), "published on the host's loopback only")
    }
}
