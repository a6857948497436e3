// Waits on the sockets of connections that use the non-blocking path and hands each ready one back to its
// connection. One thread for the whole process, blocked in epoll_wait. A socket is registered once (level-triggered
// EPOLLIN) when its connection first sends a pipeline, so sending costs no system call beyond the send itself, and
// the only wake-ups on a query's path are the server's answer and the caller's resume. (Re-arming a one-shot
// registration per query cost 3% of GetContact's CPU.)
private import CLibPQ
import FoundationEssentials
import Glibc
import Synchronization

final class LibPQPoller: Sendable {
    static let shared = LibPQPoller()

    private let epoll: Int32
    /// Registered connections by the id in their epoll data: weak, so a connection's lifetime is its owner's, and an
    /// event that races with a connection's end finds nothing instead of freed memory.
    private let connections = Mutex<(nextID: UInt64, byID: [UInt64: WeakConnection])>((1, [:]))

    private struct WeakConnection: @unchecked Sendable {
        // @unchecked: only read under the `connections` lock; the referent is itself Sendable.
        weak var connection: LibPQConnection?
    }

    private init() {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epoll >= 0, "epoll_create1 failed: errno \(errno)")
        // A plain pthread: the poller lives as long as the process.
        var thread = pthread_t()
        let started = pthread_create(
            &thread, nil,
            { argument in
                let poller = Unmanaged<LibPQPoller>.fromOpaque(argument!).takeRetainedValue()
                poller.run()
                return nil
            }, Unmanaged.passRetained(self).toOpaque())
        precondition(started == 0, "pthread_create failed: \(started)")
        pthread_detach(thread)
    }

    /// Starts watching a connection's socket for input. - Returns: the registration's id.
    func register(_ connection: LibPQConnection, socket: Int32) -> UInt64? {
        let id = connections.withLock { state -> UInt64 in
            defer { state.nextID += 1 }
            state.byID[state.nextID] = WeakConnection(connection: connection)
            return state.nextID
        }
        guard control(EPOLL_CTL_ADD, socket: socket, id: id, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue) else {
            _ = connections.withLock { $0.byID.removeValue(forKey: id) }
            return nil
        }
        return id
    }

    /// Changes what to wait for: input, input and output (a send that did not fit), or nothing (while the
    /// connection runs a blocking call on its own thread).
    @discardableResult
    func watch(socket: Int32, id: UInt64, input: Bool, output: Bool) -> Bool {
        let events = (input ? EPOLLIN.rawValue | EPOLLRDHUP.rawValue : 0) | (output ? EPOLLOUT.rawValue : 0)
        return control(EPOLL_CTL_MOD, socket: socket, id: id, events: events)
    }

    /// Stops watching (the connection is closing).
    func unregister(socket: Int32, id: UInt64) {
        _ = control(EPOLL_CTL_DEL, socket: socket, id: id, events: 0)
        _ = connections.withLock { $0.byID.removeValue(forKey: id) }
    }

    private func control(_ operation: Int32, socket: Int32, id: UInt64, events: UInt32) -> Bool {
        var event = epoll_event()
        event.events = events
        event.data.u64 = id
        return epoll_ctl(epoll, operation, socket, &event) == 0
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while true {
            let n = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), -1) }
            if n < 0 {
                if errno == EINTR { continue }
                fatalError("epoll_wait failed: errno \(errno)")
            }
            for i in 0..<Int(n) {
                let id = events[i].data.u64
                let connection = connections.withLock { $0.byID[id]?.connection }
                connection?.socketReady()
            }
        }
    }
}
