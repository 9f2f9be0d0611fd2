// Our tuic inbound and outbound in one process over loopback: a raw QUIC client (our driver) that
// does not authenticate, authenticates as nobody, or sends a garbled DATAGRAM is cut off with Go's
// log line; our outbound carries 320 KiB echoed byte-exact on each of four concurrent streams of one
// QUIC connection, and dials a new connection after the server killed the old one; a server that does
// not read holds the writer at QUIC's flow control.
import Adapter
import Config
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Net
import QUIC
import QUICNIO
import TestSupport
import Testing
@testable import TUIC

/// Keeps log lines for assertions.
private final class LogLines: LogSink, @unchecked Sendable {
    private let lines = NIOLockedValueBox<[String]>([])
    func write(line: String) { lines.withLockedValue { $0.append(line) } }
    func contains(_ text: String) -> Bool { lines.withLockedValue { $0.contains { $0.contains(text) } } }
    var all: String { lines.withLockedValue { $0.joined() } }
}

/// Writes back what it reads; ends its output when the input ends.
private final class EchoHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.write(data, promise: nil) }
    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(mode: .output, promise: nil) }
    }
}

/// The inbound's router here: echoes TCP, drops UDP.
private final class EchoFlowHandler: FlowHandler, @unchecked Sendable {
    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) {
        channel.eventLoop.execute {
            let sync = channel.pipeline.syncOperations
            try? sync.addHandler(EchoHandler())
            if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
            _ = try? channel.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        }
    }
    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) { connection.close() }
}

/// Collects a stream's bytes until its end.
private final class Collect: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let done: EventLoopPromise<[UInt8]>
    var bytes: [UInt8] = []
    init(done: EventLoopPromise<[UInt8]>) { self.done = done }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { bytes += Array(unwrapInboundIn(data).readableBytesView) }
    func channelInactive(context: ChannelHandlerContext) { done.succeed(bytes) }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { done.succeed(bytes); context.close(promise: nil) }
    }
}

/// The inbound's router for the back-pressure test: keeps each flow without reading it until told.
private final class HoldFlowHandler: FlowHandler, @unchecked Sendable {
    private let held = NIOLockedValueBox<[any Channel]>([])
    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) {
        held.withLockedValue { $0.append(channel) }
    }
    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) { connection.close() }
    var count: Int { held.withLockedValue { $0.count } }
    /// Starts reading every held flow (and throws the bytes away).
    func drain() {
        for channel in held.withLockedValue({ $0 }) {
            channel.eventLoop.execute {
                let sync = channel.pipeline.syncOperations
                if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
                _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
                channel.read()
            }
        }
    }
}

private let uuidText = "059032a9-7d40-4a96-9bb1-36823d848068"

/// A self-signed certificate for 127.0.0.1 in a temporary directory (removed by `remove`).
private struct Certificate {
    let directory = NSTemporaryDirectory() + "tuic-tests-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    var certificatePath: String { directory + "/cert.pem" }
    var keyPath: String { directory + "/key.pem" }
    init() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        _ = try ProcessRunner.run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                              "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                                              "-days", "2", "-keyout", keyPath, "-out", certificatePath])
    }
    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

private func inbound(port: UInt16, certificate: Certificate, logs: LogLines, group: any EventLoopGroup,
                     authTimeoutMilliseconds: Int64 = 10_000, flows: any FlowHandler = EchoFlowHandler()) throws -> TUICInbound {
    var options = TUICInboundOptions()
    options.listen.listen = IPAddressOption("127.0.0.1")
    options.listen.listenPort = port
    var user = TUICUser()
    user.name = "alice"
    user.uuid = uuidText
    user.password = "pw"
    options.users = [user]
    options.authTimeout = ConfigDuration(nanoseconds: authTimeoutMilliseconds * 1_000_000)
    var tls = InboundTLSOptions()
    tls.enabled = true
    tls.alpn = ["h3"]
    tls.certificatePath = certificate.certificatePath
    tls.keyPath = certificate.keyPath
    options.tls = tls
    return try TUICInbound(tag: "tuic-in", options: options, flowHandler: flows,
                           logger: ContextLogger(core: LogCore(level: .debug, sink: logs), name: "inbound/tuic[tuic-in]"), group: group)
}

private func makeOutbound(port: UInt16, certificate: Certificate, logs: LogLines) throws -> TUICOutbound {
    var options = TUICOutboundOptions()
    options.server.server = "127.0.0.1"
    options.server.serverPort = port
    options.uuid = uuidText
    options.password = "pw"
    options.zeroRTTHandshake = true
    var tls = OutboundTLSOptions()
    tls.enabled = true
    tls.serverName = "localhost"
    tls.alpn = ["h3"]
    tls.certificatePath = certificate.certificatePath
    options.tls = tls
    return try TUICOutbound(tag: "tuic-out", options: options, resolver: SystemResolver(),
                        logger: ContextLogger(core: LogCore(level: .debug, sink: logs), name: "outbound/tuic[tuic-out]"))
}

/// A raw QUIC client: events are recorded; `closed` completes when the connection ends.
private final class RawClient: @unchecked Sendable {
    let loop: any EventLoop
    let socket: any Channel
    let driver: QUICDriver
    var connection: QUICConnection!
    let handshake: EventLoopPromise<Void>
    let closed: EventLoopPromise<QUICCloseReason>

    init(port: UInt16, loop: any EventLoop) async throws {
        self.loop = loop
        (socket, driver) = try await QUICDriver.bind(group: loop, host: "127.0.0.1", port: 0).get()
        handshake = loop.makePromise()
        closed = loop.makePromise()
        var tls = QUICTLSConfiguration(alpn: ["h3"])
        tls.serverName = "localhost"
        tls.insecure = true
        let configuration = QUICConfiguration(tls: tls)
        try await loop.submit {
            self.driver.onEvent = { [self] _, event in
                switch event {
                case .handshakeCompleted: handshake.succeed(())
                case .closed(let reason): handshake.fail(ChannelError.eof); closed.succeed(reason)
                default: break
                }
            }
            self.connection = try self.driver.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: Int(port)), configuration: configuration)
        }.get()
    }

    /// Writes Authenticate for `uuid` with the token derived from `password` (the exporter).
    func authenticate(uuid: [UInt8], password: String) async throws {
        try await loop.submit {
            let token = self.connection.exportKeyingMaterial(label: uuid, context: Array(password.utf8), length: 32) ?? []
            guard let id = self.connection.openStream(bidirectional: false) else { throw ChannelError.ioOnClosedChannel }
            try self.connection.writeStream(id, TUICCodec.authenticate(uuid: uuid, token: token), fin: true)
            self.driver.flush(self.connection)
        }.get()
    }

    func sendDatagram(_ bytes: [UInt8]) async throws {
        try await loop.submit {
            self.connection.sendDatagram(ByteBuffer(bytes: bytes))
            self.driver.flush(self.connection)
        }.get()
    }

    func stop() async { try? await socket.close() }
}

/// Waits for `future` at most `seconds`.
private func within<T: Sendable>(_ seconds: Int64, _ future: EventLoopFuture<T>) async throws -> T {
    let loop = future.eventLoop
    let timeout = loop.scheduleTask(in: .seconds(seconds)) {}
    defer { timeout.cancel() }
    let promise = loop.makePromise(of: T.self)
    future.cascade(to: promise)
    timeout.futureResult.whenSuccess { promise.fail(ChannelError.connectTimeout(.seconds(seconds))) }
    return try await promise.futureResult.get()
}

@Suite(.serialized) struct TUICSessionTests {
    @Test func inboundCutsOffBadClientsWithGoWords() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let certificate = try Certificate()
        defer { certificate.remove() }
        let logs = LogLines()
        // The silent client gets a server with a short auth_timeout; the others one with the default,
        // so a loaded debug run cannot time them out before they authenticate.
        let impatient = try inbound(port: 0, certificate: certificate, logs: logs, group: group, authTimeoutMilliseconds: 500)
        try await impatient.start(.start)
        defer { Task { try? await impatient.close() } }
        let server = try inbound(port: 0, certificate: certificate, logs: logs, group: group)
        try await server.start(.start)
        defer { Task { try? await server.close() } }
        let port = UInt16(try #require(server.localAddress?.port))

        // 1. Never authenticates: closed after auth_timeout.
        let silent = try await RawClient(port: UInt16(try #require(impatient.localAddress?.port)), loop: group.next())
        try await within(5, silent.handshake.futureResult)
        _ = try await within(10, silent.closed.futureResult)
        #expect(logs.contains("inbound/tuic[tuic-in]: connection failed: authentication timeout"), "\(logs.all)")
        await silent.stop()

        // 2. An unknown UUID.
        let stranger = try await RawClient(port: port, loop: group.next())
        try await within(5, stranger.handshake.futureResult)
        try await stranger.authenticate(uuid: Array(repeating: 7, count: 16), password: "pw")
        _ = try await within(5, stranger.closed.futureResult)
        #expect(logs.contains("connection failed: handle uni stream: authentication: unknown user 07070707-0707-0707-0707-070707070707"),
                "\(logs.all)")
        await stranger.stop()

        // 3. The right UUID, the wrong password.
        let uuid = try #require(TUICModule.parseUUID(uuidText))
        let wrong = try await RawClient(port: port, loop: group.next())
        try await within(5, wrong.handshake.futureResult)
        try await wrong.authenticate(uuid: uuid, password: "nope")
        _ = try await within(5, wrong.closed.futureResult)
        #expect(logs.contains("connection failed: handle uni stream: authentication: token mismatch"), "\(logs.all)")
        await wrong.stop()

        // 4. Authenticated, then a DATAGRAM with an unknown command (Go prints the version byte).
        let garbled = try await RawClient(port: port, loop: group.next())
        try await within(5, garbled.handshake.futureResult)
        try await garbled.authenticate(uuid: uuid, password: "pw")
        try await garbled.sendDatagram([0x05, 0x09, 0x01])
        _ = try await within(5, garbled.closed.futureResult)
        #expect(logs.contains("connection failed: handle message: unknown command 5"), "\(logs.all)")
        await garbled.stop()
        // Only the silent client timed out: a failed or successful Authenticate stops the timer.
        #expect(logs.all.components(separatedBy: "authentication timeout").count - 1 == 1, "\(logs.all)")
    }

    /// A server that does not read holds the client's writes at QUIC's flow control: the stream
    /// channel stays unwritable (its QUIC buffer cannot drain) until the server reads, then drains.
    @Test func unreadStreamHoldsTheWriter() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let certificate = try Certificate()
        defer { certificate.remove() }
        let logs = LogLines()
        let flows = HoldFlowHandler()
        let server = try inbound(port: 0, certificate: certificate, logs: logs, group: group, flows: flows)
        try await server.start(.start)
        defer { Task { try? await server.close() } }
        let outbound = try makeOutbound(port: UInt16(try #require(server.localAddress?.port)), certificate: certificate, logs: logs)
        let loop = group.next()
        let metadata = FlowMetadata(inbound: "test", inboundType: "test", network: .tcp, source: nil, destination: Destination("127.0.0.1:9")!)
        let channel = try await outbound.dialTCP(metadata, on: loop)
        // 4 MiB fill the server's stream window (our QUIC grants 4 MiB per stream); 1.5 MiB more stay here.
        try await loop.submit {
            var rest = ByteBuffer(repeating: 0x5a, count: (4 << 20) + (3 << 19))
            while let piece = rest.readSlice(length: min(65_536, rest.readableBytes)), piece.readableBytes > 0 {
                channel.write(piece, promise: nil)
            }
            channel.flush()
        }.get()
        // The 4 MiB go out and are acknowledged; then nothing moves: exactly the 1.5 MiB beyond the
        // window stay unacknowledged here (were the server to take bytes it did not read, they would
        // drain to nothing).
        let stream = try #require(channel as? TUICStreamChannel)
        func buffered() async throws -> Int { try await loop.submit { stream.session.connection.bufferedBytes(stream: stream.streamID) }.get() }
        // The Connect header (9 bytes for an IPv4 destination) counts against the window too.
        let held = (3 << 19) + (try TUICCodec.connect(metadata.destination).readableBytes)
        for _ in 0..<150 where try await buffered() > held { try await Task.sleep(for: .milliseconds(100)) }
        try await Task.sleep(for: .seconds(1))
        let settled = try await buffered()
        #expect(settled == held, "\(settled) bytes buffered\n\(logs.all)")
        #expect(flows.count == 1)
        #expect(try await loop.submit { channel.isWritable }.get() == false, "\(logs.all)")
        flows.drain()
        var writable = false
        for _ in 0..<100 where !writable {
            try await Task.sleep(for: .milliseconds(100))
            writable = try await loop.submit { channel.isWritable }.get()
        }
        #expect(writable, "the writer never drained after the server read\n\(logs.all)")
        channel.close(promise: nil)
        try await outbound.close()
    }

    /// Options we cannot honour fail at start by name; Go's errors come at build.
    @Test func optionsRefusedAsGoOrByName() async throws {
        let certificate = try Certificate()
        defer { certificate.remove() }
        let logs = LogLines()
        func outbound(_ change: (inout TUICOutboundOptions) -> Void) throws -> TUICOutbound {
            var options = TUICOutboundOptions()
            options.server.server = "127.0.0.1"
            options.server.serverPort = 1
            options.uuid = uuidText
            var tls = OutboundTLSOptions()
            tls.enabled = true
            options.tls = tls
            change(&options)
            return try TUICOutbound(tag: "t", options: options, resolver: SystemResolver(), logger: ContextLogger(core: LogCore(level: .debug, sink: logs), name: "t"))
        }
        func message(_ body: () throws -> Void) -> String? {
            do { try body() } catch { return "\(error)" }
            return nil
        }
        #expect(message { _ = try outbound { $0.congestionControl = "vegas" } } == "unknown congestion control algorithm: vegas")
        #expect(message { _ = try outbound { $0.tls = nil } } == "TLS required")
        #expect(message { _ = try outbound { $0.udpOverStream = true; $0.udpRelayMode = "quic" } } == "udp_over_stream is conflict with udp_relay_mode")
        #expect(message { _ = try outbound { $0.uuid = "nope" } }?.hasPrefix("invalid uuid") == true)
        let detour = try outbound { $0.dial.detour = "other" }
        var failure: String?
        do { try await detour.start(.start) } catch { failure = "\(error)" }
        #expect(failure == "tuic: detour: not implemented")
        let cubic = try outbound { $0.congestionControl = "cubic" }
        try await cubic.start(.start)
        #expect(logs.contains("congestion_control cubic is not implemented: using new_reno"))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        var inboundOptions = TUICInboundOptions()
        inboundOptions.listen.bindInterface = "lo"
        var tls = InboundTLSOptions()
        tls.enabled = true
        tls.certificatePath = certificate.certificatePath
        tls.keyPath = certificate.keyPath
        inboundOptions.tls = tls
        let bound = try TUICInbound(tag: "in", options: inboundOptions, flowHandler: EchoFlowHandler(),
                                    logger: ContextLogger(core: LogCore(level: .debug, sink: logs), name: "in"), group: group)
        failure = nil
        do { try await bound.start(.start) } catch { failure = "\(error)" }
        #expect(failure == "tuic: bind_interface: not implemented")
        var user = TUICUser()
        user.uuid = ""
        inboundOptions.users = [user]
        #expect(message { _ = try TUICInbound(tag: "in", options: inboundOptions, flowHandler: EchoFlowHandler(),
                                              logger: ContextLogger(core: LogCore(level: .debug, sink: logs), name: "in"), group: group) }
                == "missing uuid for user 0")
    }

    @Test func outboundCarriesConcurrentStreamsAndRedials() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let certificate = try Certificate()
        defer { certificate.remove() }
        let logs = LogLines()
        let server = try inbound(port: 0, certificate: certificate, logs: logs, group: group)
        try await server.start(.start)
        let port = UInt16(try #require(server.localAddress?.port))

        let outbound = try makeOutbound(port: port, certificate: certificate, logs: logs)
        try await outbound.start(.start)
        #expect(logs.contains("zero_rtt_handshake is not implemented: using a full handshake"))
        let loop = group.next()

        @Sendable func echo(_ payload: [UInt8]) async throws -> [UInt8] {
            let metadata = FlowMetadata(inbound: "test", inboundType: "test", network: .tcp, source: nil,
                                        destination: Destination("127.0.0.1:9")!)
            let channel = try await outbound.dialTCP(metadata, on: loop)
            let done = loop.makePromise(of: [UInt8].self)
            try await loop.submit {
                let sync = channel.pipeline.syncOperations
                if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
                try sync.addHandler(Collect(done: done))
                try channel.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                try channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
                channel.read()
                // Written in 64 KiB pieces, honouring writability is the relay's job; here all at once.
                var rest = ByteBuffer(bytes: payload)
                while let piece = rest.readSlice(length: min(65_536, rest.readableBytes)), piece.readableBytes > 0 {
                    channel.write(piece, promise: nil)
                }
                channel.flush()
                channel.close(mode: .output, promise: nil)
            }.get()
            return try await within(60, done.futureResult)
        }

        // Four streams at once, 320 KiB each, on one connection (the interop tests move 2 MiB; a debug
        // build under a parallel run moves QUIC at a few MB/s).
        let payloads = (0..<4).map { index in (0..<((1 << 18) + 65_536)).map { UInt8(truncatingIfNeeded: $0 &* (index + 3) &+ $0 >> 9) } }
        try await withThrowingTaskGroup(of: Bool.self) { tasks in
            for payload in payloads { tasks.addTask { try await echo(payload) == payload } }
            for try await same in tasks { #expect(same) }
        }
        #expect(logs.all.components(separatedBy: "[alice] inbound connection to 127.0.0.1:9").count - 1 == 4)

        // The server goes away and comes back on the same port: the next flow dials a new connection.
        try await server.close()
        let again = try inbound(port: port, certificate: certificate, logs: logs, group: group)
        try await again.start(.start)
        defer { Task { try? await again.close() } }
        let payload = Array("after redial".utf8)
        let answer = (try? await echo(payload)) ?? []
        #expect(answer == payload, "\(logs.all)")
        try await outbound.close()
    }
}
