import AnalyticsService
import Foundation
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// Every RPC against the role just below the one it needs (PERMISSION_DENIED) and the one it needs (anything but
/// PERMISSION_DENIED or UNAUTHENTICATED: a minimal request may well be INVALID_ARGUMENT or NOT_FOUND).
@Suite("Analytics: the role matrix", .serialized)
final class AuthMatrixTests {
    let harness: AnalyticsHarness

    init() async throws { harness = try await AnalyticsHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    typealias Call = @Sendable (AnalyticsStub, CallOptions) async throws -> Void

    static func drain<T>(_ stream: RPCAsyncSequence<T>) async throws { for try await _ in stream {} }

    static let calls: [(String, Role, Call)] = [
        ("GetTimeline", .readOnly, { _ = try await $0.getTimeline(.init(), options: $1) }),
        ("WatchTimeline", .readOnly, { _ = try await $0.watchTimeline(.init(), options: $1) { try await drain($0) } }),
        ("GetContactMetrics", .readOnly, { _ = try await $0.getContactMetrics(.init(), options: $1) }),
        ("GetContactSummary", .readOnly, { _ = try await $0.getContactSummary(.init(), options: $1) }),
        ("GetActivityStats", .readOnly, { _ = try await $0.getActivityStats(.init(), options: $1) }),
        ("GetLifecycleFunnel", .readOnly, { _ = try await $0.getLifecycleFunnel(.init(), options: $1) }),
        ("ListTop", .readOnly, { _ = try await $0.listTop(.init(), options: $1) }),
        ("GetDataCompleteness", .readOnly, { _ = try await $0.getDataCompleteness(.init(), options: $1) }),
        ("GetScoringModel", .readOnly, { _ = try await $0.getScoringModel(.init(), options: $1) }),
        ("SetScoringModel", .manager, { _ = try await $0.setScoringModel(.init(), options: $1) }),
        ("GetEngagementScore", .readOnly, { _ = try await $0.getEngagementScore(.init(), options: $1) }),
        ("CreateReport", .user, { _ = try await $0.createReport(.init(), options: $1) }),
        ("GetReport", .readOnly, { _ = try await $0.getReport(.init(), options: $1) }),
        ("ListReports", .readOnly, { _ = try await $0.listReports(.init(), options: $1) }),
        ("DeleteReport", .user, { _ = try await $0.deleteReport(.init(), options: $1) }),
        ("RunReport", .readOnly, { _ = try await $0.runReport(.init(), options: $1) { try await drain($0) } }),
        ("ExportReport", .readOnly, { _ = try await $0.exportReport(.init(), options: $1) { try await drain($0) } }),
        ("CreateDashboard", .user, { _ = try await $0.createDashboard(.init(), options: $1) }),
        ("GetDashboard", .readOnly, { _ = try await $0.getDashboard(.init(), options: $1) }),
        ("GetDashboardData", .readOnly, { _ = try await $0.getDashboardData(.init(), options: $1) }),
        ("CreateAlert", .manager, { _ = try await $0.createAlert(.init(), options: $1) }),
        ("ListAlerts", .readOnly, { _ = try await $0.listAlerts(.init(), options: $1) }),
        ("DeleteAlert", .manager, { _ = try await $0.deleteAlert(.init(), options: $1) }),
        ("WatchChanges", .readOnly, { _ = try await $0.watchChanges(.init(), options: $1) { try await drain($0) } }),
        ("ExportSubject", .admin, { _ = try await $0.exportSubject(.init(), options: $1) { try await drain($0) } }),
    ]

    @Test("every RPC of the service is in the matrix")
    func complete() {
        #expect(Self.calls.count == AnalyticsService.description.requiredRoles.count)
        #expect(Set(Self.calls.map(\.0)) == Set(AnalyticsService.description.requiredRoles.keys.map(\.method)))
    }

    @Test("below its role every RPC is PERMISSION_DENIED, at its role it is not; without a token UNAUTHENTICATED")
    func matrix() async throws {
        let t = tenant()
        let stub = AnalyticsStub(client: RPCClient(transport: harness.analytics.channel))
        func options(_ roles: [Role], timeout: Duration) async throws -> CallOptions {
            var options = try await harness.analytics.options(tenant: t, roles: roles)
            options.timeout = timeout
            return options
        }
        for (name, role, call) in Self.calls {
            let below: [Role] = Role.allCases.filter { $0 < role }.suffix(1)
            // A refusal comes at once: a deadline as long as the anonymous call's, so a loaded machine cannot turn it
            // into DEADLINE_EXCEEDED (it did once at 700 ms, with the whole test suite running).
            let denied = await rpcError { try await call(stub, try await options(below, timeout: .seconds(5))) }
            #expect(denied?.code == .permissionDenied, "\(name) as \(below.map(\.rawValue)): \(String(describing: denied))")
            // Streams that would stay open end at the deadline.
            let allowed = await rpcError { try await call(stub, try await options([role], timeout: .milliseconds(700))) }
            #expect(
                allowed?.code != .permissionDenied && allowed?.code != .unauthenticated, "\(name) as \(role.rawValue): \(String(describing: allowed))"
            )
            let anonymous = await rpcError { try await call(stub, CallOptions(timeout: .seconds(5))) }
            #expect(anonymous?.code == .unauthenticated, "\(name) without a token: \(String(describing: anonymous))")
        }
    }
}
