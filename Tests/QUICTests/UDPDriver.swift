// A blocking loopback UDP driver for the interop tests: one socket, poll with the connection's
// deadline, the monotonic clock as `Instant`. The connection itself never sees any of this.
import Foundation
import Glibc
import NIOCore
import NetstackWire
@testable import QUIC
import Synchronization
import TestSupport

func monotonicNow() -> Instant {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Instant(nanoseconds: UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec))
}

/// A UDP socket bound to 127.0.0.1. Addresses are built as the 16 bytes of a Linux `sockaddr_in`
/// (family in host order, port and address in network order): a clean build may resolve
/// `sockaddr_in`'s members through NIO's CNIOLinux, which this target does not import.
final class LoopbackUDPSocket {
    let fd: Int32
    private(set) var port: UInt16 = 0

    init(port: UInt16 = 0) throws {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = Self.address(port: port)
        let bound = address.withUnsafeMutableBytes { raw in
            bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        guard bound == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(address.count)
        _ = address.withUnsafeMutableBytes { raw in getsockname(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length) }
        self.port = Self.port(of: address)
    }

    deinit { close(fd) }

    static func address(port: UInt16) -> [UInt8] {
        let family = UInt16(AF_INET)
        return [UInt8(family & 0xff), UInt8(family >> 8), UInt8(port >> 8), UInt8(port & 0xff), 127, 0, 0, 1] + [UInt8](repeating: 0, count: 8)
    }

    static func port(of address: [UInt8]) -> UInt16 { UInt16(address[2]) << 8 | UInt16(address[3]) }

    func send(_ datagram: ByteBuffer, to port: UInt16) {
        var address = Self.address(port: port)
        datagram.withUnsafeReadableBytes { raw in
            _ = address.withUnsafeMutableBytes { target in
                sendto(fd, raw.baseAddress, raw.count, 0, target.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(target.count))
            }
        }
    }

    /// Waits up to `timeout` for one datagram; returns it with the sender's port.
    func receive(timeout: Duration) -> (ByteBuffer, UInt16)? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(clamping: max(0, timeout.nanosecondsClamped / 1_000_000))
        guard poll(&poller, 1, milliseconds) > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 65536)
        var address = [UInt8](repeating: 0, count: 16)
        var length = socklen_t(address.count)
        let count = address.withUnsafeMutableBytes { raw in
            recvfrom(fd, &bytes, bytes.count, 0, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        guard count >= 0 else { return nil }
        return (ByteBuffer(bytes: bytes[0..<count]), Self.port(of: address))
    }
}

/// A peer process whose stdout lines the test reads while it runs.
final class PeerProcess {
    let process = ChildProcess()
    let outputPath: String

    init(_ arguments: [String]) throws {
        outputPath = NSTemporaryDirectory() + "quic-peer-\(UUID().uuidString).out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: ProcessRunner.which("python3") ?? "/usr/bin/python3")
        process.arguments = [Self.script] + arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardError = process.standardOutput
        try process.run()
    }

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers/aioquic_peer.py").path
    }

    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
    var lines: [String] { output.split(separator: "\n").map(String.init) }

    /// Waits (wall clock) until a line satisfies `predicate`.
    func waitFor(seconds: Double = 10, _ predicate: (String) -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if lines.contains(where: predicate) { return true }
            usleep(20_000)
        }
        return false
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: outputPath)
    }
}

/// Drives `connection` over `socket` towards `peerPort` until `done` or `seconds` pass.
func drive(_ connection: QUICConnection, socket: LoopbackUDPSocket, peerPort: UInt16, seconds: Double,
           events: inout [QUICConnectionEvent], step: () -> Void = {}, until done: ([QUICConnectionEvent]) -> Bool) {
    let end = monotonicNow() + .milliseconds(Int64(seconds * 1000))
    while monotonicNow() < end {
        for datagram in connection.transmit(now: monotonicNow()) { socket.send(datagram, to: peerPort) }
        while let event = connection.nextEvent() { events.append(event) }
        step()
        if done(events) { return }
        let now = monotonicNow()
        let wait = min((connection.nextDeadline ?? end) - now, .milliseconds(50))
        if let (datagram, _) = socket.receive(timeout: wait) {
            connection.receive(datagram: datagram, now: monotonicNow())
            // Take whatever else is queued before answering: fewer, fuller ACKs.
            while let (more, _) = socket.receive(timeout: .zero) { connection.receive(datagram: more, now: monotonicNow()) }
        }
    }
}

/// Echoes every stream of `connection` (data, then FIN once the peer's FIN is read).
func echoStreams(_ connection: QUICConnection, finished: inout Set<UInt64>) {
    for id in connection.streams.keys.sorted() where !finished.contains(id) {
        while let data = connection.readStream(id) { try? connection.writeStream(id, data) }
        if connection.isStreamFinished(id) {
            finished.insert(id)
            try? connection.writeStream(id, ByteBuffer(), fin: true)
        }
    }
}
