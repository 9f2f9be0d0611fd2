import Adapter
import Foundation
import Glibc
import LinuxSockets
import NIOCore
import Netlink
import Netstack
import NetstackWire
import Nftables
import Testing
import TunDevice

/// The whole-LAN gateway's Linux layer end to end, as sing-box 1.12 sets it up for `tun` with
/// `auto_route` + `auto_redirect`: a LAN namespace routes through a gateway namespace that has our TUN,
/// our policy rules (mark mode) and our nftables table. TCP from the LAN lands on the redirect port with
/// its original destination; UDP is marked into table 2022, comes out of our TUN, and our reply written
/// into the TUN reaches the LAN host (Go 1.12 loses that reply, shared/PEERS.md).
@Suite(.enabled(if: isRoot, "needs root for network namespaces"))
struct GatewayTests {
    @Test(.timeLimit(.minutes(1))) func lanTrafficIsRedirectedAndRoutedIntoTheTun() throws {
        let lan = try TestNamespace("glan")
        let gateway = try TestNamespace("ggw")
        try lan.exec("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "gw0")
        try lan.exec("ip", "link", "set", "gw0", "netns", gateway.name)
        try lan.exec("ip", "addr", "add", "10.66.0.2/24", "dev", "lan0")
        try lan.exec("ip", "link", "set", "lan0", "up")
        try lan.exec("ip", "route", "add", "default", "via", "10.66.0.1")
        try gateway.exec("ip", "addr", "add", "10.66.0.1/24", "dev", "gw0")
        try gateway.exec("ip", "link", "set", "gw0", "up")
        try gateway.exec("sysctl", "-qw", "net.ipv4.ip_forward=1")

        let (tun, netlink, nft, monitor, listener) = try NetworkNamespace.run(named: gateway.name) {
            (try TunDevice(TunOptions(name: "sbgw0")), try NetlinkSocket(), try NftablesSocket(),
             try NetlinkInterfaceMonitor(ignoring: ["sbgw0"]), try Self.listen(port: 12345))
        }
        defer { tun.close(); close(listener) }
        let route = AutoRouteOptions(interfaceName: "sbgw0", inet4Addresses: [NetworkPrefix("172.19.0.1/30")!], autoRedirectMarkMode: true)
        let installer = NetlinkRouteInstaller(socket: netlink)
        try installer.install(route)
        defer { try? installer.uninstall(route) }
        try monitor.start()
        defer { monitor.stop() }
        let controller = AutoRedirectController(
            options: AutoRedirectOptions(interfaceName: "sbgw0", enableIPv4: true, enableIPv6: false,
                                         inet4Address: NetworkPrefix("172.19.0.1/30"), redirectPort: 12345),
            firewall: NftablesFirewallInstaller(socket: nft), monitor: monitor)
        try controller.start()
        defer { try? controller.stop() }

        // TCP: redirected to our port, original destination kept.
        let tcpClient = try BackgroundCommand(lan, ["python3", "-c",
            "import socket; s = socket.create_connection(('198.51.100.7', 443), timeout=5); print(s.recv(10).decode())"])
        defer { tcpClient.stop() }
        let connection = accept(listener, nil, nil)
        #expect(connection >= 0)
        #expect(try LinuxSockets.originalDestination(of: connection).description == "198.51.100.7:443")
        _ = "tcp-ok".withCString { send(connection, $0, 6, 0) }
        close(connection)
        #expect(tcpClient.wait(5))
        #expect(tcpClient.stop().hasPrefix("tcp-ok"))

        // UDP: marked 0x2023, routed by `fwmark 0x2023 lookup 2022` into the TUN.
        let udpClient = try BackgroundCommand(lan, ["python3", "-c", """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 40053)); s.settimeout(5)
            s.sendto(b'query', ('198.51.100.7', 5353))
            data, peer = s.recvfrom(100); print(data.decode(), peer[0], peer[1])
            """])
        defer { udpClient.stop() }
        var batch = PacketBatch()
        var found: Packet?
        let deadline = Date().addingTimeInterval(5)
        while found == nil && Date() < deadline {
            var descriptor = pollfd(fd: tun.fileDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 100)
            batch.removeAll()
            _ = try tun.readBatch(into: &batch, maxPackets: 16)
            found = batch.packets.first { packet in
                let bytes = Array(packet.bytes.readableBytesView)
                return bytes.count >= 28 && bytes[9] == 17 && Array(bytes[12..<20]) == [10, 66, 0, 2, 198, 51, 100, 7]
            }
        }
        let datagram = try #require(found)
        let bytes = Array(datagram.bytes.readableBytesView)
        #expect(Array(bytes[22..<24]) == [0x14, 0xE9])  // destination port 5353
        #expect(Array(bytes[28...]) == Array("query".utf8))

        // Our answer, written into the TUN as the proxy would, goes back to the LAN host.
        let payload = Array("answer".utf8)
        var udp: [UInt8] = [0x14, 0xE9, 0x9C, 0x75,  // 5353 → 40053
                             0, UInt8(8 + payload.count), 0, 0] + payload
        let pseudo: [UInt8] = [198, 51, 100, 7, 10, 66, 0, 2, 0, 17, 0, UInt8(udp.count)]
        let checksum = internetChecksum(pseudo + udp)
        udp[6] = UInt8(checksum >> 8)
        udp[7] = UInt8(checksum & 0xFF)
        #expect(try tun.write(Packet(bytes: PacketBuffer(bytes: ipv4Packet(source: [198, 51, 100, 7], destination: [10, 66, 0, 2],
                                                                          protocolNumber: 17, payload: udp)))))
        let replied = udpClient.wait(5)
        #expect(replied)
        #expect(udpClient.stop().trimmingCharacters(in: .whitespacesAndNewlines) == "answer 198.51.100.7 5353")
    }

    /// The same over IPv6 with ULA LAN prefixes (fc00::/7), which Go 1.12's auto_redirect breaks
    /// (shared/PEERS.md: it leaves private IPv6 prefixes out of the local address set).
    @Test(.timeLimit(.minutes(1))) func ipv6ULALanTrafficIsRedirectedAndRoutedIntoTheTun() throws {
        let lan = try TestNamespace("g6lan")
        let gateway = try TestNamespace("g6gw")
        try lan.exec("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "gw0")
        try lan.exec("ip", "link", "set", "gw0", "netns", gateway.name)
        try lan.exec("ip", "addr", "add", "fd66::2/64", "dev", "lan0", "nodad")
        try lan.exec("ip", "link", "set", "lan0", "up")
        try lan.exec("ip", "-6", "route", "add", "default", "via", "fd66::1")
        try gateway.exec("ip", "addr", "add", "fd66::1/64", "dev", "gw0", "nodad")
        try gateway.exec("ip", "link", "set", "gw0", "up")
        try gateway.exec("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")

        let (tun, netlink, nft, monitor, listener) = try NetworkNamespace.run(named: gateway.name) {
            (try TunDevice(TunOptions(name: "sbgw6")), try NetlinkSocket(), try NftablesSocket(),
             try NetlinkInterfaceMonitor(ignoring: ["sbgw6"]), try Self.listen6(port: 12345))
        }
        defer { tun.close(); close(listener) }
        let route = AutoRouteOptions(interfaceName: "sbgw6", inet6Addresses: [NetworkPrefix("fdfe:dcba:9876::1/126")!], autoRedirectMarkMode: true)
        let installer = NetlinkRouteInstaller(socket: netlink)
        try installer.install(route)
        defer { try? installer.uninstall(route) }
        try monitor.start()
        defer { monitor.stop() }
        let controller = AutoRedirectController(
            options: AutoRedirectOptions(interfaceName: "sbgw6", enableIPv4: false, enableIPv6: true,
                                         inet6Address: NetworkPrefix("fdfe:dcba:9876::1/126"), redirectPort: 12345),
            firewall: NftablesFirewallInstaller(socket: nft), monitor: monitor)
        try controller.start()
        defer { try? controller.stop() }
        #expect(controller.localAddresses.contains { $0.description == "fd66::1/64" })

        let tcpClient = try BackgroundCommand(lan, ["python3", "-c",
            "import socket; s = socket.create_connection(('2001:db8:ffff::7', 443), timeout=5); print(s.recv(10).decode())"])
        defer { tcpClient.stop() }
        let connection = accept(listener, nil, nil)
        #expect(connection >= 0)
        #expect(try LinuxSockets.originalDestination(of: connection).description == "[2001:db8:ffff::7]:443")
        _ = "tcp6-ok".withCString { send(connection, $0, 7, 0) }
        close(connection)
        #expect(tcpClient.wait(5))
        #expect(tcpClient.stop().hasPrefix("tcp6-ok"))

        let udpClient = try BackgroundCommand(lan, ["python3", "-c", """
            import socket
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(('::', 40053)); s.settimeout(5)
            s.sendto(b'query', ('2001:db8:ffff::7', 5353))
            data, peer = s.recvfrom(100); print(data.decode(), peer[0], peer[1])
            """])
        defer { udpClient.stop() }
        let lanAddress = NetworkPrefix.parseAddress("fd66::2")!
        let remote = NetworkPrefix.parseAddress("2001:db8:ffff::7")!
        var batch = PacketBatch()
        var found: Packet?
        let deadline = Date().addingTimeInterval(5)
        while found == nil && Date() < deadline {
            var descriptor = pollfd(fd: tun.fileDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 100)
            batch.removeAll()
            _ = try tun.readBatch(into: &batch, maxPackets: 16)
            found = batch.packets.first { packet in
                let bytes = Array(packet.bytes.readableBytesView)
                return bytes.count >= 48 && bytes[0] >> 4 == 6 && bytes[6] == 17 && Array(bytes[8..<24]) == lanAddress
            }
        }
        let datagram = try #require(found)
        #expect(Array(Array(datagram.bytes.readableBytesView)[48...]) == Array("query".utf8))

        let payload = Array("answer".utf8)
        var udp: [UInt8] = [0x14, 0xE9, 0x9C, 0x75, 0, UInt8(8 + payload.count), 0, 0] + payload
        let pseudo: [UInt8] = remote + lanAddress + [0, 0, 0, UInt8(udp.count), 0, 0, 0, 17]
        let checksum = internetChecksum(pseudo + udp)
        udp[6] = UInt8(checksum >> 8)
        udp[7] = UInt8(checksum & 0xFF)
        let ipv6: [UInt8] = [0x60, 0, 0, 0, 0, UInt8(udp.count), 17, 64] + remote + lanAddress + udp
        #expect(try tun.write(Packet(bytes: PacketBuffer(bytes: ipv6))))
        #expect(udpClient.wait(5))
        #expect(udpClient.stop().trimmingCharacters(in: .whitespacesAndNewlines) == "answer 2001:db8:ffff::7 5353")
    }

    /// A listening dual-stack TCP socket on [::]:`port` with a 5 s accept timeout.
    static func listen6(port: UInt16) throws -> CInt {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = port.bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 16) == 0 else { throw LinuxSocketError(operation: "listen [::]:\(port)", errno: errno) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// A listening IPv4 TCP socket on 0.0.0.0:`port` with a 5 s accept timeout.
    static func listen(port: UInt16) throws -> CInt {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 16) == 0 else { throw LinuxSocketError(operation: "listen \(port)", errno: errno) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }
}
