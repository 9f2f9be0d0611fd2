import TestSupport
import Foundation
import NIOCore
import NIOPosix
import NetstackWire
import Testing
@testable import WireGuard

/// Carries a loop-confined value into a closure that runs on that loop.
struct UncheckedSendableBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// The device on a real NIO UDP channel against wireguard-go: the handler owns time (scheduled timers),
/// sockets and the flush; inner packets come out of the pipeline and go into it.
@Suite(.serialized) struct WireGuardChannelHandlerTests {
    /// Collects decrypted inner packets and answers UDP datagrams to port 7 (an echo service inside the tunnel).
    final class EchoInTunnel: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let received: EventLoopPromise<[UInt8]>

        init(received: EventLoopPromise<[UInt8]>) { self.received = received }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let packet = unwrapInboundIn(data)
            let bytes = packet.getBytes(at: packet.readerIndex, length: packet.readableBytes) ?? []
            guard bytes.count >= 28, bytes[9] == 17, bytes[22] == 0, bytes[23] == 7 else { return }
            let reply = TestPackets.udp(from: Array(bytes[16..<20]), sourcePort: 7, to: Array(bytes[12..<16]),
                                        destinationPort: UInt16(bytes[20]) << 8 | UInt16(bytes[21]), payload: Array(bytes[28...]))
            context.writeAndFlush(wrapOutboundOut(TestPackets.buffer(reply)), promise: nil)
            received.succeed(bytes)
        }
    }

    @Test(.enabled(if: WireGuardGoNamespace.prerequisitesMissing == nil), .timeLimit(.minutes(1)), arguments: [false, true])
    func echoThroughNIOChannel(outerIPv6: Bool) throws {
        let namespace = WireGuardGoNamespace(slot: outerIPv6 ? 5 : 4)
        defer { namespace.tearDown() }
        try namespace.setUp()

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        var privateKey = Bytes32.zero
        privateKey.withUnsafeMutableBytes { systemRandom($0) }
        let device = WireGuardDevice(configuration: .init(privateKey: privateKey, unixTimeAtZero: TestClock.unixTimeAtZero()))
        let peerKey = try #require(Bytes32(base64: namespace.publicKey))
        let peerEndpoint = outerIPv6 ? "[\(namespace.namespaceAddress6)]:\(namespace.listenPort)"
                                     : "\(namespace.namespaceAddress):\(namespace.listenPort)"
        device.addPeer(.init(publicKey: peerKey, endpoint: WireGuardEndpoint(parsing: peerEndpoint),
                             allowedIPs: [([10, 77, 0, 2], 32)]))
        // The device is confined to the channel's loop; the box only carries it there.
        let box = UncheckedSendableBox(device)
        let received = group.next().makePromise(of: [UInt8].self)
        let channel = try DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(WireGuardChannelHandler(device: box.value))
                    try channel.pipeline.syncOperations.addHandler(EchoInTunnel(received: received))
                }
            }
            .bind(host: outerIPv6 ? namespace.hostAddress6 : namespace.hostAddress, port: 0).wait()
        defer { try? channel.close().wait() }
        let port = try #require(channel.localAddress?.port)
        let ourEndpoint = outerIPv6 ? "[\(namespace.hostAddress6)]:\(port)" : "\(namespace.hostAddress):\(port)"
        try namespace.configure(peerPublicKey: device.identity.publicKey.base64, peerEndpoint: ourEndpoint)

        // wireguard-go initiates (a client in the namespace sends to our tunnel address) and expects the echo.
        let script = """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(8)
            s.bind(("10.77.0.2", 0))
            s.sendto(b"through NIO", ("10.77.0.1", 7))
            data, addr = s.recvfrom(2048)
            print(data.decode(), addr[0], addr[1])
            """
        // Never wait forever: fail the promise after 10 s if nothing came through.
        channel.eventLoop.scheduleTask(in: .seconds(10)) { received.fail(HarnessError.timeout("inner packet")) }
        let result = try ProcessRunner.run("ip", ["netns", "exec", namespace.name, "python3", "-c", script])
        let counters0 = try channel.eventLoop.submit { "\(box.value.counters)" }.wait()
        #expect(result.output == "through NIO 10.77.0.1 7\n", "\(result.standardError) \(counters0)")
        let bytes = try received.futureResult.wait()
        #expect(String(decoding: bytes[28...], as: UTF8.self) == "through NIO")
        let counters = try channel.eventLoop.submit { box.value.counters }.wait()
        #expect(counters.initiationsReceived == 1 && counters.packetsReceived == 1)
        // wireguard-go saw the handshake and traffic both ways.
        let dump = try namespace.peerDump()
        #expect(dump.count >= 7 && (Int(dump[4]) ?? 0) > 0 && (Int(dump[6]) ?? 0) > 0)
        if dump.count >= 3 { #expect(dump[2] == ourEndpoint) }
    }
}
