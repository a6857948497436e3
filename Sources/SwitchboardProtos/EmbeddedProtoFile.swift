import SwitchboardRPC

/// A proto file compiled into the binary: what server reflection serves.
public struct EmbeddedProtoFile: Sendable {
    /// The file's path, e.g. `grpc/health/v1/health.proto`.
    public let name: String
    /// The files it imports.
    public let dependencies: [String]
    /// The fully-qualified services it defines.
    public let services: [String]
    /// Every fully-qualified symbol it defines: messages, enums, services and `service.Method`s.
    public let symbols: [String]
    /// Its serialized `google.protobuf.FileDescriptorProto`.
    public let serializedDescriptor: [UInt8]

    /// Creates an entry (done by generated code).
    /// - Parameters:
    ///   - name: the file path.
    ///   - dependencies: imported files.
    ///   - services: defined services.
    ///   - symbols: defined symbols.
    ///   - descriptorBase64: the serialized descriptor as base64.
    public init(name: String, dependencies: [String], services: [String], symbols: [String], descriptorBase64: String) {
        self.name = name
        self.dependencies = dependencies
        self.services = services
        self.symbols = symbols
        self.serializedDescriptor = Base64.decode(descriptorBase64) ?? []
    }
}
