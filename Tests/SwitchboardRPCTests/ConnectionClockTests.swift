import Logging
import NIOCore
import NIOEmbedded
@_spi(Fuzzing) import SwitchboardHTTP2
import Testing

/// The connection's timers on an `EmbeddedEventLoop`, whose clock is virtual: the fuzzer drives the handler this
/// way, and a timer that compared its deadline with the wall clock re-armed itself forever there.
@Suite("Connection timers on the event loop's clock")
struct ConnectionClockTests {
    private static func connection() throws -> EmbeddedChannel {
        var configuration = ServerConfiguration()
        configuration.headerTimeout = .seconds(5)
        configuration.idleTimeout = .seconds(60)
        configuration.keepaliveInterval = nil
        let handler = ServerFuzzing.makeConnectionHandler(
            services: [], configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let channel = EmbeddedChannel(handler: handler)
        _ = try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 50000)).wait()
        return channel
    }

    private static func send(_ bytes: [UInt8], to channel: EmbeddedChannel) throws {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try channel.writeInbound(buffer)
    }

    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// An empty SETTINGS frame: the rest of the client's connection preface.
    private static let settings: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 0, 0]

    @Test("an incomplete connection preface is closed once the header timeout passes in the loop's time")
    func headerTimeout() throws {
        let channel = try Self.connection()
        try Self.send(Array(Self.preface.prefix(10)), to: channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive, "closed before the header timeout")
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "the header timer did not fire on the loop's clock")
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }

    @Test("an idle connection is closed once the idle timeout passes in the loop's time")
    func idleTimeout() throws {
        let channel = try Self.connection()
        try Self.send(Self.preface + Self.settings, to: channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        #expect(channel.isActive, "closed before the idle timeout")
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "the idle timer did not fire on the loop's clock")
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }
}
