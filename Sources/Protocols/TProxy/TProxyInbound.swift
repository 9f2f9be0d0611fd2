// TProxyInbound: transparent TCP listener and transparent UDP socket.
package import Adapter
package import Config
package import NIOCore
package import Net

/// The `tproxy` inbound: `network` selects TCP, UDP or both (default both). Flows carry the original
/// destination; the legacy listen fields (`udp_timeout`, `sniff`, …) are applied per flow.
package final class TProxyInbound: Inbound, @unchecked Sendable {
    package let type = "tproxy"
    package let tag: String
    package let listen: ListenParameters
    package let networks: Set<NetworkKind>
    /// The config's listen fields, for the legacy per-flow ones.
    package let listenOptions: ListenOptions?
    let sockets: any TransparentSockets
    let group: any EventLoopGroup
    let router: any FlowHandler
    let logger: ContextLogger
    // Set in start, read in close; both on the box's control task.
    private var tcpServer: (any Channel)?
    private var udpListener: (any TransparentPacketListener)?
    private var udpTable: TProxyUDPTable?

    package init(tag: String, listen: ListenParameters, networks: Set<NetworkKind>, listenOptions: ListenOptions? = nil,
                 sockets: any TransparentSockets, group: any EventLoopGroup, router: any FlowHandler, logger: ContextLogger) {
        self.tag = tag
        self.listen = listen
        self.networks = networks.isEmpty ? [.tcp, .udp] : networks
        self.listenOptions = listenOptions
        self.sockets = sockets
        self.group = group
        self.router = router
        self.logger = logger.named("inbound/tproxy[\(tag)]")
    }

    /// The bound TCP address (tests bind port 0).
    package var tcpLocalAddress: SocketAddress? { tcpServer?.localAddress }
    /// The bound UDP address.
    package var udpLocalAddress: SocketAddress? { udpListener?.localAddress }

    package func start(_ stage: StartStage) async throws {
        guard stage == .start else { return }
        let ipv6 = listen.address.isIPv6
        if networks.contains(.tcp) {
            let sockets = self.sockets
            let server = try await Listener.listenTCP(listen, group: group,
                                                      serverSetup: { sockets.setTransparent($0, ipv6: ipv6) },
                                                      accept: { [self] child in self.accept(child) })
            tcpServer = server
            logger.info("tcp server started at \(server.localAddress.flatMap(Destination.init) ?? listen.destination)")
        }
        if networks.contains(.udp) {
            let loop = group.next()
            let table = TProxyUDPTable(eventLoop: loop, sockets: sockets, routingMark: listen.routingMark,
                                       logger: logger) { [self] flow in self.acceptPacket(flow) }
            let listener = try sockets.listenUDP(at: SocketAddress(ip: listen.address, port: listen.port),
                                                 routingMark: listen.routingMark) { batch in
                // One loop hop per batch: waking the loop per datagram cost more than the datagram.
                loop.execute {
                    for datagram in batch { table.receive(datagram.payload, from: datagram.source, destination: datagram.destination) }
                }
            }
            udpTable = table
            udpListener = listener
            logger.info("udp server started at \(Destination(listener.localAddress) ?? listen.destination)")
        }
    }

    private func accept(_ child: any Channel) {
        // With IP_TRANSPARENT the accepted socket's local address is the one the client dialled.
        guard let source = child.remoteAddress.flatMap(Destination.init).map(Self.unmapped),
              let destination = child.localAddress.flatMap(Destination.init).map(Self.unmapped) else {
            child.close(promise: nil)
            return
        }
        var metadata = FlowMetadata(inbound: tag, inboundType: type, network: .tcp, source: source, destination: destination)
        if let listenOptions { metadata.applyListenOptions(listenOptions) }
        logger.info("inbound connection from \(source)", flow: metadata.flowID)
        logger.info("inbound connection to \(destination)", flow: metadata.flowID)
        router.handleTCP(child, metadata: metadata, responder: nil)
    }

    private func acceptPacket(_ flow: TProxyPacketConnection) {
        var metadata = FlowMetadata(inbound: tag, inboundType: type, network: .udp, source: flow.source,
                                    destination: flow.destination)
        if let listenOptions { metadata.applyListenOptions(listenOptions) }
        logger.info("inbound packet connection from \(flow.source)", flow: metadata.flowID)
        logger.info("inbound packet connection to \(flow.destination)", flow: metadata.flowID)
        router.handleUDP(flow, metadata: metadata)
    }

    package func close() async throws {
        if let server = tcpServer { try? await server.close() }
        // Stop the reader first so nothing new reaches the table, then close the flows on their loop.
        udpListener?.close()
        if let table = udpTable { try? await table.eventLoop.submit { table.closeAll() }.get() }
        tcpServer = nil
        udpListener = nil
        udpTable = nil
    }

    static func unmapped(_ destination: Destination) -> Destination {
        var out = destination
        if let ip = destination.ip { out.host = .ip(ip.unmapped) }
        return out
    }
}
