import Foundation
import NIOCore
import NetstackWire
import Testing
@testable import WireGuard
import TestSupport

/// The real peer: wireguard-go in a namespace of the test's own, our device in the test process on a kernel
/// UDP socket. Both directions of initiation; the kernel inside the namespace answers our ICMP echo.
@Suite(.serialized) struct WireGuardGoInteropTests {
    struct Side {
        let device: WireGuardDevice
        let socket: TestUDPSocket
        let peerEndpoint: WireGuardEndpoint
        var output = WireGuardOutput()

        /// Sends what the device produced.
        mutating func flush() {
            for datagram in output.datagrams { socket.send(datagram.buffer, to: datagram.endpoint) }
            output.datagrams.removeAll(keepingCapacity: true)
        }

        /// Runs the receive loop until `done` returns true for a decrypted packet, or `seconds` pass.
        mutating func run(seconds: Double, until done: (ByteBuffer) -> Bool) -> Bool {
            let deadline = TestClock.now() + .milliseconds(Int64(seconds * 1000))
            while TestClock.now() < deadline {
                flush()
                if let (datagram, source) = socket.receive(timeoutMilliseconds: 50) {
                    device.receive(datagram: datagram, from: source, now: TestClock.now(), into: &output)
                }
                device.poll(now: TestClock.now(), into: &output)
                let packets = output.packets
                output.packets.removeAll(keepingCapacity: true)
                for packet in packets where done(packet.buffer) {
                    flush()
                    return true
                }
            }
            flush()
            return false
        }
    }

    static func makeSide(_ namespace: WireGuardGoNamespace) throws -> Side {
        let socket = try TestUDPSocket(bindTo: namespace.hostAddress)
        var privateKey = Bytes32.zero
        privateKey.withUnsafeMutableBytes { systemRandom($0) }
        let device = WireGuardDevice(configuration: .init(privateKey: privateKey, unixTimeAtZero: TestClock.unixTimeAtZero()))
        let peerKey = try #require(Data(base64Encoded: namespace.publicKey))
        let endpoint = try #require(WireGuardEndpoint(parsing: "\(namespace.namespaceAddress):\(namespace.listenPort)"))
        device.addPeer(WireGuardPeerConfiguration(publicKey: try #require(Bytes32(peerKey)), endpoint: endpoint,
                                                  allowedIPs: [([10, 77, 0, 2], 32)]))
        try namespace.configure(peerPublicKey: Data(device.identity.publicKey.bytes).base64EncodedString(),
                                peerEndpoint: "\(namespace.hostAddress):\(socket.port)")
        return Side(device: device, socket: socket, peerEndpoint: endpoint)
    }

    @Test(.enabled(if: WireGuardGoNamespace.prerequisitesMissing == nil), .timeLimit(.minutes(1)))
    func weInitiateAndPingThroughWireGuardGo() throws {
        let namespace = WireGuardGoNamespace(slot: 1)
        defer { namespace.tearDown() }
        try namespace.setUp()
        var side = try Self.makeSide(namespace)

        let data = Array("swift wireguard interop".utf8)
        let request = TestPackets.echoRequest(from: [10, 77, 0, 1], to: [10, 77, 0, 2], identifier: 0x5157, sequence: 1, data: data)
        side.device.send(packet: TestPackets.buffer(request), now: TestClock.now(), into: &side.output)
        #expect(side.device.counters.initiationsSent == 1)
        var reply: [UInt8] = []
        let gotReply = side.run(seconds: 10) { packet in
            let bytes = packet.getBytes(at: packet.readerIndex, length: packet.readableBytes) ?? []
            guard bytes.count >= 28, bytes[9] == 1, bytes[20] == 0 else { return false }  // ICMP echo reply
            reply = bytes
            return true
        }
        #expect(gotReply, "no echo reply; counters \(side.device.counters)")
        #expect(side.device.counters.responsesReceived == 1)
        if gotReply {
            #expect(Array(reply[12..<16]) == [10, 77, 0, 2] && Array(reply[16..<20]) == [10, 77, 0, 1])
            #expect(Array(reply[24..<28]) == [0x51, 0x57, 0, 1])  // identifier and sequence echoed
            #expect(Array(reply[28...]) == data)
            #expect(TestPackets.checksum(Array(reply[20...])) == 0)
        }
        // wireguard-go agrees: a handshake and bytes both ways.
        let dump = try namespace.peerDump()
        #expect(dump.count >= 7)
        if dump.count >= 7 {
            #expect((Int(dump[4]) ?? 0) > 0, "latest handshake \(dump)")
            #expect((Int(dump[5]) ?? 0) > 0 && (Int(dump[6]) ?? 0) > 0, "transfer \(dump)")
            #expect(dump[2] == "\(namespace.hostAddress):\(side.socket.port)")
        }
        // More traffic on the same session: five more echoes, no new handshake.
        for sequence in 2...6 {
            let next = TestPackets.echoRequest(from: [10, 77, 0, 1], to: [10, 77, 0, 2], identifier: 0x5157,
                                               sequence: UInt16(sequence), data: data)
            side.device.send(packet: TestPackets.buffer(next), now: TestClock.now(), into: &side.output)
            let ok = side.run(seconds: 5) { packet in
                packet.getInteger(at: packet.readerIndex + 26, as: UInt16.self) == UInt16(sequence)
            }
            #expect(ok, "echo \(sequence)")
        }
        #expect(side.device.counters.initiationsSent == 1)
        #expect(side.device.counters.decryptionFailed == 0 && side.device.counters.replayed == 0)
        let after = try namespace.peerDump()
        if after.count >= 7 && dump.count >= 7 {
            #expect((Int(after[5]) ?? 0) > (Int(dump[5]) ?? 0))
        }
    }

    @Test(.enabled(if: WireGuardGoNamespace.prerequisitesMissing == nil), .timeLimit(.minutes(1)))
    func wireGuardGoInitiatesAndWeAnswer() throws {
        let namespace = WireGuardGoNamespace(slot: 2)
        defer { namespace.tearDown() }
        try namespace.setUp()
        var side = try Self.makeSide(namespace)

        // A UDP client inside the namespace sends to our tunnel address and waits for the echo.
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(8)
            s.bind(("10.77.0.2", 40000))
            s.sendto(b"ping from wireguard-go side", ("10.77.0.1", 7))
            data, addr = s.recvfrom(2048)
            print(data.decode(), addr[0], addr[1])
            """
        let client = ChildProcess()
        client.executableURL = URL(fileURLWithPath: ProcessRunner.which("ip")!)
        client.arguments = ["netns", "exec", namespace.name, "python3", "-c", script]
        let out = Pipe()
        client.standardOutput = out
        client.standardError = FileHandle.nullDevice
        try client.run()
        defer {
            if client.isRunning { kill(client.processIdentifier, SIGKILL) }
            client.waitUntilExit()
        }

        // Answer the datagram we get through the tunnel with a UDP echo from 10.77.0.1:7.
        var question: [UInt8] = []
        let gotQuestion = side.run(seconds: 10) { packet in
            let bytes = packet.getBytes(at: packet.readerIndex, length: packet.readableBytes) ?? []
            guard bytes.count >= 28, bytes[9] == 17, bytes[22] == 0, bytes[23] == 7 else { return false }
            question = bytes
            return true
        }
        #expect(gotQuestion, "nothing arrived; counters \(side.device.counters)")
        #expect(side.device.counters.initiationsReceived == 1 && side.device.counters.responsesSent == 1)
        #expect(side.device.counters.initiationsSent == 0)
        guard gotQuestion else { return }
        #expect(String(decoding: question[28...], as: UTF8.self) == "ping from wireguard-go side")
        let sourcePort = UInt16(question[20]) << 8 | UInt16(question[21])
        let answer = TestPackets.udp(from: [10, 77, 0, 1], sourcePort: 7, to: [10, 77, 0, 2], destinationPort: sourcePort,
                                     payload: Array(question[28...]))
        side.device.send(packet: TestPackets.buffer(answer), now: TestClock.now(), into: &side.output)
        side.flush()
        // The responder may send only after the initiator's first data packet confirmed the session; it did.
        #expect(side.device.counters.noEndpoint == 0)
        let printed = out.fileHandleForReading.readDataToEndOfFile()
        client.waitUntilExit()
        #expect(client.terminationStatus == 0)
        #expect(String(decoding: printed, as: UTF8.self) == "ping from wireguard-go side 10.77.0.1 7\n")
        let dump = try namespace.peerDump()
        #expect(dump.count >= 7 && (Int(dump[4]) ?? 0) > 0)
    }

    /// Under load we answer wireguard-go's initiation with a cookie reply; wireguard-go must decrypt it (XChaCha20,
    /// its mac1 as AAD) and retry with a mac2 we accept.
    @Test(.enabled(if: WireGuardGoNamespace.prerequisitesMissing == nil), .timeLimit(.minutes(1)))
    func cookieReplyAcceptedByWireGuardGo() throws {
        let namespace = WireGuardGoNamespace(slot: 3)
        defer { namespace.tearDown() }
        try namespace.setUp()
        var side = try Self.makeSide(namespace)
        side.device.forceUnderLoad = true

        let script = """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("10.77.0.2", 40001))
            s.sendto(b"behind a cookie", ("10.77.0.1", 9))
            """
        try namespace.inNamespace(["python3", "-c", script])
        let got = side.run(seconds: 15) { packet in
            let bytes = packet.getBytes(at: packet.readerIndex, length: packet.readableBytes) ?? []
            return bytes.count >= 28 && bytes[9] == 17 && String(decoding: bytes[28...], as: UTF8.self) == "behind a cookie"
        }
        #expect(got, "counters \(side.device.counters)")
        #expect(side.device.counters.cookieRepliesSent >= 1)
        #expect(side.device.counters.initiationsReceived == 1)
    }
}
