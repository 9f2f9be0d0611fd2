// Loopback ports for tests that start servers on a port they choose.
#if canImport(Glibc)
import Glibc
#endif

/// Whether `port` on 127.0.0.1 can be bound for TCP (or UDP) right now.
package func canBindLoopback(_ port: UInt16, udp: Bool) -> Bool {
    let fd = socket(AF_INET, Int32(udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = port.bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// A random port free on 127.0.0.1 for TCP (or UDP, or both), below the kernel's ephemeral range
/// (32768–60999 here): a port taken from that range can be grabbed by any concurrent connect()
/// before the process under test binds it, and parallel suites connect a lot. Nil if 200 tries fail.
package func freeLoopbackPort(udp: Bool = false, tcp: Bool = true) -> UInt16? {
    for _ in 0..<200 {
        let port = UInt16.random(in: 20000..<32700)
        if (!tcp || canBindLoopback(port, udp: false)) && (!udp || canBindLoopback(port, udp: true)) { return port }
    }
    return nil
}
