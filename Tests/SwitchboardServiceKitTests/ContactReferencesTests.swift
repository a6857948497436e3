import Foundation
import SwitchboardPostgres
import SwitchboardRPC
import SwitchboardServiceKit
import Synchronization
import Testing

/// A transport whose every call fails with one status, keeping the options each call was given.
final class FailingTransport: ClientTransport {
    let code: StatusCode
    let calls = Mutex<[CallOptions]>([])

    init(_ code: StatusCode) { self.code = code }

    func startCall(_ method: MethodDescriptor, options: CallOptions) async throws -> any ClientCallStream {
        calls.withLock { $0.append(options) }
        throw RPCError(code: code, message: "the upstream says no")
    }
}

/// ``ContactReferences`` without a network or a database: what it asks, and what the caller gets when the contacts
/// service fails. (The answers of a real contacts service are tested in the communication and collaboration suites.)
@Suite("Kit: the contact check's calls and failures")
struct ContactReferencesTests {
    /// Never connects: the check reads it only to replay a retry, which no test here reaches.
    let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: "host=/nonexistent dbname=none"))
    let actor = Actor(tenantID: "tenant-a", userID: "user-1")

    private func write() throws -> WriteOptions<Int> {
        try WriteOptions(requestID: "", method: "/test.v1.Test/Write", fingerprint: [], encode: { _ in [] })
    }

    private func check(
        _ transport: (any ClientTransport)?, _ references: [ContactReference], deadline: Duration = .seconds(5), callerDeadline: Bool = true
    ) async throws -> [UInt8]? {
        let call = ForwardedCall(headers: [("authorization", "Bearer t0ken")], deadline: .now + deadline)
        return try await ContactReferences(contacts: transport, idempotency: Idempotency(schema: "test"), pool: pool)
            .check(references, call: call, callerDeadline: callerDeadline, write: try write(), actor: actor)
    }

    private func code(_ body: () async throws -> Void) async -> (StatusCode, String)? {
        do {
            try await body()
            return nil
        } catch let error as RPCError {
            return (error.code, error.message)
        } catch let error as any RPCErrorConvertible {
            return (error.rpcError.code, error.rpcError.message)
        } catch {
            return (.unknown, "\(error)")
        }
    }

    @Test("nothing is asked without an address or without references; the caller's token and deadline go with a call")
    func asks() async throws {
        let one = [ContactReference(field: "x.contact_id", id: UUID())]
        #expect(try await check(nil, one) == nil)
        let transport = FailingTransport(.unavailable)
        #expect(try await check(transport, []) == nil)
        #expect(transport.calls.withLock { $0.isEmpty })
        _ = await code { _ = try await check(transport, one, deadline: .seconds(3)) }
        let options = try #require(transport.calls.withLock { $0.first })
        #expect(options.metadata.firstString("authorization") == "Bearer t0ken")
        #expect(options.timeout.map { $0 <= .seconds(3) && $0 > .seconds(2) } == true, "\(String(describing: options.timeout))")
    }

    @Test("the contacts service's failures are UNAVAILABLE, its token and rights refusals too; nothing was written")
    func unavailable() async throws {
        let one = [ContactReference(field: "x.contact_id", id: UUID())]
        for upstream: StatusCode in [.unavailable, .unauthenticated, .permissionDenied, .internal, .notFound, .invalidArgument, .cancelled] {
            let result = await code { _ = try await check(FailingTransport(upstream), one) }
            #expect(result?.0 == .unavailable && result?.1.contains("nothing was written") == true, "\(upstream): \(String(describing: result))")
        }
    }

    @Test("a deadline: the caller's own passing is DEADLINE_EXCEEDED; the service's budget or the upstream's is UNAVAILABLE")
    func deadlines() async throws {
        let one = [ContactReference(field: "x.contact_id", id: UUID())]
        let gone = FailingTransport(.unavailable)
        let passed = await code { _ = try await check(gone, one, deadline: .milliseconds(-1)) }
        #expect(passed?.0 == .deadlineExceeded, "\(String(describing: passed))")
        #expect(gone.calls.withLock { $0.isEmpty })
        // The upstream ran out of time while the caller still has some: the contacts service was slow, not the caller.
        let slow = await code { _ = try await check(FailingTransport(.deadlineExceeded), one) }
        #expect(slow?.0 == .unavailable, "\(String(describing: slow))")
        let budget = await code { _ = try await check(FailingTransport(.deadlineExceeded), one, deadline: .zero, callerDeadline: false) }
        #expect(budget?.0 == .unavailable, "\(String(describing: budget))")
    }

    @Test("more distinct contacts than a write may name: INVALID_ARGUMENT naming the first field, nothing asked")
    func tooMany() async throws {
        let transport = FailingTransport(.unavailable)
        let many = (0...ContactReferences.maxContacts).map { ContactReference(field: "x.contact_ids[\($0)]", id: UUID()) }
        let result = await code { _ = try await check(transport, many) }
        #expect(result?.0 == .invalidArgument && result?.1.contains("x.contact_ids[0]") == true, "\(String(describing: result))")
        #expect(transport.calls.withLock { $0.isEmpty })
    }
}
