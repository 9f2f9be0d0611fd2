import TestSupport
import Foundation
import Glibc
import Synchronization
import Systemd
import Testing

/// NOTIFY_SOCKET is process-wide: the suite runs serialized and restores the environment.
@Suite(.serialized)
struct SystemdNotifyTests {
    /// A test-owned AF_UNIX datagram socket bound to a fresh path.
    final class NotifySocket {
        let fd: CInt
        let path: String

        init() throws {
            path = NSTemporaryDirectory() + "sbt-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                let bytes = Array(path.utf8)
                raw.copyBytes(from: bytes.prefix(raw.count - 1))
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard fd >= 0, bound == 0 else { throw CommandError(command: ["bind", path], status: errno, stderr: "") }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        func receive() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
        }

        deinit {
            close(fd)
            unlink(path)
        }
    }

    @Test func notificationsReachTheSocket() throws {
        let socket = try NotifySocket()
        setenv("NOTIFY_SOCKET", socket.path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        let notifier = SystemdNotifier()
        #expect(notifier.ready(status: "gateway up\nwith 2 inbounds") == .sent)
        #expect(socket.receive() == "READY=1\nSTATUS=gateway up with 2 inbounds\nMAINPID=\(getpid())")
        #expect(notifier.status("relaying 3 flows") == .sent)
        #expect(socket.receive() == "STATUS=relaying 3 flows")
        #expect(notifier.watchdog() == .sent)
        #expect(socket.receive() == "WATCHDOG=1")
        #expect(notifier.reloading() == .sent)
        let reloading = try #require(socket.receive())
        #expect(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        #expect(UInt64(reloading.split(separator: "=").last ?? "") ?? 0 > 0)
        #expect(notifier.stopping() == .sent)
        #expect(socket.receive() == "STOPPING=1")
    }

    @Test func withoutSystemdNothingIsSent() throws {
        unsetenv("NOTIFY_SOCKET")
        #expect(SystemdNotifier().ready() == .notRunningUnderSystemd)
        // A socket nobody listens on is an error the caller can log.
        setenv("NOTIFY_SOCKET", NSTemporaryDirectory() + "sbt-nobody-\(getpid()).sock", 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        #expect(SystemdNotifier().ready() == .failed(errno: ECONNREFUSED) || SystemdNotifier().ready() == .failed(errno: ENOENT))
    }

    @Test func watchdogPingsAtHalfTheInterval() async throws {
        let socket = try NotifySocket()
        setenv("NOTIFY_SOCKET", socket.path, 1)
        setenv("WATCHDOG_USEC", "200000", 1)
        setenv("WATCHDOG_PID", "\(getpid())", 1)
        defer {
            unsetenv("NOTIFY_SOCKET")
            unsetenv("WATCHDOG_USEC")
            unsetenv("WATCHDOG_PID")
        }
        #expect(SystemdNotifier().watchdogTimeout == .milliseconds(200))
        let pinger = WatchdogPinger()
        #expect(pinger.isActive)
        let start = ContinuousClock.now
        #expect(socket.receive() == "WATCHDOG=1")
        #expect(socket.receive() == "WATCHDOG=1")
        pinger.cancel()
        // Two pings 100 ms apart: the second arrives after about one interval.
        #expect(ContinuousClock.now - start >= .milliseconds(80))
        // Another process's watchdog is not ours.
        setenv("WATCHDOG_PID", "1", 1)
        #expect(SystemdNotifier().watchdogTimeout == nil)
        #expect(!WatchdogPinger().isActive)
    }
}

/// The units in systemd/ parse cleanly with `systemd-analyze verify` (ExecStart pointed at /bin/true,
/// since the binary is not installed here) and grant exactly the three capabilities.
@Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")),
      arguments: ["sing-box.service", "sing-box@.service"])
func unitVerifies(name: String) throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let text = try String(contentsOf: root.appendingPathComponent("systemd").appendingPathComponent(name), encoding: .utf8)
    for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
        let line = text.split(separator: "\n").first { $0.hasPrefix(key + "=") }
        #expect(line.map { Set($0.dropFirst(key.count + 1).split(separator: " ")) } == ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"])
    }
    #expect(text.contains("\nType=notify\n"))
    let directory = NSTemporaryDirectory() + "sbt-units-\(getpid())-\(name.hashValue & 0xFFFF)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let instanceName = name.replacingOccurrences(of: "@.", with: "@test.")
    let path = directory + "/" + instanceName
    try text.replacingOccurrences(of: "/usr/bin/sing-box", with: "/bin/true").write(toFile: path, atomically: true, encoding: .utf8)
    let (status, _, errors) = try runFull(["systemd-analyze", "verify", path], timeout: 30)
    #expect(status == 0, "\(errors)")
    #expect(errors.isEmpty, "\(errors)")
}
