// DatagramPacketConnection: an unconnected kernel UDP socket as a `PacketConnection`.
//
// One socket, dual-stack (`[::]:0`, IPv4 destinations sent as mapped addresses) unless a bind
// address pins the family. Domain destinations are resolved once per name and cached; datagrams
// for a name still resolving wait in a small bounded queue.
package import Adapter
package import NIOCore
import NIOPosix

/// A kernel UDP socket carrying datagrams to and from any destination, on one loop.
package final class DatagramPacketConnection: PacketConnection, @unchecked Sendable {
    package let channel: any Channel
    package var eventLoop: any EventLoop { channel.eventLoop }
    package var closeFuture: EventLoopFuture<Void> { channel.closeFuture }
    /// True when the socket is AF_INET6 (IPv4 destinations must be mapped).
    let isIPv6Socket: Bool
    let resolver: any DNSResolver
    let strategy: DomainStrategy
    let resolverServer: String?
    // Loop-confined state.
    var receiver: (any PacketReceiver)?
    var resolved: [String: IPAddress] = [:]
    var resolving: [String: [(ByteBuffer, UInt16)]] = [:]
    var lastDestination: (ip: IPAddress, port: UInt16, address: SocketAddress)?
    static let maxQueuedPerDomain = 16

    init(channel: any Channel, isIPv6Socket: Bool, parameters: DialParameters, resolver: any DNSResolver) {
        self.channel = channel
        self.isIPv6Socket = isIPv6Socket
        self.resolver = resolver
        self.strategy = parameters.domainStrategy
        self.resolverServer = parameters.resolverServer
    }

    /// Opens and binds a UDP socket with the dial fields applied.
    package static func open(on loop: any EventLoop, parameters: DialParameters,
                             resolver: any DNSResolver) -> EventLoopFuture<DatagramPacketConnection> {
        let bindAddress: SocketAddress
        let isIPv6: Bool
        if let v6 = parameters.inet6BindAddress {
            bindAddress = SocketAddress(ip: v6, port: 0); isIPv6 = true
        } else if let v4 = parameters.inet4BindAddress {
            bindAddress = SocketAddress(ip: v4, port: 0); isIPv6 = false
        } else {
            bindAddress = SocketAddress(ip: .v6(IPv6Bits(high: 0, low: 0)), port: 0); isIPv6 = true
        }
        let handler = DatagramReadHandler()
        @Sendable func bind(_ address: SocketAddress) -> EventLoopFuture<any Channel> {
            var bootstrap = DatagramBootstrap(group: loop)
                .channelOption(ChannelOptions.autoRead, value: false)
                .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            if let mark = parameters.routingMark {
                bootstrap = bootstrap.channelOption(SocketLevelOption.mark, value: Int(Int32(bitPattern: mark)))
            }
            let device = parameters.bindInterface
            bootstrap = bootstrap.channelInitializer { channel in
                let added = channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
                guard let device else { return added }
                return added.flatMap { SocketLevelOption.bindToDevice(channel, device) }
            }
            return bootstrap.bind(to: address)
        }
        let bound = bind(bindAddress).flatMapError { error -> EventLoopFuture<any Channel> in
            // No IPv6 on this host: fall back to an IPv4 socket.
            guard isIPv6, parameters.inet6BindAddress == nil else { return loop.makeFailedFuture(error) }
            return bind(SocketAddress(ip: .v4(0), port: 0))
        }
        return bound.map { channel in
            let ipv6 = channel.localAddress?.protocol == .inet6
            let connection = DatagramPacketConnection(channel: channel, isIPv6Socket: ipv6, parameters: parameters, resolver: resolver)
            handler.connection = connection
            return connection
        }
    }

    package func setReceiver(_ receiver: any PacketReceiver) {
        eventLoop.preconditionInEventLoop()
        self.receiver = receiver
        _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        channel.read()
        channel.closeFuture.whenComplete { [self] _ in
            let receiver = self.receiver
            self.receiver = nil
            receiver?.packetConnectionClosed()
        }
    }

    package func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        switch destination.host {
        case .ip(let ip):
            send(payload, ip: ip, port: destination.port)
        case .domain(let domain):
            if let ip = resolved[domain] {
                send(payload, ip: ip, port: destination.port)
                return
            }
            if resolving[domain] != nil {
                if resolving[domain]!.count < Self.maxQueuedPerDomain { resolving[domain]!.append((payload, destination.port)) }
                return
            }
            resolving[domain] = [(payload, destination.port)]
            let resolver = self.resolver
            let options = DNSLookupOptions(server: resolverServer, strategy: strategy)
            let promise = eventLoop.makePromise(of: [IPAddress].self)
            promise.completeWithTask { try await resolver.lookup(domain, options: options) }
            promise.futureResult.whenComplete { [self] result in
                let queued = resolving.removeValue(forKey: domain) ?? []
                guard case .success(let addresses) = result, let first = strategy.apply(addresses).first ?? addresses.first else { return }
                resolved[domain] = first
                for (payload, port) in queued { send(payload, ip: first, port: port) }
                flush()
            }
        }
    }

    private func send(_ payload: ByteBuffer, ip: IPAddress, port: UInt16) {
        let address: SocketAddress
        if let last = lastDestination, last.ip == ip, last.port == port {
            address = last.address
        } else {
            var target = ip
            if isIPv6Socket, case .v4(let v) = ip { target = .v6(IPv6Bits(mapping: v)) }
            guard isIPv6Socket || target.isIPv4 else { return }  // IPv6 destination on an IPv4-only socket
            address = SocketAddress(ip: target, port: port)
            lastDestination = (ip, port, address)
        }
        channel.write(AddressedEnvelope(remoteAddress: address, data: payload), promise: nil)
    }

    package func flush() { channel.flush() }

    package func close() { channel.close(promise: nil) }

    fileprivate func received(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard let receiver, let source = Destination(envelope.remoteAddress) else { return }
        var unmappedSource = source
        if case .ip(let ip) = source.host { unmappedSource.host = .ip(ip.unmapped) }
        receiver.packetReceived(envelope.data, from: unmappedSource)
    }
}

/// Delivers datagrams from the socket to its `DatagramPacketConnection`.
final class DatagramReadHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    weak var connection: DatagramPacketConnection?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection?.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable and friends surface as read errors on UDP; they do not end the flow.
    }
}
