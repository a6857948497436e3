/// Reads the JSON text PostgreSQL returns for the contact's jsonb columns.
///
/// Every contact read decodes four jsonb columns; Foundation's `JSONDecoder` was 6% of GetContact's CPU, so the
/// store parses them here instead. It accepts any valid JSON (RFC 8259) and rejects what is not.
enum JSONText {
    struct SyntaxError: Error, CustomStringConvertible {
        var offset: Int
        var description: String { "invalid JSON from the database at byte \(offset)" }
    }

    /// Parses one JSON value.
    static func parse(_ text: String) throws -> JSONValue {
        var text = text
        return try text.withUTF8 { bytes in
            var parser = Parser(bytes: bytes)
            let value = try parser.value(depth: 0)
            parser.skipSpace()
            guard parser.position == bytes.count else { throw SyntaxError(offset: parser.position) }
            return value
        }
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
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

        mutating func value(depth: Int) throws -> JSONValue {
            guard depth < 512 else { throw fail() }
            skipSpace()
            guard position < bytes.count else { throw fail() }
            switch bytes[position] {
            case UInt8(ascii: "{"):
                position += 1
                var object: [String: JSONValue] = [:]
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
                    object[key] = try value(depth: depth + 1)
                    skipSpace()
                    guard position < bytes.count else { throw fail() }
                    if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                    guard bytes[position] == UInt8(ascii: "}") else { throw fail() }
                    position += 1
                    return .object(object)
                }
            case UInt8(ascii: "["):
                position += 1
                var array: [JSONValue] = []
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(array)
                }
                while true {
                    array.append(try value(depth: depth + 1))
                    skipSpace()
                    guard position < bytes.count else { throw fail() }
                    if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
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

        mutating func number() throws -> Double {
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
            guard let number = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)) else {
                throw SyntaxError(offset: start)
            }
            return number
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

extension JSONValue {
    fileprivate subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    fileprivate var stringValue: String {
        if case .string(let s) = self { return s }
        return ""
    }

    fileprivate var boolValue: Bool {
        if case .bool(let b) = self { return b }
        return false
    }

    fileprivate var elements: [JSONValue] {
        if case .array(let a) = self { return a }
        return []
    }
}

/// The jsonb columns' shapes (written by the store's `JSONEncoder`, keyed by property name).
extension JSONText {
    static func emails(_ text: String) throws -> [EmailAddress] {
        if text == "[]" { return [] }
        return try parse(text).elements.map {
            EmailAddress(address: $0["address"]?.stringValue ?? "", label: $0["label"]?.stringValue ?? "",
                         primary: $0["primary"]?.boolValue ?? false)
        }
    }

    static func phones(_ text: String) throws -> [PhoneNumber] {
        if text == "[]" { return [] }
        return try parse(text).elements.map {
            PhoneNumber(number: $0["number"]?.stringValue ?? "", label: $0["label"]?.stringValue ?? "",
                        primary: $0["primary"]?.boolValue ?? false, e164: $0["e164"]?.stringValue ?? "")
        }
    }

    static func addresses(_ text: String) throws -> [PostalAddress] {
        if text == "[]" { return [] }
        return try parse(text).elements.map { element in
            var address = PostalAddress()
            address.label = element["label"]?.stringValue ?? ""
            address.lines = element["lines"]?.elements.map(\.stringValue) ?? []
            address.locality = element["locality"]?.stringValue ?? ""
            address.administrativeArea = element["administrativeArea"]?.stringValue ?? ""
            address.postalCode = element["postalCode"]?.stringValue ?? ""
            address.regionCode = element["regionCode"]?.stringValue ?? ""
            return address
        }
    }

    static func object(_ text: String) throws -> [String: JSONValue] {
        if text == "{}" { return [:] }
        guard case .object(let object) = try parse(text) else { throw SyntaxError(offset: 0) }
        return object
    }
}
