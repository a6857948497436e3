import Synchronization

/// The order in which one import's batches take addresses: batch `i` takes them once batches 0 … i-1 have ended
/// (written or failed). Batches run two at a time, and without an order the later one could commit first: a row would
/// then be reported the duplicate of a later row's contact, and a dry run could not say what the import does.
public final class ImportTurns: Sendable {
    private struct State {
        /// Every batch before it has ended.
        var next = 0
        var ended: Set<Int> = []
        var waiting: [Int: CheckedContinuation<Void, Never>] = [:]
    }
    private let state = Mutex(State())

    /// No batch ended yet.
    public init() {}

    /// Returns once every batch before `index` has ended.
    public func wait(for index: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state in
                if state.next >= index { return true }
                state.waiting[index] = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Marks batch `index` ended, and lets the batch after the ended ones go on.
    public func end(_ index: Int) {
        let resumed = state.withLock { state in
            state.ended.insert(index)
            var resumed: [CheckedContinuation<Void, Never>] = []
            while state.ended.remove(state.next) != nil {
                state.next += 1
                if let continuation = state.waiting.removeValue(forKey: state.next) { resumed.append(continuation) }
            }
            return resumed
        }
        for continuation in resumed { continuation.resume() }
    }
}
