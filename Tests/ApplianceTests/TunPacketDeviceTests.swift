import Adapter
import Foundation
import Glibc
import NIOCore
import NIOPosix
import Netlink
import Netstack
import NetstackNIO
import Testing
import TunDevice

/// Serves a fixed HTTP answer on :8080 and echoes on :9000, for any destination behind the TUN.
private final class HTTPAnswer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var request = ""
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        request += buffer.readString(length: buffer.readableBytes) ?? ""
        guard !answered, request.contains("\r\n\r\n") else { return }
        answered = true
        let body = "hello through TunPacketDevice\n"
        let response = "HTTP/1.0 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response)), promise: nil)
        context.close(mode: .output, promise: nil)
    }
}

private final class Echo: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.write(data, promise: nil) }
    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelEvent, case .inputClosed = event as! ChannelEvent { context.close(mode: .output, promise: nil) }
    }
}

@Suite(.enabled(if: isRoot, "needs root for network namespaces"))
struct TunPacketDeviceTests {
    /// The kernel's curl and socat reach servers on our netstack through our TUN device: reads with
    /// vnet headers and GSO on the event loop, one writev per packet back, TSO both ways.
    @Test(.timeLimit(.minutes(1)), arguments: [TunPacketDevice.ReadPath.pollThread, .nioPipe])
    func kernelClientsReachTheNetstackThroughOurDevice(readPath: TunPacketDevice.ReadPath) throws {
        let namespace = try TestNamespace("tpd")
        let tun = try NetworkNamespace.run(named: namespace.name) {
            let tun = try TunDevice(TunOptions(name: "sbtpd0"))
            try NetlinkSocket().configureInterface(named: tun.name, mtu: 1500, addresses: [NetworkPrefix("10.77.0.1/24")!])
            return tun
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let device = TunPacketDevice(device: tun, readPath: readPath)
        let driver = try loop.submit {
            var configuration = StackConfiguration()
            configuration.transparent = true
            configuration.tcpSegmentationOffload = true
            let driver = NetstackDriver(stack: Stack(configuration: configuration, seed: 7), device: device, eventLoop: loop)
            driver.onIncoming = { flow in
                switch flow.key.local.port {
                case 8080:
                    _ = driver.accept(flow) { channel in
                        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(HTTPAnswer()) }
                    }
                case 9000:
                    _ = driver.accept(flow) { channel in
                        channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).flatMapThrowing {
                            try channel.pipeline.syncOperations.addHandler(Echo())
                        }
                    }
                default:
                    driver.reject(flow, .reset)
                }
            }
            driver.start()
            return driver
        }.wait()
        defer { try? loop.submit { driver.stop() }.wait() }

        let (status, body) = namespace.status(["curl", "-s", "--max-time", "10", "http://10.77.0.2:8080/"])
        #expect(status == 0)
        #expect(body == "hello through TunPacketDevice\n")

        // 2 MiB echoed byte-exact.
        let directory = NSTemporaryDirectory() + "sbt-tpd-\(getpid())-\(readPath)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var bytes = [UInt8](repeating: 0, count: 2 << 20)
        var state: UInt64 = 0x9E3779B97F4A7C15
        for index in bytes.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes[index] = UInt8(truncatingIfNeeded: state >> 33)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/in"))
        let echo = namespace.status(["sh", "-c", "exec socat -t 20 -T 20 - TCP:10.77.0.2:9000 < \(directory)/in > \(directory)/out"], timeout: 40)
        #expect(echo.0 == 0)
        let echoed = try Data(contentsOf: URL(fileURLWithPath: directory + "/out"))
        #expect(echoed.count == bytes.count)
        #expect(echoed == Data(bytes))
        #expect(tun.droppedReads == 0)
    }
}
