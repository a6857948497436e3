// Waits on the sockets of connections with a pipeline in flight and hands each ready one back to its connection.
// One thread for the whole process, blocked in epoll_wait: the caller arms a socket (EPOLLONESHOT) after sending,
// without waking anyone, so the only wake-ups on a query's path are the server's answer and the caller's resume.
private import CLibPQ
import Foundation

final class LibPQPoller: @unchecked Sendable {
    // @unchecked: `epoll` is a kernel object, safe to use from any thread; the rest is immutable.
    static let shared = LibPQPoller()

    private let epoll: Int32

    private init() {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epoll >= 0, "epoll_create1 failed: errno \(errno)")
        let thread = Thread { [epoll] in Self.run(epoll) }
        thread.name = "switchboard.postgres.poller"
        thread.start()
    }

    /// Asks for one `socketReady()` call when the socket can be read (and written, if `write`). The connection stays
    /// alive until then: the registration holds a reference, released when the event is delivered.
    func arm(_ connection: LibPQConnection, socket: Int32, write: Bool, first: Bool) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLONESHOT.rawValue | (write ? EPOLLOUT.rawValue : 0)
        event.data.ptr = Unmanaged.passRetained(connection).toOpaque()
        var rc = epoll_ctl(epoll, first ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, socket, &event)
        if rc != 0, errno == ENOENT || errno == EEXIST {
            rc = epoll_ctl(epoll, errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, socket, &event)
        }
        if rc != 0 {
            // A closed socket: let the connection find out (its next read fails) rather than wait forever.
            let retained = Unmanaged<LibPQConnection>.fromOpaque(event.data.ptr!)
            DispatchQueue.global().async {
                retained.takeRetainedValue().socketReady()
            }
        }
    }

    private static func run(_ epoll: Int32) {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while true {
            let n = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), -1) }
            if n < 0 {
                if errno == EINTR { continue }
                fatalError("epoll_wait failed: errno \(errno)")
            }
            for i in 0..<Int(n) {
                guard let pointer = events[i].data.ptr else { continue }
                Unmanaged<LibPQConnection>.fromOpaque(pointer).takeRetainedValue().socketReady()
            }
        }
    }
}
