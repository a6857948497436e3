import Foundation
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardTestSupport
import Testing

/// Golden bytes from Python's protobuf decode to the expected Swift values, and Swift's encoding (through
/// protoc-c's pack) decodes in Python to the same message.
@Suite("Wire compatibility with Python protobuf")
struct WireCompatibilityTests {
    static var expected: Switchboard_Testing_V1_Everything {
        typealias E = Switchboard_Testing_V1_Everything
        var m = E()
        m.fDouble = 3.141592653589793
        m.fFloat = -2.5
        m.fInt32 = -123_456
        m.fInt64 = -9_007_199_254_740_993
        m.fUint32 = 4_000_000_000
        m.fUint64 = .max
        m.fSint32 = .min
        m.fSint64 = .min
        m.fFixed32 = .max
        m.fFixed64 = 1_234_567_890_123_456_789
        m.fSfixed32 = -42
        m.fSfixed64 = -4_242_424_242_424_242
        m.fBool = true
        m.fString = "héllo, wörld ☺ 😈"
        m.fBytes = [0, 1, 2, 255, 254]
        m.fEnum = .blue
        var nested = E.Nested()
        nested.name = "nested"
        nested.value = 7
        m.fNested = nested
        m.rDouble = [1.5, -0.25]
        m.rInt32 = [1, -1, .max]
        m.rInt64 = [-5, 5]
        m.rUint64 = [0, .max]
        m.rSint32 = [-3, 3]
        m.rFixed32 = [9, 10]
        m.rBool = [true, false, true]
        m.rString = ["a", "", "ç"]
        m.rBytes = [[], [0, 255]]
        m.rEnum = [.red, .green]
        m.rNested = [("first", Int32(1)), ("second", Int32(2))].map {
            var n = E.Nested()
            n.name = $0.0
            n.value = $0.1
            return n
        }
        var chosen = E.Nested()
        chosen.name = "chosen"
        chosen.value = 42
        m.choice = .choiceNested(chosen)
        m.mStringString = ["k1": "v1", "k2": ""]
        var five = E.Nested()
        five.name = "five"
        var minusOne = E.Nested()
        minusOne.value = -1
        m.mInt32Nested = [5: five, -1: minusOne]
        m.mStringEnum = ["g": .green]
        m.tTimestamp = Date(timeIntervalSince1970: 1_700_000_000.123)
        m.tDuration = .seconds(90) + .milliseconds(500)
        m.tFieldMask = Google_Protobuf_FieldMask(paths: ["name.given", "emails"])
        func value(_ kind: Google_Protobuf_Value.OneOf_Kind) -> Google_Protobuf_Value {
            var v = Google_Protobuf_Value()
            v.kind = kind
            return v
        }
        var list = Google_Protobuf_ListValue()
        list.values = [value(.numberValue(1)), value(.stringValue("two"))]
        var inner = Google_Protobuf_Struct()
        inner.fields = ["inner": value(.nullValue(.nullValue))]
        var structure = Google_Protobuf_Struct()
        structure.fields = [
            "s": value(.stringValue("x")), "n": value(.numberValue(1.5)), "b": value(.boolValue(true)),
            "l": value(.listValue(list)), "o": value(.structValue(inner)),
        ]
        m.tStruct = structure
        m.tValue = value(.stringValue("value"))
        m.tInt32Wrapper = 0
        m.tStringWrapper = "wrapped"
        m.tBoolWrapper = false
        m.tEmpty = Google_Protobuf_Empty()
        return m
    }

    private var fixture: URL {
        Bundle.module.url(forResource: "everything.python", withExtension: "bin", subdirectory: "Fixtures")!
    }

    @Test("bytes encoded by Python decode to the expected Swift value")
    func decodesPythonBytes() throws {
        let bytes = try [UInt8](Data(contentsOf: fixture))
        let decoded = try Switchboard_Testing_V1_Everything(serializedBytes: bytes)
        let expected = Self.expected
        #expect(decoded.fString == expected.fString)
        #expect(decoded.tStruct == expected.tStruct)
        #expect(decoded.tTimestamp == expected.tTimestamp)
        #expect(decoded.mInt32Nested == expected.mInt32Nested)
        #expect(decoded == expected)
    }

    @Test("bytes encoded by Swift decode in Python to the same message")
    func pythonDecodesSwiftBytes() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("everything.swift.\(UUID()).bin")
        defer { try? FileManager.default.removeItem(at: path) }
        try Data(Self.expected.serializedBytes()).write(to: path)
        let (status, output) = try await runProcess(
            pythonPath, [repositoryRoot.appendingPathComponent("Tests/Interop/wire_golden.py").path, "--check", path.path],
            environment: ["SWITCHBOARD_INTEROP_STUBS": interopStubsPath])
        #expect(status == 0, "Python disagrees: \(output)")
    }

    @Test("an empty message and default values encode to zero bytes, as proto3 requires")
    func defaultsAreEmpty() throws {
        #expect(Switchboard_Testing_V1_Everything().serializedBytes().isEmpty)
        #expect(try Switchboard_Testing_V1_Everything(serializedBytes: []) == Switchboard_Testing_V1_Everything())
    }

    @Test("truncated or corrupt bytes are a decoding error, not a crash")
    func corruptBytes() throws {
        let bytes = Self.expected.serializedBytes()
        #expect(throws: ProtoDecodingError.self) {
            try Switchboard_Testing_V1_Everything(serializedBytes: Array(bytes.prefix(bytes.count / 2)))
        }
        #expect(throws: ProtoDecodingError.self) {
            try Switchboard_Testing_V1_Everything(serializedBytes: [0xFF, 0xFF, 0xFF, 0xFF])
        }
    }
}
