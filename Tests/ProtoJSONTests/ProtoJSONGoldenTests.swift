import Foundation
import NIOCore
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardTestSupport
import Testing

/// One case of Tests/ProtoJSON/goldens.json (written by Tests/ProtoJSON/golden.py from Python's json_format).
struct GoldenCase: Sendable, CustomTestStringConvertible {
    var name: String
    var type: String
    /// The message in binary, as Python serialized it (empty for reject cases).
    var binary: [UInt8]
    /// Encode cases: the JSON Python writes. Other cases: unused.
    var json: JSON
    /// Decode and reject cases: the JSON text to read.
    var text: String
    var ignoreUnknownFields: Bool

    var testDescription: String { name }
}

/// The committed goldens, read once.
enum Goldens {
    static let url = repositoryRoot.appendingPathComponent("Tests/ProtoJSON/goldens.json")
    static let script = repositoryRoot.appendingPathComponent("Tests/ProtoJSON/golden.py")

    static let all: [String: [GoldenCase]] = {
        guard let text = try? String(contentsOf: url, encoding: .utf8), case .object(let root)? = try? JSON.parse(text)
        else { return [:] }
        return root.mapValues { list in
            guard case .array(let cases) = list else { return [] }
            return cases.compactMap { value -> GoldenCase? in
                guard case .object(let c) = value, case .string(let name)? = c["name"], case .string(let type)? = c["type"]
                else { return nil }
                var binary: [UInt8] = []
                if case .string(let hex)? = c["binary"] { binary = bytes(hex: hex) }
                var text = ""
                var json = JSON.null
                // Decode and reject cases carry JSON text (and the ignore flag); encode cases a JSON value.
                if c["ignoreUnknownFields"] != nil, case .string(let s)? = c["json"] {
                    text = s
                } else if let value = c["json"] {
                    json = value
                }
                let ignore = c["ignoreUnknownFields"] == .bool(true)
                return GoldenCase(name: name, type: type, binary: binary, json: json, text: text, ignoreUnknownFields: ignore)
            }
        }
    }()

    static var encode: [GoldenCase] { all["encode"] ?? [] }
    static var decode: [GoldenCase] { all["decode"] ?? [] }
    static var reject: [GoldenCase] { all["reject"] ?? [] }

    static func bytes(hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var high: UInt8?
        for c in hex.utf8 {
            let nibble = c <= UInt8(ascii: "9") ? c - UInt8(ascii: "0") : c - UInt8(ascii: "a") + 10
            if let h = high {
                out.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return out
    }
}

@Suite("Proto3 JSON against Python's json_format")
struct ProtoJSONGoldenTests {
    @Test("the goldens are present and cover every kind of case")
    func goldensLoad() {
        #expect(Goldens.encode.count >= 40)
        #expect(Goldens.decode.count >= 30)
        #expect(Goldens.reject.count >= 50)
    }

    @Test("Swift writes the JSON Python writes for the same binary message", arguments: Goldens.encode)
    func encodesLikePython(_ golden: GoldenCase) throws {
        let type = try #require(ProtoJSONRegistry.messageType(named: golden.type))
        let json = try Self.encode(type, golden.binary)
        #expect(json == golden.json, "Swift: \(json.text)\nPython: \(golden.json.text)")
        // The text written directly is the JSON value's text.
        #expect(try Self.text(type, golden.binary) == json.text)
        // And what Swift writes, Swift reads back to the same JSON.
        #expect(try Self.reencode(type, json.text) == json)
    }

    @Test("Swift reads JSON text to the message Python reads", arguments: Goldens.decode)
    func decodesLikePython(_ golden: GoldenCase) throws {
        let type = try #require(ProtoJSONRegistry.messageType(named: golden.type))
        try Self.checkDecode(type, golden)
    }

    @Test("Swift refuses what Python refuses", arguments: Goldens.reject)
    func rejectsLikePython(_ golden: GoldenCase) throws {
        let type = try #require(ProtoJSONRegistry.messageType(named: golden.type))
        var options = ProtoJSONDecodingOptions()
        options.ignoreUnknownFields = golden.ignoreUnknownFields
        #expect(throws: ProtoJSONError.self) { _ = try Self.decode(type, golden.text, options) }
    }

    @Test(
        "the committed goldens are what golden.py writes today",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: pythonPath)
                && FileManager.default.fileExists(atPath: interopStubsPath + "/sbproto"))
    )
    func goldensAreCurrent() async throws {
        let fresh = FileManager.default.temporaryDirectory.appendingPathComponent("goldens-\(UUID()).json")
        defer { try? FileManager.default.removeItem(at: fresh) }
        let (status, output) = try await runProcess(
            pythonPath, [Goldens.script.path, "--write", fresh.path],
            environment: ["SWITCHBOARD_INTEROP_STUBS": interopStubsPath])
        try #require(status == 0, "golden.py failed: \(output)")
        let committed = try String(contentsOf: Goldens.url, encoding: .utf8)
        #expect(
            try String(contentsOf: fresh, encoding: .utf8) == committed,
            "Tests/ProtoJSON/goldens.json is stale: rerun golden.py --write and commit it")
    }

    @Test("mutated golden inputs decode or throw, never trap; what decodes writes out and reads back")
    func mutatedInputs() throws {
        // Deterministic, so a failure reproduces.
        var random = SplitMix64(seed: 0x5EED)
        func next() -> UInt64 { random.next() }
        let alphabet = Array(#"{}[]:,"0123456789-+.eE nulltruefalse_\/aZ"#.utf8)
        var decoded = 0
        for golden in Goldens.decode + Goldens.reject {
            let type = try #require(ProtoJSONRegistry.messageType(named: golden.type))
            for _ in 0..<40 {
                var bytes = Array(golden.text.utf8)
                for _ in 0..<(1 + Int(next() % 3)) where !bytes.isEmpty {
                    let at = Int(next() % UInt64(bytes.count))
                    switch next() % 3 {
                    case 0: bytes[at] = alphabet[Int(next() % UInt64(alphabet.count))]
                    case 1: bytes.remove(at: at)
                    default: bytes.insert(alphabet[Int(next() % UInt64(alphabet.count))], at: at)
                    }
                }
                if try Self.decodeEncodeDecode(type, String(decoding: bytes, as: UTF8.self)) { decoded += 1 }
            }
        }
        #expect(decoded > 0)
    }

    // MARK: - Helpers (generic, so that a type known only by name can be used)

    /// Whether the text decoded; when it did and the message writes out, the output must read back.
    static func decodeEncodeDecode<M: ProtoJSONMessage>(_ type: M.Type, _ text: String) throws -> Bool {
        var lenient = ProtoJSONDecodingOptions()
        lenient.ignoreUnknownFields = true
        guard let message = (try? M(protoJSONText: text)) ?? (try? M(protoJSONText: text, options: lenient)) else {
            return false
        }
        if let written = try? message.protoJSONText() {
            #expect(throws: Never.self, "\(text) → \(written)") { _ = try M(protoJSONText: written) }
            // The text written directly is the JSON value's text.
            #expect(try message.protoJSON().text == written)
        } else {
            // A message the writer refuses, the JSON value refuses too.
            #expect(throws: ProtoJSONError.self) { _ = try message.protoJSON() }
        }
        return true
    }

    static func text<M: ProtoJSONMessage>(_ type: M.Type, _ binary: [UInt8]) throws -> String {
        try M(decoding: ByteBuffer(bytes: binary)).protoJSONText()
    }

    static func encode<M: ProtoJSONMessage>(_ type: M.Type, _ binary: [UInt8]) throws -> JSON {
        try M(decoding: ByteBuffer(bytes: binary)).protoJSON()
    }

    static func reencode<M: ProtoJSONMessage>(_ type: M.Type, _ text: String) throws -> JSON {
        try M(protoJSONText: text).protoJSON()
    }

    static func decode<M: ProtoJSONMessage>(_ type: M.Type, _ text: String, _ options: ProtoJSONDecodingOptions) throws -> M {
        try M(protoJSONText: text, options: options)
    }

    static func checkDecode<M: ProtoJSONMessage>(_ type: M.Type, _ golden: GoldenCase) throws {
        var options = ProtoJSONDecodingOptions()
        options.ignoreUnknownFields = golden.ignoreUnknownFields
        let fromJSON = try M(protoJSONText: golden.text, options: options)
        let fromPython = try M(decoding: ByteBuffer(bytes: golden.binary))
        // NaN is unequal to itself, so messages holding one compare through their JSON, where it is "NaN".
        let json = try fromJSON.protoJSON(), pythonJSON = try fromPython.protoJSON()
        #expect(json == pythonJSON, "Swift: \(json.text)\nPython: \(pythonJSON.text)")
        if !json.text.contains("NaN") { #expect(fromJSON == fromPython) }
    }
}

/// SplitMix64: a small deterministic generator for the randomised tests, so that a failure reproduces.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
