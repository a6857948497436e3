import Foundation
import NIOCore
import NIOPosix
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Synchronization
import Testing

/// What the gateway's HTTP/1.1 server does with clients that hold connections without using them, with bodies declared
/// too large, with HTTP/1.0, with many streams of one tenant, and at graceful shutdown: the bytes curl never sends.
@Suite("Gateway connections", .serialized)
struct GatewayConnectionTests {
    static func tenant() -> String { "gw-" + UUID().uuidString.prefix(8).lowercased() }

    @Test("a client that stops reading a response loses the connection after the write-stall timeout; one that reads keeps it")
    func writeStall() async throws {
        // Three seconds: a reading client in a test process that shares two loaded cores with hundreds of other tests
        // has been seen not to read for a second.
        let gw = try await GatewayHarness.start(writeStallTimeout: .seconds(3))
        defer { Task { await gw.stop() } }
        let size = try await gw.request("GET", "/v1/openapi.json").body.utf8.count
        // More than loopback's socket buffers can hold (the server's send buffer grows to a few MiB): 12 MiB of responses.
        let count = (12 << 20) / max(1, size) + 1
        let requests = String(repeating: "GET /v1/openapi.json HTTP/1.1\r\nHost: gateway\r\n\r\n", count: count)

        let stalled = try await RawClient.connect(port: gw.port, reading: false)
        try await stalled.send(requests)
        try await Task.sleep(for: .milliseconds(4500))
        // Reading now gets what the kernel buffered before the gateway gave up, then the end of the connection.
        stalled.startReading()
        #expect(try await eventually(timeout: .seconds(20)) { !stalled.isActive })
        #expect(stalled.responses < count, "\(stalled.responses) of \(count) responses")

        // The same requests, read as they come: every response arrives and the connection stays open. Against a gateway
        // whose timeout is 20 s: in a full run (hundreds of suites on two cores) the reading client, on the test
        // process's shared event loop, was once starved for more than 3 s and cut, which says nothing about the gateway.
        let patient = try await GatewayHarness.start(writeStallTimeout: .seconds(20))
        defer { Task { await patient.stop() } }
        let reader = try await RawClient.connect(port: patient.port)
        try await reader.send(requests)
        #expect(
            try await eventually(timeout: .seconds(60), every: .milliseconds(250)) { reader.responses == count }, "\(reader.responses) of \(count)")
        #expect(reader.isActive)
        reader.close()
    }

    @Test("half a request head, a body that stops, or silence loses the connection after the header timeout; a pause between requests does not")
    func slowClients() async throws {
        let gw = try await GatewayHarness.start(headerTimeout: .seconds(1))
        defer { Task { await gw.stop() } }
        let silent = try await RawClient.connect(port: gw.port)
        // Each sends as it connects (on the event loop): the header timeout counts from the connection's opening.
        let half = try await RawClient.connect(port: gw.port, sending: "GET /v1/openapi.json HTTP/1.1\r\nHost: gateway\r\n")
        let stalled = try await RawClient.connect(
            port: gw.port,
            sending: "POST /v1/contacts HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":")
        // The idle timeout is five minutes: only the header timeout closes these.
        for client in [silent, half, stalled] {
            #expect(try await eventually { !client.isActive })
            #expect(client.received.isEmpty, "\(client.received)")
        }

        // A keep-alive client that pauses longer than the header timeout between two requests keeps its connection.
        let client = try await RawClient.connect(port: gw.port, sending: "GET /no/such/route HTTP/1.1\r\nHost: gateway\r\n\r\n")
        #expect(try await eventually { client.responses == 1 })
        try await Task.sleep(for: .milliseconds(1500))
        #expect(client.isActive)
        try await client.send("GET /no/such/route HTTP/1.1\r\nHost: gateway\r\n\r\n")
        #expect(try await eventually { client.responses == 2 }, "\(client.received)")
        #expect(client.received.components(separatedBy: "HTTP/1.1 404").count == 3)
        client.close()
    }

    @Test("a body trickled below the minimum rate loses the connection about a header timeout after its head; one sent at the rate is answered")
    func trickledBody() async throws {
        // Five seconds of header timeout: the steady client's chunks must not come later than that on a loaded machine.
        let gw = try await GatewayHarness.start(environment: ["SWITCHBOARD_GATEWAY_MIN_BODY_RATE": "1000"], headerTimeout: .seconds(5))
        defer { Task { await gw.stop() } }
        // A byte every 200 ms (60 of them: 12 s): each read came well within the header timeout, which used to keep the
        // connection for as long as the client liked. Each byte buys a millisecond now.
        let trickler = try await RawClient.connect(
            port: gw.port, sending: "POST /no/such/route HTTP/1.1\r\nHost: gateway\r\nContent-Length: 60\r\n\r\n")
        let dripping = Task {
            for _ in 0..<60 {
                try await Task.sleep(for: .milliseconds(200))
                guard trickler.isActive else { return }
                try? await trickler.send("x")
            }
        }
        defer { dripping.cancel() }
        #expect(try await eventually(timeout: .seconds(11)) { !trickler.isActive }, "a trickled body kept its connection")
        #expect(trickler.received.isEmpty, "\(trickler.received)")

        // 4,000 bytes in chunks of 1,000 every 500 ms: 2,000 bytes a second, twice the rate.
        let steady = try await RawClient.connect(
            port: gw.port, sending: "POST /no/such/route HTTP/1.1\r\nHost: gateway\r\nContent-Length: 4000\r\n\r\n")
        for _ in 0..<4 {
            try await Task.sleep(for: .milliseconds(500))
            try await steady.send(String(repeating: "y", count: 1000))
        }
        #expect(try await eventually { steady.responses == 1 }, "\(steady.received)")
        #expect(steady.received.hasPrefix("HTTP/1.1 404"), "\(steady.received)")
        steady.close()
    }

    @Test("a body declared larger than the limit is refused with 413 before it is sent; HTTP/1.0 gets one response and a close")
    func declaredLengthAndHTTP10() async throws {
        let gw = try await GatewayHarness.start(environment: ["SWITCHBOARD_GATEWAY_MAX_BODY_BYTES": "4096"])
        defer { Task { await gw.stop() } }
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        let big = try await RawClient.connect(port: gw.port)
        // Only the head: the answer must not wait for a body that a client (curl with Expect: 100-continue) holds back.
        try await big.send(
            "POST /v1/contacts HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\n"
                + "Content-Length: 100000000\r\n\r\n")
        #expect(try await eventually { !big.isActive })
        #expect(big.received.hasPrefix("HTTP/1.1 413"), "\(big.received)")
        #expect(big.received.contains("larger than 4096 bytes"))

        // HTTP/1.0 has no chunked framing, so even a keep-alive request gets a close after its response.
        let old = try await RawClient.connect(port: gw.port)
        try await old.send("GET /no/such/route HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(try await eventually { !old.isActive })
        #expect(old.received.hasPrefix("HTTP/1.0 404"), "\(old.received)")
        #expect(old.received.lowercased().contains("connection: close"))
    }

    @Test("a chunked body is gathered across its chunks; one that grows past the limit is refused with 413 and a close")
    func chunkedBodies() async throws {
        let gw = try await GatewayHarness.start(environment: ["SWITCHBOARD_GATEWAY_MAX_BODY_BYTES": "4096"])
        defer { Task { await gw.stop() } }
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        let head =
            "POST /v1/contacts HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n"
        // The chunks of a chunked body, the last (empty) one included.
        func chunks(_ text: String, size: Int) -> [String] {
            let bytes = Array(text.utf8)
            return stride(from: 0, to: bytes.count, by: size).map { start in
                let part = bytes[start..<min(start + size, bytes.count)]
                return String(part.count, radix: 16) + "\r\n" + String(decoding: part, as: UTF8.self) + "\r\n"
            } + ["0\r\n\r\n"]
        }

        // A body in five-byte chunks, each sent in a write of its own: the contact is made from all of them, and the
        // connection stays open.
        let small = try await RawClient.connect(port: gw.port)
        try await small.send(head)
        for chunk in chunks(#"{"name": {"given": "Chunked", "family": "Body"}}"#, size: 5) { try await small.send(chunk) }
        #expect(try await eventually { small.responses == 1 }, "\(small.received)")
        #expect(small.received.hasPrefix("HTTP/1.1 200"), "\(small.received)")
        #expect(small.received.contains(#""given":"Chunked""#))
        #expect(small.isActive)
        small.close()

        // Past the limit without a declared length: refused once the body has ended, and the connection closes.
        let big = try await RawClient.connect(port: gw.port)
        try await big.send(head + chunks(String(repeating: "x", count: 6000), size: 2000).joined())
        #expect(try await eventually { !big.isActive })
        #expect(big.received.hasPrefix("HTTP/1.1 413"), "\(big.received)")
        #expect(big.received.contains("larger than 4096 bytes"))
        #expect(big.received.lowercased().contains("connection: close"))
    }

    @Test(
        "a request line with bytes outside ASCII is refused (400, JSON) before routing, a head past 80 KiB with 431; the Bearer scheme is taken in any case"
    )
    func requestLineBytes() async throws {
        let gw = try await GatewayHarness.start()
        defer { Task { await gw.stop() } }
        // The gateway reads a path, its query and the scheme on bytes: what it is given is ASCII (a URI percent-encodes
        // the rest), which the HTTP parser enforces.
        let marked = try await RawClient.connect(port: gw.port, sending: "GET /v1/openapi.json?\u{301}v=1 HTTP/1.1\r\nHost: gateway\r\n\r\n")
        #expect(try await eventually { !marked.isActive })
        #expect(marked.received.hasPrefix("HTTP/1.1 400"), "\(marked.received.prefix(200))")
        // As JSON, as every error of the gateway's.
        #expect(marked.received.lowercased().contains("content-type: application/json"), "\(marked.received.prefix(300))")
        #expect(marked.received.contains(#""code":3"#) && marked.received.contains("not valid HTTP/1.1"), "\(marked.received.prefix(300))")
        // A head past NIO's 80 KiB: 431, as JSON.
        let huge = try await RawClient.connect(
            port: gw.port, sending: "GET /v1/openapi.json HTTP/1.1\r\nHost: gateway\r\nX-Big: \(String(repeating: "b", count: 100_000))\r\n\r\n")
        #expect(try await eventually { !huge.isActive })
        #expect(huge.received.hasPrefix("HTTP/1.1 431"), "\(huge.received.prefix(200))")
        #expect(huge.received.contains("larger than 80 KiB"), "\(huge.received.prefix(300))")

        // The scheme's case does not matter: the call reaches the service, which does not know the contact.
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        let shouting = try await RawClient.connect(
            port: gw.port,
            sending: "GET /v1/contacts/\(UUID().uuidString.lowercased()) HTTP/1.1\r\nHost: gateway\r\nAuthorization: BEARER \(token)\r\n\r\n")
        #expect(try await eventually { shouting.responses == 1 }, "\(shouting.received)")
        #expect(shouting.received.hasPrefix("HTTP/1.1 404"), "\(shouting.received.prefix(200))")
        shouting.close()
    }

    @Test("one tenant holds at most its share of open streams (429); another tenant still opens them, and a closed one frees its place")
    func streamsPerTenant() async throws {
        let gw = try await GatewayHarness.start(environment: ["SWITCHBOARD_GATEWAY_MAX_STREAMS_PER_TENANT": "2"])
        defer { Task { await gw.stop() } }
        let tenantA = Self.tenant(), tokenA = try await GatewayHarness.token(tenant: tenantA)
        let tokenB = try await GatewayHarness.token(tenant: Self.tenant())
        func openWatch(_ token: String) async throws -> RawClient {
            let client = try await RawClient.connect(port: gw.port)
            try await client.send(
                "GET /v1/changes/contacts?fromSequence=0 HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer \(token)\r\ngrpc-timeout: 60S\r\n\r\n")
            #expect(try await eventually { client.received.hasPrefix("HTTP/1.1 200") }, "\(client.received)")
            return client
        }
        let first = try await openWatch(tokenA)
        let second = try await openWatch(tokenA)
        let third = try await gw.request("GET", "/v1/changes/contacts?fromSequence=0", token: tokenA, headers: ["grpc-timeout": "2S"])
        #expect(third.status == 429, "\(third.status) \(third.body)")
        #expect(third.headers["retry-after"] != nil)
        #expect((third.json["message"] as? String)?.contains("streams open") == true, "\(third.body)")
        // Another tenant is unaffected: its watch runs to its own deadline.
        let other = try await gw.request("GET", "/v1/changes/contacts?fromSequence=0", token: tokenB, headers: ["grpc-timeout": "500m"])
        #expect(other.status == 200, "\(other.status) \(other.body)")
        // A client that goes away gives its place back.
        first.close()
        let again = try await eventually {
            try await gw.request("GET", "/v1/changes/contacts?fromSequence=0", token: tokenA, headers: ["grpc-timeout": "300m"]).status == 200
        }
        #expect(again)
        second.close()
    }

    @Test("a request without a valid token never reaches a service; with one, a silent service answers 504 at the budget")
    func edgeAuthAndSilentUpstream() async throws {
        // Counts the connections the gateway makes to "contacts", and never answers them.
        let accepted = Counter()
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.value.add(1, ordering: .relaxed)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let gw = try await GatewayHarness.start(targets: ["contacts": "127.0.0.1:\(listener.localAddress?.port ?? 0)"])
        defer {
            Task {
                await gw.stop()
                try? await listener.close()
            }
        }
        let tenant = Self.tenant()
        let expired = try await ServiceHarnessTokens.expired(tenant: tenant)
        for (token, headers) in [(nil, [:]), ("not.a.token", [:]), (nil, ["Authorization": "Basic YTpi"]), (expired, [:])]
            as [(String?, [String: String])]
        {
            let refused = try await gw.request("GET", "/v1/contacts", token: token, headers: headers)
            #expect(refused.status == 401, "\(refused.body)")
        }
        #expect(accepted.value.load(ordering: .relaxed) == 0)
        let valid = try await GatewayHarness.token(tenant: tenant)
        let late = try await gw.request("GET", "/v1/contacts", token: valid, headers: ["X-Request-Timeout": "300ms"])
        #expect(late.status == 504, "\(late.status) \(late.body)")
        #expect(late.json["code"] as? Int == 4)
        #expect(accepted.value.load(ordering: .relaxed) >= 1)
    }

    @Test("graceful shutdown closes idle connections at once, ends a stream near the grace's end with an UNAVAILABLE error line, and returns")
    func gracefulShutdown() async throws {
        // Three seconds of grace: the watch is ended half a second before it, and ending it (the upstream call cancelled,
        // the error line written) must fit in what is left on a loaded machine.
        let gw = try await GatewayHarness.start(shutdownGrace: .seconds(3), serviceGroup: true)
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        let idle = try await RawClient.connect(port: gw.port)
        try await idle.send("GET /no/such/route HTTP/1.1\r\nHost: gateway\r\n\r\n")
        #expect(try await eventually { idle.responses == 1 })
        let watch = try await RawClient.connect(port: gw.port)
        try await watch.send(
            "GET /v1/changes/contacts?fromSequence=0 HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer \(token)\r\ngrpc-timeout: 60S\r\n\r\n")
        #expect(try await eventually { watch.received.hasPrefix("HTTP/1.1 200") }, "\(watch.received)")

        // The watch's own deadline is a minute away and the idle timeout five: only the drain ends these within the bound.
        let stopped = Task { try await gw.shutDownGracefully() }
        #expect(try await eventually { !idle.isActive })
        #expect(try await eventually { !watch.isActive })
        // The watch ended with an error line saying why, not a silent close.
        #expect(watch.received.contains(#""error":"#) && watch.received.contains("shutting down"), "\(watch.received.suffix(300))")
        #expect(try await eventually { try await Self.finished(stopped) })
        await gw.gateway.close()
    }

    @Test(
        "pipelined requests are answered in order; on graceful shutdown a response in flight ends with connection: close, then the connection closes")
    func pipeliningAndDrainInFlight() async throws {
        // A collaboration address that accepts and never answers: a call there is in flight until its budget ends.
        let accepted = Counter()
        let silent = try await GatewayHarness.silentServer(accepted: accepted)
        defer { silent.close(promise: nil) }
        let gw = try await GatewayHarness.start(
            targets: ["collaboration": "127.0.0.1:\(silent.localAddress!.port!)"], shutdownGrace: .seconds(10), serviceGroup: true)
        let token = try await GatewayHarness.token(tenant: Self.tenant())
        // Three requests in one write: three responses, in order (404, 405, 200).
        let client = try await RawClient.connect(port: gw.port)
        try await client.send(
            "GET /no/such/route HTTP/1.1\r\nHost: gateway\r\n\r\n" + "DELETE /v1/openapi.json HTTP/1.1\r\nHost: gateway\r\n\r\n"
                + "GET /v1/openapi.json HTTP/1.1\r\nHost: gateway\r\n\r\n")
        #expect(try await eventually { client.responses == 3 }, "\(client.received.prefix(300))")
        // A body ends without a line break, so the next status line follows it on the same line.
        let statuses = client.received.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
        #expect(statuses == ["404", "405", "200"], "\(statuses)")
        #expect(client.isActive)

        // A note list waits on the silent service for its 4 s budget; graceful shutdown starts once the gateway has it in
        // flight (it connected upstream for it: a fixed pause before was sometimes too short in a loaded full run, and
        // the shutdown closed the connection before its request was read).
        let busy = try await RawClient.connect(port: gw.port)
        try await busy.send(
            "GET /v1/notes?subject.type=SUBJECT_TYPE_CONTACT&subject.id=\(UUID().uuidString.lowercased()) HTTP/1.1\r\nHost: gateway\r\n"
                + "Authorization: Bearer \(token)\r\nX-Request-Timeout: 4s\r\n\r\n")
        #expect(try await eventually { accepted.value.load(ordering: .relaxed) > 0 })
        let stopped = Task { try await gw.shutDownGracefully() }
        #expect(try await eventually { !client.isActive })
        #expect(busy.isActive && busy.responses == 0)
        // Its answer (504 at the budget) still comes, saying the connection closes, and then it does.
        #expect(try await eventually { busy.responses == 1 }, "\(busy.received)")
        #expect(busy.received.hasPrefix("HTTP/1.1 504") && busy.received.lowercased().contains("connection: close"), "\(busy.received)")
        #expect(try await eventually { !busy.isActive })
        #expect(try await eventually { try await Self.finished(stopped) })
        await gw.gateway.close()
    }

    /// Whether `task` has finished: waits for it at most 50 ms.
    static func finished(_ task: Task<Void, any Error>) async throws -> Bool {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await task.value
                return true
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(50))
                return false
            }
            let first = try await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}

/// A count shared with NIO's callbacks.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

/// A TCP client that sends exactly the bytes a test gives it and records what comes back.
final class RawClient: Sendable {
    private let channel: any Channel
    private let collector: Collector

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    /// Connects; `sending` goes out as soon as the connection is made, without a hop back to the test's task. A client
    /// not `reading` reads nothing (with a small receive buffer) until ``startReading()``.
    static func connect(port: Int, sending first: String? = nil, reading: Bool = true) async throws -> RawClient {
        let collector = Collector()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if !reading {
            bootstrap = bootstrap.channelOption(.autoRead, value: false).channelOption(.socketOption(.so_rcvbuf), value: 4096)
        }
        let channel =
            try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port)
            .flatMap { channel in
                guard let first else { return channel.eventLoop.makeSucceededFuture(channel) }
                return channel.writeAndFlush(ByteBuffer(string: first)).map { channel }
            }.get()
        return RawClient(channel: channel, collector: collector)
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text)).get()
    }

    func close() {
        channel.close(promise: nil)
    }

    /// Starts reading (a client connected not reading).
    func startReading() {
        channel.setOption(.autoRead, value: true).whenSuccess { [channel] in channel.read() }
    }

    var isActive: Bool { channel.isActive }
    var received: String { collector.text.withLock { $0 } }
    /// Responses begun so far (status lines).
    var responses: Int {
        let text = Array(received.utf8), marker = Array("HTTP/1.".utf8)
        guard text.count >= marker.count else { return 0 }
        var count = 0
        for i in 0...(text.count - marker.count) where text[i] == marker[0] && Array(text[i..<(i + marker.count)]) == marker { count += 1 }
        return count
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let text = Mutex("")

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            text.withLock { $0 += String(buffer: buffer) }
        }
    }
}
