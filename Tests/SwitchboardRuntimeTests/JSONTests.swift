import FoundationEssentials
import SwitchboardProtos
import SwitchboardRuntime
import Testing

/// The runtime's JSON reader and writer (log lines, change-feed payloads, jsonb columns): no I/O.
@Suite("JSON text and random ids")
struct JSONTests {
    @Test("parses every kind of value, with white space, escapes and surrogate pairs")
    func parses() throws {
        let text = #" { "a" : [1, -2.5e3, 0.125, true, false, null], "s": "q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "o": {} } "#
        let value = try JSON.parse(text)
        #expect(
            value
                == .object([
                    "a": .array([.number(1), .number(-2500), .number(0.125), .bool(true), .bool(false), .null]),
                    "s": .string("q\"\\/\u{8}\u{c}\n\r\té😀"),
                    "o": .object([:]),
                ]))
    }

    @Test(
        "rejects what is not JSON",
        arguments: [
            "", "{", "[1,]", "{\"a\" 1}", "01", "1.", ".5", "+1", "\"\\x\"", "\"\\ud800\"", "\"a\nb\"", "tru", "[1] 2", "{'a': 1}",
            "\"\\udc00\"", "-", "1e", "[" + String(repeating: "[", count: 600) + String(repeating: "]", count: 601),
        ])
    func rejects(_ text: String) {
        #expect(throws: JSON.SyntaxError.self) { try JSON.parse(text) }
    }

    @Test("writes compact text with sorted keys, escaped controls, whole numbers without a fraction")
    func writes() throws {
        let value = JSON.object([
            "b": .array([.number(1), .number(1.5), .number(-0.25), .number(1e300), .number(.nan), .null]),
            "a": .string("line\nquote\" back\\ tab\t bell\u{7} é/"),
            "c": .bool(false),
        ])
        #expect(value.text == #"{"a":"line\nquote\" back\\ tab\t bell\u0007 é/","b":[1,1.5,-0.25,1e+300,null,null],"c":false}"#)
        // What it writes, it reads back (NaN aside, which JSON cannot hold).
        var finite = value
        if case .object(var o) = value {
            o["b"] = .array([.number(1), .number(1.5), .number(-0.25), .number(1e300), .null])
            finite = .object(o)
        }
        #expect(try JSON.parse(finite.text) == finite)
    }

    @Test("random ids are version 4, variant 1, and differ")
    func randomUUIDs() {
        let ids = (0..<1000).map { _ in UUID.random() }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.uuid.6 >> 4 == 4)
            #expect(id.uuid.8 >> 6 == 2)
        }
    }

    @Test("time-ordered ids are version 7 with the millisecond first: a later one sorts after, as PostgreSQL compares them")
    func timeOrderedUUIDs() {
        let start = Date(timeIntervalSince1970: 1_764_900_000.123)
        let ids = (0..<1000).map { UUID.timeOrdered(now: start.addingTimeInterval(Double($0) * 0.002)) }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.uuid.6 >> 4 == 7)
            #expect(id.uuid.8 >> 6 == 2)
        }
        // 48 bits of Unix milliseconds, big-endian: 1_764_900_000_123 = 0x019A_EC3C_D17B.
        #expect([ids[0].uuid.0, ids[0].uuid.1, ids[0].uuid.2, ids[0].uuid.3, ids[0].uuid.4, ids[0].uuid.5] == [0x01, 0x9A, 0xEC, 0x3C, 0xD1, 0x7B])
        let bytes = ids.map { id in withUnsafeBytes(of: id.uuid) { Array($0) } }
        #expect(zip(bytes, bytes.dropFirst()).allSatisfy { $0.lexicographicallyPrecedes($1) })
    }

    @Test("trace context: a caller's trace id and flags are kept and its span becomes the parent; anything else starts a new trace")
    func traceContext() {
        let caller = TraceContext(traceparent: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-00")
        #expect(caller.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" && caller.parentSpanID == "00f067aa0ba902b7")
        // Not sampled stays not sampled.
        #expect(caller.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-\(caller.spanID)-00")
        #expect(caller.spanID.utf8.count == 16 && caller.spanID != "00f067aa0ba902b7")
        for bad in [
            nil, "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-４bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736--00f067aa0ba902b7-01",
        ] {
            let fresh = TraceContext(traceparent: bad)
            #expect(fresh.parentSpanID == nil && fresh.flags == "01" && fresh.traceID.utf8.count == 32, "\(bad ?? "nil")")
            #expect(fresh.traceID != "4bf92f3577b34da6a3ce929d0e0e4736", "\(bad ?? "nil")")
        }
    }

}
