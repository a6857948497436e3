import NIOCore
import SwitchboardRPC
import Synchronization
import Testing

@Suite("InboundMessages")
struct InboundMessagesTests {
    @Test("delivers in order, reports consumption, then ends")
    func order() async throws {
        let consumed = Mutex<[Int]>([])
        let stream = InboundMessages { n in consumed.withLock { $0.append(n) } }
        stream.yield(ByteBuffer(bytes: [1]))
        stream.yield(ByteBuffer(bytes: [2, 2]))
        stream.finish()
        var seen: [[UInt8]] = []
        for try await m in stream { seen.append(Array(m.readableBytesView)) }
        #expect(seen == [[1], [2, 2]])
        #expect(consumed.withLock { $0 } == [1, 2])
    }

    @Test("a message taken is no longer held by the stream while later ones wait behind it")
    func releasesTaken() async throws {
        let stream = InboundMessages()
        var iterator = stream.makeAsyncIterator()
        stream.yield(ByteBuffer(bytes: [0]))
        for i in 1...3 {
            // The producer stays one message ahead, as an upload's client does of a slower handler.
            stream.yield(ByteBuffer(bytes: [UInt8(i)]))
            var taken = try #require(try await iterator.next())
            // Writing into storage nobody else holds happens in place; a copy means the stream still held the message.
            let before = taken.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            let after = taken.withUnsafeMutableReadableBytes { UInt(bitPattern: $0.baseAddress) }
            #expect(before == after, "message \(i - 1) is still held")
        }
    }

    @Test("a waiting consumer is woken by a later message and by the error")
    func waiting() async throws {
        struct Boom: Error {}
        let stream = InboundMessages()
        let consumer = Task {
            var count = 0
            do {
                for try await _ in stream { count += 1 }
            } catch is Boom {
                return count
            }
            return -1
        }
        try await Task.sleep(for: .milliseconds(20))
        stream.yield(ByteBuffer(bytes: [1]))
        try await Task.sleep(for: .milliseconds(20))
        stream.finish(throwing: Boom())
        #expect(try await consumer.value == 1)
    }

    @Test("cancelling a waiting consumer throws CancellationError")
    func cancellation() async {
        let stream = InboundMessages()
        let consumer = Task { () -> Bool in
            do {
                for try await _ in stream {}
                return false
            } catch is CancellationError {
                return true
            } catch {
                return false
            }
        }
        try? await Task.sleep(for: .milliseconds(20))
        consumer.cancel()
        #expect(await consumer.value)
    }
}
