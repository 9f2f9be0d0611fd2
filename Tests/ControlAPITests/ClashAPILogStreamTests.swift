// `/logs` with a subscriber that never reads, on our Clash API server in this process: 30,000 log
// lines of about 1 KiB (30 MiB) are written while one chunked subscriber (4 KiB receive buffer)
// reads nothing and a WebSocket subscriber reads all the time. As in Go (a 64-entry buffer per
// subscriber; what does not fit is dropped while the handler is blocked in its write), the stalled
// subscriber costs a bounded amount: when it finally reads, it gets no more than the socket
// buffers, the channel's high-water mark and the 64 queued lines held (a few MiB, not 30). The
// reading subscriber gets its lines in order throughout, and every line of a paced batch after the
// flood; a plain request is answered meanwhile. Sockets are raw loopback TCP, closed on every path.
@testable import ControlAPI
import Adapter
import Config
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Drops every line (the test reads them through `/logs`).
private struct DiscardingSink: LogSink {
    func write(line: String) {}
}

/// A blocking loopback TCP client socket.
private struct RawSocket: ~Copyable {
    let fd: Int32

    /// Connects to 127.0.0.1:`port`; a `receiveBuffer` is set before connecting (so the window is small).
    init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    deinit { close(fd) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
    }

    /// Reads until `seconds` pass without data (or EOF); returns everything read.
    func readUntilQuiet(seconds: Int = 1) -> [UInt8] {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return out }
            out += chunk[0..<count]
        }
    }
}

/// What the reading subscriber's thread got, and when it is to stop.
private final class ReadLog: Sendable {
    let bytes = Mutex<[UInt8]>([])
    let done = Atomic<Bool>(false)
    var sequence: [Int] { sequenceNumbers(bytes.withLock { $0 }) }
}

/// The sequence numbers of `seq N` log lines in `bytes`, in the order they came.
private func sequenceNumbers(_ bytes: [UInt8]) -> [Int] {
    let text = String(decoding: bytes, as: UTF8.self)
    var out: [Int] = []
    for piece in text.components(separatedBy: "\"payload\":\"test: seq ").dropFirst() {
        if let number = Int(piece.prefix { $0.isNumber }) { out.append(number) }
    }
    return out
}

@Suite(.serialized) struct ClashAPILogStreamTests {
    @Test func stalledLogSubscriberStaysBoundedAndOthersKeepUp() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let core = LogCore(level: .info, sink: DiscardingSink())
        var options = ClashAPIOptions()
        options.externalController = "127.0.0.1:0"
        let setup = ClashAPISetup(options: options, outbounds: OutboundManager(), modes: ClashModeStore(defaultMode: nil, ruleModes: []),
                                  logLevel: "info", group: group, logger: ContextLogger(core: .disabled, name: "clash-api"),
                                  logCore: core, probe: { _, _ in })
        let server = try ClashAPIServer(setup: setup)
        try await server.start(.started)
        defer { Task { try? await server.close() } }
        let port = try #require(server.port)

        // The stalled subscriber: chunked, a small receive window, never read until the end.
        let stalled = try RawSocket(port: port, receiveBuffer: 4096)
        stalled.send("GET /logs?level=info HTTP/1.1\r\nHost: a\r\n\r\n")
        // The reading subscriber: WebSocket, read on a thread of its own all along.
        let reading = try RawSocket(port: port)
        reading.send("GET /logs?level=info HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        for _ in 0..<100 where core.observer.subscriberCount < 2 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(core.observer.subscriberCount == 2)

        let log = ReadLog()
        let readingFD = reading.fd
        let reader = Thread {
            var tv = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(readingFD, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while !log.done.load(ordering: .relaxed) {
                let count = chunk.withUnsafeMutableBytes { recv(readingFD, $0.baseAddress, $0.count, 0) }
                if count == 0 { return }
                if count > 0 { log.bytes.withLock { $0 += chunk[0..<count] } }
            }
        }
        reader.start()
        defer { log.done.store(true, ordering: .relaxed) }

        // The flood: 30,000 lines of about 1 KiB as fast as the loggers go.
        let logger = ContextLogger(core: core, name: "test")
        let padding = String(repeating: "x", count: 1000)
        let flood = 30_000
        for index in 0..<flood { logger.info("seq \(index) \(padding)") }
        // A plain request is answered while the stalled subscriber holds its lines.
        let plain = try RawSocket(port: port)
        plain.send("GET /version HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        let version = String(decoding: plain.readUntilQuiet(seconds: 5), as: UTF8.self)
        #expect(version.hasPrefix("HTTP/1.1 200") && version.contains("\"version\""), "\(version)")
        // Then a paced batch: the reading subscriber keeps up and gets every line.
        for index in flood..<(flood + 100) {
            logger.info("seq \(index) \(padding)")
            try await Task.sleep(for: .milliseconds(2))
        }
        let last = flood + 99
        for _ in 0..<100 where !log.sequence.contains(last) { try await Task.sleep(for: .milliseconds(100)) }
        log.done.store(true, ordering: .relaxed)
        let readingSeen = log.sequence
        #expect(zip(readingSeen, readingSeen.dropFirst()).allSatisfy { $0 < $1 }, "the reading subscriber's lines are out of order")
        #expect(Array(readingSeen.filter { $0 >= flood }) == Array(flood...last), "paced lines missing: got \(readingSeen.filter { $0 >= flood }.count)")

        // Now the stalled subscriber reads: it gets what our process held for it, in order, and no
        // more than the socket buffers (4 MiB of send buffer at most here), the channel's 64 KiB
        // mark and the 64 queued lines can hold.
        let stalledBytes = stalled.readUntilQuiet(seconds: 2)
        let stalledSeen = sequenceNumbers(stalledBytes)
        #expect(String(decoding: stalledBytes.prefix(15), as: UTF8.self) == "HTTP/1.1 200 OK")
        #expect(!stalledSeen.isEmpty && zip(stalledSeen, stalledSeen.dropFirst()).allSatisfy { $0 < $1 })
        let flooded = stalledSeen.filter { $0 < flood }.count
        #expect(flooded < flood / 4, "the stalled subscriber was held \(flooded) of \(flood) lines (\(stalledBytes.count) bytes)")
        try await server.close()
    }
}
