import FoundationEssentials
import Logging
import ServiceLifecycle
import SwitchboardServiceKit

/// Runs scheduled reports when they fall due: every `interval` it runs the due reports of every tenant (a replica
/// claims each run with a conditional update, so replicas share the work and none runs a period twice) and publishes
/// each run as a ReportRun on analytics' feed.
public struct ReportScheduler: Service {
    let domain: AnalyticsDomain
    let spec: @Sendable (StoredDefinition) throws -> ReportSpec
    let interval: Duration
    let logger: Logger
    /// Reports one scan runs at most.
    static let batch = 20

    /// Creates the scheduler.
    /// - Parameters:
    ///   - domain: the use cases.
    ///   - spec: a stored report's definition.
    ///   - interval: the time between scans.
    ///   - logger: where failures go.
    public init(domain: AnalyticsDomain, spec: @escaping @Sendable (StoredDefinition) throws -> ReportSpec, interval: Duration, logger: Logger) {
        self.domain = domain
        self.spec = spec
        self.interval = interval
        self.logger = logger
    }

    /// Scans until shutdown; a failed scan is logged and retried at the next tick.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    while try await domain.runDueReports(limit: Self.batch, spec: spec) == Self.batch {}
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("scheduled report runs failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
