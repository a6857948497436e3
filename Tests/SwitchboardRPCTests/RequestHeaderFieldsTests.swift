import SwitchboardRPC
import Testing

@testable import SwitchboardHTTP2

/// Request header parsing and the transport's verdict, fed bytes without sockets or nghttp2.
@Suite("Request header fields")
struct RequestHeaderFieldsTests {
    private func parse(_ headers: [(String, String)]) -> RequestHeaderFields {
        var fields = RequestHeaderFields()
        for (name, value) in headers {
            Array(name.utf8).withUnsafeBytes { name in
                Array(value.utf8).withUnsafeBytes { value in fields.add(name: name, value: value) }
            }
        }
        return fields
    }

    private let grpc: [(String, String)] = [
        (":method", "POST"), (":scheme", "http"), (":path", "/test.Echo/Say"), (":authority", "localhost"),
        ("content-type", "application/grpc+proto"), ("te", "trailers"), ("user-agent", "grpc-python/1.85"),
    ]

    @Test("a gRPC request becomes a head: path, timeout parsed, metadata without reserved headers")
    func head() {
        let fields = parse(
            grpc + [
                ("grpc-timeout", "5010m"), ("grpc-encoding", "gzip"), ("grpc-accept-encoding", "identity, deflate, gzip"),
                ("authorization", "Bearer x"), ("trace-bin", "AAEC"), ("grpc-status", "0"),
            ])
        #expect(fields.refusal() == nil)
        let head = fields.head(peer: "ipv4:127.0.0.1:1")
        #expect(head.path == "/test.Echo/Say")
        #expect(head.timeout == .milliseconds(5010))
        #expect(head.metadata == ["authorization": "Bearer x", "trace-bin": .binary([0, 1, 2])])
        #expect(fields.encoding == "gzip")
        #expect(fields.acceptEncoding == "identity, deflate, gzip")
    }

    @Test("a malformed grpc-timeout is ignored rather than failing the call")
    func malformedTimeout() {
        #expect(parse(grpc + [("grpc-timeout", "soon")]).head(peer: "").timeout == nil)
    }

    @Test("the transport refuses non-POST with 405, other content types with 415, bad binary metadata with INTERNAL")
    func refusals() {
        var get = grpc
        get[0] = (":method", "GET")
        #expect(parse(get).refusal() == .http(status: 405))
        var json = grpc
        json[4] = ("content-type", "application/json")
        #expect(parse(json).refusal() == .http(status: 415))
        var prefixOnly = grpc
        prefixOnly[4] = ("content-type", "application/grpcx")
        #expect(parse(prefixOnly).refusal() == .http(status: 415))
        guard case .rpc(let error)? = parse(grpc + [("trace-bin", "!!!")]).refusal() else {
            Issue.record("bad base64 accepted")
            return
        }
        #expect(error.code == .internal)
        // Bad metadata is judged first, as before: it is a gRPC status even on a request that is not POST.
        #expect(parse(get + [("trace-bin", "!!!")]).refusal() == .rpc(error))
    }
}
