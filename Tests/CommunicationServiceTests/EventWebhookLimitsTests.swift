import CommunicationService
import Foundation
import NIOCore
import NIOPosix
import SwitchboardServiceKitTestSupport
import Synchronization
import Testing

/// The provider-events webhook faces the internet: every connection it accepts is bounded.
@Suite("Communication service: the events webhook's connection limits", .serialized)
final class EventWebhookLimitsTests {
    let harness: CommunicationHarness
    init() async throws { harness = try await CommunicationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    /// Collects what the server sends until it closes.
    private final class Collector: ChannelInboundHandler, @unchecked Sendable {
        // @unchecked: touched on the channel's event loop only, read after the channel closed.
        typealias InboundIn = ByteBuffer
        var text = ""
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            text += buffer.readString(length: buffer.readableBytes) ?? ""
        }
    }

    private func connect(_ port: Int) async throws -> (any NIOCore.Channel, Collector) {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { $0.pipeline.addHandler(collector) }
            .connect(host: "127.0.0.1", port: port).get()
        return (channel, collector)
    }

    private func send(_ text: String, on channel: any NIOCore.Channel) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(string: text)).get()
    }

    /// Whether the server closed the connection within `seconds`.
    private func closes(_ channel: any NIOCore.Channel, within seconds: Double) async -> Bool {
        let closed = Atomic<Bool>(false)
        channel.closeFuture.whenComplete { _ in closed.store(true, ordering: .relaxed) }
        for _ in 0..<Int(seconds * 50) {
            if closed.load(ordering: .relaxed) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return closed.load(ordering: .relaxed)
    }

    /// Waits (up to 5 s) until the server has no connection open.
    private func settled(_ server: ProviderEventServer) async throws {
        for _ in 0..<1500 where server.openConnections > 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.openConnections == 0)
    }

    @Test("one request per connection (pipelined ones are ignored), a deadline for a slow sender, a cap on open connections")
    func limits() async throws {
        let server = try await ProviderEventServer.bind(
            host: "127.0.0.1", port: 0, secret: Array(String(repeating: "s", count: 32).utf8),
            store: PostgresProviderEventStore(pool: harness.pool), logger: .init(label: "events"), maxConnections: 2,
            requestDeadline: .seconds(6))
        let serving = Task { try await server.run() }
        defer { serving.cancel() }

        // Three requests in one write: one answer, then the connection closes.
        let request = "POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-Provider-Signature: sha256=00\r\n\r\n{}"
        let (pipelined, answers) = try await connect(server.port)
        try await send(request + request + request, on: pipelined)
        #expect(await closes(pipelined, within: 5))
        #expect(answers.text.components(separatedBy: "HTTP/1.1 ").count - 1 == 1, "\(answers.text)")
        #expect(answers.text.hasPrefix("HTTP/1.1 401"))
        // The server counts a connection until its own close completes, which may follow the client's view of it.
        try await settled(server)

        // A sender that never finishes its headers is closed at the deadline (6 s: the steps until the check below took
        // longer than the former 1.5 s on a loaded host).
        let (slow, _) = try await connect(server.port)
        try await send("POST /events HTTP/1.1\r\nHost: x\r\n", on: slow)
        // Two open connections fill the cap: a third is closed at once, while the second still waits.
        let (idle, _) = try await connect(server.port)
        for _ in 0..<1500 where server.openConnections < 2 { try await Task.sleep(for: .milliseconds(20)) }
        let (third, _) = try await connect(server.port)
        #expect(await closes(third, within: 1))
        #expect(slow.isActive && idle.isActive)
        #expect(await closes(slow, within: 15))
        #expect(await closes(idle, within: 15))
        try await settled(server)
        // Below the cap again: a new connection is served.
        let (later, answer) = try await connect(server.port)
        try await send(request, on: later)
        #expect(await closes(later, within: 5))
        #expect(answer.text.hasPrefix("HTTP/1.1 401"))
    }
}
