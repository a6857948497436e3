import SwitchboardRPC

/// One HTTP binding of an RPC, in the form of `google.api.HttpRule`: a verb, a path template, which request field
/// the body fills (`"*"` for the whole request, `""` for none) and which response field is the body (`""` for all).
public struct HTTPBindingSchema: Sendable, Hashable {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    public let verb: String
    /// The path template, e.g. `/v1/contacts/{id}` or `/v1/contacts/{id}:undelete`.
    public let path: String
    /// The request field the body fills: `*`, a top-level field name, or empty for no body.
    public let body: String
    /// The response field sent as the body; empty sends the whole response.
    public let responseBody: String

    /// Creates a binding.
    /// - Parameters:
    ///   - verb: the HTTP method.
    ///   - path: the path template.
    ///   - body: the request field the body fills.
    ///   - responseBody: the response field that is the body.
    public init(verb: String, path: String, body: String, responseBody: String) {
        self.verb = verb
        self.path = path
        self.body = body
        self.responseBody = responseBody
    }
}

/// An RPC as the HTTP/JSON gateway sees it: its descriptor, message types and bindings.
public struct HTTPMethodSchema: Sendable {
    /// The RPC.
    public let descriptor: MethodDescriptor
    /// The request message's full name (no leading dot).
    public let input: String
    /// The response message's full name (no leading dot).
    public let output: String
    /// The bindings, the rule's own first and its `additional_bindings` after it.
    public let bindings: [HTTPBindingSchema]
    /// Whether the rules file names this RPC; an RPC it does not name is bound to `POST /<service>/<method>` with
    /// the whole request as the body (as grpc-gateway's `generate_unbound_methods` does), so every RPC is reachable.
    public let isBoundByRule: Bool

    /// Creates a method schema.
    /// - Parameters:
    ///   - descriptor: the RPC.
    ///   - input: the request type's full name.
    ///   - output: the response type's full name.
    ///   - bindings: the HTTP bindings.
    ///   - isBoundByRule: whether the rules file names the RPC.
    public init(descriptor: MethodDescriptor, input: String, output: String, bindings: [HTTPBindingSchema], isBoundByRule: Bool) {
        self.descriptor = descriptor
        self.input = input
        self.output = output
        self.bindings = bindings
        self.isBoundByRule = isBoundByRule
    }
}

/// One field of a message, as proto3 JSON and query parameters see it.
public struct HTTPFieldSchema: Sendable {
    /// The field's scalar or composite type (`FieldDescriptorProto.Type`).
    public enum Kind: Int, Sendable {
        // swift-format-ignore
        case double = 1, float, int64, uint64, int32, fixed64, fixed32, bool, string, group, message, bytes, uint32,
            enumeration, sfixed32, sfixed64, sint32, sint64
    }
    /// The proto field name (snake_case).
    public let name: String
    /// The proto3 JSON name (lowerCamel, or the `json_name` option).
    public let jsonName: String
    /// The type.
    public let kind: Kind
    /// Whether the field is repeated (maps are repeated entry messages).
    public let isRepeated: Bool
    /// The full name of the message or enum type (no leading dot); empty for scalars.
    public let typeName: String
    /// The oneof the field belongs to; empty when none.
    public let oneof: String

    /// Creates a field schema.
    /// - Parameters:
    ///   - name: the proto name.
    ///   - jsonName: the JSON name.
    ///   - kind: the type.
    ///   - isRepeated: whether repeated.
    ///   - typeName: the message or enum type's full name.
    ///   - oneof: the oneof's name.
    public init(name: String, jsonName: String, kind: Kind, isRepeated: Bool, typeName: String, oneof: String) {
        self.name = name
        self.jsonName = jsonName
        self.kind = kind
        self.isRepeated = isRepeated
        self.typeName = typeName
        self.oneof = oneof
    }
}

/// A message's fields.
public struct HTTPMessageSchema: Sendable {
    /// The fields in declaration order.
    public let fields: [HTTPFieldSchema]
    /// Whether this is the synthetic entry message of a map field (key field 1, value field 2).
    public let isMapEntry: Bool

    /// Creates a message schema.
    /// - Parameters:
    ///   - fields: the fields.
    ///   - isMapEntry: whether it is a map entry.
    public init(fields: [HTTPFieldSchema], isMapEntry: Bool) {
        self.fields = fields
        self.isMapEntry = isMapEntry
    }

    /// The field whose proto name or JSON name is `name`.
    /// - Parameter name: either spelling.
    /// - Returns: the field, or nil.
    public func field(named name: String) -> HTTPFieldSchema? {
        fields.first { $0.name == name || $0.jsonName == name }
    }
}

/// Reads the generated schema's JSON text (`SwitchboardHTTPSchema.text`) into the schema types, once.
enum HTTPSchemaText {
    static func decode(_ text: String) -> (methods: [HTTPMethodSchema], messages: [String: HTTPMessageSchema], enums: [String: [String]]) {
        // The text is generated and checked at generation time: a failure here is a generator bug, so it traps.
        guard case .object(let root)? = try? JSON.parse(text) else { fatalError("SwitchboardHTTPSchema.text is not a JSON object") }
        func string(_ v: JSON?) -> String {
            if case .string(let s)? = v { return s }
            return ""
        }
        func bool(_ v: JSON?) -> Bool {
            if case .bool(let b)? = v { return b }
            return false
        }
        var methods: [HTTPMethodSchema] = []
        if case .array(let list)? = root["methods"] {
            for case .object(let m) in list {
                let kind: RPCKind =
                    switch string(m["kind"]) {
                    case "clientStreaming": .clientStreaming
                    case "serverStreaming": .serverStreaming
                    case "bidirectionalStreaming": .bidirectionalStreaming
                    default: .unary
                    }
                var bindings: [HTTPBindingSchema] = []
                if case .array(let bs)? = m["bindings"] {
                    for case .object(let b) in bs {
                        bindings.append(
                            HTTPBindingSchema(
                                verb: string(b["verb"]), path: string(b["path"]), body: string(b["body"]), responseBody: string(b["responseBody"])))
                    }
                }
                methods.append(
                    HTTPMethodSchema(
                        descriptor: MethodDescriptor(service: string(m["service"]), method: string(m["method"]), kind: kind),
                        input: string(m["input"]),
                        output: string(m["output"]), bindings: bindings, isBoundByRule: bool(m["bound"])))
            }
        }
        var messages: [String: HTTPMessageSchema] = [:]
        if case .object(let all)? = root["messages"] {
            for (name, value) in all {
                guard case .object(let m) = value else { continue }
                var fields: [HTTPFieldSchema] = []
                if case .array(let fs)? = m["fields"] {
                    for case .array(let f) in fs where f.count == 6 {
                        guard case .number(let kind) = f[2], let k = HTTPFieldSchema.Kind(rawValue: Int(kind.double)) else { continue }
                        fields.append(
                            HTTPFieldSchema(
                                name: string(f[0]), jsonName: string(f[1]), kind: k, isRepeated: bool(f[3]), typeName: string(f[4]),
                                oneof: string(f[5])))
                    }
                }
                messages[name] = HTTPMessageSchema(fields: fields, isMapEntry: bool(m["mapEntry"]))
            }
        }
        var enums: [String: [String]] = [:]
        if case .object(let all)? = root["enums"] {
            for (name, value) in all {
                if case .array(let values) = value { enums[name] = values.map { string($0) } }
            }
        }
        return (methods, messages, enums)
    }
}
