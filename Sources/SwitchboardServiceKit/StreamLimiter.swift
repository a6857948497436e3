import SwitchboardRPC
import Synchronization

/// Bounds how many calls of one kind run at once in this process, and how many of them one key (a tenant, or a
/// tenant's user) may hold: a call that holds a pool connection or a live stream for as long as its client takes
/// (a tree streamed to a slow reader, an upload from a slow sender, a notification subscription) could otherwise take
/// every connection, and one tenant's slow clients could shut every other tenant out.
public final class StreamLimiter: Sendable {
    /// Most at once.
    public let limit: Int
    /// Most at once for one key.
    public let perTenantLimit: Int
    /// What the calls are, for the refusal's message ("uploads", "organization tree streams").
    public let what: String
    private let state = Mutex<(total: Int, byKey: [String: Int])>((0, [:]))

    /// Creates a limiter.
    /// - Parameters:
    ///   - limit: most calls at once (at least 1).
    ///   - perKeyLimit: most calls of one key at once; default half of `limit`, rounded up.
    ///   - what: what the calls are, in a refusal's message.
    public init(limit: Int, perKeyLimit: Int? = nil, what: String) {
        self.limit = max(1, limit)
        self.perTenantLimit = max(1, perKeyLimit ?? (self.limit + 1) / 2)
        self.what = what
    }

    /// Runs `body` if fewer than ``limit`` calls are running, and fewer than ``perTenantLimit`` of `tenant`'s (a key).
    /// - Throws: ``TooManyStreams`` with the limit that was reached, or what `body` throws.
    public func run<T>(tenant: String, _ body: () async throws -> T) async throws -> T {
        let refused: Int? = state.withLock { state in
            if state.total >= limit { return limit }
            if state.byKey[tenant, default: 0] >= perTenantLimit { return perTenantLimit }
            state.total += 1
            state.byKey[tenant, default: 0] += 1
            return nil
        }
        if let refused { throw TooManyStreams(limit: refused, what: what) }
        defer {
            state.withLock { state in
                state.total -= 1
                let left = state.byKey[tenant, default: 1] - 1
                state.byKey[tenant] = left > 0 ? left : nil
            }
        }
        return try await body()
    }

    /// Calls running now.
    public var active: Int { state.withLock { $0.total } }
}

/// A call refused by a ``StreamLimiter``: RESOURCE_EXHAUSTED, worth retrying shortly.
public struct TooManyStreams: Error, Sendable, Hashable, RPCErrorConvertible {
    /// The limit that was reached (the process's or the key's).
    public var limit: Int
    /// What the calls are.
    public var what: String

    /// Creates the error.
    public init(limit: Int, what: String) {
        self.limit = limit
        self.what = what
    }

    /// RESOURCE_EXHAUSTED naming the limit.
    public var rpcError: RPCError {
        RPCError(code: .resourceExhausted, message: "at most \(limit) \(what) run at once here (for this server, or for you); retry shortly")
    }
}
