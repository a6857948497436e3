import Synchronization

/// The order in which one import's batches take addresses: batch `i` takes them once batches 0 … i-1 have ended
/// (written or failed). Batches run two at a time, and without an order the later one could commit first: a row would
/// then be reported the duplicate of a later row's contact, and a dry run could not say what the import does.
///
/// A batch waits for its turn holding a database connection (its new contacts are in its transaction). So that no batch
/// waits for one that cannot get a connection, batches also take connections in order: batch `i` asks the pool for one
/// once batches 0 … i-1 hold theirs (or have ended), and a batch keeps its connection until it ends, attempts again
/// included. The first batch of the import that has not ended then always holds a connection and never waits for a turn.
public final class ImportTurns: Sendable {
    /// Batches that reached a point, in index order.
    private struct Order {
        /// Every batch before it has reached the point.
        var next = 0
        var reached: Set<Int> = []
        var waiting: [Int: CheckedContinuation<Void, Never>] = [:]

        /// Whether `index` may go on now; otherwise `continuation` waits for it.
        mutating func wait(for index: Int, _ continuation: CheckedContinuation<Void, Never>) -> Bool {
            if next >= index { return true }
            waiting[index] = continuation
            return false
        }

        /// Marks `index` reached (again is nothing), and returns the waiters that may go on.
        mutating func reach(_ index: Int) -> [CheckedContinuation<Void, Never>] {
            guard index >= next else { return [] }
            reached.insert(index)
            var resumed: [CheckedContinuation<Void, Never>] = []
            while reached.remove(next) != nil {
                next += 1
                if let continuation = waiting.removeValue(forKey: next) { resumed.append(continuation) }
            }
            return resumed
        }
    }

    private struct State {
        var ended = Order()
        var connected = Order()
    }
    private let state = Mutex(State())

    /// No batch ended yet.
    public init() {}

    /// Batch `index`'s turns, for the store.
    public func turn(_ index: Int) -> ImportTurn {
        ImportTurn(
            connect: { await self.waitToConnect(for: index) }, connected: { self.connected(index) },
            write: { await self.wait(for: index) })
    }

    /// Returns once every batch before `index` has ended.
    public func wait(for index: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if state.withLock({ $0.ended.wait(for: index, continuation) }) { continuation.resume() }
        }
    }

    /// Returns once every batch before `index` holds a connection or has ended.
    public func waitToConnect(for index: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if state.withLock({ $0.connected.wait(for: index, continuation) }) { continuation.resume() }
        }
    }

    /// Marks batch `index` holding its connection.
    public func connected(_ index: Int) {
        for continuation in state.withLock({ $0.connected.reach(index) }) { continuation.resume() }
    }

    /// Marks batch `index` ended (it holds no connection any more, and it may never have got one), and lets the batch
    /// after the ended ones go on.
    public func end(_ index: Int) {
        let resumed = state.withLock { state in state.connected.reach(index) + state.ended.reach(index) }
        for continuation in resumed { continuation.resume() }
    }
}

/// One batch's place in its import's order (``ImportTurns/turn(_:)``), as the store uses it.
public struct ImportTurn: Sendable {
    /// Returns when the batch may ask the pool for its connection.
    public let connect: @Sendable () async -> Void
    /// Records that the batch holds its connection.
    public let connected: @Sendable () -> Void
    /// Returns when the batch may take addresses: the import's earlier batches have ended.
    public let write: @Sendable () async -> Void

    /// A turn of its own.
    /// - Parameters:
    ///   - connect: returns when the batch may ask for a connection.
    ///   - connected: called once the batch holds one.
    ///   - write: returns when the batch may take addresses.
    public init(
        connect: @escaping @Sendable () async -> Void, connected: @escaping @Sendable () -> Void, write: @escaping @Sendable () async -> Void
    ) {
        self.connect = connect
        self.connected = connected
        self.write = write
    }

    /// A batch outside any order (alone, or in a test): nothing waits.
    public static let free = ImportTurn(connect: {}, connected: {}, write: {})
}
