// A second real peer: Go sing-box 1.12.12's tuic inbound, which is quic-go underneath (ALPN h3).
// The QUIC + TLS handshake completes before any tuic authentication, so our client must reach
// handshake confirmation (HANDSHAKE_DONE) against quic-go, see its transport parameters
// (DATAGRAM enabled for tuic's native UDP relay) and close cleanly.
import Foundation
import NIOCore
import NetstackWire
@testable import QUIC
import Testing
import TestSupport

private func goBinary() -> String {
    if let path = ProcessInfo.processInfo.environment["SINGBOX_GO"], !path.isEmpty { return path }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".peers/bin/sing-box-go").path
}

@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: goBinary()), "Go sing-box not found (scripts/install-test-deps.sh)"))
struct GoQUICInteropTests {
    @Test func ourClientHandshakesWithQUICGoTUICInbound() throws {
        guard let port = freeLoopbackPort(udp: true, tcp: false) else { Issue.record("no free port"); return }
        let certificate = TestCertificate.shared
        let config = """
            {"log":{"level":"debug"},"inbounds":[{"type":"tuic","listen":"127.0.0.1","listen_port":\(port),
             "users":[{"uuid":"059032a9-7d40-4a96-9bb1-36823d848068","password":"p"}],
             "tls":{"enabled":true,"alpn":["h3"],"certificate_path":"\(certificate.certificatePath)","key_path":"\(certificate.keyPath)"}}]}
            """
        let configPath = certificate.directory + "/tuic-\(port).json"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: configPath) }
        let logPath = certificate.directory + "/tuic-\(port).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        let go = ChildProcess()
        go.executableURL = URL(fileURLWithPath: goBinary())
        go.arguments = ["run", "-c", configPath]
        go.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        go.standardError = go.standardOutput
        try go.run()
        defer { go.terminate(); go.waitUntilExit() }
        var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        for _ in 0..<100 where !log.contains("started") { usleep(50_000) }

        var configuration = clientConfiguration(alpn: ["h3"])
        configuration.tls.serverName = "localhost"
        let socket = try LoopbackUDPSocket()
        let connection = try QUICConnection(client: configuration, now: monotonicNow())
        var events: [QUICConnectionEvent] = []
        drive(connection, socket: socket, peerPort: port, seconds: 10, events: &events) { _ in connection.handshakeConfirmed }
        #expect(events.contains(.handshakeCompleted(alpn: "h3")), "events: \(events)\nGo log:\n\(log)")
        #expect(connection.handshakeConfirmed)
        // tuic enables DATAGRAM for its native UDP relay (RFC 9221 transport parameter).
        #expect(connection.peerParameters?.maxDatagramFrameSize != nil)
        // quic-go issues extra connection IDs; we take them.
        drive(connection, socket: socket, peerPort: port, seconds: 0.5, events: &events) { _ in false }
        #expect(connection.peerIDs.count >= 2)

        // TUIC v5 over our streams: authenticate on a unidirectional stream (token = TLS exporter with
        // the UUID as label and the password as context), then CONNECT on a bidirectional stream to a
        // TCP echo server; 300 KB go through Go's relay and come back byte-exact with the FIN.
        guard let echoPort = freeLoopbackPort(udp: false, tcp: true) else { Issue.record("no free port"); return }
        let echo = try PeerProcess(["tcp-echo", "--port", "\(echoPort)"])
        defer { echo.stop() }
        #expect(echo.waitFor { $0 == "listening" })
        let uuid = hex("059032a97d404a969bb136823d848068")
        let token = try #require(connection.exportKeyingMaterial(label: uuid, context: Array("p".utf8), length: 32))
        let auth = try #require(connection.openStream(bidirectional: false))
        try connection.writeStream(auth, ByteBuffer(bytes: [0x05, 0x00] + uuid + token), fin: true)
        let relay = try #require(connection.openStream(bidirectional: true))
        let body = payload(77, count: 300_000)
        try connection.writeStream(relay, ByteBuffer(bytes: [0x05, 0x01, 0x01, 127, 0, 0, 1, UInt8(echoPort >> 8), UInt8(echoPort & 0xff)] + body), fin: true)
        var received: [UInt8] = []
        drive(connection, socket: socket, peerPort: port, seconds: 20, events: &events, step: {
            while let data = connection.readStream(relay) { received += data.bytes }
        }) { _ in connection.isStreamFinished(relay) }
        let same = received == body
        #expect(same, "relayed \(received.count) of \(body.count) bytes\nGo log:\n\(log)")
        #expect(!log.contains("token mismatch"))
        // quic-go updates 1-RTT keys after its first 100 packets (RFC 9001 §6): we followed.
        #expect(connection.keyUpdate.updates >= 1)

        connection.close(errorCode: 0, now: monotonicNow())
        drive(connection, socket: socket, peerPort: port, seconds: 3, events: &events) { _ in connection.isClosed }
        #expect(connection.isClosed)
        #expect(connection.droppedPackets == 0)
    }
}

/// The other direction: Go sing-box's tuic outbound (quic-go as client, ALPN h3) dials our server.
/// quic-go completes the handshake with us and sends TUIC's authenticate command on a
/// unidirectional stream; its token must equal our TLS exporter for the same UUID and password,
/// which proves both ends derived the same TLS 1.3 secrets.
@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: goBinary()) && ProcessRunner.which("curl") != nil,
                             "Go sing-box or curl not found (scripts/install-test-deps.sh)"))
struct GoQUICClientInteropTests {
    @Test func quicGoClientAuthenticatesToOurServer() throws {
        let socket = try LoopbackUDPSocket()
        guard let mixedPort = freeLoopbackPort() else { Issue.record("no free port"); return }
        let certificate = TestCertificate.shared
        let config = """
            {"log":{"level":"debug"},"inbounds":[{"type":"mixed","listen":"127.0.0.1","listen_port":\(mixedPort)}],
             "outbounds":[{"type":"tuic","tag":"tuic-out","server":"127.0.0.1","server_port":\(socket.port),
               "uuid":"059032a9-7d40-4a96-9bb1-36823d848068","password":"p",
               "tls":{"enabled":true,"server_name":"localhost","insecure":true,"alpn":["h3"]}}]}
            """
        let configPath = certificate.directory + "/tuic-out-\(mixedPort).json"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: configPath) }
        let logPath = certificate.directory + "/tuic-out-\(mixedPort).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        let go = ChildProcess()
        go.executableURL = URL(fileURLWithPath: goBinary())
        go.arguments = ["run", "-c", configPath]
        go.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        go.standardError = go.standardOutput
        try go.run()
        defer { go.terminate(); go.waitUntilExit() }
        var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        for _ in 0..<100 where !log.contains("started") { usleep(50_000) }
        // Any proxied request makes the tuic outbound dial its QUIC connection.
        let curl = ChildProcess()
        curl.executableURL = URL(fileURLWithPath: ProcessRunner.which("curl") ?? "/usr/bin/curl")
        curl.arguments = ["-s", "-m", "8", "--socks5-hostname", "127.0.0.1:\(mixedPort)", "http://127.0.0.1:9/"]
        try curl.run()
        defer { curl.terminate(); curl.waitUntilExit() }

        let endpoint = QUICServerEndpoint(configuration: serverConfiguration(alpn: ["h3"]))
        var connection: QUICConnection?
        var clientPort: UInt16 = 0
        var events: [QUICConnectionEvent] = []
        var authentication: [UInt8] = []
        let end = monotonicNow() + .seconds(10)
        while monotonicNow() < end, authentication.count < 50 {
            if let connection {
                for datagram in connection.transmit(now: monotonicNow()) { socket.send(datagram, to: clientPort) }
                endpoint.refresh(connection)
                while let event = connection.nextEvent() { events.append(event) }
                // The client's first unidirectional stream is 2 (RFC 9000 §2.1).
                while let data = connection.readStream(2) { authentication += data.bytes }
            }
            let wait = min((connection?.nextDeadline ?? end) - monotonicNow(), .milliseconds(50))
            var next = socket.receive(timeout: wait)
            while let (datagram, from) = next {
                if let (routed, isNew) = endpoint.route(datagram, now: monotonicNow()) {
                    if isNew, connection == nil { connection = routed; clientPort = from }
                    routed.receive(datagram: datagram, now: monotonicNow())
                }
                next = socket.receive(timeout: .zero)
            }
        }
        let server = try #require(connection, "no QUIC connection from Go\n\(log)")
        #expect(events.contains(.handshakeCompleted(alpn: "h3")), "events: \(events)\n\(log)")
        #expect(events.contains(.streamOpened(2)))
        let uuid = hex("059032a97d404a969bb136823d848068")
        let token = try #require(server.exportKeyingMaterial(label: uuid, context: Array("p".utf8), length: 32))
        // TUIC v5 authenticate: version 5, command 0, UUID, token.
        #expect(Array(authentication.prefix(2)) == [0x05, 0x00])
        #expect(Array(authentication.dropFirst(2).prefix(16)) == uuid)
        #expect(Array(authentication.dropFirst(18).prefix(32)) == token, "Go log:\n\(log)")
        server.close(errorCode: 0, now: monotonicNow())
        for datagram in server.transmit(now: monotonicNow()) { socket.send(datagram, to: clientPort) }
    }
}
