import NIOCore

/// Runs Swift tasks' jobs on a NIO event loop.
///
/// Handler tasks prefer their connection's event loop: the request arrives there and the response leaves from there,
/// so a call costs no cross-thread wake-up in either direction. Handlers still run as ordinary Swift tasks; a
/// handler that does blocking work must move it elsewhere, exactly as it must on the cooperative pool.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: immutable after init; EventLoop is itself thread-safe for `execute`.
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { [self] in
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
