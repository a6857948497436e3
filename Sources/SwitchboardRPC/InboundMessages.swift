import NIOCore
import Synchronization

/// The messages arriving on one call, in order, as raw bytes.
///
/// The transport pushes; one consumer pulls. Each consumed message is reported through `onConsume`, which the
/// HTTP/2 transport uses to return flow-control window to the peer: unread messages are bounded by the window,
/// so a slow handler slows the sender down rather than making the receiver buffer without bound.
public final class InboundMessages: AsyncSequence, Sendable {
    /// Each element is one deframed, decompressed message.
    public typealias Element = ByteBuffer

    private struct State {
        // A queue that lets go of each message as it is taken: a consumer that never quite catches up with its
        // producer (an upload whose client outpaces the handler) must not keep every message it already took alive
        // until the buffer empties (an array with a head index did: a 50 MiB upload held ~140 MB until its end).
        var buffered = CircularBuffer<ByteBuffer>()
        var end: Result<Void, any Error>?
        var waiter: CheckedContinuation<ByteBuffer?, any Error>?
    }

    private let state: Mutex<State>
    private let consumeCallback: Mutex<(@Sendable (Int) -> Void)?>

    private var onConsume: (@Sendable (Int) -> Void)? { consumeCallback.withLock { $0 } }

    /// Sets the callback told the size of each message taken (for a stream created before its transport knew it).
    /// - Parameter callback: the callback.
    public func setOnConsume(_ callback: @escaping @Sendable (Int) -> Void) {
        consumeCallback.withLock { $0 = callback }
    }

    /// Creates an open stream.
    /// - Parameter onConsume: called (from the consumer's task) with the wire size of each message taken.
    public init(onConsume: (@Sendable (Int) -> Void)? = nil) {
        self.state = Mutex(State())
        self.consumeCallback = Mutex(onConsume)
    }

    /// Creates a stream that already holds every message and is finished.
    /// - Parameter messages: the messages.
    public init(finishedWith messages: [ByteBuffer]) {
        self.state = Mutex(State(buffered: CircularBuffer(messages), end: .success(())))
        self.consumeCallback = Mutex(nil)
    }

    /// Adds a message (producer side).
    /// - Parameter message: the message bytes.
    public func yield(_ message: ByteBuffer) {
        let waiter: CheckedContinuation<ByteBuffer?, any Error>? = state.withLock { state in
            guard state.end == nil else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.buffered.append(message)
            return nil
        }
        if let waiter {
            onConsume?(message.readableBytes)
            waiter.resume(returning: message)
        }
    }

    /// Ends the stream (producer side); later calls are ignored.
    /// - Parameter error: nil for a normal end, or the error the consumer sees after the buffered messages.
    public func finish(throwing error: (any Error)? = nil) {
        let waiter: CheckedContinuation<ByteBuffer?, any Error>? = state.withLock { state in
            guard state.end == nil else { return nil }
            state.end = error.map { .failure($0) } ?? .success(())
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        if let waiter {
            if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: nil) }
        }
    }

    /// The next message, nil at the end; throws the stream's error or `CancellationError`.
    func next() async throws -> ByteBuffer? {
        enum Immediate { case message(ByteBuffer), end(Result<Void, any Error>), wait }
        let immediate: Immediate = state.withLock { state in
            if let message = state.buffered.popFirst() { return .message(message) }
            if let end = state.end { return .end(end) }
            return .wait
        }
        switch immediate {
        case .message(let message):
            onConsume?(message.readableBytes)
            return message
        case .end(let result):
            try result.get()
            return nil
        case .wait:
            break
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ByteBuffer?, any Error>) in
                let resumeNow: Result<ByteBuffer?, any Error>? = state.withLock { state in
                    if let message = state.buffered.popFirst() { return .success(message) }
                    if let end = state.end {
                        switch end {
                        case .success: return .success(nil)
                        case .failure(let error): return .failure(error)
                        }
                    }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiter = continuation
                    return nil
                }
                if let resumeNow {
                    if case .success(let message?) = resumeNow { onConsume?(message.readableBytes) }
                    continuation.resume(with: resumeNow)
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<ByteBuffer?, any Error>? in
                let waiter = state.waiter
                state.waiter = nil
                return waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Iterates the messages.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let stream: InboundMessages
        /// The next message, or nil at the end.
        public mutating func next() async throws -> ByteBuffer? { try await stream.next() }
    }

    /// Returns the iterator; a stream has one consumer.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(stream: self) }
}
