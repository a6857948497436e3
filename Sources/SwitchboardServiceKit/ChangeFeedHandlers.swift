import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC

/// Bounds on what a feed request may name.
enum FeedRequestLimits {
    /// Most `resource_types` entries.
    static let maxResourceTypes = 16
    /// Longest `resource_types` entry.
    static let maxResourceTypeBytes = 128

    static func check(_ resourceTypes: [String]) throws {
        guard resourceTypes.count <= maxResourceTypes else {
            throw InvalidRequest("resource_types", "at most \(maxResourceTypes) values", reason: "TOO_MANY")
        }
        if let i = resourceTypes.firstIndex(where: { $0.utf8.count > maxResourceTypeBytes }) {
            throw InvalidRequest("resource_types[\(i)]", "must be at most \(maxResourceTypeBytes) bytes", reason: "TOO_LONG")
        }
    }
}

/// A service's `WatchChanges`: the caller's tenant's changes after `from_sequence`, then live ones. Every service's
/// handler answers its `WatchChanges` RPC with ``watch(_:responses:context:)``.
public struct TenantChangeWatcher: Sendable {
    let feed: ChangeFeed
    let pool: PostgresPool
    let notifier: ChangeNotifier
    /// Bytes of stored resources one replay batch reads at most.
    public var batchBytes: Int

    /// Creates the watcher (the kit makes it; see ``ServiceDependencies/changes``).
    init(feed: ChangeFeed, pool: PostgresPool, notifier: ChangeNotifier, batchBytes: Int = 1 << 20) {
        self.feed = feed
        self.pool = pool
        self.notifier = notifier
        self.batchBytes = batchBytes
    }

    /// Validates the request and streams the changes until the caller cancels.
    /// - Throws: ``InvalidRequest`` for a negative `from_sequence` or too many or too long resource types.
    public func watch(
        _ request: Switchboard_Common_V1_WatchChangesRequest, responses: RPCWriter<Switchboard_Common_V1_ChangeEvent>,
        context: ServerContext
    ) async throws {
        guard request.fromSequence >= 0 else { throw InvalidRequest("from_sequence", "must not be negative") }
        try FeedRequestLimits.check(request.resourceTypes)
        try await feed.watch(
            tenantID: try context.actor().tenantID, from: request.fromSequence, resourceTypes: request.resourceTypes, pool: pool,
            notifier: notifier, writer: responses, batchBytes: batchBytes)
    }
}

/// `switchboard.common.v1.ChangeFeedService`: every tenant's changes for service identities, which the kit's
/// access policy admits to nothing else.
struct CrossTenantFeedHandler: Switchboard_Common_V1_ChangeFeedService_ServiceProtocol {
    let feed: ChangeFeed
    let pool: PostgresPool
    let notifier: ChangeNotifier
    let batchBytes: Int

    func watchAllChanges(
        request: Switchboard_Common_V1_WatchAllChangesRequest, responses: RPCWriter<Switchboard_Common_V1_ChangeBatch>,
        context: ServerContext
    ) async throws {
        guard let cursor = FeedCursor(request.afterCursor) else {
            throw InvalidRequest("after_cursor", "is not a cursor this feed issued", reason: "INVALID_FORMAT")
        }
        try FeedRequestLimits.check(request.resourceTypes)
        try await feed.watchAll(
            after: cursor, resourceTypes: request.resourceTypes, pool: pool, notifier: notifier, writer: responses,
            batchBytes: batchBytes)
    }
}

/// Database failures that reach the RPC layer become statuses: an unreachable database or an exhausted pool is
/// UNAVAILABLE (retry later), a deadlock or serialization failure that outlived its retries ABORTED, anything else INTERNAL with a generic message (the cause is logged, never sent). A
/// conformance rather than an interceptor: it costs nothing on calls that succeed (an interceptor added an async
/// frame to every call). Handlers and domains therefore never see PostgreSQL error types.
extension PostgresError: RPCErrorConvertible {
    /// The status the caller gets.
    public var rpcError: RPCError {
        if isConnectionFailure || kind == .poolTimeout || kind == .poolClosed {
            return RPCError(code: .unavailable, message: "the service's database is unavailable; retry later", cause: self)
        }
        // Still failing after the transaction's own retries: the caller may try again, as gRPC's ABORTED says.
        if isRetryableTransactionFailure {
            return RPCError(code: .aborted, message: "the request conflicted with concurrent changes; retry it", cause: self)
        }
        return RPCError(code: .internal, message: "the service failed to process the request", cause: self)
    }
}
