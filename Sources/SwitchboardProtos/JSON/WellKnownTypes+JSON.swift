// The well-known types whose proto3 JSON is not an object of their fields: Timestamp and Duration are strings,
// FieldMask a comma-joined string, Struct/Value/ListValue plain JSON, Any an object with "@type". The generator leaves
// these types' JSON methods out and this file supplies them (the wrappers' and Empty's are generated).
import FoundationEssentials
import NIOCore

// MARK: - Timestamp

/// Calendar arithmetic for RFC 3339 timestamps (proleptic Gregorian, days since 1970-01-01), after Howard Hinnant's
/// `civil_from_days` / `days_from_civil`: exact for every year a Timestamp allows, and no Foundation calendar.
enum _ProtoJSONCalendar {
    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

func _padded(_ value: Int64, _ width: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

/// `.123`, `.123456` or `.123456789` (the fewest of 0, 3, 6 or 9 digits that are exact), as Python prints them.
func _protoJSONFraction(_ nanos: Int64) -> String {
    if nanos == 0 { return "" }
    if nanos % 1_000_000 == 0 { return "." + _padded(nanos / 1_000_000, 3) }
    if nanos % 1000 == 0 { return "." + _padded(nanos / 1000, 6) }
    return "." + _padded(nanos, 9)
}

extension Google_Protobuf_Timestamp {
    /// RFC 3339 in UTC with a `Z`, e.g. `1972-01-01T10:00:20.021Z`.
    /// - Throws: ``ProtoJSONError`` for a timestamp outside 0001-01-01 … 9999-12-31.
    public func _encodeProtoJSON(_ encoder: inout _ProtoJSONEncoder) throws -> JSON {
        guard isValid else {
            throw encoder.error("timestamp (seconds \(seconds), nanos \(nanos)) outside 0001-01-01T00:00:00Z…9999-12-31T23:59:59Z")
        }
        let secondOfDay = ((seconds % 86_400) + 86_400) % 86_400
        let (year, month, day) = _ProtoJSONCalendar.civil(fromDays: (seconds - secondOfDay) / 86_400)
        let text =
            "\(_padded(year, 4))-\(_padded(month, 2))-\(_padded(day, 2))T\(_padded(secondOfDay / 3600, 2)):"
            + "\(_padded(secondOfDay / 60 % 60, 2)):\(_padded(secondOfDay % 60, 2))\(_protoJSONFraction(Int64(nanos)))Z"
        return .string(text)
    }

    /// The text of ``_encodeProtoJSON(_:)``'s string, written as bytes (a contact's JSON holds two or three).
    /// - Throws: ``ProtoJSONError`` for a timestamp outside 0001-01-01 … 9999-12-31.
    public func _writeProtoJSON(_ writer: inout _ProtoJSONWriter) throws {
        guard isValid else {
            // Refused there, with the message and path errors have.
            var encoder = writer.encoder()
            return writer.write(try _encodeProtoJSON(&encoder))
        }
        let secondOfDay = ((seconds % 86_400) + 86_400) % 86_400
        let (year, month, day) = _ProtoJSONCalendar.civil(fromDays: (seconds - secondOfDay) / 86_400)
        writer.ascii("\"")
        writer.digits(year, width: 4)
        writer.ascii("-")
        writer.digits(month, width: 2)
        writer.ascii("-")
        writer.digits(day, width: 2)
        writer.ascii("T")
        writer.digits(secondOfDay / 3600, width: 2)
        writer.ascii(":")
        writer.digits(secondOfDay / 60 % 60, width: 2)
        writer.ascii(":")
        writer.digits(secondOfDay % 60, width: 2)
        // `.123`, `.123456` or `.123456789`, as `_protoJSONFraction` writes them.
        let nanos = Int64(nanos)
        if nanos != 0 {
            writer.ascii(".")
            if nanos % 1_000_000 == 0 {
                writer.digits(nanos / 1_000_000, width: 3)
            } else if nanos % 1000 == 0 {
                writer.digits(nanos / 1000, width: 6)
            } else {
                writer.digits(nanos, width: 9)
            }
        }
        writer.ascii("Z\"")
    }

    /// Reads RFC 3339 (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.5+02:00`): up to nine fractional digits, `Z` or
    /// a `±hh:mm` offset, within 0001-01-01 … 9999-12-31 once converted to UTC.
    /// - Throws: ``ProtoJSONError``.
    public init(_decodingProtoJSON json: JSON, _ decoder: inout _ProtoJSONDecoder) throws {
        try decoder.enterLevel()
        defer { decoder.exitLevel() }
        guard case .string(let text) = json else { throw decoder.error("expected an RFC 3339 timestamp string") }
        guard let (seconds, nanos) = Self.parse(text) else { throw decoder.error("invalid timestamp \(_quoted(text))") }
        self.init()
        self.seconds = seconds
        self.nanos = nanos
        guard isValid else { throw decoder.error("timestamp \(_quoted(text)) outside 0001-01-01…9999-12-31") }
    }

    private static func parse(_ text: String) -> (Int64, Int32)? {
        let b = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int64? {
            guard range.upperBound <= b.count, !range.isEmpty else { return nil }
            var value: Int64 = 0
            for i in range {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                value = value * 10 + Int64(b[i] - 0x30)
            }
            return value
        }
        func at(_ i: Int, _ c: Character) -> Bool { i < b.count && b[i] == c.asciiValue! }
        // YYYY-MM-DDTHH:MM:SS, with an upper-case T as Python requires.
        guard b.count >= 20, at(4, "-"), at(7, "-"), at(10, "T"), at(13, ":"), at(16, ":"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            year >= 1, (1...12).contains(month), day >= 1, day <= _ProtoJSONCalendar.daysIn(month: month, year: year),
            hour < 24, minute < 60, second < 60
        else { return nil }
        var i = 19
        var nanos: Int64 = 0
        if at(i, ".") {
            i += 1
            let start = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            guard i - start <= 9 else { return nil }
            if i > start { nanos = number(start..<i)! }
            for _ in 0..<(9 - (i - start)) { nanos *= 10 }
        }
        var offset: Int64 = 0
        if at(i, "Z") {
            guard i + 1 == b.count else { return nil }
        } else if at(i, "+") || at(i, "-") {
            let sign: Int64 = b[i] == UInt8(ascii: "+") ? 1 : -1
            guard let colon = b[(i + 1)...].firstIndex(of: UInt8(ascii: ":")), colon - i - 1 <= 4, b.count - colon - 1 <= 4,
                let hours = number((i + 1)..<colon), let minutes = number((colon + 1)..<b.count)
            else { return nil }
            offset = sign * (hours * 60 + minutes) * 60
        } else {
            return nil
        }
        let days = _ProtoJSONCalendar.days(year: year, month: month, day: day)
        return (days * 86_400 + hour * 3600 + minute * 60 + second - offset, Int32(nanos))
    }
}

// MARK: - Duration

enum _ProtoJSONDuration {
    /// ±10,000 years, the range google.protobuf.Duration defines.
    static let maxSeconds: Int64 = 315_576_000_000

    /// Whether seconds and nanos make a Duration the type allows. `magnitude`, not `abs`: `abs(Int64.min)` traps,
    /// and these numbers come off the wire.
    static func isValid(seconds: Int64, nanos: Int64) -> Bool {
        seconds.magnitude <= maxSeconds.magnitude && nanos.magnitude < 1_000_000_000
            && !(seconds > 0 && nanos < 0) && !(seconds < 0 && nanos > 0)
    }

    static func format(seconds: Int64, nanos: Int32, _ encoder: inout _ProtoJSONEncoder) throws -> JSON {
        guard isValid(seconds: seconds, nanos: Int64(nanos)) else {
            throw encoder.error("duration (seconds \(seconds), nanos \(nanos)) outside ±315576000000s or with mixed signs")
        }
        let negative = seconds < 0 || nanos < 0
        return .string((negative ? "-" : "") + "\(seconds.magnitude)\(_protoJSONFraction(Int64(nanos.magnitude)))s")
    }

    static func encode(_ duration: Swift.Duration, _ encoder: inout _ProtoJSONEncoder) throws -> JSON {
        // Swift splits a negative duration into floored seconds and positive attoseconds; proto wants both parts
        // truncated toward zero with one sign.
        var (seconds, attoseconds) = duration.components
        if seconds < 0, attoseconds > 0 {
            seconds += 1
            attoseconds -= 1_000_000_000_000_000_000
        }
        return try format(seconds: seconds, nanos: Int32(attoseconds / 1_000_000_000), &encoder)
    }

    /// `[-]seconds[.fraction]s`, the fraction rounded to nanoseconds as Python does.
    static func parse(_ text: String) -> (Int64, Int32)? {
        guard text.hasSuffix("s") else { return nil }
        let body = text.dropLast()
        let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = String(parts[0])
        guard _isIntegerSyntax(whole), whole.count <= 20, let seconds = Int64(whole) else { return nil }
        var nanos: Int64 = 0
        if parts.count == 2 {
            let fraction = parts[1]
            guard fraction.count <= 30, fraction.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let value = Double("0." + fraction)
            else { return nil }
            nanos = Int64((value * 1e9).rounded(.toNearestOrEven))
            if whole.hasPrefix("-") { nanos = -nanos }
        }
        guard isValid(seconds: seconds, nanos: nanos) else { return nil }
        return (seconds, Int32(nanos))
    }
}

extension Google_Protobuf_Duration {
    /// `"1.5s"`, `"-0.001s"`: seconds with 0, 3, 6 or 9 fractional digits.
    /// - Throws: ``ProtoJSONError`` outside ±315576000000 seconds or with mixed signs.
    public func _encodeProtoJSON(_ encoder: inout _ProtoJSONEncoder) throws -> JSON {
        try _ProtoJSONDuration.format(seconds: seconds, nanos: nanos, &encoder)
    }

    /// Reads `"1.5s"` and the like.
    /// - Throws: ``ProtoJSONError``.
    public init(_decodingProtoJSON json: JSON, _ decoder: inout _ProtoJSONDecoder) throws {
        try decoder.enterLevel()
        defer { decoder.exitLevel() }
        guard case .string(let text) = json else { throw decoder.error("expected a duration string such as \"1.5s\"") }
        guard let (seconds, nanos) = _ProtoJSONDuration.parse(text) else {
            throw decoder.error("invalid duration \(_quoted(text))")
        }
        self.init()
        self.seconds = seconds
        self.nanos = nanos
    }
}

// MARK: - FieldMask

extension Google_Protobuf_FieldMask {
    /// The paths in lowerCamel, joined by commas: `"name.givenName,emails"`.
    /// - Throws: ``ProtoJSONError`` for a path with no lowerCamel form (capitals, or `_` not before a lower-case
    ///   letter).
    public func _encodeProtoJSON(_ encoder: inout _ProtoJSONEncoder) throws -> JSON {
        var out: [String] = []
        for path in paths {
            var camel = ""
            var afterUnderscore = false
            for c in path {
                if c.isUppercase { throw encoder.error("field mask path \(_quoted(path)) has an upper-case letter") }
                if afterUnderscore {
                    guard c.isLowercase else {
                        throw encoder.error("field mask path \(_quoted(path)): \"_\" must precede a lower-case letter")
                    }
                    camel += c.uppercased()
                    afterUnderscore = false
                } else if c == "_" {
                    afterUnderscore = true
                } else {
                    camel.append(c)
                }
            }
            if afterUnderscore { throw encoder.error("field mask path \(_quoted(path)) ends with \"_\"") }
            out.append(camel)
        }
        return .string(out.joined(separator: ","))
    }

    /// Reads comma-joined lowerCamel paths back into snake_case.
    /// - Throws: ``ProtoJSONError`` for a path containing `_`.
    public init(_decodingProtoJSON json: JSON, _ decoder: inout _ProtoJSONDecoder) throws {
        try decoder.enterLevel()
        defer { decoder.exitLevel() }
        guard case .string(let text) = json else { throw decoder.error("expected a field mask string") }
        self.init()
        if text.isEmpty { return }
        for camel in text.split(separator: ",", omittingEmptySubsequences: false) {
            var snake = ""
            for c in camel {
                if c == "_" { throw decoder.error("field mask path \(_quoted(String(camel))) contains \"_\"") }
                if c.isUppercase {
                    snake += "_" + c.lowercased()
                } else {
                    snake.append(c)
                }
            }
            paths.append(snake)
        }
    }
}

// MARK: - Struct, Value, ListValue

extension Google_Protobuf_Struct {
    /// A JSON object of the fields.
    /// - Throws: ``ProtoJSONError`` for a NaN or infinite number inside.
    public func _encodeProtoJSON(_ encoder: inout _ProtoJSONEncoder) throws -> JSON {
        var object: [String: JSON] = [:]
        for (key, value) in fields { object[key] = try encoder.nested(.key(key), value) }
        return .object(object)
    }

    /// Reads any JSON object.
    /// - Throws: ``ProtoJSONError``.
    public init(_decodingProtoJSON json: JSON, _ decoder: inout _ProtoJSONDecoder) throws {
        try decoder.enterLevel()
        defer { decoder.exitLevel() }
        guard case .object(let object) = json else { throw decoder.error("expected an object for a Struct") }
        self.init()
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            fields[key] = try decoder.nested(.key(key), value) as Google_Protobuf_Value
        }
    }
}

extension Google_Protobuf_ListValue {
    /// A JSON array of the values.
    /// - Throws: ``ProtoJSONError`` for a NaN or infinite number inside.
    public func _encodeProtoJSON(_ encoder: inout _ProtoJSONEncoder) throws -> JSON {
        var array: [JSON] = []
        for (i, value) in values.enumerated() { array.append(try encoder.nested(.index(i), value)) }
        return .array(array)
    }

    /// Reads any JSON array.
    /// - Throws: ``ProtoJSONError``.
    public init(_decodingProtoJSON json: JSON, _ decoder: inout _ProtoJSONDecoder) throws {
        try decoder.enterLevel()
        defer { decoder.exitLevel() }
        guard case .array(let array) = json else { throw decoder.error("expected an array for a ListValue") }
        self.init()
        for (i, element) in array.enumerated() { values.append(try decoder.nested(.index(i), element)) }
    }
}

extension Google_Protobuf_Value {
    /// The value as plain JSON; an unset value is null, as in Python.
    /// - Throws: ``ProtoJSONError`` for a NaN or infinite number (it would read back as a string).
    public func _encodeProtoJSON(_ encoder: inout _ProtoJSONEncoder) throws -> JSON {
        switch kind {
        case .nullValue, nil: return .null
        case .numberValue(let n):
            guard n.isFinite else { throw encoder.error("a google.protobuf.Value number cannot be NaN or infinite in JSON") }
            return .number(n)
        case .stringValue(let s): return .string(s)
        case .boolValue(let b): return .bool(b)
        case .structValue(let s): return try s._encodeProtoJSON(&encoder)
        case .listValue(let l): return try l._encodeProtoJSON(&encoder)
        }
    }

    /// Reads any JSON value.
    /// - Throws: ``ProtoJSONError`` when nesting passes the depth limit.
    public init(_decodingProtoJSON json: JSON, _ decoder: inout _ProtoJSONDecoder) throws {
        try decoder.enterLevel()
        defer { decoder.exitLevel() }
        self.init()
        switch json {
        case .null: kind = .nullValue(.nullValue)
        case .bool(let b): kind = .boolValue(b)
        case .number(let n): kind = .numberValue(n.double)
        case .string(let s): kind = .stringValue(s)
        case .array: kind = .listValue(try decoder.nested(nil, json))
        case .object: kind = .structValue(try decoder.nested(nil, json))
        }
    }
}

// MARK: - Any

extension Google_Protobuf_Any {
    /// The types whose JSON is not an object of fields: inside an Any they sit under `"value"`.
    static let specialJSONTypes: Set<String> = [
        "google.protobuf.Any", "google.protobuf.Duration", "google.protobuf.FieldMask", "google.protobuf.ListValue",
        "google.protobuf.Struct", "google.protobuf.Timestamp", "google.protobuf.Value",
        "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
        "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
        "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
    ]

    static func messageType(forURL url: String) -> (any ProtoJSONMessage.Type)? {
        let name = url.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? url
        return _ProtoJSONRegistry.messageTypesByName[name]
    }

    /// `{"@type": url, ...fields}`, or `{"@type": url, "value": json}` for a well-known type; `{}` when empty.
    /// - Throws: ``ProtoJSONError`` when the type is not one this module generates, or the payload does not decode.
    public func _encodeProtoJSON(_ encoder: inout _ProtoJSONEncoder) throws -> JSON {
        if typeUrl.isEmpty, value.isEmpty { return .object([:]) }
        guard let type = Self.messageType(forURL: typeUrl) else {
            throw encoder.error("Any of type \(_quoted(typeUrl)), which this module does not know")
        }
        return try Self.encodePayload(type, typeUrl: typeUrl, bytes: value, &encoder)
    }

    private static func encodePayload<M: ProtoJSONMessage>(
        _ type: M.Type, typeUrl: String, bytes: [UInt8], _ encoder: inout _ProtoJSONEncoder
    ) throws -> JSON {
        let message: M
        do {
            message = try M(decoding: ByteBuffer(bytes: bytes))
        } catch {
            throw encoder.error("Any payload is not a valid \(M.protoMessageName)")
        }
        let json = try message._encodeProtoJSON(&encoder)
        if specialJSONTypes.contains(M.protoMessageName) { return .object(["@type": .string(typeUrl), "value": json]) }
        guard case .object(var object) = json else { return json }
        object["@type"] = .string(typeUrl)
        return .object(object)
    }

    /// Reads `{"@type": …}` for the types this module generates.
    /// - Throws: ``ProtoJSONError`` for a missing or unknown `@type`, or an invalid payload.
    public init(_decodingProtoJSON json: JSON, _ decoder: inout _ProtoJSONDecoder) throws {
        try decoder.enterLevel()
        defer { decoder.exitLevel() }
        guard case .object(var object) = json else { throw decoder.error("expected an object for an Any") }
        self.init()
        if object.isEmpty { return }
        guard case .string(let url)? = object.removeValue(forKey: "@type") else {
            throw decoder.error("Any without a string \"@type\"")
        }
        guard let type = Self.messageType(forURL: url) else {
            throw decoder.error("Any of type \(_quoted(url)), which this module does not know")
        }
        self.typeUrl = url
        self.value = try Self.decodePayload(type, object, &decoder)
    }

    private static func decodePayload<M: ProtoJSONMessage>(
        _ type: M.Type, _ object: [String: JSON], _ decoder: inout _ProtoJSONDecoder
    ) throws -> [UInt8] {
        let message: M
        if specialJSONTypes.contains(M.protoMessageName) {
            guard let value = object["value"] else { throw decoder.error("Any of a well-known type without \"value\"") }
            message = try decoder.nested(.field("value"), value)
        } else {
            message = try decoder.nested(nil, .object(object))
        }
        var buffer = ByteBuffer()
        message.encode(into: &buffer)
        return Array(buffer.readableBytesView)
    }
}

extension _ProtoJSONRegistry {
    /// The generated message types by full proto name.
    static let messageTypesByName: [String: any ProtoJSONMessage.Type] = Dictionary(
        messageTypes.map { ($0.protoMessageName, $0) }, uniquingKeysWith: { first, _ in first })
}
