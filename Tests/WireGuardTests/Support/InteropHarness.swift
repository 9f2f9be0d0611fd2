import Foundation
import NIOCore
import NetstackWire
@testable import WireGuard

#if canImport(Glibc)
import Glibc
import TestSupport
#endif

/// A network namespace with wireguard-go inside, joined to the root namespace by a veth pair.
/// Everything it creates is removed by `tearDown()` (call it with `defer`), also after partial setup.
final class WireGuardGoNamespace {
    let name: String
    let hostVeth: String
    /// wireguard-go's interface. Unique per test: its UAPI socket (/var/run/wireguard/NAME.sock) is a file shared
    /// by every namespace, so two instances named alike would configure each other.
    let interface: String
    let hostAddress: String
    let namespaceAddress: String
    /// The same veth pair also carries IPv6 (ULA, no DAD) for tests with an IPv6 outer path.
    let hostAddress6: String
    let namespaceAddress6: String
    let tunnelAddress = "10.77.0.2"
    let ourTunnelAddress = "10.77.0.1"
    let listenPort: UInt16 = 51820
    var process: ChildProcess?
    var privateKeyPath: String
    var publicKey = ""
    private var created = false

    /// `slot` keeps concurrently running tests apart (addresses 10.250.slot.1/.2).
    init(slot: Int) {
        let tag = "\(getpid() % 100000)\(slot)"
        name = "wgt\(tag)"
        hostVeth = "wgh\(tag)"
        interface = "wgi\(tag)"
        hostAddress = "10.250.\(slot).1"
        namespaceAddress = "10.250.\(slot).2"
        hostAddress6 = "fd77:250:\(slot)::1"
        namespaceAddress6 = "fd77:250:\(slot)::2"
        privateKeyPath = NSTemporaryDirectory() + "wgt-\(tag).key"
    }

    static var prerequisitesMissing: String? {
        if getuid() != 0 { return "not root" }
        for tool in ["ip", "wg", "wireguard-go"] where ProcessRunner.which(tool) == nil { return "\(tool) missing" }
        if !FileManager.default.fileExists(atPath: "/dev/net/tun") { return "/dev/net/tun missing" }
        return nil
    }

    @discardableResult
    func sh(_ arguments: [String]) throws -> ProcessResult {
        let result = try ProcessRunner.run(arguments[0], Array(arguments.dropFirst()))
        if result.status != 0 {
            throw HarnessError.command(arguments.joined(separator: " "), result.standardError)
        }
        return result
    }

    @discardableResult
    func inNamespace(_ arguments: [String]) throws -> ProcessResult {
        try sh(["ip", "netns", "exec", name] + arguments)
    }

    /// Creates the namespace, veth pair and wireguard-go's interface (not yet configured).
    func setUp() throws {
        tearDownQuietly()  // leftovers from a crashed earlier run with the same pid
        created = true
        try sh(["ip", "netns", "add", name])
        try sh(["ip", "link", "add", hostVeth, "type", "veth", "peer", "name", "veth0", "netns", name])
        try sh(["ip", "addr", "add", "\(hostAddress)/24", "dev", hostVeth])
        try sh(["ip", "link", "set", hostVeth, "up"])
        try sh(["ip", "-n", name, "addr", "add", "\(namespaceAddress)/24", "dev", "veth0"])
        try sh(["ip", "-6", "addr", "add", "\(hostAddress6)/64", "dev", hostVeth, "nodad"])
        try sh(["ip", "-n", name, "-6", "addr", "add", "\(namespaceAddress6)/64", "dev", "veth0", "nodad"])
        try sh(["ip", "-n", name, "link", "set", "veth0", "up"])
        try sh(["ip", "-n", name, "link", "set", "lo", "up"])

        let key = try sh(["wg", "genkey"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        try (key + "\n").write(toFile: privateKeyPath, atomically: true, encoding: .utf8)
        publicKey = try ProcessRunner.run("wg", ["pubkey"], input: Data((key + "\n").utf8)).output
            .trimmingCharacters(in: .whitespacesAndNewlines)

        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: ProcessRunner.which("ip")!)
        process.arguments = ["netns", "exec", name, "wireguard-go", "-f", interface]
        // WG_GO_LOG=verbose keeps wireguard-go's log in /tmp/<namespace>.log for debugging a failing test.
        let logLevel = ProcessInfo.processInfo.environment["WG_GO_LOG"] ?? "error"
        process.environment = ProcessInfo.processInfo.environment.merging(["WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": logLevel]) { _, b in b }
        if logLevel == "verbose", let log = FileHandle(forWritingAtPath: {
            let path = "/tmp/\(name).log"
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            return path
        }()) {
            process.standardOutput = log
            process.standardError = log
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        self.process = process
        // Wait for the interface (and its UAPI socket) to appear.
        for _ in 0..<100 {
            if let result = try? ProcessRunner.run("ip", ["netns", "exec", name, "wg", "show", interface]), result.status == 0 { return }
            usleep(50_000)
        }
        throw HarnessError.command("wireguard-go did not create \(interface)", "")
    }

    /// Configures the interface: our public key as its only peer, our UDP endpoint, addresses and routes.
    func configure(peerPublicKey: String, peerEndpoint: String, persistentKeepalive: Int? = nil) throws {
        var arguments = ["wg", "set", interface, "private-key", privateKeyPath, "listen-port", "\(listenPort)",
                         "peer", peerPublicKey, "allowed-ips", "\(ourTunnelAddress)/32", "endpoint", peerEndpoint]
        if let persistentKeepalive { arguments += ["persistent-keepalive", "\(persistentKeepalive)"] }
        try inNamespace(arguments)
        try inNamespace(["ip", "addr", "add", "\(tunnelAddress)/24", "dev", interface])
        try inNamespace(["ip", "link", "set", interface, "up"])
    }

    /// `wg show NAME dump`'s peer line: public key, psk, endpoint, allowed ips, latest handshake, rx, tx, keepalive.
    func peerDump() throws -> [String] {
        let lines = try inNamespace(["wg", "show", interface, "dump"]).output.split(separator: "\n")
        guard lines.count >= 2 else { return [] }
        return lines[1].split(separator: "\t").map(String.init)
    }

    func tearDownQuietly() {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            // `ip netns exec` execs wireguard-go in place, so this pid is wireguard-go itself.
            for _ in 0..<40 where process.isRunning { usleep(25_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        process = nil
        _ = try? ProcessRunner.run("ip", ["link", "del", hostVeth])
        _ = try? ProcessRunner.run("ip", ["netns", "del", name])
        try? FileManager.default.removeItem(atPath: privateKeyPath)
    }

    func tearDown() {
        if created { tearDownQuietly() }
    }
}

enum HarnessError: Error, CustomStringConvertible {
    case command(String, String)
    case timeout(String)
    var description: String {
        switch self {
        case .command(let command, let error): "\(command): \(error)"
        case .timeout(let what): "timed out: \(what)"
        }
    }
}

/// A plain kernel UDP socket for the test's side of the tunnel.
final class TestUDPSocket {
    let fd: Int32
    let port: UInt16

    init(bindTo address: String) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError.command("socket", String(cString: strerror(errno))) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = 0
        inet_pton(AF_INET, address, &sin.sin_addr)
        let bound = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw HarnessError.command("bind \(address)", String(cString: strerror(errno)))
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = UInt16(bigEndian: sin.sin_port)
    }

    deinit { close(fd) }

    func send(_ buffer: ByteBuffer, to endpoint: WireGuardEndpoint) {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = endpoint.port.bigEndian
        let bytes = endpoint.addressBytes
        withUnsafeMutableBytes(of: &sin.sin_addr) { raw in for index in 0..<4 { raw[index] = bytes[index] } }
        buffer.withUnsafeReadableBytes { raw in
            _ = withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// Waits up to `timeoutMilliseconds` for one datagram; nil on timeout.
    func receive(timeoutMilliseconds: Int32) -> (ByteBuffer, WireGuardEndpoint)? {
        var pollDescriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pollDescriptor, 1, timeoutMilliseconds) == 1 else { return nil }
        var buffer = ByteBufferAllocator().buffer(capacity: 2048)
        var sin = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 2048) { raw in
            withUnsafeMutablePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &length) }
            }
        }
        guard count > 0 else { return nil }
        let address = withUnsafeBytes(of: sin.sin_addr) { Array($0.prefix(4)) }
        return (buffer, WireGuardEndpoint(addressBytes: address, port: UInt16(bigEndian: sin.sin_port))!)
    }
}

/// The owner's clock for a device: CLOCK_MONOTONIC as `Instant`, and the Unix time at its zero.
enum TestClock {
    static func now() -> Instant {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Instant(nanoseconds: UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec))
    }

    static func unixTimeAtZero() -> Duration {
        var real = timespec(), mono = timespec()
        clock_gettime(CLOCK_REALTIME, &real)
        clock_gettime(CLOCK_MONOTONIC, &mono)
        return .seconds(real.tv_sec - mono.tv_sec) + .nanoseconds(real.tv_nsec - mono.tv_nsec)
    }
}

/// Hand-built IPv4 packets for the interop tests.
enum TestPackets {
    static func checksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var index = 0
        while index + 1 < bytes.count {
            sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }

    static func ipv4(protocol proto: UInt8, from source: [UInt8], to destination: [UInt8], payload: [UInt8]) -> [UInt8] {
        let total = 20 + payload.count
        var header: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0x12, 0x34, 0x40, 0, 64, proto, 0, 0]
        header += source + destination
        let sum = checksum(header)
        header[10] = UInt8(sum >> 8)
        header[11] = UInt8(sum & 0xff)
        return header + payload
    }

    /// An ICMP echo request (type 8) with identifier and sequence.
    static func echoRequest(from source: [UInt8], to destination: [UInt8], identifier: UInt16, sequence: UInt16,
                            data: [UInt8]) -> [UInt8] {
        var icmp: [UInt8] = [8, 0, 0, 0, UInt8(identifier >> 8), UInt8(identifier & 0xff), UInt8(sequence >> 8), UInt8(sequence & 0xff)]
        icmp += data
        let sum = checksum(icmp)
        icmp[2] = UInt8(sum >> 8)
        icmp[3] = UInt8(sum & 0xff)
        return ipv4(protocol: 1, from: source, to: destination, payload: icmp)
    }

    /// A UDP datagram with checksum 0 (allowed for IPv4).
    static func udp(from source: [UInt8], sourcePort: UInt16, to destination: [UInt8], destinationPort: UInt16,
                    payload: [UInt8]) -> [UInt8] {
        let length = 8 + payload.count
        let udp: [UInt8] = [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xff), UInt8(destinationPort >> 8),
                            UInt8(destinationPort & 0xff), UInt8(length >> 8), UInt8(length & 0xff), 0, 0] + payload
        return ipv4(protocol: 17, from: source, to: destination, payload: udp)
    }

    /// Wraps bytes in a buffer with 16 bytes of headroom, as an owner would.
    static func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 16 + bytes.count + 32)
        buffer.moveWriterIndex(forwardBy: 16)
        buffer.moveReaderIndex(forwardBy: 16)
        buffer.writeBytes(bytes)
        return buffer
    }
}
