// grpc-swift-2 serving grpc.testing.TestService/UnaryCall as an echo, with a tiny hand-written codec for
// SimpleRequest/SimpleResponse (payload = field 3 / field 1, body = field 2) instead of swift-protobuf.
// Usage: grpc-swift-echo PORT
import GRPCCore
import GRPCNIOTransportHTTP2

struct EchoRequest: Sendable { var body: [UInt8] }
struct EchoResponse: Sendable { var body: [UInt8] }

enum ProtoError: Error { case malformed }

/// Reads a varint at `index`, advancing it.
func readVarint(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) throws -> UInt64 {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    while index < bytes.count {
        let b = bytes[index]
        index += 1
        result |= UInt64(b & 0x7F) << shift
        if b & 0x80 == 0 { return result }
        shift += 7
        if shift > 63 { break }
    }
    throw ProtoError.malformed
}

/// Finds length-delimited field `number` in a message; skips everything else.
func field(_ number: UInt64, in bytes: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer? {
    var i = 0
    var found: UnsafeRawBufferPointer?
    while i < bytes.count {
        let key = try readVarint(bytes, &i)
        switch key & 7 {
        case 0: _ = try readVarint(bytes, &i)
        case 1: i += 8
        case 5: i += 4
        case 2:
            let length = Int(try readVarint(bytes, &i))
            guard i + length <= bytes.count else { throw ProtoError.malformed }
            if key >> 3 == number { found = UnsafeRawBufferPointer(rebasing: bytes[i..<(i + length)]) }
            i += length
        default: throw ProtoError.malformed
        }
    }
    return found
}

func appendVarint(_ value: Int, to out: inout [UInt8]) {
    var v = UInt64(value)
    while v >= 0x80 {
        out.append(UInt8(v & 0x7F) | 0x80)
        v >>= 7
    }
    out.append(UInt8(v))
}

struct RequestDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> EchoRequest {
        try serializedMessageBytes.withUnsafeBytes { raw in
            guard let payload = try field(3, in: raw) else { return EchoRequest(body: []) }
            return EchoRequest(body: try field(2, in: payload).map { Array($0) } ?? [])
        }
    }
}

struct ResponseSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: EchoResponse) throws -> Bytes {
        guard !message.body.isEmpty else { return Bytes([]) }
        var payload: [UInt8] = [0x12]  // field 2, length-delimited
        appendVarint(message.body.count, to: &payload)
        payload.append(contentsOf: message.body)
        var out: [UInt8] = [0x0A]  // field 1, length-delimited
        appendVarint(payload.count, to: &out)
        out.append(contentsOf: payload)
        return Bytes(out)
    }
}

struct EchoService: RegistrableRPCService {
    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(
            forMethod: MethodDescriptor(fullyQualifiedService: "grpc.testing.TestService", method: "UnaryCall"),
            deserializer: RequestDeserializer(),
            serializer: ResponseSerializer()
        ) { request, context in
            let single = try await ServerRequest(stream: request)
            return StreamingServerResponse(single: ServerResponse(message: EchoResponse(body: single.message.body)))
        }
    }
}

/// Passes every call through, matching the Switchboard side's interceptor.
struct PassThroughInterceptor: ServerInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        try await next(request, context)
    }
}

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 50062 : 50062
let server = GRPCServer(
    transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext),
    services: [EchoService()],
    interceptors: [PassThroughInterceptor()]
)
try await server.serve()
