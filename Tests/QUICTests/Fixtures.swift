// Fixtures: a self-signed certificate (made once per run with the openssl CLI), configurations,
// and a simulated link that shuttles datagrams between two endpoints on a test-controlled clock.
import Foundation
import NIOCore
import NetstackWire
@testable import QUIC
import TestSupport

/// A throwaway ECDSA P-256 certificate for "localhost" in a temp directory.
struct TestCertificate: Sendable {
    let directory: String
    var certificatePath: String { directory + "/cert.pem" }
    var keyPath: String { directory + "/key.pem" }
    var certificatePEM: [UInt8] { Array(FileManager.default.contents(atPath: certificatePath) ?? Data()) }
    var keyPEM: [UInt8] { Array(FileManager.default.contents(atPath: keyPath) ?? Data()) }

    static let shared: TestCertificate = {
        let directory = NSTemporaryDirectory() + "quic-tests-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificate = TestCertificate(directory: directory)
        // Removed when the test process exits (the files are shared by every test of the run).
        atexit { removeTestCertificateDirectory() }
        _ = try? ProcessRunner.run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                                "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                                                "-days", "2", "-keyout", certificate.keyPath, "-out", certificate.certificatePath])
        return certificate
    }()
}

/// The certificate directory of this process (see `TestCertificate.shared`).
func removeTestCertificateDirectory() {
    try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "quic-tests-\(getpid())")
}

func serverConfiguration(alpn: [String] = ["test"]) -> QUICConfiguration {
    var tls = QUICTLSConfiguration(alpn: alpn)
    tls.certificatePEM = TestCertificate.shared.certificatePEM
    tls.privateKeyPEM = TestCertificate.shared.keyPEM
    return QUICConfiguration(tls: tls)
}

func clientConfiguration(alpn: [String] = ["test"], verify: Bool = true) -> QUICConfiguration {
    var tls = QUICTLSConfiguration(alpn: alpn)
    tls.serverName = "localhost"
    if verify { tls.trustedRootsPEM = TestCertificate.shared.certificatePEM } else { tls.insecure = true }
    return QUICConfiguration(tls: tls)
}

/// Two endpoints joined by a lossy, reordering, duplicating link on simulated time.
final class SimulatedPair {
    let client: QUICConnection
    let server: QUICServerEndpoint
    var serverConnection: QUICConnection?
    var now = Instant(nanoseconds: 1_000_000_000)
    var random: TestRandom
    let loss: Double, duplicate: Double, reorder: Double
    let delay = Duration.milliseconds(10)
    /// In flight: arrival time, to server?, bytes.
    var inFlight: [(at: Instant, toServer: Bool, datagram: ByteBuffer)] = []
    var clientEvents: [QUICConnectionEvent] = []
    var serverEvents: [QUICConnectionEvent] = []
    var delivered = 0
    /// Every datagram sent, for the mutation test.
    var log: [(toServer: Bool, datagram: ByteBuffer)] = []

    init(client: QUICConfiguration = clientConfiguration(), server: QUICConfiguration = serverConfiguration(),
         seed: UInt64 = 1, loss: Double = 0, duplicate: Double = 0, reorder: Double = 0) throws {
        random = TestRandom(seed: seed)
        self.loss = loss; self.duplicate = duplicate; self.reorder = reorder
        self.client = try QUICConnection(client: client, now: now, random: TestRandom(seed: seed &+ 100))
        self.server = QUICServerEndpoint(configuration: server)
    }

    private func send(_ datagrams: [ByteBuffer], toServer: Bool) {
        for datagram in datagrams {
            log.append((toServer, datagram))
            if Double.random(in: 0..<1, using: &random) < loss { continue }
            var arrival = now + delay
            if Double.random(in: 0..<1, using: &random) < reorder { arrival += .milliseconds(Int64.random(in: 1...15, using: &random)) }
            inFlight.append((arrival, toServer, datagram))
            if Double.random(in: 0..<1, using: &random) < duplicate { inFlight.append((arrival + .milliseconds(1), toServer, datagram)) }
        }
    }

    /// Runs until `done` or `limit` of simulated time passes.
    func run(for limit: Duration = .seconds(30), until done: () -> Bool) {
        let end = now + limit
        while now < end, !done() {
            send(client.transmit(now: now), toServer: true)
            if let connection = serverConnection {
                send(connection.transmit(now: now), toServer: false)
                server.refresh(connection)
            }
            drainEvents()
            if done() { return }
            // Next thing to happen: a datagram arriving or a timer.
            var next = inFlight.map(\.at).min() ?? .distantFuture
            if let deadline = client.nextDeadline { next = min(next, deadline) }
            if let deadline = serverConnection?.nextDeadline { next = min(next, deadline) }
            guard next < .distantFuture else { return }
            // A deadline that did not move (nothing could be sent) must not spin the simulation.
            now = next <= now ? now + .milliseconds(1) : min(next, end)
            let arrived = inFlight.filter { $0.at <= now }
            inFlight.removeAll { $0.at <= now }
            for item in arrived {
                delivered += 1
                if item.toServer {
                    if let (connection, _) = server.route(item.datagram, now: now) {
                        if serverConnection == nil { serverConnection = connection }
                        connection.receive(datagram: item.datagram, now: now)
                    }
                } else {
                    client.receive(datagram: item.datagram, now: now)
                }
            }
        }
    }

    func drainEvents() {
        while let event = client.nextEvent() { clientEvents.append(event) }
        while let event = serverConnection?.nextEvent() { serverEvents.append(event) }
    }
}
