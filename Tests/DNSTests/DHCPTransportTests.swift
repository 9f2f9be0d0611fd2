// The `dhcp` DNS server against a real DHCP server: dnsmasq in a network namespace of the test's
// own, behind a veth pair, hands out its DNS address (option 6); our transport learns it with a
// DHCPDISCOVER on the host end and asks that server. A second dnsmasq with another DNS address
// shows the servers being refreshed after the TTL. Root only; everything is removed on every path.
import Foundation
import Testing
import Adapter
import Net
import Config
import NIOPosix
@testable import DNS
import TestSupport

/// Runs a command to completion; throws with its status when it fails.
@discardableResult
private func run(_ executable: String, _ arguments: [String]) async throws -> Int32 {
    let process = ChildProcess()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    while process.isRunning { try await Task.sleep(for: .milliseconds(5)) }
    guard process.terminationStatus == 0 else {
        throw DNSTLSError("\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
    }
    return process.terminationStatus
}

@Suite(.serialized) struct DHCPTransportTests {
    // DISCOVER for 02:00:00:00:00:01, xid 0x01020304: op 1, htype 1, hlen 6, broadcast flag, cookie,
    // options 53=DISCOVER, 55=[15, 6, 119], end, padded to 300 octets.
    @Test func discoverIsABOOTPRequest() {
        let packet = DHCPMessage.discover(transactionID: 0x0102_0304, hardwareAddress: [2, 0, 0, 0, 0, 1])
        #expect(packet.count == 300)
        #expect(Array(packet[0..<8]) == [1, 1, 6, 0, 1, 2, 3, 4])
        #expect(packet[10] == 0x80)
        #expect(Array(packet[28..<34]) == [2, 0, 0, 0, 0, 1])
        #expect(Array(packet[236..<249]) == [99, 130, 83, 99, 53, 1, 1, 55, 3, 15, 6, 119, 255])
    }

    /// An OFFER with the given options after the cookie.
    static func offer(xid: UInt32, options: [UInt8]) -> [UInt8] {
        var packet = [UInt8](repeating: 0, count: 236)
        packet[0] = 2
        withUnsafeBytes(of: xid.bigEndian) { packet.replaceSubrange(4..<8, with: $0) }
        return packet + [99, 130, 83, 99] + options
    }

    @Test func offerParsing() {
        let good = Self.offer(xid: 7, options: [53, 1, 2, 6, 8, 10, 0, 0, 1, 10, 0, 0, 2, 15, 4, 0x74, 0x65, 0x73, 0x74, 255])
        #expect(DHCPMessage.parseOffer(good, transactionID: 7) == DHCPMessage.Offer(servers: [ip("10.0.0.1"), ip("10.0.0.2")], domainName: "test"))
        #expect(DHCPMessage.parseOffer(good, transactionID: 8) == nil)                                   // someone else's
        #expect(DHCPMessage.parseOffer(Self.offer(xid: 7, options: [53, 1, 5, 255]), transactionID: 7) == nil)  // an ACK
        #expect(DHCPMessage.parseOffer(Self.offer(xid: 7, options: [53, 1, 2, 6, 200]), transactionID: 7) == nil)  // option past the end
        for length in 0..<good.count {
            _ = DHCPMessage.parseOffer(Array(good.prefix(length)), transactionID: 7)  // never traps
        }
    }

    @Test func learnsAndRefreshesServersFromDnsmasq() async throws {
        let id = UInt32.random(in: 0..<0xffff)
        let namespace = "dhcpdns\(id)", hostEnd = "dh\(id)a", nsEnd = "dh\(id)b"
        let subnet = "10.213.\(id % 250)"
        let work = "/tmp/dhcp-test-\(id)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try await run("/usr/sbin/ip", ["netns", "add", namespace])
        defer {
            let cleanup = ChildProcess()
            cleanup.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            cleanup.arguments = ["netns", "del", namespace]
            try? cleanup.run()
            cleanup.waitUntilExit()
        }
        try await run("/usr/sbin/ip", ["link", "add", hostEnd, "type", "veth", "peer", "name", nsEnd, "netns", namespace])
        try await run("/usr/sbin/ip", ["addr", "add", "\(subnet).2/24", "dev", hostEnd])
        try await run("/usr/sbin/ip", ["link", "set", hostEnd, "up"])
        for arguments in [["addr", "add", "\(subnet).1/24", "dev", nsEnd], ["addr", "add", "\(subnet).3/24", "dev", nsEnd],
                          ["link", "set", nsEnd, "up"], ["link", "set", "lo", "up"]] {
            try await run("/usr/sbin/ip", ["-n", namespace] + arguments)
        }
        /// dnsmasq in the namespace: DHCP handing out `dnsServer`, DNS on it answering `answer`.
        func startDnsmasq(dnsServer: String, answer: String) throws -> ChildProcess {
            let process = ChildProcess()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = ["netns", "exec", namespace, "/usr/sbin/dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                                 "--interface=\(nsEnd)", "--bind-interfaces", "--listen-address=\(dnsServer)", "--pid-file=",
                                 "--dhcp-range=\(subnet).50,\(subnet).99,255.255.255.0,1h", "--dhcp-option=6,\(dnsServer)",
                                 "--dhcp-leasefile=\(work)/leases-\(dnsServer)", "--address=/#/\(answer)", "--log-facility=-"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }
        var dnsmasq = try startDnsmasq(dnsServer: "\(subnet).1", answer: "10.9.8.7")
        defer { kill(dnsmasq.processIdentifier, SIGKILL) }
        try await Task.sleep(for: .milliseconds(300))

        let context = setupContext()
        let transport = DHCPTransport(tag: "dhcp", interface: hostEnd, dialer: try context.dialerFactory.makeDialer(.init()),
                                      eventLoop: testGroup.next(), ttl: .milliseconds(500), fetchTimeout: .seconds(5))
        defer { Task { await transport.close() } }
        let query = DNSMessage.query(id: 9, name: try DNSName("anything.test"), type: .a)
        #expect(try await transport.exchange(query).addresses == [ip("10.9.8.7")])
        #expect(transport.servers == [Destination(ip: ip("\(subnet).1"), port: 53)])
        // Concurrent queries within the TTL use the same servers.
        try await withThrowingTaskGroup(of: [IPAddress].self) { group in
            for _ in 0..<8 { group.addTask { try await transport.exchange(query).addresses } }
            for try await addresses in group { #expect(addresses == [ip("10.9.8.7")]) }
        }
        // Another DHCP server with another DNS address: after the TTL, the next query learns it.
        kill(dnsmasq.processIdentifier, SIGKILL)
        while dnsmasq.isRunning { try await Task.sleep(for: .milliseconds(5)) }
        dnsmasq = try startDnsmasq(dnsServer: "\(subnet).3", answer: "10.9.8.8")
        try await Task.sleep(for: .milliseconds(600))
        #expect(try await transport.exchange(query).addresses == [ip("10.9.8.8")])
        #expect(transport.servers == [Destination(ip: ip("\(subnet).3"), port: 53)])
    }
}
