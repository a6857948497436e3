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

    init(files: [EmbeddedProtoFile], services: [String]) {
        var byName: [String: EmbeddedProtoFile] = [:]
        var bySymbol: [String: String] = [:]
        for file in files {
            byName[file.name] = file
            for symbol in file.symbols { bySymbol[symbol] = file.name }
        }
        self.filesByName = byName
        self.fileBySymbol = bySymbol
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
        withDependencies(name).map(Answer.files) ?? .error(code: 5, message: "file not found: \(name)")
    }

    func fileContainingSymbol(_ symbol: String) -> Answer {
        var candidate = symbol
        // A symbol may name a method or field under a known type: walk up to the nearest known one.
        while !candidate.isEmpty {
            if let file = fileBySymbol[candidate], let files = withDependencies(file) { return .files(files) }
            guard let dot = candidate.lastIndex(of: ".") else { break }
            candidate = String(candidate[..<dot])
        }
        return .error(code: 5, message: "symbol not found: \(symbol)")
    }

    func listServices() -> Answer { .services(services) }

    func extensionNumbers(of type: String) -> Answer {
        fileBySymbol[type] != nil ? .extensionNumbers(type: type, numbers: [])
            : .error(code: 5, message: "type not found: \(type)")
    }
}

/// `grpc.reflection.v1.ServerReflection`.
public struct ReflectionServiceV1: Grpc_Reflection_V1_ServerReflection_ServiceProtocol {
    private let index: ReflectionIndex

    /// Creates the service.
    /// - Parameters:
    ///   - files: the embedded descriptors (usually `SwitchboardProtoFiles.all`).
    ///   - services: the fully-qualified names of the services the server serves.
    public init(files: [EmbeddedProtoFile] = SwitchboardProtoFiles.all, services: [String]) {
        self.index = ReflectionIndex(files: files, services: services)
    }

    public func serverReflectionInfo(
        requests: RPCAsyncSequence<Grpc_Reflection_V1_ServerReflectionRequest>,
        responses: RPCWriter<Grpc_Reflection_V1_ServerReflectionResponse>,
        context: ServerContext
    ) async throws {
        for try await request in requests {
            let answer: ReflectionIndex.Answer
            switch request.messageRequest {
            case .fileByFilename(let name): answer = index.fileByName(name)
            case .fileContainingSymbol(let symbol): answer = index.fileContainingSymbol(symbol)
            case .fileContainingExtension: answer = .error(code: 5, message: "extensions are not used")
            case .allExtensionNumbersOfType(let type): answer = index.extensionNumbers(of: type)
            case .listServices: answer = index.listServices()
            case nil: answer = .error(code: 3, message: "message_request must be set")
            }
            var response = Grpc_Reflection_V1_ServerReflectionResponse()
            response.validHost = request.host
            response.originalRequest = request
            switch answer {
            case .files(let files):
                var r = Grpc_Reflection_V1_FileDescriptorResponse()
                r.fileDescriptorProto = files
                response.messageResponse = .fileDescriptorResponse(r)
            case .services(let names):
                var r = Grpc_Reflection_V1_ListServiceResponse()
                r.service = names.map { var s = Grpc_Reflection_V1_ServiceResponse(); s.name = $0; return s }
                response.messageResponse = .listServicesResponse(r)
            case .extensionNumbers(let type, let numbers):
                var r = Grpc_Reflection_V1_ExtensionNumberResponse()
                r.baseTypeName = type
                r.extensionNumber = numbers
                response.messageResponse = .allExtensionNumbersResponse(r)
            case .error(let code, let message):
                var r = Grpc_Reflection_V1_ErrorResponse()
                r.errorCode = code
                r.errorMessage = message
                response.messageResponse = .errorResponse(r)
            }
            try await responses.write(response)
        }
    }
}

/// `grpc.reflection.v1alpha.ServerReflection`, for older tools.
public struct ReflectionServiceV1Alpha: Grpc_Reflection_V1Alpha_ServerReflection_ServiceProtocol {
    private let index: ReflectionIndex

    /// Creates the service.
    /// - Parameters:
    ///   - files: the embedded descriptors (usually `SwitchboardProtoFiles.all`).
    ///   - services: the fully-qualified names of the services the server serves.
    public init(files: [EmbeddedProtoFile] = SwitchboardProtoFiles.all, services: [String]) {
        self.index = ReflectionIndex(files: files, services: services)
    }

    public func serverReflectionInfo(
        requests: RPCAsyncSequence<Grpc_Reflection_V1Alpha_ServerReflectionRequest>,
        responses: RPCWriter<Grpc_Reflection_V1Alpha_ServerReflectionResponse>,
        context: ServerContext
    ) async throws {
        for try await request in requests {
            let answer: ReflectionIndex.Answer
            switch request.messageRequest {
            case .fileByFilename(let name): answer = index.fileByName(name)
            case .fileContainingSymbol(let symbol): answer = index.fileContainingSymbol(symbol)
            case .fileContainingExtension: answer = .error(code: 5, message: "extensions are not used")
            case .allExtensionNumbersOfType(let type): answer = index.extensionNumbers(of: type)
            case .listServices: answer = index.listServices()
            case nil: answer = .error(code: 3, message: "message_request must be set")
            }
            var response = Grpc_Reflection_V1Alpha_ServerReflectionResponse()
            response.validHost = request.host
            response.originalRequest = request
            switch answer {
            case .files(let files):
                var r = Grpc_Reflection_V1Alpha_FileDescriptorResponse()
                r.fileDescriptorProto = files
                response.messageResponse = .fileDescriptorResponse(r)
            case .services(let names):
                var r = Grpc_Reflection_V1Alpha_ListServiceResponse()
                r.service = names.map { var s = Grpc_Reflection_V1Alpha_ServiceResponse(); s.name = $0; return s }
                response.messageResponse = .listServicesResponse(r)
            case .extensionNumbers(let type, let numbers):
                var r = Grpc_Reflection_V1Alpha_ExtensionNumberResponse()
                r.baseTypeName = type
                r.extensionNumber = numbers
                response.messageResponse = .allExtensionNumbersResponse(r)
            case .error(let code, let message):
                var r = Grpc_Reflection_V1Alpha_ErrorResponse()
                r.errorCode = code
                r.errorMessage = message
                response.messageResponse = .errorResponse(r)
            }
            try await responses.write(response)
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
        let all = applicationServices + [
            Grpc_Health_V1_Health.serviceName, Grpc_Reflection_V1_ServerReflection.serviceName,
            Grpc_Reflection_V1Alpha_ServerReflection.serviceName,
        ]
        return [
            health, ReflectionServiceV1(services: all), ReflectionServiceV1Alpha(services: all),
        ]
    }
}
