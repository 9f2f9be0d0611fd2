// Real-peer interop over loopback UDP with aioquic (Python): our client → aioquic server and
// aioquic client → our server. Handshake (TLS 1.3, ALPN, transport parameters), DATAGRAM echo,
// CONNECTION_CLOSE with an application error code both ways.
import Foundation
import NIOCore
import NetstackWire
@testable import QUIC
import Testing
import TestSupport

/// Whether aioquic is installed (scripts/install-test-deps.sh installs it).
let aioquicAvailable: Bool = (try? ProcessRunner.run("python3", ["-c", "import aioquic"]).status) == 0

@Suite(.serialized, .enabled(if: aioquicAvailable, "aioquic is not installed (scripts/install-test-deps.sh)"))
struct AioquicInteropTests {
    /// With `retry`, aioquic answers the first Initial with Retry (RFC 9000 §8.1.2) and we must follow.
    @Test(arguments: [false, true]) func ourClientToAioquicServer(retry: Bool) throws {
        guard let port = freeLoopbackPort(udp: true, tcp: false) else { Issue.record("no free port"); return }
        let certificate = TestCertificate.shared
        let peer = try PeerProcess(["server", "--port", "\(port)", "--cert", certificate.certificatePath, "--key", certificate.keyPath]
                                   + (retry ? ["--retry"] : []))
        defer { peer.stop() }
        #expect(peer.waitFor { $0 == "listening" }, "aioquic server did not start: \(peer.output)")
        let socket = try LoopbackUDPSocket()
        let connection = try QUICConnection(client: clientConfiguration(), now: monotonicNow())
        var events: [QUICConnectionEvent] = []
        drive(connection, socket: socket, peerPort: port, seconds: 10, events: &events) { _ in connection.handshakeConfirmed }
        #expect(events.contains(.handshakeCompleted(alpn: "test")), "events: \(events), peer: \(peer.output)")
        #expect(connection.handshakeConfirmed)
        #expect((connection.retrySourceID != nil) == retry)
        #expect(connection.sendDatagram(ByteBuffer(string: "hello from swift")))
        drive(connection, socket: socket, peerPort: port, seconds: 5, events: &events) { $0.contains(.datagram(ByteBuffer(string: "hello from swift"))) }
        #expect(events.contains(.datagram(ByteBuffer(string: "hello from swift"))))
        connection.close(errorCode: 0x17, reason: "done here", now: monotonicNow())
        drive(connection, socket: socket, peerPort: port, seconds: 3, events: &events) { _ in connection.isClosed }
        #expect(peer.waitFor { $0.hasPrefix("closed") })
        #expect(peer.lines.contains("handshake alpn=test"))
        #expect(peer.lines.contains("closed code=23 reason=done here"), "peer: \(peer.output)")
    }

    @Test(arguments: [0, 4]) func aioquicClientToOurServer(streams: Int) throws {
        let socket = try LoopbackUDPSocket()
        let endpoint = QUICServerEndpoint(configuration: serverConfiguration())
        // With streams: 4 concurrent bidirectional streams of 1 MB each, echoed byte-exact.
        let peer = try PeerProcess(["client", "--port", "\(socket.port)", "--streams", "\(streams)", "--bytes", "1000000", "--timeout", "40"])
        var finishedStreams: Set<UInt64> = []
        defer { peer.stop() }
        var connection: QUICConnection?
        var clientPort: UInt16 = 0
        var events: [QUICConnectionEvent] = []
        let end = monotonicNow() + .seconds(45)
        while monotonicNow() < end {
            if let connection {
                for datagram in connection.transmit(now: monotonicNow()) { socket.send(datagram, to: clientPort) }
                endpoint.refresh(connection)
                while let event = connection.nextEvent() {
                    events.append(event)
                    if case .datagram(let data) = event { connection.sendDatagram(data) }  // echo
                }
                echoStreams(connection, finished: &finishedStreams)
                if connection.isClosed { break }
            }
            let wait = min((connection?.nextDeadline ?? end) - monotonicNow(), .milliseconds(50))
            var next = socket.receive(timeout: wait)
            while let (datagram, from) = next {
                if let (routed, isNew) = endpoint.route(datagram, now: monotonicNow()) {
                    if isNew { connection = routed; clientPort = from }
                    routed.receive(datagram: datagram, now: monotonicNow())
                }
                next = socket.receive(timeout: .zero)
            }
        }
        #expect(events.contains(.handshakeCompleted(alpn: "test")), "events: \(events), peer: \(peer.output)")
        #expect(events.contains(.datagram(ByteBuffer(string: "hello from aioquic"))))
        #expect(events.contains(.closed(QUICCloseReason(errorCode: 0x42, isApplication: true, reason: "bye", byPeer: true))), "events: \(events)")
        #expect(peer.waitFor { $0 == "done" }, "peer: \(peer.output)")
        #expect(peer.lines.contains("datagram hello from aioquic"))
        if streams > 0 { #expect(peer.lines.contains("streams ok"), "peer: \(peer.output)") }
        // Late Initial-level packets of the client arrive after the server dropped Initial keys
        // (RFC 9001 §4.9.1) and are dropped; nothing else should be.
        #expect((connection?.droppedPackets ?? 0) <= 2)
    }

    /// Our client opens 4 streams of 1.5 MB each; aioquic echoes them; every byte comes back in order.
    @Test func ourClientStreamsEchoedByAioquic() throws {
        guard let port = freeLoopbackPort(udp: true, tcp: false) else { Issue.record("no free port"); return }
        let certificate = TestCertificate.shared
        let peer = try PeerProcess(["server", "--port", "\(port)", "--cert", certificate.certificatePath, "--key", certificate.keyPath, "--timeout", "60"])
        defer { peer.stop() }
        #expect(peer.waitFor { $0 == "listening" })
        let socket = try LoopbackUDPSocket()
        let connection = try QUICConnection(client: clientConfiguration(), now: monotonicNow())
        var events: [QUICConnectionEvent] = []
        drive(connection, socket: socket, peerPort: port, seconds: 10, events: &events) { _ in connection.handshakeConfirmed }
        try #require(connection.handshakeConfirmed)
        var sent: [UInt64: [UInt8]] = [:]
        for index in 0..<4 {
            let id = try #require(connection.openStream(bidirectional: true))
            let bytes = payload(index + 40, count: 1_500_000)
            try connection.writeStream(id, ByteBuffer(bytes: bytes), fin: true)
            sent[id] = bytes
        }
        var received: [UInt64: [UInt8]] = [:]
        func complete() -> Bool { sent.allSatisfy { received[$0.key]?.count == $0.value.count && connection.isStreamFinished($0.key) } }
        drive(connection, socket: socket, peerPort: port, seconds: 60, events: &events, step: {
            for id in sent.keys { while let data = connection.readStream(id) { received[id, default: []] += data.bytes } }
        }) { _ in complete() }
        for (id, bytes) in sent { let same = received[id] == bytes; #expect(same, "stream \(id): \(received[id]?.count ?? 0) of \(bytes.count)") }
        connection.close(errorCode: 0, now: monotonicNow())
        drive(connection, socket: socket, peerPort: port, seconds: 3, events: &events) { _ in connection.isClosed }
        #expect(peer.waitFor { $0.hasPrefix("closed code=0") })
    }
}
