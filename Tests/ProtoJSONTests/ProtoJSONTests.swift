import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import Testing

/// What the goldens cannot show: where Switchboard is deliberately stricter than Python, error paths, encoding
/// errors, options, and the JSON value type's exact numbers.
@Suite("Proto3 JSON behaviour")
struct ProtoJSONTests {
    @Test("a field given by both its JSON name and its proto name is an error (Python keeps the last)")
    func bothNames() {
        #expect {
            _ = try Switchboard_Testing_V1_Everything(protoJSONText: #"{"fInt32": 1, "f_int32": 2}"#)
        } throws: { error in
            (error as? ProtoJSONError)?.description == "fInt32: field given twice (by its JSON name and its proto name)"
        }
    }

    @Test("errors name the JSON path of the offending field, and map to INVALID_ARGUMENT")
    func errorPaths() throws {
        let text = #"{"contact": {"emails": [{}, {}, {"address": 7}]}}"#
        do {
            _ = try Switchboard_Contacts_V1_UpdateContactRequest(protoJSONText: text)
            Issue.record("decoded an invalid request")
        } catch let error as ProtoJSONError {
            #expect(error.path == "contact.emails[2].address")
            #expect(error.description == "contact.emails[2].address: expected a string")
            #expect(error.rpcError.code == .invalidArgument)
        }
        #expect {
            _ = try Switchboard_Testing_V1_Everything(protoJSONText: #"{"mInt32Nested": {"5": {"value": "x"}}}"#)
        } throws: { error in (error as? ProtoJSONError)?.path == #"mInt32Nested["5"].value"# }
        #expect {
            _ = try Switchboard_Testing_V1_MoreShapes(protoJSONText: #"{"rTimestamp": ["2020-01-01T00:00:00Z", "x"]}"#)
        } throws: { error in (error as? ProtoJSONError)?.path == "rTimestamp[1]" }
    }

    @Test("64-bit integers past 2^53 decode exactly from JSON numbers and strings")
    func exactIntegers() throws {
        let text = #"{"fInt64": 9007199254740993, "fUint64": "18446744073709551615", "rInt64": [-9007199254740993]}"#
        let message = try Switchboard_Testing_V1_Everything(protoJSONText: text)
        #expect(message.fInt64 == 9_007_199_254_740_993)
        #expect(message.fUint64 == .max)
        #expect(message.rInt64 == [-9_007_199_254_740_993])
        let json = try message.protoJSON()
        guard case .object(let object) = json else { throw ProtoJSONError(path: "", reason: "not an object", direction: .encoding) }
        #expect(object["fInt64"] == .string("9007199254740993"))
    }

    @Test("dates and durations held by generated fields write and read back")
    func dateAndDuration() throws {
        var message = Switchboard_Testing_V1_Everything()
        message.tTimestamp = Date(timeIntervalSince1970: 1_700_000_000.25)
        message.tDuration = .seconds(-1) - .milliseconds(500)
        let text = try message.protoJSONText()
        #expect(text == #"{"tDuration":"-1.500s","tTimestamp":"2023-11-14T22:13:20.250Z"}"#)
        #expect(try Switchboard_Testing_V1_Everything(protoJSONText: text) == message)
    }

    @Test("the text written directly is the JSON value's text, for random values of every kind of field")
    func directTextMatchesValues() throws {
        // Deterministic, so a failure reproduces.
        var random = SplitMix64(seed: 0xC0FFEE)
        func next() -> UInt64 { random.next() }
        // Quotes, backslashes, every control character, marks, other scripts, emoji.
        let pieces = [
            "\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1}", "\u{8}", "\u{C}", "\u{1F}", "\u{7F}", "é", "ß", "日本", "🙂", "a", "Z", "0", " ", "\u{2028}",
        ]
        func text() -> String { (0..<Int(next() % 12)).map { _ in pieces[Int(next() % UInt64(pieces.count))] }.joined() }
        func int32() -> Int32 { [Int32.min, .max, 0, -1, 1, Int32(truncatingIfNeeded: next())][Int(next() % 6)] }
        func int64() -> Int64 { [Int64.min, .max, 0, -1, 1, Int64(bitPattern: next())][Int(next() % 6)] }
        func uint64() -> UInt64 { [UInt64.max, 0, 1, next() >> (next() % 65)][Int(next() % 4)] }
        func bytes() -> [UInt8] { (0..<Int(next() % 5)).map { _ in UInt8(truncatingIfNeeded: next()) } }
        // Any seconds (most out of range) or years 1…9999, with nanoseconds of 0, 3, 6 or 9 digits (or out of range).
        func timestamp() -> Google_Protobuf_Timestamp {
            var t = Google_Protobuf_Timestamp()
            t.seconds = next() % 8 == 0 ? Int64(bitPattern: next()) : Int64(next() % 315_537_897_600) - 62_135_596_800
            t.nanos = [0, 1_000_000 * Int32(next() % 1000), 1000 * Int32(next() % 1_000_000), Int32(next() % 1_000_000_000), -1][Int(next() % 5)]
            return t
        }
        for _ in 0..<2_000 {
            var m = Switchboard_Testing_V1_Everything()
            m.fInt32 = int32()
            m.fSint32 = int32()
            m.fInt64 = int64()
            m.fUint32 = UInt32(truncatingIfNeeded: next() >> (next() % 33))
            m.fUint64 = uint64()
            m.fBool = next() % 2 == 0
            m.fString = text()
            m.fBytes = (0..<Int(next() % 5)).map { _ in UInt8(truncatingIfNeeded: next()) }
            m.fEnum = Switchboard_Testing_V1_Color(protoValue: Int32(next() % 6) - 1)
            m.rInt32 = (0..<Int(next() % 3)).map { _ in int32() }
            m.rInt64 = (0..<Int(next() % 3)).map { _ in int64() }
            m.rString = (0..<Int(next() % 3)).map { _ in text() }
            m.rEnum = (0..<Int(next() % 3)).map { _ in Switchboard_Testing_V1_Color(protoValue: Int32(next() % 6)) }
            m.mStringString = Dictionary((0..<Int(next() % 4)).map { _ in (text(), text()) }, uniquingKeysWith: { a, _ in a })
            m.mStringEnum = Dictionary(
                (0..<Int(next() % 3)).map { _ in (text(), Switchboard_Testing_V1_Color(protoValue: 2)) }, uniquingKeysWith: { a, _ in a })
            m.tTimestamp =
                next() % 4 == 0
                ? nil
                : Date(timeIntervalSince1970: Double(Int64(next() % 500_000_000_000) - 62_135_596_800) + Double(next() % 1_000_000) / 1e6)
            m.tStringWrapper = next() % 2 == 0 ? nil : text()
            m.tInt32Wrapper = next() % 2 == 0 ? nil : int32()
            if next() % 3 == 0 { m.choice = .choiceString(text()) }
            if next() % 3 == 0 { m.fNested = Switchboard_Testing_V1_Everything.Nested() }
            m.rNested = (0..<Int(next() % 3)).map { _ in
                var nested = Switchboard_Testing_V1_Everything.Nested()
                nested.name = text()
                nested.value = int32()
                return nested
            }
            m.mInt32Nested = Dictionary((0..<Int(next() % 3)).map { _ in (int32(), m.rNested.first ?? .init()) }, uniquingKeysWith: { a, _ in a })
            var shapes = Switchboard_Testing_V1_MoreShapes()
            shapes.mBoolString = Dictionary((0..<Int(next() % 3)).map { _ in (next() % 2 == 0, text()) }, uniquingKeysWith: { a, _ in a })
            shapes.mInt64Int64 = Dictionary((0..<Int(next() % 3)).map { _ in (int64(), int64()) }, uniquingKeysWith: { a, _ in a })
            shapes.mUint32Bytes = Dictionary(
                (0..<Int(next() % 3)).map { _ in (UInt32(truncatingIfNeeded: next()), bytes()) }, uniquingKeysWith: { a, _ in a })
            shapes.mUint64Enum = Dictionary(
                (0..<Int(next() % 3)).map { _ in (uint64(), Switchboard_Testing_V1_Color(protoValue: Int32(next() % 5))) },
                uniquingKeysWith: { a, _ in a })
            shapes.rSint64 = (0..<Int(next() % 3)).map { _ in int64() }
            shapes.rFixed64 = (0..<Int(next() % 3)).map { _ in uint64() }
            shapes.wInt64 = next() % 2 == 0 ? nil : int64()
            shapes.wUint64 = next() % 2 == 0 ? nil : uint64()
            shapes.wBytes = next() % 2 == 0 ? nil : bytes()
            shapes.rTimestamp = (0..<Int(next() % 3)).map { _ in timestamp() }
            shapes.jsonNamed = text()
            if next() % 2 == 0 { shapes.recursive = shapes }
            for (value, written) in [(try? m.protoJSON(), try? m.protoJSONText()), (try? shapes.protoJSON(), try? shapes.protoJSONText())] {
                #expect(value?.text == written, "\(value?.text ?? "refused") against \(written ?? "refused")")
            }
            let written = try? m.protoJSONText()
            // (Compared as text: a date far from 1970 does not survive microseconds through a double exactly.)
            if let written { #expect(try Switchboard_Testing_V1_Everything(protoJSONText: written).protoJSONText() == written) }
        }
    }

    @Test("values JSON cannot hold are encoding errors, mapped to INTERNAL")
    func encodingErrors() {
        var late = Switchboard_Testing_V1_Everything()
        late.tTimestamp = Date(timeIntervalSince1970: 300_000_000_000)
        #expect { _ = try late.protoJSON() } throws: { error in
            (error as? ProtoJSONError).map { $0.path == "tTimestamp" && $0.direction == .encoding && $0.rpcError.code == .internal } ?? false
        }
        // Off the wire, any Int64 and Int32: the extremes must be refused, not trap.
        var duration = Google_Protobuf_Duration()
        duration.seconds = .min
        duration.nanos = .min
        #expect(throws: ProtoJSONError.self) { _ = try duration.protoJSON() }
        var timestamp = Google_Protobuf_Timestamp()
        timestamp.seconds = .min
        timestamp.nanos = .min
        #expect(throws: ProtoJSONError.self) { _ = try timestamp.protoJSON() }
        var nan = Switchboard_Testing_V1_Everything()
        var value = Google_Protobuf_Value()
        value.kind = .numberValue(.nan)
        nan.tValue = value
        #expect(throws: ProtoJSONError.self) { _ = try nan.protoJSON() }
        var mask = Switchboard_Testing_V1_Everything()
        mask.tFieldMask = Google_Protobuf_FieldMask(paths: ["Bad"])
        #expect(throws: ProtoJSONError.self) { _ = try mask.protoJSON() }
        var any = Switchboard_Testing_V1_MoreShapes()
        var payload = Google_Protobuf_Any()
        payload.typeUrl = "type.googleapis.com/no.such.Type"
        payload.value = [1]
        any.tAny = payload
        #expect(throws: ProtoJSONError.self) { _ = try any.protoJSON() }

        // The text writer refuses the same values, naming the same path, however deep.
        #expect(Self.encodingErrorPath(late) == "tTimestamp")
        #expect(Self.encodingErrorPath(nan) == "tValue")
        #expect(Self.encodingErrorPath(mask) == "tFieldMask")
        var deep = Switchboard_Testing_V1_MoreShapes()
        deep.recursive = Switchboard_Testing_V1_MoreShapes()
        deep.recursive?.recursive = any
        #expect(Self.encodingErrorPath(deep) == "recursive.recursive.tAny")
    }

    /// The path both writers name for a message they refuse (nil, and a failed expectation, when they differ).
    static func encodingErrorPath<M: ProtoJSONMessage>(_ message: M) -> String? {
        var value: String?
        var text: String?
        do { _ = try message.protoJSON() } catch let error as ProtoJSONError { value = error.path } catch {}
        do { _ = try message.protoJSONText() } catch let error as ProtoJSONError { text = error.path } catch {}
        #expect(value == text, "the JSON value's error at \(value ?? "-"), the text's at \(text ?? "-")")
        return value == text ? value : nil
    }

    @Test("options: enums as integers; unknown fields and enum names ignored on request")
    func options() throws {
        var message = Switchboard_Testing_V1_Everything()
        message.fEnum = .blue
        message.rEnum = [.red, .unrecognized(9)]
        var encoding = ProtoJSONEncodingOptions()
        encoding.enumsAsIntegers = true
        #expect(try message.protoJSONText(options: encoding) == #"{"fEnum":3,"rEnum":[1,9]}"#)
        #expect(try message.protoJSONText() == #"{"fEnum":"COLOR_BLUE","rEnum":["COLOR_RED",9]}"#)

        let text = #"{"fEnum": "COLOR_PINK", "mStringEnum": {"a": "COLOR_PINK", "b": "COLOR_RED"}, "extra": 1}"#
        #expect(throws: ProtoJSONError.self) { _ = try Switchboard_Testing_V1_Everything(protoJSONText: text) }
        var decoding = ProtoJSONDecodingOptions()
        decoding.ignoreUnknownFields = true
        let lenient = try Switchboard_Testing_V1_Everything(protoJSONText: text, options: decoding)
        #expect(lenient.fEnum == .unspecified)
        #expect(lenient.mStringEnum == ["b": .red])
    }

    @Test("deep input is refused, not a crash: JSON nesting and message nesting are both bounded")
    func depth() {
        let deepText = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: ProtoJSONError.self) { _ = try Google_Protobuf_Value(protoJSONText: deepText) }
        var options = ProtoJSONDecodingOptions()
        options.maxDepth = 3
        #expect(throws: ProtoJSONError.self) {
            _ = try Switchboard_Testing_V1_MoreShapes(protoJSONText: #"{"recursive": {"recursive": {"recursive": {}}}}"#, options: options)
        }
    }

    @Test("every generated message type: its default is {} (or its well-known form) and reads back")
    func everyTypeRoundTrips() throws {
        #expect(ProtoJSONRegistry.messageTypes.count > 60)
        for type in ProtoJSONRegistry.messageTypes {
            try Self.roundTripDefault(type)
        }
    }

    static func roundTripDefault<M: ProtoJSONMessage>(_ type: M.Type) throws {
        let json = try M().protoJSON()
        switch M.protoMessageName {
        case "google.protobuf.Timestamp": #expect(json == .string("1970-01-01T00:00:00Z"))
        case "google.protobuf.Duration": #expect(json == .string("0s"))
        case "google.protobuf.FieldMask": #expect(json == .string(""))
        case "google.protobuf.Value": #expect(json == .null)
        case "google.protobuf.ListValue": #expect(json == .array([]))
        case let name where name.hasPrefix("google.protobuf.") && name.hasSuffix("Value"): #expect(json != .object([:]))
        default: #expect(json == .object([:]), "\(M.protoMessageName)")
        }
        #expect(try M().protoJSONText() == json.text, "\(M.protoMessageName)")
        let back = try M(protoJSONText: json.text)
        if M.protoMessageName == "google.protobuf.Value" {
            #expect(try back.protoJSON() == .null)
        } else {
            #expect(back == M(), "\(M.protoMessageName)")
        }
    }

    @Test("the JSON value type keeps number text, compares numbers by value, and can refuse repeated keys")
    func jsonNumbers() throws {
        let parsed = try JSON.parse(#"[9007199254740993, 9007199254740992, 1.0, 1e2]"#)
        guard case .array(let numbers) = parsed else {
            Issue.record("not an array")
            return
        }
        #expect(numbers[0] != numbers[1], "two integers past 2^53 that share a double differ")
        #expect(numbers[2] == .number(1))
        #expect(numbers[3] == .number(100))
        #expect(parsed.text == "[9007199254740993,9007199254740992,1.0,1e2]")
        #expect(try JSON.parse(#"{"a": 1, "a": 2}"#) == .object(["a": .number(2)]))
        #expect(throws: JSON.SyntaxError.self) { try JSON.parse(#"{"a": 1, "a": 2}"#, rejectingDuplicateKeys: true) }
        var value = Google_Protobuf_Value()
        if case .number(let n) = numbers[3] { value.kind = .numberValue(n) }
        #expect(value.kind == .numberValue(100))
    }
}
