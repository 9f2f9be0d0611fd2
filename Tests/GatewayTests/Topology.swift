// The whole-LAN topology the gateway tests and bench/tun.sh share: three namespaces of the test's own,
//
//   lan (10.77.1.2, 2001:db8:1::2, fd77:1::2) ── gw (10.77.1.1 | 10.77.2.1, .3) ── srv (10.77.2.2)
//
// with the servers on srv's loopback one hop beyond the gateway (10.77.9.1, .66, 2001:db8:9::1,
// fd77:9::1): Go's auto_redirect never proxies the gateway's own connected subnets, so the targets
// must not be on them. gw forwards and has its default route via srv. Every child process and
// namespace is removed by `close()`, which the tests call in a `defer`.
import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A failure while building the topology or running a tool, with its output.
struct GatewayTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `/bin/sh -c command` with a timeout; returns the exit status and stdout+stderr.
@discardableResult
func shell(_ command: String, timeout: Int = 20) -> (status: Int32, output: String) {
    let path = "/tmp/sbx-gw-out-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    defer { unlink(path) }
    guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
        return (-1, "cannot create \(path)")
    }
    let child = ChildProcess()
    child.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    child.arguments = ["-k", "2", String(timeout), "/bin/sh", "-c", command]
    child.standardInput = FileHandle.nullDevice
    child.standardOutput = handle
    child.standardError = handle
    do { try child.run() } catch { return (-1, "\(error)") }
    child.waitUntilExit()
    try? handle.close()
    let output = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return (child.terminationStatus, output)
}

/// Where our binary and Go's live.
enum GatewayPeers {
    /// Our `sing-box`, built next to the test bundle.
    static var ours: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("sing-box").path
    }

    /// The package root.
    static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// Go sing-box 1.12.12 (`$SINGBOX_GO` or `.peers/bin/sing-box-go`).
    static var go: String {
        if let path = ProcessInfo.processInfo.environment["SINGBOX_GO"], !path.isEmpty { return path }
        return packageRoot + "/.peers/bin/sing-box-go"
    }
}

/// Three namespaces joined by veth pairs, servers on srv, a gateway process on gw.
final class GatewayTopology: @unchecked Sendable {
    let suffix: String
    var lan: String { "sbl\(suffix)" }
    var gw: String { "sbg\(suffix)" }
    var srv: String { "sbs\(suffix)" }
    let directory: String
    private var children: [ChildProcess] = []
    private(set) var gateway: ChildProcess?
    private var closed = false

    /// Builds the namespaces, addresses, routes and servers (HTTP on 8080, HTTPS on 8443, UDP echo on 9000).
    init() throws {
        suffix = String(getpid() % 10000) + String(UInt16.random(in: 0...999))
        var template = Array("/tmp/sbx-gw-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw GatewayTestError("mkdtemp failed") }
        directory = String(cString: made)
        let script = """
        set -e
        ip netns add \(lan); ip netns add \(gw); ip netns add \(srv)
        ip link add gl\(suffix) netns \(lan) type veth peer name gl\(suffix) netns \(gw)
        ip link add gs\(suffix) netns \(gw) type veth peer name gs\(suffix) netns \(srv)
        for ns in \(lan) \(gw) \(srv); do ip -n $ns link set lo up; done
        ip netns exec \(gw) sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
        for ns in \(lan) \(gw) \(srv); do ip netns exec $ns sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0; done
        ip -n \(lan) addr add 10.77.1.2/24 dev gl\(suffix)
        ip -n \(lan) addr add 2001:db8:1::2/64 dev gl\(suffix) nodad
        ip -n \(lan) addr add fd77:1::2/64 dev gl\(suffix) nodad
        ip -n \(lan) link set gl\(suffix) up
        ip -n \(lan) route add default via 10.77.1.1
        ip -n \(lan) -6 route add default via 2001:db8:1::1
        ip -n \(gw) addr add 10.77.1.1/24 dev gl\(suffix)
        ip -n \(gw) addr add 2001:db8:1::1/64 dev gl\(suffix) nodad
        ip -n \(gw) addr add fd77:1::1/64 dev gl\(suffix) nodad
        ip -n \(gw) addr add 10.77.2.1/24 dev gs\(suffix)
        ip -n \(gw) addr add 10.77.2.3/24 dev gs\(suffix)
        ip -n \(gw) addr add 2001:db8:2::1/64 dev gs\(suffix) nodad
        ip -n \(gw) addr add fd77:2::1/64 dev gs\(suffix) nodad
        ip -n \(gw) link set gl\(suffix) up; ip -n \(gw) link set gs\(suffix) up
        ip -n \(gw) route add default via 10.77.2.2
        ip -n \(gw) -6 route add default via 2001:db8:2::2
        ip -n \(srv) addr add 10.77.2.2/24 dev gs\(suffix)
        ip -n \(srv) addr add 2001:db8:2::2/64 dev gs\(suffix) nodad
        ip -n \(srv) addr add fd77:2::2/64 dev gs\(suffix) nodad
        ip -n \(srv) link set gs\(suffix) up
        ip -n \(srv) addr add 10.77.9.1/32 dev lo; ip -n \(srv) addr add 10.77.9.66/32 dev lo; ip -n \(srv) addr add 10.77.9.2/32 dev lo
        ip -n \(srv) addr add 2001:db8:9::1/128 dev lo; ip -n \(srv) addr add fd77:9::1/128 dev lo
        ip -n \(srv) route add 10.77.0.0/16 via 10.77.2.1
        ip -n \(srv) -6 route add 2001:db8::/32 via 2001:db8:2::1
        ip -n \(srv) -6 route add fd77::/16 via fd77:2::1
        """
        let setup = shell(script)
        guard setup.status == 0 else {
            close()
            throw GatewayTestError("topology setup failed: \(setup.output)")
        }
        do {
            try writeServers()
            try spawn(in: srv, ["/usr/bin/python3", "-u", directory + "/servers.py"], log: "servers.log")
            try waitFor("servers") { shell("ip netns exec \(self.srv) ss -ltn | grep -q ':8443' && ip netns exec \(self.srv) ss -ltn | grep -q ':8080'").status == 0 }
        } catch {
            close()
            throw error
        }
    }

    /// HTTP and HTTPS (each client address in the log), a UDP echo on each server address; a TLS key pair.
    private func writeServers() throws {
        let servers = """
        import http.server, socket, socketserver, ssl, sys, threading
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/big":
                    # 16 MiB in 64 KiB writes: enough to fill every window on the path many times.
                    self.send_response(200); self.send_header("Content-Length", str(16 << 20)); self.end_headers()
                    chunk = b"z" * 65536
                    for _ in range(256): self.wfile.write(chunk)
                    return
                body = ("hello from srv, you are " + self.client_address[0] + "\\n").encode()
                self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                self.wfile.write(body)
            def do_POST(self):
                remaining, total = int(self.headers.get("Content-Length", "0")), 0
                while remaining > 0:
                    data = self.rfile.read(min(remaining, 65536))
                    if not data: break
                    remaining -= len(data); total += len(data)
                body = ("received %d\\n" % total).encode()
                self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                self.wfile.write(body)
            def log_message(self, fmt, *args):
                print("client", self.client_address[0], self.headers.get("Host"), flush=True)
        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            address_family = socket.AF_INET6
            daemon_threads = True
            request_queue_size = 1024
            def server_bind(self):
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                super().server_bind()
        def echo(address):
            # One socket per address, so each reply leaves from the address the client asked.
            s = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((address, 9000))
            while True:
                data, peer = s.recvfrom(65535)
                s.sendto(b"echo:" + data, peer)
        for address in ["10.77.9.1", "2001:db8:9::1", "fd77:9::1"]:
            threading.Thread(target=echo, args=(address,), daemon=True).start()
        def other_source():
            # Asked on 10.77.9.1:9100, answers from 10.77.9.2:9100 (a STUN-like second address).
            asked = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); asked.bind(("10.77.9.1", 9100))
            answer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); answer.bind(("10.77.9.2", 9100))
            while True:
                data, peer = asked.recvfrom(65535)
                answer.sendto(b"other:" + data, peer)
        threading.Thread(target=other_source, daemon=True).start()
        tls = Server(("::", 8443), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain("\(directory)/cert.pem", "\(directory)/key.pem")
        tls.socket = context.wrap_socket(tls.socket, server_side=True)
        threading.Thread(target=tls.serve_forever, daemon=True).start()
        Server(("::", 8080), Handler).serve_forever()
        """
        try servers.write(toFile: directory + "/servers.py", atomically: true, encoding: .utf8)
        let cert = shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=srv.test -days 2 " +
                         "-keyout \(directory)/key.pem -out \(directory)/cert.pem")
        guard cert.status == 0 else { throw GatewayTestError("openssl req: \(cert.output)") }
    }

    /// Starts `command` inside namespace `ns`, output appended to `log` in the test directory.
    @discardableResult
    func spawn(in ns: String, _ command: [String], log: String) throws -> ChildProcess {
        let child = ChildProcess()
        child.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        child.arguments = ["netns", "exec", ns] + command
        let path = directory + "/" + log
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw GatewayTestError("open \(path)") }
        handle.seekToEndOfFile()
        child.standardInput = FileHandle.nullDevice
        child.standardOutput = handle
        child.standardError = handle
        try child.run()
        try? handle.close()
        children.append(child)
        return child
    }

    /// Writes `config` and starts `binary run` in gw; waits until the log says it started.
    func startGateway(binary: String, config: String, log: String = "gateway.log") throws -> ChildProcess {
        let path = directory + "/config.json"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        let child = try spawn(in: gw, [binary, "run", "-c", path], log: log)
        gateway = child
        try waitFor("gateway start (\(log))", seconds: 15) {
            guard child.isRunning else { return true }
            return self.log(log).contains("sing-box started")
        }
        guard child.isRunning else { throw GatewayTestError("gateway exited: \(self.log(log))") }
        return child
    }

    /// Stops the gateway with `signal` and waits for it to exit.
    func stopGateway(_ signal: Int32 = SIGTERM) {
        guard let gateway else { return }
        gateway.send(signal)
        for _ in 0..<100 where gateway.isRunning { usleep(100_000) }
        if gateway.isRunning { gateway.send(SIGKILL); gateway.waitUntilExit() }
        self.gateway = nil
    }

    /// A file of the test directory.
    func log(_ name: String) -> String { (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? "" }

    /// Runs `command` in namespace `ns`.
    @discardableResult
    func run(in ns: String, _ command: String, timeout: Int = 20) -> (status: Int32, output: String) {
        shell("ip netns exec \(ns) sh -c '\(command.replacingOccurrences(of: "'", with: "'\\''"))'", timeout: timeout)
    }

    /// Polls `condition` every 100 ms.
    func waitFor(_ what: String, seconds: Double = 10, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return }
            usleep(100_000)
        }
        throw GatewayTestError("timed out waiting for \(what)")
    }

    /// Kills every child and deletes the namespaces (their veths go with them) and the directory.
    func close() {
        guard !closed else { return }
        closed = true
        for child in children where child.isRunning {
            child.send(SIGKILL)
            child.waitUntilExit()
        }
        shell("ip netns del \(lan); ip netns del \(gw); ip netns del \(srv)")
        shell("rm -rf \(directory)")
    }

    deinit { close() }
}
