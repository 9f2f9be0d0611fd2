import Adapter
import NIOCore
import Netstack
import NetstackNIO
import NetstackWire

/// The endpoint's outbound UDP path (`listenPacket`): datagrams to any destination leave the shard's stack
/// from one local port per address family, one netstack UDP flow per destination (the stack keys flows by
/// 5-tuple, so they share the port). Replies come back on those flows.
///
/// Loop-bound: every method runs on the shard's loop (`eventLoop`), as `PacketConnection` requires.
final class NetstackPacketConnection: PacketConnection, @unchecked Sendable {
    let eventLoop: any EventLoop
    private let driver: NetstackDriver
    private let resolver: any DNSResolver
    private var receiver: (any PacketReceiver)?
    private var flows: [Netstack.Endpoint: any Channel] = [:]
    /// The local end of the first flow per family; later flows reuse its port.
    private var localIPv4: Netstack.Endpoint?
    private var localIPv6: Netstack.Endpoint?
    private var resolved: [String: Adapter.IPAddress] = [:]
    private var closed = false
    private let closePromise: EventLoopPromise<Void>

    /// Most destinations one connection keeps flows for (a scan must not pin the stack's flow table).
    static let maximumFlows = 256

    init(driver: NetstackDriver, resolver: any DNSResolver) {
        self.driver = driver
        self.eventLoop = driver.eventLoop
        self.resolver = resolver
        closePromise = driver.eventLoop.makePromise()
    }

    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }

    func setReceiver(_ receiver: any PacketReceiver) {
        eventLoop.preconditionInEventLoop()
        self.receiver = receiver
    }

    func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        eventLoop.preconditionInEventLoop()
        guard !closed else { return }
        switch destination.host {
        case .ip(let ip):
            send(payload, to: Netstack.Endpoint(ip.netstackAddress, destination.port))
        case .domain(let domain):
            if let ip = resolved[domain] {
                send(payload, to: Netstack.Endpoint(ip.netstackAddress, destination.port))
                return
            }
            // Go resolves a domain destination through the DNS router before it writes (`ListenPacket`).
            let resolver = self.resolver
            let promise = eventLoop.makePromise(of: [Adapter.IPAddress].self)
            promise.completeWithTask { try await resolver.lookup(domain, options: DNSLookupOptions()) }
            promise.futureResult.whenSuccess { [self] addresses in
                guard let first = addresses.first else { return }
                if resolved.count >= 64 { resolved.removeAll() }
                resolved[domain] = first
                send(payload, to: Netstack.Endpoint(first.netstackAddress, destination.port))
                flush()
            }
        }
    }

    private func send(_ payload: ByteBuffer, to remote: Netstack.Endpoint) {
        if let channel = flows[remote] {
            channel.write(payload, promise: nil)
            return
        }
        guard flows.count < Self.maximumFlows else { return }
        let local = remote.address.isIPv4 ? localIPv4 : localIPv6
        var opened: (any Channel)?
        _ = driver.openUDP(to: remote, from: local) { [self] channel in
            opened = channel
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NetstackDatagramHandler(source: remote, connection: self))
            }
        }
        // The initializer ran synchronously (we are on the stack's loop); nil means the stack refused.
        guard let channel = opened, channel.isActive else { return }
        flows[remote] = channel
        if local == nil, let key = (channel as? NetstackFlowChannel)?.key {
            if remote.address.isIPv4 { localIPv4 = key.local } else { localIPv6 = key.local }
        }
        channel.closeFuture.whenComplete { [weak self] _ in self?.flows[remote] = nil }
        channel.write(payload, promise: nil)
    }

    func flush() {
        for channel in flows.values { channel.flush() }
    }

    fileprivate func received(_ payload: ByteBuffer, from source: Netstack.Endpoint) {
        receiver?.packetReceived(payload, from: Destination(ip: source.address.adapterAddress, port: source.port))
    }

    func close() {
        eventLoop.preconditionInEventLoop()
        guard !closed else { return }
        closed = true
        for channel in flows.values { channel.close(promise: nil) }
        flows.removeAll()
        let receiver = self.receiver
        self.receiver = nil
        receiver?.packetConnectionClosed()
        closePromise.succeed(())
    }
}

/// One peer-initiated UDP flow (a datagram from a peer the stack did not expect) as the router's
/// `PacketConnection`: datagrams read from the flow are reported as sent to the flow's original
/// destination, and replies leave from it.
final class NetstackFlowPacketConnection: PacketConnection, @unchecked Sendable {
    let eventLoop: any EventLoop
    /// The destination the peer sent to (`key.local` of the flow).
    let destination: Netstack.Endpoint
    private var channel: (any Channel)?
    private var receiver: (any PacketReceiver)?
    /// Datagrams that arrived before the router installed its receiver.
    private var early: [ByteBuffer] = []
    private let closePromise: EventLoopPromise<Void>
    private var closed = false

    init(eventLoop: any EventLoop, destination: Netstack.Endpoint) {
        self.eventLoop = eventLoop
        self.destination = destination
        closePromise = eventLoop.makePromise()
    }

    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }

    /// Binds the accepted flow channel (its initializer calls this).
    func attach(_ channel: any Channel) throws {
        self.channel = channel
        try channel.pipeline.syncOperations.addHandler(NetstackDatagramHandler(source: destination, flow: self))
        channel.closeFuture.whenComplete { [weak self] _ in self?.close() }
    }

    func setReceiver(_ receiver: any PacketReceiver) {
        eventLoop.preconditionInEventLoop()
        self.receiver = receiver
        let held = early
        early = []
        for payload in held { receiver.packetReceived(payload, from: Destination(ip: destination.address.adapterAddress, port: destination.port)) }
    }

    fileprivate func received(_ payload: ByteBuffer) {
        guard let receiver else {
            if early.count < 64 { early.append(payload) }
            return
        }
        receiver.packetReceived(payload, from: Destination(ip: destination.address.adapterAddress, port: destination.port))
    }

    /// The flow's peer is fixed: `destination` names the reply's apparent source, which the flow already is.
    func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        channel?.write(payload, promise: nil)
    }

    func flush() { channel?.flush() }

    func close() {
        guard !closed else { return }
        closed = true
        channel?.close(promise: nil)
        channel = nil
        let receiver = self.receiver
        self.receiver = nil
        receiver?.packetConnectionClosed()
        closePromise.succeed(())
    }
}

/// Reads datagrams off a netstack UDP flow channel and hands them to the connection that owns the flow.
final class NetstackDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let source: Netstack.Endpoint
    private weak var connection: NetstackPacketConnection?
    private weak var flow: NetstackFlowPacketConnection?

    init(source: Netstack.Endpoint, connection: NetstackPacketConnection) {
        self.source = source
        self.connection = connection
    }

    init(source: Netstack.Endpoint, flow: NetstackFlowPacketConnection) {
        self.source = source
        self.flow = flow
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        if let connection { connection.received(payload, from: source) } else { flow?.received(payload) }
    }
}

extension Adapter.IPAddress {
    /// The same address as the netstack's value (IPv4-mapped IPv6 becomes IPv4, as Go's `Unmap`).
    var netstackAddress: NetstackWire.IPAddress {
        switch unmapped {
        case .v4(let value): .v4(IPv4Address(value))
        case .v6(let bits): .v6(IPv6Address(high: bits.high, low: bits.low))
        }
    }
}

extension NetstackWire.IPAddress {
    /// The same address as the adapter layer's value.
    var adapterAddress: Adapter.IPAddress {
        switch self {
        case .v4(let value): .v4(value.rawValue)
        case .v6(let value): .v6(IPv6Bits(high: value.high, low: value.low))
        }
    }
}
