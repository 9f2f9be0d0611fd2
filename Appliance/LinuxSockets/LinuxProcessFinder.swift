// LinuxProcessFinder: socket → inode and uid through NETLINK_SOCK_DIAG, inode → pid through
// /proc/*/fd, pid → executable through /proc/<pid>/exe (Go's common/process/searcher_linux*.go).
//
// 1. Dump sockets of the flow's family and protocol with SOCK_DIAG_BY_FAMILY, asking for the
//    source port (the kernel filters TCP by port; we check port and address of every answer,
//    which also covers UDP where the kernel does not filter).
// 2. The first socket whose local end is the flow's source gives inode and uid.
// 3. Scan /proc/<pid> owned by that uid for an fd linking to `socket:[inode]`; its `exe` is the path.
// Control plane only: the router asks once per flow, and only when a rule needs the answer.
package import Adapter
import Glibc

/// Finds the local process behind a flow on Linux. Needs CAP_NET_ADMIN for other users' sockets
/// (root here) and a readable /proc.
package struct LinuxProcessFinder: ProcessFinder {
    package init() {}

    /// Why no owner was found, in Go's words where it has them.
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    package func findProcess(network: NetworkKind, source: Destination, destination: Destination?) throws -> OwnerProcess {
        guard let ip = source.ip?.unmapped else { throw Failure(description: "invalid argument") }
        let (inode, uid) = try Self.socketOwner(network: network, address: ip, port: source.port)
        let path = Self.processPath(inode: inode, uid: uid) ?? ""
        return OwnerProcess(path: path, userID: Int32(bitPattern: uid), userName: Self.userName(uid))
    }

    // MARK: netlink

    static let netlinkInetDiag: Int32 = 4           // NETLINK_INET_DIAG (= NETLINK_SOCK_DIAG)
    static let sockDiagByFamily: UInt16 = 20        // SOCK_DIAG_BY_FAMILY
    static let requestSize = 16 + 56                // nlmsghdr + inet_diag_req_v2

    /// inode and uid of the socket whose local end is `address`:`port`.
    static func socketOwner(network: NetworkKind, address: IPAddress, port: UInt16) throws -> (UInt32, UInt32) {
        let family = address.isIPv4 ? UInt8(AF_INET) : UInt8(AF_INET6)
        let proto = network == .tcp ? UInt8(IPPROTO_TCP) : UInt8(IPPROTO_UDP)
        let fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), netlinkInetDiag)
        guard fd >= 0 else { throw Failure(description: "dial netlink: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        // nlmsghdr: len, type, flags (REQUEST | DUMP), seq, pid — host order.
        var request = [UInt8](repeating: 0, count: requestSize)
        put32(&request, 0, UInt32(requestSize))
        put16(&request, 4, sockDiagByFamily)
        put16(&request, 6, 0x1 | 0x300)  // NLM_F_REQUEST | NLM_F_DUMP
        // inet_diag_req_v2: family, protocol, ext, pad, states (all), then inet_diag_sockid.
        request[16] = family
        request[17] = proto
        put32(&request, 20, 0xFFFF_FFFF)
        request[24] = UInt8(port >> 8)                  // sport, network order
        request[25] = UInt8(port & 0xff)
        let addressBytes = address.bytes
        for (i, b) in addressBytes.enumerated() { request[28 + i] = b }
        for i in 64..<72 { request[i] = 0xff }          // cookie: INET_DIAG_NOCOOKIE
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == requestSize else { throw Failure(description: "write netlink request: \(String(cString: strerror(errno)))") }

        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw Failure(description: "read netlink response: \(String(cString: strerror(errno)))") }
            var offset = 0
            while offset + 16 <= n {
                let length = Int(get32(buffer, offset)), type = get16(buffer, offset + 4)
                guard length >= 16, offset + length <= n else { throw Failure(description: "parse netlink message: invalid length") }
                // NLMSG_DONE (3) without a match, or NLMSG_ERROR (2): Go reports both this way.
                if type == 3 || type == 2 { throw Failure(description: "netlink message: NLMSG_ERROR") }
                let body = offset + 16
                if length >= 16 + 72, type == sockDiagByFamily {  // nlmsghdr + inet_diag_msg
                    let sport = UInt16(buffer[body + 4]) << 8 | UInt16(buffer[body + 5])
                    let local = Array(buffer[(body + 8)..<(body + 8 + addressBytes.count)])
                    let wildcard = local.allSatisfy { $0 == 0 }
                    if sport == port && (local == addressBytes || wildcard) {
                        return (get32(buffer, body + 68), get32(buffer, body + 64))
                    }
                }
                offset += (length + 3) & ~3
            }
        }
    }

    // MARK: /proc

    /// The executable of the process holding `socket:[inode]`, searching processes owned by `uid`.
    static func processPath(inode: UInt32, uid: UInt32) -> String? {
        guard let proc = opendir("/proc") else { return nil }
        defer { closedir(proc) }
        let target = "socket:[\(inode)]"
        while let entry = readdir(proc) {
            let pid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard !pid.isEmpty, pid.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { continue }
            var info = stat()
            guard stat("/proc/\(pid)", &info) == 0, info.st_uid == uid else { continue }
            guard let fds = opendir("/proc/\(pid)/fd") else { continue }
            defer { closedir(fds) }
            while let fdEntry = readdir(fds) {
                let name = withUnsafeBytes(of: fdEntry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name.hasPrefix(".") { continue }
                if readLink("/proc/\(pid)/fd/\(name)") == target { return readLink("/proc/\(pid)/exe") }
            }
        }
        return nil
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let n = buffer.withUnsafeMutableBytes { readlink(path, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }

    /// The passwd name of `uid`, or "" (Go's `user.LookupId`).
    static func userName(_ uid: UInt32) -> String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else { return "" }
        return String(cString: name)
    }

    static func put16(_ b: inout [UInt8], _ at: Int, _ v: UInt16) {
        withUnsafeBytes(of: v) { for (i, x) in $0.enumerated() { b[at + i] = x } }
    }

    static func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        withUnsafeBytes(of: v) { for (i, x) in $0.enumerated() { b[at + i] = x } }
    }

    static func get16(_ b: [UInt8], _ at: Int) -> UInt16 {
        b[at..<(at + 2)].withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }
    }

    static func get32(_ b: [UInt8], _ at: Int) -> UInt32 {
        b[at..<(at + 4)].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
    }
}
