import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The gateway's HTTP/1.1 listener: one task per connection reads requests in order (keep-alive and pipelining
/// handled by NIO's server pipeline), each body bounded, and hands them to the ``Gateway``.
public struct GatewayServer: Service {
    let gateway: Gateway
    let host: String
    let port: Int
    let maxConnections: Int
    let idleTimeout: Duration?
    private let address: EventLoopPromise<SocketAddress>

    /// Creates the server.
    /// - Parameters:
    ///   - gateway: what answers requests.
    ///   - host: address to bind.
    ///   - port: port to bind (0 picks one; see ``listeningAddress()``).
    ///   - maxConnections: connections held at once; past it new ones are closed at once.
    ///   - idleTimeout: a connection that sends nothing for this long while no response is being written is closed
    ///     (a quiet stream keeps its connection); nil never closes one.
    public init(gateway: Gateway, host: String, port: Int, maxConnections: Int, idleTimeout: Duration? = .seconds(300)) {
        self.gateway = gateway
        self.host = host
        self.port = port
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.address = MultiThreadedEventLoopGroup.singleton.any().makePromise()
    }

    /// The bound address, once listening.
    /// - Returns: the address.
    /// - Throws: when binding failed.
    public func listeningAddress() async throws -> SocketAddress {
        try await address.futureResult.get()
    }

    public func run() async throws {
        let gateway = self.gateway, maxBody = gateway.configuration.maxBodyBytes, idleTimeout = self.idleTimeout
        let server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let idleTimeout {
                            try channel.pipeline.syncOperations.addHandler(
                                IdleStateHandler(
                                    readTimeout: .nanoseconds(
                                        Int64(idleTimeout.components.seconds) * 1_000_000_000
                                            + idleTimeout.components.attoseconds / 1_000_000_000)))
                        }
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        if idleTimeout != nil { try channel.pipeline.syncOperations.addHandler(IdleConnectionCloser()) }
                        return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            address.fail(error)
            throw error
        }
        address.succeed(server.channel.localAddress!)
        gateway.logger.info("gateway listening", metadata: ["address": "\(server.channel.localAddress.map { "\($0)" } ?? "?")"])
        let open = ConnectionCounter()
        let maxConnections = self.maxConnections
        // The server channel's iteration ignores task cancellation: close it on cancellation and on graceful shutdown.
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await withThrowingDiscardingTaskGroup { group in
                    try await server.executeThenClose { connections in
                        for try await connection in connections {
                            guard open.count.wrappingAdd(1, ordering: .relaxed).newValue <= maxConnections else {
                                open.count.wrappingSubtract(1, ordering: .relaxed)
                                try? await connection.channel.close()
                                continue
                            }
                            group.addTask {
                                defer { open.count.wrappingSubtract(1, ordering: .relaxed) }
                                await Self.serve(connection, gateway: gateway, maxBody: maxBody)
                            }
                        }
                    }
                }
            } onGracefulShutdown: {
                server.channel.close(promise: nil)
            }
        } onCancel: {
            server.channel.close(promise: nil)
        }
    }

    private static func serve(
        _ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, gateway: Gateway, maxBody: Int
    ) async {
        let closed = connection.channel.closeFuture
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body = ByteBuffer()
                var tooLarge = false
                for try await part in inbound {
                    switch part {
                    case .head(let h):
                        head = h
                        body.clear()
                        tooLarge = false
                    case .body(var chunk):
                        if tooLarge { continue }
                        if body.readableBytes + chunk.readableBytes > maxBody {
                            tooLarge = true
                            body.clear()
                        } else {
                            body.writeBuffer(&chunk)
                        }
                    case .end:
                        guard let h = head else { continue }
                        head = nil
                        let writer = OutboundWriter(outbound: outbound, keepAlive: h.isKeepAlive && !tooLarge, version: h.version)
                        if tooLarge {
                            let text = #"{"code":3,"message":"the request body is larger than \#(maxBody) bytes"}"#
                            var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", "\(text.utf8.count)")])
                            headers.add(name: "connection", value: "close")
                            try await writer.head(.payloadTooLarge, headers)
                            try await writer.body(ByteBuffer(string: text))
                            try await writer.end()
                            return
                        }
                        await gateway.handle(GatewayRequest(head: h, body: body, closed: closed), writer)
                        body = ByteBuffer()
                        if !writer.keepAlive { return }
                    }
                }
            }
        } catch {
            gateway.logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }
}

/// Writes one response's parts to the connection.
struct OutboundWriter: HTTPResponseWriter {
    let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    let keepAlive: Bool
    let version: HTTPVersion

    func head(_ status: HTTPResponseStatus, _ headers: HTTPHeaders) async throws {
        var headers = headers
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        try await outbound.write(.head(HTTPResponseHead(version: version, status: status, headers: headers)))
    }

    func body(_ bytes: ByteBuffer) async throws {
        try await outbound.write(.body(.byteBuffer(bytes)))
    }

    func end() async throws {
        try await outbound.write(.end(nil))
    }
}

/// Connections open at once.
final class ConnectionCounter: Sendable {
    let count = Atomic<Int>(0)
}

/// Closes a connection that went quiet between requests (the idle event of the `IdleStateHandler` before the HTTP
/// codec), but never one whose response is still being written: a watch stream may send nothing for minutes.
final class IdleConnectionCloser: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Requests whose head arrived and whose response has not ended.
    private var open = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { open += 1 }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { open = max(0, open - 1) }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            if open == 0 { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
