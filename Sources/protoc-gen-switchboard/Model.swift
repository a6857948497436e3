/// The parts of a `.proto` file the generator needs, read out of protoc's request once so that generation is
/// plain Swift over plain values.
struct ProtoFile {
    var name: String
    var package: String
    var syntax: String
    var dependencies: [String]
    var messages: [ProtoMessageType]
    var enums: [ProtoEnumType]
    var services: [ProtoService]
    /// The FileDescriptorProto, serialized without source info, for server reflection.
    var serializedDescriptor: [UInt8]
}

struct ProtoMessageType {
    var name: String
    /// Fully-qualified with a leading dot, e.g. `.grpc.testing.SimpleRequest`.
    var fullName: String
    var fields: [ProtoField]
    var oneofNames: [String]
    var nestedMessages: [ProtoMessageType]
    var nestedEnums: [ProtoEnumType]
    var isMapEntry: Bool
}

struct ProtoField {
    enum Kind: Int {
        case double = 1, float, int64, uint64, int32, fixed64, fixed32, bool, string, group, message, bytes, uint32,
            enumeration, sfixed32, sfixed64, sint32, sint64
    }
    var name: String
    /// protoc's lowerCamel JSON name (or the `json_name` option).
    var jsonName: String
    var number: Int32
    var kind: Kind
    var isRepeated: Bool
    var typeName: String
    var oneofIndex: Int?
    var isProto3Optional: Bool
}

struct ProtoEnumType {
    var name: String
    var fullName: String
    var values: [(name: String, number: Int32)]
}

struct ProtoService {
    var name: String
    var fullName: String
    var methods: [ProtoMethod]
}

struct ProtoMethod {
    var name: String
    var inputType: String
    var outputType: String
    var clientStreaming: Bool
    var serverStreaming: Bool
}

struct GeneratedFile {
    var name: String
    var content: String
}

struct GeneratorError: Error, CustomStringConvertible {
    var description: String
}
