import SwitchboardHTTP2
import SwitchboardProtos
import SwitchboardRPC
import Testing

@Suite("Status and errors")
struct StatusTests {
    @Test("codes keep unknown values and name the standard ones")
    func codes() {
        #expect(StatusCode(rawValue: 5) == .notFound)
        #expect(StatusCode.notFound.description == "NOT_FOUND")
        #expect(StatusCode(rawValue: 42).description == "CODE_42")
        #expect(RPCError(code: .ok, message: "x").code == .unknown)
    }

    private struct DomainError: RPCErrorConvertible {
        var rpcError: RPCError { RPCError(code: .alreadyExists, message: "exists") }
    }

    private struct InternalFailure: Error {}

    @Test("errors map to statuses without leaking internal causes")
    func mapping() {
        #expect(RPCError.from(DomainError()).code == .alreadyExists)
        let unknown = RPCError.from(InternalFailure())
        #expect(unknown.code == .unknown)
        #expect(!unknown.message.contains("InternalFailure"))
        #expect(RPCError.from(CancellationError()).code == .cancelled)
    }

    @Test("grpc-message percent-encoding round-trips Unicode and control characters")
    func percentEncoding() {
        let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n 100%"
        let encoded = PercentEncoding.encode(message)
        #expect(encoded.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E })
        #expect(PercentEncoding.decode(encoded) == message)
        #expect(PercentEncoding.decode("bad %zz escape %4") == "bad %zz escape %4")
    }

    @Test("BadRequest details survive the trailer round trip")
    func richErrors() throws {
        let error = RPCError.invalidArgument(violations: [
            FieldViolation(field: "emails[0]", description: "is not an email address", reason: "INVALID_FORMAT"),
            FieldViolation(field: "name", description: "is required", reason: "REQUIRED"),
        ])
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("emails[0]"))
        var received = Metadata()
        for (name, value) in error.metadata.wireHeaders { try received.addWire(value, forKey: name) }
        let decoded = RPCError(code: error.code, message: error.message, metadata: received)
        #expect(decoded.statusDetails?.code == 3)
        #expect(decoded.fieldViolations.map(\.field) == ["emails[0]", "name"])
        #expect(decoded.fieldViolations.first?.reason == "INVALID_FORMAT")
    }
}
