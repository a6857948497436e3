import SwitchboardRPC

/// A generated message with the proto3 JSON mapping (what Python's `json_format` and the other official runtimes
/// read and write): lowerCamel field names on output and either name on input, enums by name, 64-bit integers as
/// strings, bytes as base64, default values left out, and the well-known types in their special forms.
///
/// Every message `protoc-gen-switchboard` generates conforms. Call ``protoJSON(options:)``,
/// ``protoJSONText(options:)``, ``init(protoJSON:options:)`` or ``init(protoJSONText:options:)``; the two underscored
/// requirements are what the generated code implements.
public protocol ProtoJSONMessage: ProtoMessage {
    /// Generated: the message as a JSON value. Call ``protoJSON(options:)`` instead.
    /// - Parameter encoder: the encoder's state (options and the path for errors).
    /// - Returns: the JSON value.
    /// - Throws: ``ProtoJSONError`` for a value JSON cannot express (e.g. a timestamp outside its range).
    func _encodeProtoJSON(_ encoder: inout _ProtoJSONEncoder) throws -> JSON

    /// Generated: appends the message's JSON text, the same as its JSON value's. Call ``protoJSONText(options:)``
    /// instead. The well-known types take the default, which writes their JSON value.
    /// - Parameter writer: the text and the writer's state (options and the path for errors).
    /// - Throws: ``ProtoJSONError``, as `_encodeProtoJSON`.
    func _writeProtoJSON(_ writer: inout _ProtoJSONWriter) throws

    /// Generated: reads the message from a JSON value. Call ``init(protoJSON:options:)`` instead.
    /// - Parameters:
    ///   - json: the JSON value.
    ///   - decoder: the decoder's state (options, depth, path for errors).
    /// - Throws: ``ProtoJSONError``.
    init(_decodingProtoJSON json: JSON, _ decoder: inout _ProtoJSONDecoder) throws
}

/// A generated message with a top-level `string etag` field: a resource's version, which an HTTP front answers as its
/// `ETag` header.
public protocol ProtoETagged {
    /// The `etag` field.
    var etag: String { get }
}

/// How messages are written as proto3 JSON. The defaults are those of Python's `MessageToJson`.
public struct ProtoJSONEncodingOptions: Sendable {
    /// Writes enum values as numbers instead of names.
    public var enumsAsIntegers = false

    /// The default options.
    public init() {}
}

/// How proto3 JSON is read into messages. The defaults are those of Python's `json_format.Parse`.
public struct ProtoJSONDecodingOptions: Sendable {
    /// Skips object keys that name no field, and enum names this version does not know, instead of failing.
    public var ignoreUnknownFields = false
    /// The deepest nesting of messages accepted (`google.protobuf.Value` and `Struct` count a level each, as in
    /// Python); the same bound as the binary decoder's, so a JSON request cannot build a message the binary side
    /// would refuse.
    public var maxDepth = 100

    /// The default options.
    public init() {}
}

/// A value that does not map between proto3 JSON and a message, with the JSON path of the offending field (e.g.
/// `contact.emails[2].address`), so that an API can answer INVALID_ARGUMENT naming the field.
public struct ProtoJSONError: Error, CustomStringConvertible, Sendable, RPCErrorConvertible {
    /// Which way the conversion went.
    public enum Direction: Sendable {
        /// Reading JSON: the input is at fault.
        case decoding
        /// Writing JSON: the message holds a value JSON cannot carry (e.g. a timestamp past year 9999).
        case encoding
    }

    /// The JSON path of the field, lowerCamel names from the top-level message (`""` for the message itself).
    public var path: String
    /// What is wrong, in words.
    public var reason: String
    /// Which way the conversion went.
    public var direction: Direction

    /// Creates the error.
    /// - Parameters:
    ///   - path: the JSON path of the field.
    ///   - reason: what is wrong.
    ///   - direction: decoding or encoding.
    public init(path: String, reason: String, direction: Direction) {
        self.path = path
        self.reason = reason
        self.direction = direction
    }

    /// `path: reason`, or the reason alone for the top-level message.
    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }

    /// INVALID_ARGUMENT naming the field for bad input; INTERNAL when a message could not be written.
    public var rpcError: RPCError {
        switch direction {
        case .decoding: RPCError(code: .invalidArgument, message: "invalid JSON: \(description)")
        case .encoding: RPCError(code: .internal, message: "response not expressible as JSON", cause: self)
        }
    }
}

extension ProtoJSONMessage {
    /// The message as a proto3 JSON value.
    /// - Parameter options: output options.
    /// - Returns: the JSON value (an object, or a string/number/array for the well-known types that map so).
    /// - Throws: ``ProtoJSONError`` (direction `.encoding`) for a value JSON cannot express: a Timestamp or
    ///   Duration out of range, a NaN or infinite `google.protobuf.Value` number, a FieldMask path with no camel-case
    ///   form, an `Any` of a type this module does not know.
    public func protoJSON(options: ProtoJSONEncodingOptions = .init()) throws -> JSON {
        var encoder = _ProtoJSONEncoder(options: options)
        return try _encodeProtoJSON(&encoder)
    }

    /// The message as compact proto3 JSON text (keys sorted): the text of ``protoJSON(options:)``, written without
    /// building the JSON value.
    /// - Parameter options: output options.
    /// - Returns: the JSON text.
    /// - Throws: ``ProtoJSONError``, as ``protoJSON(options:)``.
    public func protoJSONText(options: ProtoJSONEncodingOptions = .init()) throws -> String {
        var writer = _ProtoJSONWriter(options: options)
        try _writeProtoJSON(&writer)
        return writer.text
    }

    /// Reads a message from a proto3 JSON value.
    ///
    /// A value made by ``JSON/number(_:)`` carries only a double; 64-bit integers past 2^53 arrive exactly from
    /// text (``init(protoJSONText:options:)``) or as JSON strings.
    /// - Parameters:
    ///   - protoJSON: the JSON value.
    ///   - options: input options.
    /// - Throws: ``ProtoJSONError`` (direction `.decoding`) naming the path of the offending field.
    public init(protoJSON: JSON, options: ProtoJSONDecodingOptions = .init()) throws {
        var decoder = _ProtoJSONDecoder(options: options)
        try self.init(_decodingProtoJSON: protoJSON, &decoder)
    }

    /// Reads a message from proto3 JSON text. Objects that repeat a key are refused, as Python does. The caller
    /// bounds the text's size; nesting is bounded by ``ProtoJSONDecodingOptions/maxDepth``.
    /// - Parameters:
    ///   - protoJSONText: the JSON text.
    ///   - options: input options.
    /// - Throws: ``ProtoJSONError`` for invalid JSON text or a value that does not fit the message.
    public init(protoJSONText: String, options: ProtoJSONDecodingOptions = .init()) throws {
        let json: JSON
        do {
            json = try JSON.parse(protoJSONText, rejectingDuplicateKeys: true)
        } catch let error as JSON.SyntaxError {
            throw ProtoJSONError(path: "", reason: "\(error) (or a repeated key)", direction: .decoding)
        }
        try self.init(protoJSON: json, options: options)
    }
}

/// One step of a JSON path.
enum _ProtoJSONPathComponent {
    case field(String)
    case index(Int)
    case key(String)

    static func render(_ components: [_ProtoJSONPathComponent]) -> String {
        var out = ""
        for component in components {
            switch component {
            case .field(let name): out += out.isEmpty ? name : "." + name
            case .index(let i): out += "[\(i)]"
            case .key(let key):
                out += "["
                JSON.quote(key, into: &out)
                out += "]"
            }
        }
        return out
    }
}

/// The message types generated into this module, looked up by full proto name: what `google.protobuf.Any` in JSON
/// resolves `@type` against, and what a caller holding only a type name (a test, a gateway) can use.
public enum ProtoJSONRegistry {
    /// The generated message type with this full name.
    /// - Parameter name: e.g. `switchboard.contacts.v1.Contact`.
    /// - Returns: the type, or nil when this module has none by that name.
    public static func messageType(named name: String) -> (any ProtoJSONMessage.Type)? {
        _ProtoJSONRegistry.messageTypesByName[name]
    }

    /// Every generated message type, in the order protoc listed the files.
    public static var messageTypes: [any ProtoJSONMessage.Type] { _ProtoJSONRegistry.messageTypes }
}
