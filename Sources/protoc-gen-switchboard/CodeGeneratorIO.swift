private import CProtobufC
// The only file of the generator that touches protobuf-c: it decodes protoc's CodeGeneratorRequest into the
// plain model and encodes the CodeGeneratorResponse.
private import CProtocPlugin
import Foundation

enum CodeGeneratorIO {
    /// Decodes a CodeGeneratorRequest.
    static func decodeRequest(_ bytes: [UInt8]) throws -> (filesToGenerate: [String], parameter: String, files: [ProtoFile]) {
        let request = bytes.withUnsafeBufferPointer { buffer in
            google__protobuf__compiler__code_generator_request__unpack(nil, buffer.count, buffer.baseAddress)
        }
        guard let request else { throw GeneratorError(description: "protoc sent an undecodable CodeGeneratorRequest") }
        defer { google__protobuf__compiler__code_generator_request__free_unpacked(request, nil) }
        let toGenerate = strings(request.pointee.file_to_generate, request.pointee.n_file_to_generate)
        let parameter = request.pointee.parameter.map { String(cString: $0) } ?? ""
        var files: [ProtoFile] = []
        for i in 0..<request.pointee.n_proto_file {
            files.append(readFile(request.pointee.proto_file[i]!))
        }
        return (toGenerate, parameter, files)
    }

    /// Encodes a CodeGeneratorResponse.
    static func encodeResponse(files: [GeneratedFile], error: String?) -> [UInt8] {
        var response = Google__Protobuf__Compiler__CodeGeneratorResponse()
        google__protobuf__compiler__code_generator_response__init(&response)
        var allocations: [UnsafeMutableRawPointer] = []
        defer { allocations.forEach { free($0) } }
        func cString(_ s: String) -> UnsafeMutablePointer<CChar> {
            let p = strdup(s)!
            allocations.append(UnsafeMutableRawPointer(p))
            return p
        }
        response.has_supported_features = 1
        response.supported_features = 0
        if let error { response.error = cString(error) }
        let entries = UnsafeMutablePointer<Google__Protobuf__Compiler__CodeGeneratorResponse__File>.allocate(
            capacity: max(files.count, 1))
        let pointers = UnsafeMutablePointer<UnsafeMutablePointer<Google__Protobuf__Compiler__CodeGeneratorResponse__File>?>
            .allocate(capacity: max(files.count, 1))
        defer {
            entries.deallocate()
            pointers.deallocate()
        }
        for (i, file) in files.enumerated() {
            (entries + i).initialize(to: Google__Protobuf__Compiler__CodeGeneratorResponse__File())
            google__protobuf__compiler__code_generator_response__file__init(entries + i)
            entries[i].name = cString(file.name)
            entries[i].content = cString(file.content)
            pointers[i] = entries + i
        }
        response.n_file = files.count
        response.file = pointers
        let size = google__protobuf__compiler__code_generator_response__get_packed_size(&response)
        var out = [UInt8](repeating: 0, count: size)
        _ = out.withUnsafeMutableBufferPointer { google__protobuf__compiler__code_generator_response__pack(&response, $0.baseAddress) }
        return out
    }

    private static func strings(_ p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ n: Int) -> [String] {
        guard let p else { return [] }
        return (0..<n).map { String(cString: p[$0]!) }
    }

    private static func string(_ p: UnsafeMutablePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

    private static func readFile(_ file: UnsafeMutablePointer<Google__Protobuf__FileDescriptorProto>) -> ProtoFile {
        let f = file.pointee
        let package = string(f.package)
        let prefix = package.isEmpty ? "" : "." + package
        var messages: [ProtoMessageType] = []
        for i in 0..<f.n_message_type { messages.append(readMessage(f.message_type[i]!, scope: prefix)) }
        var enums: [ProtoEnumType] = []
        for i in 0..<f.n_enum_type { enums.append(readEnum(f.enum_type[i]!, scope: prefix)) }
        var services: [ProtoService] = []
        for i in 0..<f.n_service {
            let s = f.service[i]!.pointee
            var methods: [ProtoMethod] = []
            for j in 0..<s.n_method {
                let m = s.method[j]!.pointee
                methods.append(
                    ProtoMethod(
                        name: string(m.name), inputType: string(m.input_type), outputType: string(m.output_type),
                        clientStreaming: m.has_client_streaming != 0 && m.client_streaming != 0,
                        serverStreaming: m.has_server_streaming != 0 && m.server_streaming != 0))
            }
            services.append(ProtoService(name: string(s.name), fullName: "\(prefix).\(string(s.name))", methods: methods))
        }
        // Reflection serves descriptors without comments and source positions: smaller, and what grpc does.
        let sourceInfo = file.pointee.source_code_info
        file.pointee.source_code_info = nil
        let size = google__protobuf__file_descriptor_proto__get_packed_size(file)
        var serialized = [UInt8](repeating: 0, count: size)
        _ = serialized.withUnsafeMutableBufferPointer { google__protobuf__file_descriptor_proto__pack(file, $0.baseAddress) }
        file.pointee.source_code_info = sourceInfo
        return ProtoFile(
            name: string(f.name), package: package, syntax: f.syntax.map { String(cString: $0) } ?? "proto2",
            dependencies: strings(f.dependency, f.n_dependency), messages: messages, enums: enums,
            services: services, serializedDescriptor: serialized)
    }

    private static func readMessage(_ p: UnsafeMutablePointer<Google__Protobuf__DescriptorProto>, scope: String) -> ProtoMessageType {
        let m = p.pointee
        let name = string(m.name)
        let fullName = "\(scope).\(name)"
        var fields: [ProtoField] = []
        for i in 0..<m.n_field {
            let fd = m.field[i]!.pointee
            fields.append(
                ProtoField(
                    name: string(fd.name), jsonName: fd.json_name.map { String(cString: $0) } ?? string(fd.name),
                    number: fd.number,
                    kind: ProtoField.Kind(rawValue: Int(fd.type.rawValue)) ?? .group,
                    isRepeated: fd.label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED,
                    typeName: string(fd.type_name),
                    oneofIndex: fd.has_oneof_index != 0 ? Int(fd.oneof_index) : nil,
                    isProto3Optional: fd.has_proto3_optional != 0 && fd.proto3_optional != 0))
        }
        var oneofs: [String] = []
        for i in 0..<m.n_oneof_decl { oneofs.append(string(m.oneof_decl[i]!.pointee.name)) }
        var nested: [ProtoMessageType] = []
        for i in 0..<m.n_nested_type { nested.append(readMessage(m.nested_type[i]!, scope: fullName)) }
        var enums: [ProtoEnumType] = []
        for i in 0..<m.n_enum_type { enums.append(readEnum(m.enum_type[i]!, scope: fullName)) }
        let isMapEntry = m.options.map { $0.pointee.has_map_entry != 0 && $0.pointee.map_entry != 0 } ?? false
        return ProtoMessageType(
            name: name, fullName: fullName, fields: fields, oneofNames: oneofs, nestedMessages: nested,
            nestedEnums: enums, isMapEntry: isMapEntry)
    }

    private static func readEnum(_ p: UnsafeMutablePointer<Google__Protobuf__EnumDescriptorProto>, scope: String) -> ProtoEnumType {
        let e = p.pointee
        var values: [(String, Int32)] = []
        for i in 0..<e.n_value { values.append((string(e.value[i]!.pointee.name), e.value[i]!.pointee.number)) }
        return ProtoEnumType(name: string(e.name), fullName: "\(scope).\(string(e.name))", values: values)
    }
}
