// process_name / process_path / user_id against real sockets: a child python3 connects to a
// listener here; the kernel (sock_diag) and /proc must name it, and the router must route on it.
import Adapter
import Config
import Foundation
import Glibc
import LinuxSockets
import NIOCore
import Router
import Rules
import Testing
import TestSupport

@Suite(.serialized) struct ProcessFinderTests {
    /// A listening socket on 127.0.0.1 (TCP) or a bound one (UDP), closed by the caller.
    static func listener(udp: Bool) throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try #require(bind(fd, $0, length) == 0)
                try #require(getsockname(fd, $0, &length) == 0)
            }
        }
        if !udp { try #require(listen(fd, 4) == 0) }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// Starts python3 holding a socket connected to `port` for a few seconds; returns it once
    /// the connection exists, with the client's local port.
    static func connectedChild(port: UInt16, udp: Bool, listener: Int32) throws -> (ChildProcess, UInt16) {
        let script = udp
            ? "import socket,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.connect(('127.0.0.1',\(port))); s.send(b'x'); time.sleep(10)"
            : "import socket,time; s=socket.create_connection(('127.0.0.1',\(port))); time.sleep(10)"
        let child = ChildProcess()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        child.arguments = ["-c", script]
        try child.run()
        var peer = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        if udp {
            var byte: UInt8 = 0
            _ = withUnsafeMutablePointer(to: &peer) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(listener, &byte, 1, 0, $0, &length) }
            }
        } else {
            let accepted = withUnsafeMutablePointer(to: &peer) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &length) }
            }
            if accepted >= 0 { close(accepted) }
        }
        return (child, UInt16(bigEndian: peer.sin_port))
    }

    static func exe(_ pid: Int32) -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? "?"
    }

    @Test(arguments: [false, true]) func findsTheChildOwningTheSocket(udp: Bool) throws {
        let (fd, port) = try Self.listener(udp: udp)
        defer { close(fd) }
        let (child, clientPort) = try Self.connectedChild(port: port, udp: udp, listener: fd)
        defer { child.terminate(); child.waitUntilExit() }
        try #require(clientPort != 0)
        let found = try LinuxProcessFinder().findProcess(network: udp ? .udp : .tcp,
                                                         source: Destination("127.0.0.1:\(clientPort)")!,
                                                         destination: Destination("127.0.0.1:\(port)"))
        #expect(found.path == Self.exe(child.processIdentifier))
        #expect(found.name.hasPrefix("python3"))
        #expect(found.userID == Int32(bitPattern: getuid()))
        #expect(found.userName == (getuid() == 0 ? "root" : found.userName))
    }

    @Test func noSocketIsAnError() throws {
        let (fd, port) = try Self.listener(udp: false)
        close(fd)  // nothing owns this port now
        #expect(throws: LinuxProcessFinder.Failure.self) {
            try LinuxProcessFinder().findProcess(network: .tcp, source: Destination("127.0.0.1:\(port)")!, destination: nil)
        }
    }

    /// The router looks the owner up (only because a rule needs it) and routes on it.
    @Test func routerRoutesOnProcessItems() async throws {
        let (fd, port) = try Self.listener(udp: false)
        defer { close(fd) }
        let (child, clientPort) = try Self.connectedChild(port: port, udp: false, listener: fd)
        defer { child.terminate(); child.waitUntilExit() }
        let path = Self.exe(child.processIdentifier)
        let name = URL(fileURLWithPath: path).lastPathComponent
        let routeJSON = """
            {"rules":[{"process_name":["curl"],"outbound":"a"},
                      {"process_path_regex":["^/nowhere/"],"outbound":"a"},
                      {"user_id":[\(getuid())],"process_path":["\(path)"],"outbound":"b"},
                      {"process_name":["\(name)"],"outbound":"c"}],"final":"f"}
            """
        let route = try #require(try ConfigLoader.decode(json: "{\"route\":\(routeJSON)}").options.route)
        let rules = try route.rules.map { try RouteRule(options: $0) }
        #expect(rules.contains { $0.condition.needsProcess })
        let manager = OutboundManager()
        for tag in ["a", "b", "c", "f"] { manager.add(TableOutbound(tag)) }
        manager.setDefault(tag: "f")
        let router = FlowRouter(rules: rules, outbounds: manager, logger: ContextLogger(core: .disabled, name: ""),
                                processFinder: LinuxProcessFinder())
        var metadata = FlowMetadata(inbound: "in", inboundType: "mixed", network: .tcp,
                                    source: Destination("127.0.0.1:\(clientPort)"), destination: Destination("example.com:443")!)
        guard case .outbound(let chosen) = await router.match(&metadata) else { Issue.record("no outbound"); return }
        #expect(chosen.tag == "b")
        #expect(metadata.process?.path == path)

        // A flow no local process owns: the lookup fails, process items do not match.
        var remote = FlowMetadata(inbound: "in", inboundType: "mixed", network: .tcp,
                                  source: Destination("127.0.0.1:1"), destination: Destination("example.com:443")!)
        guard case .outbound(let fallback) = await router.match(&remote) else { Issue.record("no outbound"); return }
        #expect(fallback.tag == "f")
        #expect(remote.process == nil)
    }
}
