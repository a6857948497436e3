import FoundationEssentials
import Logging
import Metrics
import ServiceLifecycle
import SwitchboardPostgres

/// Sends due messages through the provider: claims due sends (`FOR UPDATE SKIP LOCKED` with leases, so replicas and
/// restarts never send one twice at once), checks consent again at send time, calls the provider, and records the
/// outcome with backoff for retryable failures. A send due inside its contact's quiet hours goes back to SCHEDULED
/// until they end.
///
/// Shutdown: on SIGTERM (graceful shutdown) the dispatcher claims nothing more, but every provider call already
/// started runs to its end **and its result is recorded**: the call and the recording run in an unstructured task
/// that the service's cancellation does not reach, and the loop waits for it. Were the recording cancelled, the
/// lease would expire and a restart would call the provider again. After SIGKILL the lease does expire; the send is
/// claimed again and posted with the same idempotency key and the same bytes, which the provider deduplicates.
public struct Dispatcher: Service {
    /// Tuning.
    public struct Configuration: Sendable, Hashable {
        /// How often to look for due sends when the last look found none.
        public var pollInterval: Duration = .milliseconds(500)
        /// Sends claimed (and sent concurrently) per round; at most half the database pool.
        public var batchSize = 16
        /// How long a claim holds a send: longer than a provider call can take (the call's timeout), so a live
        /// dispatcher never loses its send to another.
        public var leaseSeconds = 60
        /// Backoff of retryable failures: the first delay and the largest, before jitter.
        public var initialBackoff = 2.0, maxBackoff = 600.0

        /// The defaults.
        public init() {}
    }

    let store: PostgresDispatchStore
    let provider: ProviderAdapter
    let configuration: Configuration
    let logger: Logger

    /// Creates the dispatcher.
    public init(store: PostgresDispatchStore, provider: ProviderAdapter, configuration: Configuration, logger: Logger) {
        self.store = store
        self.provider = provider
        self.configuration = configuration
        self.logger = logger
    }

    /// The delay before retry `attempt + 1`: exponential from ``Configuration/initialBackoff``, capped, with full jitter
    /// in its upper half (replicas that failed together do not return together), and never before Retry-After.
    public static func backoff(attempt: Int, retryAfter: Double?, configuration: Configuration) -> Double {
        let exponential = min(configuration.maxBackoff, configuration.initialBackoff * Double(1 << max(0, min(attempt - 1, 30))))
        let jittered = exponential * Double.random(in: 0.5...1.0)
        return max(jittered, retryAfter ?? 0)
    }

    /// Runs until graceful shutdown or cancellation.
    public func run() async throws {
        let sent = Counter(label: "communication_sends_total", dimensions: [("outcome", "sent")])
        // Each send in flight takes a connection at a time (consent check, recording): at most half the pool, so the
        // service's calls (and the campaign runner) always find connections while a backlog drains. A batch as wide as
        // the pool starved them (UNAVAILABLE after the pool's acquire timeout under load).
        let width = max(1, min(configuration.batchSize, store.pool.configuration.maxConnections / 2))
        logger.info("dispatcher started", metadata: ["owner": "\(store.owner)"])
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            var claimed: [ClaimedSend] = []
            do {
                try await store.failExhausted()
                claimed = try await store.claim(limit: width, leaseSeconds: configuration.leaseSeconds)
            } catch {
                logger.warning("dispatcher could not claim sends", metadata: ["error": "\(error)"])
            }
            if !claimed.isEmpty {
                // Not a task group: its children would be cancelled with the service. Unstructured tasks finish their
                // call and its recording whatever happens to this loop, and the loop waits for them.
                let work = claimed.map { send in Task { await self.dispatch(send) } }
                for task in work where await task.value { sent.increment() }
                continue
            }
            try? await Task.sleep(for: configuration.pollInterval)
        }
        logger.info("dispatcher stopped")
    }

    /// One attempt of one send, recorded.
    /// - Returns: whether the provider accepted it.
    func dispatch(_ send: ClaimedSend) async -> Bool {
        let outcome: DispatchOutcome
        do {
            switch try await store.verdict(for: send) {
            case .send: break
            case .refuse(let reason):
                outcome = .refused(reason: reason)
                await record(outcome, send)
                return false
            case .hold:
                do {
                    // False when the window ended in between: the send goes now.
                    if try await store.holdForQuietHours(send) { return false }
                } catch {
                    logger.warning("quiet hours could not be checked before a send", metadata: ["send_id": "\(send.id)", "error": "\(error)"])
                    await record(.retry(reason: "the contact's quiet hours could not be checked", delaySeconds: configuration.initialBackoff), send)
                    return false
                }
            }
        } catch {
            // Suppression or consent unknown (database trouble): do not send; try again shortly (the claim counted an
            // attempt, so a database that stays down ends in FAILED rather than a loop).
            // The reason is stored and shown through GetSend and the feed: the database's own words stay in the log.
            logger.warning("consent could not be checked before a send", metadata: ["send_id": "\(send.id)", "error": "\(error)"])
            await record(
                .retry(reason: "consent could not be checked (the database was unavailable)", delaySeconds: configuration.initialBackoff), send)
            return false
        }
        switch await provider.deliver(id: send.id, payload: send.payload, attempt: send.attempt) {
        case .accepted(let messageID): outcome = .sent(providerMessageID: messageID)
        case .rejected(let reason): outcome = .failed(reason: reason)
        case .retryable(let reason, let retryAfter):
            outcome = .retry(reason: reason, delaySeconds: Self.backoff(attempt: send.attempt, retryAfter: retryAfter, configuration: configuration))
        }
        await record(outcome, send)
        if case .sent = outcome { return true }
        return false
    }

    /// Records an outcome, retrying briefly on database errors: a provider call whose result is lost is called again
    /// when the lease expires, which the provider deduplicates, but it costs a second call.
    private func record(_ outcome: DispatchOutcome, _ send: ClaimedSend) async {
        for attempt in 1...5 {
            do {
                let recorded = try await store.record(outcome, for: send)
                if !recorded {
                    logger.warning("a send's result was not recorded: its lease passed to another dispatcher", metadata: ["send_id": "\(send.id)"])
                }
                return
            } catch {
                logger.warning("recording a send's result failed", metadata: ["send_id": "\(send.id)", "error": "\(error)", "attempt": "\(attempt)"])
                try? await Task.sleep(for: .milliseconds(200 * attempt))
            }
        }
    }
}
