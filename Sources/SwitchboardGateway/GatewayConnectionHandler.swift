import FoundationEssentials
import Logging
import NIOCore
import NIOHTTP1
import SwitchboardHTTP2

/// Answers one HTTP/1.1 connection's requests in order, one at a time, from the channel's pipeline (the last
/// handler, after the HTTP codec and the ``ConnectionGuard``).
///
/// A request's body is gathered here (bounded), and the ``Gateway`` handles the whole request in a task that prefers
/// the connection's event loop, writing its response through a ``ConnectionResponseWriter``. This replaced a task per
/// connection reading an `NIOAsyncChannel`: handing every request part to an async sequence and every response to an
/// async writer cost about an eighth of the gateway's CPU per request (JSON GetContact at 8 clients: 74 against 66 µs,
/// BENCHMARKS.md).
///
/// Pipelined requests wait their turn in arrival order. While a request is answered the connection is still read (a
/// client that goes away must be noticed: a quiet stream of changes would otherwise hold its upstream call), but once a
/// whole next request waits, no more is read until it is taken: a connection holds at most the request being answered,
/// the requests decoded from one read, and one body being gathered (each bounded).
final class GatewayConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// A request received in full, or one refused for its size.
    private struct Received {
        var head: HTTPRequestHead
        var body: ByteBuffer
        var tooLarge: Bool
    }

    private enum Reading {
        /// Between requests.
        case idle
        /// A request's head came; its body is gathered until its end.
        case body(HTTPRequestHead, ByteBuffer, tooLarge: Bool)
        /// A request declared a body past the limit: it is refused and the connection closes; nothing more is read.
        case refused
    }

    private let gateway: Gateway
    private let maxBody: Int
    private let client = ClientConnection()
    private var reading = Reading.idle
    private var waiting = CircularBuffer<Received>()
    /// A request is being answered.
    private var busy = false
    /// The channel asked for bytes while a request was waiting: asked again once none waits.
    private var readHeld = false
    /// The task answering the current request, cancelled if the connection closes.
    private var current: Task<Void, Never>?
    /// Response writers waiting for the channel to take more.
    private var writabilityWaiters: [CheckedContinuation<Void, any Error>] = []
    /// The last write of a response that ends the connection, closed once written.
    private var closingWrite: EventLoopFuture<Void>?
    private var context: ChannelHandlerContext?

    init(gateway: Gateway, maxBody: Int) {
        self.gateway = gateway
        self.maxBody = maxBody
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        client.closed()
        current?.cancel()
        waiting.removeAll()
        let waiters = writabilityWaiters
        writabilityWaiters = []
        for waiter in waiters { waiter.resume(throwing: ChannelError.ioOnClosedChannel) }
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            let waiters = writabilityWaiters
            writabilityWaiters = []
            for waiter in waiters { waiter.resume() }
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if waiting.isEmpty {
            context.read()
        } else {
            readHeld = true
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .refused = reading { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            // A declared length past the limit is refused before any of the body is read.
            if let declared = head.headers.first(name: "content-length").flatMap({ Int($0) }), declared > maxBody {
                reading = .refused
                waiting.append(Received(head: head, body: ByteBuffer(), tooLarge: true))
                startNext(context)
                return
            }
            reading = .body(head, ByteBuffer(), tooLarge: false)
        case .body(var chunk):
            guard case .body(let head, var body, let tooLarge) = reading, !tooLarge else { return }
            // Out of the enum while it grows: `body` is then the buffer's only owner, and appending does not copy it.
            reading = .idle
            if body.readableBytes + chunk.readableBytes > maxBody {
                reading = .body(head, ByteBuffer(), tooLarge: true)
            } else {
                body.writeBuffer(&chunk)
                reading = .body(head, body, tooLarge: false)
            }
        case .end:
            // The codec sends an end only after a head.
            guard case .body(let head, let body, let tooLarge) = reading else { return }
            reading = .idle
            waiting.append(Received(head: head, body: body, tooLarge: tooLarge))
            startNext(context)
        }
    }

    /// Answers the next waiting request unless one is being answered.
    private func startNext(_ context: ChannelHandlerContext) {
        guard !busy, let request = waiting.popFirst() else { return }
        busy = true
        if readHeld, waiting.isEmpty {
            readHeld = false
            context.read()
        }
        // HTTP/1.0 has no chunked framing: a response of unknown length ends by closing, so an HTTP/1.0 connection
        // carries one request.
        let keepAlive =
            request.head.isKeepAlive && !request.tooLarge && (request.head.version.major, request.head.version.minor) >= (1, 1)
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let writer = ConnectionResponseWriter(handler: handler, eventLoop: loop, keepAlive: keepAlive, version: request.head.version)
        let gateway = self.gateway, maxBody = self.maxBody
        let gatewayRequest = GatewayRequest(head: request.head, body: request.body, connection: client)
        let tooLarge = request.tooLarge
        // On the connection's own loop: a request arrives there and its response leaves from there, and the upstream call
        // takes a connection of the same loop (eventLoopAffinity), so a request wakes no other thread.
        current = Task(executorPreference: EventLoopTaskExecutor(eventLoop: loop)) {
            if tooLarge {
                await writer.refuseTooLarge(maxBody, logger: gateway.logger)
            } else {
                await gateway.handle(gatewayRequest, writer)
            }
            if loop.inEventLoop {
                handler.value.finished(keepAlive: keepAlive)
            } else {
                loop.execute { handler.value.finished(keepAlive: keepAlive) }
            }
        }
    }

    /// The current request's response ended: the connection closes (once the response is written) or takes the next.
    private func finished(keepAlive: Bool) {
        busy = false
        current = nil
        guard let context, context.channel.isActive else { return }
        guard keepAlive else {
            waiting.removeAll()
            let channel = context.channel
            if let closingWrite {
                closingWrite.whenComplete { _ in channel.close(promise: nil) }
            } else {
                channel.close(promise: nil)
            }
            return
        }
        startNext(context)
    }

    /// Writes a response part; the last one of a closing response is kept to close after it.
    fileprivate func write(_ part: HTTPServerResponsePart, flush: Bool, last: Bool) throws {
        guard let context, context.channel.isActive else { throw ChannelError.ioOnClosedChannel }
        if last {
            let promise = context.eventLoop.makePromise(of: Void.self)
            closingWrite = promise.futureResult
            context.writeAndFlush(wrapOutboundOut(part), promise: promise)
        } else if flush {
            context.writeAndFlush(wrapOutboundOut(part), promise: nil)
        } else {
            context.write(wrapOutboundOut(part), promise: nil)
        }
    }

    /// Whether the channel takes more now.
    fileprivate var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Resumes `waiter` once the channel takes more (at once if it does), or with an error once it closes.
    fileprivate func waitUntilWritable(_ waiter: CheckedContinuation<Void, any Error>) {
        guard let context, context.channel.isActive else { return waiter.resume(throwing: ChannelError.ioOnClosedChannel) }
        if context.channel.isWritable { return waiter.resume() }
        writabilityWaiters.append(waiter)
    }

}

/// Writes one response's parts to its connection, from the task answering it (usually on the connection's loop
/// already). A body part waits while the client is not reading (the channel is not writable), so a stream holds no
/// more than the channel's buffer; every write fails once the connection has closed.
struct ConnectionResponseWriter: HTTPResponseWriter {
    let handler: NIOLoopBound<GatewayConnectionHandler>
    let eventLoop: any EventLoop
    let keepAlive: Bool
    let version: HTTPVersion

    private func onLoop<T: Sendable>(_ body: @escaping @Sendable (GatewayConnectionHandler) throws -> T) async throws -> T {
        if eventLoop.inEventLoop { return try body(handler.value) }
        let handler = self.handler
        return try await eventLoop.submit { try body(handler.value) }.get()
    }

    private func head(_ status: HTTPResponseStatus, _ headers: HTTPHeaders) -> HTTPServerResponsePart {
        var headers = headers
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        return .head(HTTPResponseHead(version: version, status: status, headers: headers))
    }

    func head(_ status: HTTPResponseStatus, _ headers: HTTPHeaders) async throws {
        let part: HTTPServerResponsePart = head(status, headers)
        // Flushed: a stream's head goes out before its first message, which may be minutes away.
        try await onLoop { try $0.write(part, flush: true, last: false) }
    }

    func body(_ bytes: ByteBuffer) async throws {
        let writable = try await onLoop { handler in
            try handler.write(.body(.byteBuffer(bytes)), flush: true, last: false)
            return handler.isWritable
        }
        if writable { return }
        let handler = self.handler, eventLoop = self.eventLoop
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
            if eventLoop.inEventLoop {
                handler.value.waitUntilWritable(waiter)
            } else {
                eventLoop.execute { handler.value.waitUntilWritable(waiter) }
            }
        }
    }

    func end() async throws {
        let last = !keepAlive
        try await onLoop { try $0.write(.end(nil), flush: true, last: last) }
    }

    /// Answers 413 for a request whose body is past the limit (the connection then closes).
    func refuseTooLarge(_ maxBody: Int, logger: Logger) async {
        let text = #"{"code":3,"message":"the request body is larger than \#(maxBody) bytes"}"#
        let headers = HTTPHeaders([
            ("content-type", "application/json"), ("content-length", "\(text.utf8.count)"), ("x-request-id", UUID.randomText()),
        ])
        do {
            try await respond(.payloadTooLarge, headers, ByteBuffer(string: text))
        } catch {
            logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }

    func respond(_ status: HTTPResponseStatus, _ headers: HTTPHeaders, _ body: ByteBuffer) async throws {
        let part: HTTPServerResponsePart = head(status, headers)
        let last = !keepAlive
        try await onLoop { handler in
            try handler.write(part, flush: false, last: false)
            try handler.write(.body(.byteBuffer(body)), flush: false, last: false)
            try handler.write(.end(nil), flush: true, last: last)
        }
    }
}
