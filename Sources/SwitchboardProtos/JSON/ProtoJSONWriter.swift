import FoundationEssentials

/// Writes a message's proto3 JSON text directly, as UTF-8 bytes: generated code calls its `field` and `member`
/// methods, one per field, in the order of the fields' JSON names (the order ``JSON/write(to:)`` sorts an object's keys
/// into), so the text is the same as the JSON value's and no dictionary of values is built and sorted for every
/// object. A change event's payload (the contact's JSON, once per imported row) spent a fifth to a quarter of an
/// import's service CPU (two profiles) building those dictionaries and appending to a `String` piece by piece.
///
/// A message holding several values JSON cannot carry is refused either way, but the two may name different ones: the
/// writer meets fields in the order of their JSON names, the JSON value in declaration order.
/// Strings, integers, booleans, enums and timestamps are written as bytes; the other well-known types (Struct, Any,
/// Duration…) and floating-point numbers through their JSON values (``ProtoJSONMessage``'s default
/// `_writeProtoJSON`, ``_ProtoJSONScalar``'s default `_writeProtoJSON`).
public struct _ProtoJSONWriter {
    /// The UTF-8 text written so far.
    var out: [UInt8]
    /// Output options.
    let options: ProtoJSONEncodingOptions
    /// The JSON path of the field being written (for errors).
    private(set) var path: [_ProtoJSONPathComponent] = []
    /// What scalars convert themselves with (they read only the options).
    private var scalars: _ProtoJSONEncoder
    /// Whether the object or array being written has no element yet (no comma before the next).
    private var first = true

    init(options: ProtoJSONEncodingOptions) {
        self.options = options
        self.scalars = _ProtoJSONEncoder(options: options)
        self.out = []
        self.out.reserveCapacity(512)
    }

    /// The text written.
    var text: String { String(decoding: out, as: UTF8.self) }

    /// An encoder at the writer's path, for a value written through its JSON value.
    func encoder() -> _ProtoJSONEncoder { _ProtoJSONEncoder(options: options, path: path) }

    /// Writes a JSON value whole (a well-known type's form).
    mutating func write(_ json: JSON) {
        var text = ""
        json.write(to: &text)
        out.append(contentsOf: text.utf8)
        first = false
    }

    /// Appends ASCII text.
    mutating func ascii(_ text: StaticString) {
        text.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    /// Appends `value` in decimal, at least `width` digits (zeros in front).
    mutating func digits<T: BinaryInteger>(_ value: T, width: Int = 1) {
        var magnitude = value.magnitude
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: the most a 64-bit magnitude has is 20 digits
        withUnsafeMutableBytes(of: &buffer) { bytes in
            var i = bytes.count
            repeat {
                i -= 1
                bytes[i] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0 || bytes.count - i < width
            out.append(contentsOf: bytes[i...])
        }
    }

    /// Appends `value` in decimal as a JSON string (a 64-bit integer's form).
    mutating func quotedDigits<T: BinaryInteger>(_ value: T) {
        out.append(UInt8(ascii: "\""))
        digits(value)
        out.append(UInt8(ascii: "\""))
    }

    /// Appends `s` as a JSON string, escaped as ``JSON/quote(_:into:)`` escapes it.
    mutating func quote(_ s: String) {
        var s = s
        s.withUTF8 { quote($0) }
    }

    /// Appends UTF-8 text as a JSON string: quotes, backslashes and control characters escaped, the rest verbatim.
    mutating func quote(_ utf8: UnsafeBufferPointer<UInt8>) {
        out.append(UInt8(ascii: "\""))
        var start = 0
        for (i, byte) in utf8.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i]))
            start = i + 1
            switch byte {
            case UInt8(ascii: "\""): ascii("\\\"")
            case UInt8(ascii: "\\"): ascii("\\\\")
            case 0x0A: ascii("\\n")
            case 0x0D: ascii("\\r")
            case 0x09: ascii("\\t")
            default:
                ascii("\\u00")
                out.append(Self.hex[Int(byte >> 4)])
                out.append(Self.hex[Int(byte & 0xF)])
            }
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        out.append(UInt8(ascii: "\""))
    }

    private static let hex = Array("0123456789abcdef".utf8)

    // MARK: Structure

    /// Starts a message's object.
    mutating func open() {
        out.append(UInt8(ascii: "{"))
        first = true
    }

    /// Ends a message's object.
    mutating func close() {
        out.append(UInt8(ascii: "}"))
        first = false
    }

    private mutating func key(_ name: String) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        quote(name)
        out.append(UInt8(ascii: ":"))
    }

    private mutating func element() {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
    }

    private mutating func scalar<T: _ProtoJSONScalar>(_ value: T) {
        value._writeProtoJSON(&self)
    }

    /// A scalar without a text form of its own: through its JSON value.
    mutating func scalarValue<T: _ProtoJSONScalar>(_ value: T) {
        write(value._protoJSON(&scalars))
    }

    private mutating func at<R>(_ component: _ProtoJSONPathComponent, _ body: (inout Self) throws -> R) rethrows -> R {
        path.append(component)
        defer { path.removeLast() }
        return try body(&self)
    }

    private mutating func message<M: ProtoJSONMessage>(_ value: M) throws {
        try value._writeProtoJSON(&self)
        first = false
    }

    // MARK: Singular fields (left out at their default)

    mutating func field<T: _ProtoJSONScalar>(_ name: String, _ value: T) {
        guard !value._isProtoJSONDefault else { return }
        key(name)
        scalar(value)
    }

    mutating func field(_ name: String, _ value: [UInt8]) {
        guard !value.isEmpty else { return }
        key(name)
        quote(_base64Encode(value))
    }

    mutating func field<M: ProtoJSONMessage>(_ name: String, _ value: M?) throws {
        guard let value else { return }
        key(name)
        try at(.field(name)) { try $0.message(value) }
    }

    /// A wrapper-typed field (`google.protobuf.Int32Value` and the like), held as an optional plain value.
    mutating func field<T: _ProtoJSONScalar>(_ name: String, _ value: T?) {
        guard let value else { return }
        key(name)
        scalar(value)
    }

    /// A `google.protobuf.BytesValue` field.
    mutating func field(_ name: String, _ value: [UInt8]?) {
        guard let value else { return }
        key(name)
        quote(_base64Encode(value))
    }

    /// A `google.protobuf.Timestamp` field, held as a date.
    mutating func field(_ name: String, _ value: Date?) throws {
        guard let value else { return }
        key(name)
        try at(.field(name)) { try $0.message(Google_Protobuf_Timestamp(date: value)) }
    }

    /// A `google.protobuf.Duration` field, held as a Swift duration.
    mutating func field(_ name: String, _ value: Swift.Duration?) throws {
        guard let value else { return }
        key(name)
        try at(.field(name)) { writer in
            var encoder = writer.encoder()
            writer.write(try _ProtoJSONDuration.encode(value, &encoder))
        }
    }

    // MARK: Oneof members (written whenever set, even at a default value)

    mutating func member<T: _ProtoJSONScalar>(_ name: String, _ value: T) {
        key(name)
        scalar(value)
    }

    mutating func member(_ name: String, _ value: [UInt8]) {
        key(name)
        quote(_base64Encode(value))
    }

    mutating func member<M: ProtoJSONMessage>(_ name: String, _ value: M) throws {
        key(name)
        try at(.field(name)) { try $0.message(value) }
    }

    // MARK: Repeated fields (left out when empty)

    mutating func field<T: _ProtoJSONScalar>(_ name: String, _ values: [T]) {
        guard !values.isEmpty else { return }
        key(name)
        out.append(UInt8(ascii: "["))
        first = true
        for value in values {
            element()
            scalar(value)
        }
        out.append(UInt8(ascii: "]"))
        first = false
    }

    mutating func field(_ name: String, _ values: [[UInt8]]) {
        guard !values.isEmpty else { return }
        key(name)
        out.append(UInt8(ascii: "["))
        first = true
        for value in values {
            element()
            quote(_base64Encode(value))
        }
        out.append(UInt8(ascii: "]"))
        first = false
    }

    mutating func field<M: ProtoJSONMessage>(_ name: String, _ values: [M]) throws {
        guard !values.isEmpty else { return }
        key(name)
        out.append(UInt8(ascii: "["))
        first = true
        try at(.field(name)) { writer in
            for (i, value) in values.enumerated() {
                writer.element()
                try writer.at(.index(i)) { try $0.message(value) }
            }
        }
        out.append(UInt8(ascii: "]"))
        first = false
    }

    // MARK: Map fields (left out when empty; keys are strings, written in order as an object's keys are)

    mutating func field<K: _ProtoJSONMapKey, V: _ProtoJSONScalar>(_ name: String, _ map: [K: V]) {
        guard !map.isEmpty else { return }
        key(name)
        open()
        for (text, value) in map.map({ ($0._protoJSONKey, $1) }).sorted(by: { $0.0 < $1.0 }) {
            key(text)
            scalar(value)
        }
        close()
    }

    mutating func field<K: _ProtoJSONMapKey>(_ name: String, _ map: [K: [UInt8]]) {
        guard !map.isEmpty else { return }
        key(name)
        open()
        for (text, value) in map.map({ ($0._protoJSONKey, $1) }).sorted(by: { $0.0 < $1.0 }) {
            key(text)
            quote(_base64Encode(value))
        }
        close()
    }

    mutating func field<K: _ProtoJSONMapKey, M: ProtoJSONMessage>(_ name: String, _ map: [K: M]) throws {
        guard !map.isEmpty else { return }
        key(name)
        open()
        try at(.field(name)) { writer in
            for (text, value) in map.map({ ($0._protoJSONKey, $1) }).sorted(by: { $0.0 < $1.0 }) {
                writer.key(text)
                try writer.at(.key(text)) { try $0.message(value) }
            }
        }
        close()
    }
}

extension ProtoJSONMessage {
    /// The well-known types' JSON, written through their JSON value; generated messages write their fields directly.
    public func _writeProtoJSON(_ writer: inout _ProtoJSONWriter) throws {
        var encoder = writer.encoder()
        writer.write(try _encodeProtoJSON(&encoder))
    }
}
