import SwitchboardProtos
import SwitchboardRPC
import Synchronization

/// `grpc.health.v1.Health`: reports whether the server (service name "") and each named service can serve.
///
/// The application sets statuses (e.g. NOT_SERVING while its database is unreachable); `Watch` streams every change.
public final class HealthService: Grpc_Health_V1_Health_ServiceProtocol {
    /// A serving status.
    public typealias ServingStatus = Grpc_Health_V1_HealthCheckResponse.ServingStatus

    private struct State {
        var statuses: [String: ServingStatus] = ["": .serving]
        var watchers: [Int: (service: String, continuation: AsyncStream<ServingStatus>.Continuation)] = [:]
        var nextWatcher = 0
    }

    private let state = Mutex(State())

    /// Creates the service with the server itself SERVING.
    /// - Parameter services: services to register as SERVING from the start.
    public init(services: [String] = []) {
        state.withLock { state in
            for service in services { state.statuses[service] = .serving }
        }
    }

    /// Sets a status and notifies watchers when it changed.
    /// - Parameters:
    ///   - status: the new status.
    ///   - service: the fully-qualified service name, or "" for the whole server.
    public func setStatus(_ status: ServingStatus, for service: String = "") {
        let toNotify: [AsyncStream<ServingStatus>.Continuation] = state.withLock { state in
            guard state.statuses[service] != status else { return [] }
            state.statuses[service] = status
            return state.watchers.values.filter { $0.service == service }.map(\.continuation)
        }
        toNotify.forEach { $0.yield(status) }
    }

    /// Sets every known service (and the server) to a status: used on shutdown and on losing the database.
    /// - Parameter status: the new status.
    public func setAll(_ status: ServingStatus) {
        let services = state.withLock { Array($0.statuses.keys) }
        for service in services { setStatus(status, for: service) }
    }

    /// The current status of a service, nil when unknown.
    /// - Parameter service: the service name.
    public func status(of service: String) -> ServingStatus? { state.withLock { $0.statuses[service] } }

    public func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard let status = status(of: request.service) else {
            throw RPCError(code: .notFound, message: "unknown service \(request.service)")
        }
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = status
        return response
    }

    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest,
        responses: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        let (stream, continuation) = AsyncStream<ServingStatus>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let (id, current): (Int, ServingStatus) = state.withLock { state in
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = (request.service, continuation)
            return (id, state.statuses[request.service] ?? .serviceUnknown)
        }
        defer { _ = state.withLock { $0.watchers.removeValue(forKey: id) } }
        continuation.onTermination = { _ in }
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = current
        try await responses.write(response)
        try await withTaskCancellationHandler {
            for await status in stream {
                response.status = status
                try await responses.write(response)
            }
        } onCancel: {
            continuation.finish()
        }
        throw CancellationError()
    }
}
