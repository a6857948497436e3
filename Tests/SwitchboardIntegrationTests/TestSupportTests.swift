import Foundation
import SwitchboardTestSupport
import Synchronization
import Testing

/// The test support's own promises that other suites rely on.
@Suite("Test support")
struct TestSupportTests {
    @Test("blocking waits run on threads of their own: the cooperative pool keeps serving tasks meanwhile")
    func blockingWaitsLeaveThePoolFree() async throws {
        // More blocked waits than the pool has threads (one per core): run on the pool itself, they would hold every
        // thread, and the probe below would run only after them.
        let waits = ProcessInfo.processInfo.activeProcessorCount + 2
        let finished = Finished()
        async let blocked: Void = withTaskGroup(of: Void.self) { group in
            for _ in 0..<waits {
                group.addTask {
                    await onOwnThread {
                        Thread.sleep(forTimeInterval: 1)
                        finished.count.withLock { $0 += 1 }
                    }
                }
            }
        }
        // Give the waits time to start, then ask the pool for a task of its own.
        try await Task.sleep(for: .milliseconds(200))
        let finishedWhenProbed = await Task.detached { finished.count.withLock { $0 } }.value
        await blocked
        #expect(finishedWhenProbed == 0, "the probe ran only after \(finishedWhenProbed) blocked waits had ended")
        #expect(finished.count.withLock { $0 } == waits)
        // The same for a child process: `runProcess` waits for `sleep` off the pool.
        let (status, _) = try await runProcess("/bin/sleep", ["0.1"])
        #expect(status == 0)
    }

    private final class Finished: Sendable {
        let count = Mutex(0)
    }
}
