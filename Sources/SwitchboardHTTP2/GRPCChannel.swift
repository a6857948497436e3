import NIOCore
import NIOPosix
import NIOSSL
import SwitchboardRPC
import Synchronization

/// Client settings.
public struct ClientConfiguration: Sendable {
    /// Connections opened per target address (calls are spread over them).
    public var connectionsPerTarget: Int
    /// Largest response message accepted.
    public var maxReceiveMessageSize: Int
    /// HTTP/2 stream window for responses.
    public var initialWindowSize: Int
    /// First wait after a failed connection attempt; grows by `backoffMultiplier` up to `maxBackoff`.
    public var initialBackoff: Duration
    /// Largest wait between connection attempts.
    public var maxBackoff: Duration
    /// Growth of the wait after each failure.
    public var backoffMultiplier: Double
    /// Time allowed for one TCP connect.
    public var connectTimeout: Duration
    /// Sent as `user-agent`.
    public var userAgent: String
    /// TLS (ALPN `h2`); nil for plaintext HTTP/2.
    public var tls: ClientTLS?
    /// Active health checking of each connection; nil: only failed connections are avoided (passive).
    public var healthCheck: ClientHealthCheck?
    /// Each target gets a connection on every event loop of the channel's group (at least `connectionsPerTarget` in
    /// all), and a call started on one of those loops (a task that prefers it, see ``EventLoopTaskExecutor``) takes a
    /// ready connection of that loop (round robin over the targets), so its request is written and its response
    /// resumes the caller without waking another thread. For a proxy whose requests arrive on the same loops; calls
    /// started elsewhere, or finding no ready connection of their loop, are spread as usual.
    public var eventLoopAffinity: Bool

    /// Creates a configuration with gRPC's customary defaults.
    public init() {
        connectionsPerTarget = 1
        maxReceiveMessageSize = 4 * 1024 * 1024
        initialWindowSize = 1 << 20
        initialBackoff = .seconds(1)
        maxBackoff = .seconds(120)
        backoffMultiplier = 1.6
        connectTimeout = .seconds(20)
        userAgent = "switchboard-swift/0.1"
        eventLoopAffinity = false
        tls = nil
        healthCheck = nil
    }
}

/// What a health probe learned of a server.
public enum HealthProbeAnswer: Sendable, Hashable {
    /// It answered that it serves.
    case serving
    /// It answered that it does not serve (its database is down, it drains).
    case notServing
    /// No answer: an error or a timeout. A busy server looks the same, so one alone decides nothing.
    case noAnswer
}

/// Active health checking: every `interval`, `probe` is called once per ready connection with a transport bound to
/// that connection. A connection whose server answers that it does not serve (up, but e.g. its database is down),
/// or that answers no probe `unansweredLimit` times in a row, takes no calls while another target's connection
/// serves; one answer that it serves brings it back. A target's state survives reconnections; when no connection
/// serves, calls go to all of them (the servers answer for themselves).
public struct ClientHealthCheck: Sendable {
    /// Between two rounds of probes.
    public var interval: Duration
    /// What the server behind the transport says of itself; it should bound its own wait (e.g. a call deadline)
    /// below `interval`.
    public var probe: @Sendable (any ClientTransport) async -> HealthProbeAnswer
    /// Probes in a row without an answer after which a connection counts as not serving: a single probe that timed
    /// out on a loaded machine took a serving address out of rotation (seen in the gateway's tests).
    public var unansweredLimit: Int

    /// Creates the settings.
    /// - Parameters:
    ///   - interval: between two rounds.
    ///   - unansweredLimit: probes in a row without an answer that count as not serving (at least 1).
    ///   - probe: the check, e.g. a `grpc.health.v1.Health/Check` call with a deadline.
    public init(interval: Duration, unansweredLimit: Int = 3, probe: @escaping @Sendable (any ClientTransport) async -> HealthProbeAnswer) {
        self.interval = interval
        self.unansweredLimit = max(1, unansweredLimit)
        self.probe = probe
    }
}

/// How a client verifies servers over TLS.
public struct ClientTLS: Sendable {
    /// PEM file of certificates to trust; nil trusts the system's roots.
    public var trustRootsPath: String?
    /// The name to verify the server's certificate against (and send as SNI); nil uses the target host.
    public var serverHostname: String?

    /// Creates the settings.
    /// - Parameters:
    ///   - trustRootsPath: PEM roots to trust, or nil for the system's.
    ///   - serverHostname: the expected certificate name.
    public init(trustRootsPath: String? = nil, serverHostname: String? = nil) {
        self.trustRootsPath = trustRootsPath
        self.serverHostname = serverHostname
    }
}

/// A client transport over one or more `host:port` targets: lazily connected HTTP/2 connections, round-robin
/// across them, reconnecting with exponential backoff after failures. Calls fail fast with UNAVAILABLE while
/// every target is backing off.
public final class GRPCChannel: ClientTransport, Sendable {
    /// One target.
    public struct Target: Sendable, Hashable {
        /// Host name or address.
        public var host: String
        /// Port.
        public var port: Int
        /// Creates a target.
        /// - Parameters:
        ///   - host: host name or address.
        ///   - port: port.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    private enum SlotState {
        case idle
        case connecting(EventLoopFuture<Connection>)
        case ready(Connection)
        case backingOff(until: ContinuousClock.Instant)
    }

    private struct Connection: @unchecked Sendable {
        // @unchecked: the handler is only used on `channel.eventLoop` (through `NIOLoopBound`-style hops below).
        let channel: any Channel
        let handler: ClientConnectionHandler
    }

    private struct Slot {
        let target: Target
        /// The loop its connections are made on (``ClientConfiguration/eventLoopAffinity``); nil: any of the group's.
        var loop: (any EventLoop)?
        var state: SlotState = .idle
        var failures = 0
        /// Whether the health probes say it serves (true until they say otherwise).
        var serving = true
        /// Health probes in a row that got no answer.
        var unanswered = 0
    }

    /// The configuration.
    public let configuration: ClientConfiguration
    private let group: any EventLoopGroup
    private let slots: Mutex<[Slot]>
    private let next = Atomic<Int>(0)
    private let closed = Atomic<Bool>(false)
    private let healthTask = Mutex<Task<Void, Never>?>(nil)
    /// The TLS context every connection uses, made once (its trust roots are read from disk); nil for plaintext, a
    /// failure for a configuration that cannot make one (each connection attempt then fails with it).
    private let tlsContext: Result<NIOSSLContext, any Error>?

    /// Creates a channel; no connection is made until the first call.
    /// - Parameters:
    ///   - targets: the addresses to spread calls over.
    ///   - configuration: client settings.
    ///   - group: event loops; defaults to NIO's shared group.
    public init(
        targets: [Target],
        configuration: ClientConfiguration = ClientConfiguration(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        precondition(!targets.isEmpty, "a channel needs at least one target")
        self.configuration = configuration
        self.group = group
        self.tlsContext = configuration.tls.map { tls in Result { try Self.makeSSLContext(tls) } }
        var slots: [Slot] = []
        if configuration.eventLoopAffinity {
            let loops = Array(group.makeIterator())
            // Slot k of a target sits on loop k mod n, so every target has a connection on every loop.
            let perTarget = max(configuration.connectionsPerTarget, loops.count, 1)
            for target in targets {
                for k in 0..<perTarget { slots.append(Slot(target: target, loop: loops.isEmpty ? nil : loops[k % loops.count])) }
            }
        } else {
            for target in targets {
                for _ in 0..<max(1, configuration.connectionsPerTarget) { slots.append(Slot(target: target)) }
            }
        }
        self.slots = Mutex(slots)
        if let check = configuration.healthCheck {
            // Holds the channel weakly: an unused channel is freed, and its checks end with it.
            healthTask.withLock {
                $0 = Task { [weak self] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: check.interval)
                        // Strong only for one round.
                        guard let self, !self.closed.load(ordering: .relaxed) else { return }
                        await self.probeReadyConnections(check)
                    }
                }
            }
        }
    }

    deinit {
        healthTask.withLock { $0?.cancel() }
    }

    /// One round: probes every ready connection, and reconnects slots found not serving whose connection went away
    /// (calls pass over them, so nothing else would, and the next round probes them again).
    private func probeReadyConnections(_ check: ClientHealthCheck) async {
        let ready: [(index: Int, connection: Connection)] = slots.withLock { slots in
            var ready: [(index: Int, connection: Connection)] = []
            for i in slots.indices {
                switch slots[i].state {
                case .ready(let connection):
                    ready.append((i, connection))
                case .idle where !slots[i].serving:
                    slots[i].state = .connecting(connect(slots[i].target, slotIndex: i, on: slots[i].loop))
                case .backingOff(let until) where !slots[i].serving && ContinuousClock.now >= until:
                    slots[i].state = .connecting(connect(slots[i].target, slotIndex: i, on: slots[i].loop))
                default:
                    break
                }
            }
            return ready
        }
        let userAgent = configuration.userAgent, maxMessage = configuration.maxReceiveMessageSize
        await withTaskGroup(of: (Int, Connection, HealthProbeAnswer).self) { group in
            for (index, connection) in ready {
                group.addTask {
                    let transport = OneConnection(connection: connection, userAgent: userAgent, maxReceiveMessageSize: maxMessage)
                    return (index, connection, await check.probe(transport))
                }
            }
            for await (index, connection, answer) in group {
                slots.withLock { slots in
                    // A probe of a connection since replaced says nothing about the new one.
                    guard case .ready(let current) = slots[index].state, current.channel === connection.channel else { return }
                    switch answer {
                    case .serving:
                        slots[index].serving = true
                        slots[index].unanswered = 0
                    case .notServing:
                        slots[index].serving = false
                        slots[index].unanswered = 0
                    case .noAnswer:
                        slots[index].unanswered += 1
                        if slots[index].unanswered >= check.unansweredLimit { slots[index].serving = false }
                    }
                }
            }
        }
    }

    /// Whether some slot other than a non-serving one could take a call (under the lock).
    private static func anyServing(_ slots: [Slot]) -> Bool {
        slots.contains { slot in
            guard slot.serving else { return false }
            if case .backingOff(let until) = slot.state { return ContinuousClock.now >= until }
            return true
        }
    }

    /// A transport that starts every call on one connection: what a health probe calls.
    private struct OneConnection: ClientTransport {
        let connection: Connection
        let userAgent: String
        let maxReceiveMessageSize: Int

        func startCall(_ method: MethodDescriptor, options: CallOptions) async throws -> any ClientCallStream {
            start(method, options: options, onlyMessage: nil)
        }

        func startUnaryCall(_ method: MethodDescriptor, message: ByteBuffer, options: CallOptions) async throws -> any ClientCallStream {
            start(method, options: options, onlyMessage: message)
        }

        private func start(_ method: MethodDescriptor, options: CallOptions, onlyMessage: ByteBuffer?) -> any ClientCallStream {
            let loop = connection.channel.eventLoop
            let call = HTTP2ClientCall(eventLoop: loop, maxMessageSize: maxReceiveMessageSize, requestEncoding: .identity)
            let (connection, userAgent) = (self.connection, self.userAgent)
            loop.execute { connection.handler.start(call, method: method, options: options, userAgent: userAgent, onlyMessage: onlyMessage) }
            return call
        }
    }

    /// Creates a channel to one address.
    /// - Parameters:
    ///   - host: the host.
    ///   - port: the port.
    ///   - configuration: client settings.
    public convenience init(host: String, port: Int, configuration: ClientConfiguration = ClientConfiguration()) {
        self.init(targets: [Target(host: host, port: port)], configuration: configuration)
    }

    /// Starts a call on the next usable connection.
    /// - Parameters:
    ///   - method: the method.
    ///   - options: call options.
    /// - Returns: the call.
    /// - Throws: `UNAVAILABLE` when no target can be reached.
    public func startCall(_ method: MethodDescriptor, options: CallOptions) async throws -> any ClientCallStream {
        try await start(method, options: options, onlyMessage: nil)
    }

    /// Starts a unary call with its request in one step on the connection's event loop (headers, message and end of
    /// stream in one write; no wait for the loop in between).
    public func startUnaryCall(_ method: MethodDescriptor, message: ByteBuffer, options: CallOptions) async throws -> any ClientCallStream {
        try await start(method, options: options, onlyMessage: message)
    }

    private func start(_ method: MethodDescriptor, options: CallOptions, onlyMessage: ByteBuffer?) async throws -> any ClientCallStream {
        guard !closed.load(ordering: .relaxed) else {
            throw RPCError(code: .unavailable, message: "the channel is closed")
        }
        let waitStart = ContinuousClock.now
        let connection = try await connection(within: options.timeout)
        // The call's own timer gets what the wait for a connection left of the deadline, not the whole of it again.
        var options = options
        if let timeout = options.timeout {
            let left = timeout - (ContinuousClock.now - waitStart)
            guard left > .zero else { throw RPCError(code: .deadlineExceeded, message: "no connection was ready within the call's deadline") }
            options.timeout = left
        }
        let loop = connection.channel.eventLoop
        let call = HTTP2ClientCall(
            eventLoop: loop, maxMessageSize: configuration.maxReceiveMessageSize,
            requestEncoding: options.compressRequests ? .gzip : .identity)
        let userAgent = configuration.userAgent
        // On the connection's loop, where its handler lives. Not awaited: whatever the caller does next with the call
        // (send, cancel) is also run on that loop, so after this; a failure to start completes the call.
        let frozen = options
        loop.execute {
            connection.handler.start(call, method: method, options: frozen, userAgent: userAgent, onlyMessage: onlyMessage)
        }
        return call
    }

    /// A connection, waiting at most `timeout` for one to be made: a target that accepts TCP but never completes the
    /// HTTP/2 handshake must not hold a call past its deadline.
    private func connection(within timeout: Duration?) async throws -> Connection {
        if configuration.eventLoopAffinity, let local = localConnection() { return local }
        if let ready = readyConnection() { return ready }
        guard let timeout else { return try await pickConnection() }
        let waiter = OnceContinuation<Connection>()
        // The attempt goes on after a deadline or cancellation: its connection serves later calls.
        Task { [self] in
            do {
                waiter.resume(.success(try await pickConnection()))
            } catch {
                waiter.resume(.failure(error))
            }
        }
        let timer = group.next().scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
            waiter.resume(.failure(RPCError(code: .deadlineExceeded, message: "no connection was ready within the call's deadline")))
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { waiter.install($0) }
        } onCancel: {
            waiter.resume(.failure(RPCError(code: .cancelled, message: "the call was cancelled while it waited for a connection")))
        }
    }

    /// The next slot's connection if it is ready and serving (round robin, passing over slots a health probe found
    /// not serving while another serves); nil when it is not.
    private func readyConnection() -> Connection? {
        slots.withLock { slots in
            guard !slots.isEmpty else { return nil }
            let start = next.load(ordering: .relaxed)
            let avoid = slots.contains { !$0.serving } && Self.anyServing(slots)
            for step in 0..<(avoid ? slots.count : 1) {
                let index = (start + step) % slots.count
                guard !avoid || slots[index].serving else { continue }
                guard case .ready(let connection) = slots[index].state else { return nil }
                next.wrappingAdd(1 + step, ordering: .relaxed)
                return connection
            }
            return nil
        }
    }

    /// The next ready connection (round robin, serving ones first as in ``readyConnection()``) on the event loop this
    /// code runs on; nil when it runs on none of them or none of them is ready. Slots of this loop with no connection
    /// start connecting, for the calls after this one.
    private func localConnection() -> Connection? {
        slots.withLock { slots in
            guard !slots.isEmpty else { return nil }
            let start = next.load(ordering: .relaxed)
            let avoid = slots.contains { !$0.serving } && Self.anyServing(slots)
            var found: Connection?
            for step in 0..<slots.count {
                let index = (start + step) % slots.count
                guard let loop = slots[index].loop, loop.inEventLoop, !avoid || slots[index].serving else { continue }
                switch slots[index].state {
                case .ready(let connection) where found == nil:
                    next.wrappingAdd(1 + step, ordering: .relaxed)
                    found = connection
                case .idle:
                    // Never used, or its connection went away: connected now for later calls (this one takes a ready
                    // one), or every call of this loop would keep to the targets it reached first.
                    slots[index].state = .connecting(connect(slots[index].target, slotIndex: index, on: loop))
                case .backingOff(let until) where ContinuousClock.now >= until:
                    slots[index].state = .connecting(connect(slots[index].target, slotIndex: index, on: loop))
                default:
                    continue
                }
            }
            return found
        }
    }

    /// Any ready connection (a serving one if there is one), for a call that would otherwise wait on a slot still
    /// connecting.
    private func anyReadyConnection() -> Connection? {
        slots.withLock { slots in
            let avoid = Self.anyServing(slots)
            for slot in slots where slot.serving || !avoid {
                if case .ready(let connection) = slot.state { return connection }
            }
            return nil
        }
    }

    private func pickConnection() async throws -> Connection {
        let count = slots.withLock { $0.count }
        var lastError: (any Error)?
        for attempt in 0..<count {
            let index = (next.wrappingAdd(1, ordering: .relaxed).oldValue + attempt) % count
            enum Step { case use(Connection), wait(EventLoopFuture<Connection>), join(EventLoopFuture<Connection>), skip }
            let step: Step = slots.withLock { slots in
                if !slots[index].serving, Self.anyServing(slots) { return .skip }
                switch slots[index].state {
                case .ready(let connection):
                    return .use(connection)
                case .connecting(let future):
                    return .join(future)
                case .backingOff(let until) where ContinuousClock.now < until:
                    return .skip
                case .idle, .backingOff:
                    let future = connect(slots[index].target, slotIndex: index, on: slots[index].loop)
                    slots[index].state = .connecting(future)
                    return .wait(future)
                }
            }
            switch step {
            case .use(let connection):
                return connection
            case .join(let future):
                // A target that is slow to connect (or accepts TCP and never answers) must not hold a call that a
                // ready connection could take; its connection attempt goes on for later calls.
                if let ready = anyReadyConnection() { return ready }
                do {
                    return try await future.get()
                } catch {
                    lastError = error
                }
            case .wait(let future):
                do {
                    return try await future.get()
                } catch {
                    lastError = error
                }
            case .skip:
                continue
            }
        }
        throw RPCError(
            code: .unavailable,
            message: "no connection to \(slots.withLock { $0.map { "\($0.target.host):\($0.target.port)" } }.joined(separator: ", "))",
            cause: lastError)
    }

    // Called with the slots locked (and, for a caller on an event loop, possibly on the loop of an already failed
    // future, whose callbacks would run at once): the slot's new state is therefore recorded on a later turn of the
    // loop, never inside the caller's lock.
    private func connect(_ target: Target, slotIndex: Int, on loop: (any EventLoop)?) -> EventLoopFuture<Connection> {
        let authority = "\(target.host):\(target.port)"
        let windowSize = configuration.initialWindowSize
        let sslContext: NIOSSLContext?
        do {
            sslContext = try tlsContext?.get()
        } catch {
            return (loop ?? group.next()).makeFailedFuture(RPCError(code: .unavailable, message: "TLS setup failed: \(error)", cause: error))
        }
        let tlsHostname = configuration.tls.map { $0.serverHostname ?? target.host }
        let bootstrap = ClientBootstrap(group: loop ?? group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.nanoseconds(configuration.connectTimeout.nanoseconds))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        // SNI must not be an IP address.
                        let sni = tlsHostname.flatMap { $0.first?.isNumber == true || $0.contains(":") ? nil : $0 }
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: sslContext, serverHostname: sni))
                    }
                    let handler = ClientConnectionHandler(
                        authority: authority, scheme: sslContext == nil ? "http" : "https", windowSize: windowSize,
                        ready: channel.eventLoop.makePromise()
                    ) { [self] in
                        self.connectionLost(slotIndex: slotIndex, channel: channel)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let timeout = configuration.connectTimeout
        let future = bootstrap.connect(host: target.host, port: target.port).flatMap { channel -> EventLoopFuture<Connection> in
            channel.eventLoop.makeCompletedFuture {
                Connection(channel: channel, handler: try channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self))
            }.flatMap { connection in
                let ready = connection.handler.ready
                let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
                    ready.fail(RPCError(code: .unavailable, message: "no SETTINGS from the server"))
                    channel.close(promise: nil)
                }
                return ready.futureResult.map {
                    timer.cancel()
                    return connection
                }
            }
        }
        future.whenComplete { [self] result in
            // On the future's loop (the connection's, when it succeeded), a turn later than its completion.
            future.eventLoop.execute { [self] in
                let unwanted: Connection? = slots.withLock { slots in
                    // Only for the attempt the slot still waits for: `close()` may have reset it meanwhile.
                    guard case .connecting(let pending) = slots[slotIndex].state, pending === future else {
                        if case .success(let connection) = result { return connection }
                        return nil
                    }
                    switch result {
                    case .success(let connection):
                        // The read that brought the server's SETTINGS may also have brought its GOAWAY or the end of
                        // the connection: `connectionLost` then found no ready slot to clear, so check here.
                        guard connection.channel.isActive, !connection.handler.isDraining else {
                            slots[slotIndex].state = .idle
                            return nil
                        }
                        slots[slotIndex].state = .ready(connection)
                        slots[slotIndex].failures = 0
                    case .failure:
                        let failures = slots[slotIndex].failures
                        slots[slotIndex].failures += 1
                        slots[slotIndex].state = .backingOff(until: ContinuousClock.now + backoff(afterFailures: failures))
                    }
                    return nil
                }
                unwanted?.channel.close(promise: nil)
            }
        }
        return future
    }

    private static func makeSSLContext(_ tls: ClientTLS) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = ["h2"]
        configuration.minimumTLSVersion = .tlsv12
        if let path = tls.trustRootsPath {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
        }
        return try NIOSSLContext(configuration: configuration)
    }

    private func backoff(afterFailures failures: Int) -> Duration {
        let base = Double(configuration.initialBackoff.nanoseconds) * pow(configuration.backoffMultiplier, Double(failures))
        let capped = min(base, Double(configuration.maxBackoff.nanoseconds))
        // ±20% jitter so that many clients do not reconnect in lockstep.
        let jittered = capped * Double.random(in: 0.8...1.2)
        return .nanoseconds(Int64(jittered))
    }

    private func connectionLost(slotIndex: Int, channel: any Channel) {
        slots.withLock { slots in
            if case .ready(let connection) = slots[slotIndex].state, connection.channel === channel {
                slots[slotIndex].state = .idle
            }
        }
    }

    /// Closes every connection; calls in flight fail with UNAVAILABLE.
    public func close() async {
        closed.store(true, ordering: .relaxed)
        healthTask.withLock { $0?.cancel() }
        let channels: [any Channel] = slots.withLock { slots in
            var channels: [any Channel] = []
            for i in slots.indices {
                if case .ready(let connection) = slots[i].state { channels.append(connection.channel) }
                slots[i].state = .idle
            }
            return channels
        }
        for channel in channels { try? await channel.close() }
    }
}

private func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    for _ in 0..<Int(exponent) { result *= base }
    return result
}

/// Resumes a continuation once: with the first of several outcomes racing (a connection, its failure, a deadline,
/// cancellation), which may come before the continuation is installed.
private final class OnceContinuation<Value: Sendable>: Sendable {
    private enum State {
        case waiting
        case installed(CheckedContinuation<Value, any Error>)
        case resolved(Result<Value, any Error>)
        case done
    }
    private let state = Mutex<State>(.waiting)

    func install(_ continuation: CheckedContinuation<Value, any Error>) {
        let early: Result<Value, any Error>? = state.withLock { state in
            if case .resolved(let result) = state {
                state = .done
                return result
            }
            state = .installed(continuation)
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func resume(_ result: Result<Value, any Error>) {
        let continuation: CheckedContinuation<Value, any Error>? = state.withLock { state in
            switch state {
            case .waiting:
                state = .resolved(result)
                return nil
            case .installed(let continuation):
                state = .done
                return continuation
            case .resolved, .done:
                return nil
            }
        }
        continuation?.resume(with: result)
    }
}
