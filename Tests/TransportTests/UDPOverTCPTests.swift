// sing's UDP-over-TCP: the codecs against bytes written from sing's format description
// (common/uot), and both ends of a stream on an EmbeddedChannel. Go sing-box at the other end is
// in InteropTests/UDPOverTCPInteropTests.swift.
import Adapter
import NIOCore
import NIOEmbedded
import Testing
@testable import Transport

@Suite struct UDPOverTCPCodecTests {
    @Test func requestUsesSOCKSAddressTypes() throws {
        var out = ByteBuffer()
        try UDPOverTCPRequest(isConnect: false, destination: Destination(ip: .v4(0x0A01_0203), port: 53)).write(to: &out)
        #expect(Array(out.readableBytesView) == [0, 1, 10, 1, 2, 3, 0, 53])
        out.clear()
        try UDPOverTCPRequest(isConnect: true, destination: Destination(domain: "a.io", port: 443)).write(to: &out)
        #expect(Array(out.readableBytesView) == [1, 3, 4, 0x61, 0x2E, 0x69, 0x6F, 0x01, 0xBB])
        let read = try UDPOverTCPRequest.read(from: &out)
        #expect(read == UDPOverTCPRequest(isConnect: true, destination: Destination(domain: "a.io", port: 443)))
        #expect(out.readableBytes == 0)
    }

    @Test func packetsUseUoTFamilies() throws {
        let framing = UDPOverTCPFraming(connectDestination: nil)
        var out = ByteBuffer()
        let v6 = Destination(ip: IPAddress("2001:db8::1")!, port: 5353)
        #expect(framing.write(ByteBuffer(bytes: [9, 8]), to: Destination(ip: .v4(0x7F00_0001), port: 53), into: &out))
        #expect(framing.write(ByteBuffer(bytes: [7]), to: v6, into: &out))
        #expect(framing.write(ByteBuffer(bytes: []), to: Destination(domain: "x.y", port: 1), into: &out))
        let bytes = Array(out.readableBytesView)
        #expect(Array(bytes[0..<11]) == [0, 127, 0, 0, 1, 0, 53, 0, 2, 9, 8])
        #expect(bytes[11] == 1 && bytes[28...29] == [0x14, 0xE9] && Array(bytes[30...32]) == [0, 1, 7])
        #expect(Array(bytes[33...]) == [2, 3, 0x78, 0x2E, 0x79, 0, 1, 0, 0])
        var packets: [(ByteBuffer, Destination)] = []
        while let packet = try framing.read(from: &out) { packets.append((packet.payload, packet.address)) }
        #expect(packets.map(\.1) == [Destination(ip: .v4(0x7F00_0001), port: 53), v6, Destination(domain: "x.y", port: 1)])
        #expect(packets.map { Array($0.0.readableBytesView) } == [[9, 8], [7], []])
    }

    @Test func connectModeCarriesNoAddresses() throws {
        let target = Destination(ip: .v4(1), port: 2)
        let framing = UDPOverTCPFraming(connectDestination: target)
        var out = ByteBuffer()
        #expect(framing.write(ByteBuffer(bytes: [5, 6, 7]), to: Destination(ip: .v4(99), port: 9), into: &out))
        #expect(Array(out.readableBytesView) == [0, 3, 5, 6, 7])
        let packet = try #require(try framing.read(from: &out))
        #expect(packet.address == target && Array(packet.payload.readableBytesView) == [5, 6, 7])
    }

    /// Every strict prefix of a packet or a request is "need more" and consumes nothing.
    @Test func prefixesConsumeNothing() throws {
        let framing = UDPOverTCPFraming(connectDestination: nil)
        var whole = ByteBuffer()
        #expect(framing.write(ByteBuffer(bytes: [1, 2, 3]), to: Destination(domain: "example.org", port: 80), into: &whole))
        for cut in 0..<whole.readableBytes {
            var prefix = whole.getSlice(at: 0, length: cut)!
            #expect(try framing.read(from: &prefix) == nil)
            #expect(prefix.readerIndex == 0)
        }
        var request = ByteBuffer()
        try UDPOverTCPRequest(isConnect: false, destination: Destination(ip: IPAddress("::1")!, port: 7)).write(to: &request)
        for cut in 0..<request.readableBytes {
            var prefix = request.getSlice(at: 0, length: cut)!
            #expect(try UDPOverTCPRequest.read(from: &prefix) == nil)
            #expect(prefix.readerIndex == 0)
        }
    }

    @Test func badInputThrowsOrIsRefused() throws {
        let framing = UDPOverTCPFraming(connectDestination: nil)
        var garbage = ByteBuffer(bytes: [7, 1, 2, 3, 4, 0, 1, 0, 0])
        #expect(throws: UDPOverTCPError.badAddressFamily(7)) { try framing.read(from: &garbage) }
        var empty = ByteBuffer(bytes: [2, 0, 0, 1, 0, 0])
        #expect(throws: UDPOverTCPError.emptyDomain) { try framing.read(from: &empty) }
        var requestGarbage = ByteBuffer(bytes: [0, 9, 1, 2])
        #expect(throws: UDPOverTCPError.badAddressFamily(9)) { try UDPOverTCPRequest.read(from: &requestGarbage) }
        // Too long for the 2-byte length, or a name too long for its length byte: nothing written.
        var out = ByteBuffer()
        #expect(!framing.write(ByteBuffer(repeating: 0, count: 65_536), to: Destination(ip: .v4(1), port: 1), into: &out))
        #expect(!framing.write(ByteBuffer(bytes: [1]), to: Destination(domain: String(repeating: "a", count: 256), port: 1), into: &out))
        #expect(out.readableBytes == 0)
        // Random bytes never trap.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var bytes = ByteBuffer(bytes: (0..<Int.random(in: 0..<40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            while (try? framing.read(from: &bytes)).flatMap({ $0 }) != nil {}
            _ = try? UDPOverTCPRequest.read(from: &bytes)
        }
    }

    @Test func versionsPickTheMagicNames() throws {
        #expect(try UDPOverTCP.requestDestination(version: 0) == Destination(domain: "sp.v2.udp-over-tcp.arpa", port: 0))
        #expect(try UDPOverTCP.requestDestination(version: 2) == Destination(domain: "sp.v2.udp-over-tcp.arpa", port: 0))
        #expect(try UDPOverTCP.requestDestination(version: 1) == Destination(domain: "sp.udp-over-tcp.arpa", port: 0))
        #expect(throws: AdapterError.self) { try UDPOverTCP.requestDestination(version: 3) }
        #expect((try? UDPOverTCP.requestDestination(version: 3)).map { _ in "" } == nil)
        do { _ = try UDPOverTCP.requestDestination(version: 3) } catch { #expect("\(error)".contains("unknown protocol version: 3")) }
    }
}

/// Collects what a `PacketConnection` delivers.
final class Collected: PacketReceiver, @unchecked Sendable {
    var packets: [(bytes: [UInt8], from: Destination)] = []
    var closed = false
    func packetReceived(_ payload: ByteBuffer, from source: Destination) { packets.append((Array(payload.readableBytesView), source)) }
    func packetConnectionClosed() { closed = true }
}

/// Records the flows a wrapped inbound hands on.
final class RecordingFlowHandler: FlowHandler, @unchecked Sendable {
    var tcp: [FlowMetadata] = []
    var udp: [(any PacketConnection, FlowMetadata)] = []
    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) { tcp.append(metadata) }
    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) { udp.append((connection, metadata)) }
}

@Suite struct UDPOverTCPStreamTests {
    @Test func clientWritesTheRequestOnceInFrontOfTheFirstPacket() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let dns = Destination(ip: .v4(0x7F00_0001), port: 53)
        let connection = try UDPOverTCPConnection(client: channel, request: UDPOverTCPRequest(isConnect: false, destination: dns))
        let collected = Collected()
        connection.setReceiver(collected)
        connection.writePacket(ByteBuffer(bytes: [0xAA]), to: dns)
        connection.writePacket(ByteBuffer(bytes: [0xBB]), to: dns)
        connection.flush()
        var written: [UInt8] = []
        while let chunk = try channel.readOutbound(as: ByteBuffer.self) { written += Array(chunk.readableBytesView) }
        #expect(written == [0, 1, 127, 0, 0, 1, 0, 53] + [0, 127, 0, 0, 1, 0, 53, 0, 1, 0xAA] + [0, 127, 0, 0, 1, 0, 53, 0, 1, 0xBB])
        // A reply split across reads arrives whole, with its address.
        try channel.writeInbound(ByteBuffer(bytes: [0, 127, 0, 0, 1]))
        try channel.writeInbound(ByteBuffer(bytes: [0, 53, 0, 2, 1]))
        #expect(collected.packets.isEmpty)
        try channel.writeInbound(ByteBuffer(bytes: [2]))
        #expect(collected.packets.map(\.bytes) == [[1, 2]] && collected.packets.first?.from == dns)
        // Garbage ends the stream.
        try channel.writeInbound(ByteBuffer(bytes: [9, 9, 9]))
        #expect(collected.closed)
        #expect(!channel.isActive)
    }

    @Test func serverReadsTheRequestAndHandsOnAUDPFlow() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let next = RecordingFlowHandler()
        let handler = UDPOverTCPFlowHandler(next: next, logger: ContextLogger(core: .disabled, name: ""))
        var metadata = FlowMetadata(inbound: "in", inboundType: "socks", network: .tcp, source: nil, destination: Destination(domain: UDPOverTCP.magicAddress, port: 0))
        handler.handleTCP(channel, metadata: metadata, responder: nil)
        channel.embeddedEventLoop.run()
        #expect(next.tcp.isEmpty && next.udp.isEmpty)
        // The request and the first packet in one read.
        try channel.writeInbound(ByteBuffer(bytes: [0, 3, 4, 0x64, 0x6E, 0x73, 0x2E, 0, 53] + [2, 4, 0x64, 0x6E, 0x73, 0x2E, 0, 53, 0, 1, 0x42]))
        let (connection, flow) = try #require(next.udp.first)
        #expect(flow.network == .udp && flow.destination == Destination(domain: "dns.", port: 53) && !flow.udpConnect)
        let collected = Collected()
        connection.setReceiver(collected)
        #expect(collected.packets.map(\.bytes) == [[0x42]] && collected.packets.first?.from == Destination(domain: "dns.", port: 53))
        connection.writePacket(ByteBuffer(bytes: [0x43]), to: Destination(ip: .v4(0x0A00_0001), port: 53))
        connection.flush()
        let reply = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(reply.readableBytesView) == [0, 10, 0, 0, 1, 0, 53, 0, 1, 0x43])
        // Other destinations pass through as TCP.
        metadata.destination = Destination(domain: "example.org", port: 80)
        handler.handleTCP(EmbeddedChannel(), metadata: metadata, responder: nil)
        #expect(next.tcp.count == 1)
    }

    @Test func legacyServerNeedsNoRequest() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let next = RecordingFlowHandler()
        let handler = UDPOverTCPFlowHandler(next: next, logger: ContextLogger(core: .disabled, name: ""))
        handler.handleTCP(channel, metadata: FlowMetadata(inbound: "in", inboundType: "socks", network: .tcp, source: nil,
                                                          destination: Destination(domain: UDPOverTCP.legacyMagicAddress, port: 0)),
                          responder: nil)
        channel.embeddedEventLoop.run()
        let (_, flow) = try #require(next.udp.first)
        #expect(flow.destination == Destination(ip: .v4(0), port: 0))
    }

    @Test func truncatedRequestClosesWithoutAFlow() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let next = RecordingFlowHandler()
        let handler = UDPOverTCPFlowHandler(next: next, logger: ContextLogger(core: .disabled, name: ""))
        handler.handleTCP(channel, metadata: FlowMetadata(inbound: "in", inboundType: "socks", network: .tcp, source: nil,
                                                          destination: Destination(domain: UDPOverTCP.magicAddress, port: 0)),
                          responder: nil)
        channel.embeddedEventLoop.run()
        try channel.writeInbound(ByteBuffer(bytes: [0, 1, 10]))
        _ = try? channel.close().wait()
        #expect(next.udp.isEmpty)
    }
}
