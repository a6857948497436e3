import FoundationEssentials

/// Writes a message's proto3 JSON text directly: generated code calls its `field` and `member` methods, one per field,
/// in the order of the fields' JSON names (the order ``JSON/write(to:)`` sorts an object's keys into), so the text is
/// the same as the JSON value's and no dictionary of values is built and sorted for every object. A change event's
/// payload (the contact's JSON, once per imported row) spent about a quarter of an import's service CPU building
/// those dictionaries.
///
/// The well-known types with a JSON form of their own (Timestamp, Struct, Any…) are written through their JSON values
/// (``ProtoJSONMessage``'s default `_writeProtoJSON`).
public struct _ProtoJSONWriter {
    /// The text written so far.
    var out: String
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
        self.out = ""
    }

    /// An encoder at the writer's path, for a value written through its JSON value.
    func encoder() -> _ProtoJSONEncoder { _ProtoJSONEncoder(options: options, path: path) }

    /// Writes a JSON value whole (a well-known type's form).
    mutating func write(_ json: JSON) {
        json.write(to: &out)
        first = false
    }

    // MARK: Structure

    /// Starts a message's object.
    mutating func open() {
        out += "{"
        first = true
    }

    /// Ends a message's object.
    mutating func close() {
        out += "}"
        first = false
    }

    private mutating func key(_ name: String) {
        if !first { out += "," }
        first = false
        JSON.quote(name, into: &out)
        out += ":"
    }

    private mutating func element() {
        if !first { out += "," }
        first = false
    }

    private mutating func scalar<T: _ProtoJSONScalar>(_ value: T) {
        value._protoJSON(&scalars).write(to: &out)
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
        JSON.quote(_base64Encode(value), into: &out)
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
        JSON.quote(_base64Encode(value), into: &out)
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
        JSON.quote(_base64Encode(value), into: &out)
    }

    mutating func member<M: ProtoJSONMessage>(_ name: String, _ value: M) throws {
        key(name)
        try at(.field(name)) { try $0.message(value) }
    }

    // MARK: Repeated fields (left out when empty)

    mutating func field<T: _ProtoJSONScalar>(_ name: String, _ values: [T]) {
        guard !values.isEmpty else { return }
        key(name)
        out += "["
        first = true
        for value in values {
            element()
            scalar(value)
        }
        out += "]"
        first = false
    }

    mutating func field(_ name: String, _ values: [[UInt8]]) {
        guard !values.isEmpty else { return }
        key(name)
        out += "["
        first = true
        for value in values {
            element()
            JSON.quote(_base64Encode(value), into: &out)
        }
        out += "]"
        first = false
    }

    mutating func field<M: ProtoJSONMessage>(_ name: String, _ values: [M]) throws {
        guard !values.isEmpty else { return }
        key(name)
        out += "["
        first = true
        try at(.field(name)) { writer in
            for (i, value) in values.enumerated() {
                writer.element()
                try writer.at(.index(i)) { try $0.message(value) }
            }
        }
        out += "]"
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
            JSON.quote(_base64Encode(value), into: &out)
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
