import AnalyticsService
import CollaborationService
import CommunicationService
import ContactsService
import Foundation
import Logging
import NIOCore
import NIOPosix
import OrganizationService
import ServiceLifecycle
import SwitchboardGateway
import SwitchboardRuntime
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport

/// The four services in-process on fresh databases and the gateway in front of them, all over real sockets; requests
/// go through `curl`, a stock HTTP client.
final class GatewayHarness: Sendable {
    let services: [String: ServiceHarness]
    let server: GatewayServer
    let gateway: Gateway
    let port: Int
    private let task: Task<Void, any Error>

    /// The four services, started once for every gateway test (each test uses its own tenants).
    private static let shared = Task { () throws -> [String: ServiceHarness] in
        let contacts = try await ServiceHarness.start(ContactsService.description)
        // Organization knows contacts from the contacts feed (a membership needs the contact), as in production.
        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-org-feed-\(UUID())").path
        try (try await ServiceHarness.serviceToken("organization")).write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let organization = try await ServiceHarness.start(
            OrganizationService.description(pageBytes: 1 << 20, contactsFeed: .init(host: "127.0.0.1", port: contacts.port, tokenFile: tokenFile)))
        let communication = try await ServiceHarness.start(CommunicationService.description)
        let collaboration = try await ServiceHarness.start(CollaborationService.description)
        // Analytics follows the four feeds, so the overview's metrics and timeline have facts.
        let token = ServiceTokenSource.selfSigned(service: "analytics", hs256Secret: testSecret, issuer: nil, audience: nil)
        let feeds = [
            (FeedSource.contacts, contacts), (.organization, organization), (.communication, communication), (.collaboration, collaboration),
        ]
        .map { AnalyticsService.SourceFeed(source: $0.0, host: "127.0.0.1", port: $0.1.port, token: token) }
        return [
            "contacts": contacts, "organization": organization, "communication": communication, "collaboration": collaboration,
            "analytics": try await ServiceHarness.start(AnalyticsService.description(feeds: feeds)),
        ]
    }

    /// Starts a gateway in front of the shared services; `targets` overrides a service's addresses (a dead or silent
    /// port for failure tests).
    /// `headerTimeout` and `shutdownGrace` are the server's; `serviceGroup` runs it in a `ServiceGroup` so a test can
    /// shut it down gracefully (``shutDownGracefully()``).
    static func start(
        targets: [String: String] = [:], environment: [String: String] = [:], idleTimeout: Duration = .seconds(300),
        headerTimeout: Duration = .seconds(10), writeStallTimeout: Duration = .seconds(30), shutdownGrace: Duration = .seconds(20),
        serviceGroup: Bool = false
    ) async throws -> GatewayHarness {
        let services = try await shared.value
        var env = environment
        for (name, _) in GatewayConfiguration.services {
            let variable = "SWITCHBOARD_GATEWAY_\(name.uppercased())_TARGETS"
            if let target = targets[name] {
                env[variable] = target
            } else if let service = services[name] {
                env[variable] = "127.0.0.1:\(service.port)"
            } else if env[variable] == nil {
                env[variable] = ""
            }
        }
        let configuration = try GatewayConfiguration.load(env)
        let runtime = try RuntimeConfiguration.load(service: .gateway, ["SWITCHBOARD_JWT_HS256_SECRET": testSecret])
        let gateway = try Gateway(
            configuration: configuration, verifier: try await TokenVerifier.make(from: runtime), logger: Logger(label: "test.gateway"))
        let server = GatewayServer(
            gateway: gateway, host: "127.0.0.1", port: 0, maxConnections: 256, idleTimeout: idleTimeout, headerTimeout: headerTimeout,
            writeStallTimeout: writeStallTimeout, shutdownGrace: shutdownGrace)
        let group =
            serviceGroup
            ? ServiceGroup(configuration: .init(services: [.init(service: server)], logger: Logger(label: "test.gateway.group"))) : nil
        let task = Task {
            if let group { try await group.run() } else { try await server.run() }
        }
        let port = try await server.listeningAddress().port ?? 0
        return GatewayHarness(services: services, server: server, gateway: gateway, port: port, task: task, group: group)
    }

    private let group: ServiceGroup?

    private init(
        services: [String: ServiceHarness], server: GatewayServer, gateway: Gateway, port: Int, task: Task<Void, any Error>, group: ServiceGroup?
    ) {
        self.services = services
        self.server = server
        self.gateway = gateway
        self.port = port
        self.task = task
        self.group = group
    }

    /// Begins graceful shutdown (a harness started with `serviceGroup: true`) and waits until the server has stopped.
    func shutDownGracefully() async throws {
        await group?.triggerGracefulShutdown()
        _ = try await task.value
    }

    /// Stops the gateway (the shared services keep running for the other tests).
    func stop() async {
        task.cancel()
        _ = await task.result
        await gateway.close()
    }

    /// A TCP server on loopback that accepts connections and never answers (an upstream that hangs); close it after.
    /// - Parameter accepted: counts the connections it accepts (a gateway connects when a call first needs it).
    static func silentServer(accepted: Counter? = nil) async throws -> any NIOCore.Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { _ in
                accepted?.value.add(1, ordering: .relaxed)
                return MultiThreadedEventLoopGroup.singleton.any().makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    static func token(tenant: String, user: String = "user-1", roles: [Role] = [.user]) async throws -> String {
        try await ServiceHarness.token(tenant: tenant, user: user, roles: roles)
    }

    /// What `curl` got.
    struct Response: Sendable {
        var status: Int
        var headers: [String: String]
        var body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        /// The NDJSON lines of a stream, each decoded.
        var lines: [[String: Any]] {
            body.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        }
    }

    /// Sends a request with `curl`; `bytes`, when given, is the body as sent (text that is not UTF-8 included).
    func request(
        _ method: String, _ path: String, body: String? = nil, bytes: [UInt8]? = nil, token: String? = nil, headers: [String: String] = [:],
        maxTime: Double = 30
    ) async throws -> Response {
        try await Self.curl(method, "http://127.0.0.1:\(port)\(path)", body: body, bytes: bytes, token: token, headers: headers, maxTime: maxTime)
    }

    static func curl(
        _ method: String, _ url: String, body: String? = nil, bytes: [UInt8]? = nil, token: String? = nil, headers: [String: String] = [:],
        maxTime: Double = 30
    ) async throws -> Response {
        var arguments = ["-sS", "-i", "-N", "--max-time", "\(maxTime)", "-X", method, url]
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        var bodyFile: URL?
        if let content = bytes ?? body.map({ Array($0.utf8) }) {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("gw-body-\(UUID().uuidString)")
            try Data(content).write(to: file)
            bodyFile = file
            arguments += ["-H", "Content-Type: application/json", "--data-binary", "@\(file.path)"]
        }
        defer { if let bodyFile { try? FileManager.default.removeItem(at: bodyFile) } }
        let output = try await run("/usr/bin/curl", arguments)
        // Headers, a blank line, the body; a 100 Continue comes first when curl sends a large body.
        var text = output
        while text.hasPrefix("HTTP/1.1 100") {
            guard let end = text.range(of: "\r\n\r\n") else { break }
            text = String(text[end.upperBound...])
        }
        guard let split = text.range(of: "\r\n\r\n") else { throw CurlError(output: output) }
        let headLines = text[..<split.lowerBound].split(separator: "\r\n")
        guard let statusLine = headLines.first, let status = Int(statusLine.split(separator: " ")[1]) else { throw CurlError(output: output) }
        var headers: [String: String] = [:]
        for line in headLines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Response(status: status, headers: headers, body: String(text[split.upperBound...]))
    }

    struct CurlError: Error, CustomStringConvertible {
        var output: String
        var description: String { "unexpected curl output: \(output.prefix(500))" }
    }

    /// Runs a program and returns its standard output, waiting on a thread of its own (`waitUntilExit` blocks, and
    /// a long stream's curl would hold a thread of the cooperative pool, or of Dispatch's global queue, whose width is
    /// the number of cores).
    static func run(_ program: String, _ arguments: [String]) async throws -> String {
        try await onOwnThread {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
    }
}
