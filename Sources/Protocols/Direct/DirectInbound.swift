// DirectInbound: accepts plain TCP and UDP and routes it to a fixed destination.
package import Adapter
package import NIOCore
package import Net
import NIOPosix
package import Config

/// The `direct` inbound. Each TCP connection becomes one flow whose destination is the override
/// (`override_address` / `override_port`) applied to the listener's own address; UDP datagrams
/// are grouped per client address through a `UDPNATTable`.
package final class DirectInbound: Inbound, @unchecked Sendable {
    package let type = "direct"
    package let tag: String
    package let listen: ListenParameters
    package let networks: Set<NetworkKind>
    package let override: DestinationOverride
    /// The config's listen fields, for the legacy per-flow ones (`sniff`, `domain_strategy`, …).
    package let listenOptions: ListenOptions?
    let group: any EventLoopGroup
    let router: any FlowHandler
    let logger: ContextLogger
    // Set in start, read in close; both run on the box's control task.
    private var tcpServer: (any Channel)?
    private var udpServer: (any Channel)?
    private var natTable: UDPNATTable?

    package init(tag: String, listen: ListenParameters, networks: Set<NetworkKind>, override: DestinationOverride,
                 listenOptions: ListenOptions? = nil, group: any EventLoopGroup, router: any FlowHandler, logger: ContextLogger) {
        self.listenOptions = listenOptions
        self.tag = tag
        self.listen = listen
        self.networks = networks.isEmpty ? [.tcp, .udp] : networks
        self.override = override
        self.group = group
        self.router = router
        self.logger = logger.named("inbound/direct[\(tag)]")
    }

    /// The listen `detour`: Go's direct inbound hands its connections to that inbound.
    var detour: String? { listenOptions?.detour.flatMap { $0.isEmpty ? nil : $0 } }

    /// The bound TCP address (tests bind port 0).
    package var tcpLocalAddress: SocketAddress? { tcpServer?.localAddress }
    /// The bound UDP address.
    package var udpLocalAddress: SocketAddress? { udpServer?.localAddress }

    package func start(_ stage: StartStage) async throws {
        guard stage == .start else { return }
        if networks.contains(.tcp) {
            let server = try await Listener.listenTCP(listen, group: group, accept: { [self] child in self.accept(child) })
            tcpServer = server
            logger.info("tcp server started at \(Destination(server.localAddress!) ?? listen.destination)")
        }
        if networks.contains(.udp) {
            let handler = DirectUDPHandler()
            let server = try await Listener.listenUDP(listen, group: group) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Batched reads: recvmmsg of up to `vectorReadCount` datagrams per call (NIO cuts its
                    // receive buffer into one 64 KiB slot per datagram, so none is truncated).
                    try channel.syncOptions?.setOption(ChannelOptions.recvAllocator,
                                                       value: FixedSizeRecvByteBufferAllocator(capacity: Self.vectorReadCount * 65_536))
                    try channel.syncOptions?.setOption(ChannelOptions.datagramVectorReadMessageCount, value: Self.vectorReadCount)
                    // A client with hundreds of queries in flight (dnsperf -q 500) overflows the default
                    // 208 KiB while the loop is busy elsewhere: the kernel drops them (UdpRcvbufErrors).
                    // Capped by net.core.rmem_max; failing to raise it is not an error.
                    _ = try? channel.syncOptions?.setOption(ChannelOptions.socketOption(.so_rcvbuf), value: Self.receiveBufferSize)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            let table = UDPNATTable(listener: server) { [self] flow in self.acceptPacket(flow) }
            let local = Destination(server.localAddress!) ?? listen.destination
            try await server.eventLoop.submit {
                handler.table = table
                handler.destination = self.override.apply(to: local)
            }.get()
            udpServer = server
            natTable = table
            logger.info("udp server started at \(local)")
        }
    }

    private func accept(_ child: any Channel) {
        guard let source = child.remoteAddress.flatMap(Destination.init),
              let local = child.localAddress.flatMap(Destination.init) else {
            child.close(promise: nil)
            return
        }
        let destination = override.apply(to: local)
        var metadata = FlowMetadata(inbound: tag, inboundType: type, network: .tcp,
                                    source: Self.unmapped(source), destination: destination)
        if !override.isEmpty { metadata.originalDestination = local }
        if let listenOptions { metadata.applyListenOptions(listenOptions) }
        logger.info("inbound connection from \(metadata.source!)", flow: metadata.flowID)
        logger.info("inbound connection to \(destination)", flow: metadata.flowID)
        // The child was accepted with autoRead off: nothing is read before the relay exists.
        router.handleTCP(child, metadata: metadata, responder: nil)
    }

    private func acceptPacket(_ flow: NATPacketConnection) {
        guard let handler = try? udpServer?.pipeline.syncOperations.handler(type: DirectUDPHandler.self),
              let destination = handler.destination else { return }
        var metadata = FlowMetadata(inbound: tag, inboundType: type, network: .udp, source: flow.source, destination: destination)
        if let listenOptions { metadata.applyListenOptions(listenOptions) }
        metadata.inboundDetour = detour
        logger.info("inbound packet connection from \(flow.source)", flow: metadata.flowID)
        logger.info("inbound packet connection to \(destination)", flow: metadata.flowID)
        router.handleUDP(flow, metadata: metadata)
    }

    package func close() async throws {
        if let server = tcpServer { try? await server.close() }
        if let server = udpServer {
            let table = natTable
            try? await server.eventLoop.submit { table?.closeAll() }.get()
            try? await server.close()
        }
        tcpServer = nil
        udpServer = nil
        natTable = nil
    }

    /// Datagrams per recvmmsg on the UDP socket: a 1 MiB receive buffer, reused while no datagram
    /// of the previous batch is still held.
    static let vectorReadCount = 16
    /// SO_RCVBUF of the UDP socket.
    static let receiveBufferSize = 4 << 20

    static func unmapped(_ destination: Destination) -> Destination {
        var out = destination
        if let ip = destination.ip { out.host = .ip(ip.unmapped) }
        return out
    }
}

/// Feeds the inbound's UDP socket into its NAT table; loop-confined.
final class DirectUDPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    var table: UDPNATTable?
    var destination: Destination?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let table, let destination else { return }
        table.receive(envelope.data, from: envelope.remoteAddress, destination: destination)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors from earlier replies surface here; the socket keeps serving.
    }
}
