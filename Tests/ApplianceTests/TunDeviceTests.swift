import TestSupport
import Adapter
import Foundation
import Glibc
import NIOCore
import NIOPosix
import Netlink
import Netstack
import NetstackWire
import Synchronization
import Testing
import TunDevice

/// Internet checksum (RFC 1071) over bytes, for building replies in tests.
func internetChecksum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
    var sum = initial
    var index = 0
    while index + 1 < bytes.count { sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1]); index += 2 }
    if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
    while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

/// Builds an IPv4 header + payload with a correct header checksum.
func ipv4Packet(source: [UInt8], destination: [UInt8], protocolNumber: UInt8, payload: [UInt8]) -> [UInt8] {
    let total = 20 + payload.count
    var header: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0x12, 0x34, 0x40, 0, 64, protocolNumber, 0, 0]
    header += source + destination
    let checksum = internetChecksum(header)
    header[10] = UInt8(checksum >> 8)
    header[11] = UInt8(checksum & 0xFF)
    return header + payload
}

@Suite(.enabled(if: isRoot, "needs root for network namespaces"), .serialized)
struct TunDeviceKernelTests {
    /// Opens a TUN with offloads in a fresh namespace and gives it 10.99.0.1/24.
    func openTun(_ namespace: TestNamespace) throws -> TunDevice {
        try NetworkNamespace.run(named: namespace.name) {
            let tun = try TunDevice(TunOptions(name: "sbtun0"))
            let socket = try NetlinkSocket()
            try socket.configureInterface(named: tun.name, mtu: 1500, addresses: [NetworkPrefix("10.99.0.1/24")!])
            return tun
        }
    }

    /// Reads until `match` accepts a packet or 5 s pass (poll + readBatch, as the reader does).
    func readUntil(_ tun: TunDevice, _ match: (Packet) -> Bool) throws -> Packet? {
        let deadline = Date().addingTimeInterval(5)
        var batch = PacketBatch()
        while Date() < deadline {
            var descriptor = pollfd(fd: tun.fileDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 100)
            batch.removeAll()
            _ = try tun.readBatch(into: &batch, maxPackets: 16)
            if let found = batch.packets.first(where: match) { return found }
        }
        return nil
    }

    @Test func offloadsMTUAndAddress() throws {
        let namespace = try TestNamespace("tun")
        let tun = try openTun(namespace)
        defer { tun.close() }
        #expect(tun.name == "sbtun0")
        // Kernel 6.18 takes all five; the fallback order keeps CSUM|TSO on older kernels.
        #expect(tun.offloads.isSuperset(of: [.checksum, .tso4, .tso6]))
        let link = try namespace.ipJSON("link", "show", "sbtun0")
        #expect(link.first?["mtu"] as? Int == 1500)
        #expect((link.first?["flags"] as? [String])?.contains("UP") == true)
    }

    @Test func multiQueueOpensMoreQueuesOfOneInterface() throws {
        let namespace = try TestNamespace("mq")
        let (first, second) = try NetworkNamespace.run(named: namespace.name) {
            let first = try TunDevice(TunOptions(name: "sbmq0", multiQueue: true))
            return (first, try first.openQueue())
        }
        defer { first.close(); second.close() }
        #expect(second.name == "sbmq0" && second.fileDescriptor != first.fileDescriptor)
        #expect(try namespace.ipJSON("link", "show").filter { $0["ifname"] as? String == "sbmq0" }.count == 1)
        // The interface lives while any queue is open.
        first.close()
        #expect(try namespace.ipJSON("link", "show").contains { $0["ifname"] as? String == "sbmq0" })
        second.close()
        #expect(try !namespace.ipJSON("link", "show").contains { $0["ifname"] as? String == "sbmq0" })
    }

    @Test func pingIsAnsweredThroughTheTun() throws {
        let namespace = try TestNamespace("ping")
        let tun = try openTun(namespace)
        defer { tun.close() }
        // No ping binary here: a raw-socket echo request from python3, exit 0 when the reply arrives.
        let script = """
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); s.settimeout(5)
        s.sendto(bytes([8, 0, 0xf7, 0xfe, 0, 1, 0, 0]), ("10.99.0.2", 0))
        while True:
            data, addr = s.recvfrom(2048)
            if addr[0] == "10.99.0.2" and data[20] == 0: sys.exit(0)
        """
        let ping = try BackgroundCommand(namespace, ["python3", "-c", script])
        defer { _ = ping.stop() }
        let request = try #require(try readUntil(tun) { packet in
            let bytes = Array(packet.bytes.readableBytesView)
            return bytes.count >= 28 && bytes[0] >> 4 == 4 && bytes[9] == 1 && bytes[20] == 8 && Array(bytes[16..<20]) == [10, 99, 0, 2]
        })
        // ICMP is checksummed by the sender itself: no NEEDS_CSUM, no GSO.
        #expect(request.offload.gsoType == VirtioNetHeader.gsoNone)
        let bytes = Array(request.bytes.readableBytesView)
        var icmp = Array(bytes[20...])
        icmp[0] = 0  // echo reply
        icmp[2] = 0
        icmp[3] = 0
        let checksum = internetChecksum(icmp)
        icmp[2] = UInt8(checksum >> 8)
        icmp[3] = UInt8(checksum & 0xFF)
        let reply = ipv4Packet(source: [10, 99, 0, 2], destination: [10, 99, 0, 1], protocolNumber: 1, payload: icmp)
        #expect(try tun.write(Packet(bytes: PacketBuffer(bytes: reply))))
        #expect(ping.wait(6))
        #expect(ping.process.terminationStatus == 0)
    }

    /// Small packets are read into recycled buffers once the stack has dropped them, and never into
    /// one a packet still being held lives in.
    @Test func smallReadBuffersAreReusedOnlyWhenReleased() throws {
        let namespace = try TestNamespace("reuse")
        let tun = try openTun(namespace)
        defer { tun.close() }
        let count = 60
        let script = """
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(\(count)): s.sendto(b"datagram %03d" % i, ("10.99.0.2", 5353))
        """
        let sender = try BackgroundCommand(namespace, ["python3", "-c", script])
        defer { _ = sender.stop() }
        var held: [(Packet, [UInt8])] = []  // the first batch stays alive, as a stack holding data would
        var payloads: [String] = []
        var batch = PacketBatch()
        let deadline = Date().addingTimeInterval(5)
        while payloads.count < count && Date() < deadline {
            var descriptor = pollfd(fd: tun.fileDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 100)
            batch.removeAll()
            _ = try tun.readBatch(into: &batch, maxPackets: 4)
            for packet in batch.packets {
                let bytes = Array(packet.bytes.readableBytesView)
                guard bytes.count > 28, bytes[9] == 17 else { continue }
                payloads.append(String(decoding: bytes[28...], as: UTF8.self))
                if held.count < 4 { held.append((packet, bytes)) }
            }
        }
        #expect(payloads == (0..<count).map { String(format: "datagram %03d", $0) })
        for (packet, bytes) in held {
            #expect(Array(packet.bytes.readableBytesView) == bytes, "a held packet's buffer was read into again")
        }
        #expect(tun.reusedSmallBuffers >= count / 2, "reused \(tun.reusedSmallBuffers) of \(count) small buffers")
    }

    @Test func udpWithPartialChecksumAndReplyOnAnEventLoop() throws {
        let namespace = try TestNamespace("udp")
        let tun = try openTun(namespace)
        defer { tun.close() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let received = Mutex<[Packet]>([])
        let reader = try TunReader(device: tun, loop: loop, batchSize: 8) { batch in
            received.withLock { $0 += batch.packets }
        }
        try reader.start()
        defer { reader.stop() }
        let client = try BackgroundCommand(namespace, ["sh", "-c", "echo hello | exec socat -t 2 - UDP4:10.99.0.2:5353,sourceport=40000"])
        defer { _ = client.stop() }
        #expect(eventually { received.withLock { $0.contains { Array($0.bytes.readableBytesView).count >= 28 && $0.bytes.getInteger(at: $0.bytes.readerIndex + 9, as: UInt8.self) == 17 } } })
        let datagram = try #require(received.withLock { $0.first { $0.bytes.getInteger(at: $0.bytes.readerIndex + 9, as: UInt8.self) == 17 } })
        // With TUN_F_CSUM the kernel leaves the UDP checksum partial: NEEDS_CSUM at 20 + 6.
        #expect(datagram.offload.flags & VirtioNetHeader.flagNeedsChecksum != 0)
        #expect(datagram.offload.checksumStart == 20 && datagram.offload.checksumOffset == 6)
        #expect(datagram.bytes.readerIndex >= 64)  // headroom in front of the IP header
        let bytes = Array(datagram.bytes.readableBytesView)
        #expect(Array(bytes[28...]) == Array("hello\n".utf8))

        // Reply 10.99.0.2:5353 → 10.99.0.1:40000 with a full checksum, written on the loop.
        let payload = Array("world\n".utf8)
        var udp: [UInt8] = [0x14, 0xe9, 0x9c, 0x40, 0, UInt8(8 + payload.count), 0, 0] + payload
        let pseudo: [UInt8] = [10, 99, 0, 2, 10, 99, 0, 1, 0, 17, 0, UInt8(udp.count)]
        let checksum = internetChecksum(pseudo + udp)
        udp[6] = UInt8(checksum >> 8)
        udp[7] = UInt8(checksum & 0xFF)
        let reply = ipv4Packet(source: [10, 99, 0, 2], destination: [10, 99, 0, 1], protocolNumber: 17, payload: udp)
        let sent = try loop.submit { try tun.writeBatch({ var batch = PacketBatch(); batch.append(Packet(bytes: PacketBuffer(bytes: reply))); return batch }()) }.wait()
        #expect(sent == 1)
        #expect(client.wait(6))
        #expect(client.stop() == "world\n")
    }

    @Test func tcpSuperPacketArrivesWithGSOHeader() throws {
        let namespace = try TestNamespace("gso")
        let tun = try openTun(namespace)
        defer { tun.close() }
        // The kernel sends a SYN to 10.99.0.2:5201; we accept it with a SYN-ACK (MSS 1460) and read data.
        let script = """
        import socket
        s = socket.create_connection(("10.99.0.2", 5201), timeout=5)
        s.sendall(bytes(200000))
        """
        let client = try BackgroundCommand(namespace, ["python3", "-c", script])
        defer { _ = client.stop() }
        let syn = try #require(try readUntil(tun) { packet in
            let bytes = Array(packet.bytes.readableBytesView)
            return bytes.count >= 40 && bytes[9] == 6 && bytes[33] & 0x02 != 0
        })
        #expect(syn.offload.flags & VirtioNetHeader.flagNeedsChecksum != 0)
        #expect(syn.offload.checksumStart == 20 && syn.offload.checksumOffset == 16)
        let bytes = Array(syn.bytes.readableBytesView)
        let clientPort = Array(bytes[20..<22])
        let clientSequence = UInt32(bytes[24]) << 24 | UInt32(bytes[25]) << 16 | UInt32(bytes[26]) << 8 | UInt32(bytes[27])
        let ack = clientSequence &+ 1
        var tcp: [UInt8] = [0x14, 0x51] + clientPort + [0, 0, 0x10, 0x00]
        tcp += [UInt8(ack >> 24), UInt8(ack >> 16 & 0xFF), UInt8(ack >> 8 & 0xFF), UInt8(ack & 0xFF)]
        tcp += [0x60, 0x12, 0xFF, 0xFF, 0, 0, 0, 0, 0x02, 0x04, 0x05, 0xb4]  // SYN|ACK, window 65535, MSS 1460
        let pseudo: [UInt8] = [10, 99, 0, 2, 10, 99, 0, 1, 0, 6, 0, UInt8(tcp.count)]
        let checksum = internetChecksum(pseudo + tcp)
        tcp[16] = UInt8(checksum >> 8)
        tcp[17] = UInt8(checksum & 0xFF)
        #expect(try tun.write(Packet(bytes: PacketBuffer(bytes: ipv4Packet(source: [10, 99, 0, 2], destination: [10, 99, 0, 1], protocolNumber: 6, payload: tcp)))))
        let data = try #require(try readUntil(tun) { packet in
            let bytes = Array(packet.bytes.readableBytesView)
            return bytes.count > 40 && bytes[9] == 6 && bytes[33] & 0x02 == 0 && bytes.count > 60
        })
        // TSO4 was accepted, so the first flight (initial cwnd of 10 segments) comes as one super-packet.
        #expect(data.bytes.readableBytes > 1500)
        #expect(data.offload.gsoType == VirtioNetHeader.gsoTCPv4)
        #expect(data.offload.gsoSize == 1460)
        #expect(data.offload.headerLength >= 40)
    }
}
