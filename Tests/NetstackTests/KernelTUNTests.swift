import Testing
import Foundation
import Glibc
import NIOCore
import NIOPosix
import NetstackWire
import Netstack
import NetstackNIO
import TestSupport

// Kernel interop: a real TUN (virtio-net header, TSO offloads on) moved into a network namespace of
// the test's own; the kernel's curl and socat talk to servers on our stack behind it. Root only;
// the namespace and the TUN are removed on every exit path (the TUN dies with its fd).

private let isRoot = getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/net/tun")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") && FileManager.default.isExecutableFile(atPath: "/usr/bin/socat")

/// Runs a command, returns its status and stdout. `timeout` kills it.
@discardableResult
func runCommand(_ arguments: [String], timeout: TimeInterval = 60) -> (status: Int32, output: String) {
    let process = ChildProcess()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    // sbin may be missing from a CI runner's PATH; ip lives there.
    process.environment = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return (-1, "") }
    // Outputs here are small (a curl body); bulk data goes through files, so the pipe cannot fill.
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Opens a TUN with IFF_VNET_HDR and TSO/USO offloads (SWIFT-LINUX §2).
func openTUN(name: String) -> CInt? {
    let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    var request = [UInt8](repeating: 0, count: 40)  // struct ifreq: name[16], short flags
    for (i, byte) in name.utf8.prefix(15).enumerated() { request[i] = byte }
    request[16] = 0x01; request[17] = 0x50  // IFF_TUN | IFF_NO_PI (0x1000) | IFF_VNET_HDR (0x4000)
    var headerSize: CInt = 10
    let ok = request.withUnsafeMutableBytes { ioctl(fd, 0x4004_54ca, $0.baseAddress!) } == 0
        && ioctl(fd, 0x4004_54d8, &headerSize) == 0
        && ioctl(fd, 0x4004_54d0, CInt(0x01 | 0x02 | 0x04)) == 0  // TUN_F_CSUM | TSO4 | TSO6
    guard ok else { close(fd); return nil }
    return fd
}

/// A TUN as a `PacketDevice`: reads through a NIO pipe channel (one read = one packet), writes one
/// packet per writev(2) (virtio-net header + packet).
final class TUNDevice: PacketDevice, @unchecked Sendable {
    let fd: CInt
    var channel: (any Channel)?
    var writes = 0, gsoWrites = 0, reads = 0, gsoReads = 0

    init(fd: CInt) { self.fd = fd }

    final class Reader: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let device: TUNDevice
        let deliver: (inout PacketBatch) -> Void
        var batch = PacketBatch(capacity: 64)
        init(device: TUNDevice, deliver: @escaping (inout PacketBatch) -> Void) { self.device = device; self.deliver = deliver }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            guard let header = try? VirtioNetHeader(validating: buffer.readableBytesSpan) else { return }
            buffer.moveReaderIndex(forwardBy: VirtioNetHeader.length)
            device.reads += 1
            if header.isGSO { device.gsoReads += 1 }
            batch.append(Packet(bytes: PacketBuffer(copying: buffer, headroom: Stack.headroom), offload: header))
        }
        func channelReadComplete(context: ChannelHandlerContext) {
            if !batch.isEmpty { deliver(&batch) }
            batch.removeAll()
        }
    }

    func start(on eventLoop: any EventLoop, deliver: @escaping (inout PacketBatch) -> Void) {
        let input = dup(fd)
        // Called on the loop only (the PacketDevice contract), so the closure never crosses threads.
        nonisolated(unsafe) let deliver = deliver
        let future = NIOPipeBootstrap(group: eventLoop)
            .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65600))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Reader(device: self, deliver: deliver))
                }
            }
            .takingOwnershipOfDescriptor(input: input)
        future.whenSuccess { self.channel = $0 }
    }

    func write(_ batch: inout PacketBatch) {
        var header = [UInt8](repeating: 0, count: 10)
        for packet in batch.packets {
            header.withUnsafeMutableBytes { packet.offload.write(to: $0) }
            if packet.offload.isGSO { gsoWrites += 1 }
            writes += 1
            header.withUnsafeBytes { h in
                packet.bytes.withUnsafeReadableBytes { p in
                    var iov = [iovec(iov_base: UnsafeMutableRawPointer(mutating: h.baseAddress), iov_len: h.count),
                               iovec(iov_base: UnsafeMutableRawPointer(mutating: p.baseAddress), iov_len: p.count)]
                    _ = writev(fd, &iov, 2)
                }
            }
        }
    }

    func stop() { _ = channel?.close() }
}

/// Serves HTTP on :8080 and echo (with half-close) on :9000 for any destination; refuses the rest.
private func serve(_ driver: NetstackDriver, body: String) {
    driver.onIncoming = { flow in
        switch (flow.key.proto, flow.key.local.port) {
        case (.tcp, 8080):
            _ = driver.accept(flow) { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(HTTPResponder(body: body)) }
            }
        case (.tcp, 9000):
            _ = driver.accept(flow) { channel in
                channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(Echo())
                }
            }
        default:
            driver.reject(flow, .reset)
        }
    }
}

private final class HTTPResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let body: String
    var request = ""
    var answered = false
    init(body: String) { self.body = body }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        request += buffer.readString(length: buffer.readableBytes) ?? ""
        guard !answered, request.contains("\r\n\r\n") else { return }
        answered = true
        let response = "HTTP/1.0 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response)), promise: nil)
        context.close(mode: .output, promise: nil)
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {}
}

/// A namespace with a TUN whose far side is a transparent stack on its own loop; `body` runs with the
/// namespace name. Everything is torn down on every exit path.
func withTUNStack(segmentationOffload: Bool, tag: String,
                  serve configure: @escaping (NetstackDriver) -> Void,
                  _ body: (String, TUNDevice, any EventLoop) throws -> Void) throws {
    try withTUNStackDriver(segmentationOffload: segmentationOffload, tag: tag, serve: configure) { namespace, device, driver in
        try body(namespace, device, driver.eventLoop)
    }
}

/// `withTUNStack` that hands `body` the driver (to dial from the stack).
func withTUNStackDriver(segmentationOffload: Bool, tag: String,
                        serve configure: @escaping (NetstackDriver) -> Void,
                        _ body: (String, TUNDevice, NetstackDriver) throws -> Void) throws {
    let suffix = "\(getpid() % 100_000)\(tag)"
    let namespace = "nstk\(suffix)", tunName = "nstk\(suffix)"
    guard runCommand(["ip", "netns", "add", namespace]).status == 0 else { Issue.record("ip netns add failed"); return }
    defer { runCommand(["ip", "netns", "del", namespace]) }
    guard let fd = openTUN(name: tunName) else { Issue.record("cannot open TUN"); return }
    defer { close(fd) }
    for command in [["ip", "link", "set", tunName, "netns", namespace],
                    ["ip", "-n", namespace, "link", "set", "lo", "up"],
                    ["ip", "-n", namespace, "addr", "add", "10.77.0.1/24", "dev", tunName],
                    ["ip", "-n", namespace, "addr", "add", "fd77::1/64", "dev", tunName, "nodad"],
                    ["ip", "-n", namespace, "link", "set", tunName, "up"]] {
        guard runCommand(command).status == 0 else { Issue.record("\(command) failed"); return }
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    let loop = group.next()
    let configuration = {
        var c = StackConfiguration()
        c.transparent = true
        c.tcpSegmentationOffload = segmentationOffload
        return c
    }()
    let device = TUNDevice(fd: fd)
    nonisolated(unsafe) let configure = configure  // runs once, on the loop, while we wait
    let driver = try loop.submit {
        let driver = NetstackDriver(stack: Stack(configuration: configuration, seed: 42), device: device, eventLoop: loop)
        configure(driver)
        driver.start()
        return driver
    }.wait()
    defer { try? loop.submit { driver.stop() }.wait() }
    try body(namespace, device, driver)
}

@Test(.enabled(if: isRoot, "needs root, /dev/net/tun, curl and socat"), .timeLimit(.minutes(3)), arguments: [false, true])
func kernelClientsReachServersOnOurStackThroughTUN(segmentationOffload: Bool) throws {
    try withTUNStack(segmentationOffload: segmentationOffload, tag: segmentationOffload ? "g" : "",
                     serve: { serve($0, body: "hello from the netstack\n") }) { namespace, device, loop in
        // curl over IPv4 and IPv6 to addresses that exist nowhere but behind the TUN.
        let v4 = runCommand(["ip", "netns", "exec", namespace, "curl", "-s", "--max-time", "10", "http://10.77.0.2:8080/"])
        #expect(v4.status == 0 && v4.output == "hello from the netstack\n")
        let v6 = runCommand(["ip", "netns", "exec", namespace, "curl", "-s", "--max-time", "10", "http://[fd77::2]:8080/"])
        #expect(v6.status == 0 && v6.output == "hello from the netstack\n")
        // A refused port: curl sees a reset (exit 7, "couldn't connect").
        let refused = runCommand(["ip", "netns", "exec", namespace, "curl", "-s", "--max-time", "10", "http://10.77.0.2:81/"])
        #expect(refused.status == 7)

        // 8 MiB through socat to the echo server and back, byte-exact.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(namespace)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var rng = SeededRandom(seed: 2026)
        var bytes = [UInt8](repeating: 0, count: 8 << 20)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next() >> 17) }
        let input = directory.appendingPathComponent("in"), output = directory.appendingPathComponent("out")
        try Data(bytes).write(to: input)
        let started = Date()
        let echo = runCommand(["ip", "netns", "exec", namespace, "sh", "-c",
                        "socat -t 30 -T 30 - TCP:10.77.0.2:9000 < \(input.path) > \(output.path)"], timeout: 50)
        let seconds = Date().timeIntervalSince(started)
        let echoed = try Data(contentsOf: output)
        #expect(echo.status == 0)
        #expect(echoed.count == bytes.count)
        #expect(echoed == Data(bytes))
        let stats = try loop.submit { (device.reads, device.gsoReads, device.writes, device.gsoWrites) }.wait()
        print("kernel echo (TSO out \(segmentationOffload)): 8 MiB each way in \(String(format: "%.2f", seconds)) s; TUN reads \(stats.0) (GSO \(stats.1)), writes \(stats.2) (GSO \(stats.3))")
        if segmentationOffload { #expect(stats.3 > 0) }
    }
}

/// Discards what it reads and counts it.
private final class Discard: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var bytes = 0
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { bytes += unwrapInboundIn(data).readableBytes }
}

/// Sends `total` bytes as fast as the channel takes them, then closes.
private final class Source: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var remaining: Int
    let chunk = ByteBuffer(repeating: 0x6e, count: 256 * 1024)
    init(total: Int) { remaining = total }
    func channelActive(context: ChannelHandlerContext) { pump(context) }
    func channelWritabilityChanged(context: ChannelHandlerContext) { pump(context) }
    func pump(_ context: ChannelHandlerContext) {
        while remaining > 0 && context.channel.isWritable {
            let piece = chunk.getSlice(at: 0, length: min(remaining, chunk.readableBytes))!
            remaining -= piece.readableBytes
            context.write(wrapOutboundOut(piece), promise: nil)
        }
        context.flush()
        if remaining == 0 { context.close(mode: .output, promise: nil) }
    }
}

/// Throughput through the TUN (set NETSTACK_BENCH=1; run a release build): the kernel's socat
/// uploads to a discard server on our stack, then downloads from a source on it.
@Suite(.serialized) struct KernelThroughput {
@Test(.enabled(if: isRoot && ProcessInfo.processInfo.environment["NETSTACK_BENCH"] != nil, "NETSTACK_BENCH=1 and root"),
      arguments: [true, false])
func kernelThroughputThroughTUN(segmentationOffload: Bool) throws {
    let total = 1 << 30
    let discard = Discard()
    try withTUNStack(segmentationOffload: segmentationOffload, tag: "b\(segmentationOffload ? 1 : 0)", serve: { driver in
        driver.onIncoming = { flow in
            _ = driver.accept(flow) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if flow.key.local.port == 9001 {
                        try channel.pipeline.syncOperations.addHandler(discard)
                    } else {
                        try channel.pipeline.syncOperations.addHandler(Source(total: total))
                    }
                }
            }
        }
    }) { namespace, device, loop in
        var started = Date()
        let up = runCommand(["ip", "netns", "exec", namespace, "sh", "-c",
                      "head -c \(total) /dev/zero | socat -u -b 262144 - TCP:10.77.0.2:9001"], timeout: 120)
        let upSeconds = Date().timeIntervalSince(started)
        started = Date()
        let down = runCommand(["ip", "netns", "exec", namespace, "sh", "-c",
                        "socat -u -b 262144 TCP:10.77.0.2:9002 - | wc -c"], timeout: 120)
        let downSeconds = Date().timeIntervalSince(started)
        let received = try loop.submit { discard.bytes }.wait()
        #expect(up.status == 0 && received == total)
        #expect(down.output.trimmingCharacters(in: .whitespacesAndNewlines) == String(total))
        let gbit = { (seconds: Double) in String(format: "%.2f", Double(total) * 8 / seconds / 1e9) }
        print("TUN throughput (TSO out \(segmentationOffload)): up \(gbit(upSeconds)) Gbit/s, down \(gbit(downSeconds)) Gbit/s (1 GiB each)")
    }
}
}
