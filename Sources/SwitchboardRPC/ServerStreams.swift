import NIOCore

/// Where a handler's response messages go: implemented by the transport.
public protocol ServerResponseSink: Sendable {
    /// Sends one message (and the response headers first, if not sent yet).
    ///
    /// Suspends while the peer's flow-control window and the transport's buffer are full, so a slow client
    /// slows the handler down rather than making the server buffer without bound.
    /// - Parameters:
    ///   - message: the encoded message.
    ///   - compress: overrides the call's compression setting for this message; nil keeps it.
    /// - Throws: when the call has ended (cancelled, reset, deadline passed).
    func write(_ message: ByteBuffer, compress: Bool?) async throws

    /// Sends several messages in order, as one hand-off to the transport (a server stream of many small messages
    /// would otherwise pay a suspension and a thread hop per message). Callers keep batches small (see
    /// ``RPCWriter/write(contentsOf:)``): the flow-control wait comes after the whole batch is queued.
    /// - Parameters:
    ///   - messages: the encoded messages.
    ///   - compress: overrides the call's compression setting; nil keeps it.
    /// - Throws: when the call has ended.
    func write(contentsOf messages: [ByteBuffer], compress: Bool?) async throws
}

extension ServerResponseSink {
    /// One ``write(_:compress:)`` per message, for transports without a batched path.
    public func write(contentsOf messages: [ByteBuffer], compress: Bool?) async throws {
        for message in messages { try await write(message, compress: compress) }
    }
}

/// A handler's typed view of the response stream.
public struct RPCWriter<Message: ProtoMessage>: Sendable {
    private let sink: any ServerResponseSink

    /// Wraps a raw sink.
    /// - Parameter sink: the transport's sink.
    public init(sink: any ServerResponseSink) { self.sink = sink }

    /// Sends one message.
    /// - Parameters:
    ///   - message: the message.
    ///   - compress: overrides the call's compression for this message.
    /// - Throws: when the call has ended.
    public func write(_ message: Message, compress: Bool? = nil) async throws {
        var buffer = ByteBuffer.withFramingHeadroom()
        message.encode(into: &buffer)
        try await sink.write(buffer, compress: compress)
    }

    /// Sends several messages in order.
    /// - Parameter messages: the messages.
    /// - Throws: when the call has ended.
    public func write<S: Sequence>(contentsOf messages: S) async throws where S.Element == Message {
        // Handed to the transport in batches of about 64 KiB, so the flow-control wait still comes that often and a
        // slow client holds back at most one batch more than a message-by-message writer.
        var batch: [ByteBuffer] = []
        var bytes = 0
        for message in messages {
            var buffer = ByteBuffer.withFramingHeadroom()
            message.encode(into: &buffer)
            bytes += buffer.readableBytes
            batch.append(buffer)
            if bytes >= Self.batchBytes {
                try await sink.write(contentsOf: batch, compress: nil)
                batch.removeAll(keepingCapacity: true)
                bytes = 0
            }
        }
        if !batch.isEmpty { try await sink.write(contentsOf: batch, compress: nil) }
    }

    /// Encoded bytes handed to the transport at once by ``write(contentsOf:)``.
    static var batchBytes: Int { 64 * 1024 }
}

/// A typed, decoded view of a stream of incoming messages.
public struct RPCAsyncSequence<Message: ProtoMessage>: AsyncSequence, Sendable {
    /// Each element is one decoded message.
    public typealias Element = Message
    private let raw: InboundMessages

    /// Wraps raw messages.
    /// - Parameter raw: the transport's stream.
    public init(raw: InboundMessages) { self.raw = raw }

    /// Decodes as it iterates.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: InboundMessages.AsyncIterator
        /// The next message; throws `INTERNAL` for bytes that do not decode.
        public mutating func next() async throws -> Message? {
            guard let bytes = try await base.next() else { return nil }
            return try decodeMessage(Message.self, from: bytes)
        }
    }

    /// Returns the iterator.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: raw.makeAsyncIterator()) }
}

/// Decodes a message, mapping a failure to an `RPCError` the caller understands.
///
/// A message that does not decode is `INTERNAL`, as grpc-go and grpc-java answer it: the peer's serializer and
/// ours disagree, which is not an argument the caller chose. Field validation in handlers stays `INVALID_ARGUMENT`.
/// - Parameters:
///   - type: the message type.
///   - bytes: the encoded message.
///   - isResponse: whether a client is decoding a server's response: a value it cannot hold is then the server's fault
///     (INTERNAL), not an argument the caller chose.
/// - Returns: the message.
/// - Throws: `RPCError` `INTERNAL` naming the type (and, for a message refused by a decoding limit, the limit);
///   `INVALID_ARGUMENT` naming the field for a request value the service cannot hold.
@inlinable
public func decodeMessage<M: ProtoMessage>(_ type: M.Type, from bytes: ByteBuffer, isResponse: Bool = false) throws -> M {
    do {
        return try M(decoding: bytes)
    } catch let error as ProtoDecodingError where error.invalidField != nil && !isResponse {
        // Well-formed protobuf the service cannot hold (a NUL byte in a string, a timestamp past 9999): the caller's
        // mistake, named, with the `google.rpc.BadRequest` the message types' module attached.
        var metadata = Metadata()
        if let details = error.statusDetails { metadata.addBinary(details, forKey: "grpc-status-details-bin") }
        throw RPCError(
            code: .invalidArgument, message: "\(error.invalidField!): \(error.reason ?? "invalid value")", metadata: metadata, cause: error)
    } catch let error as ProtoDecodingError where error.reason != nil {
        // The scan names the message where the limit was passed, which may be nested deep inside the request.
        let message =
            error.messageName == M.protoMessageName
            ? error.description : "\(M.protoMessageName) refused: \(error.reason!) (at \(error.messageName))"
        throw RPCError(code: .internal, message: message, cause: error)
    } catch {
        throw RPCError(
            code: .internal,
            message: "message is not a valid \(M.protoMessageName)",
            cause: error
        )
    }
}
