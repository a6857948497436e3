import Foundation
import NIOCore
import SwitchboardProtos
import SwitchboardRPC
import Testing

/// protobuf-c unpacks recursively without a depth limit and allocates per element; the decoder scans the wire
/// bytes first and refuses what would overflow the stack or blow up in memory.
@Suite("Protobuf decoding limits")
struct DecodingLimitsTests {
    /// `google.protobuf.Value{list_value{values[Value{list_value{…}}]}}` with `lists` list levels: each level is
    /// two nested messages (a ListValue and the Value inside it). Built inside out in one pass.
    static func nestedValue(lists: Int) -> [UInt8] {
        // Sizes from the innermost (empty) Value outwards; then the headers are written outermost first.
        var levels: [(list: Int, inner: Int)] = []
        var size = 0
        for _ in 0..<lists {
            let list = 1 + varintCount(size) + size  // ListValue.values (1): 0x0A len Value
            levels.append((list, size))
            size = 1 + varintCount(list) + list  // Value.list_value (6): 0x32 len ListValue
        }
        var out: [UInt8] = []
        out.reserveCapacity(size)
        for level in levels.reversed() {
            out.append(0x32)
            appendVarint(level.list, to: &out)
            out.append(0x0A)
            appendVarint(level.inner, to: &out)
        }
        return out
    }

    private static func varintCount(_ value: Int) -> Int {
        var value = value, count = 1
        while value >= 128 {
            value >>= 7
            count += 1
        }
        return count
    }

    private static func appendVarint(_ value: Int, to out: inout [UInt8]) {
        var value = value
        while value >= 128 {
            out.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }

    private static func depth(of value: Google_Protobuf_Value) -> Int {
        var depth = 1
        var current = value
        while case .listValue(let list)? = current.kind, let next = list.values.first {
            depth += 2
            current = next
        }
        return depth
    }

    @Test("a 200,000-deep Value (1.6 MB) is refused before protoc-c sees it, instead of overflowing the stack")
    func deepNestingRefused() throws {
        let bytes = Self.nestedValue(lists: 200_000)
        #expect(bytes.count > 1_000_000)
        #expect(throws: ProtoDecodingError.self) { try Google_Protobuf_Value(serializedBytes: bytes) }
    }

    @Test("nesting up to the limit (100 messages deep) decodes; one level more is refused with a reason")
    func depthBoundary() throws {
        #expect(ProtoDecodingLimits.process.maxDepth == 100)
        // 49 list levels: 1 + 2 × 49 = 99 messages deep; 50: 101.
        let accepted = try Google_Protobuf_Value(serializedBytes: Self.nestedValue(lists: 49))
        #expect(Self.depth(of: accepted) == 99)
        do {
            _ = try Google_Protobuf_Value(serializedBytes: Self.nestedValue(lists: 50))
            Issue.record("a 101-deep message decoded")
        } catch let error as ProtoDecodingError {
            #expect(error.reason?.contains("deeper than 100") == true, "\(error)")
        }
    }

    @Test("a message of 300,000 empty elements (600 KB that protoc-c and Swift would grow twenty-fold) is refused")
    func elementBudget() throws {
        let count = 300_000
        var list: [UInt8] = []
        list.reserveCapacity(count * 2)
        for _ in 0..<count { list += [0x0A, 0x00] }  // ListValue.values: an empty Value each
        do {
            _ = try Google_Protobuf_ListValue(serializedBytes: list)
            Issue.record("300,000 elements decoded")
        } catch let error as ProtoDecodingError {
            #expect(error.reason?.contains("more than 200000") == true, "\(error)")
        }
        // Under the budget the same shape decodes.
        let small = try Google_Protobuf_ListValue(serializedBytes: Array(list.prefix(2 * 1000)))
        #expect(small.values.count == 1000)
    }

    @Test("the router's decode turns a refused message into INTERNAL naming the type and the limit")
    func decodeStatus() throws {
        let bytes = ByteBuffer(bytes: Self.nestedValue(lists: 1000))
        do {
            _ = try decodeMessage(Google_Protobuf_Value.self, from: bytes)
            Issue.record("decoded")
        } catch let error as RPCError {
            #expect(error.code == .internal)
            #expect(error.message.contains("nested deeper than 100"), "\(error.message)")
            #expect(error.message.contains(Google_Protobuf_Value.protoMessageName), "\(error.message)")
        }
    }

    @Test("the router's decode turns malformed bytes into INTERNAL naming the type, as grpc-go and grpc-java do")
    func malformedStatus() throws {
        do {
            _ = try decodeMessage(Google_Protobuf_Value.self, from: ByteBuffer(bytes: [0x32, 0x05, 0x0A]))
            Issue.record("decoded")
        } catch let error as RPCError {
            #expect(error.code == .internal)
            #expect(error.message == "message is not a valid google.protobuf.Value", "\(error.message)")
        }
    }

    @Test("a singular message field sent twice is refused (protobuf-c would merge every copy: quadratic memory)")
    func repeatedSingularMessage() throws {
        // CreateContactRequest.contact (field 1) 100,000 times, each a Contact with one empty tag.
        let once: [UInt8] = [0x0A, 0x02, 0x42, 0x00]
        var bytes: [UInt8] = []
        bytes.reserveCapacity(once.count * 100_000)
        for _ in 0..<100_000 { bytes += once }
        do {
            _ = try Switchboard_Contacts_V1_CreateContactRequest(serializedBytes: bytes)
            Issue.record("decoded")
        } catch let error as ProtoDecodingError {
            #expect(error.reason?.contains("appears more than once") == true, "\(error)")
        }
        // Once is fine; a repeated message field may of course repeat.
        let single = try Switchboard_Contacts_V1_CreateContactRequest(serializedBytes: once)
        #expect(single.contact?.tags == [""])
        let list = try Google_Protobuf_ListValue(serializedBytes: [0x0A, 0x00, 0x0A, 0x00, 0x0A, 0x00])
        #expect(list.values.count == 3)
    }

    @Test("a string field that is not UTF-8 is refused naming it (read as a C string it would become U+FFFD); UTF-8 of every width decodes")
    func stringsAreUTF8() throws {
        // CreateContactRequest.contact (1) holding one tag (Contact.tags, 8) of the given bytes.
        func request(_ tag: [UInt8]) -> [UInt8] { [0x0A, UInt8(tag.count + 2), 0x42, UInt8(tag.count)] + tag }
        let ascii = Array("long ascii text ".utf8)
        for bad: [UInt8] in [
            [0xFF], [0x80], [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82],
            ascii + [0xC3], ascii + [0xF0, 0x9F, 0x98],
        ] {
            do {
                _ = try Switchboard_Contacts_V1_CreateContactRequest(serializedBytes: request(bad))
                Issue.record("decoded \(bad)")
            } catch let error as ProtoDecodingError {
                #expect(error.reason == "must be UTF-8 text" && error.invalidField == "contact.tags", "\(bad): \(error)")
            }
        }
        for good in ["é", "€", "😀", "long ascii text, then é € 😀 and 日本語", String(repeating: "a", count: 15) + "é"] {
            #expect(try Switchboard_Contacts_V1_CreateContactRequest(serializedBytes: request(Array(good.utf8))).contact?.tags == [good])
        }
    }

    @Test("a Timestamp or Duration outside its type's range is refused naming the field; the bounds themselves decode")
    func timesInRange() throws {
        func varint(_ value: Int64) -> [UInt8] {
            var v = UInt64(bitPattern: value), out: [UInt8] = []
            while v >= 0x80 {
                out.append(UInt8(v & 0x7F) | 0x80)
                v >>= 7
            }
            return out + [UInt8(v)]
        }
        // Everything.t_timestamp (60) or t_duration (61) holding seconds (1) and nanos (2).
        func everything(_ field: Int64, seconds: Int64, nanos: Int64) -> [UInt8] {
            let body = [0x08] + varint(seconds) + [0x10] + varint(nanos)
            return varint(field << 3 | 2) + varint(Int64(body.count)) + body
        }
        for (seconds, nanos) in [(253_402_300_800, 0), (-62_135_596_801, 0), (0, -5), (0, 1_000_000_000), (Int64.max, 0)] as [(Int64, Int64)] {
            do {
                _ = try Switchboard_Testing_V1_Everything(serializedBytes: everything(60, seconds: seconds, nanos: nanos))
                Issue.record("decoded a timestamp of \(seconds) s \(nanos) ns")
            } catch let error as ProtoDecodingError {
                #expect(error.invalidField == "t_timestamp" && error.reason?.contains("9999-12-31") == true, "\(error)")
            }
        }
        // The last nanosecond of 9999 decodes, to a date that is still in 9999 (a Double rounds it up otherwise) and
        // encodes back as a valid timestamp.
        let last = try Switchboard_Testing_V1_Everything(serializedBytes: everything(60, seconds: 253_402_300_799, nanos: 999_999_999))
        #expect(last.tTimestamp == Google_Protobuf_Timestamp.latestDate)
        #expect(Google_Protobuf_Timestamp(date: last.tTimestamp!).isValid)
        // An unknown field inside does not hide the range check.
        let unknown = varint(60 << 3 | 2) + [9, 0x08] + varint(253_402_300_800) + [0x18, 0x01]
        #expect(throws: ProtoDecodingError.self) { _ = try Switchboard_Testing_V1_Everything(serializedBytes: unknown) }
        _ = try Switchboard_Testing_V1_Everything(serializedBytes: everything(60, seconds: -62_135_596_800, nanos: 0))
        for (seconds, nanos) in [(315_576_000_001, 0), (5, -1), (-5, 1), (0, 1_000_000_000)] as [(Int64, Int64)] {
            #expect(throws: ProtoDecodingError.self, "\(seconds) s \(nanos) ns") {
                _ = try Switchboard_Testing_V1_Everything(serializedBytes: everything(61, seconds: seconds, nanos: nanos))
            }
        }
        let negative = try Switchboard_Testing_V1_Everything(serializedBytes: everything(61, seconds: -5, nanos: -1))
        #expect(negative.tDuration == .seconds(-5) - .nanoseconds(1))
    }

    @Test("malformed bytes still fail as malformed (the scan leaves them to protoc-c)")
    func malformed() {
        for bytes: [UInt8] in [[0x32, 0x05, 0x0A], [0x32], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], [0x0B]] {
            #expect(throws: ProtoDecodingError.self) { try Google_Protobuf_Value(serializedBytes: bytes) }
        }
    }
}
