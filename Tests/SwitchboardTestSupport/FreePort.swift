#if canImport(Glibc)
    import Glibc
#endif

/// A loopback TCP port nothing listens on now: the kernel's choice for a socket bound to port 0, closed again. For a
/// child process that must be given its port (a service executable): a port derived from another server's (its port
/// plus 1000) landed on a port a concurrent test's server held.
/// - Returns: the port; nil when no socket could be bound.
public func freePort() -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0 else { return nil }
    let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    guard named == 0 else { return nil }
    return Int(UInt16(bigEndian: address.sin_port))
}
