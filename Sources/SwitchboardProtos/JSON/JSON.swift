import Glibc

/// A JSON value, with a strict parser (RFC 8259) and a compact writer (sorted keys), for the places that read or
/// write JSON text on every call: log lines, change-feed payloads, jsonb columns, and proto3 JSON
/// (``ProtoJSONMessage``). It lives beside the generated messages so that their JSON mapping can use it. Foundation's
/// `JSONSerialization` would pull the whole of Foundation (and ICU) into every service, several megabytes of resident
/// memory.
public enum JSON: Sendable, Hashable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number: its value as a double, and the text it was read from (proto3 JSON needs 64-bit integers exactly,
    /// which a double cannot hold past 2^53).
    case number(Number)
    /// A string.
    case string(String)
    /// An array.
    case array([JSON])
    /// An object (key order is not kept; the writer sorts keys).
    case object([String: JSON])

    /// A JSON number: the double it denotes and, when it was read from text, that text.
    public struct Number: Sendable, Hashable, CustomStringConvertible {
        /// The number as a double (the nearest one, as JSON readers usually do).
        public var double: Double
        /// The text the number was read from (valid JSON number syntax), or nil for a number made from a double.
        public var literal: String?

        /// A number made from a double.
        /// - Parameter double: the value.
        public init(_ double: Double) {
            self.double = double
            self.literal = nil
        }

        init(double: Double, literal: String) {
            self.double = double
            self.literal = literal
        }

        /// The literal when it is an integer (no fraction or exponent), e.g. `-9007199254740993`: the text from which
        /// 64-bit integers are read exactly.
        public var integerLiteral: String? {
            guard let literal, !literal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return nil }
            return literal
        }

        /// Equal doubles, and equal integer texts when both numbers are integers read from text (two integers past
        /// 2^53 can share a double).
        public static func == (lhs: Number, rhs: Number) -> Bool {
            guard lhs.double == rhs.double else { return false }
            if let l = lhs.integerLiteral, let r = rhs.integerLiteral, l != r {
                return l.drop { $0 == "-" } == "0" && r.drop { $0 == "-" } == "0"
            }
            return true
        }

        /// Hashes the double (equal numbers have equal doubles).
        public func hash(into hasher: inout Hasher) { hasher.combine(double) }

        /// The JSON text of the number: the literal it was read from, else the double's.
        public var description: String { literal ?? JSON.format(double) }
    }

    /// A number from a double: the spelling code that builds JSON values uses.
    /// - Parameter value: the number.
    /// - Returns: `.number(Number(value))`.
    public static func number(_ value: Double) -> JSON { .number(Number(value)) }

    /// Invalid JSON text; `offset` is the byte where reading stopped.
    public struct SyntaxError: Error, CustomStringConvertible {
        /// Where reading stopped.
        public var offset: Int
        /// Creates the error.
        public init(offset: Int) { self.offset = offset }
        /// Names the offset.
        public var description: String { "invalid JSON at byte \(offset)" }
    }

    /// Parses one JSON value (surrounding white space allowed).
    /// - Parameters:
    ///   - text: the JSON text.
    ///   - rejectingDuplicateKeys: whether an object naming a key twice is an error (proto3 JSON requires it; by
    ///     default the last one wins).
    /// - Throws: ``SyntaxError``.
    public static func parse(_ text: String, rejectingDuplicateKeys: Bool = false) throws -> JSON {
        var text = text
        return try text.withUTF8 { bytes in
            var parser = Parser(bytes: bytes, rejectDuplicateKeys: rejectingDuplicateKeys)
            let value = try parser.value(depth: 0)
            parser.skipSpace()
            guard parser.position == bytes.count else { throw SyntaxError(offset: parser.position) }
            return value
        }
    }

    /// Compact JSON text with object keys sorted (stable output for logs and tests); numbers that are whole print
    /// without a fraction, and NaN or infinities (which JSON cannot hold) print as null.
    public var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    /// Appends the compact text to `out`.
    public func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n.description
        case .string(let s): Self.quote(s, into: &out)
        case .array(let a):
            out += "["
            for (i, element) in a.enumerated() {
                if i > 0 { out += "," }
                element.write(to: &out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            // The pairs sorted by key (no lookup of each value by its key again).
            for (i, pair) in o.sorted(by: { $0.key < $1.key }).enumerated() {
                if i > 0 { out += "," }
                Self.quote(pair.key, into: &out)
                out += ":"
                pair.value.write(to: &out)
            }
            out += "}"
        }
    }

    static func format(_ n: Double) -> String {
        guard n.isFinite else { return "null" }
        if n == n.rounded(), abs(n) < 9_007_199_254_740_992 { return String(Int64(n)) }
        return "\(n)"
    }

    /// Appends `s` as a JSON string: quotes, backslashes and control characters escaped, the rest verbatim.
    public static func quote(_ s: String, into out: inout String) {
        out += "\""
        // Most strings need no escape: appended whole (scalar by scalar was a quarter of an import's CPU).
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x22 && $0 != 0x5C }) {
            out += s
            out += "\""
            return
        }
        let hex = Array("0123456789abcdef".unicodeScalars)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u00"
                out.unicodeScalars.append(hex[Int(scalar.value >> 4)])
                out.unicodeScalars.append(hex[Int(scalar.value & 0xF)])
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        let rejectDuplicateKeys: Bool
        var position = 0

        mutating func skipSpace() {
            while position < bytes.count, bytes[position] == 0x20 || bytes[position] == 0x0A || bytes[position] == 0x0D || bytes[position] == 0x09 {
                position += 1
            }
        }

        func fail() -> SyntaxError { SyntaxError(offset: position) }

        mutating func expect(_ literal: StaticString) throws {
            let count = literal.utf8CodeUnitCount
            guard position + count <= bytes.count else { throw fail() }
            for i in 0..<count where bytes[position + i] != literal.utf8Start[i] { throw fail() }
            position += count
        }

        mutating func value(depth: Int) throws -> JSON {
            guard depth < 512 else { throw fail() }
            skipSpace()
            guard position < bytes.count else { throw fail() }
            switch bytes[position] {
            case UInt8(ascii: "{"):
                position += 1
                var object: [String: JSON] = [:]
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return .object(object)
                }
                while true {
                    skipSpace()
                    guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw fail() }
                    let key = try string()
                    skipSpace()
                    guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail() }
                    position += 1
                    let keyOffset = position
                    let element = try value(depth: depth + 1)
                    if object.updateValue(element, forKey: key) != nil, rejectDuplicateKeys {
                        throw SyntaxError(offset: keyOffset)
                    }
                    skipSpace()
                    guard position < bytes.count else { throw fail() }
                    if bytes[position] == UInt8(ascii: ",") {
                        position += 1
                        continue
                    }
                    guard bytes[position] == UInt8(ascii: "}") else { throw fail() }
                    position += 1
                    return .object(object)
                }
            case UInt8(ascii: "["):
                position += 1
                var array: [JSON] = []
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(array)
                }
                while true {
                    array.append(try value(depth: depth + 1))
                    skipSpace()
                    guard position < bytes.count else { throw fail() }
                    if bytes[position] == UInt8(ascii: ",") {
                        position += 1
                        continue
                    }
                    guard bytes[position] == UInt8(ascii: "]") else { throw fail() }
                    position += 1
                    return .array(array)
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                try expect("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expect("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try expect("null")
                return .null
            default:
                return .number(try number())
            }
        }

        mutating func number() throws -> Number {
            let start = position
            func digits() -> Int {
                let from = position
                while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 { position += 1 }
                return position - from
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
            let integer = position
            guard digits() > 0 else { throw fail() }
            if bytes[integer] == 0x30, position - integer > 1 { throw SyntaxError(offset: integer) }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                guard digits() > 0 else { throw fail() }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                guard digits() > 0 else { throw fail() }
            }
            let literal = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            guard let number = Double(literal) else { throw SyntaxError(offset: start) }
            return Number(double: number, literal: literal)
        }

        /// A string starting at the opening quote.
        mutating func string() throws -> String {
            position += 1
            let start = position
            // Fast path: no escapes.
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    defer { position += 1 }
                    return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                }
                if byte == UInt8(ascii: "\\") || byte < 0x20 { break }
                position += 1
            }
            var out = Array(bytes[start..<position])
            while position < bytes.count {
                let byte = bytes[position]
                position += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard position < bytes.count else { throw fail() }
                    let escape = bytes[position]
                    position += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            try expect("\\u")
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw fail() }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00..<0xE000).contains(scalar) {
                            throw fail()
                        }
                        out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
                    default:
                        throw fail()
                    }
                default:
                    guard byte >= 0x20 else { throw fail() }
                    out.append(byte)
                }
            }
            throw fail()
        }

        mutating func hex4() throws -> UInt32 {
            guard position + 4 <= bytes.count else { throw fail() }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt8
                switch byte {
                case 0x30...0x39: digit = byte - 0x30
                case 0x41...0x46: digit = byte - 0x41 + 10
                case 0x61...0x66: digit = byte - 0x61 + 10
                default: throw fail()
                }
                value = value << 4 | UInt32(digit)
                position += 1
            }
            return value
        }
    }
}
