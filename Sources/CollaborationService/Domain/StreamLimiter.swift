import Synchronization

/// Bounds how many calls of one kind run at once in this process (an upload holds a pool connection for as long as
/// its client takes to send it, so unbounded slow senders could take every connection), and how many of them one
/// tenant may hold: half the places, rounded up, so one tenant's slow senders cannot shut every other tenant out.
/// (A copy of the organization service's limiter: a candidate for the kit.)
public final class StreamLimiter: Sendable {
    /// Most at once.
    public let limit: Int
    /// Most at once for one tenant.
    public let perTenantLimit: Int
    private let state = Mutex<(total: Int, byTenant: [String: Int])>((0, [:]))

    /// Creates a limiter.
    /// - Parameters:
    ///   - limit: most calls at once (at least 1).
    ///   - perKeyLimit: most calls of one key (a tenant, or a tenant's user) at once; default half of `limit`, rounded up.
    public init(limit: Int, perKeyLimit: Int? = nil) {
        self.limit = max(1, limit)
        self.perTenantLimit = max(1, perKeyLimit ?? (self.limit + 1) / 2)
    }

    /// Runs `body` if fewer than ``limit`` calls are running, and fewer than ``perTenantLimit`` of `tenant`'s.
    /// - Throws: ``CollaborationError/tooManyStreams(limit:)`` with the limit that was reached, or what `body` throws.
    public func run<T>(tenant: String, _ body: () async throws -> T) async throws -> T {
        let refused: Int? = state.withLock { state in
            if state.total >= limit { return limit }
            if state.byTenant[tenant, default: 0] >= perTenantLimit { return perTenantLimit }
            state.total += 1
            state.byTenant[tenant, default: 0] += 1
            return nil
        }
        if let refused { throw CollaborationError.tooManyStreams(limit: refused) }
        defer {
            state.withLock { state in
                state.total -= 1
                let left = state.byTenant[tenant, default: 1] - 1
                state.byTenant[tenant] = left > 0 ? left : nil
            }
        }
        return try await body()
    }

    /// Calls running now.
    public var active: Int { state.withLock { $0.total } }
}
