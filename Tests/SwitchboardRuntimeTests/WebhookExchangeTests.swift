import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import SwitchboardRuntime

/// How the webhook client's connection handler classifies the end of one exchange. Only ``WebhookExchangeError/notWritten``
/// lets the client post again (on a fresh connection), so it must mean "the server cannot have had the whole request":
/// these cases pin that down without sockets or timing. Synchronous: an embedded event loop runs its callbacks only on
/// the thread that drives it.
@Suite("Webhook client: exchange outcomes")
struct WebhookExchangeTests {
    /// Where a future's result lands; touched only on the test's thread (the embedded loop's).
    private final class Landing: @unchecked Sendable {
        var result: Result<WebhookExchangeHandler.Outcome, any Error>?
    }

    private func connection() throws -> (EmbeddedChannel, WebhookExchangeHandler) {
        let channel = EmbeddedChannel()
        let handler = WebhookExchangeHandler(maxBody: 1024)
        try channel.pipeline.syncOperations.addHTTPClientHandlers()
        try channel.pipeline.syncOperations.addHandler(handler)
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 9), promise: nil)
        return (channel, handler)
    }

    /// Begins an exchange and writes a request, as the client does.
    private func post(_ channel: EmbeddedChannel, _ handler: WebhookExchangeHandler) -> Landing {
        let promise = channel.eventLoop.makePromise(of: WebhookExchangeHandler.Outcome.self)
        handler.begin(promise)
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/hook")
        head.headers.add(name: "Content-Length", value: "2")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: "{}"))), promise: nil)
        let bound = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenComplete { bound.value.written($0) }
        let landing = Landing()
        promise.futureResult.whenComplete { landing.result = $0 }
        channel.embeddedEventLoop.run()
        return landing
    }

    private func close(_ channel: EmbeddedChannel) {
        channel.close(promise: nil)
        channel.embeddedEventLoop.run()
    }

    private func answer(_ channel: EmbeddedChannel, _ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
        channel.embeddedEventLoop.run()
    }

    @Test("a connection closed before the request was written: notWritten (the only case the client posts again)")
    func closedBeforeWrite() throws {
        let (channel, handler) = try connection()
        close(channel)
        let landing = post(channel, handler)
        let error = #expect(throws: WebhookExchangeError.self) { _ = try landing.result?.get() }
        guard case .notWritten = error else {
            Issue.record("\(String(describing: error))")
            return
        }
    }

    @Test("written, then closed without an answer, or with half an answer: a connection error, never notWritten")
    func closedAfterWrite() throws {
        let (channel, handler) = try connection()
        let silent = post(channel, handler)
        #expect(silent.result == nil)
        close(channel)
        #expect(throws: WebhookError.self) { _ = try silent.result?.get() }

        let (other, otherHandler) = try connection()
        let partial = post(other, otherHandler)
        try answer(other, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"id\"")
        #expect(partial.result == nil)
        close(other)
        #expect(throws: WebhookError.self) { _ = try partial.result?.get() }
    }

    @Test("a framed keep-alive answer leaves the connection reusable; Connection: close or an unframed body does not")
    func reusable() throws {
        let (channel, handler) = try connection()
        let first = post(channel, handler)
        try answer(channel, "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
        let outcome = try #require(try first.result?.get())
        #expect(outcome.response.status == 202 && outcome.response.body == Array("{}".utf8) && outcome.reusable)
        // The same connection carries the next exchange.
        let second = post(channel, handler)
        try answer(channel, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        #expect(try #require(try second.result?.get()).reusable == false)

        let (unframed, unframedHandler) = try connection()
        let third = post(unframed, unframedHandler)
        try answer(unframed, "HTTP/1.1 200 OK\r\n\r\n{}")
        close(unframed)
        let ended = try #require(try third.result?.get())
        #expect(ended.response.status == 200 && !ended.reusable)
    }
}
