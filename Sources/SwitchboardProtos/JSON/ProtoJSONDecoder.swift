import FoundationEssentials

/// The state of one proto3 JSON decoding: options, message depth, the path being read (for errors) and, per open
/// message, the fields already given. Generated code calls ``enterMessage`` once, then one `field` or `member` call
/// per object key, chosen by the field's Swift type.
public struct _ProtoJSONDecoder {
    let options: ProtoJSONDecodingOptions
    private var path: [_ProtoJSONPathComponent] = []
    private var depth = 0
    /// Field numbers given so far in each open message, and oneofs as `-1 - index`.
    private var seen: [[Int32]] = []

    init(options: ProtoJSONDecodingOptions) { self.options = options }

    func error(_ reason: String) -> ProtoJSONError {
        ProtoJSONError(path: _ProtoJSONPathComponent.render(path), reason: reason, direction: .decoding)
    }

    private mutating func at<R>(_ component: _ProtoJSONPathComponent, _ body: (inout Self) throws -> R) rethrows -> R {
        path.append(component)
        defer { path.removeLast() }
        return try body(&self)
    }

    // MARK: Messages

    /// Counts a level of message nesting (refusing past ``ProtoJSONDecodingOptions/maxDepth``); pair with
    /// ``exitLevel()``.
    mutating func enterLevel() throws {
        depth += 1
        guard depth <= options.maxDepth else { throw error("messages nest deeper than \(options.maxDepth)") }
    }

    mutating func exitLevel() { depth -= 1 }

    /// Opens a regular message: the value must be an object. Returns its members with keys sorted, so that which
    /// error is reported first does not depend on hashing.
    mutating func enterMessage(_ json: JSON) throws -> [(key: String, value: JSON)] {
        try enterLevel()
        guard case .object(let object) = json else { throw error("expected an object") }
        seen.append([])
        return object.sorted { $0.key < $1.key }
    }

    /// Closes the message ``enterMessage(_:)`` opened.
    mutating func exitMessage() {
        seen.removeLast()
        exitLevel()
    }

    /// A key that names no field: an error unless unknown fields are ignored.
    mutating func unknownField(_ key: String) throws {
        guard options.ignoreUnknownFields else { throw error("no field named \(_quoted(key))") }
    }

    /// Records that a field was given, refusing it a second time (under its other name).
    private mutating func mark(_ number: Int32, _ name: String) throws {
        guard !seen[seen.count - 1].contains(number) else {
            throw at(.field(name)) { $0.error("field given twice (by its JSON name and its proto name)") }
        }
        seen[seen.count - 1].append(number)
    }

    // MARK: Singular fields (null means the default)

    mutating func field<T: _ProtoJSONScalar>(_ number: Int32, _ name: String, _ json: JSON, _ target: inout T) throws {
        try mark(number, name)
        if json == .null, T.self != Google_Protobuf_NullValue.self { return }
        if let value = try at(.field(name), { try T._fromProtoJSON(json, &$0) }) { target = value }
    }

    mutating func field(_ number: Int32, _ name: String, _ json: JSON, _ target: inout [UInt8]) throws {
        try mark(number, name)
        if json == .null { return }
        target = try at(.field(name)) { try _protoJSONBytes(json, &$0) }
    }

    mutating func field<M: ProtoJSONMessage>(_ number: Int32, _ name: String, _ json: JSON, _ target: inout M?) throws {
        try mark(number, name)
        // null clears a message field, except google.protobuf.Value, where it is the null value.
        if json == .null, M.self != Google_Protobuf_Value.self { return }
        target = try at(.field(name)) { try M(_decodingProtoJSON: json, &$0) }
    }

    /// A wrapper-typed field, held as an optional plain value.
    mutating func field<T: _ProtoJSONScalar>(_ number: Int32, _ name: String, _ json: JSON, _ target: inout T?) throws {
        try mark(number, name)
        if json == .null { return }
        target = try at(.field(name)) { decoder in
            try decoder.enterLevel()
            defer { decoder.exitLevel() }
            return try T._fromProtoJSON(json, &decoder)
        }
    }

    /// A `google.protobuf.BytesValue` field.
    mutating func field(_ number: Int32, _ name: String, _ json: JSON, _ target: inout [UInt8]?) throws {
        try mark(number, name)
        if json == .null { return }
        target = try at(.field(name)) { try _protoJSONBytes(json, &$0) }
    }

    /// A `google.protobuf.Timestamp` field, held as a date.
    mutating func field(_ number: Int32, _ name: String, _ json: JSON, _ target: inout Date?) throws {
        try mark(number, name)
        if json == .null { return }
        target = try at(.field(name)) { try Google_Protobuf_Timestamp(_decodingProtoJSON: json, &$0).date }
    }

    /// A `google.protobuf.Duration` field, held as a Swift duration.
    mutating func field(_ number: Int32, _ name: String, _ json: JSON, _ target: inout Swift.Duration?) throws {
        try mark(number, name)
        if json == .null { return }
        target = try at(.field(name)) { try Google_Protobuf_Duration(_decodingProtoJSON: json, &$0).duration }
    }

    // MARK: Oneof members

    /// A oneof member's value, or nil for null (which sets nothing). A second non-null member of the same oneof is
    /// an error.
    private mutating func markMember(_ number: Int32, _ name: String, oneof: Int, _ json: JSON) throws -> Bool {
        try mark(number, name)
        if json == .null { return false }
        let marker = -1 - Int32(oneof)
        guard !seen[seen.count - 1].contains(marker) else {
            throw at(.field(name)) { $0.error("more than one field of the same oneof given") }
        }
        seen[seen.count - 1].append(marker)
        return true
    }

    mutating func member<T: _ProtoJSONScalar>(_ number: Int32, _ name: String, oneof: Int, _ json: JSON) throws -> T? {
        guard try markMember(number, name, oneof: oneof, json) else { return nil }
        return try at(.field(name)) { try T._fromProtoJSON(json, &$0) }
    }

    mutating func member(_ number: Int32, _ name: String, oneof: Int, _ json: JSON) throws -> [UInt8]? {
        guard try markMember(number, name, oneof: oneof, json) else { return nil }
        return try at(.field(name)) { try _protoJSONBytes(json, &$0) }
    }

    mutating func member<M: ProtoJSONMessage>(_ number: Int32, _ name: String, oneof: Int, _ json: JSON) throws -> M? {
        guard try markMember(number, name, oneof: oneof, json) else { return nil }
        return try at(.field(name)) { try M(_decodingProtoJSON: json, &$0) }
    }

    // MARK: Repeated fields

    private mutating func elements(_ name: String, _ json: JSON, _ body: (inout Self, JSON) throws -> Void) throws {
        try at(.field(name)) { decoder in
            guard case .array(let array) = json else { throw decoder.error("expected an array") }
            for (i, element) in array.enumerated() {
                try decoder.at(.index(i)) { try body(&$0, element) }
            }
        }
    }

    mutating func field<T: _ProtoJSONScalar>(_ number: Int32, _ name: String, _ json: JSON, _ target: inout [T]) throws {
        try mark(number, name)
        if json == .null { return }
        var values: [T] = []
        try elements(name, json) { decoder, element in
            guard element != .null else { throw decoder.error("null is not allowed in a repeated field") }
            if let value = try T._fromProtoJSON(element, &decoder) { values.append(value) }
        }
        target = values
    }

    mutating func field(_ number: Int32, _ name: String, _ json: JSON, _ target: inout [[UInt8]]) throws {
        try mark(number, name)
        if json == .null { return }
        var values: [[UInt8]] = []
        try elements(name, json) { decoder, element in
            guard element != .null else { throw decoder.error("null is not allowed in a repeated field") }
            values.append(try _protoJSONBytes(element, &decoder))
        }
        target = values
    }

    mutating func field<M: ProtoJSONMessage>(_ number: Int32, _ name: String, _ json: JSON, _ target: inout [M]) throws {
        try mark(number, name)
        if json == .null { return }
        var values: [M] = []
        try elements(name, json) { decoder, element in
            guard element != .null || M.self == Google_Protobuf_Value.self else {
                throw decoder.error("null is not allowed in a repeated field")
            }
            values.append(try M(_decodingProtoJSON: element, &decoder))
        }
        target = values
    }

    // MARK: Map fields

    private mutating func entries(_ name: String, _ json: JSON, _ body: (inout Self, String, JSON) throws -> Void) throws {
        try at(.field(name)) { decoder in
            guard case .object(let object) = json else { throw decoder.error("expected an object for a map") }
            for (key, value) in object.sorted(by: { $0.key < $1.key }) {
                try decoder.at(.key(key)) { try body(&$0, key, value) }
            }
        }
    }

    mutating func field<K: _ProtoJSONMapKey, V: _ProtoJSONScalar>(_ number: Int32, _ name: String, _ json: JSON, _ target: inout [K: V]) throws {
        try mark(number, name)
        if json == .null { return }
        var map: [K: V] = [:]
        try entries(name, json) { decoder, key, value in
            let k = try K._fromProtoJSONKey(key, &decoder)
            guard value != .null else { throw decoder.error("null is not allowed as a map value") }
            if let v = try V._fromProtoJSON(value, &decoder) { map[k] = v }
        }
        target = map
    }

    mutating func field<K: _ProtoJSONMapKey>(_ number: Int32, _ name: String, _ json: JSON, _ target: inout [K: [UInt8]]) throws {
        try mark(number, name)
        if json == .null { return }
        var map: [K: [UInt8]] = [:]
        try entries(name, json) { decoder, key, value in
            let k = try K._fromProtoJSONKey(key, &decoder)
            guard value != .null else { throw decoder.error("null is not allowed as a map value") }
            map[k] = try _protoJSONBytes(value, &decoder)
        }
        target = map
    }

    mutating func field<K: _ProtoJSONMapKey, M: ProtoJSONMessage>(_ number: Int32, _ name: String, _ json: JSON, _ target: inout [K: M]) throws {
        try mark(number, name)
        if json == .null { return }
        var map: [K: M] = [:]
        try entries(name, json) { decoder, key, value in
            let k = try K._fromProtoJSONKey(key, &decoder)
            guard value != .null || M.self == Google_Protobuf_Value.self else {
                throw decoder.error("null is not allowed as a map value")
            }
            map[k] = try M(_decodingProtoJSON: value, &decoder)
        }
        target = map
    }

    // MARK: Well-known types

    /// A message nested in a well-known type (Struct's values, ListValue's elements, Any's payload).
    mutating func nested<M: ProtoJSONMessage>(_ component: _ProtoJSONPathComponent?, _ json: JSON) throws -> M {
        guard let component else { return try M(_decodingProtoJSON: json, &self) }
        return try at(component) { try M(_decodingProtoJSON: json, &$0) }
    }

    /// A wrapper message's value.
    mutating func wrapped<T: _ProtoJSONScalar>(_ json: JSON) throws -> T {
        try enterLevel()
        defer { exitLevel() }
        // Only an unknown enum name gives nil, and no wrapper holds an enum.
        guard let value = try T._fromProtoJSON(json, &self) else { throw error("invalid value") }
        return value
    }

    /// A `google.protobuf.BytesValue` message's value.
    mutating func wrapped(_ json: JSON) throws -> [UInt8] {
        try enterLevel()
        defer { exitLevel() }
        return try _protoJSONBytes(json, &self)
    }
}
