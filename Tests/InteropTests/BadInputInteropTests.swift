// Hostile and broken clients against our mixed inbound: the process keeps serving and gives back
// what they held (checked through /proc/<pid>/fd).
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct BadInputInteropTests {
    @Test func survivesGarbageVanishingClientsHugeHeadersAndHalfOpenFlood() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let port = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: port)], outbounds: [ConfigJSON.direct]),
                              waitPort: port, in: work)
        defer { box.stop() }
        func stillServes() throws {
            #expect(try curl(["--socks5-hostname", "127.0.0.1:\(port)", files.blobURL]) == files.blob)
        }
        try stillServes()
        let baseline = box.process.openFileCount

        // Garbage: random bytes after a SOCKS5 greeting, and an HTTP-looking line of junk.
        for junk in [[0x05, 0x01, 0x00, 0x05, 0x09] + (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 97) },
                     Array("\u{1}\u{2}\u{3} NOT HTTP\r\n\r\n".utf8)] {
            let fd = connectTCP(port: port)
            #expect(fd >= 0)
            writeAll(fd, junk)
            _ = readAll(fd, timeout: 3)  // returns at EOF: the proxy closed on us
            close(fd)
        }
        // A client vanishing mid-handshake, at every stage.
        for partial: [UInt8] in [[0x05], [0x05, 0x01, 0x00], [0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 0x0a, 0x61], [0x04, 0x01, 0x00]] {
            let fd = connectTCP(port: port)
            writeAll(fd, partial)
            close(fd)
        }
        // A 1 MiB header: refused with 431 before it all arrived, then closed.
        do {
            let fd = connectTCP(port: port)
            writeAll(fd, Array("GET http://127.0.0.1:\(files.port)/ HTTP/1.1\r\nX-Big: ".utf8))
            var sent = 0
            let chunk = [UInt8](repeating: 0x61, count: 16 * 1024)
            while sent < 1 << 20, writeAll(fd, chunk) { sent += chunk.count }
            let answer = String(decoding: readAll(fd, timeout: 5), as: UTF8.self)
            #expect(answer.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
            close(fd)
        }
        try stillServes()

        // 5,000 half-open connections: each sends half a greeting and waits.
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        for _ in 0..<5000 {
            let fd = connectTCP(port: port, source: "127.0.0.2")
            guard fd >= 0 else { break }
            writeAll(fd, [0x05])
            fds.append(fd)
        }
        #expect(fds.count == 5000)
        try stillServes()
        let loaded = box.process.openFileCount
        #expect(loaded >= baseline + 4000, "server holds the connections (\(loaded) fds)")
        for fd in fds { close(fd) }
        fds.removeAll()
        // They are freed: the fd count falls back near the baseline.
        var after = box.process.openFileCount
        for _ in 0..<100 where after > baseline + 16 {
            usleep(50_000)
            after = box.process.openFileCount
        }
        #expect(after <= baseline + 16, "fds: baseline \(baseline), loaded \(loaded), after \(after)")
        try stillServes()
        #expect(box.process.isRunning)
    }
}
