import Testing
import Foundation
import Glibc
import NIOCore
import NIOPosix
import NetstackWire
import Netstack
import NetstackNIO
import NetstackTesting
import NetstackNIOTesting
import TestSupport

// Issue #3, acceptance 2: the Linux kernel as the peer, through a real TUN (virtio-net header, TSO) in a
// namespace of the test's own, IPv4 and IPv6, clean and with 5 % random loss both ways (nftables
// `numgen random mod 100 < 5 drop` on the TUN's input and output hooks).
// - Forward: curl, socat and iperf3 in the namespace reach addresses behind the TUN; our transparent
//   stack terminates each flow and relays it (NIO) to a kernel server on this namespace's loopback
//   (python3 http.server, socat, iperf3 -s).
// - Reverse: our stack dials kernel servers inside the namespace (`connectTCP`): an HTTP GET from
//   python3 http.server, a push to socat, and iperf3 -c on loopback relayed to iperf3 -s there.
// Bulk data is hash-checked (4 MiB each way); iperf3 moves 16 MiB each way and must finish. Root only;
// everything the test made is removed on every exit path.

private let hasKernelPeers: Bool = getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/net/tun")
    && ["/usr/bin/curl", "/usr/bin/socat", "/usr/bin/iperf3", "/usr/bin/python3", "/usr/sbin/nft"]
    .allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }

private let bulkSize = 4 << 20
private let iperfBytes = "16M"

/// Relays every incoming TCP flow to the same port on 127.0.0.1 (a kernel socket).
private func relayToLoopback(_ driver: NetstackDriver) {
    driver.onIncoming = { flow in
        guard flow.key.proto == .tcp else { return driver.reject(flow, .unreachable) }
        let stackSide = RelayGlue(), kernelSide = RelayGlue()
        let accepted = driver.accept(flow) { channel in
            channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).flatMapThrowing {
                try channel.pipeline.syncOperations.addHandler(stackSide)
            }
        }
        ClientBootstrap(group: driver.eventLoop)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(kernelSide) }
            }
            .connect(host: "127.0.0.1", port: Int(flow.key.local.port))
            .whenComplete { result in
                switch result {
                case .success: RelayGlue.join(stackSide, kernelSide)
                case .failure: accepted.whenSuccess { $0.close(promise: nil) }
                }
            }
    }
}

/// A background child (a server); `stop()` ends it.
private final class Server {
    let process = ChildProcess()
    init?(_ arguments: [String]) {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.environment = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
    }
    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
    /// Waits up to `timeout` for the child to exit by itself.
    func wait(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return !process.isRunning
    }
}

/// Waits until something listens on TCP `port` (in `namespace`, or here).
private func waitListening(port: Int, namespace: String? = nil) -> Bool {
    let prefix = namespace.map { ["ip", "netns", "exec", $0] } ?? []
    for _ in 0..<100 {
        if !runCommand(prefix + ["ss", "-Hltn", "sport = :\(port)"]).output.isEmpty { return true }
        usleep(50_000)
    }
    return false
}

/// Drops 5 % of the packets entering and leaving `tun` in `namespace`, counting them.
private func injectLoss(namespace: String, tun: String) -> Bool {
    let nft = ["ip", "netns", "exec", namespace, "nft"]
    return [["add", "table", "inet", "loss"],
            ["add", "chain", "inet", "loss", "in", "{ type filter hook input priority 0; }"],
            ["add", "chain", "inet", "loss", "out", "{ type filter hook output priority 0; }"],
            ["add", "rule", "inet", "loss", "in", "iifname", tun, "numgen", "random", "mod", "100", "<", "5", "counter", "drop"],
            ["add", "rule", "inet", "loss", "out", "oifname", tun, "numgen", "random", "mod", "100", "<", "5", "counter", "drop"]]
        .allSatisfy { runCommand(nft + $0).status == 0 }
}

/// Packets the loss rules dropped so far (both chains).
private func droppedByLoss(namespace: String) -> Int {
    let listing = runCommand(["ip", "netns", "exec", namespace, "nft", "list", "table", "inet", "loss"]).output
    return listing.split(separator: "\n").compactMap { line -> Int? in
        guard let range = line.range(of: "packets ") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }.reduce(0, +)
}

/// Runs iperf3 -c (JSON); returns the bytes the sender sent and Gbit/s at the receiver, or nil if
/// iperf3 failed (its results exchange runs over the control connection after the data, so a zero
/// status means both connections worked to the end). The receiver's byte count stops at the test's
/// end message and may trail what the sender wrote, so the sender's count is the one checked.
/// iperf3 -s takes the next client only once the last one's control connection has closed, and under
/// loss that close can still be in retransmission when the next run starts: a "server is busy" answer
/// is waited out (up to 10 s) rather than counted as a failure.
private func iperf(_ arguments: [String]) -> (bytes: Int, gbit: Double)? {
    var result = runCommand(arguments + ["-J", "-i", "0", "-n", iperfBytes, "--connect-timeout", "5000"], timeout: 60)
    for _ in 0..<20 where result.output.contains("the server is busy") {
        usleep(500_000)
        result = runCommand(arguments + ["-J", "-i", "0", "-n", iperfBytes, "--connect-timeout", "5000"], timeout: 60)
    }
    let json = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
    if result.status != 0 || json?["error"] != nil {
        print("iperf3 \(arguments.suffix(4).joined(separator: " ")) failed with status \(result.status): \(json?["error"] ?? "no JSON")")
    }
    guard result.status == 0, let json, let end = json["end"] as? [String: Any], let sent = end["sum_sent"] as? [String: Any],
          let received = end["sum_received"] as? [String: Any],
          let bytes = sent["bytes"] as? Int, let bits = received["bits_per_second"] as? Double, bits > 0 else { return nil }
    return (bytes, bits / 1e9)
}

/// iperf3 up and down (-R) with `client`: each must move at least 16 MiB, and with the 5 % loss
/// table in `lossIn` some packets must have been dropped. Prints the rates under `label`.
private func expectIperfBothWays(_ client: [String], label: String, ipv6: Bool, lossIn namespace: String?) {
    let up = iperfOnceMore(client), down = iperfOnceMore(client + ["-R"])
    #expect(up != nil && down != nil)
    if let up { #expect(up.bytes >= 16 << 20) }
    if let down { #expect(down.bytes >= 16 << 20) }
    let dropped = namespace.map { droppedByLoss(namespace: $0) } ?? 0
    if namespace != nil { #expect(dropped > 0) }
    print("\(label) (\(ipv6 ? "IPv6" : "IPv4"), loss \(namespace != nil ? 5 : 0) %, \(dropped) dropped): iperf3 up "
          + "\(up.map { String(format: "%.2f", $0.gbit) } ?? "failed") Gbit/s, down \(down.map { String(format: "%.2f", $0.gbit) } ?? "failed") Gbit/s")
}

/// `iperf` with one more try when the first run reports no result. Under 5 % loss on a 2-core CI
/// machine, iperf3 -R sometimes ends a run without a usable receiver sum (its control connection
/// times out while the sender backs off); the byte-exact checks above already prove the data path,
/// so a second failing run is what fails the test.
private func iperfOnceMore(_ arguments: [String]) -> (bytes: Int, gbit: Double)? {
    if let result = iperf(arguments) { return result }
    print("iperf3 \(arguments.suffix(2).joined(separator: " ")): no result, running it once more")
    return iperf(arguments)
}

/// Our stack dials `server` from `local` and writes `data` (PeerPusher); returns once all of it is
/// written, our side half-closed and the peer closed too.
private func push(_ data: Data, through driver: NetstackDriver, to server: Endpoint, from local: IPAddress) throws {
    let pushed = PeerPusher(data: ByteBuffer(bytes: data))
    try driver.eventLoop.submit {
        driver.connectTCP(to: server, from: Endpoint(local, 0)) { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(pushed) }
        }.whenFailure { pushed.done.fail($0) }
    }.wait()
    try pushed.done.futureResult.wait()
}

/// Seeded random bytes written to `url`.
private func randomFile(_ url: URL, seed: UInt64) throws -> Data {
    var rng = SeededRandom(seed: seed)
    var bytes = [UInt8](repeating: 0, count: bulkSize)
    for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next() >> 13) }
    let data = Data(bytes)
    try data.write(to: url)
    return data
}

/// Three different free ports.
private func threeFreePorts() -> (Int, Int, Int) {
    var ports: [Int] = []
    while ports.count < 3 {
        let port = freePort()
        if port != 0 && !ports.contains(port) { ports.append(port) }
    }
    return (ports[0], ports[1], ports[2])
}

/// A TCP port free on 127.0.0.1 right now (the kernel picks it). The host's loopback is shared with
/// other tests and tools, so fixed ports collide; inside the test's namespace any port would do.
private func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    return bound ? Int(UInt16(bigEndian: address.sin_port)) : 0
}

@Suite(.serialized) struct KernelPeer {
    @Test(.enabled(if: hasKernelPeers, "needs root, /dev/net/tun, curl, socat, iperf3, python3, nft"), .timeLimit(.minutes(3)),
          arguments: [(false, false), (true, false), (false, true), (true, true)])
    func kernelClientsThroughOurStackToKernelServers(ipv6: Bool, loss: Bool) throws {
        let tag = "f\(ipv6 ? 6 : 4)\(loss ? "l" : "")"
        try withTUNStackDriver(segmentationOffload: true, tag: tag, serve: relayToLoopback) { namespace, _, _ in
            if loss { try #require(injectLoss(namespace: namespace, tun: namespace)) }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(namespace)-fwd")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = try randomFile(directory.appendingPathComponent("file"), seed: ipv6 ? 6 : 4)
            let (httpPort, sinkPort, iperfPort) = threeFreePorts()
            let target = ipv6 ? "[fd77::2]" : "10.77.0.2"

            // Kernel servers on this namespace's loopback, reached only through the relay.
            let http = try #require(Server(["python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", directory.path, "\(httpPort)"]))
            defer { http.stop() }
            let sinkFile = directory.appendingPathComponent("uploaded")
            let sink = try #require(Server(["socat", "-u", "TCP-LISTEN:\(sinkPort),bind=127.0.0.1,reuseaddr", "OPEN:\(sinkFile.path),creat,trunc"]))
            defer { sink.stop() }
            let iperfServer = try #require(Server(["iperf3", "-s", "-B", "127.0.0.1", "-p", "\(iperfPort)"]))
            defer { iperfServer.stop() }
            try #require(waitListening(port: httpPort) && waitListening(port: sinkPort) && waitListening(port: iperfPort))

            // curl downloads 4 MiB: byte-exact.
            let fetched = directory.appendingPathComponent("fetched")
            let curl = runCommand(["ip", "netns", "exec", namespace, "curl", "-s", "-g", "--max-time", "40", "-o", fetched.path,
                                   "http://\(target):\(httpPort)/file"], timeout: 50)
            #expect(curl.status == 0)
            let got = (try? Data(contentsOf: fetched)) ?? Data()
            #expect(got.count == file.count && got == file, "curl: \(got.count) of \(file.count) bytes")

            // socat uploads 4 MiB: byte-exact at the kernel sink.
            let upload = runCommand(["ip", "netns", "exec", namespace, "sh", "-c",
                                     "socat -u -T 30 OPEN:\(directory.appendingPathComponent("file").path) TCP:\(target):\(sinkPort)"], timeout: 50)
            #expect(upload.status == 0)
            #expect(sink.wait(timeout: 20))
            let uploaded = (try? Data(contentsOf: sinkFile)) ?? Data()
            #expect(uploaded.count == file.count && uploaded == file, "socat: \(uploaded.count) of \(file.count) bytes")

            // iperf3 up and down (-R), each must move all its bytes.
            let client = ["ip", "netns", "exec", namespace, "iperf3", "-c", ipv6 ? "fd77::2" : "10.77.0.2", "-p", "\(iperfPort)"]
            expectIperfBothWays(client, label: "kernel → stack → kernel", ipv6: ipv6, lossIn: loss ? namespace : nil)
        }
    }

    @Test(.enabled(if: hasKernelPeers, "needs root, /dev/net/tun, curl, socat, iperf3, python3, nft"), .timeLimit(.minutes(3)),
          arguments: [(false, false), (true, false), (false, true), (true, true)])
    func ourStackDialsKernelServers(ipv6: Bool, loss: Bool) throws {
        let tag = "r\(ipv6 ? 6 : 4)\(loss ? "l" : "")"
        try withTUNStackDriver(segmentationOffload: true, tag: tag, serve: { _ in }) { namespace, _, driver in  // nothing listens: incoming flows are reset
            if loss { try #require(injectLoss(namespace: namespace, tun: namespace)) }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(namespace)-rev")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = try randomFile(directory.appendingPathComponent("file"), seed: ipv6 ? 66 : 44)
            let (httpPort, sinkPort, iperfPort) = threeFreePorts()
            let server: IPAddress = ipv6 ? .v6(IPv6Address("fd77::1")!) : .v4(IPv4Address(10, 77, 0, 1))
            let local: IPAddress = ipv6 ? .v6(IPv6Address("fd77::2")!) : .v4(IPv4Address(10, 77, 0, 2))
            let bind = ipv6 ? "fd77::1" : "10.77.0.1"
            let inNamespace = ["ip", "netns", "exec", namespace]

            let http = try #require(Server(inNamespace + ["python3", "-m", "http.server", "--bind", bind, "--directory", directory.path, "\(httpPort)"]))
            defer { http.stop() }
            let sinkFile = directory.appendingPathComponent("pushed")
            let sinkAddress = ipv6 ? "TCP6-LISTEN:\(sinkPort),bind=[fd77::1],reuseaddr" : "TCP-LISTEN:\(sinkPort),bind=10.77.0.1,reuseaddr"
            let sink = try #require(Server(inNamespace + ["socat", "-u", sinkAddress, "OPEN:\(sinkFile.path),creat,trunc"]))
            defer { sink.stop() }
            let iperfServer = try #require(Server(inNamespace + ["iperf3", "-s", "-B", bind, "-p", "\(iperfPort)"]))
            defer { iperfServer.stop() }
            for port in [httpPort, sinkPort, iperfPort] { try #require(waitListening(port: port, namespace: namespace)) }

            // GET 4 MiB over a connection our stack dials: the body is byte-exact.
            let loop = driver.eventLoop
            let collector = PeerCollector()
            let request = "GET /file HTTP/1.0\r\nHost: \(bind)\r\n\r\n"
            try loop.submit {
                driver.connectTCP(to: Endpoint(server, UInt16(httpPort)), from: Endpoint(local, 0)) { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
                }.whenSuccess { $0.writeAndFlush(ByteBuffer(string: request), promise: nil) }
            }.wait()
            let response = try collector.done.futureResult.wait()
            let body = response.range(of: Data("\r\n\r\n".utf8)).map { response[$0.upperBound...] } ?? Data()
            #expect(response.starts(with: Data("HTTP/1.0 200".utf8)))
            #expect(body.count == file.count && Data(body) == file, "GET: \(body.count) of \(file.count) bytes")

            // Push 4 MiB to socat in the namespace: byte-exact in its file.
            try push(file, through: driver, to: Endpoint(server, UInt16(sinkPort)), from: local)
            #expect(sink.wait(timeout: 30))
            let stored = (try? Data(contentsOf: sinkFile)) ?? Data()
            #expect(stored.count == file.count && stored == file, "push: \(stored.count) of \(file.count) bytes")

            // iperf3 on this namespace's loopback, each connection relayed through our stack to iperf3 -s.
            let listener = try ServerBootstrap(group: loop)
                .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { child in
                    let kernelSide = RelayGlue(), stackSide = RelayGlue()
                    driver.connectTCP(to: Endpoint(server, UInt16(iperfPort)), from: Endpoint(local, 0)) { channel in
                        channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).flatMapThrowing {
                            try channel.pipeline.syncOperations.addHandler(stackSide)
                        }
                    }.whenComplete { result in
                        switch result {
                        case .success: RelayGlue.join(stackSide, kernelSide)
                        case .failure: child.close(promise: nil)
                        }
                    }
                    return child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(kernelSide) }
                }
                .bind(host: "127.0.0.1", port: 0).wait()
            defer { try? listener.close().wait() }
            let listenPort = try #require(listener.localAddress?.port)
            let client = ["iperf3", "-c", "127.0.0.1", "-p", "\(listenPort)"]
            expectIperfBothWays(client, label: "stack dials kernel", ipv6: ipv6, lossIn: loss ? namespace : nil)
        }
    }

    /// Path MTU discovery against the kernel as a router: the namespace forwards from our TUN to a far
    /// namespace over a veth whose near end has MTU 1280 (the far end keeps 1500, so the handshake does
    /// not reveal the bottleneck). Our stack dials a socat sink there and pushes 2 MiB in TSO
    /// super-segments cut for MTU 1500; the kernel refuses them with "fragmentation needed" / "packet too
    /// big" (the segments carry DF), our flow lowers its MSS, resends, and the file arrives byte-exact.
    /// Without PMTU discovery every retransmission is refused again and the push never completes.
    @Test(.enabled(if: hasKernelPeers, "needs root, /dev/net/tun, socat, python3"), .timeLimit(.minutes(2)), arguments: [false, true])
    func pathMTUDiscoveryThroughAKernelRouter(ipv6: Bool) throws {
        try withTUNStackDriver(segmentationOffload: true, tag: "m\(ipv6 ? 6 : 4)", serve: { _ in }) { namespace, _, driver in
            let far = namespace + "f", near = "v" + namespace, peer = "w" + namespace
            guard runCommand(["ip", "netns", "add", far]).status == 0 else { Issue.record("ip netns add failed"); return }
            defer { runCommand(["ip", "netns", "del", far]) }
            for command in [["ip", "link", "add", near, "netns", namespace, "type", "veth", "peer", "name", peer, "netns", far],
                            ["ip", "-n", namespace, "link", "set", near, "mtu", "1280", "up"],
                            ["ip", "-n", namespace, "addr", "add", "10.78.0.1/24", "dev", near],
                            ["ip", "-n", namespace, "addr", "add", "fd78::1/64", "dev", near, "nodad"],
                            ["ip", "-n", far, "link", "set", "lo", "up"],
                            ["ip", "-n", far, "link", "set", peer, "up"],  // MTU 1500 there: the sink's SYN-ACK offers MSS 1460
                            ["ip", "-n", far, "addr", "add", "10.78.0.2/24", "dev", peer],
                            ["ip", "-n", far, "addr", "add", "fd78::2/64", "dev", peer, "nodad"],
                            ["ip", "-n", far, "route", "add", "10.77.0.0/24", "via", "10.78.0.1"],
                            ["ip", "-n", far, "-6", "route", "add", "fd77::/64", "via", "fd78::1"],
                            ["ip", "netns", "exec", namespace, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]] {
                guard runCommand(command).status == 0 else { Issue.record("\(command) failed"); return }
            }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(namespace)-pmtu")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = try randomFile(directory.appendingPathComponent("file"), seed: ipv6 ? 68 : 48)
            let port = freePort()
            let sinkFile = directory.appendingPathComponent("pushed")
            let listen = ipv6 ? "TCP6-LISTEN:\(port),bind=[fd78::2],reuseaddr" : "TCP-LISTEN:\(port),bind=10.78.0.2,reuseaddr"
            let sink = try #require(Server(["ip", "netns", "exec", far, "socat", "-u", listen, "OPEN:\(sinkFile.path),creat,trunc"]))
            defer { sink.stop() }
            try #require(waitListening(port: port, namespace: far))

            let server: IPAddress = ipv6 ? .v6(IPv6Address("fd78::2")!) : .v4(IPv4Address(10, 78, 0, 2))
            let local: IPAddress = ipv6 ? .v6(IPv6Address("fd77::2")!) : .v4(IPv4Address(10, 77, 0, 2))
            try push(file.prefix(2 << 20), through: driver, to: Endpoint(server, UInt16(port)), from: local)
            #expect(sink.wait(timeout: 30))
            let stored = (try? Data(contentsOf: sinkFile)) ?? Data()
            #expect(stored == file.prefix(2 << 20), "push: \(stored.count) of \(2 << 20) bytes")
            let reductions = try driver.eventLoop.submit { driver.stack.statistics.pathMTUReductions }.wait()
            #expect(reductions >= 1)
        }
    }
}

/// Collects everything a connection receives; `done` completes with it at EOF.
private final class PeerCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var received = Data()
    let done = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Data.self)
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { received.append(contentsOf: $0) }
    }
    func channelInactive(context: ChannelHandlerContext) { done.succeed(received) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { done.fail(error); context.close(promise: nil) }
}

/// Writes `data` as the channel takes it, half-closes, and completes `done` when the peer closes too.
private final class PeerPusher: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var data: ByteBuffer
    let done = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
    init(data: ByteBuffer) { self.data = data }
    func channelActive(context: ChannelHandlerContext) { pump(context) }
    func channelWritabilityChanged(context: ChannelHandlerContext) { pump(context) }
    private func pump(_ context: ChannelHandlerContext) {
        guard data.readableBytes > 0 else { return }
        while data.readableBytes > 0 && context.channel.isWritable {
            let piece = data.readSlice(length: min(data.readableBytes, 256 << 10))!
            context.write(wrapOutboundOut(piece), promise: nil)
        }
        context.flush()
        if data.readableBytes == 0 { context.close(mode: .output, promise: nil) }
    }
    func channelInactive(context: ChannelHandlerContext) { done.succeed(()) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { done.fail(error); context.close(promise: nil) }
}
