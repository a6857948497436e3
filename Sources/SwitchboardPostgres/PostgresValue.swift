import FoundationEssentials
import Glibc

/// A calendar date without a time zone (PostgreSQL `date`).
public struct PostgresDate: Sendable, Hashable, CustomStringConvertible {
    /// The year.
    public var year: Int
    /// The month, 1...12.
    public var month: Int
    /// The day, 1...31.
    public var day: Int
    /// Creates a date.
    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }
    /// `YYYY-MM-DD`.
    public var description: String {
        "\(PostgresTime.padded(year, 4))-\(PostgresTime.padded(month, 2))-\(PostgresTime.padded(day, 2))"
    }
}

/// A value bound to a statement parameter or read from a column.
///
/// Parameters are always bound (`$1`, `$2`...), never spliced into SQL text.
public enum PostgresValue: Sendable, Hashable {
    /// SQL NULL.
    case null
    /// `text` / `varchar`.
    case text(String)
    /// `int2`, `int4`, `int8`.
    case int(Int64)
    /// `bool`.
    case bool(Bool)
    /// `float4`, `float8`.
    case double(Double)
    /// `numeric`, kept as its exact decimal text.
    case numeric(String)
    /// `uuid`.
    case uuid(UUID)
    /// `timestamptz` (microsecond precision on the server).
    case timestamp(Date)
    /// `date`.
    case date(PostgresDate)
    /// `jsonb`, as JSON text.
    case jsonb(String)
    /// `bytea`.
    case bytes([UInt8])
    /// A one-dimensional array of one element type.
    case array([PostgresValue], elementType: ElementType)

    /// Element types of arrays this layer binds and decodes.
    public enum ElementType: Sendable, Hashable {
        /// `text[]`.
        case text
        /// `int8[]`.
        case int
        /// `bool[]`.
        case bool
        /// `float8[]`.
        case double
        /// `uuid[]`.
        case uuid

        /// The array type's OID.
        var arrayOID: UInt32 {
            switch self {
            case .text: return OID.textArray
            case .int: return OID.int8Array
            case .bool: return OID.boolArray
            case .double: return OID.float8Array
            case .uuid: return OID.uuidArray
            }
        }

        /// The element type's OID.
        var elementOID: UInt32 {
            switch self {
            case .text: return OID.text
            case .int: return OID.int8
            case .bool: return OID.bool
            case .double: return OID.float8
            case .uuid: return OID.uuid
            }
        }
    }

    /// Type OIDs (pg_type) this layer knows.
    enum OID {
        static let bool: UInt32 = 16, bytea: UInt32 = 17, int8: UInt32 = 20, int2: UInt32 = 21, int4: UInt32 = 23
        static let text: UInt32 = 25, oid: UInt32 = 26, json: UInt32 = 114, float4: UInt32 = 700, float8: UInt32 = 701
        static let varchar: UInt32 = 1043, bpchar: UInt32 = 1042, date: UInt32 = 1082, timestamp: UInt32 = 1114
        static let timestamptz: UInt32 = 1184, numeric: UInt32 = 1700, uuid: UInt32 = 2950, jsonb: UInt32 = 3802
        static let boolArray: UInt32 = 1000, int2Array: UInt32 = 1005, int4Array: UInt32 = 1007, textArray: UInt32 = 1009
        static let varcharArray: UInt32 = 1015, int8Array: UInt32 = 1016, float8Array: UInt32 = 1022, uuidArray: UInt32 = 2951
        static let float4Array: UInt32 = 1021, name: UInt32 = 19
    }

    /// The wire form for binding: the value's text form (``textForm``), or its binary form where that saves
    /// PostgreSQL a parse — bytea, and arrays whose elements all have one (an import binds a thousand values per column
    /// per statement; PostgreSQL's `array_in` and the service's escaping of every element were a few percent of the
    /// machine's CPU) — and the type OID.
    var parameter: (value: [UInt8]?, oid: UInt32, binary: Bool) {
        switch self {
        case .bytes(let b): return (b, OID.bytea, true)
        case .array(let elements, let type):
            if let binary = PostgresArray.binary(elements, type: type) { return (binary, type.arrayOID, true) }
            return (PostgresArray.formatBytes(elements), type.arrayOID, false)
        default: return (textForm, textOID, false)
        }
    }

    /// The type OID the value is bound as.
    private var textOID: UInt32 {
        switch self {
        case .null: return 0
        case .text: return OID.text
        case .int: return OID.int8
        case .bool: return OID.bool
        case .double: return OID.float8
        case .numeric: return OID.numeric
        case .uuid: return OID.uuid
        case .timestamp: return OID.timestamptz
        case .date: return OID.date
        case .jsonb: return OID.jsonb
        case .bytes: return OID.bytea
        case .array(_, let type): return type.arrayOID
        }
    }

    /// The value's text form as PostgreSQL reads it (raw bytes for bytea), as `COPY` and array literals carry it;
    /// nil for NULL and for a value with no text form (a NaN timestamp).
    var textForm: [UInt8]? {
        switch self {
        case .null: return nil
        case .text(let s): return Array(s.utf8)
        case .int(let i): return Array(String(i).utf8)
        case .bool(let b): return Array((b ? "t" : "f").utf8)
        case .double(let d): return Array(Self.formatDouble(d).utf8)
        case .numeric(let n): return Array(n.utf8)
        case .uuid(let u): return Array(u.lowercaseText.utf8)
        case .timestamp(let d): return PostgresTime.format(d).map { Array($0.utf8) }
        case .date(let d): return Array(d.description.utf8)
        case .jsonb(let j): return Array(j.utf8)
        case .bytes(let b): return b
        case .array(let elements, _): return PostgresArray.formatBytes(elements)
        }
    }

    static func formatDouble(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
        return "\(d)"
    }

    /// Decodes a text-format column value from libpq's bytes by its type OID: ids and times straight from the bytes
    /// (a search reads hundreds of rows per call, and a String made first for each was a fifth of its CPU in the
    /// service), everything else through its text.
    static func decode(utf8 bytes: UnsafeBufferPointer<UInt8>, oid: UInt32) throws -> PostgresValue {
        switch oid {
        case OID.uuid:
            guard let u = UUID(utf8: bytes) else { throw decodingFailure(oid) }
            return .uuid(u)
        case OID.timestamptz, OID.timestamp:
            guard let d = PostgresTime.parse(utf8: bytes) else { throw decodingFailure(oid) }
            return .timestamp(d)
        case OID.bool:
            return .bool(bytes.count == 1 && bytes[0] == UInt8(ascii: "t"))
        default:
            return try decode(String(decoding: bytes, as: UTF8.self), oid: oid)
        }
    }

    private static func decodingFailure(_ oid: UInt32) -> PostgresError {
        PostgresError(kind: .decoding, message: "cannot decode a value of type OID \(oid)")
    }

    /// Decodes a text-format column value by its type OID.
    static func decode(_ text: String?, oid: UInt32) throws -> PostgresValue {
        guard let text else { return .null }
        func fail() -> PostgresError { decodingFailure(oid) }
        switch oid {
        case OID.bool: return .bool(text == "t")
        case OID.int2, OID.int4, OID.int8, OID.oid:
            guard let i = Int64(text) else { throw fail() }
            return .int(i)
        case OID.float4, OID.float8:
            switch text {
            case "NaN": return .double(.nan)
            case "Infinity": return .double(.infinity)
            case "-Infinity": return .double(-.infinity)
            default:
                guard let d = Double(text) else { throw fail() }
                return .double(d)
            }
        case OID.numeric: return .numeric(text)
        case OID.uuid:
            guard let u = UUID(text: text) else { throw fail() }
            return .uuid(u)
        case OID.timestamptz, OID.timestamp:
            guard let d = PostgresTime.parse(text) else { throw fail() }
            return .timestamp(d)
        case OID.date:
            let parts = text.split(separator: "-").compactMap { Int($0) }
            guard parts.count == 3 else { throw fail() }
            return .date(PostgresDate(year: parts[0], month: parts[1], day: parts[2]))
        case OID.json, OID.jsonb: return .jsonb(text)
        case OID.bytea:
            guard text.hasPrefix("\\x"), let bytes = Self.hex(text.dropFirst(2)) else { throw fail() }
            return .bytes(bytes)
        case OID.textArray, OID.varcharArray:
            return .array(try PostgresArray.parse(text).map { $0.map(PostgresValue.text) ?? .null }, elementType: .text)
        case OID.int2Array, OID.int4Array, OID.int8Array:
            return .array(try PostgresArray.parse(text).map { try decode($0, oid: OID.int8) }, elementType: .int)
        case OID.boolArray:
            return .array(try PostgresArray.parse(text).map { try decode($0, oid: OID.bool) }, elementType: .bool)
        case OID.float4Array, OID.float8Array:
            return .array(try PostgresArray.parse(text).map { try decode($0, oid: OID.float8) }, elementType: .double)
        case OID.uuidArray:
            return .array(try PostgresArray.parse(text).map { try decode($0, oid: OID.uuid) }, elementType: .uuid)
        default:
            return .text(text)
        }
    }

    private static func hex<S: StringProtocol>(_ s: S) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count / 2)
        var high: UInt8?
        for c in s.utf8 {
            let v: UInt8
            switch c {
            case 48...57: v = c - 48
            case 97...102: v = c - 87
            case 65...70: v = c - 55
            default: return nil
            }
            if let h = high {
                out.append(h << 4 | v)
                high = nil
            } else {
                high = v
            }
        }
        return high == nil ? out : nil
    }
}

/// `timestamptz` text, always exchanged in UTC ISO form (connections set `TimeZone=UTC`, `DateStyle=ISO`).
enum PostgresTime {
    /// PostgreSQL's `timestamptz` range in seconds since 1970: 4714-11-24 00:00:00 BC up to (excluding)
    /// 294277-01-01 00:00:00.
    static let representableSeconds: Range<Double> = -210_866_803_200..<9_224_318_016_000

    /// The text PostgreSQL reads back as the same instant, rounded to the microsecond; total over every `Date`.
    ///
    /// A date outside PostgreSQL's range is `infinity` or `-infinity` (which sort after and before every other
    /// timestamp, as the date would); NaN, which names no instant, is nil (bound as SQL NULL). Callers validate
    /// client dates against their own, narrower ranges first: this only guarantees that no `Date` can trap here.
    /// - Parameter date: the date.
    /// - Returns: `YYYY-MM-DD HH:MM:SS.ffffff+00`, with ` BC` for years before 1, or nil for NaN.
    static func format(_ date: Date) -> String? {
        let interval = date.timeIntervalSince1970
        if interval.isNaN { return nil }
        if interval < representableSeconds.lowerBound { return "-infinity" }
        if interval >= representableSeconds.upperBound { return "infinity" }
        // Whole seconds and the rounded fraction separately: microseconds since 1970 near the top of the range do
        // not fit in an Int64. Every value is in range now, so the conversions below are exact and cannot fail.
        var wholeSeconds = interval.rounded(.down)
        var micros = ((interval - wholeSeconds) * 1_000_000).rounded()
        if micros >= 1_000_000 {
            wholeSeconds += 1
            micros -= 1_000_000
        }
        guard let seconds = Int64(exactly: wholeSeconds), let fraction = Int(exactly: micros) else { return nil }
        if seconds >= Int64(representableSeconds.upperBound) { return "infinity" }
        var t = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&t, &parts) != nil else { return nil }
        // ISO years 0, -1, ... are 1 BC, 2 BC, ...: PostgreSQL reads neither year 0 nor a minus sign.
        let year = Int(parts.tm_year) + 1900
        let era = year > 0 ? "" : " BC"
        return "\(padded(year > 0 ? year : 1 - year, 4))-\(padded(Int(parts.tm_mon) + 1, 2))-\(padded(Int(parts.tm_mday), 2)) "
            + "\(padded(Int(parts.tm_hour), 2)):\(padded(Int(parts.tm_min), 2)):\(padded(Int(parts.tm_sec), 2)).\(padded(fraction, 6))+00\(era)"
    }

    /// Zero-padded decimal (`String(format:)` needs the full Foundation).
    static func padded(_ value: Int, _ width: Int) -> String {
        let digits = String(value.magnitude)
        let padding = String(repeating: "0", count: max(0, width - digits.count))
        return (value < 0 ? "-" : "") + padding + digits
    }

    /// Parses `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]][ BC]` (years of four to six digits), `infinity` and
    /// `-infinity`: everything ``format(_:)`` writes.
    static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { parse(utf8: $0) }
    }

    /// ``parse(_:)`` from UTF-8 bytes (a column's value as libpq holds it), allocating nothing.
    static func parse(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Date? {
        if bytes.elementsEqual("infinity".utf8) { return Date(timeIntervalSince1970: .infinity) }
        if bytes.elementsEqual("-infinity".utf8) { return Date(timeIntervalSince1970: -.infinity) }
        // PostgreSQL writes years past 9999 with more digits: everything after the year shifts by that many.
        var yearDigits = 0
        while yearDigits < bytes.count, bytes[yearDigits] >= 48, bytes[yearDigits] <= 57 { yearDigits += 1 }
        guard (4...6).contains(yearDigits) else { return nil }
        let shift = yearDigits - 4
        func number(_ range: Range<Int>) -> Int? {
            let range = (range.lowerBound + shift)..<(range.upperBound + shift)
            guard range.upperBound <= bytes.count else { return nil }
            var n = 0
            for i in range {
                guard bytes[i] >= 48, bytes[i] <= 57 else { return nil }
                n = n * 10 + Int(bytes[i] - 48)
            }
            return n
        }
        guard let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var year = 0
        for b in bytes[0..<yearDigits] { year = year * 10 + Int(b - 48) }
        var i = 19 + shift
        var micros = 0
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 {
                if digits < 6 { micros = micros * 10 + Int(bytes[i] - 48) }
                digits += 1
                i += 1
            }
            while digits < 6 {
                micros *= 10
                digits += 1
            }
        }
        var offset = 0
        if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") {
            let sign = bytes[i] == UInt8(ascii: "-") ? -1 : 1
            guard let h = number((i + 1 - shift)..<(i + 3 - shift)) else { return nil }
            var m = 0
            if i + 6 <= bytes.count, bytes[i + 3] == UInt8(ascii: ":") { m = number((i + 4 - shift)..<(i + 6 - shift)) ?? 0 }
            offset = sign * (h * 3600 + m * 60)
        }
        if bytes.count >= 3, bytes[(bytes.count - 3)...].elementsEqual(" BC".utf8) { year = 1 - year }
        guard (1...12).contains(month) else { return nil }
        let seconds = daysFromCivil(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (astronomical years: 0 is 1 BC), by Howard
    /// Hinnant's `days_from_civil`; `timegm` did the same through the C library at a few times the cost.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

extension PostgresValue {
    /// The text form of a one-dimensional array (`{"a","b c",NULL}`), for an array that travels as one element of a
    /// bound text array and is cast back with `::text[]` (a multi-row insert's per-row arrays: an array of arrays
    /// cannot be bound, and a JSON array unnested by a subquery per row cost several times as much).
    public static func arrayLiteral(_ elements: [PostgresValue]) -> String {
        PostgresArray.format(elements)
    }
}

/// PostgreSQL's text form of one-dimensional arrays: `{a,"b c",NULL}`.
enum PostgresArray {
    static func format(_ elements: [PostgresValue]) -> String {
        String(decoding: formatBytes(elements), as: UTF8.self)
    }

    /// The literal as UTF-8 bytes, built byte by byte: `\` and `"` are ASCII, so escaping them never splits a
    /// character (an import binds arrays of a thousand values per column; appending Unicode scalars one at a time was a
    /// third of its CPU).
    static func formatBytes(_ elements: [PostgresValue]) -> [UInt8] {
        var out: [UInt8] = [0x7B]
        out.reserveCapacity(2 + elements.count * 16)
        for (i, element) in elements.enumerated() {
            if i > 0 { out.append(0x2C) }
            switch element {
            case .null: out += [0x4E, 0x55, 0x4C, 0x4C]
            // Text appended from the string's own bytes: no array made per element (an import binds a thousand rows'
            // values a column per statement).
            case .text(var text), .jsonb(var text), .numeric(var text):
                text.withUTF8 { appendQuoted($0, to: &out) }
            default:
                // A value with no text form (a NaN timestamp) is NULL here as it is when bound alone.
                guard let bytes = element.textForm else {
                    out += [0x4E, 0x55, 0x4C, 0x4C]
                    continue
                }
                bytes.withUnsafeBufferPointer { appendQuoted($0, to: &out) }
            }
        }
        out.append(0x7D)
        return out
    }

    /// The binary form `array_recv` reads (dimensions, a null flag, the element type, then each element's length and
    /// binary form), or nil when an element has none of the array's element type (it then travels as a literal, which
    /// PostgreSQL parses as it would the element bound alone). Text elements are their UTF-8 bytes, unescaped.
    static func binary(_ elements: [PostgresValue], type: PostgresValue.ElementType) -> [UInt8]? {
        guard elements.count <= Int(Int32.max) else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(20 + elements.count * (type == .text ? 24 : 20))
        func int32(_ value: Int32) {
            withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
        }
        let hasNull = elements.contains { if case .null = $0 { true } else { false } }
        int32(elements.isEmpty ? 0 : 1)
        int32(hasNull ? 1 : 0)
        int32(Int32(bitPattern: type.elementOID))
        if !elements.isEmpty {
            int32(Int32(elements.count))
            int32(1)
        }
        for element in elements {
            switch (type, element) {
            case (_, .null):
                int32(-1)
            case (.text, .text(var text)), (.text, .jsonb(var text)), (.text, .numeric(var text)):
                let count = text.utf8.count
                guard count <= Int(Int32.max) else { return nil }
                int32(Int32(count))
                text.withUTF8 { out.append(contentsOf: $0) }
            case (.text, _):
                // Another value in a text array is its text form, as in a literal (NULL when it has none).
                guard let bytes = element.textForm else {
                    int32(-1)
                    continue
                }
                int32(Int32(bytes.count))
                out.append(contentsOf: bytes)
            case (.int, .int(let value)):
                int32(8)
                withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
            case (.bool, .bool(let value)):
                int32(1)
                out.append(value ? 1 : 0)
            case (.double, .double(let value)):
                int32(8)
                withUnsafeBytes(of: value.bitPattern.bigEndian) { out.append(contentsOf: $0) }
            case (.uuid, .uuid(let value)):
                int32(16)
                withUnsafeBytes(of: value.uuid) { out.append(contentsOf: $0) }
            default:
                return nil
            }
        }
        return out
    }

    /// Appends an element in double quotes, with a backslash before each `\` and `"`.
    private static func appendQuoted(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(0x22)
        if bytes.contains(where: { $0 == 0x5C || $0 == 0x22 }) {
            for byte in bytes {
                if byte == 0x5C || byte == 0x22 { out.append(0x5C) }
                out.append(byte)
            }
        } else {
            out.append(contentsOf: bytes)
        }
        out.append(0x22)
    }

    /// The elements of a one-dimensional literal, read as UTF-8 bytes: the syntax (`{`, `}`, `,`, `"`, backslash) is ASCII, so
    /// no character is ever split, and an element without escapes is one slice of the text (a search reads thousands of
    /// small arrays a call; building them a Unicode scalar at a time was most of their cost).
    static func parse(_ text: String) throws -> [String?] {
        var text = text
        return try text.withUTF8 { bytes in
            guard bytes.count >= 2, bytes[0] == 0x7B, bytes[bytes.count - 1] == 0x7D else {
                throw PostgresError(kind: .decoding, message: "not a one-dimensional array literal")
            }
            let end = bytes.count - 1
            var out: [String?] = []
            var i = 1
            while i < end {
                if bytes[i] == 0x22 {
                    i += 1
                    let start = i
                    var escaped = false
                    while i < end, bytes[i] != 0x22 {
                        if bytes[i] == 0x5C {
                            escaped = true
                            i += 1
                        }
                        i += 1
                    }
                    let slice = UnsafeBufferPointer(rebasing: bytes[start..<min(i, end)])
                    if escaped {
                        var unescaped: [UInt8] = []
                        unescaped.reserveCapacity(slice.count)
                        var j = 0
                        while j < slice.count {
                            if slice[j] == 0x5C, j + 1 < slice.count { j += 1 }
                            unescaped.append(slice[j])
                            j += 1
                        }
                        out.append(String(decoding: unescaped, as: UTF8.self))
                    } else {
                        out.append(String(decoding: slice, as: UTF8.self))
                    }
                    i += 1
                } else {
                    let start = i
                    while i < end, bytes[i] != 0x2C { i += 1 }
                    let slice = UnsafeBufferPointer(rebasing: bytes[start..<i])
                    let isNull = slice.count == 4 && slice[0] == 0x4E && slice[1] == 0x55 && slice[2] == 0x4C && slice[3] == 0x4C
                    out.append(isNull ? nil : String(decoding: slice, as: UTF8.self))
                }
                if i < end, bytes[i] == 0x2C { i += 1 }
            }
            return out
        }
    }
}

extension PostgresValue {
    /// About the bytes of the value's text form as PostgreSQL writes it (strings exactly; numbers, ids and times by
    /// their usual width; arrays with their braces and commas, without quoting): a page's size from the rows
    /// received, without asking PostgreSQL for `octet_length(row::text)`.
    public var textBytes: Int {
        switch self {
        case .null: return 0
        case .text(let s), .jsonb(let s), .numeric(let s): return s.utf8.count
        case .int(let n):
            var digits = n < 0 ? 2 : 1
            var rest = n.magnitude
            while rest >= 10 {
                rest /= 10
                digits += 1
            }
            return digits
        case .bool: return 1
        case .double: return 17
        case .uuid: return 36
        case .timestamp: return 29
        case .date: return 10
        case .bytes(let b): return 2 + 2 * b.count
        case .array(let items, _): return items.isEmpty ? 2 : items.reduce(1) { $0 + $1.textBytes + 1 }
        }
    }
}
