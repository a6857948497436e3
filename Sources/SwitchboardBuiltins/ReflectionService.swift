import SwitchboardProtos
import SwitchboardRPC

/// Answers server-reflection queries from the descriptors compiled into the binary.
struct ReflectionIndex: Sendable {
    enum Answer {
        case files([[UInt8]])
        case services([String])
        case extensionNumbers(type: String, numbers: [Int32])
        case error(code: Int32, message: String)
    }

    private let filesByName: [String: EmbeddedProtoFile]
    private let fileBySymbol: [String: String]
    private let services: [String]
    /// The longest known symbol, in UTF-8 bytes: a longer candidate cannot match, so it is never hashed.
    private let longestSymbol: Int

    /// The longest symbol or file name a query may carry (protobuf names are far shorter).
    static let maxQueryBytes = 1024

    init(files: [EmbeddedProtoFile], services: [String]) {
        var byName: [String: EmbeddedProtoFile] = [:]
        var bySymbol: [String: String] = [:]
        for file in files {
            byName[file.name] = file
            for symbol in file.symbols { bySymbol[symbol] = file.name }
        }
        self.filesByName = byName
        self.fileBySymbol = bySymbol
        self.longestSymbol = bySymbol.keys.map(\.utf8.count).max() ?? 0
        self.services = services.sorted()
    }

    /// The file and everything it imports, transitively, the file itself first.
    private func withDependencies(_ name: String) -> [[UInt8]]? {
        guard filesByName[name] != nil else { return nil }
        var seen = Set<String>()
        var ordered: [[UInt8]] = []
        func visit(_ name: String) {
            guard seen.insert(name).inserted, let file = filesByName[name] else { return }
            ordered.append(file.serializedDescriptor)
            file.dependencies.forEach(visit)
        }
        visit(name)
        return ordered
    }

    func fileByName(_ name: String) -> Answer {
        guard name.utf8.count <= Self.maxQueryBytes else { return Self.tooLong("filename") }
        return withDependencies(name).map(Answer.files) ?? .error(code: 5, message: "file not found: \(name)")
    }

    func fileContainingSymbol(_ symbol: String) -> Answer {
        guard symbol.utf8.count <= Self.maxQueryBytes else { return Self.tooLong("symbol") }
        // A symbol may name a method or field under a known type: walk up to the nearest known one. One pass over
        // the bytes finds the dots; only prefixes no longer than the longest known symbol are looked up, so the
        // walk is linear in the query (a query of 80,000 dots used to copy each prefix: quadratic).
        let utf8 = symbol.utf8
        var ends = [utf8.count]
        var offset = 0
        for byte in utf8 {
            if byte == UInt8(ascii: ".") { ends.append(offset) }
            offset += 1
        }
        for end in ends.sorted(by: >) where end > 0 && end <= longestSymbol {
            let candidate = String(decoding: utf8.prefix(end), as: UTF8.self)
            if let file = fileBySymbol[candidate], let files = withDependencies(file) { return .files(files) }
        }
        return .error(code: 5, message: "symbol not found: \(symbol)")
    }

    private static func tooLong(_ what: String) -> Answer {
        .error(code: 3, message: "\(what) is longer than \(maxQueryBytes) bytes")
    }

    func listServices() -> Answer { .services(services) }

    func extensionNumbers(of type: String) -> Answer {
        guard type.utf8.count <= Self.maxQueryBytes else { return Self.tooLong("type") }
        return fileBySymbol[type] != nil
            ? .extensionNumbers(type: type, numbers: [])
            : .error(code: 5, message: "type not found: \(type)")
    }
}

/// Server reflection, served as `grpc.reflection.v1.ServerReflection` and, for older tools such as grpcurl's
/// fallback and grpcio-reflection's descriptor database, as `grpc.reflection.v1alpha.ServerReflection`. The two
/// versions' messages are identical on the wire, so one implementation with the v1 types serves both paths.
public struct ReflectionService: Grpc_Reflection_V1_ServerReflection_ServiceProtocol {
    private let index: ReflectionIndex

    /// Creates the service.
    /// - Parameters:
    ///   - files: the embedded descriptors (usually `SwitchboardProtoFiles.all`).
    ///   - services: the fully-qualified names of the services the server serves.
    public init(files: [EmbeddedProtoFile] = SwitchboardProtoFiles.all, services: [String]) {
        self.index = ReflectionIndex(files: files, services: services)
    }

    /// Registers the v1 and v1alpha methods.
    /// - Parameter router: the router.
    public func registerMethods(with router: inout RPCRouter) {
        for method in [
            Grpc_Reflection_V1_ServerReflection.Method.serverReflectionInfo,
            Grpc_Reflection_V1Alpha_ServerReflection.Method.serverReflectionInfo,
        ] {
            router.registerBidirectionalStreaming(method) { requests, responses, context in
                try await self.serverReflectionInfo(requests: requests, responses: responses, context: context)
            }
        }
    }

    public func serverReflectionInfo(
        requests: RPCAsyncSequence<Grpc_Reflection_V1_ServerReflectionRequest>,
        responses: RPCWriter<Grpc_Reflection_V1_ServerReflectionResponse>,
        context: ServerContext
    ) async throws {
        for try await request in requests {
            var response = Grpc_Reflection_V1_ServerReflectionResponse()
            response.validHost = request.host
            response.originalRequest = request
            response.messageResponse = Self.messageResponse(for: answer(to: request.messageRequest))
            try await responses.write(response)
        }
    }

    private func answer(to request: Grpc_Reflection_V1_ServerReflectionRequest.OneOf_MessageRequest?) -> ReflectionIndex.Answer {
        switch request {
        case .fileByFilename(let name): return index.fileByName(name)
        case .fileContainingSymbol(let symbol): return index.fileContainingSymbol(symbol)
        case .fileContainingExtension: return .error(code: 5, message: "extensions are not used")
        case .allExtensionNumbersOfType(let type): return index.extensionNumbers(of: type)
        case .listServices: return index.listServices()
        case nil: return .error(code: 3, message: "message_request must be set")
        }
    }

    private static func messageResponse(
        for answer: ReflectionIndex.Answer
    ) -> Grpc_Reflection_V1_ServerReflectionResponse.OneOf_MessageResponse {
        switch answer {
        case .files(let files):
            var r = Grpc_Reflection_V1_FileDescriptorResponse()
            r.fileDescriptorProto = files
            return .fileDescriptorResponse(r)
        case .services(let names):
            var r = Grpc_Reflection_V1_ListServiceResponse()
            r.service = names.map {
                var s = Grpc_Reflection_V1_ServiceResponse()
                s.name = $0
                return s
            }
            return .listServicesResponse(r)
        case .extensionNumbers(let type, let numbers):
            var r = Grpc_Reflection_V1_ExtensionNumberResponse()
            r.baseTypeName = type
            r.extensionNumber = numbers
            return .allExtensionNumbersResponse(r)
        case .error(let code, let message):
            var r = Grpc_Reflection_V1_ErrorResponse()
            r.errorCode = code
            r.errorMessage = message
            return .errorResponse(r)
        }
    }
}

/// The built-in services every Switchboard server carries.
public enum BuiltinServices {
    /// Health plus reflection (v1 and v1alpha) for a server whose application services are `applicationServices`.
    /// - Parameters:
    ///   - health: the health service the application controls.
    ///   - applicationServices: fully-qualified names of the application's services.
    /// - Returns: services to register alongside the application's.
    public static func make(health: HealthService, applicationServices: [String]) -> [any RPCService] {
        let all =
            applicationServices + [
                Grpc_Health_V1_Health.serviceName, Grpc_Reflection_V1_ServerReflection.serviceName,
                Grpc_Reflection_V1Alpha_ServerReflection.serviceName,
            ]
        return [health, ReflectionService(services: all)]
    }
}
