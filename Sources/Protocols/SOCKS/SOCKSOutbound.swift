// The `socks` outbound: CONNECT and UDP ASSOCIATE through a SOCKS4, SOCKS4A or SOCKS5 server.
//
// TCP: dial the server → `SOCKSClientHandler` → the connected channel goes to the router.
// UDP with `udp_over_tcp`: sing's UoT over a CONNECT to its magic name (Transport), any version.
// UDP (SOCKS5 only) otherwise: a control connection does UDP ASSOCIATE; datagrams then go to BND (the
// server's address when BND is unspecified) through a socket from the dialer, each with the
// RFC 1928 §7 header; the association ends with the control connection.
package import Adapter
package import Config
package import NIOCore
import Net
import Transport

/// sing-box's `socks` outbound.
package final class SOCKSOutbound: Outbound {
    package let type = "socks"
    package let tag: String
    package let networks: Set<NetworkKind>
    package let dependencies: [String]
    /// 4 (with `resolve`, names are looked up here), 4A (names sent to the server) or 5.
    package let version: UInt8
    private let sendsDomains: Bool
    private let server: Destination
    private let username: String
    private let password: String
    private let dialer: any Dialer
    private let resolver: (any DNSResolver)?
    private let logger: ContextLogger
    /// `udp_over_tcp`: UDP flows ride a TCP stream to the UoT magic name, in this sing UoT version.
    private let udpOverTCPVersion: UInt8?

    /// `dialer` reaches the server (it carries the dial fields and `detour`); `resolver` turns
    /// names into addresses for version 4. Throws on an unknown version.
    package init(tag: String, options: SOCKSOutboundOptions, dialer: any Dialer, resolver: (any DNSResolver)?,
                 logger: ContextLogger) throws {
        self.tag = tag
        switch options.version ?? "5" {
        case "", "5": version = SOCKS5.version; sendsDomains = true
        case "4a": version = SOCKS4.version; sendsDomains = true
        case "4": version = SOCKS4.version; sendsDomains = false
        case let other: throw AdapterError(.other, "unknown socks version: \(other)")
        }
        udpOverTCPVersion = options.udpOverTCP.flatMap { $0.enabled ? $0.version ?? 0 : nil }
        let names = options.network.networks
        networks = names.isEmpty ? [.tcp, .udp] : Set(names.compactMap { NetworkKind(rawValue: $0) })
        dependencies = options.dial.detour.map { [$0] } ?? []
        server = Destination(host: Host(options.server.server), port: options.server.serverPort)
        username = options.username ?? ""
        password = options.password ?? ""
        self.dialer = dialer
        self.resolver = resolver
        self.logger = logger
    }

    package func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        guard networks.contains(.tcp) else { throw AdapterError(.unsupportedNetwork, "TCP is not supported by outbound: \(tag)") }
        logger.info("outbound connection to \(metadata.destination)", flow: metadata.flowID)
        return try await connect(to: try await wireDestination(metadata), on: eventLoop)
    }

    /// A CONNECT through the server to `destination`.
    private func connect(to destination: Destination, on eventLoop: any EventLoop) async throws -> any Channel {
        let channel = try await dialer.dialTCP(to: server, on: eventLoop)
        do {
            _ = try await handshake(channel, command: SOCKS5.commandConnect, destination: destination)
            return channel
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    package func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        guard networks.contains(.udp) else { throw AdapterError(.unsupportedNetwork, "UDP is not supported by outbound: \(tag)") }
        if let udpOverTCPVersion { return try await listenPacketOverTCP(metadata, version: udpOverTCPVersion, on: eventLoop) }
        guard version == SOCKS5.version else { throw SOCKSError.unsupportedNetwork }
        logger.info("outbound packet connection to \(metadata.destination)", flow: metadata.flowID)
        let control = try await dialer.dialTCP(to: server, on: eventLoop)
        do {
            // We do not know our UDP source before the socket exists: RFC 1928 §6 lets us send zeros.
            var bind = try await handshake(control, command: SOCKS5.commandUDPAssociate, destination: Destination(ip: .v4(0), port: 0))
            if bind.ip?.isUnspecified ?? true, let serverIP = control.remoteAddress.flatMap({ Destination($0) })?.ip {
                // BND 0.0.0.0 (or a name) means "the address you reached me at".
                bind.host = .ip(serverIP.unmapped)
            }
            let socket = try await dialer.listenPacket(on: eventLoop)
            let relay = bind
            return try await eventLoop.submit {
                try SOCKSClientPacketConnection(control: control, socket: socket, relay: relay)
            }.get()
        } catch {
            control.close(promise: nil)
            throw error
        }
    }

    /// sing's UoT client: a CONNECT to the magic name, then the version 2 request (connect mode when
    /// the flow is `udp_connect`) in front of the first packet.
    private func listenPacketOverTCP(_ metadata: FlowMetadata, version: UInt8, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        let magic = try UDPOverTCP.requestDestination(version: version)
        let connectMode = metadata.udpConnect && version != UDPOverTCP.legacyVersion
        logger.info("outbound UoT \(connectMode ? "connect " : "")packet connection to \(metadata.destination)", flow: metadata.flowID)
        let channel = try await connect(to: magic, on: eventLoop)
        let request = version == UDPOverTCP.legacyVersion ? nil : UDPOverTCPRequest(isConnect: connectMode, destination: metadata.destination)
        do {
            return try await eventLoop.submit { try UDPOverTCPConnection(client: channel, request: request) }.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    /// The destination as this version can say it: SOCKS4 needs an IPv4 address.
    private func wireDestination(_ metadata: FlowMetadata) async throws -> Destination {
        let destination = metadata.destination
        guard !sendsDomains, let domain = destination.domain else { return destination }
        var addresses = metadata.destinationAddresses
        if addresses.isEmpty {
            guard let resolver else { throw AdapterError(.other, "socks4: no resolver for \(domain)") }
            addresses = try await resolver.lookup(domain, options: DNSLookupOptions(strategy: .ipv4Only))
        }
        guard let ipv4 = addresses.first(where: { $0.unmapped.isIPv4 }) else {
            throw AdapterError(.other, "socks4: no IPv4 address for \(domain)")
        }
        return Destination(ip: ipv4.unmapped, port: destination.port)
    }

    /// Runs the client handshake on `channel`; returns BND.
    private func handshake(_ channel: any Channel, command: UInt8, destination: Destination) async throws -> Destination {
        let machine = SOCKSClientHandshake(version: version, command: command, destination: destination,
                                           username: username, password: password)
        let result = channel.eventLoop.makePromise(of: Destination.self)
        channel.eventLoop.execute {
            do {
                // First: the dialer's FlowBufferHandler at the end holds bytes for the relay.
                try channel.pipeline.syncOperations.addHandler(SOCKSClientHandler(handshake: machine, result: result), position: .first)
            } catch {
                result.fail(error)
            }
        }
        return try await result.futureResult.get()
    }
}

/// A SOCKS5 UDP association seen from the client: datagrams to any destination, through the
/// server's relay. Loop-confined to the socket's loop (the control channel shares it).
final class SOCKSClientPacketConnection: PacketConnection, PacketReceiver, @unchecked Sendable {
    let control: any Channel
    let socket: any PacketConnection
    let relay: Destination
    var eventLoop: any EventLoop { socket.eventLoop }
    var closeFuture: EventLoopFuture<Void> { closed.futureResult }
    private let closed: EventLoopPromise<Void>
    private var receiver: (any PacketReceiver)?
    private var isClosed = false

    init(control: any Channel, socket: any PacketConnection, relay: Destination) throws {
        self.control = control
        self.socket = socket
        self.relay = relay
        self.closed = socket.eventLoop.makePromise()
        // The control connection carries nothing more, but its end ends the association (§7).
        if let holder = try? control.pipeline.syncOperations.handler(type: FlowBufferHandler.self) {
            control.pipeline.syncOperations.removeHandler(holder, promise: nil)
        }
        try control.pipeline.syncOperations.addHandler(ControlWatcher())
        _ = try? control.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        control.read()
        control.closeFuture.whenComplete { [self] _ in close() }
        socket.closeFuture.whenComplete { [self] _ in close() }
    }

    func setReceiver(_ receiver: any PacketReceiver) {
        self.receiver = receiver
        socket.setReceiver(self)
    }

    func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        guard !isClosed else { return }
        var datagram = ByteBuffer()
        datagram.reserveCapacity(SOCKS5UDPHeader.length(for: destination) + payload.readableBytes)
        do {
            try SOCKS5UDPHeader.write(destination, to: &datagram)
        } catch {
            return  // a name too long for the header cannot be sent
        }
        datagram.writeImmutableBuffer(payload)
        socket.writePacket(datagram, to: relay)
    }

    func flush() { socket.flush() }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        socket.close()
        control.close(promise: nil)
        let receiver = self.receiver
        self.receiver = nil
        receiver?.packetConnectionClosed()
        closed.succeed(())
    }

    // From the socket: strip the header, report the datagram as coming from its DST.
    func packetReceived(_ payload: ByteBuffer, from source: Destination) {
        // Only the relay speaks on this socket.
        guard source.port == relay.port, relay.ip == nil || source.ip?.unmapped == relay.ip?.unmapped else { return }
        var payload = payload
        guard let origin = try? SOCKS5UDPHeader.read(from: &payload) else { return }
        receiver?.packetReceived(payload, from: origin)
    }

    func packetConnectionClosed() { close() }
}

/// Swallows whatever the server sends on an association's control connection.
private final class ControlWatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
