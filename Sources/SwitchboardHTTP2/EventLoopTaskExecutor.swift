import NIOCore

/// Runs Swift tasks' jobs on a NIO event loop.
///
/// Handler tasks prefer their connection's event loop (and the gateway's connection tasks theirs): the request
/// arrives there and the response leaves from there, so a call costs no cross-thread wake-up in either direction.
/// Handlers still run as ordinary Swift tasks; a handler that does blocking work must move it elsewhere, exactly as
/// it must on the cooperative pool.
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: immutable after init; EventLoop is itself thread-safe for `execute`.
    /// The loop the jobs run on.
    public let eventLoop: any EventLoop

    /// Creates the executor of one loop.
    /// - Parameter eventLoop: the loop.
    public init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    /// Runs the job on the loop (from the loop itself: after what the loop is running now; no thread is woken).
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { [self] in
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
