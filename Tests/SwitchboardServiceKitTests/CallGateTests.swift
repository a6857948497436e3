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
        /// The entries once there are `count` of them (a call let in runs its body when its task is next scheduled).
        func first(_ count: Int) async throws -> [T] {
            for _ in 0..<2_000 where entries.withLock({ $0.count }) < count {
                try await Task.sleep(for: .milliseconds(1))
            }
            return all
        }
    }

    /// A call of key `name`'s first letter: logs `name` once inside the gate and stays until `hold` is released.
    static func call(_ gate: CallGate, _ name: String, _ hold: Held, _ entered: Log<String>) async throws {
        try await gate.run(key: String(name.prefix(1))) {
            entered.append(name)
            await hold.wait()
        }
    }

    /// A call of `key` that holds a place until its `Held` is released; returns once it is inside.
    func occupy(_ gate: CallGate, key: String) async throws -> (hold: Held, task: Task<Void, any Error>) {
        let hold = Held()
        let before = gate.load.inside
        let task = Task { try await gate.run(key: key) { await hold.wait() } }
        try await settle(gate, inside: before + 1, waiting: gate.load.waiting)
        return (hold, task)
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
        let gate = CallGate(name: "test", limit: 2, timeout: .seconds(60))
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
            #expect(try await entered.first(2) == [0, 1])
            holds[1].release.yield()
            try await settle(gate, inside: 2, waiting: 2)
            #expect(try await entered.first(3) == [0, 1, 2])
            holds[0].release.yield()
            try await settle(gate, inside: 2, waiting: 1)
            #expect(try await entered.first(4) == [0, 1, 2, 3])
            holds[2].release.yield()
            try await settle(gate, inside: 2, waiting: 0)
            #expect(try await entered.first(5) == [0, 1, 2, 3, 4])
            holds[3].release.yield()
            holds[4].release.yield()
            try await group.waitForAll()
        }
        #expect(gate.load == (0, 0))
    }

    @Test(
        "a key alone takes every place; while another key waits, it holds at most half: the other's later call goes in before its own"
    )
    func shareOfAKey() async throws {
        let gate = CallGate(name: "test", limit: 4, timeout: .seconds(60))
        #expect(gate.share == 2)
        let entered = Log<String>()
        let calls = ["a0", "a1", "a2", "a3", "a4", "b0", "a5"]
        let holds = calls.map { _ in Held() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, name) in calls.enumerated() {
                group.addTask { try await Self.call(gate, name, holds[i], entered) }
                try await settle(gate, inside: min(i + 1, 4), waiting: max(0, i - 3))
            }
            #expect(try await entered.first(4) == ["a0", "a1", "a2", "a3"])
            // a holds 3 of 4 while b0 waits: the free place goes to b0, past a4 and before a5.
            holds[0].release.yield()
            try await settle(gate, inside: 4, waiting: 2)
            #expect(try await entered.first(5) == ["a0", "a1", "a2", "a3", "b0"])
            // a holds 2 again and no other key waits: a4, then a5, in order.
            holds[1].release.yield()
            try await settle(gate, inside: 4, waiting: 1)
            #expect(try await entered.first(6) == ["a0", "a1", "a2", "a3", "b0", "a4"])
            holds[2].release.yield()
            try await settle(gate, inside: 4, waiting: 0)
            #expect(try await entered.first(7) == ["a0", "a1", "a2", "a3", "b0", "a4", "a5"])
            for i in 3..<calls.count { holds[i].release.yield() }
            try await group.waitForAll()
        }
        #expect(gate.load == (0, 0))
    }

    @Test("a cancelled waiter of another key no longer holds back a key at its share: that key's waiter takes the next place")
    func leavingWaiterFreesHeldBack() async throws {
        // Five places, three a key while another waits. a holds 3 and b 2; b2 and a3 wait (a3 held back by b2's wait and
        // a's share). b0 leaves: its place would go to b2 (b under its share); b2 is cancelled first, so a3 goes in.
        let gate = CallGate(name: "test", limit: 5, timeout: .seconds(60))
        #expect(gate.share == 3)
        let entered = Log<String>()
        let calls = ["a0", "a1", "a2", "b0", "b1"]
        let holds = calls.map { _ in Held() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, name) in calls.enumerated() {
                group.addTask { try await Self.call(gate, name, holds[i], entered) }
                try await settle(gate, inside: i + 1, waiting: 0)
            }
            let b2 = Task { try await gate.run(key: "b") { entered.append("b2") } }
            try await settle(gate, inside: 5, waiting: 1)
            let a3Hold = Held()
            let a3 = Task {
                try await gate.run(key: "a") {
                    entered.append("a3")
                    await a3Hold.wait()
                }
            }
            try await settle(gate, inside: 5, waiting: 2)
            b2.cancel()
            await #expect(throws: CancellationError.self) { try await b2.value }
            // a3 is alone in the queue now, but there is no room until a place frees.
            try await settle(gate, inside: 5, waiting: 1)
            holds[3].release.yield()
            try await settle(gate, inside: 5, waiting: 0)
            #expect(try await entered.first(6) == ["a0", "a1", "a2", "b0", "b1", "a3"])
            a3Hold.release.yield()
            try await a3.value
            for i in [0, 1, 2, 4] { holds[i].release.yield() }
            try await group.waitForAll()
        }
        #expect(gate.load == (0, 0))
    }

    @Test("a waiter cancelled leaves the queue with CancellationError and takes no place; a body's error frees its place")
    func cancellationAndErrors() async throws {
        let gate = CallGate(name: "test", limit: 1, timeout: .seconds(60))
        let (hold, holder) = try await occupy(gate, key: "t")
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
        let (other, otherHolder) = try await occupy(gate, key: "t")
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
        let gate = CallGate(name: "test", limit: 1, timeout: .milliseconds(30))
        let (hold, holder) = try await occupy(gate, key: "t")
        await #expect(throws: CallGate.Timeout.self) { try await gate.run(key: "u") { "ran" } }
        #expect(gate.load == (1, 0))
        hold.release.yield()
        try await holder.value
        #expect(gate.load == (0, 0))
    }
}
