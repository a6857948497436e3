import CompressNIO
import NIOCore
import SwitchboardRPC

/// The gRPC message framing: a 1-byte compressed flag, a 4-byte big-endian length, then the message.
public enum GRPCFraming {
    /// The prefix length.
    public static let prefixLength = 5

    /// Appends one framed message.
    /// - Parameters:
    ///   - payload: the (already compressed, if `compressed`) message bytes.
    ///   - compressed: the flag to set.
    ///   - buffer: the output buffer.
    public static func frame(_ payload: ByteBuffer, compressed: Bool, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(compressed ? 1 : 0))
        buffer.writeInteger(UInt32(payload.readableBytes))
        var payload = payload
        buffer.writeBuffer(&payload)
    }

    /// Frames an uncompressed message without copying it, when it was encoded after 5 bytes of headroom (see
    /// `ByteBuffer.withFramingHeadroom()`).
    /// - Parameter payload: the message.
    /// - Returns: the framed message, or nil when there is no headroom.
    public static func frameInPlace(_ payload: ByteBuffer) -> ByteBuffer? {
        guard payload.readerIndex >= prefixLength, payload.readableBytes <= Int(UInt32.max) else { return nil }
        var framed = payload
        let start = payload.readerIndex - prefixLength
        framed.setInteger(UInt8(0), at: start)
        framed.setInteger(UInt32(payload.readableBytes), at: start + 1)
        framed.moveReaderIndex(to: start)
        return framed
    }
}

/// Splits a byte stream into gRPC messages; refuses messages above a size limit before buffering them.
///
/// States: *prefix* (fewer than 5 bytes of the next message) → *body* (length known, waiting for the bytes) →
/// back to *prefix* when a message is emitted. There is no invalid transition; a length above the limit is an
/// error that ends the stream.
public struct GRPCMessageDeframer {
    /// A message cut out of the stream.
    public struct Message {
        /// Whether the compressed flag was set.
        public var compressed: Bool
        /// The message bytes (still compressed if `compressed`).
        public var payload: ByteBuffer
    }

    /// The limit on one message's (compressed) length.
    public let maxMessageSize: Int
    private var buffer: ByteBuffer

    /// Creates a deframer.
    /// - Parameter maxMessageSize: the largest message accepted.
    public init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
        self.buffer = ByteBuffer()
    }

    /// Appends received bytes.
    /// - Parameter bytes: the bytes.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) { buffer.writeBytes(bytes) }

    /// Appends received bytes.
    /// - Parameter bytes: the bytes.
    public mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        buffer.writeBuffer(&bytes)
    }

    /// Whether any bytes are buffered (of a complete message or not).
    public var hasPartialMessage: Bool { buffer.readableBytes > 0 }

    /// The bytes buffered and not yet cut into messages.
    public var bufferedBytes: Int { buffer.readableBytes }

    /// Whether ``next()`` would return a message or throw (a complete message, or a prefix that is invalid or
    /// announces a message above the limit), without consuming anything.
    public var hasCompleteMessage: Bool {
        guard buffer.readableBytes >= GRPCFraming.prefixLength,
            let flag: UInt8 = buffer.getInteger(at: buffer.readerIndex),
            let length: UInt32 = buffer.getInteger(at: buffer.readerIndex + 1)
        else { return false }
        return flag > 1 || Int(length) > maxMessageSize || buffer.readableBytes >= GRPCFraming.prefixLength + Int(length)
    }

    /// The next complete message, decompressed.
    /// - Parameter encoding: the stream's `grpc-encoding`; a compressed message on an identity stream is an error.
    /// - Returns: the message and whether it arrived compressed, or nil when no complete message is buffered.
    /// - Throws: ``RPCError`` for oversized, badly flagged or undecompressable messages.
    public mutating func nextDecoded(encoding: MessageEncoding) throws -> (payload: ByteBuffer, compressed: Bool)? {
        guard let message = try next() else { return nil }
        guard message.compressed else { return (message.payload, false) }
        guard encoding != .identity else {
            throw RPCError(code: .internal, message: "compressed message without grpc-encoding")
        }
        return (try encoding.decompress(message.payload, maxSize: maxMessageSize), true)
    }

    /// The next complete message, if any.
    /// - Throws: ``RPCError`` `RESOURCE_EXHAUSTED` for a message above the limit, `INTERNAL` for a bad flag.
    public mutating func next() throws -> Message? {
        guard buffer.readableBytes >= GRPCFraming.prefixLength,
            let flag: UInt8 = buffer.getInteger(at: buffer.readerIndex),
            let length: UInt32 = buffer.getInteger(at: buffer.readerIndex + 1)
        else { return nil }
        guard flag <= 1 else {
            throw RPCError(code: .internal, message: "invalid gRPC message flag \(flag)")
        }
        guard Int(length) <= maxMessageSize else {
            throw RPCError(
                code: .resourceExhausted,
                message: "message of \(length) bytes exceeds the limit of \(maxMessageSize) bytes")
        }
        guard buffer.readableBytes >= GRPCFraming.prefixLength + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: GRPCFraming.prefixLength)
        let payload = buffer.readSlice(length: Int(length))!
        if buffer.readableBytes == 0 { buffer.clear() } else if buffer.readerIndex > 65_536 { buffer.discardReadBytes() }
        return Message(compressed: flag == 1, payload: payload)
    }
}

/// Per-message compression algorithms (`grpc-encoding`).
public enum MessageEncoding: String, Sendable, CaseIterable {
    /// No compression.
    case identity
    /// gzip (RFC 1952).
    case gzip
    /// zlib-wrapped deflate (RFC 1950), as gRPC defines "deflate".
    case deflate

    /// The value of `grpc-accept-encoding` this implementation sends.
    public static let acceptHeader = "gzip,deflate,identity"

    /// Parses a `grpc-accept-encoding` list.
    /// - Parameter header: the header value.
    /// - Returns: the encodings named that this implementation supports.
    public static func parseAccept(_ header: String?) -> [MessageEncoding] {
        guard let header else { return [] }
        return header.split(separator: ",").compactMap { MessageEncoding(rawValue: $0.trimmingCharacters(in: " ")) }
    }

    /// Compresses a message.
    /// - Parameter payload: the message.
    /// - Returns: the compressed bytes.
    /// - Throws: when zlib fails.
    public func compress(_ payload: ByteBuffer) throws -> ByteBuffer {
        var payload = payload
        switch self {
        case .identity: return payload
        case .gzip: return try payload.compress(with: .gzip())
        case .deflate: return try payload.compress(with: .zlib())
        }
    }

    /// Decompresses a message, refusing output above a limit.
    /// - Parameters:
    ///   - payload: the compressed message.
    ///   - maxSize: the largest decompressed size accepted.
    /// - Returns: the message.
    /// - Throws: `RESOURCE_EXHAUSTED` above the limit, `INTERNAL` for corrupt data.
    public func decompress(_ payload: ByteBuffer, maxSize: Int) throws -> ByteBuffer {
        var payload = payload
        let tooLarge = RPCError(code: .resourceExhausted, message: "decompressed message exceeds the limit of \(maxSize) bytes")
        do {
            let decompressed: ByteBuffer
            switch self {
            case .identity: return payload
            case .gzip: decompressed = try payload.decompress(with: .gzip(), maxSize: maxSize)
            case .deflate: decompressed = try payload.decompress(with: .zlib(), maxSize: maxSize)
            }
            // CompressNIO's limit bounds what it asks the allocator for, but ByteBuffer rounds capacities up to a
            // power of two and zlib fills all of it, so output up to twice the limit gets through (found by
            // FuzzDeframer): the limit is enforced here.
            guard decompressed.readableBytes <= maxSize else { throw tooLarge }
            return decompressed
        } catch let error as CompressNIOError where error == .bufferOverflow {
            throw tooLarge
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(code: .internal, message: "could not decompress a \(rawValue) message", cause: error)
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var s = self
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}

/// `grpc-message` percent-encoding: bytes outside printable ASCII, and `%`, become `%XX`.
public enum PercentEncoding {
    /// Encodes a status message.
    /// - Parameter message: the message.
    /// - Returns: the header value.
    public static func encode(_ message: String) -> String {
        var out = ""
        let hex = Array("0123456789ABCDEF")
        for byte in message.utf8 {
            if byte >= 0x20, byte <= 0x7E, byte != 0x25 {
                out.append(Character(Unicode.Scalar(byte)))
            } else {
                out.append("%")
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            }
        }
        return out
    }

    /// Decodes a status message; malformed escapes are kept as-is.
    /// - Parameter value: the header value.
    /// - Returns: the message.
    public static func decode(_ value: String) -> String {
        let bytes = Array(value.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        func hexValue(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 65...70: return c - 55
            case 97...102: return c - 87
            default: return nil
            }
        }
        while i < bytes.count {
            if bytes[i] == 0x25, i + 2 < bytes.count, let h = hexValue(bytes[i + 1]), let l = hexValue(bytes[i + 2]) {
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
