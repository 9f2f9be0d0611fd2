// The `shadowsocks` inbound (single user): TCP connections run `ShadowsocksServerHandler` on a
// `ProxyListener`; UDP datagrams on one socket are opened by `ShadowsocksUDPServerHandler`, grouped
// into flows (per client address, or per SIP022 client session) and routed like the direct
// inbound's NAT flows.
package import Adapter
package import Config
package import NIOCore
package import Net
import Transport

/// sing-box's `shadowsocks` inbound: single-user with `password` (sing-shadowsocks `Service`) or
/// multi-user with `users` (`MultiService`: SIP022 identity headers, or legacy keys tried in turn).
package final class ShadowsocksInbound: ProxyListenerInbound, @unchecked Sendable {
    package let type = "shadowsocks"
    package let tag: String
    /// The TCP listener (connections in their handshake are tracked there).
    package let listener: ProxyListener
    /// `network`: tcp, udp or both.
    package let networks: Set<NetworkKind>
    private let parameters: ListenParameters
    private let context: ShadowsocksServerContext
    private let group: any EventLoopGroup
    private let router: any FlowHandler
    private let logger: ContextLogger
    // Set in start, read in close; both on the box's control task.
    private var udpServer: (any Channel)?

    /// Throws Go's errors for a bad method or key; `destinations` and `managed` are not in this
    /// build (a clear `not implemented`), nor multiplex `brutal`.
    package init(tag: String, options: ShadowsocksInboundOptions, router: any FlowHandler, logger: ContextLogger,
                 group: any EventLoopGroup, clock: @escaping ShadowsocksClock = shadowsocksSystemClock) throws {
        if !options.users.isEmpty && !options.destinations.isEmpty {
            throw AdapterError(.other, "users and destinations options must not be combined")
        }
        if options.managed && (!options.users.isEmpty || !options.destinations.isEmpty) {
            throw AdapterError(.other, "users and destinations options are not supported in managed servers")
        }
        if options.managed { throw AdapterError.notImplemented("managed shadowsocks inbound (ssm-api)") }
        if !options.destinations.isEmpty { throw AdapterError.notImplemented("shadowsocks relay (destinations)") }
        self.tag = tag
        let multiUser = !options.users.isEmpty
        let method = try ShadowsocksMethod.server(name: options.method, password: options.password ?? "", multiUser: multiUser)
        let users = multiUser ? try ShadowsocksUserTable(method: method, users: options.users.map { ($0.name, $0.password) }) : nil
        parameters = try ListenParameters(options.listen)
        let names = options.network.effective
        networks = Set(names.compactMap { NetworkKind(rawValue: $0) })
        let saltFilter = method.family == .blake3 ? ShadowsocksSaltFilter(clock: clock) : nil
        let context = ShadowsocksServerContext(tag: tag, method: method, saltFilter: saltFilter, users: users,
                                               listenOptions: options.listen, logger: logger, clock: clock)
        self.context = context
        self.group = group
        self.router = router
        self.logger = logger
        // Go wraps the inbound's router in its UoT router (a stream to the magic names is a UDP
        // flow), and that in its mux router when `multiplex` is enabled.
        let streams = try MuxFlowHandler.wrap(UDPOverTCPFlowHandler(next: router, logger: logger), logger: logger,
                                              options: options.multiplex)
        listener = ProxyListener(parameters: parameters, group: group, logger: logger, flowHandler: streams) { channel, flowID, handoff in
            try channel.pipeline.syncOperations.addHandlers([
                ShadowsocksServerHandler(context: context, flowID: flowID, flowHandler: handoff),
                FlowBufferHandler(),
            ])
        }
    }

    /// The bound UDP address (tests bind port 0).
    package var udpLocalAddress: SocketAddress? { udpServer?.localAddress }

    package func start(_ stage: StartStage) async throws {
        guard stage == .start else { return }
        if networks.contains(.tcp) { try await listener.start() }
        if networks.contains(.udp) {
            let (context, router) = (self.context, self.router)
            let server = try await Listener.listenUDP(parameters, group: group) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ShadowsocksUDPServerHandler(context: context, router: router))
                }
            }
            udpServer = server
            logger.info("udp server started at \(server.localAddress.flatMap { Destination($0) }.map { "\($0)" } ?? "\(parameters.destination)")")
        }
    }

    package func close() async throws {
        await listener.close()
        if let server = udpServer {
            try? await server.eventLoop.submit {
                try? server.pipeline.syncOperations.handler(type: ShadowsocksUDPServerHandler.self).closeAll()
            }.get()
            try? await server.close()
        }
        udpServer = nil
    }
}

/// Opens the datagrams of an inbound's UDP socket and feeds them to per-client flows. Loop-confined.
final class ShadowsocksUDPServerHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    /// Legacy and none group by client address; SIP022 by the client's session id (Go's udpnat key).
    enum FlowKey: Hashable {
        case address(SocketAddress)
        case session(UInt64)
    }

    let context: ShadowsocksServerContext
    let router: any FlowHandler
    private var codec: ShadowsocksPacketCodec?
    private var flows: [FlowKey: ShadowsocksServerPacketConnection] = [:]
    private var clockTick: UInt64 = 0

    init(context: ShadowsocksServerContext, router: any FlowHandler) {
        self.context = context
        self.router = router
    }

    func handlerAdded(context: ChannelHandlerContext) {
        codec = ShadowsocksPacketCodec(method: self.context.method, isServer: true, users: self.context.users, clock: self.context.clock)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let codec, let source = Destination(envelope.remoteAddress) else { return }
        clockTick &+= 1
        do {
            if codec.method.family == .blake3 {
                var packet = envelope.data
                let header = try codec.openHeader(&packet)
                let key = FlowKey.session(header.sessionID)
                let existing = flows[key]
                if let existing, !existing.window.check(header.packetID) { throw ShadowsocksError.packetIDNotUnique }
                let opener = existing?.remoteOpener ?? codec.remoteOpener(sessionID: header.sessionID, psk: header.user?.key)
                let opened = try codec.openBody(packet, header: header, opener: opener)
                let flow = existing ?? newFlow(key: key, context: context, codec: codec, source: source, client: envelope.remoteAddress,
                                               destination: opened.address, clientSessionID: header.sessionID, opener: opener,
                                               user: header.user)
                flow.window.add(header.packetID)
                flow.clientAddress = envelope.remoteAddress
                flow.lastUsed = clockTick
                flow.deliver(opened.payload, from: opened.address)
            } else {
                let opened = try codec.openLegacy(envelope.data)
                let key = FlowKey.address(envelope.remoteAddress)
                let flow = flows[key] ?? newFlow(key: key, context: context, codec: codec, source: source, client: envelope.remoteAddress,
                                                 destination: opened.address, clientSessionID: 0, opener: nil, user: opened.user)
                flow.lastUsed = clockTick
                flow.deliver(opened.payload, from: opened.address)
            }
        } catch {
            // Go: `process packet from <source>: shadowsocks: serve UDP from <source>: <cause>`; the packet is dropped.
            let message = (error as? ShadowsocksError)?.message(for: codec.method) ?? "\(error)"
            self.context.logger.error("process packet from \(source): shadowsocks: serve UDP from \(source): \(message)")
        }
    }

    private func newFlow(key: FlowKey, context: ChannelHandlerContext, codec: ShadowsocksPacketCodec, source: Destination,
                         client: SocketAddress, destination: Destination, clientSessionID: UInt64,
                         opener: ShadowsocksAEAD?, user: ShadowsocksServerUser?) -> ShadowsocksServerPacketConnection {
        UDPFlowLimit.makeRoom(in: flows)
        let flow = ShadowsocksServerPacketConnection(listener: context.channel, key: key, clientAddress: client, codec: codec,
                                                     clientSessionID: clientSessionID, remoteOpener: opener, userKey: user?.key, table: self)
        flows[key] = flow
        var unmapped = source
        if let ip = source.ip { unmapped.host = .ip(ip.unmapped) }
        var metadata = FlowMetadata(inbound: self.context.tag, inboundType: "shadowsocks", network: .udp, source: unmapped, destination: destination)
        if let listen = self.context.listenOptions { metadata.applyListenOptions(listen) }
        metadata.user = user?.name
        let prefix = user.map { "[\($0.name)] " } ?? ""
        self.context.logger.info("\(prefix)inbound packet connection from \(unmapped)", flow: metadata.flowID)
        self.context.logger.info("\(prefix)inbound packet connection to \(destination)", flow: metadata.flowID)
        router.handleUDP(flow, metadata: metadata)
        return flow
    }

    func remove(_ key: FlowKey) { flows[key] = nil }

    func closeAll() {
        for flow in Array(flows.values) { flow.close() }
        flows.removeAll()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors from earlier replies surface here; the socket keeps serving.
    }
}

/// One client's UDP flow on a shadowsocks inbound, for the router. Loop-confined to the socket's loop.
final class ShadowsocksServerPacketConnection: PacketConnection, UDPFlowLimit.Flow, @unchecked Sendable {
    let listener: any Channel
    let key: ShadowsocksUDPServerHandler.FlowKey
    /// Where replies go: the client's latest address.
    var clientAddress: SocketAddress
    let codec: ShadowsocksPacketCodec
    let clientSessionID: UInt64
    let sender: ShadowsocksUDPSender?
    let remoteOpener: ShadowsocksAEAD?
    /// Multi-user: the user's key, for our replies.
    let userKey: [UInt8]?
    var window = ShadowsocksSlidingWindow()
    var lastUsed: UInt64 = 0
    weak var table: ShadowsocksUDPServerHandler?
    private var inbox = PacketInbox(maximumCount: 512, maximumBytes: 256 * 1024)
    private var isClosed = false
    private let closed: EventLoopPromise<Void>
    var eventLoop: any EventLoop { listener.eventLoop }
    var closeFuture: EventLoopFuture<Void> { closed.futureResult }

    init(listener: any Channel, key: ShadowsocksUDPServerHandler.FlowKey, clientAddress: SocketAddress, codec: ShadowsocksPacketCodec,
         clientSessionID: UInt64, remoteOpener: ShadowsocksAEAD?, userKey: [UInt8]?, table: ShadowsocksUDPServerHandler) {
        self.listener = listener
        self.key = key
        self.clientAddress = clientAddress
        self.codec = codec
        self.clientSessionID = clientSessionID
        self.remoteOpener = remoteOpener
        self.userKey = userKey
        self.sender = codec.method.family == .blake3 ? ShadowsocksUDPSender(method: codec.method, psk: userKey ?? codec.method.key) : nil
        self.table = table
        self.closed = listener.eventLoop.makePromise()
    }

    func setReceiver(_ receiver: any PacketReceiver) {
        guard !isClosed else { receiver.packetConnectionClosed(); return }
        inbox.install(receiver)
    }

    func deliver(_ payload: ByteBuffer, from destination: Destination) {
        inbox.deliver(payload, from: destination)
    }

    /// A reply from `destination`: sealed with that address as its origin, sent to the client.
    func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        guard !isClosed else { return }
        let datagram = codec.seal(payload, address: destination, sender: sender, clientSessionID: clientSessionID, legacyKey: userKey)
        listener.write(AddressedEnvelope(remoteAddress: clientAddress, data: datagram), promise: nil)
    }

    func flush() { listener.flush() }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        table?.remove(key)
        inbox.close()?.packetConnectionClosed()
        closed.succeed(())
    }
}
