// The `tuic` inbound (Go sing-box 1.12.12 protocol/tuic/inbound.go and sing-quic tuic/service.go,
// read for facts): one UDP socket on one event loop carrying every client's QUIC connection; a
// `TUICSession` per connection. Go wraps the router in its UoT router, so Connect streams to the
// UDP-over-TCP magic names become UDP flows here too.
package import Adapter
package import Config
package import NIOCore
import Net
@_implementationOnly import QUIC
@_implementationOnly import QUICNIO
import Transport

/// sing-box's `tuic` inbound.
package final class TUICInbound: Inbound, @unchecked Sendable {
    package let type = "tuic"
    package let tag: String
    private let context: TUICServerContext
    private let configuration: QUICConfiguration
    private let listen: ListenParameters
    private let group: any EventLoopGroup
    private let logger: ContextLogger
    private let warnings: [String]
    /// A set option this build cannot honour: the inbound fails at start with its name.
    private let unsupported: String?
    /// The bound socket and its driver once started; touched on the socket's loop after start.
    private var socket: (any Channel)?
    private var driver: QUICDriver?
    private var sessions: [ObjectIdentifier: TUICSession] = [:]

    /// Throws Go's errors (`TLS required`, `missing uuid for user N`, `invalid uuid for user N: …`,
    /// `unknown congestion control algorithm: …`), TLS file errors, and `tuic: <option>: not
    /// implemented` for listen and TLS fields this build cannot honour on QUIC.
    package init(tag: String, options: TUICInboundOptions, flowHandler: any FlowHandler, logger: ContextLogger,
                 group: any EventLoopGroup) throws {
        self.tag = tag
        guard let tls = options.tls, tls.enabled else { throw AdapterError(.other, "TLS required") }
        var warnings: [String] = []
        if let warning = try TUICModule.congestionWarning(options.congestionControl) { warnings.append(warning) }
        // No 0-RTT in our QUIC core: clients get a full handshake.
        if options.zeroRTTHandshake { warnings.append(TUICModule.zeroRTTWarning) }
        let unsupported: [(String, Bool)] = [
            ("bind_interface", options.listen.bindInterface != nil), ("routing_mark", options.listen.routingMark != nil),
            ("tls.acme", tls.acme != nil), ("tls.ech", tls.ech?.enabled == true), ("tls.reality", tls.reality?.enabled == true),
        ]
        self.unsupported = unsupported.first(where: { $0.1 })?.0
        self.warnings = warnings
        var users: [[UInt8]: (index: Int, name: String, password: [UInt8])] = [:]
        for (index, user) in options.users.enumerated() {
            guard let text = user.uuid, !text.isEmpty else { throw AdapterError(.other, "missing uuid for user \(index)") }
            guard let uuid = TUICModule.parseUUID(text) else {
                throw AdapterError(.other, "invalid uuid for user \(index): uuid: incorrect UUID length \(text.utf8.count) in string \"\(text)\"")
            }
            users[uuid] = (index, user.name ?? "", Array((user.password ?? "").utf8))
        }
        var quicTLS = QUICTLSConfiguration(alpn: tls.alpn)
        if !tls.certificate.isEmpty {
            quicTLS.certificatePEM = Array(tls.certificate.joined(separator: "\n").utf8)
        } else if let path = tls.certificatePath, !path.isEmpty {
            guard let bytes = SystemFile.read(path) else { throw AdapterError(.other, "read certificate: open \(path): no such file or directory") }
            quicTLS.certificatePEM = bytes
        }
        if !tls.key.isEmpty {
            quicTLS.privateKeyPEM = Array(tls.key.joined(separator: "\n").utf8)
        } else if let path = tls.keyPath, !path.isEmpty {
            guard let bytes = SystemFile.read(path) else { throw AdapterError(.other, "read key: open \(path): no such file or directory") }
            quicTLS.privateKeyPEM = bytes
        }
        guard quicTLS.certificatePEM != nil, quicTLS.privateKeyPEM != nil else { throw AdapterError(.other, "missing certificate") }
        var configuration = QUICConfiguration(tls: quicTLS)
        // Go allows 1<<60 streams; ours grow back as streams finish (MAX_STREAMS).
        configuration.initialMaxStreamsBidi = 1024
        configuration.initialMaxStreamsUni = 1024
        self.configuration = configuration
        listen = try ListenParameters(options.listen)
        let authTimeout = options.authTimeout.map { TimeAmount.nanoseconds($0.nanoseconds) } ?? .seconds(3)
        let heartbeat = options.heartbeat.map { TimeAmount.nanoseconds($0.nanoseconds) } ?? .seconds(10)
        context = TUICServerContext(tag: tag, users: users, authTimeout: authTimeout > .zero ? authTimeout : .seconds(3),
                                   heartbeat: heartbeat > .zero ? heartbeat : .seconds(10),
                                   flowHandler: UDPOverTCPFlowHandler(next: flowHandler, logger: logger),
                                   listenOptions: options.listen, logger: logger)
        self.group = group
        self.logger = logger
    }

    /// The bound UDP address (tests read the port).
    package var localAddress: SocketAddress? { socket?.localAddress }

    package func start(_ stage: StartStage) async throws {
        guard stage == .start else { return }
        if let unsupported { throw AdapterError(.notImplemented, "tuic: \(unsupported): not implemented") }
        for warning in warnings { logger.warn(warning) }
        let (socket, driver) = try await QUICDriver.bind(group: group.next(), address: SocketAddress(ip: listen.address, port: listen.port),
                                                         server: configuration).get()
        let context = self.context, logger = self.logger
        try await socket.eventLoop.submit {
            driver.onAccept = { [weak self] connection in
                guard let self else { return }
                let session = TUICSession(role: .server(context), driver: driver, socket: socket,
                                          remoteAddress: driver.peerAddress(of: connection), logger: logger)
                self.sessions[ObjectIdentifier(connection)] = session
                session.startServer(connection)
            }
            driver.onEvent = { [weak self] connection, event in
                guard let self, let session = self.sessions[ObjectIdentifier(connection)] else { return }
                session.handle(event)
                if case .closed = event { self.sessions[ObjectIdentifier(connection)] = nil }
            }
            driver.onFlushed = { [weak self] connection in self?.sessions[ObjectIdentifier(connection)]?.checkWritability() }
        }.get()
        self.socket = socket
        self.driver = driver
        logger.info("udp server started at \(socket.localAddress.flatMap { Destination($0) }.map { "\($0)" } ?? "")")
    }

    package func close() async throws {
        guard let socket else { return }
        try? await socket.eventLoop.submit {
            for session in self.sessions.values { session.close() }
        }.get()
        // Give CONNECTION_CLOSE a moment to leave before the socket goes.
        try? await socket.eventLoop.scheduleTask(in: .milliseconds(50)) {}.futureResult.get()
        try? await socket.close()
        self.socket = nil
    }
}
