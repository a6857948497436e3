import SwitchboardServiceKit
import Synchronization
import Testing

/// ``CallGate`` without I/O: places, order, a key's share, cancellation, the wait's bound.
@Suite("Call gate")
struct CallGateTests {
    /// A call held inside the gate until released.
    final class Held: Sendable {
        let stream: AsyncStream<Void>
        let release: AsyncStream<Void>.Continuation
        init() { (stream, release) = AsyncStream<Void>.makeStream() }
        func wait() async {
            for await _ in stream { return }
        }
    }

    /// What went in, in order.
    final class Log<T: Sendable>: Sendable {
        private let entries = Mutex<[T]>([])
        func append(_ entry: T) { entries.withLock { $0.append(entry) } }
        var all: [T] { entries.withLock { $0 } }
    }

    /// Waits (a bounded number of yields and short sleeps) until the gate shows `inside` and `waiting`.
    func settle(_ gate: CallGate, inside: Int, waiting: Int) async throws {
        for _ in 0..<2_000 {
            if gate.load == (inside, waiting) { return }
            try await Task.sleep(for: .milliseconds(1))
        }
        Issue.record("the gate shows \(gate.load), not (\(inside), \(waiting))")
    }

    @Test("at most the limit inside; the others go in, in arrival order, as places free")
    func limitAndOrder() async throws {
        let gate = CallGate(limit: 2, timeout: .seconds(60))
        let entered = Log<Int>()
        let holds = (0..<5).map { _ in Held() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<5 {
                group.addTask {
                    try await gate.run(key: "t\(i)") {
                        entered.append(i)
                        await holds[i].wait()
                    }
                }
                // Arrival order is the order of the calls.
                try await settle(gate, inside: min(i + 1, 2), waiting: max(0, i - 1))
            }
            #expect(entered.all == [0, 1])
            holds[1].release.yield()
            try await settle(gate, inside: 2, waiting: 2)
            #expect(entered.all == [0, 1, 2])
            holds[0].release.yield()
            holds[2].release.yield()
            try await settle(gate, inside: 2, waiting: 0)
            #expect(entered.all == [0, 1, 2, 3, 4])
            holds[3].release.yield()
            holds[4].release.yield()
            try await group.waitForAll()
        }
        #expect(gate.load == (0, 0))
    }

    @Test("one key holds at most half the places: another key's later call goes in before its waiting one")
    func shareOfAKey() async throws {
        let gate = CallGate(limit: 4, timeout: .seconds(60))
        #expect(gate.share == 2)
        let entered = Log<String>()
        let holds = (0..<4).map { _ in Held() }
        let calls = ["a0", "a1", "a2", "b0"]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, name) in calls.enumerated() {
                group.addTask {
                    try await gate.run(key: String(name.prefix(1))) {
                        entered.append(name)
                        await holds[i].wait()
                    }
                }
                try await settle(gate, inside: i < 2 ? i + 1 : (i == 2 ? 2 : 3), waiting: i >= 2 ? 1 : 0)
            }
            #expect(entered.all == ["a0", "a1", "b0"])
            // A free place goes to the waiting a2 once tenant a is under its share again.
            holds[0].release.yield()
            try await settle(gate, inside: 3, waiting: 0)
            #expect(entered.all == ["a0", "a1", "b0", "a2"])
            for i in 1..<4 { holds[i].release.yield() }
            try await group.waitForAll()
        }
        #expect(gate.load == (0, 0))
    }

    @Test("a waiter cancelled leaves the queue with CancellationError and takes no place; a body's error frees its place")
    func cancellationAndErrors() async throws {
        let gate = CallGate(limit: 1, timeout: .seconds(60))
        let hold = Held()
        let holder = Task { try await gate.run(key: "t") { await hold.wait() } }
        try await settle(gate, inside: 1, waiting: 0)
        let waiter = Task { try await gate.run(key: "u") { "ran" } }
        try await settle(gate, inside: 1, waiting: 1)
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(gate.load == (1, 0))
        hold.release.yield()
        try await holder.value
        struct Failure: Error {}
        await #expect(throws: Failure.self) { try await gate.run(key: "t") { throw Failure() } }
        #expect(try await gate.run(key: "t") { 7 } == 7)
        #expect(gate.load == (0, 0))
        // Cancelled before it asks, with no place free: it does not wait.
        let other = Held()
        let otherHolder = Task { try await gate.run(key: "t") { await other.wait() } }
        try await settle(gate, inside: 1, waiting: 0)
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await gate.run(key: "v") { "ran" }
        }
        await #expect(throws: CancellationError.self) { try await early.value }
        #expect(gate.load == (1, 0))
        other.release.yield()
        try await otherHolder.value
    }

    @Test("a waiter leaves with Timeout after the gate's timeout; the call inside is untouched")
    func timeout() async throws {
        let gate = CallGate(limit: 1, timeout: .milliseconds(30))
        let hold = Held()
        let holder = Task { try await gate.run(key: "t") { await hold.wait() } }
        try await settle(gate, inside: 1, waiting: 0)
        await #expect(throws: CallGate.Timeout.self) { try await gate.run(key: "u") { "ran" } }
        #expect(gate.load == (1, 0))
        hold.release.yield()
        try await holder.value
        #expect(gate.load == (0, 0))
    }
}
