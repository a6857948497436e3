import Foundation
import NIOCore
import NIOPosix
import SwitchboardBuiltins
import SwitchboardHTTP2
import SwitchboardInterop
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardTestSupport
import Synchronization
import Testing

/// The peers (client address and port) of the calls a service took, so a test can tell connections apart.
private final class PeerLog: Sendable {
    private let peers = Mutex<[String]>([])
    func record(_ peer: String) { peers.withLock { $0.append(peer) } }
    /// The peers recorded since the last take.
    func take() -> Set<String> {
        peers.withLock { peers in
            defer { peers.removeAll() }
            return Set(peers)
        }
    }
}

/// A service whose handlers report what the server did to them.
private struct ProbeService: Grpc_Testing_TestService_ServiceProtocol {
    let started = Counter()
    /// EmptyCall's callers.
    let peers = PeerLog()
    let cancelled = Counter()
    let running = Counter()
    let written = Counter()
    let read = Counter()
    let sleep: Duration
    /// Answered as `hostname` by UnaryCall when no user is authenticated: which server took a call.
    let name: String

    init(sleep: Duration = .milliseconds(300), name: String = "") {
        self.sleep = sleep
        self.name = name
    }

    func emptyCall(request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
        started.add()
        peers.record(context.peer)
        running.add()
        defer { running.add(-1) }
        do {
            try await Task.sleep(for: sleep)
        } catch {
            cancelled.add()
            throw error
        }
        return Grpc_Testing_Empty()
    }

    func unaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse {
        if request.fillUsername {
            throw RPCError.invalidArgument(violations: [FieldViolation(field: "username", description: "must be empty", reason: "INVALID")])
        }
        var response = Grpc_Testing_SimpleResponse()
        response.username = context.requestMetadata.firstString("x-user") ?? ""
        response.hostname = context[AuthenticatedUser.self]?.name ?? name
        return response
    }

    func cacheableUnaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse {
        try await unaryCall(request: request, context: context)
    }

    func streamingOutputCall(
        request: Grpc_Testing_StreamingOutputCallRequest, responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>,
        context: ServerContext
    ) async throws {
        var response = Grpc_Testing_StreamingOutputCallResponse()
        var p = Grpc_Testing_Payload()
        p.body = [UInt8](repeating: 1, count: 64 * 1024)
        response.payload = p
        do {
            for _ in 0..<request.responseParameters.count {
                try await responses.write(response)
                written.add()
            }
        } catch {
            cancelled.add()
            throw error
        }
    }

    func streamingInputCall(
        requests: RPCAsyncSequence<Grpc_Testing_StreamingInputCallRequest>, context: ServerContext
    ) async throws -> Grpc_Testing_StreamingInputCallResponse {
        try await Task.sleep(for: sleep)
        var total: Int32 = 0
        for try await r in requests {
            // A request the handler refuses at once, while the client is still sending.
            if r.payload?.body == Array("refuse".utf8) {
                throw RPCError.invalidArgument(violations: [FieldViolation(field: "payload.body", description: "refused", reason: "INVALID")])
            }
            read.add()
            total += Int32(r.payload?.body.count ?? 0)
        }
        var response = Grpc_Testing_StreamingInputCallResponse()
        response.aggregatedPayloadSize = total
        return response
    }

    func fullDuplexCall(
        requests: RPCAsyncSequence<Grpc_Testing_StreamingOutputCallRequest>,
        responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext
    ) async throws {
        started.add()
        do {
            for try await _ in requests { try await responses.write(Grpc_Testing_StreamingOutputCallResponse()) }
        } catch {
            cancelled.add()
            throw error
        }
    }

    func halfDuplexCall(
        requests: RPCAsyncSequence<Grpc_Testing_StreamingOutputCallRequest>,
        responses: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext
    ) async throws {}

    func unimplementedCall(request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
        throw RPCError(code: .unimplemented, message: "no")
    }
}

private struct AuthenticatedUser: Sendable {
    var name: String
}

/// Rejects calls without `authorization`, and attaches the caller for the handler.
private struct AuthInterceptor: ServerInterceptor {
    func intercept<Result: Sendable>(
        context: ServerContext, next: @Sendable (ServerContext) async throws -> Result
    ) async throws -> Result {
        guard let token = context.requestMetadata.firstString("authorization") else {
            throw RPCError(code: .unauthenticated, message: "authorization is required")
        }
        context[AuthenticatedUser.self] = AuthenticatedUser(name: String(token.dropFirst("Bearer ".count)))
        return try await next(context)
    }
}

private struct TokenInterceptor: ClientInterceptor {
    let token: String
    func intercept<Result: Sendable>(
        method: MethodDescriptor, options: CallOptions, next: @Sendable (CallOptions) async throws -> Result
    ) async throws -> Result {
        var options = options
        options.metadata.addString("Bearer \(token)", forKey: "authorization")
        return try await next(options)
    }
}

@Suite("Deadlines, cancellation, backpressure, shutdown, interceptors", .serialized)
struct LifecycleTests {
    @Test("a deadline ends the call with DEADLINE_EXCEEDED and cancels the handler task")
    func deadline() async throws {
        let probe = ProbeService(sleep: .seconds(5))
        try await withServerAndClient(services: [probe]) { client, _ in
            let stub = Grpc_Testing_TestService_Client(client: client)
            // The connection first: a call waits for one at most its deadline, and under load making it can take longer
            // than 200 ms, when the call would end before the server ever saw it (correctly, but not what this tests).
            // (Every connection of the channel: calls take them in turn.)
            for _ in 0..<8 { _ = await code { _ = try await stub.unimplementedCall(Grpc_Testing_Empty()) } }
            let started = ContinuousClock.now
            let result = await code { _ = try await stub.emptyCall(Grpc_Testing_Empty(), options: CallOptions(timeout: .milliseconds(500))) }
            #expect(result == .deadlineExceeded)
            #expect(ContinuousClock.now - started < .seconds(3))
            for _ in 0..<1500 where probe.cancelled.current == 0 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(probe.cancelled.current == 1)
        }
    }

    @Test("a client cancelling a stream cancels the server's handler")
    func clientCancellation() async throws {
        let probe = ProbeService()
        try await withServerAndClient(services: [probe]) { client, _ in
            let stub = Grpc_Testing_TestService_Client(client: client)
            try await stub.fullDuplexCall { call in
                try await call.send(Grpc_Testing_StreamingOutputCallRequest())
                var iterator = call.responses.makeAsyncIterator()
                _ = try await iterator.next()
                // Returning from the body without finishing cancels the call (RST_STREAM CANCEL).
            }
            for _ in 0..<1500 where probe.cancelled.current == 0 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(probe.started.current == 1)
            #expect(probe.cancelled.current == 1)
        }
    }

    @Test("a slow reader holds a fast server-streaming writer back (bounded buffering)")
    func serverBackpressure() async throws {
        let probe = ProbeService()
        try await withServerAndClient(services: [probe]) { client, _ in
            var request = Grpc_Testing_StreamingOutputCallRequest()
            request.responseParameters = Array(repeating: Grpc_Testing_ResponseParameters(), count: 1000)  // 64 MiB
            try await Grpc_Testing_TestService_Client(client: client).streamingOutputCall(request) { responses in
                var iterator = responses.makeAsyncIterator()
                _ = try await iterator.next()
                try await Task.sleep(for: .milliseconds(500))
                // Window (1 MiB) + client buffer (1 MiB) + server queue (256 KiB) bound what can be written ahead.
                #expect(probe.written.current < 60, "the server wrote \(probe.written.current) messages ahead of the reader")
                var count = 1
                while try await iterator.next() != nil { count += 1 }
                #expect(count == 1000)
            }
        }
    }

    @Test("a client that stops reading a server stream has it reset after the write-stall timeout; the handler's write throws")
    func writeStall() async throws {
        let probe = ProbeService()
        try await withServerAndClient(services: [probe], configure: { $0.streamWriteStallTimeout = .milliseconds(300) }) { client, _ in
            var request = Grpc_Testing_StreamingOutputCallRequest()
            request.responseParameters = Array(repeating: Grpc_Testing_ResponseParameters(), count: 1000)  // 64 MiB
            let result = await code {
                try await Grpc_Testing_TestService_Client(client: client).streamingOutputCall(request) { responses in
                    var iterator = responses.makeAsyncIterator()
                    _ = try await iterator.next()
                    // Reads nothing more for longer than the stall timeout, then tries to drain the rest.
                    for _ in 0..<1500 where probe.cancelled.current == 0 { try await Task.sleep(for: .milliseconds(20)) }
                    while try await iterator.next() != nil {}
                }
            }
            #expect(probe.cancelled.current == 1, "the handler's write did not fail")
            #expect(probe.written.current < 60)
            #expect(result != nil, "the stream completed although it was reset")
        }
        // A reader that reads slowly but steadily is never reset, however long the stream runs: here about 3 s of
        // 100 ms pauses against a 5 s stall timeout, with the handler's writes waiting on the client throughout. (500 ms,
        // then 1.5 s, were too close: the reader runs on the test process's cooperative pool, which the suites running
        // beside it on a 2-core host sometimes held for longer than that.)
        try await withServerAndClient(services: [probe], configure: { $0.streamWriteStallTimeout = .seconds(5) }) { client, _ in
            var request = Grpc_Testing_StreamingOutputCallRequest()
            request.responseParameters = Array(repeating: Grpc_Testing_ResponseParameters(), count: 600)
            try await Grpc_Testing_TestService_Client(client: client).streamingOutputCall(request) { responses in
                var count = 0
                for try await _ in responses {
                    count += 1
                    if count % 20 == 0 { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(count == 600)
            }
        }
    }

    @Test("a slow handler holds a fast client-streaming sender back")
    func clientBackpressure() async throws {
        let probe = ProbeService(sleep: .milliseconds(500))
        let sent = Counter()
        try await withServerAndClient(services: [probe]) { client, _ in
            let stub = Grpc_Testing_TestService_Client(client: client)
            let call = Task {
                try await stub.streamingInputCall { call in
                    var r = Grpc_Testing_StreamingInputCallRequest()
                    var p = Grpc_Testing_Payload()
                    p.body = [UInt8](repeating: 2, count: 64 * 1024)
                    r.payload = p
                    for _ in 0..<500 {
                        try await call.send(r)
                        sent.add()
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(sent.current < 60, "the client sent \(sent.current) messages to a handler that reads none")
            let response = try await call.value
            #expect(response.message.aggregatedPayloadSize == 500 * 64 * 1024)
        }
    }

    @Test("graceful shutdown lets accepted calls finish, then refuses new ones")
    func gracefulShutdown() async throws {
        let probe = ProbeService(sleep: .milliseconds(400))
        let running = try await startServer(services: [probe])
        let channel = running.channel()
        let stub = Grpc_Testing_TestService_Client(client: RPCClient(transport: channel))
        let inFlight = Task { try await stub.emptyCall(Grpc_Testing_Empty()) }
        while probe.started.current == 0 { try await Task.sleep(for: .milliseconds(5)) }
        let shutdown = Task { await running.server.shutDown(grace: .seconds(5)) }
        _ = try await inFlight.value
        await shutdown.value
        _ = await running.task.result
        #expect(await code { _ = try await stub.emptyCall(Grpc_Testing_Empty()) } == .unavailable)
        await channel.close()
    }

    @Test("calls still running when the grace period ends are cancelled")
    func graceExpiry() async throws {
        let probe = ProbeService(sleep: .seconds(10))
        let running = try await startServer(services: [probe])
        let channel = running.channel()
        let stub = Grpc_Testing_TestService_Client(client: RPCClient(transport: channel))
        let inFlight = Task { await code { _ = try await stub.emptyCall(Grpc_Testing_Empty()) } }
        while probe.started.current == 0 { try await Task.sleep(for: .milliseconds(5)) }
        await running.server.shutDown(grace: .milliseconds(200))
        #expect(await inFlight.value == .unavailable)
        #expect(probe.cancelled.current == 1)
        await channel.close()
    }

    @Test("interceptors authenticate on the server and add credentials on the client")
    func interceptors() async throws {
        let probe = ProbeService()
        try await withServerAndClient(services: [probe], interceptors: [AuthInterceptor()]) { client, running in
            let anonymous = Grpc_Testing_TestService_Client(client: client)
            #expect(await code { _ = try await anonymous.unaryCall(Grpc_Testing_SimpleRequest()) } == .unauthenticated)
            let authenticated = Grpc_Testing_TestService_Client(
                client: RPCClient(transport: client.transport, interceptors: [TokenInterceptor(token: "ada")]))
            let response = try await authenticated.unaryCall(Grpc_Testing_SimpleRequest())
            #expect(response.hostname == "ada")
        }
    }

    @Test("rich errors carry BadRequest field violations to the client")
    func richErrors() async throws {
        try await withServerAndClient(services: [ProbeService()]) { client, _ in
            var request = Grpc_Testing_SimpleRequest()
            request.fillUsername = true
            do {
                _ = try await Grpc_Testing_TestService_Client(client: client).unaryCall(request)
                Issue.record("expected INVALID_ARGUMENT")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument)
                #expect(error.fieldViolations == [FieldViolation(field: "username", description: "must be empty", reason: "INVALID")])
            }
        }
    }

    @Test("a client still sending when the server answers with an error gets that error's field violations from its send")
    func earlyAnswerDetails() async throws {
        try await withServerAndClient(services: [ProbeService()]) { client, _ in
            var request = Grpc_Testing_StreamingInputCallRequest()
            request.payload = Grpc_Testing_Payload()
            request.payload?.body = Array("refuse".utf8)
            let refused = request
            do {
                _ = try await Grpc_Testing_TestService_Client(client: client).streamingInputCall { call in
                    try await call.send(refused)
                    // Goes on sending until a send sees the answer.
                    for _ in 0..<3000 {
                        try await call.send(Grpc_Testing_StreamingInputCallRequest())
                        try await Task.sleep(for: .milliseconds(10))
                    }
                }
                Issue.record("expected INVALID_ARGUMENT")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument)
                #expect(error.fieldViolations == [FieldViolation(field: "payload.body", description: "refused", reason: "INVALID")], "\(error)")
            }
        }
    }

    @Test("max concurrent streams bounds the handlers running at once; excess calls wait, none fail")
    func maxConcurrentStreams() async throws {
        let probe = ProbeService(sleep: .milliseconds(100))
        try await withServerAndClient(services: [probe], configure: { $0.maxConcurrentStreams = 2 }) { client, _ in
            let stub = Grpc_Testing_TestService_Client(client: client)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<6 { group.addTask { _ = try await stub.emptyCall(Grpc_Testing_Empty()) } }
                try await group.waitForAll()
            }
            #expect(probe.started.current == 6)
            #expect(probe.running.highest <= 2)
        }
    }

    @Test("calls are spread round-robin over several servers")
    func roundRobin() async throws {
        let a = ProbeService(sleep: .zero), b = ProbeService(sleep: .zero)
        let serverA = try await startServer(services: [a])
        let serverB = try await startServer(services: [b])
        let channel = GRPCChannel(targets: [.init(host: "127.0.0.1", port: serverA.port), .init(host: "127.0.0.1", port: serverB.port)])
        let stub = Grpc_Testing_TestService_Client(client: RPCClient(transport: channel))
        for _ in 0..<10 { _ = try await stub.emptyCall(Grpc_Testing_Empty()) }
        #expect(a.started.current == 5)
        #expect(b.started.current == 5)
        await channel.close()
        await serverA.stop()
        await serverB.stop()
    }

    @Test("health probes: a server that answers no probe three times in a row takes no calls; fewer do not; one answer brings it back")
    func unansweredHealthProbes() async throws {
        let a = ProbeService(sleep: .zero, name: "a"), b = ProbeService(sleep: .zero, name: "b")
        let serverA = try await startServer(services: [a])
        let serverB = try await startServer(services: [b])
        // How many more of b's probes go unanswered (as when a loaded server misses the probe's deadline).
        let silence = Atomic<Int>(0)
        // While set, b's answered probes wait before answering (so the test can look between two probes).
        let hold = Atomic<Bool>(false)
        let probed = Atomic<Int>(0)
        var configuration = ClientConfiguration()
        configuration.healthCheck = ClientHealthCheck(interval: .milliseconds(50), unansweredLimit: 3) { transport in
            let stub = Grpc_Testing_TestService_Client(client: RPCClient(transport: transport))
            guard let answer = try? await stub.unaryCall(Grpc_Testing_SimpleRequest(), options: CallOptions(timeout: .seconds(2))) else {
                return .noAnswer
            }
            guard answer.hostname == "b" else { return .serving }
            probed.add(1, ordering: .relaxed)
            while true {
                let left = silence.load(ordering: .relaxed)
                if left == 0 { break }
                if silence.compareExchange(expected: left, desired: left - 1, ordering: .relaxed).exchanged { return .noAnswer }
            }
            while hold.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(10)) }
            return .serving
        }
        let channel = GRPCChannel(
            targets: [.init(host: "127.0.0.1", port: serverA.port), .init(host: "127.0.0.1", port: serverB.port)], configuration: configuration)
        let stub = Grpc_Testing_TestService_Client(client: RPCClient(transport: channel))
        func servers(_ count: Int = 10) async throws -> Set<String> {
            var names: Set<String> = []
            for _ in 0..<count { names.insert(try await stub.unaryCall(Grpc_Testing_SimpleRequest()).hostname) }
            return names
        }
        #expect(try await servers() == ["a", "b"])
        // Two unanswered probes in a row (the third waits): b still takes calls.
        hold.store(true, ordering: .relaxed)
        silence.store(2, ordering: .relaxed)
        let start = probed.load(ordering: .relaxed)
        #expect(try await eventually(timeout: .seconds(10)) { probed.load(ordering: .relaxed) >= start + 3 })
        #expect(try await servers() == ["a", "b"])
        hold.store(false, ordering: .relaxed)
        // Unanswered from now on: after the third in a row, b takes no calls while a serves.
        silence.store(Int.max, ordering: .relaxed)
        #expect(try await eventually(timeout: .seconds(10)) { try await servers(6) == ["a"] })
        #expect(try await servers(20) == ["a"])
        // One answer and it is back.
        silence.store(0, ordering: .relaxed)
        #expect(try await eventually(timeout: .seconds(10)) { try await servers(6).contains("b") })
        await channel.close()
        await serverA.stop()
        await serverB.stop()
    }

    @Test("a call waiting on a target that accepts TCP and never speaks HTTP/2 ends at its deadline, or as soon as it is cancelled")
    func silentTarget() async throws {
        // Accepts connections and never reads or writes: no HTTP/2 settings ever arrive.
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let channel = GRPCChannel(targets: [.init(host: "127.0.0.1", port: silent.localAddress?.port ?? 0)])
        let stub = Grpc_Testing_TestService_Client(client: RPCClient(transport: channel))
        do {
            _ = try await stub.emptyCall(Grpc_Testing_Empty(), options: CallOptions(timeout: .milliseconds(300)))
            Issue.record("a call to a silent target succeeded")
        } catch let error as RPCError {
            #expect(error.code == .deadlineExceeded, "\(error)")
        }
        // A long deadline: cancelling the caller's task ends the wait at once, not when the minute is up.
        let call = Task { try await stub.emptyCall(Grpc_Testing_Empty(), options: CallOptions(timeout: .seconds(60))) }
        try await Task.sleep(for: .milliseconds(200))
        call.cancel()
        switch await call.result {
        case .success: Issue.record("a call to a silent target succeeded")
        case .failure(let error): #expect((error as? RPCError)?.code == .cancelled, "\(error)")
        }
        await channel.close()
        try await silent.close()
    }

    @Test("a unary call the server never processed (GOAWAY below its stream) is sent again on another connection")
    func transparentRetry() async throws {
        let probe = ProbeService(sleep: .zero)
        let real = try await startServer(services: [probe])
        let goingAway = try await GoAwayServer.start()
        let channel = GRPCChannel(targets: [.init(host: "127.0.0.1", port: goingAway.port), .init(host: "127.0.0.1", port: real.port)])
        let stub = Grpc_Testing_TestService_Client(client: RPCClient(transport: channel))
        for _ in 0..<4 { _ = try await stub.emptyCall(Grpc_Testing_Empty()) }
        #expect(probe.started.current == 4)
        #expect(goingAway.refused.current >= 1, "the first call never reached the going-away server")
        await channel.close()
        try await goingAway.stop()
        await real.stop()
    }

    @Test("a connection whose SETTINGS and GOAWAY arrive in one read is not kept as ready: later calls connect again")
    func goAwayWithSettings() async throws {
        let server = try await GoAwayServer.start(atOnce: true)
        var configuration = ClientConfiguration()
        configuration.initialBackoff = .milliseconds(10)
        configuration.maxBackoff = .milliseconds(20)
        let channel = GRPCChannel(targets: [.init(host: "127.0.0.1", port: server.port)], configuration: configuration)
        let stub = Grpc_Testing_TestService_Client(client: RPCClient(transport: channel))
        for _ in 0..<4 {
            #expect(await code(of: { _ = try await stub.emptyCall(Grpc_Testing_Empty(), options: CallOptions(timeout: .seconds(5))) }) != nil)
            try await Task.sleep(for: .milliseconds(50))
        }
        // A connection recorded as ready after it had gone would take every later call without ever connecting again.
        #expect(server.accepted.current >= 4, "connections accepted: \(server.accepted.current)")
        await channel.close()
        try await server.stop()
    }

    @Test("with event-loop affinity a call started on a loop takes that loop's connection to the target: one connection per loop")
    func eventLoopAffinity() async throws {
        let probe = ProbeService(sleep: .zero)
        let server = try await startServer(services: [probe])
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        var configuration = ClientConfiguration()
        configuration.eventLoopAffinity = true
        let channel = GRPCChannel(targets: [.init(host: "127.0.0.1", port: server.port)], configuration: configuration, group: group)
        let stub = Grpc_Testing_TestService_Client(client: RPCClient(transport: channel))
        // The peers of ten calls made by a task that runs on `loop`.
        func peers(on loop: any EventLoop) async throws -> Set<String> {
            _ = probe.peers.take()
            try await Task(executorPreference: EventLoopTaskExecutor(eventLoop: loop)) {
                for _ in 0..<10 { _ = try await stub.emptyCall(Grpc_Testing_Empty()) }
            }.value
            return probe.peers.take()
        }
        // A loop's first calls take any ready connection while its own connects: wait until each loop's calls keep
        // to one connection and the two differ (on a loaded host the second loop's may still be connecting at first).
        #expect(
            try await eventually(timeout: .seconds(10)) {
                let first = try await peers(on: loops[0])
                let second = try await peers(on: loops[1])
                return first.count == 1 && second.count == 1 && first != second
            })
        // Each loop keeps to its own connection; without affinity one connection (connectionsPerTarget) takes both.
        let first = try await peers(on: loops[0])
        let second = try await peers(on: loops[1])
        #expect(first.count == 1, "\(first)")
        #expect(second.count == 1, "\(second)")
        #expect(first != second)
        await channel.close()
        await server.stop()
        try await group.shutdownGracefully()
    }

    @Test("the client reconnects with backoff after the server comes back")
    func reconnect() async throws {
        let probe = ProbeService(sleep: .zero)
        let first = try await startServer(services: [probe])
        let port = first.port
        var configuration = ClientConfiguration()
        configuration.initialBackoff = .milliseconds(50)
        configuration.maxBackoff = .milliseconds(200)
        let channel = first.channel(configuration: configuration)
        let stub = Grpc_Testing_TestService_Client(client: RPCClient(transport: channel))
        _ = try await stub.emptyCall(Grpc_Testing_Empty())
        await first.stop()
        #expect(await code { _ = try await stub.emptyCall(Grpc_Testing_Empty()) } == .unavailable)
        let second = try await startServer(services: [probe], port: port)
        var succeeded = false
        for _ in 0..<600 where !succeeded {
            succeeded = await code { _ = try await stub.emptyCall(Grpc_Testing_Empty()) } == nil
            if !succeeded { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(succeeded)
        await channel.close()
        await second.stop()
    }

    @Test("an idle connection is closed by the server and the client transparently reconnects")
    func idleTimeout() async throws {
        let probe = ProbeService(sleep: .zero)
        // A second, not 150 ms: on a loaded machine the reconnected connection's first call could wait longer than that
        // for its event loop, and the server then closed that connection as idle too (three times: the call failed).
        try await withServerAndClient(services: [probe], configure: { $0.idleTimeout = .seconds(1) }) { client, running in
            let stub = Grpc_Testing_TestService_Client(client: client)
            _ = try await stub.emptyCall(Grpc_Testing_Empty())
            #expect(running.server.connectionCount == 1)
            for _ in 0..<1500 where running.server.connectionCount != 0 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(running.server.connectionCount == 0)
            _ = try await stub.emptyCall(Grpc_Testing_Empty())
            #expect(probe.started.current == 2)
        }
    }

    @Test("keepalive: a peer that never acknowledges the server's PING is disconnected")
    func keepaliveDeadPeer() async throws {
        let running = try await startServer(services: [ProbeService()]) {
            $0.keepaliveInterval = .milliseconds(200)
            $0.keepaliveTimeout = .milliseconds(200)
        }
        let (status, output) = try await runProcess(
            pythonPath,
            [
                repositoryRoot.appendingPathComponent("Tests/Interop/h2_probe.py").path, "--port", String(running.port),
                "--case", "keepalive_dead_peer",
            ])
        #expect(status == 0, "\(output)")
        await running.stop()
    }

    @Test("health status changes are visible to Check and streamed by Watch")
    func health() async throws {
        let health = HealthService(services: ["grpc.testing.TestService"])
        try await withServerAndClient(services: [health]) { client, _ in
            let stub = Grpc_Health_V1_Health_Client(client: client)
            var request = Grpc_Health_V1_HealthCheckRequest()
            request.service = "grpc.testing.TestService"
            #expect(try await stub.check(request).status == .serving)
            let seen = try await stub.watch(request) { responses in
                var seen: [Grpc_Health_V1_HealthCheckResponse.ServingStatus] = []
                for try await r in responses {
                    seen.append(r.status)
                    if seen.count == 1 { health.setStatus(.notServing, for: "grpc.testing.TestService") }
                    if seen.count == 2 { break }
                }
                return seen
            }
            #expect(seen == [.serving, .notServing])
            #expect(try await stub.check(request).status == .notServing)
        }
    }
}

/// An HTTP/2 "server" that answers the preface with SETTINGS and every request's HEADERS with GOAWAY naming last
/// stream 0, i.e. "I processed nothing", then closes: the shape of a server closing an idle connection just as a call
/// arrives.
private final class GoAwayServer: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: `seen` is only touched on the channel's event loop.
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let refused: Counter
    let accepted: Counter
    /// GOAWAY in the same write as the first SETTINGS, then close (a server at its connection limit).
    let atOnce: Bool
    private var seen = ByteBuffer()

    init(refused: Counter, accepted: Counter, atOnce: Bool) {
        self.refused = refused
        self.accepted = accepted
        self.atOnce = atOnce
    }

    struct Running {
        let port: Int
        let refused: Counter
        let accepted: Counter
        let channel: any Channel
        let group: MultiThreadedEventLoopGroup

        func stop() async throws {
            try await channel.close()
            try await group.shutdownGracefully()
        }
    }

    static func start(atOnce: Bool = false) async throws -> Running {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let refused = Counter(), accepted = Counter()
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.pipeline.addHandler(GoAwayServer(refused: refused, accepted: accepted, atOnce: atOnce))
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return Running(port: channel.localAddress!.port!, refused: refused, accepted: accepted, channel: channel, group: group)
    }

    func channelActive(context: ChannelHandlerContext) {
        accepted.add()
        // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
        let settings: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 0, 0]
        guard atOnce else {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: settings)), promise: nil)
            return
        }
        // GOAWAY: length 8, type 7, stream 0; last stream 0, NO_ERROR.
        let goAway: [UInt8] = [0, 0, 8, 7, 0, 0, 0, 0, 0] + [0, 0, 0, 0] + [0, 0, 0, 0]
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: settings + goAway))).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if atOnce { return }
        var bytes = unwrapInboundIn(data)
        seen.writeBuffer(&bytes)
        // Frames after the 24-byte client preface: 9-byte headers (length, type, flags, stream).
        var offset = 24
        let view = Array(seen.readableBytesView)
        while offset + 9 <= view.count {
            let length = Int(view[offset]) << 16 | Int(view[offset + 1]) << 8 | Int(view[offset + 2])
            if view[offset + 3] == 1 {  // HEADERS
                refused.add()
                // GOAWAY: length 8, type 7, stream 0; last stream 0, NO_ERROR.
                let goAway: [UInt8] = [0, 0, 8, 7, 0, 0, 0, 0, 0] + [0, 0, 0, 0] + [0, 0, 0, 0]
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: goAway))).whenComplete { _ in channel.close(promise: nil) }
                return
            }
            offset += 9 + length
        }
    }
}
