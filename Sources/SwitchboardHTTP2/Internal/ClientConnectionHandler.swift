import NIOCore
import SwitchboardRPC
import Synchronization

/// One client call's shared state: written on the connection's event loop, read by the caller's task.
final class HTTP2ClientCall: ClientCallStream, @unchecked Sendable {
    // @unchecked: the mutable fields below are only touched on `eventLoop`; what callers read is behind promises
    // and `InboundMessages`, which are themselves thread-safe.
    let eventLoop: any EventLoop
    let responses: InboundMessages
    let initialMetadataPromise: EventLoopPromise<Metadata>
    let trailersPromise: EventLoopPromise<(Status, Metadata)>
    let maxMessageSize: Int
    let requestEncoding: MessageEncoding
    weak var connection: ClientConnectionHandler?

    // Event-loop state.
    var streamID: Int32 = 0
    var deframer: GRPCMessageDeframer
    var responseEncoding: MessageEncoding = .identity
    var receivedHeaders = false
    var headerBlock: [(String, String)] = []
    var finished = false
    var bufferedBytes = 0
    var owedWindow = 0
    var writeWaiters: [CheckedContinuation<Void, any Error>] = []
    var deadlineTimer: Scheduled<Void>?
    var finalStatus: Status?
    /// The trailers the call ended with: a send after an early answer fails with the server's details, not without them.
    var finalTrailers: Metadata = [:]
    /// Set (on the loop) when the server provably never processed the call; read by the caller after a failure.
    let notProcessed = Atomic<Bool>(false)

    init(eventLoop: any EventLoop, maxMessageSize: Int, requestEncoding: MessageEncoding) {
        self.eventLoop = eventLoop
        self.maxMessageSize = maxMessageSize
        self.requestEncoding = requestEncoding
        self.deframer = GRPCMessageDeframer(maxMessageSize: maxMessageSize)
        self.initialMetadataPromise = eventLoop.makePromise()
        self.trailersPromise = eventLoop.makePromise()
        self.responses = InboundMessages()
    }

    func send(_ message: ByteBuffer) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            eventLoop.execute {
                guard let connection = self.connection else {
                    continuation.resume(
                        throwing: RPCError(
                            code: .unavailable, message: "the connection closed",
                            cause: self.notProcessed.load(ordering: .relaxed) ? CallNotProcessed() : nil))
                    return
                }
                connection.send(message, on: self, continuation: continuation)
            }
        }
    }

    func finishSending() async throws {
        try await eventLoop.submit {
            guard let connection = self.connection else { return }
            connection.finishSending(self)
        }.get()
    }

    func initialMetadata() async throws -> Metadata { try await initialMetadataPromise.futureResult.get() }

    func trailers() async throws -> (Status, Metadata) { try await trailersPromise.futureResult.get() }

    func cancel() {
        eventLoop.execute {
            self.connection?.cancel(self, with: RPCError(code: .cancelled, message: "the call was cancelled"))
        }
    }

    /// Ends the call with `status` (on the event loop); `notProcessed` when the server provably never started it (see
    /// ``CallNotProcessed``), which lets the client send it again.
    func complete(status: Status, trailers: Metadata, notProcessed: Bool = false) {
        guard !finished else { return }
        finished = true
        finalStatus = status
        finalTrailers = trailers
        if notProcessed { self.notProcessed.store(true, ordering: .relaxed) }
        deadlineTimer?.cancel()
        if status.code == .ok {
            responses.finish()
        } else {
            responses.finish(
                throwing: RPCError(code: status.code, message: status.message, metadata: trailers, cause: notProcessed ? CallNotProcessed() : nil))
        }
        initialMetadataPromise.succeed(Metadata())  // ignored if already completed
        trailersPromise.succeed((status, trailers))
        let waiters = writeWaiters
        writeWaiters = []
        let error = RPCError(code: status.code == .ok ? .cancelled : status.code, message: "the call has ended")
        waiters.forEach { $0.resume(throwing: error) }
    }
}

/// Drives one client HTTP/2 connection: opens streams for calls, routes frames back to them.
final class ClientConnectionHandler: ChannelInboundHandler, NGHTTP2SessionDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var session: NGHTTP2Session!
    private var calls: [Int32: HTTP2ClientCall] = [:]
    private var context: ChannelHandlerContext?
    private var outputBuffer = ByteBuffer()
    /// A flush is queued on the loop (``scheduleFlush()``).
    private var flushScheduled = false
    private let authority: String
    private let scheme: String
    private let windowSize: Int
    private let writeHighWatermark = 256 * 1024
    /// Set when the peer sent GOAWAY or the channel closed: no new calls here.
    private(set) var isDraining = false
    let onDraining: @Sendable () -> Void
    /// Succeeds when the server's first SETTINGS arrives: only then does nghttp2 know how many streams it may open,
    /// so calls started earlier could be refused.
    let ready: EventLoopPromise<Void>

    init(
        authority: String, scheme: String, windowSize: Int, ready: EventLoopPromise<Void>,
        onDraining: @escaping @Sendable () -> Void
    ) {
        self.authority = authority
        self.scheme = scheme
        self.windowSize = windowSize
        self.ready = ready
        self.onDraining = onDraining
    }

    func sessionReceivedSettings(_ session: NGHTTP2Session) {
        ready.succeed(())
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        var settings = HTTP2Settings()
        settings.initialWindowSize = UInt32(windowSize)
        settings.maxConcurrentStreams = 0
        session = NGHTTP2Session(isServer: false, settings: settings)
        session.delegate = self
        flush()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ready.fail(RPCError(code: .unavailable, message: "the connection closed before the server's SETTINGS"))
        failAll(RPCError(code: .unavailable, message: "the connection closed"))
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(RPCError(code: .unavailable, message: "the connection closed before the server's SETTINGS"))
        markDraining()
        failAll(RPCError(code: .unavailable, message: "the connection closed"))
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try session.receive(unwrapInboundIn(data))
        } catch {
            markDraining()
            failAll(RPCError(code: .internal, message: "HTTP/2 protocol error: \(error)"))
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { flush() }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flush() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        markDraining()
        failAll(RPCError(code: .unavailable, message: "connection error: \(error)"))
        context.close(promise: nil)
    }

    private func markDraining() {
        guard !isDraining else { return }
        isDraining = true
        onDraining()
    }

    private func failAll(_ error: RPCError) {
        let all = calls.values
        calls.removeAll()
        for call in all { call.complete(status: error.status, trailers: error.metadata) }
    }

    /// Writes what nghttp2 has queued while the channel is writable; the rest stays in nghttp2's per-stream
    /// queues (which hold back callers' writes) until `channelWritabilityChanged`.
    func flush() {
        guard let context else { return }
        while context.channel.isWritable {
            do {
                try session.drainOutput(into: &outputBuffer, limit: 64 * 1024)
            } catch {
                context.close(promise: nil)
                return
            }
            guard outputBuffer.readableBytes > 0 else { return }
            let out = outputBuffer
            outputBuffer = context.channel.allocator.buffer(capacity: 0)
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        }
    }

    /// Flushes after what the loop is running now: the calls a proxy starts for requests that arrived together (the
    /// gateway's, on this loop) then leave in one write instead of one each.
    private func scheduleFlush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            loopBound.value.flushScheduled = false
            loopBound.value.flush()
        }
    }

    // MARK: - Calls (all on the event loop)

    /// Opens the call's stream; with `onlyMessage`, also sends that message and ends the request (a unary call: headers,
    /// message and end of stream go out in one write).
    func start(_ call: HTTP2ClientCall, method: MethodDescriptor, options: CallOptions, userAgent: String, onlyMessage: ByteBuffer? = nil) {
        guard !isDraining, let context else {
            // Nothing was sent: another connection may take the call.
            call.complete(status: Status(code: .unavailable, message: "the connection is closing"), trailers: [:], notProcessed: true)
            return
        }
        var headers: [(String, String)] = [
            (GRPCHeaderName.method, GRPCHeaderValue.post), (GRPCHeaderName.scheme, scheme),
            (GRPCHeaderName.path, method.path), (GRPCHeaderName.authority, authority),
            (GRPCHeaderName.contentType, GRPCHeaderValue.contentType), (GRPCHeaderName.te, GRPCHeaderValue.trailers),
            (GRPCHeaderName.userAgent, userAgent), (GRPCHeaderName.acceptEncoding, MessageEncoding.acceptHeader),
        ]
        if let timeout = options.timeout { headers.append((GRPCHeaderName.timeout, GRPCTimeout.encode(timeout))) }
        if call.requestEncoding != .identity { headers.append((GRPCHeaderName.encoding, call.requestEncoding.rawValue)) }
        headers.append(contentsOf: options.metadata.wireHeaders.filter { !Metadata.isReserved($0.name) })
        guard let id = session.submitRequest(headers: headers) else {
            call.complete(status: Status(code: .unavailable, message: "no stream could be opened"), trailers: [:], notProcessed: true)
            return
        }
        call.streamID = id
        call.connection = self
        calls[id] = call
        if let timeout = options.timeout {
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            call.deadlineTimer = context.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
                loopBound.value.cancel(call, with: RPCError(code: .deadlineExceeded, message: "deadline exceeded"))
            }
        }
        // Return window as the caller takes response messages (backpressure toward the server). The call holds its
        // messages, which hold this closure: a strong capture of the call would keep every call alive forever.
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        call.responses.setOnConsume { [weak call] bytes in
            guard let call else { return }
            call.eventLoop.execute { loopBound.value.consumed(bytes, on: call) }
        }
        if let onlyMessage {
            do {
                session.enqueue(try frame(onlyMessage, for: call), on: id)
            } catch {
                cancel(call, with: RPCError(code: .internal, message: "compression failed", cause: error))
                return
            }
            session.enqueueEndStream(on: id)
        }
        scheduleFlush()
    }

    private func frame(_ message: ByteBuffer, for call: HTTP2ClientCall) throws -> ByteBuffer {
        var framed = ByteBuffer()
        if call.requestEncoding != .identity {
            GRPCFraming.frame(try call.requestEncoding.compress(message), compressed: true, into: &framed)
        } else {
            GRPCFraming.frame(message, compressed: false, into: &framed)
        }
        return framed
    }

    func send(_ message: ByteBuffer, on call: HTTP2ClientCall, continuation: CheckedContinuation<Void, any Error>) {
        guard !call.finished, calls[call.streamID] === call else {
            let status = call.finalStatus ?? Status(code: .cancelled, message: "the call has ended")
            continuation.resume(
                throwing: RPCError(
                    code: status.code == .ok ? .cancelled : status.code,
                    message: status.code == .ok ? "the call has ended" : status.message, metadata: call.finalTrailers,
                    cause: call.notProcessed.load(ordering: .relaxed) ? CallNotProcessed() : nil))
            return
        }
        let framed: ByteBuffer
        do {
            framed = try frame(message, for: call)
        } catch {
            continuation.resume(throwing: RPCError(code: .internal, message: "compression failed", cause: error))
            return
        }
        session.enqueue(framed, on: call.streamID)
        if session.queuedBytes(on: call.streamID) < writeHighWatermark {
            continuation.resume()
        } else {
            call.writeWaiters.append(continuation)
        }
        flush()
    }

    func finishSending(_ call: HTTP2ClientCall) {
        guard calls[call.streamID] === call else { return }
        session.enqueueEndStream(on: call.streamID)
        flush()
    }

    func cancel(_ call: HTTP2ClientCall, with error: RPCError) {
        guard !call.finished else { return }
        if calls.removeValue(forKey: call.streamID) != nil {
            session.resetStream(call.streamID, code: .cancel)
        }
        call.complete(status: error.status, trailers: error.metadata)
        flush()
    }

    private func consumed(_ bytes: Int, on call: HTTP2ClientCall) {
        call.bufferedBytes -= bytes
        if call.owedWindow > 0, call.bufferedBytes < windowSize {
            session.consume(call.owedWindow, on: call.streamID)
            call.owedWindow = 0
            flush()
        }
    }

    // MARK: - Session events

    func session(_ session: NGHTTP2Session, beginHeadersOn streamID: Int32) {
        calls[streamID]?.headerBlock = []
    }

    func session(_ session: NGHTTP2Session, header name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, on streamID: Int32) {
        calls[streamID]?.headerBlock.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }

    func session(_ session: NGHTTP2Session, endHeadersOn streamID: Int32, endStream: Bool) {
        guard let call = calls[streamID] else { return }
        let block = call.headerBlock
        call.headerBlock = []
        if !call.receivedHeaders {
            call.receivedHeaders = true
            var httpStatus = 0
            var contentType = ""
            var metadata = Metadata()
            for (name, value) in block {
                switch name {
                case GRPCHeaderName.httpStatus: httpStatus = Int(value) ?? 0
                case GRPCHeaderName.contentType: contentType = value
                case GRPCHeaderName.encoding: call.responseEncoding = MessageEncoding(rawValue: value) ?? .identity
                default:
                    if !Metadata.isReserved(name) { try? metadata.addWire(value, forKey: name) }
                }
            }
            guard httpStatus == 200 else {
                finish(call, status: Status(code: Self.code(forHTTPStatus: httpStatus), message: "HTTP status \(httpStatus)"), trailers: [:])
                return
            }
            if endStream {
                // Trailers-Only.
                processTrailers(block, on: call)
                return
            }
            guard contentType.hasPrefix(GRPCHeaderValue.contentType) else {
                finish(call, status: Status(code: .unknown, message: "unexpected content-type \(contentType)"), trailers: [:])
                return
            }
            call.initialMetadataPromise.succeed(metadata)
        } else {
            processTrailers(block, on: call)
        }
    }

    private func processTrailers(_ block: [(String, String)], on call: HTTP2ClientCall) {
        var code: StatusCode?
        var message = ""
        var metadata = Metadata()
        for (name, value) in block {
            switch name {
            case GRPCHeaderName.status: code = Int(value).map(StatusCode.init(rawValue:))
            case GRPCHeaderName.message: message = PercentEncoding.decode(value)
            case GRPCHeaderName.statusDetails: try? metadata.addWire(value, forKey: name)
            default:
                if !Metadata.isReserved(name) { try? metadata.addWire(value, forKey: name) }
            }
        }
        if call.deframer.hasPartialMessage {
            finish(call, status: Status(code: .internal, message: "the response ended inside a message"), trailers: metadata)
            return
        }
        finish(
            call, status: Status(code: code ?? .unknown, message: code == nil ? "no grpc-status received" : message),
            trailers: metadata)
    }

    private func finish(_ call: HTTP2ClientCall, status: Status, trailers: Metadata) {
        call.complete(status: status, trailers: trailers)
    }

    func session(_ session: NGHTTP2Session, data: UnsafeRawBufferPointer, on streamID: Int32) {
        guard let call = calls[streamID], !call.finished else {
            session.consumeConnection(data.count)
            return
        }
        call.deframer.append(data)
        do {
            while let (payload, _) = try call.deframer.nextDecoded(encoding: call.responseEncoding) {
                call.bufferedBytes += payload.readableBytes
                call.responses.yield(payload)
            }
        } catch {
            session.consume(data.count, on: streamID)
            cancel(call, with: RPCError.from(error))
            return
        }
        if call.bufferedBytes < windowSize {
            session.consume(data.count, on: streamID)
        } else {
            call.owedWindow += data.count
        }
    }

    func session(_ session: NGHTTP2Session, endStreamOn streamID: Int32) {}

    func session(_ session: NGHTTP2Session, streamClosed streamID: Int32, errorCode: UInt32) {
        guard let call = calls.removeValue(forKey: streamID) else { return }
        if !call.finished {
            let refused = errorCode == HTTP2ErrorCode.refusedStream.rawValue
            let code: StatusCode = refused ? .unavailable : errorCode == HTTP2ErrorCode.cancel.rawValue ? .cancelled : .internal
            call.complete(
                status: Status(code: code, message: "stream closed without status (HTTP/2 error \(errorCode))"), trailers: [:],
                notProcessed: refused)
        }
    }

    func sessionReceivedPing(_ session: NGHTTP2Session) {}
    func sessionReceivedPingAck(_ session: NGHTTP2Session) {}

    func session(_ session: NGHTTP2Session, goAwayWithLastStreamID lastStreamID: Int32, errorCode: UInt32) {
        markDraining()
        for (id, call) in calls where id > lastStreamID {
            calls[id] = nil
            call.complete(
                status: Status(code: .unavailable, message: "the server went away before processing the call"), trailers: [:], notProcessed: true)
        }
    }

    func session(_ session: NGHTTP2Session, didDrainOutboundOn streamID: Int32, remaining: Int) {
        guard let call = calls[streamID], remaining < writeHighWatermark, !call.writeWaiters.isEmpty else { return }
        let waiters = call.writeWaiters
        call.writeWaiters = []
        waiters.forEach { $0.resume() }
    }

    /// gRPC's mapping of HTTP statuses for responses that are not gRPC.
    static func code(forHTTPStatus status: Int) -> StatusCode {
        switch status {
        case 400: return .internal
        case 401: return .unauthenticated
        case 403: return .permissionDenied
        case 404: return .unimplemented
        case 429, 502, 503, 504: return .unavailable
        default: return .unknown
        }
    }
}
