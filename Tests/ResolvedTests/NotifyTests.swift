// `sing-box run` under a Type=notify unit: the test plays systemd's part — a datagram socket named
// by NOTIFY_SOCKET, WATCHDOG_USEC set — and reads what the binary sends: READY=1 (with MAINPID),
// WATCHDOG=1 pings at half the interval, and STOPPING=1 on SIGTERM.
import Foundation
import Glibc
import Testing
import TestSupport

@Suite(.serialized) struct NotifyTests {
    /// A bound AF_UNIX datagram socket at `path`.
    final class NotifySocket {
        let fd: Int32
        init(path: String) throws {
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw HarnessError("socket: \(errno)") }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw HarnessError("path too long") }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (offset, byte) in bytes.enumerated() { raw[offset] = byte }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard bound == 0 else { throw HarnessError("bind \(path): \(errno)") }
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        /// Datagrams received until `seconds` pass or `done` says so.
        func collect(for seconds: Double, until done: ([String]) -> Bool = { _ in false }) -> [String] {
            var messages: [String] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline && !done(messages) {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count > 0 { messages.append(String(decoding: buffer[..<count], as: UTF8.self)) }
            }
            return messages
        }

        deinit { close(fd) }
    }

    @Test func readyWatchdogAndStopping() throws {
        let scratch = try Scratch()
        let socketPath = scratch.file("notify")
        let listener = try NotifySocket(path: socketPath)
        let config = try scratch.write("config.json", #"{"log":{"level":"info","timestamp":false}}"#)
        let box = try Daemon(Tools.ours, ["run", "-c", config], name: "sing-box", in: scratch,
                             environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "400000"])
        defer { box.stop() }
        let started = listener.collect(for: 10) { messages in
            messages.contains { $0.contains("READY=1") } && messages.filter { $0 == "WATCHDOG=1" }.count >= 3
        }
        let ready = started.first { $0.contains("READY=1") }
        #expect(ready?.contains("MAINPID=\(box.child.processIdentifier)") == true, "\(started)\n\(box.log)")
        #expect(ready?.contains("STATUS=sing-box started") == true, "\(started)")
        #expect(started.filter { $0 == "WATCHDOG=1" }.count >= 3, "\(started)")
        box.child.terminate()
        let stopping = listener.collect(for: 5) { $0.contains("STOPPING=1") }
        #expect(stopping.contains("STOPPING=1"), "\(stopping)\n\(box.log)")
    }
}
