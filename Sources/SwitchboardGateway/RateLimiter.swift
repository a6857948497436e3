import Synchronization

/// Token buckets per tenant and route class, in this process's memory: with N gateway replicas a tenant gets up to
/// N times the rate (README). A tenant drawing its bucket empty is refused without touching any other tenant's.
public final class RateLimiter: Sendable {
    /// A bucket's rate and size.
    public struct Limit: Sendable, Hashable {
        /// Tokens added per second.
        public var perSecond: Double
        /// The bucket's size: the burst allowed after a quiet spell.
        public var burst: Double

        /// Creates a limit.
        /// - Parameters:
        ///   - perSecond: the sustained rate.
        ///   - burst: the bucket size.
        public init(perSecond: Double, burst: Double) {
            self.perSecond = perSecond
            self.burst = burst
        }
    }

    private struct Key: Hashable {
        var tenant: String
        var routeClass: RouteClass
    }

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let limits: [RouteClass: Limit]
    private let maxBuckets: Int
    private let buckets = Mutex<[Key: Bucket]>([:])

    /// Creates the limiter.
    /// - Parameters:
    ///   - limits: the limit of each class; a class without one is not limited.
    ///   - maxBuckets: the most buckets kept; past it, full (idle) buckets are dropped, so a stream of made-up tenants
    ///     cannot grow memory without bound.
    public init(limits: [RouteClass: Limit], maxBuckets: Int = 100_000) {
        self.limits = limits
        self.maxBuckets = maxBuckets
    }

    /// Takes one token.
    /// - Parameters:
    ///   - tenant: the caller's tenant.
    ///   - routeClass: the route's class.
    ///   - now: the current time.
    /// - Returns: nil when allowed, or how long until a token is available.
    public func acquire(tenant: String, routeClass: RouteClass, now: ContinuousClock.Instant = .now) -> Duration? {
        guard let limit = limits[routeClass], limit.perSecond > 0 else { return nil }
        let key = Key(tenant: tenant, routeClass: routeClass)
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: limit.burst, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(limit.burst, bucket.tokens + max(0, seconds) * limit.perSecond)
            bucket.updated = now
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                if buckets[key] == nil, buckets.count >= maxBuckets { Self.evict(&buckets, now: now, limits: limits) }
                buckets[key] = bucket
                return nil
            }
            buckets[key] = bucket
            return .milliseconds(Int64(((1 - bucket.tokens) / limit.perSecond * 1000).rounded(.up)))
        }
    }

    /// Drops buckets that have refilled (equivalent to absent); if none has, drops an arbitrary half.
    private static func evict(_ buckets: inout [Key: Bucket], now: ContinuousClock.Instant, limits: [RouteClass: Limit]) {
        let before = buckets.count
        buckets = buckets.filter { key, bucket in
            guard let limit = limits[key.routeClass] else { return false }
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return bucket.tokens + seconds * limit.perSecond < limit.burst
        }
        if buckets.count == before {
            var dropped = 0
            buckets = buckets.filter { _, _ in
                dropped += 1
                return dropped % 2 == 0
            }
        }
    }

    /// Buckets currently held (for tests and metrics).
    public var bucketCount: Int { buckets.withLock { $0.count } }
}
