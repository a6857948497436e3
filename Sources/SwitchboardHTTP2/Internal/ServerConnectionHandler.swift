import Logging
import NIOCore
import SwitchboardRPC

/// Sent through the pipeline to start a graceful shutdown of one connection.
struct GracefulShutdownEvent: Sendable {
    /// When to stop waiting for accepted calls and close.
    let deadline: NIODeadline
}

/// Serves gRPC on one HTTP/2 connection: nghttp2 frames in, request heads and message bytes to the RPC core's
/// ``ServerCallRunner`` (routing, interceptors, handler, status), response messages and status out as frames.
///
/// Each stream's lifecycle and byte bookkeeping is a ``ServerStreamStateMachine``; a handler's completion after the
/// stream was answered (deadline passed, or the client reset the stream) is ignored.
///
/// Request bytes are budgeted: a stream's DATA goes into its deframer, and messages are decoded (decompressed) only
/// while the stream and the connection hold fewer undelivered decoded bytes than their limits. Flow-control window
/// is returned for bytes that left the deframer, and for the tail of a message still arriving, but not for complete
/// messages waiting for budget, so a client that outpaces the handler is stopped by HTTP/2 flow control.
/// Response bytes leave nghttp2 only while the channel is writable, so a client that does not read stops the
/// handlers' writes instead of growing the server's buffers.
final class ServerConnectionHandler: ChannelInboundHandler, NGHTTP2SessionDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private final class Stream {
        let id: Int32
        /// Request headers, parsed as nghttp2 delivers them.
        var fields = RequestHeaderFields()
        /// The routed call, once the request head was accepted.
        var call: ServerCall?
        var machine = ServerStreamStateMachine()
        var deframer: GRPCMessageDeframer
        var requestEncoding: MessageEncoding = .identity
        var responseEncoding: MessageEncoding = .identity
        /// Messages of a single-request call, collected until the client half-closes.
        var collected: [ByteBuffer] = []
        /// The request stream of a streaming call.
        var inbound: InboundMessages?
        var task: Task<Void, Never>?
        var deadlineTimer: Scheduled<Void>?
        var writeWaiters: [CheckedContinuation<Void, any Error>] = []
        /// Armed while writers wait for the client to read (``ServerConfiguration/streamWriteStallTimeout``).
        var writeStallTimer: Scheduled<Void>?
        /// When response bytes last left this stream's queue: a client that reads slowly but steadily is never reset.
        var lastDrained: NIODeadline?

        init(id: Int32, maxMessageSize: Int) {
            self.id = id
            self.deframer = GRPCMessageDeframer(maxMessageSize: maxMessageSize)
        }
    }

    private let runner: ServerCallRunner
    private let configuration: ServerConfiguration
    private let requestBytes: BufferedRequestBytes
    private let logger: Logger
    private var session: NGHTTP2Session!
    private var streams: [Int32: Stream] = [:]
    private var context: ChannelHandlerContext!
    private var outputBuffer = ByteBuffer()
    private var lastReadTime = NIODeadline.now()
    /// No new calls are accepted (we sent GOAWAY, or the peer did).
    private var shuttingDown = false
    /// Our own graceful shutdown has started (its force-close deadline is armed).
    private var gracefulShutdownStarted = false
    private var shutdownTimer: Scheduled<Void>?
    /// The connection's clock: its event loop's, so timers compare against the time they are scheduled in (an
    /// `EmbeddedEventLoop`'s virtual time in tests and fuzzing, where the wall clock would re-arm a timer forever).
    private var now: NIODeadline { context?.eventLoop.now ?? .now() }
    /// Checks `headerDeadline` when it fires; armed while a header block may be pending.
    private var headerTimer: Scheduled<Void>?
    /// When the incomplete connection preface or request header block must be complete by; nil when none is pending.
    private var headerDeadline: NIODeadline?
    /// The stream whose header block (request headers or trailers) is being read, if any.
    private var headerBlockStream: Int32?
    /// The peer abused PINGs: close once the bytes being read have been processed (not from inside nghttp2's
    /// callback, which must not re-enter the session).
    private var closeAfterRead = false
    /// Decoded and raw request bytes held by all streams, and the streams waiting for them to free.
    private var budget: ConnectionRequestBudget
    private var idleTimer: Scheduled<Void>?
    /// When the connection last became idle (no calls); nil while calls run.
    private var idleSince: NIODeadline?
    private var keepaliveTimer: Scheduled<Void>?
    private var keepaliveAckTimer: Scheduled<Void>?
    private var pingStrikes = 0
    private var lastPingReceived: NIODeadline?
    private var peer = "unknown"
    private var taskExecutor: EventLoopTaskExecutor?

    init(
        router: RPCRouter, interceptors: [any ServerInterceptor], configuration: ServerConfiguration,
        requestBytes: BufferedRequestBytes = BufferedRequestBytes(), logger: Logger
    ) {
        self.runner = ServerCallRunner(
            router: router, interceptors: interceptors, compressResponses: configuration.compressResponses, logger: logger)
        self.configuration = configuration
        self.budget = ConnectionRequestBudget(
            connectionLimit: configuration.maxBufferedRequestBytesPerConnection,
            streamLimit: configuration.maxBufferedRequestBytesPerStream)
        self.requestBytes = requestBytes
        self.logger = logger
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        lastReadTime = context.eventLoop.now
        taskExecutor = EventLoopTaskExecutor(eventLoop: context.eventLoop)
        var settings = HTTP2Settings()
        settings.maxConcurrentStreams = UInt32(configuration.maxConcurrentStreams)
        settings.initialWindowSize = UInt32(configuration.initialWindowSize)
        settings.maxHeaderListSize = UInt32(clamping: configuration.maxHeaderListSize)
        settings.maxHeaderCount = configuration.maxHeaderCount
        // Room for the whole decoded-bytes budget of held streams plus one stream window, so streams whose window is
        // held while their handlers catch up never block the connection's other calls.
        settings.connectionWindowSize = UInt32(
            clamping: max(
                4 * configuration.initialWindowSize,
                configuration.maxBufferedRequestBytesPerConnection + configuration.initialWindowSize))
        session = NGHTTP2Session(isServer: true, settings: settings)
        session.delegate = self
        if let address = context.channel.remoteAddress {
            peer = "\(address.protocol == .inet6 ? "ipv6" : "ipv4"):\(address.ipAddress ?? "?"):\(address.port ?? 0)"
        }
        resetIdleTimer()
        scheduleKeepalive()
        armHeaderTimer()
        flush()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failEverything()
        idleTimer?.cancel()
        keepaliveTimer?.cancel()
        keepaliveAckTimer?.cancel()
        shutdownTimer?.cancel()
        headerTimer?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        failEverything()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        lastReadTime = now
        do {
            try session.receive(bytes)
        } catch {
            // Fatal for the session (a bad preface, e.g. HTTP/1.1 on the gRPC port, or a connection error):
            // send what nghttp2 queued (its GOAWAY, if any) and close.
            logger.debug("HTTP/2 protocol error from peer", metadata: ["peer": "\(peer)", "error": "\(error)"])
            closeAfterFlushing()
            return
        }
        if closeAfterRead { closeAfterFlushing() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flush() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["peer": "\(peer)", "error": "\(error)"])
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let shutdown = event as? GracefulShutdownEvent {
            beginGracefulShutdown(deadline: shutdown.deadline)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private var flushScheduled = false

    /// Flushes once after the tasks already queued on the event loop have run, so that many calls completing
    /// together leave in one write (one syscall) instead of one each.
    private func scheduleFlush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            loopBound.value.flushScheduled = false
            loopBound.value.flush()
        }
    }

    /// Bytes taken out of nghttp2 per write: small enough that writability is checked often, large enough that a
    /// burst of small responses still leaves in one syscall.
    private static let writeChunk = 64 * 1024

    /// Writes what nghttp2 has queued while the channel accepts writes; closes when the session is done.
    ///
    /// Nothing is taken out of nghttp2 while the channel is not writable: the bytes stay in the per-stream queues,
    /// which hold back handler writes past `streamWriteHighWatermark`, and `channelWritabilityChanged` resumes.
    private func flush() {
        guard let context else { return }
        while context.channel.isWritable {
            do {
                try session.drainOutput(into: &outputBuffer, limit: Self.writeChunk)
            } catch {
                logger.debug("HTTP/2 session error", metadata: ["error": "\(error)"])
                context.close(promise: nil)
                return
            }
            guard outputBuffer.readableBytes > 0 else { break }
            let out = outputBuffer
            outputBuffer = context.channel.allocator.buffer(capacity: 0)
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        }
        if !session.isActive || (shuttingDown && streams.isEmpty) {
            context.close(promise: nil)
        }
    }

    /// Sends whatever nghttp2 has queued (a GOAWAY, typically), ignoring writability, then closes.
    private func closeAfterFlushing() {
        guard let context else { return }
        try? session.drainOutput(into: &outputBuffer, limit: Self.writeChunk)
        if outputBuffer.readableBytes > 0 {
            let out = outputBuffer
            outputBuffer = context.channel.allocator.buffer(capacity: 0)
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        }
        context.close(promise: nil)
    }

    /// Starts the clock on the connection preface or a request header block, which must complete within
    /// `headerTimeout` (a client trickling CONTINUATION frames, or one that never speaks HTTP/2 is closed). Blocks
    /// only stamp their deadline; one timer checks the stamp when it fires and re-arms itself for a later one, so a
    /// busy connection schedules a timer per `headerTimeout`, not one per request (scheduling and cancelling two
    /// timers per call showed up in GetContact's profile).
    private func armHeaderTimer() {
        guard headerDeadline == nil else { return }
        let deadline = now + .nanoseconds(configuration.headerTimeout.nanoseconds)
        headerDeadline = deadline
        if headerTimer == nil { scheduleHeaderTimer(at: deadline) }
    }

    private func scheduleHeaderTimer(at deadline: NIODeadline) {
        guard let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        headerTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            let handler = loopBound.value
            handler.headerTimer = nil
            // Nothing pending: the next block arms the timer again.
            guard let pending = handler.headerDeadline else { return }
            if pending > handler.now { return handler.scheduleHeaderTimer(at: pending) }
            handler.headerDeadline = nil
            handler.logger.debug("closing connection: headers not received in time", metadata: ["peer": "\(handler.peer)"])
            handler.session.submitGoAway(lastStreamID: handler.session.lastProcessedStreamID, code: .protocolError)
            handler.closeAfterFlushing()
        }
    }

    private func disarmHeaderTimer() {
        headerDeadline = nil
    }

    // MARK: - Lifecycle timers

    /// Starts the idle clock when the last call ends (and at connect). Like the header timer, calls only stamp the
    /// time; the one timer re-arms itself for the rest of the period when it finds the connection was busy meanwhile.
    private func resetIdleTimer() {
        guard let idle = configuration.idleTimeout, streams.isEmpty else {
            idleSince = nil
            return
        }
        let now = self.now
        idleSince = now
        if idleTimer == nil { scheduleIdleTimer(at: now + .nanoseconds(idle.nanoseconds)) }
    }

    private func scheduleIdleTimer(at deadline: NIODeadline) {
        guard let idle = configuration.idleTimeout, let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            let handler = loopBound.value
            handler.idleTimer = nil
            // Busy now: the last call's end starts the clock (and the timer) again.
            guard let since = handler.idleSince, handler.streams.isEmpty else { return }
            let due = since + .nanoseconds(idle.nanoseconds)
            if due > handler.now { return handler.scheduleIdleTimer(at: due) }
            handler.logger.debug("closing idle connection", metadata: ["peer": "\(handler.peer)"])
            handler.beginGracefulShutdown(deadline: handler.now)
        }
    }

    /// Arms the keepalive timer. Reads only stamp `lastReadTime`; the timer re-arms itself for the rest of the
    /// interval when the peer was heard from meanwhile, so the hot path schedules nothing.
    private func scheduleKeepalive(in delay: TimeAmount? = nil) {
        keepaliveTimer?.cancel()
        keepaliveTimer = nil
        guard let interval = configuration.keepaliveInterval, let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let period = TimeAmount.nanoseconds(interval.nanoseconds)
        keepaliveTimer = context.eventLoop.scheduleTask(in: delay ?? period) {
            let handler = loopBound.value
            let quiet = handler.now - handler.lastReadTime
            if quiet < period {
                handler.scheduleKeepalive(in: period - quiet)
                return
            }
            handler.session.submitPing()
            handler.flush()
            handler.keepaliveAckTimer = handler.context?.eventLoop.scheduleTask(
                in: .nanoseconds(handler.configuration.keepaliveTimeout.nanoseconds)
            ) {
                loopBound.value.logger.debug("keepalive PING not acknowledged; closing")
                loopBound.value.context?.close(promise: nil)
            }
        }
    }

    func sessionReceivedPingAck(_ session: NGHTTP2Session) {
        // Only the ACK of our own outstanding keepalive PING re-arms the keepalive; unsolicited ACKs are ignored
        // (each one used to schedule another timer).
        guard let ackTimer = keepaliveAckTimer else { return }
        ackTimer.cancel()
        keepaliveAckTimer = nil
        scheduleKeepalive()
    }

    func sessionReceivedSettings(_ session: NGHTTP2Session) {
        // The first SETTINGS completes the connection preface; no header block can be in progress around a SETTINGS
        // frame (CONTINUATION frames may not be interleaved), so disarming here never cuts one short.
        disarmHeaderTimer()
    }

    func sessionReceivedPing(_ session: NGHTTP2Session) {
        // Ping-abuse policy as in gRPC: while we send nothing, PINGs closer together than minPingInterval earn
        // strikes; too many and the client is told to calm down.
        let now = self.now
        if let last = lastPingReceived, now - last < .nanoseconds(configuration.minPingInterval.nanoseconds) {
            pingStrikes += 1
            if pingStrikes > configuration.maxPingStrikes {
                logger.info("too many PINGs; sending GOAWAY ENHANCE_YOUR_CALM", metadata: ["peer": "\(peer)"])
                session.submitGoAway(lastStreamID: session.lastProcessedStreamID, code: .enhanceYourCalm)
                closeAfterRead = true
                return
            }
        }
        lastPingReceived = now
    }

    private func resetPingStrikes() {
        pingStrikes = 0
        lastPingReceived = nil
    }

    func session(_ session: NGHTTP2Session, goAwayWithLastStreamID lastStreamID: Int32, errorCode: UInt32) {
        // The peer opens no more streams; the connection closes once the open ones end (see flush).
        shuttingDown = true
    }

    private func beginGracefulShutdown(deadline: NIODeadline) {
        // A GOAWAY from the peer sets `shuttingDown` too, so only our own start is guarded: otherwise a client that
        // sent GOAWAY and kept a stream open would leave the force-close deadline unarmed and shutdown waiting.
        guard !gracefulShutdownStarted, let context else { return }
        gracefulShutdownStarted = true
        shuttingDown = true
        session.submitGoAway(lastStreamID: session.lastProcessedStreamID, code: .noError)
        flush()
        if streams.isEmpty {
            context.close(promise: nil)
            return
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        shutdownTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            let handler = loopBound.value
            for stream in handler.streams.values {
                stream.task?.cancel()
                handler.finish(stream, with: RPCError(code: .unavailable, message: "the server is shutting down"))
            }
            handler.flush()
            handler.context?.close(promise: nil)
        }
    }

    private func failEverything() {
        for stream in streams.values {
            stream.task?.cancel()
            stream.deadlineTimer?.cancel()
            stream.writeStallTimer?.cancel()
            stream.inbound?.finish(throwing: CancellationError())
            let waiters = stream.writeWaiters
            stream.writeWaiters = []
            waiters.forEach { $0.resume(throwing: RPCError(code: .unavailable, message: "the connection closed")) }
        }
        streams.removeAll()
        requestBytes.add(-budget.reset())
    }

    // MARK: - Requests

    func session(_ session: NGHTTP2Session, beginHeadersOn streamID: Int32) {
        if streams[streamID] == nil {
            streams[streamID] = Stream(id: streamID, maxMessageSize: configuration.maxReceiveMessageSize)
            idleSince = nil
        }
        headerBlockStream = streamID
        armHeaderTimer()
    }

    func session(_ session: NGHTTP2Session, header name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, on streamID: Int32) {
        guard let stream = streams[streamID], stream.machine.isReceivingHeaders else { return }
        stream.fields.add(name: name, value: value)
    }

    func session(_ session: NGHTTP2Session, endHeadersOn streamID: Int32, endStream: Bool) {
        headerBlockStream = nil
        disarmHeaderTimer()
        guard let stream = streams[streamID] else { return }
        if stream.machine.isReceivingHeaders {
            startCall(stream)
        }
        if endStream { requestEnded(stream) }
    }

    /// Settles the transport's part of a request head (HTTP method, content type, shutdown, compression), then
    /// hands the rest to the RPC core to route; the call starts at once unless it takes a single request message.
    private func startCall(_ stream: Stream) {
        switch stream.fields.refusal() {
        case .rpc(let error)?:
            respondTrailersOnly(stream, error)
            return
        case .http(let status)?:
            respondHTTP(stream, status: status)
            return
        case nil:
            break
        }
        if shuttingDown {
            respondTrailersOnly(stream, RPCError(code: .unavailable, message: "the server is shutting down"))
            return
        }
        let call: ServerCall
        switch runner.makeCall(for: stream.fields.head(peer: peer)) {
        case .success(let routed): call = routed
        case .failure(let error):
            respondTrailersOnly(stream, error)
            return
        }
        if let encoding = stream.fields.encoding, encoding != MessageEncoding.identity.rawValue {
            guard let supported = MessageEncoding(rawValue: encoding) else {
                var error = RPCError(code: .unimplemented, message: "unsupported grpc-encoding \(encoding)")
                error.metadata.addString(MessageEncoding.acceptHeader, forKey: GRPCHeaderName.acceptEncoding)
                respondTrailersOnly(stream, error)
                return
            }
            stream.requestEncoding = supported
        }
        let accepted = MessageEncoding.parseAccept(stream.fields.acceptEncoding)
        stream.responseEncoding = accepted.contains(.gzip) ? .gzip : (accepted.contains(.deflate) ? .deflate : .identity)
        stream.call = call
        stream.machine.callStarted()

        // The RPC core chose the deadline; it is enforced here, on the connection's event loop, so a call with a
        // timeout costs one scheduled task and no thread hop.
        if let timeout = call.timeout, let context {
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let id = stream.id
            stream.deadlineTimer = context.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
                let handler = loopBound.value
                guard let stream = handler.streams[id], stream.machine.canRespond else { return }
                stream.task?.cancel()
                handler.finish(stream, with: ServerCallRunner.deadlineExceeded)
                handler.flush()
            }
        }

        if !call.isSingleRequest {
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let id = stream.id
            let eventLoop = context.eventLoop
            stream.inbound = InboundMessages { bytes in
                eventLoop.execute { loopBound.value.messageConsumed(id, bytes: bytes) }
            }
            launch(stream, requests: stream.inbound!)
        }
    }

    func session(_ session: NGHTTP2Session, data: UnsafeRawBufferPointer, on streamID: Int32) {
        guard let stream = streams[streamID], stream.machine.isReceivingMessages else {
            session.consumeConnection(data.count)
            return
        }
        stream.deframer.append(data)
        stream.machine.receivedData(data.count)
        deliverMessages(stream)
    }

    /// Decodes and hands over the stream's complete messages while the budgets allow, then returns the window of
    /// every byte not held in a complete, undelivered message.
    private func deliverMessages(_ stream: Stream) {
        guard stream.machine.isReceivingMessages else { return }
        let singleRequest = stream.inbound == nil
        do {
            while true {
                if singleRequest, !stream.collected.isEmpty {
                    // One message is all a unary or server-streaming call takes: a second is an error at once,
                    // not something to buffer until the client half-closes.
                    if stream.deframer.hasPartialMessage {
                        throw RPCError(code: .unimplemented, message: "expected one request message, received several")
                    }
                    break
                }
                guard stream.deframer.hasCompleteMessage else { break }
                guard budget.admitsMessage(on: stream.id, streamBufferedBytes: stream.machine.bufferedBytes) else { break }
                guard let (payload, compressed) = try stream.deframer.nextDecoded(encoding: stream.requestEncoding) else { break }
                stream.call?.context.requestMessageCompressed = compressed
                stream.machine.delivered(payload.readableBytes)
                budget.delivered(payload.readableBytes)
                requestBytes.add(payload.readableBytes)
                if let inbound = stream.inbound {
                    inbound.yield(payload)
                } else {
                    stream.collected.append(payload)
                }
            }
        } catch {
            stream.task?.cancel()
            finish(stream, with: RPCError.from(error))
            releaseWindow(stream, keeping: 0)
            return
        }
        let raw = stream.deframer.bufferedBytes
        let rawDelta = stream.machine.rawBytesChanged(to: raw)
        budget.rawBytesChanged(by: rawDelta)
        requestBytes.add(rawDelta)
        let hold = budget.windowToHold(
            on: stream.id, raw: raw, hasCompleteMessage: stream.deframer.hasCompleteMessage,
            hasPartialMessage: stream.deframer.hasPartialMessage)
        releaseWindow(stream, keeping: hold.keeping)
        if hold.wakeTailWaiters { wakeTailWaiters() }
        completeRequestIfEnded(stream)
    }

    /// Lets streams held back by the connection budget ask again.
    private func wakeTailWaiters() {
        for id in budget.takeTailWaiters() {
            if let stream = streams[id] { deliverMessages(stream) }
        }
    }

    /// Returns the stream's held window except `keeping` bytes (those of complete messages still waiting).
    private func releaseWindow(_ stream: Stream, keeping: Int) {
        let release = stream.machine.releaseWindow(keeping: keeping)
        guard release > 0 else { return }
        session.consume(release, on: stream.id)
    }

    /// Gives back a stream's decoded bytes to the connection budget and lets streams starved by it continue.
    private func releaseBuffered(_ bytes: Int) {
        guard bytes > 0 else { return }
        budget.released(bytes)
        requestBytes.add(-bytes)
        wakeTailWaiters()
        for id in budget.takeStarvedStreams() {
            if let stream = streams[id] { deliverMessages(stream) }
        }
    }

    private func messageConsumed(_ id: Int32, bytes: Int) {
        guard let stream = streams[id] else { return }
        stream.machine.consumed(bytes)
        releaseBuffered(bytes)
        deliverMessages(stream)
        flush()
    }

    func session(_ session: NGHTTP2Session, endStreamOn streamID: Int32) {
        guard let stream = streams[streamID] else { return }
        requestEnded(stream)
    }

    private func requestEnded(_ stream: Stream) {
        guard stream.machine.receivedEndStream() else { return }
        deliverMessages(stream)
    }

    /// Once the client half-closed and every complete message has been delivered, ends the request stream (or
    /// starts a single-request call with its message).
    private func completeRequestIfEnded(_ stream: Stream) {
        guard !stream.deframer.hasCompleteMessage,
            let action = stream.machine.requestDrained(hasPartialMessage: stream.deframer.hasPartialMessage)
        else { return }
        if action == .failIncompleteMessage {
            stream.task?.cancel()
            finish(stream, with: RPCError(code: .internal, message: "the request ended inside a message"))
            return
        }
        if let inbound = stream.inbound {
            inbound.finish()
        } else {
            launch(stream, requests: InboundMessages(finishedWith: stream.collected))
            stream.collected = []
        }
    }

    func session(_ session: NGHTTP2Session, streamClosed streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID),
            let closed = stream.machine.streamClosed(errorCode: errorCode)
        else { return }
        stream.deadlineTimer?.cancel()
        stream.writeStallTimer?.cancel()
        budget.streamClosing(streamID)
        if headerBlockStream == streamID {
            // Reset while its header block (request headers or trailers) was being read, e.g. past the header
            // budget: nghttp2 reports no end of that block.
            headerBlockStream = nil
            disarmHeaderTimer()
        }
        if closed.cancelHandler {
            // The client reset the stream (or went away): stop the handler.
            stream.task?.cancel()
            stream.inbound?.finish(throwing: RPCError(code: .cancelled, message: "the client cancelled the call"))
        }
        let waiters = stream.writeWaiters
        stream.writeWaiters = []
        waiters.forEach { $0.resume(throwing: RPCError(code: .cancelled, message: "the call has ended")) }
        releaseBuffered(closed.releasedBufferedBytes)
        // Window held for messages that will never be read now: nghttp2 returns no connection-level window for a
        // closed stream by itself, and a few such streams would otherwise stall the connection for good.
        if closed.releasedWindow > 0 { session.consume(closed.releasedWindow, on: streamID) }
        budget.streamClosed(streamID, rawBytes: closed.releasedRawBytes)
        requestBytes.add(-closed.releasedRawBytes)
        wakeTailWaiters()
        if streams.isEmpty {
            resetIdleTimer()
        }
    }

    // MARK: - Running handlers

    private func launch(_ stream: Stream, requests: InboundMessages) {
        guard let call = stream.call, let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let sink = StreamResponseSink(handler: loopBound, eventLoop: eventLoop, streamID: stream.id)
        let id = stream.id
        stream.task = Task(executorPreference: configuration.runHandlersOnEventLoop ? taskExecutor : nil) {
            let outcome = await call.run(requests: requests, responses: sink)
            let complete: @Sendable () -> Void = {
                let handler = loopBound.value
                guard let stream = handler.streams[id] else { return }
                switch outcome {
                case .success(let message): handler.finish(stream, message: message)
                case .failure(let error): handler.finish(stream, with: error)
                }
                handler.scheduleFlush()
            }
            // A handler task that prefers this loop usually ends on it: finish inline rather than hop.
            if eventLoop.inEventLoop { complete() } else { eventLoop.execute(complete) }
        }
    }

    fileprivate func write(
        _ message: ByteBuffer, compress: Bool?, on id: Int32, continuation: CheckedContinuation<Void, any Error>
    ) {
        write(contentsOf: CollectionOfOne(message), compress: compress, on: id, continuation: continuation)
    }

    /// Queues the messages in order; resumes the writer at once while the stream's queue is under the high-water
    /// mark, otherwise once the client has read it down (or the write-stall timeout resets the stream).
    fileprivate func write<Messages: Collection<ByteBuffer>>(
        contentsOf messages: Messages, compress: Bool?, on id: Int32, continuation: CheckedContinuation<Void, any Error>
    ) {
        guard let stream = streams[id], stream.machine.canRespond else {
            continuation.resume(throwing: RPCError(code: .cancelled, message: "the call has ended"))
            return
        }
        for message in messages {
            guard message.readableBytes <= configuration.maxSendMessageSize else {
                continuation.resume(
                    throwing: RPCError(
                        code: .resourceExhausted,
                        message: "response message of \(message.readableBytes) bytes exceeds the limit of \(configuration.maxSendMessageSize)"))
                scheduleFlush()
                return
            }
            do {
                try sendMessage(message, compress: compress, on: stream)
            } catch {
                continuation.resume(throwing: error)
                scheduleFlush()
                return
            }
        }
        if session.queuedBytes(on: id) < configuration.streamWriteHighWatermark {
            continuation.resume()
        } else {
            stream.writeWaiters.append(continuation)
            armWriteStallTimer(stream)
        }
        scheduleFlush()
    }

    /// A client that stops reading a response would otherwise hold its handler (and what the handler holds) for as
    /// long as the connection lives: once no response bytes have left the stream for the stall timeout while a
    /// writer waits, the stream is reset, which ends the handler's writes. Progress only stamps `lastDrained`; the
    /// timer re-arms itself for the rest of the period when it finds the client read meanwhile.
    private func armWriteStallTimer(_ stream: Stream) {
        guard stream.writeStallTimer == nil, let timeout = configuration.streamWriteStallTimeout else { return }
        stream.lastDrained = now
        scheduleWriteStallTimer(stream, at: now + .nanoseconds(timeout.nanoseconds))
    }

    private func scheduleWriteStallTimer(_ stream: Stream, at deadline: NIODeadline) {
        guard let timeout = configuration.streamWriteStallTimeout, let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = stream.id
        stream.writeStallTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            let handler = loopBound.value
            guard let stream = handler.streams[id] else { return }
            stream.writeStallTimer = nil
            guard !stream.writeWaiters.isEmpty else { return }
            if let drained = stream.lastDrained, drained + .nanoseconds(timeout.nanoseconds) > handler.now {
                return handler.scheduleWriteStallTimer(stream, at: drained + .nanoseconds(timeout.nanoseconds))
            }
            handler.logger.debug("stream reset: the client read no response bytes in time", metadata: ["stream_id": "\(id)"])
            stream.task?.cancel()
            let waiters = stream.writeWaiters
            stream.writeWaiters = []
            let error = RPCError(code: .cancelled, message: "the client stopped reading the response; the stream was reset")
            waiters.forEach { $0.resume(throwing: error) }
            // A reset, not trailers: trailers would wait behind the response bytes the client is not reading.
            handler.session.resetStream(id, code: .cancel)
            handler.flush()
        }
    }

    private func sendHeadersIfNeeded(_ stream: Stream) {
        guard stream.machine.prepareResponseHeaders() else { return }
        var headers: [(String, String)] = [
            (GRPCHeaderName.httpStatus, "200"), (GRPCHeaderName.contentType, GRPCHeaderValue.contentType),
        ]
        // Announce the encoding whenever the client accepts one, so any later message may be compressed; each
        // message's flag still says whether it is.
        if stream.responseEncoding != .identity {
            headers.append((GRPCHeaderName.encoding, stream.responseEncoding.rawValue))
        }
        headers.append((GRPCHeaderName.acceptEncoding, MessageEncoding.acceptHeader))
        if let initial = stream.call?.context.initialMetadata {
            headers.append(contentsOf: initial.wireHeaders.filter { !Metadata.isReserved($0.name) })
        }
        session.submitResponse(streamID: stream.id, headers: headers)
        resetPingStrikes()
    }

    private func sendMessage(_ message: ByteBuffer, compress: Bool?, on stream: Stream) throws {
        let wanted = compress ?? stream.call?.context.compressResponses ?? false
        sendHeadersIfNeeded(stream)
        let compressed = wanted && stream.responseEncoding != .identity
        if compressed {
            var framed = context.channel.allocator.buffer(capacity: message.readableBytes / 2 + GRPCFraming.prefixLength)
            GRPCFraming.frame(try stream.responseEncoding.compress(message), compressed: true, into: &framed)
            session.enqueue(framed, on: stream.id)
        } else if let framed = GRPCFraming.frameInPlace(message) {
            session.enqueue(framed, on: stream.id)
        } else {
            var framed = context.channel.allocator.buffer(capacity: message.readableBytes + GRPCFraming.prefixLength)
            GRPCFraming.frame(message, compressed: false, into: &framed)
            session.enqueue(framed, on: stream.id)
        }
        // As in gRPC, data sent resets the strikes, not only headers: grpcio and grpc-go probe the bandwidth with a PING
        // after data they receive, so a long-lived server stream (notifications, change feeds) was told to calm down
        // after its third message.
        resetPingStrikes()
    }

    func session(_ session: NGHTTP2Session, didDrainOutboundOn streamID: Int32, remaining: Int) {
        guard let stream = streams[streamID], !stream.writeWaiters.isEmpty else { return }
        guard remaining < configuration.streamWriteHighWatermark else {
            stream.lastDrained = now
            return
        }
        stream.writeStallTimer?.cancel()
        stream.writeStallTimer = nil
        let waiters = stream.writeWaiters
        stream.writeWaiters = []
        waiters.forEach { $0.resume() }
    }

    private func finish(_ stream: Stream, message: ByteBuffer?) {
        guard stream.machine.canRespond else { return }
        if let message {
            guard message.readableBytes <= configuration.maxSendMessageSize else {
                finish(
                    stream,
                    with: RPCError(
                        code: .resourceExhausted,
                        message: "response message of \(message.readableBytes) bytes exceeds the limit of \(configuration.maxSendMessageSize)"))
                return
            }
            do {
                try sendMessage(message, compress: nil, on: stream)
            } catch {
                finish(stream, with: RPCError.from(error))
                return
            }
        }
        sendHeadersIfNeeded(stream)
        respond(stream, runner.finalStatus(nil, of: stream.call))
    }

    private func finish(_ stream: Stream, with error: RPCError) {
        guard stream.machine.canRespond || stream.machine.isReceivingHeaders else { return }
        respond(stream, runner.finalStatus(error, of: stream.call))
        stream.inbound?.finish(throwing: error)
        // No RST_STREAM here even if the client is still sending: nghttp2 would put it on the wire before the
        // queued trailers and the client would see a reset instead of the status. Further DATA is discarded and
        // the client closes its side once it has the status.
        let waiters = stream.writeWaiters
        stream.writeWaiters = []
        waiters.forEach { $0.resume(throwing: error) }
    }

    /// Sends the RPC core's final status as trailers (or as Trailers-Only when nothing was sent yet).
    private func respond(_ stream: Stream, _ final: ServerResponseStatus) {
        guard let action = stream.machine.respond() else { return }
        stream.deadlineTimer?.cancel()
        var trailers: [(String, String)] = [(GRPCHeaderName.status, String(final.status.code.rawValue))]
        if !final.status.message.isEmpty {
            trailers.append((GRPCHeaderName.message, PercentEncoding.encode(final.status.message)))
        }
        if !final.trailingMetadata.isEmpty {
            trailers.append(contentsOf: final.trailingMetadata.wireHeaders.filter { final.sends($0.name) })
        }
        switch action {
        case .trailers:
            session.enqueueTrailers(trailers, on: stream.id)
        case .trailersOnly:
            session.submitTrailersOnly(
                streamID: stream.id,
                headers: [(GRPCHeaderName.httpStatus, "200"), (GRPCHeaderName.contentType, GRPCHeaderValue.contentType)]
                    + trailers)
        }
    }

    private func respondTrailersOnly(_ stream: Stream, _ error: RPCError) {
        finish(stream, with: error)
    }

    private func respondHTTP(_ stream: Stream, status: Int) {
        guard stream.machine.respond() != nil else { return }
        session.submitTrailersOnly(streamID: stream.id, headers: [(GRPCHeaderName.httpStatus, String(status))])
    }
}

/// The response sink handed to a handler: hops to the connection's event loop for every write.
private struct StreamResponseSink: ServerResponseSink {
    let handler: NIOLoopBound<ServerConnectionHandler>
    let eventLoop: any EventLoop
    let streamID: Int32

    func write(_ message: ByteBuffer, compress: Bool?) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            eventLoop.execute {
                handler.value.write(message, compress: compress, on: streamID, continuation: continuation)
            }
        }
    }

    func write(contentsOf messages: [ByteBuffer], compress: Bool?) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            eventLoop.execute {
                handler.value.write(contentsOf: messages, compress: compress, on: streamID, continuation: continuation)
            }
        }
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (s, a) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : ns + a / 1_000_000_000
    }
}
