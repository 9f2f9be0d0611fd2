package import Adapter
package import Config
package import NIOCore
import Net
import Netstack
package import NetstackNIO
import NetstackWire
#if canImport(Glibc)
import Glibc
#endif

/// sing-box 1.12's `wireguard` endpoint on our netstack (Go: protocol/wireguard/endpoint.go over
/// transport/wireguard with gvisor).
///
/// It is an outbound: `dialTCP`/`listenPacket` open flows in the netstack shard of the caller's loop, whose
/// packets are sealed to the peer that `allowed_ips` chooses. It is an inbound: a TCP or UDP flow a peer
/// opens to any address enters `router` with inbound type `wireguard` and the endpoint's tag; a flow to one
/// of the endpoint's own `address` prefixes has its destination rewritten to loopback (the original kept as
/// `originalDestination`), as Go does. ICMP echo to the endpoint's addresses is answered by the stack.
///
/// The deprecated `wireguard` outbound builds the same thing with `routesIncoming` off (Go passes no handler,
/// so flows from peers are refused).
///
/// Lifecycle: `start(.start)` opens the UDP socket (bound to `listen_port`, or from the dialer, so dial fields
/// and `detour` apply) and starts the stacks; `start(.postStart)` resolves peer domains (Go:
/// `resolve endpoint domain for peer[N]`) and sends the first handshake to peers with a persistent keepalive.
/// `system: true` (Go's systemDevice): no netstack; a kernel TUN named `name` (default `wgN`, as Go) from the
/// box's `WireGuardSystemPlatform` carries the endpoint's addresses and MTU, the device reads and writes it, flows
/// from peers are the kernel's, and outbound flows are kernel sockets bound to that interface. Without a platform
/// (a box built without Appliance) it is refused at build time. `workers` sizes wireguard-go's crypto goroutines
/// and has nothing to do here (the data path runs on the box's loops: the device on one, a stack on each).
package final class WireGuardNetstackEndpoint: Adapter.Endpoint, @unchecked Sendable {
    /// `wireguard`.
    package let type = "wireguard"
    /// The config tag; flows from peers carry it as their inbound.
    package let tag: String
    /// TCP and UDP, as Go's endpoint.
    package let networks: Set<NetworkKind> = [.tcp, .udp]
    /// The `detour` outbound the UDP socket goes through, if any (started first).
    package let dependencies: [String]
    /// The data plane (device, transport, shards).
    package let tunnel: WireGuardTunnel
    /// One driver per loop of the group, in `tunnel.shards` order.
    package private(set) var drivers: [NetstackDriver] = []
    private let localPrefixes: [IPPrefix]
    private let unresolved: [(peer: Int, host: String, port: UInt16)]
    private let listenPort: UInt16
    private let dialOptions: DialerOptions
    private let context: AdapterContext
    private let logger: ContextLogger
    private let routesIncoming: Bool
    // Set in start, read in close; both on the box's control task.
    private var transportChannel: (any Channel)?
    private var transportConnection: (any PacketConnection)?
    /// System mode: the interface to open at start, and the one shard that joins it to the tunnel.
    private let system: SystemInterface?
    // Set in start, read in close (control task).
    private var systemDevice: (any PacketDevice & Sendable)?

    /// What a system-mode endpoint opens at start.
    private struct SystemInterface {
        var platform: any WireGuardSystemPlatform
        var name: String
        var mtu: UInt32
        var addresses: [NetworkPrefix]
        var shard: WireGuardShardDevice
    }

    /// Builds the device, peers and one netstack per loop of `context.group`. Throws sing-box's messages
    /// (`decode private key: …`, `missing allowed ips for peer 0`, `` `listen_port` is conflict with `detour` ``).
    package init(tag: String, options: WireGuardEndpointOptions, context: AdapterContext, routesIncoming: Bool = true,
                 systemPlatform: (any WireGuardSystemPlatform)? = nil) throws {
        if options.system && systemPlatform == nil {
            throw AdapterError(.notImplemented, "system: kernel TUN interface for wireguard is not implemented here, use the netstack (system: false)")
        }
        if !(options.dial.detour ?? "").isEmpty && (options.listenPort ?? 0) != 0 {
            throw AdapterError(.other, "`listen_port` is conflict with `detour`")
        }
        if options.privateKey.isEmpty { throw AdapterError(.other, "missing private key") }
        self.tag = tag
        self.context = context
        self.routesIncoming = routesIncoming
        listenPort = options.listenPort ?? 0
        dialOptions = options.dial
        dependencies = (options.dial.detour ?? "").isEmpty ? [] : [options.dial.detour!]
        logger = context.logger("endpoint/wireguard[\(tag)]")

        let peers = options.peers.map { peer in
            WireGuardSettings.Peer(address: peer.address ?? "", port: peer.port ?? 0, publicKey: peer.publicKey ?? "",
                                   preSharedKey: peer.preSharedKey ?? "", allowedIPs: peer.allowedIPs.map(\.description),
                                   persistentKeepaliveInterval: peer.persistentKeepaliveInterval ?? 0,
                                   reserved: peer.reserved.bytes)
        }
        let settings: WireGuardSettings.Result
        do {
            settings = try WireGuardSettings.build(privateKey: options.privateKey, mtu: options.mtu ?? 0, peers: peers,
                                                   unixTimeAtZero: Self.unixTimeAtZero())
        } catch {
            throw AdapterError(.other, error.description)
        }
        unresolved = settings.unresolved
        let device = WireGuardDevice(configuration: settings.device)
        for peer in settings.peers { device.addPeer(peer) }

        var prefixes: [IPPrefix] = []
        var interfaceAddresses: [NetworkPrefix] = []
        var stack = StackConfiguration()
        for option in options.address {
            guard let ip = Adapter.IPAddress(option.address.text), let prefix = IPPrefix(ip, bits: option.bits) else {
                throw AdapterError(.other, "invalid address: \(option)")
            }
            prefixes.append(prefix)
            if let address = ip.networkPrefix(bits: option.bits) { interfaceAddresses.append(address) }
            switch ip.netstackAddress {
            case .v4(let v4): stack.ipv4Addresses.append(v4)
            case .v6(let v6): stack.ipv6Addresses.append(v6)
            }
        }
        localPrefixes = prefixes
        // gvisor in Go's endpoint terminates flows to any destination (the peer may route anything to us).
        stack.transparent = true
        stack.mtu = settings.device.mtu
        if let timeout = options.udpTimeout, timeout.nanoseconds > 0 {
            stack.udpIdleTimeout = .nanoseconds(timeout.nanoseconds)
        }

        let loops = Array(context.group.makeIterator())
        let tunnelLoop = loops.first ?? context.group.next()
        if options.system, let systemPlatform {
            tunnel = WireGuardTunnel(device: device, loop: tunnelLoop, shardCount: 1, ephemeralPorts: stack.ephemeralPorts)
            let shard = WireGuardShardDevice(index: 0, loop: tunnelLoop, tunnel: tunnel)
            tunnel.attach([shard])
            let name = (options.name ?? "").isEmpty ? defaultWireGuardInterfaceName() : options.name!
            // The kernel would silently cut a longer name (IFNAMSIZ is 16 with the NUL).
            if name.utf8.count > 15 || name.contains("/") || name.contains(" ") {
                throw AdapterError(.other, "invalid interface name: \(name) (at most 15 bytes, no '/' or space)")
            }
            system = SystemInterface(platform: systemPlatform, name: name, mtu: UInt32(clamping: settings.device.mtu),
                                     addresses: interfaceAddresses, shard: shard)
            return
        }
        system = nil
        tunnel = WireGuardTunnel(device: device, loop: tunnelLoop, shardCount: max(1, loops.count),
                                 ephemeralPorts: stack.ephemeralPorts)
        var shards: [WireGuardShardDevice] = []
        for (index, loop) in (loops.isEmpty ? [tunnelLoop] : loops).enumerated() {
            var configuration = stack
            configuration.ephemeralPorts = tunnel.ephemeralPorts(ofShard: index)
            let shard = WireGuardShardDevice(index: index, loop: loop, tunnel: tunnel)
            shards.append(shard)
            drivers.append(NetstackDriver(stack: Stack(configuration: configuration, seed: .random(in: 1 ... .max)),
                                          device: shard, eventLoop: loop))
        }
        tunnel.attach(shards)
    }

    /// Wall time minus the monotonic clock, for TAI64N timestamps.
    static func unixTimeAtZero() -> Duration {
        var realtime = timespec()
        clock_gettime(CLOCK_REALTIME, &realtime)
        let wall = Duration.seconds(realtime.tv_sec) + .nanoseconds(realtime.tv_nsec)
        return wall - .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds))
    }

    // MARK: Lifecycle

    /// `.start`: the UDP socket and the stacks; `.postStart`: peer domains and the first keepalive handshakes.
    package func start(_ stage: StartStage) async throws {
        switch stage {
        case .start:
            try await openTransport()
            if let system {
                try await startSystemInterface(system)
                return
            }
            for driver in drivers {
                try await driver.eventLoop.submit { [self] in
                    if routesIncoming {
                        driver.onIncoming = { [weak self, unowned driver] flow in self?.incoming(flow, driver: driver) }
                    }
                    driver.start()
                }.get()
            }
        case .postStart:
            for entry in unresolved {
                let addresses: [Adapter.IPAddress]
                do {
                    addresses = try await context.resolver.lookup(entry.host, options: DNSLookupOptions())
                } catch {
                    throw AdapterError(.other, "resolve endpoint domain for peer[\(entry.peer)]: \(entry.host):\(entry.port): \(error)")
                }
                guard let first = addresses.first else { continue }
                let endpoint = WireGuardEndpoint(first, port: entry.port)
                try await tunnel.loop.submit { [tunnel] in tunnel.device.setEndpoint(endpoint, peer: entry.peer) }.get()
            }
            try await tunnel.loop.submit { [tunnel] in tunnel.startKeepalives() }.get()
        default:
            break
        }
    }

    /// Opens the UDP socket: bound to `listen_port` (dual-stack), or an ephemeral one from the dialer.
    private func openTransport() async throws {
        let tunnel = self.tunnel
        if listenPort != 0 {
            let parameters = DialParameters(options: dialOptions)
            let listen = ListenParameters(address: .v6(IPv6Bits(high: 0, low: 0)), port: listenPort,
                                          bindInterface: parameters.bindInterface, routingMark: parameters.routingMark)
            let channel = try await Listener.listenUDP(listen, group: tunnel.loop) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(WireGuardDatagramHandler(tunnel: tunnel))
                }
            }
            transportChannel = channel
            try await Self.tuneSocket(channel)
            try await tunnel.loop.submit { tunnel.transport = .channel(channel) }.get()
            logger.info("udp server started at \(Destination(channel.localAddress!).map(String.init(describing:)) ?? "")")
        } else {
            let dialer = try context.dialerFactory.makeDialer(dialOptions)
            let connection = try await dialer.listenPacket(on: tunnel.loop)
            transportConnection = connection
            if let kernel = connection as? DatagramPacketConnection { try await Self.tuneSocket(kernel.channel) }
            try await tunnel.loop.submit {
                tunnel.transport = .connection(connection)
                connection.setReceiver(WireGuardTransportReceiver(tunnel: tunnel))
            }.get()
        }
    }

    /// Batches on the UDP socket: recvmmsg of up to 64 datagrams per read into one 128 KiB buffer (NIO splits
    /// it per message), several reads per wake-up, and socket buffers as large as wireguard-go asks for (7 MiB),
    /// so a burst of sealed datagrams is not dropped by the kernel while the loop is busy.
    private static func tuneSocket(_ channel: any Channel) async throws {
        try await channel.setOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 64 * 2048))
        try await channel.setOption(ChannelOptions.datagramVectorReadMessageCount, value: 64)
        try await channel.setOption(ChannelOptions.maxMessagesPerRead, value: 8)
        _ = try? await channel.setOption(ChannelOptions.socketOption(.so_rcvbuf), value: 7 << 20)
        _ = try? await channel.setOption(ChannelOptions.socketOption(.so_sndbuf), value: 7 << 20)
    }

    /// System mode: opens the TUN and joins it to the tunnel on the tunnel loop (kernel → TUN → seal → peer;
    /// peer → open → TUN → kernel). Go logs `started at <name>`.
    private func startSystemInterface(_ system: SystemInterface) async throws {
        let device = try system.platform.openInterface(name: system.name, mtu: system.mtu, addresses: system.addresses)
        systemDevice = device
        let shard = system.shard, loop = tunnel.loop
        try await loop.submit {
            shard.start(on: loop) { batch in device.write(&batch) }
            device.start(on: loop) { batch in shard.write(&batch) }
        }.get()
        logger.info("started at \(system.name)")
    }

    /// Resets the stacks' flows (or stops the TUN), stops the timers and closes the UDP socket.
    package func close() async throws {
        if let device = systemDevice, let shard = system?.shard {
            try? await tunnel.loop.submit { device.stop(); shard.stop() }.get()
        }
        for driver in drivers {
            try? await driver.eventLoop.submit { driver.onIncoming = nil; driver.stop() }.get()
        }
        try? await tunnel.loop.submit { [tunnel] in tunnel.stop() }.get()
        if let connection = transportConnection {
            try? await connection.eventLoop.submit { connection.close() }.get()
        }
        try? await transportChannel?.close()
    }

    // MARK: Outbound

    /// A TCP flow from the stack on `eventLoop` (a domain is looked up first, its addresses tried in turn, as Go's
    /// `N.DialSerial`); the channel has autoRead off and holds data in the stack until read.
    package func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        logger.info("outbound connection to \(metadata.destination)", flow: metadata.flowID)
        if let system {
            return try await systemDialer(system).dialTCP(to: metadata.destination, on: eventLoop)
        }
        let driver = try driver(for: eventLoop)
        var lastError: (any Error)?
        for ip in try await addresses(of: metadata.destination) {
            let remote = Netstack.Endpoint(ip.netstackAddress, metadata.destination.port)
            do {
                return try await eventLoop.flatSubmit {
                    driver.connectTCP(to: remote) { channel in
                        channel.setOption(ChannelOptions.autoRead, value: false)
                    }
                }.get()
            } catch {
                lastError = Self.describe(error)
            }
        }
        throw lastError ?? AdapterError(.other, "invalid destination: \(metadata.destination)")
    }

    /// A UDP packet path from the stack on `eventLoop` (one local port per family, a flow per destination).
    package func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        logger.info("outbound packet connection to \(metadata.destination)", flow: metadata.flowID)
        if let system {
            return try await systemDialer(system).listenPacket(on: eventLoop)
        }
        let driver = try driver(for: eventLoop)
        let resolver = context.resolver
        return try await eventLoop.submit { NetstackPacketConnection(driver: driver, resolver: resolver) }.get()
    }

    /// System mode: a kernel dialer bound to the interface and nothing else (Go's `CreateDialer(name)`; the
    /// endpoint's own dial fields apply to its UDP socket only).
    private func systemDialer(_ system: SystemInterface) throws -> any Dialer {
        var options = DialerOptions()
        options.bindInterface = system.name
        return try context.dialerFactory.makeDialer(options)
    }

    /// The driver whose stack runs on `eventLoop` (the router's flow loop).
    private func driver(for eventLoop: any EventLoop) throws -> NetstackDriver {
        guard let driver = drivers.first(where: { $0.eventLoop === eventLoop }) else {
            throw AdapterError(.other, "\(logName): event loop outside the endpoint's group")
        }
        return driver
    }

    /// A domain is looked up through the DNS router (Go's `dnsRouter.Lookup`); an IP is used as is.
    private func addresses(of destination: Destination) async throws -> [Adapter.IPAddress] {
        switch destination.host {
        case .ip(let ip): return [ip]
        case .domain(let domain): return try await context.resolver.lookup(domain, options: DNSLookupOptions())
        }
    }

    private static func describe(_ error: any Error) -> any Error {
        guard let error = error as? NetstackChannelError else { return error }
        switch error {
        case .connectionReset: return AdapterError(.other, "connection refused")
        case .timedOut: return AdapterError(.other, "i/o timeout")
        case .unreachable: return AdapterError(.other, "no route to host")
        case .flow(.noLocalAddress): return AdapterError(.other, "no local address for this family")
        case .flow(let reason): return AdapterError(.other, "netstack: \(reason)")
        }
    }

    // MARK: Inbound

    /// A flow a peer opened: routed like an inbound's (Go's `NewConnectionEx` / `NewPacketConnectionEx`).
    private func incoming(_ flow: NetstackIncomingFlow, driver: NetstackDriver) {
        let source = Destination(ip: flow.key.remote.address.adapterAddress, port: flow.key.remote.port)
        let target = Destination(ip: flow.key.local.address.adapterAddress, port: flow.key.local.port)
        var metadata = FlowMetadata(inbound: tag, inboundType: type, network: flow.key.proto == .tcp ? .tcp : .udp,
                                    source: source, destination: target)
        // Go: a connection to the endpoint's own address goes to loopback, the original kept.
        let localIP = flow.key.local.address.adapterAddress
        if localPrefixes.contains(where: { $0.contains(localIP) }) {
            metadata.originalDestination = target
            metadata.destination = Destination(ip: localIP.isIPv4 ? .v4(0x7f00_0001) : .v6(IPv6Bits(high: 0, low: 1)),
                                               port: target.port)
        }
        let router = context.router
        if flow.key.proto == .tcp {
            logger.info("inbound connection from \(source)", flow: metadata.flowID)
            logger.info("inbound connection to \(metadata.destination)", flow: metadata.flowID)
            driver.accept(flow) { channel in
                channel.setOption(ChannelOptions.autoRead, value: false)
            }.whenSuccess { channel in
                router.handleTCP(channel, metadata: metadata, responder: nil)
            }
        } else {
            logger.info("inbound packet connection from \(source)", flow: metadata.flowID)
            logger.info("inbound packet connection to \(target)", flow: metadata.flowID)
            let connection = NetstackFlowPacketConnection(eventLoop: driver.eventLoop, destination: flow.key.local)
            driver.accept(flow) { channel in
                channel.eventLoop.makeCompletedFuture { try connection.attach(channel) }
            }.whenSuccess { _ in
                router.handleUDP(connection, metadata: metadata)
            }
        }
    }
}

/// Datagrams from the `listen_port` socket into the tunnel (on the tunnel loop).
final class WireGuardDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let tunnel: WireGuardTunnel

    init(tunnel: WireGuardTunnel) { self.tunnel = tunnel }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard var source = WireGuardEndpoint(envelope.remoteAddress) else { return }
        // The socket is dual-stack: an IPv4 peer arrives as ::ffff:a.b.c.d; wireguard-go's endpoint is IPv4.
        if source.isIPv6 {
            let mapped: (UInt8, UInt8, UInt8, UInt8)? = withUnsafeBytes(of: source.address) { raw in
                guard (0..<10).allSatisfy({ raw[$0] == 0 }), raw[10] == 0xff, raw[11] == 0xff else { return nil }
                return (raw[12], raw[13], raw[14], raw[15])
            }
            if let mapped { source = WireGuardEndpoint(ipv4: mapped, port: source.port) }
        }
        tunnel.receiveDatagram(envelope.data, from: source)
    }
}

/// Datagrams from the dialer's packet connection into the tunnel (on the tunnel loop).
final class WireGuardTransportReceiver: PacketReceiver {
    private let tunnel: WireGuardTunnel

    init(tunnel: WireGuardTunnel) { self.tunnel = tunnel }

    func packetReceived(_ payload: ByteBuffer, from source: Destination) {
        guard let ip = source.ip else { return }
        tunnel.receiveDatagram(payload, from: WireGuardEndpoint(ip, port: source.port))
    }

    func packetConnectionClosed() {}
}

extension Adapter.IPAddress {
    /// The address with a prefix length, unmasked (an interface address), as the host seam's value.
    func networkPrefix(bits: Int) -> NetworkPrefix? {
        switch self {
        case .v4(let value):
            return NetworkPrefix(bytes: withUnsafeBytes(of: value.bigEndian, Array.init), length: bits)
        case .v6(let value):
            return NetworkPrefix(bytes: withUnsafeBytes(of: value.high.bigEndian, Array.init)
                                     + withUnsafeBytes(of: value.low.bigEndian, Array.init), length: bits)
        }
    }
}
