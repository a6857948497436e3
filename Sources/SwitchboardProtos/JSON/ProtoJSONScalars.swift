// How each singular proto3 value maps to JSON, following Python's json_format (the reference the golden tests hold
// us to): 64-bit integers as strings, floats as numbers or "NaN"/"Infinity"/"-Infinity", enums by name.
//
// On input Python is lenient in ways worth copying (integers as strings, integral numbers in exponent form, enum
// numbers) and in a few that are accidents (enum 1.5 read as 1, garbage dropped from base64); those we refuse.
import FoundationEssentials
import Glibc
import SwitchboardRPC

/// A singular value of a proto3 scalar or enum type, as generated fields hold it.
protocol _ProtoJSONScalar: Sendable, Equatable {
    /// Whether proto3 leaves the value out (the type's zero; a negative zero float is not, as on the wire).
    var _isProtoJSONDefault: Bool { get }
    /// The JSON form.
    func _protoJSON(_ encoder: inout _ProtoJSONEncoder) -> JSON
    /// Appends the JSON form's text (the default writes the JSON value).
    func _writeProtoJSON(_ writer: inout _ProtoJSONWriter)
    /// Reads the JSON form; nil means "skip this value" (an unknown enum name while ignoring unknown fields).
    static func _fromProtoJSON(_ json: JSON, _ decoder: inout _ProtoJSONDecoder) throws -> Self?
}

/// A map key type: proto3 JSON writes every map key as a string.
protocol _ProtoJSONMapKey: Hashable, Sendable {
    var _protoJSONKey: String { get }
    static func _fromProtoJSONKey(_ key: String, _ decoder: inout _ProtoJSONDecoder) throws -> Self
}

/// A generated enum: its value names, for JSON.
protocol _ProtoJSONEnum: ProtoEnum, _ProtoJSONScalar {
    /// Every value name with its number, aliases included, in declaration order.
    static var _protoJSONNames: [(name: String, number: Int32)] { get }
}

extension _ProtoJSONScalar {
    func _writeProtoJSON(_ writer: inout _ProtoJSONWriter) { writer.scalarValue(self) }
}

extension _ProtoJSONEnum {
    var _isProtoJSONDefault: Bool { protoValue == 0 }

    func _writeProtoJSON(_ writer: inout _ProtoJSONWriter) {
        if Self.self == Google_Protobuf_NullValue.self { return writer.ascii("null") }
        let number = protoValue
        if !writer.options.enumsAsIntegers, let name = Self._protoJSONNames.first(where: { $0.number == number })?.name {
            return writer.quote(name)
        }
        writer.digits(number)
    }

    func _protoJSON(_ encoder: inout _ProtoJSONEncoder) -> JSON {
        // google.protobuf.NullValue is JSON null itself.
        if Self.self == Google_Protobuf_NullValue.self { return .null }
        let number = protoValue
        if !encoder.options.enumsAsIntegers, let name = Self._protoJSONNames.first(where: { $0.number == number })?.name {
            return .string(name)
        }
        return .number(Double(number))
    }

    static func _fromProtoJSON(_ json: JSON, _ decoder: inout _ProtoJSONDecoder) throws -> Self? {
        switch json {
        case .null where Self.self == Google_Protobuf_NullValue.self:
            return Self(protoValue: 0)
        case .string(let name):
            if let entry = _protoJSONNames.first(where: { $0.name == name }) { return Self(protoValue: entry.number) }
            // Python reads a numeric string as the enum's number, known or not (proto3 enums are open).
            if let number = Int32(name) { return Self(protoValue: number) }
            if decoder.options.ignoreUnknownFields { return nil }
            throw decoder.error("unknown enum value \(_quoted(name))")
        case .number:
            return Self(protoValue: try _protoJSONInteger(json, Int32.self, &decoder))
        default:
            throw decoder.error("expected an enum name or number")
        }
    }
}

// MARK: - Integers

/// Reads an integer the way Python does: a JSON number or a string, exactly when written as an integer, and
/// otherwise through a double that must be integral; range-checked for the field's type.
func _protoJSONInteger<T: FixedWidthInteger>(_ json: JSON, _ type: T.Type, _ decoder: inout _ProtoJSONDecoder) throws -> T {
    switch json {
    case .number(let n):
        if let literal = n.integerLiteral { return try _integer(fromDigits: literal, T.self, &decoder) }
        return try _integer(fromDouble: n.double, T.self, &decoder)
    case .string(let s):
        guard !s.isEmpty, !s.contains(" ") else { throw decoder.error("invalid integer \(_quoted(s))") }
        if _isIntegerSyntax(s) { return try _integer(fromDigits: s, T.self, &decoder) }
        guard _isDecimalSyntax(s), let double = Double(s) else { throw decoder.error("invalid integer \(_quoted(s))") }
        return try _integer(fromDouble: double, T.self, &decoder)
    default:
        throw decoder.error("expected an integer (a number or a string)")
    }
}

/// An integer type as the proto names it (`int32`, `uint64`), for error messages a client reads.
private func _protoIntegerName<T: FixedWidthInteger>(_: T.Type) -> String {
    "\(T.isSigned ? "" : "u")int\(T.bitWidth) (\(T.min)…\(T.max))"
}

private func _integer<T: FixedWidthInteger>(fromDigits text: String, _ type: T.Type, _ decoder: inout _ProtoJSONDecoder) throws -> T {
    if let value = T(text) { return value }
    // "-0" is zero, also for unsigned types.
    if text.hasPrefix("-"), text.dropFirst().allSatisfy({ $0 == "0" }) { return 0 }
    throw decoder.error("integer \(text) out of range for \(_protoIntegerName(T.self))")
}

private func _integer<T: FixedWidthInteger>(fromDouble double: Double, _ type: T.Type, _ decoder: inout _ProtoJSONDecoder) throws -> T {
    guard double.isFinite, double == double.rounded(.towardZero) else {
        throw decoder.error("\(JSON.format(double)) is not an integer")
    }
    // `T(exactly:)` never traps; a plain conversion would for an out-of-range double.
    guard let value = T(exactly: double) else {
        throw decoder.error("integer \(JSON.format(double)) out of range for \(_protoIntegerName(T.self))")
    }
    return value
}

private func _typeName<T>(_ type: T.Type) -> String {
    switch type {
    case is Int32.Type: "int32"
    case is Int64.Type: "int64"
    case is UInt32.Type: "uint32"
    case is UInt64.Type: "uint64"
    default: "\(type)"
    }
}

/// `[+-]?[0-9]+`.
func _isIntegerSyntax(_ s: String) -> Bool {
    var utf8 = Substring(s).utf8[...]
    if let first = utf8.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") { utf8 = utf8.dropFirst() }
    return !utf8.isEmpty && utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
}

/// A decimal number as Python's `float()` reads it: `[+-]?(digits[.digits]|.digits)([eE][+-]?digits)?`.
func _isDecimalSyntax(_ s: String) -> Bool {
    let bytes = Array(s.utf8)
    var i = 0
    func digits() -> Int {
        let start = i
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        return i - start
    }
    if i < bytes.count, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") { i += 1 }
    var mantissa = digits()
    if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
        i += 1
        mantissa += digits()
    }
    guard mantissa > 0 else { return false }
    if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
        i += 1
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") { i += 1 }
        guard digits() > 0 else { return false }
    }
    return i == bytes.count
}

func _quoted(_ s: String) -> String {
    var out = ""
    JSON.quote(s.count > 64 ? String(s.prefix(64)) + "…" : s, into: &out)
    return out
}

extension Int32: _ProtoJSONScalar, _ProtoJSONMapKey {
    var _isProtoJSONDefault: Bool { self == 0 }
    func _protoJSON(_ encoder: inout _ProtoJSONEncoder) -> JSON { .number(Double(self)) }
    func _writeProtoJSON(_ writer: inout _ProtoJSONWriter) { writer.digits(self) }
    static func _fromProtoJSON(_ json: JSON, _ decoder: inout _ProtoJSONDecoder) throws -> Int32? {
        try _protoJSONInteger(json, Int32.self, &decoder)
    }
    var _protoJSONKey: String { String(self) }
    static func _fromProtoJSONKey(_ key: String, _ decoder: inout _ProtoJSONDecoder) throws -> Int32 {
        try _protoJSONInteger(.string(key), Int32.self, &decoder)
    }
}

extension UInt32: _ProtoJSONScalar, _ProtoJSONMapKey {
    var _isProtoJSONDefault: Bool { self == 0 }
    func _protoJSON(_ encoder: inout _ProtoJSONEncoder) -> JSON { .number(Double(self)) }
    func _writeProtoJSON(_ writer: inout _ProtoJSONWriter) { writer.digits(self) }
    static func _fromProtoJSON(_ json: JSON, _ decoder: inout _ProtoJSONDecoder) throws -> UInt32? {
        try _protoJSONInteger(json, UInt32.self, &decoder)
    }
    var _protoJSONKey: String { String(self) }
    static func _fromProtoJSONKey(_ key: String, _ decoder: inout _ProtoJSONDecoder) throws -> UInt32 {
        try _protoJSONInteger(.string(key), UInt32.self, &decoder)
    }
}

extension Int64: _ProtoJSONScalar, _ProtoJSONMapKey {
    var _isProtoJSONDefault: Bool { self == 0 }
    // A string: JavaScript readers hold numbers as doubles, exact only to 2^53.
    func _protoJSON(_ encoder: inout _ProtoJSONEncoder) -> JSON { .string(String(self)) }
    func _writeProtoJSON(_ writer: inout _ProtoJSONWriter) { writer.quotedDigits(self) }
    static func _fromProtoJSON(_ json: JSON, _ decoder: inout _ProtoJSONDecoder) throws -> Int64? {
        try _protoJSONInteger(json, Int64.self, &decoder)
    }
    var _protoJSONKey: String { String(self) }
    static func _fromProtoJSONKey(_ key: String, _ decoder: inout _ProtoJSONDecoder) throws -> Int64 {
        try _protoJSONInteger(.string(key), Int64.self, &decoder)
    }
}

extension UInt64: _ProtoJSONScalar, _ProtoJSONMapKey {
    var _isProtoJSONDefault: Bool { self == 0 }
    func _protoJSON(_ encoder: inout _ProtoJSONEncoder) -> JSON { .string(String(self)) }
    func _writeProtoJSON(_ writer: inout _ProtoJSONWriter) { writer.quotedDigits(self) }
    static func _fromProtoJSON(_ json: JSON, _ decoder: inout _ProtoJSONDecoder) throws -> UInt64? {
        try _protoJSONInteger(json, UInt64.self, &decoder)
    }
    var _protoJSONKey: String { String(self) }
    static func _fromProtoJSONKey(_ key: String, _ decoder: inout _ProtoJSONDecoder) throws -> UInt64 {
        try _protoJSONInteger(.string(key), UInt64.self, &decoder)
    }
}

// MARK: - Floating point

/// Reads a double as Python does: a finite JSON number, or a string: decimal text, "NaN", "Infinity", "-Infinity"
/// (and, as Python's `float()`, "inf" and "infinity" in any case; lowercase "nan" is refused).
func _protoJSONDouble(_ json: JSON, _ decoder: inout _ProtoJSONDecoder) throws -> Double {
    switch json {
    case .number(let n):
        guard n.double.isFinite else { throw decoder.error("number too large for a double; use \"Infinity\"") }
        return n.double
    case .string(let s):
        switch s {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        case "nan": throw decoder.error("invalid number \"nan\"; use \"NaN\"")
        default: break
        }
        if _isDecimalSyntax(s), let value = Double(s) { return value }
        var body = Substring(s)
        var negative = false
        if let sign = body.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            body = body.dropFirst()
        }
        switch body.lowercased() {
        case "inf", "infinity": return negative ? -.infinity : .infinity
        case "nan": return .nan
        default: throw decoder.error("invalid number \(_quoted(s))")
        }
    default:
        throw decoder.error("expected a number")
    }
}

func _protoJSONFloatingValue(_ value: Double, shortest: String) -> JSON {
    if value.isNaN { return .string("NaN") }
    if value.isInfinite { return .string(value < 0 ? "-Infinity" : "Infinity") }
    return .number(JSON.Number(double: value, literal: shortest))
}

extension Double: _ProtoJSONScalar {
    var _isProtoJSONDefault: Bool { bitPattern == 0 }
    func _protoJSON(_ encoder: inout _ProtoJSONEncoder) -> JSON {
        _protoJSONFloatingValue(self, shortest: JSON.format(self))
    }
    static func _fromProtoJSON(_ json: JSON, _ decoder: inout _ProtoJSONDecoder) throws -> Double? {
        try _protoJSONDouble(json, &decoder)
    }
}

extension Float: _ProtoJSONScalar {
    var _isProtoJSONDefault: Bool { bitPattern == 0 }
    func _protoJSON(_ encoder: inout _ProtoJSONEncoder) -> JSON {
        guard isFinite else { return _protoJSONFloatingValue(Double(self), shortest: "") }
        // Python's ToShortestFloat: the double from the fewest significant digits, six or more, that read back as
        // this float (`1.4013e-45`, not the shortest `1e-45`); JSON then carries that double.
        var rounded = Double(self)
        for precision: Int32 in 6...9 {
            var buffer = [CChar](repeating: 0, count: 40)
            let text = buffer.withUnsafeMutableBufferPointer { out in
                _ = withVaList([precision, Double(self)]) { vsnprintf(out.baseAddress, out.count, "%.*g", $0) }
                return String(cString: out.baseAddress!)
            }
            if let candidate = Double(text), Float(candidate) == self {
                rounded = candidate
                break
            }
        }
        return _protoJSONFloatingValue(rounded, shortest: JSON.format(rounded))
    }
    static func _fromProtoJSON(_ json: JSON, _ decoder: inout _ProtoJSONDecoder) throws -> Float? {
        let double = try _protoJSONDouble(json, &decoder)
        if case .number = json, abs(double) > Double(Float.greatestFiniteMagnitude) {
            throw decoder.error("number out of range for a float")
        }
        return Float(double)
    }
}

// MARK: - Bool, string, bytes

extension Bool: _ProtoJSONScalar, _ProtoJSONMapKey {
    var _isProtoJSONDefault: Bool { !self }
    func _protoJSON(_ encoder: inout _ProtoJSONEncoder) -> JSON { .bool(self) }
    func _writeProtoJSON(_ writer: inout _ProtoJSONWriter) { self ? writer.ascii("true") : writer.ascii("false") }
    static func _fromProtoJSON(_ json: JSON, _ decoder: inout _ProtoJSONDecoder) throws -> Bool? {
        guard case .bool(let b) = json else { throw decoder.error("expected true or false") }
        return b
    }
    var _protoJSONKey: String { self ? "true" : "false" }
    static func _fromProtoJSONKey(_ key: String, _ decoder: inout _ProtoJSONDecoder) throws -> Bool {
        switch key {
        case "true": return true
        case "false": return false
        default: throw decoder.error("expected \"true\" or \"false\" as a map key")
        }
    }
}

extension String: _ProtoJSONScalar, _ProtoJSONMapKey {
    var _isProtoJSONDefault: Bool { isEmpty }
    func _protoJSON(_ encoder: inout _ProtoJSONEncoder) -> JSON { .string(self) }
    func _writeProtoJSON(_ writer: inout _ProtoJSONWriter) { writer.quote(self) }
    static func _fromProtoJSON(_ json: JSON, _ decoder: inout _ProtoJSONDecoder) throws -> String? {
        guard case .string(let s) = json else { throw decoder.error("expected a string") }
        return s
    }
    var _protoJSONKey: String { self }
    static func _fromProtoJSONKey(_ key: String, _ decoder: inout _ProtoJSONDecoder) throws -> String { key }
}

/// Standard base64 with padding, as Python's `b64encode`.
func _base64Encode(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i < bytes.count {
        let b0 = Int(bytes[i]), b1 = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0
        let b2 = i + 2 < bytes.count ? Int(bytes[i + 2]) : 0
        out.append(alphabet[b0 >> 2])
        out.append(alphabet[(b0 & 3) << 4 | b1 >> 4])
        out.append(i + 1 < bytes.count ? alphabet[(b1 & 15) << 2 | b2 >> 6] : UInt8(ascii: "="))
        out.append(i + 2 < bytes.count ? alphabet[b2 & 63] : UInt8(ascii: "="))
        i += 3
    }
    return String(decoding: out, as: UTF8.self)
}

/// Standard or URL-safe base64, padded or not (what proto3 JSON readers accept). nil for anything else.
func _base64Decode(_ text: String) -> [UInt8]? {
    var sextets: [UInt8] = []
    sextets.reserveCapacity(text.utf8.count)
    var padding = 0
    for byte in text.utf8 {
        if byte == UInt8(ascii: "=") {
            padding += 1
            continue
        }
        guard padding == 0 else { return nil }  // data after padding
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): sextets.append(byte - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): sextets.append(byte - UInt8(ascii: "a") + 26)
        case UInt8(ascii: "0")...UInt8(ascii: "9"): sextets.append(byte - UInt8(ascii: "0") + 52)
        case UInt8(ascii: "+"), UInt8(ascii: "-"): sextets.append(62)
        case UInt8(ascii: "/"), UInt8(ascii: "_"): sextets.append(63)
        default: return nil
        }
    }
    guard sextets.count % 4 != 1, padding <= 2, padding == 0 || (sextets.count + padding) % 4 == 0 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(sextets.count * 3 / 4)
    var i = 0
    while i + 1 < sextets.count {
        let s0 = sextets[i], s1 = sextets[i + 1]
        out.append(s0 << 2 | s1 >> 4)
        if i + 2 < sextets.count {
            let s2 = sextets[i + 2]
            out.append((s1 & 15) << 4 | s2 >> 2)
            if i + 3 < sextets.count { out.append((s2 & 3) << 6 | sextets[i + 3]) }
        }
        i += 4
    }
    return out
}

func _protoJSONBytes(_ json: JSON, _ decoder: inout _ProtoJSONDecoder) throws -> [UInt8] {
    guard case .string(let s) = json else { throw decoder.error("expected a base64 string") }
    guard let bytes = _base64Decode(s) else { throw decoder.error("invalid base64 \(_quoted(s))") }
    return bytes
}
