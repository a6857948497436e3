import FoundationEssentials

/// The state of one proto3 JSON encoding: options, and the path of the field being written (for errors). Generated
/// code calls its `field` and `member` methods, one per field, chosen by the field's Swift type.
public struct _ProtoJSONEncoder {
    let options: ProtoJSONEncodingOptions
    private var path: [_ProtoJSONPathComponent] = []

    init(options: ProtoJSONEncodingOptions) { self.options = options }

    /// An encoder for a value at `path` (a direct writer's well-known type, so that errors name the field).
    init(options: ProtoJSONEncodingOptions, path: [_ProtoJSONPathComponent]) {
        self.options = options
        self.path = path
    }

    func error(_ reason: String) -> ProtoJSONError {
        ProtoJSONError(path: _ProtoJSONPathComponent.render(path), reason: reason, direction: .encoding)
    }

    private mutating func at<R>(_ component: _ProtoJSONPathComponent, _ body: (inout Self) throws -> R) rethrows -> R {
        path.append(component)
        defer { path.removeLast() }
        return try body(&self)
    }

    // MARK: Singular fields (left out at their default)

    mutating func field<T: _ProtoJSONScalar>(_ object: inout [String: JSON], _ name: String, _ value: T) {
        if !value._isProtoJSONDefault { object[name] = value._protoJSON(&self) }
    }

    mutating func field(_ object: inout [String: JSON], _ name: String, _ value: [UInt8]) {
        if !value.isEmpty { object[name] = .string(_base64Encode(value)) }
    }

    mutating func field<M: ProtoJSONMessage>(_ object: inout [String: JSON], _ name: String, _ value: M?) throws {
        guard let value else { return }
        object[name] = try at(.field(name)) { try value._encodeProtoJSON(&$0) }
    }

    /// A wrapper-typed field (`google.protobuf.Int32Value` and the like), held as an optional plain value.
    mutating func field<T: _ProtoJSONScalar>(_ object: inout [String: JSON], _ name: String, _ value: T?) {
        guard let value else { return }
        object[name] = value._protoJSON(&self)
    }

    /// A `google.protobuf.BytesValue` field.
    mutating func field(_ object: inout [String: JSON], _ name: String, _ value: [UInt8]?) {
        guard let value else { return }
        object[name] = .string(_base64Encode(value))
    }

    /// A `google.protobuf.Timestamp` field, held as a date.
    mutating func field(_ object: inout [String: JSON], _ name: String, _ value: Date?) throws {
        guard let value else { return }
        object[name] = try at(.field(name)) { try Google_Protobuf_Timestamp(date: value)._encodeProtoJSON(&$0) }
    }

    /// A `google.protobuf.Duration` field, held as a Swift duration.
    mutating func field(_ object: inout [String: JSON], _ name: String, _ value: Swift.Duration?) throws {
        guard let value else { return }
        object[name] = try at(.field(name)) { try _ProtoJSONDuration.encode(value, &$0) }
    }

    // MARK: Oneof members (written whenever set, even at a default value)

    mutating func member<T: _ProtoJSONScalar>(_ object: inout [String: JSON], _ name: String, _ value: T) {
        object[name] = value._protoJSON(&self)
    }

    mutating func member(_ object: inout [String: JSON], _ name: String, _ value: [UInt8]) {
        object[name] = .string(_base64Encode(value))
    }

    mutating func member<M: ProtoJSONMessage>(_ object: inout [String: JSON], _ name: String, _ value: M) throws {
        object[name] = try at(.field(name)) { try value._encodeProtoJSON(&$0) }
    }

    // MARK: Repeated fields (left out when empty)

    mutating func field<T: _ProtoJSONScalar>(_ object: inout [String: JSON], _ name: String, _ values: [T]) {
        if !values.isEmpty { object[name] = .array(values.map { $0._protoJSON(&self) }) }
    }

    mutating func field(_ object: inout [String: JSON], _ name: String, _ values: [[UInt8]]) {
        if !values.isEmpty { object[name] = .array(values.map { .string(_base64Encode($0)) }) }
    }

    mutating func field<M: ProtoJSONMessage>(_ object: inout [String: JSON], _ name: String, _ values: [M]) throws {
        guard !values.isEmpty else { return }
        var array: [JSON] = []
        array.reserveCapacity(values.count)
        try at(.field(name)) { encoder in
            for (i, value) in values.enumerated() {
                array.append(try encoder.at(.index(i)) { try value._encodeProtoJSON(&$0) })
            }
        }
        object[name] = .array(array)
    }

    // MARK: Map fields (left out when empty; keys are strings)

    mutating func field<K: _ProtoJSONMapKey, V: _ProtoJSONScalar>(_ object: inout [String: JSON], _ name: String, _ map: [K: V]) {
        guard !map.isEmpty else { return }
        var out: [String: JSON] = [:]
        for (key, value) in map { out[key._protoJSONKey] = value._protoJSON(&self) }
        object[name] = .object(out)
    }

    mutating func field<K: _ProtoJSONMapKey>(_ object: inout [String: JSON], _ name: String, _ map: [K: [UInt8]]) {
        guard !map.isEmpty else { return }
        object[name] = .object(Dictionary(uniqueKeysWithValues: map.map { ($0._protoJSONKey, JSON.string(_base64Encode($1))) }))
    }

    mutating func field<K: _ProtoJSONMapKey, M: ProtoJSONMessage>(_ object: inout [String: JSON], _ name: String, _ map: [K: M]) throws {
        guard !map.isEmpty else { return }
        var out: [String: JSON] = [:]
        try at(.field(name)) { encoder in
            for (key, value) in map {
                let text = key._protoJSONKey
                out[text] = try encoder.at(.key(text)) { try value._encodeProtoJSON(&$0) }
            }
        }
        object[name] = .object(out)
    }

    // MARK: Well-known types

    /// A message nested in a well-known type (Struct's values, ListValue's elements, Any's payload).
    mutating func nested<M: ProtoJSONMessage>(_ component: _ProtoJSONPathComponent, _ value: M) throws -> JSON {
        try at(component) { try value._encodeProtoJSON(&$0) }
    }

    /// A wrapper message's JSON: its value alone.
    mutating func wrapped<T: _ProtoJSONScalar>(_ value: T) -> JSON { value._protoJSON(&self) }

    /// A `google.protobuf.BytesValue` message's JSON.
    mutating func wrapped(_ value: [UInt8]) -> JSON { .string(_base64Encode(value)) }
}
