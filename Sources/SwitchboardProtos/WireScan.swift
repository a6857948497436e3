// A pass over protobuf wire bytes, before protoc-c unpacks them, that refuses what would hurt the process:
// protobuf-c 1.4 recurses into nested messages without a depth limit (a ~200,000-deep `google.protobuf.Value`
// overflows the stack), and it allocates a C struct, plus a Swift value later, for every nested message, string and
// bytes field, so a message of tiny empty elements grows twenty-fold in memory.
//
// The scan follows only the length-delimited fields the descriptor says are messages; it reads each byte once
// (a parent skips a child's bytes and the child is scanned on its own), and its own recursion is bounded by the
// depth limit it enforces. Malformed bytes end the scan quietly: protoc-c refuses them afterwards.
internal import CProtobufC
import Glibc
import SwitchboardRPC

/// Limits on a message's shape that the decoder enforces before unpacking.
public struct ProtoDecodingLimits: Sendable, Hashable {
    /// The deepest nesting of messages accepted (the top-level message is depth 1).
    public var maxDepth: Int
    /// The most nested messages, strings and bytes fields one message may hold, counted over the whole tree.
    public var maxElements: Int

    /// Creates limits.
    /// - Parameters:
    ///   - maxDepth: the deepest nesting accepted.
    ///   - maxElements: the most nested messages, strings and bytes fields in one message.
    public init(maxDepth: Int = 100, maxElements: Int = 200_000) {
        self.maxDepth = maxDepth
        self.maxElements = maxElements
    }

    /// The limits every decode in this process uses: the defaults, or `SWITCHBOARD_PROTO_MAX_DEPTH` and
    /// `SWITCHBOARD_PROTO_MAX_ELEMENTS` from the environment (read once; values outside 1...1,000 and 1...10^8 are
    /// ignored: protobuf-c's unpack takes about 1 KB of stack per level, so a much deeper limit would bring back the
    /// stack overflow the depth limit exists for; services refuse such values at start).
    public static let process: ProtoDecodingLimits = {
        var limits = ProtoDecodingLimits()
        if let value = environment("SWITCHBOARD_PROTO_MAX_DEPTH").flatMap(Int.init), (1...1_000).contains(value) {
            limits.maxDepth = value
        }
        if let value = environment("SWITCHBOARD_PROTO_MAX_ELEMENTS").flatMap(Int.init), (1...100_000_000).contains(value) {
            limits.maxElements = value
        }
        return limits
    }()

    private static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

// `ProtobufCType`'s constants do not import into Swift from this module (only the type does), so they are spelled
// by their values, which protobuf-c's ABI fixes (the declaration order in protobuf-c.h).
private let protobufCTypeString = ProtobufCType(rawValue: 14)
private let protobufCTypeBytes = ProtobufCType(rawValue: 15)
private let protobufCTypeMessage = ProtobufCType(rawValue: 16)
private let protobufCLabelRepeated = ProtobufCLabel(rawValue: 2)

/// Scans the wire bytes of one message against its descriptor.
/// - Parameters:
///   - descriptor: the message's descriptor.
///   - bytes: the encoded message.
///   - limits: the limits to enforce.
/// - Throws: ``ProtoDecodingError`` naming the limit that was passed.
func _scanWire(
    _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, _ bytes: UnsafeRawBufferPointer, limits: ProtoDecodingLimits
) throws {
    var budget = limits.maxElements
    try _scanWire(descriptor, bytes, depth: 1, limits: limits, budget: &budget, path: "")
}

private func _scanWire(
    _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, _ bytes: UnsafeRawBufferPointer, depth: Int,
    limits: ProtoDecodingLimits, budget: inout Int, path: String
) throws {
    var reader = WireReader(bytes: bytes)
    // Singular message fields already seen in this message. protobuf-c merges a repeated occurrence into the first
    // (as the protobuf spec says), copying every repeated field inside it into a new array each time: 100,000
    // copies of a 4-byte field would cost it 40 GB and quadratic time. Encoders never write a singular field twice,
    // so a second occurrence is refused.
    var singularMessages: [UInt32] = []
    while !reader.atEnd {
        guard let tag = reader.varint() else { return }
        let wireType = tag & 7
        switch wireType {
        case 0:
            guard reader.varint() != nil else { return }
        case 1:
            guard reader.skip(8) else { return }
        case 5:
            guard reader.skip(4) else { return }
        case 2:
            guard let length = reader.varint(), let body = reader.take(length) else { return }
            guard tag >> 3 <= UInt64(UInt32.max),
                let field = protobuf_c_message_descriptor_get_field(descriptor, UInt32(tag >> 3))
            else { continue }
            switch field.pointee.type {
            case protobufCTypeMessage:
                if field.pointee.label != protobufCLabelRepeated {
                    guard !singularMessages.contains(field.pointee.id) else {
                        throw ProtoDecodingError(
                            messageName: messageName(descriptor),
                            reason: "singular message field \(String(cString: field.pointee.name)) appears more than once")
                    }
                    singularMessages.append(field.pointee.id)
                }
                budget -= 1
                guard budget >= 0 else { throw tooManyElements(descriptor, limits) }
                guard depth < limits.maxDepth else {
                    throw ProtoDecodingError(
                        messageName: messageName(descriptor),
                        reason: "messages nested deeper than \(limits.maxDepth) levels")
                }
                let child = field.pointee.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
                if child.pointee.n_fields == 2, let reason = timeViolation(child, body) {
                    throw ProtoDecodingError.invalidValue(
                        messageName: messageName(descriptor), field: path + String(cString: field.pointee.name), reason: reason)
                }
                try _scanWire(
                    child, body, depth: depth + 1, limits: limits, budget: &budget, path: path + String(cString: field.pointee.name) + ".")
            case protobufCTypeString, protobufCTypeBytes:
                budget -= 1
                guard budget >= 0 else { throw tooManyElements(descriptor, limits) }
                // protoc-c hands strings over as C strings: a NUL byte would silently cut the text short (and
                // PostgreSQL text cannot hold one anyway), so such a request is refused, naming the field.
                if field.pointee.type == protobufCTypeString, let base = body.baseAddress, memchr(base, 0, body.count) != nil {
                    let name = path + String(cString: field.pointee.name)
                    throw ProtoDecodingError.invalidValue(messageName: messageName(descriptor), field: name, reason: "must not contain NUL bytes")
                }
                // proto3 strings are UTF-8 (stock gRPC implementations refuse anything else); read as a C string, bytes
                // that are not would become U+FFFD, so the service would store and match text no one sent.
                if field.pointee.type == protobufCTypeString, !isUTF8(body) {
                    let name = path + String(cString: field.pointee.name)
                    throw ProtoDecodingError.invalidValue(messageName: messageName(descriptor), field: name, reason: "must be UTF-8 text")
                }
            default:
                // Packed repeated scalars: one allocation per field, proportional to the bytes.
                break
            }
        default:
            // Groups (3, 4) and invalid wire types: protoc-c refuses them.
            return
        }
    }
}

/// Why a Timestamp's or a Duration's wire bytes are outside the range the type defines, or nil (also for any other
/// message of two fields). protoc-c takes any values, and a date made from them would be wrong before any handler
/// could name the field (an end before 0001 reads as "before the start"), so the request is refused here, naming it.
private func timeViolation(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, _ body: UnsafeRawBufferPointer) -> String? {
    guard let name = descriptor.pointee.name else { return nil }
    let isTimestamp = strcmp(name, "google.protobuf.Timestamp") == 0
    guard isTimestamp || strcmp(name, "google.protobuf.Duration") == 0 else { return nil }
    var reader = WireReader(bytes: body)
    var seconds: Int64 = 0
    var nanos: Int64 = 0
    while !reader.atEnd {
        guard let tag = reader.varint() else { return nil }
        switch (tag >> 3, tag & 7) {
        case (1, 0):
            guard let v = reader.varint() else { return nil }
            seconds = Int64(bitPattern: v)
        // int32 is sign-extended on the wire; protoc-c keeps the low 32 bits.
        case (2, 0):
            guard let v = reader.varint() else { return nil }
            nanos = Int64(Int32(truncatingIfNeeded: v))
        // Unknown fields protoc-c keeps aside; malformed bytes are protoc-c's to refuse.
        case (_, 0): guard reader.varint() != nil else { return nil }
        case (_, 1): guard reader.skip(8) else { return nil }
        case (_, 2): guard let length = reader.varint(), reader.take(length) != nil else { return nil }
        case (_, 5): guard reader.skip(4) else { return nil }
        default: return nil
        }
    }
    if isTimestamp {
        guard (-62_135_596_800...253_402_300_799).contains(seconds), (0...999_999_999).contains(nanos) else {
            return "must be a timestamp from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z (nanos 0 to 999,999,999)"
        }
    } else {
        guard (-315_576_000_000...315_576_000_000).contains(seconds), (-999_999_999...999_999_999).contains(nanos),
            seconds == 0 || nanos == 0 || (seconds < 0) == (nanos < 0)
        else {
            return "must be a duration of at most ±315,576,000,000 seconds, with nanos of the seconds' sign under 10^9"
        }
    }
    return nil
}

/// Whether `bytes` are well-formed UTF-8 (no overlong forms, surrogates or scalars past U+10FFFF): the standard
/// library's validation, without a copy.
func isUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    (try? UTF8Span(validating: Span<UInt8>(_unsafeBytes: bytes))) != nil
}

private func tooManyElements(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, _ limits: ProtoDecodingLimits) -> ProtoDecodingError {
    ProtoDecodingError(
        messageName: messageName(descriptor),
        reason: "more than \(limits.maxElements) nested messages, strings and bytes fields")
}

private func messageName(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>) -> String {
    guard let name = descriptor.pointee.name else { return "message" }
    return String(cString: name)
}

/// Reads varints and slices out of wire bytes without copying; every read checks the bounds.
private struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    var atEnd: Bool { position >= bytes.count }

    mutating func varint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while position < bytes.count, shift < 64 {
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        return nil
    }

    mutating func skip(_ count: Int) -> Bool {
        guard bytes.count - position >= count else { return false }
        position += count
        return true
    }

    mutating func take(_ length: UInt64) -> UnsafeRawBufferPointer? {
        guard length <= UInt64(bytes.count - position) else { return nil }
        let start = position
        position += Int(length)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<position])
    }
}
