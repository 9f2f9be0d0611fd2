// The `tuic` outbound (Go sing-box 1.12.12 protocol/tuic/outbound.go and sing-quic tuic/client.go,
// read for facts).
//
// TCP: a bidirectional stream per flow, Connect header then raw bytes. UDP: an association per
// flow in DATAGRAM frames (`udp_relay_mode` native, the default) or unidirectional streams
// (`quic`), or with `udp_over_stream` UDP-over-TCP v2 in a Connect stream to the UoT magic name.
// Sessions: Go keeps one QUIC connection for all flows; we keep one per event loop (a flow's
// channel must live on its loop for the relay), dialed on first use and again after it died.
package import Adapter
package import Config
import NIOConcurrencyHelpers
package import NIOCore
@_implementationOnly import QUIC
import Transport

/// sing-box's `tuic` outbound.
package final class TUICOutbound: Outbound, @unchecked Sendable {
    package let type = "tuic"
    package let tag: String
    package let networks: Set<NetworkKind>
    private let server: ServerOptions
    private let settings: TUICClientSettings
    private let quic: QUICConfiguration
    private let udpOverStream: Bool
    private let resolver: any DNSResolver
    private let logger: ContextLogger
    private let warnings: [String]
    /// A set option this build cannot honour: the outbound fails at start with its name.
    private let unsupported: String?
    /// Per event loop: the live session or the dial in progress.
    private let sessions = NIOLockedValueBox<[ObjectIdentifier: EventLoopFuture<TUICSession>]>([:])
    static let connectTimeout = TimeAmount.seconds(10)

    /// Throws Go's errors (`TLS required`, `invalid uuid`, `udp_over_stream is conflict with
    /// udp_relay_mode`, `unknown congestion control algorithm: …`) and `tuic: <option>: not
    /// implemented` for dial and TLS fields this build cannot honour on QUIC.
    package init(tag: String, options: TUICOutboundOptions, resolver: any DNSResolver, logger: ContextLogger) throws {
        self.tag = tag
        guard let tls = options.tls, tls.enabled else { throw AdapterError(.other, "TLS required") }
        guard let uuid = TUICModule.parseUUID(options.uuid ?? "") else {
            throw AdapterError(.other, "invalid uuid: uuid: incorrect UUID length \((options.uuid ?? "").utf8.count) in string \"\(options.uuid ?? "")\"")
        }
        if options.udpOverStream && !(options.udpRelayMode ?? "").isEmpty {
            throw AdapterError(.other, "udp_over_stream is conflict with udp_relay_mode")
        }
        var warnings: [String] = []
        if let warning = try TUICModule.congestionWarning(options.congestionControl) { warnings.append(warning) }
        // No 0-RTT in our QUIC core: a full handshake instead (the first flow waits one round trip more).
        if options.zeroRTTHandshake { warnings.append(TUICModule.zeroRTTWarning) }
        unsupported = Self.unsupportedOption(options.dial, tls)
        self.warnings = warnings
        let names = options.network.networks
        networks = names.isEmpty ? [.tcp, .udp] : Set(names.compactMap { NetworkKind(rawValue: $0) })
        server = options.server
        let heartbeat = options.heartbeat.map { TimeAmount.nanoseconds($0.nanoseconds) } ?? .seconds(10)
        settings = TUICClientSettings(uuid: uuid, password: Array((options.password ?? "").utf8),
                                      udpStream: options.udpRelayMode == "quic", heartbeat: heartbeat > .zero ? heartbeat : .seconds(10))
        udpOverStream = options.udpOverStream
        var configuration = QUICConfiguration(tls: QUICTLSConfiguration(alpn: tls.alpn))
        // Go's tls.NewClient: the server name defaults to the server address.
        configuration.tls.serverName = tls.serverName ?? options.server.server
        configuration.tls.insecure = tls.insecure
        // `certificate` lines, else the file at `certificate_path`, replace the system roots (as Go's TLS client).
        if !tls.certificate.isEmpty {
            configuration.tls.trustedRootsPEM = Array(tls.certificate.joined(separator: "\n").utf8)
        } else if let path = tls.certificatePath, !path.isEmpty {
            guard let bytes = SystemFile.read(path) else { throw AdapterError(.other, "read certificate: open \(path): no such file or directory") }
            configuration.tls.trustedRootsPEM = bytes
        }
        configuration.initialMaxStreamsUni = 1024
        quic = configuration
        self.resolver = resolver
        self.logger = logger
    }

    /// Fields we would otherwise ignore, to be refused by name at start. (min/max_version and
    /// cipher_suites mean nothing on QUIC, which is TLS 1.3 with its own suites in Go too.)
    private static func unsupportedOption(_ dial: DialerOptions, _ tls: OutboundTLSOptions) -> String? {
        let unsupported: [(String, Bool)] = [
            ("detour", dial.detour != nil), ("bind_interface", dial.bindInterface != nil),
            ("inet4_bind_address", dial.inet4BindAddress != nil), ("inet6_bind_address", dial.inet6BindAddress != nil),
            ("routing_mark", dial.routingMark != nil), ("netns", dial.netns != nil), ("network_strategy", dial.networkStrategy != nil),
            ("tls.disable_sni", tls.disableSNI), ("tls.ech", tls.ech?.enabled == true), ("tls.utls", tls.utls?.enabled == true),
            ("tls.reality", tls.reality?.enabled == true),
        ]
        return unsupported.first(where: { $0.1 })?.0
    }

    package func start(_ stage: StartStage) async throws {
        guard stage == .start else { return }
        if let unsupported { throw AdapterError(.notImplemented, "tuic: \(unsupported): not implemented") }
        for warning in warnings { logger.warn(warning) }
    }

    package func close() async throws {
        let all = sessions.withLockedValue { current in
            defer { current = [:] }
            return Array(current.values)
        }
        for future in all {
            future.whenSuccess { $0.close() }
        }
    }

    package func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        guard networks.contains(.tcp) else { throw AdapterError(.unsupportedNetwork, "TCP is not supported by outbound: \(tag)") }
        logger.info("outbound connection to \(metadata.destination)", flow: metadata.flowID)
        return try await openStream(to: metadata.destination, on: eventLoop)
    }

    package func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        guard networks.contains(.udp) else { throw AdapterError(.unsupportedNetwork, "UDP is not supported by outbound: \(tag)") }
        if udpOverStream {
            logger.info("outbound stream packet connection to \(metadata.destination)", flow: metadata.flowID)
            let request = UDPOverTCPRequest(isConnect: metadata.udpConnect, destination: metadata.destination)
            let stream = try await openStream(to: try UDPOverTCP.requestDestination(version: UDPOverTCP.version), on: eventLoop)
            do {
                return try await eventLoop.submit { try UDPOverTCPConnection(client: stream, request: request) }.get()
            } catch {
                stream.close(promise: nil)
                throw error
            }
        }
        logger.info("outbound packet connection to \(metadata.destination)", flow: metadata.flowID)
        let session = try await session(on: eventLoop)
        return try await eventLoop.submit { try session.openAssociation() }.get()
    }

    /// A Connect stream on this loop's session, registered and active, autoRead off.
    private func openStream(to destination: Destination, on loop: any EventLoop) async throws -> any Channel {
        let session = try await session(on: loop)
        return try await loop.submit {
            let stream = try session.openConnect(to: destination)
            stream.activate()
            session.flush()
            return stream
        }.get()
    }

    /// The loop's live session, or a new one (Go's `offer`: a dead connection is replaced). A
    /// session that died between its dial and now is replaced once; a second one is an error.
    private func session(on loop: any EventLoop) async throws -> TUICSession {
        let key = ObjectIdentifier(loop)
        for _ in 0..<2 {
            let future: EventLoopFuture<TUICSession> = sessions.withLockedValue { current in
                if let existing = current[key] { return existing }
                let promise = loop.makePromise(of: TUICSession.self)
                current[key] = promise.futureResult
                promise.completeWithTask { try await self.dial(on: loop) }
                return promise.futureResult
            }
            do {
                let session = try await future.get()
                if try await loop.submit({ session.isUsable }).get() { return session }
            } catch {
                forget(future, key: key)
                throw error  // already `open connection: …` (TUICSession.connect) or the lookup's error
            }
            forget(future, key: key)
        }
        throw AdapterError(.other, "open connection: connection closed")
    }

    private func forget(_ future: EventLoopFuture<TUICSession>, key: ObjectIdentifier) {
        sessions.withLockedValue { current in
            if current[key] === future { current[key] = nil }
        }
    }

    /// Resolves the server, dials QUIC, authenticates; the session forgets itself from the pool when it ends.
    private func dial(on loop: any EventLoop) async throws -> TUICSession {
        let address: SocketAddress
        if let ip = Adapter.IPAddress(server.server) {
            address = SocketAddress(ip: ip, port: server.serverPort)
        } else {
            guard let ip = try await resolver.lookup(server.server, options: DNSLookupOptions()).first else {
                throw AdapterError(.other, "lookup \(server.server): no such host")
            }
            address = SocketAddress(ip: ip, port: server.serverPort)
        }
        let session = try await TUICSession.connect(to: address, configuration: quic, settings: settings, on: loop,
                                                    timeout: Self.connectTimeout, logger: logger).get()
        return session
    }
}
