import Adapter
import Foundation
import Glibc
import LinuxSockets
import Netlink
import Nftables
import Testing

/// A blocking IPv4 socket of `type` bound to 0.0.0.0:`port`, created in the calling thread's namespace.
private func boundSocket(_ type: Int32, port: UInt16, transparent: Bool = false) throws -> CInt {
    let fd = socket(AF_INET, type | Int32(SOCK_CLOEXEC.rawValue), 0)
    var one: CInt = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
    if transparent { try LinuxSockets.setTransparent(fd, ipv6: false) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw LinuxSocketError(operation: "bind \(port)", errno: errno) }
    if type == Int32(SOCK_STREAM.rawValue) { listen(fd, 16) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

/// The local address of a connected socket.
private func localEndpoint(_ fd: CInt) -> String {
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    let bytes = withUnsafeBytes(of: address.sin_addr) { Array($0) }
    return "\(bytes.map(String.init).joined(separator: ".")):\(UInt16(bigEndian: address.sin_port))"
}

@Suite(.enabled(if: isRoot, "needs root for network namespaces"))
struct LinuxSocketsTests {
    @Test func redirectedConnectionKnowsItsOriginalDestination() throws {
        let namespace = try TestNamespace("odst")
        try namespace.exec("ip", "link", "add", "od0", "type", "veth", "peer", "name", "od1")
        try namespace.exec("ip", "addr", "add", "10.55.0.1/24", "dev", "od0")
        try namespace.exec("ip", "link", "set", "od0", "up")
        try namespace.exec("ip", "link", "set", "od1", "up")
        try namespace.exec("ip", "route", "add", "default", "via", "10.55.0.2")
        let (nft, listener) = try NetworkNamespace.run(named: namespace.name) {
            (try NftablesSocket(), try boundSocket(Int32(SOCK_STREAM.rawValue), port: 12345))
        }
        defer { close(listener) }
        try NftablesFirewallInstaller(socket: nft).installAutoRedirect(
            AutoRedirectOptions(interfaceName: "tun0", enableIPv4: true, enableIPv6: false, redirectPort: 12345,
                                localAddresses: [NetworkPrefix("127.0.0.1/8")!, NetworkPrefix("10.55.0.1/24")!]))
        let client = try BackgroundCommand(namespace, ["python3", "-c",
            "import socket; s = socket.create_connection(('203.0.113.1', 80), timeout=5); s.recv(10)"])
        defer { client.stop() }
        let connection = accept(listener, nil, nil)
        #expect(connection >= 0)
        defer { close(connection) }
        let original = try LinuxSockets.originalDestination(of: connection)
        #expect(original.description == "203.0.113.1:80")
        // A listener's own socket was never redirected.
        #expect(throws: LinuxSocketError.self) { try LinuxSockets.originalDestination(of: listener) }
    }

    @Test func tproxyDeliversForeignTCPAndUDPToTransparentSockets() throws {
        let lan = try TestNamespace("lan")
        let gateway = try TestNamespace("gw")
        try lan.exec("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "gw0")
        try lan.exec("ip", "link", "set", "gw0", "netns", gateway.name)
        try lan.exec("ip", "addr", "add", "10.66.0.2/24", "dev", "lan0")
        try lan.exec("ip", "link", "set", "lan0", "up")
        try lan.exec("ip", "route", "add", "default", "via", "10.66.0.1")
        try gateway.exec("ip", "addr", "add", "10.66.0.1/24", "dev", "gw0")
        try gateway.exec("ip", "link", "set", "gw0", "up")

        let (netlink, nft, tcp, udp) = try NetworkNamespace.run(named: gateway.name) {
            (try NetlinkSocket(), try NftablesSocket(),
             try boundSocket(Int32(SOCK_STREAM.rawValue), port: 7893, transparent: true),
             try boundSocket(Int32(SOCK_DGRAM.rawValue), port: 7893, transparent: true))
        }
        defer { close(tcp); close(udp) }
        try LinuxSockets.setReceiveOriginalDestination(udp, ipv6: false)
        try netlink.installTProxyRouting(mark: 0x2025, table: 100, priority: 9100)
        try NftablesFirewallInstaller(socket: nft).installTProxy(
            TProxyOptions(port: 7893, mark: 0x2025, bypassAddresses: [NetworkPrefix("10.66.0.1/32")!]))
        let rules = try gateway.ipJSON("rule", "show")
        #expect(rules.contains { $0["priority"] as? Int == 9100 && $0["fwmark"] as? String == "0x2025" && $0["table"] as? String == "100" })

        let tcpClient = try BackgroundCommand(lan, ["python3", "-c",
            "import socket; s = socket.create_connection(('198.51.100.7', 443), timeout=5); print(s.recv(10).decode())"])
        defer { tcpClient.stop() }
        let connection = accept(tcp, nil, nil)
        #expect(connection >= 0)
        // tproxy keeps the foreign destination as the accepted socket's local address.
        #expect(localEndpoint(connection) == "198.51.100.7:443")
        _ = "hi".withCString { send(connection, $0, 2, 0) }
        close(connection)
        #expect(tcpClient.wait(5))
        #expect(tcpClient.stop().hasPrefix("hi"))

        let udpClient = try BackgroundCommand(lan, ["python3", "-c",
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 40053)); s.sendto(b'query', ('198.51.100.7', 53))"])
        defer { udpClient.stop() }
        var buffer = [UInt8](repeating: 0, count: 1500)
        let datagram = try buffer.withUnsafeMutableBytes { try LinuxSockets.receive(udp, into: $0) }
        #expect(Array(buffer[0..<datagram.length]) == Array("query".utf8))
        #expect(datagram.source?.description == "10.66.0.2:40053")
        #expect(datagram.destination?.description == "198.51.100.7:53")

        try netlink.removeTProxyRouting(table: 100, priority: 9100)
        #expect(try gateway.ipJSON("rule", "show").allSatisfy { $0["priority"] as? Int != 9100 })
        #expect(try gateway.ipJSON("route", "show", "table", "100").isEmpty)
    }
}
