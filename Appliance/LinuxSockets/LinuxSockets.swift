// LinuxSockets: the socket options the `redirect` and `tproxy` inbounds need on Linux, on raw file
// descriptors (a NIO channel's fd, or one of ours): SO_ORIGINAL_DST after an nftables redirect,
// IP_TRANSPARENT / IPV6_TRANSPARENT for tproxy listeners, IP(V6)_RECVORIGDSTADDR and a recvmsg that
// returns each datagram's original destination for UDP tproxy, and SO_MARK for our own traffic.
// Must not import: Netlink, Nftables, Box. Linux headers arrive through CLinux only.
import Adapter
import CLinux
import Glibc

/// A socket call failed: errno and what we asked.
package struct LinuxSocketError: Error, CustomStringConvertible, Equatable {
    /// `SO_ORIGINAL_DST`, `IP_TRANSPARENT`, …
    package var operation: String
    /// The positive errno.
    package var errno: Int32

    /// An error for `operation`.
    package init(operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// `SO_ORIGINAL_DST: No such file or directory (errno 2)`.
    package var description: String {
        let text = strerror(errno).map { String(cString: $0) } ?? "error"
        return "\(operation): \(text) (errno \(errno))"
    }
}

/// An IP address (4 or 16 bytes, network order) and a port.
package struct SocketEndpoint: Hashable, Sendable, CustomStringConvertible {
    /// The address bytes.
    package var address: [UInt8]
    /// The port (host order).
    package var port: UInt16

    /// An endpoint.
    package init(address: [UInt8], port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Decodes a sockaddr_in / sockaddr_in6 (nil for other families). IPv4-mapped IPv6 addresses are
    /// returned as IPv4.
    init?(_ storage: sockaddr_storage) {
        var copy = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let value = withUnsafeBytes(of: &copy) { $0.load(as: sockaddr_in.self) }
            address = withUnsafeBytes(of: value.sin_addr) { Array($0) }
            port = UInt16(bigEndian: value.sin_port)
        case AF_INET6:
            let value = withUnsafeBytes(of: &copy) { $0.load(as: sockaddr_in6.self) }
            let bytes = withUnsafeBytes(of: value.sin6_addr) { Array($0) }
            address = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF ? Array(bytes[12...]) : bytes
            port = UInt16(bigEndian: value.sin6_port)
        default:
            return nil
        }
    }

    /// `203.0.113.1:80`, `[2001:db8::1]:443`.
    package var description: String {
        let host = NetworkPrefix(bytes: address, length: address.count * 8)?.addressDescription ?? "?"
        return address.count == 4 ? "\(host):\(port)" : "[\(host)]:\(port)"
    }
}

/// Socket options and calls for redirect and tproxy.
package enum LinuxSockets {
    /// The destination an accepted TCP connection had before the nftables redirect (SO_ORIGINAL_DST;
    /// IPv6 through IP6T_SO_ORIGINAL_DST). Throws ENOENT for a connection that was not redirected.
    package static func originalDestination(of fd: CInt) throws -> SocketEndpoint {
        var storage = sockaddr_storage()
        let result = clinux_original_destination(fd, &storage)
        guard result == 0 else { throw LinuxSocketError(operation: "SO_ORIGINAL_DST", errno: -result) }
        guard let endpoint = SocketEndpoint(storage) else { throw LinuxSocketError(operation: "SO_ORIGINAL_DST", errno: EAFNOSUPPORT) }
        return endpoint
    }

    /// IP_TRANSPARENT (and IPV6_TRANSPARENT): needed by a tproxy listener before bind. CAP_NET_ADMIN.
    package static func setTransparent(_ fd: CInt, ipv6: Bool) throws {
        let result = clinux_set_transparent(fd, ipv6 ? 1 : 0)
        guard result == 0 else { throw LinuxSocketError(operation: "IP_TRANSPARENT", errno: -result) }
    }

    /// IP_RECVORIGDSTADDR (and IPV6_RECVORIGDSTADDR): UDP tproxy needs each datagram's destination.
    package static func setReceiveOriginalDestination(_ fd: CInt, ipv6: Bool) throws {
        let result = clinux_set_receive_original_destination(fd, ipv6 ? 1 : 0)
        guard result == 0 else { throw LinuxSocketError(operation: "IP_RECVORIGDSTADDR", errno: -result) }
    }

    /// SO_MARK: our own outbound traffic carries sing-box's output mark so auto_redirect and
    /// auto_route leave it alone (CAP_NET_ADMIN).
    package static func setMark(_ fd: CInt, _ mark: UInt32) throws {
        var value = mark
        guard setsockopt(fd, SOL_SOCKET, SO_MARK, &value, socklen_t(MemoryLayout<UInt32>.size)) == 0 else {
            throw LinuxSocketError(operation: "SO_MARK", errno: errno)
        }
    }

    /// Receives one datagram into `buffer` with its source and original destination (nil unless
    /// `setReceiveOriginalDestination` was set and the kernel supplied one). Throws EAGAIN on a
    /// non-blocking socket with nothing to read.
    package static func receive(_ fd: CInt, into buffer: UnsafeMutableRawBufferPointer) throws
        -> (length: Int, source: SocketEndpoint?, destination: SocketEndpoint?) {
        var source = sockaddr_storage()
        var destination = sockaddr_storage()
        let result = clinux_receive_with_destination(fd, buffer.baseAddress, buffer.count, &source, &destination)
        guard result >= 0 else { throw LinuxSocketError(operation: "recvmsg", errno: Int32(-result)) }
        return (Int(result), SocketEndpoint(source), SocketEndpoint(destination))
    }
}
