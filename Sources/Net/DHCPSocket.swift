// DHCPSocket: one DHCP request/response round on a named interface (for the `dhcp` DNS server,
// sing-box dns/transport/dhcp). A UDP socket on port 68, bound to the interface (SO_BINDTODEVICE),
// broadcasts to 255.255.255.255:67 and waits for a datagram the caller accepts. The wait runs on
// NIO's blocking thread pool, never on an event loop or the cooperative pool.
package import Adapter
import NIOCore
import NIOPosix
import Glibc

/// A DHCP exchange on a named interface.
package enum DHCPSocket {
    /// Broadcasts `request` from 0.0.0.0:68 on `interface` to 255.255.255.255:67 and returns the
    /// first datagram `accept` takes, or throws `AdapterError` (socket errors, or a timeout after
    /// `timeout`). Needs CAP_NET_RAW for SO_BINDTODEVICE and CAP_NET_BIND_SERVICE for port 68.
    package static func exchange(_ request: [UInt8], interface: String, timeout: Duration,
                                 accept: @escaping @Sendable ([UInt8]) -> Bool) async throws -> [UInt8] {
        try await NIOThreadPool.singleton.runIfActive {
            try blockingExchange(request, interface: interface, timeout: timeout, accept: accept)
        }
    }

    private static func blockingExchange(_ request: [UInt8], interface: String, timeout: Duration,
                                         accept: ([UInt8]) -> Bool) throws -> [UInt8] {
        func failure(_ what: String) -> AdapterError {
            AdapterError(.other, "dhcp: \(what): \(String(cString: strerror(errno)))")
        }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failure("socket") }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw failure("set broadcast")
        }
        let bound = interface.withCString { name in
            setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, socklen_t(strlen(name) + 1))
        }
        guard bound == 0 else { throw failure("bind to interface \(interface)") }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_port = UInt16(68).bigEndian
        local.sin_addr.s_addr = INADDR_ANY
        let didBind = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard didBind == 0 else { throw failure("listen 0.0.0.0:68") }
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = UInt16(67).bigEndian
        remote.sin_addr.s_addr = INADDR_BROADCAST
        let sent = request.withUnsafeBytes { raw in
            withUnsafePointer(to: &remote) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == request.count else { throw failure("send to 255.255.255.255:67") }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var buffer = [UInt8](repeating: 0, count: 1500)
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { throw AdapterError(.other, "dhcp: no answer on \(interface) within \(timeout)") }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            guard ready >= 0 else { throw failure("poll") }
            if ready == 0 { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard count >= 0 else { throw failure("receive") }
            let datagram = Array(buffer[0..<count])
            if accept(datagram) { return datagram }
        }
    }
}
