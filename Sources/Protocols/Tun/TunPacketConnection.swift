// One UDP flow of the tun inbound as a `PacketConnection`: the client's datagrams arrive on a netstack
// datagram channel keyed by (client, original destination); replies leave it as if sent by the
// address the outbound got them from.
package import Adapter
package import NIOCore
import Netstack
import NetstackNIO
import NetstackWire

/// A netstack UDP flow for the router's packet relay.
///
/// Loop-bound: every method runs on the driver's loop (the channel's). Replies whose source is the
/// flow's original destination go out on the flow itself. A reply from another address (a STUN
/// server answering from a second IP) gets a reply flow of its own (`openUDP` from that address to the
/// client): sing-tun 1.12 writes UDP replies with whatever source the outbound saw, in every stack,
/// which is why `endpoint_independent_nat` was removed (and is ignored) in 1.12. At most
/// `maximumReplyFlows` such sources per flow; more are dropped and counted.
package final class TunPacketConnection: PacketConnection, @unchecked Sendable {
    /// The stack's loop.
    package let eventLoop: any EventLoop
    /// The flow's channel (the first datagram's 5-tuple).
    let channel: any Channel
    /// Where the client sent to: every datagram it sends on this flow is reported from here.
    let destination: Destination
    /// The client's address (replies go there).
    let client: NetstackWire.IPAddress
    let clientPort: UInt16
    let driver: NetstackDriver
    private let closed: EventLoopPromise<Void>
    private var receiver: (any PacketReceiver)?
    private var replyFlows: [Destination: any Channel] = [:]
    private var isClosed = false
    /// Replies dropped because their source was not an IP of the flow's family or too many sources answered.
    package private(set) var droppedForeignReplies = 0
    /// At most this many extra reply sources per flow (a bound on what one client can make us hold).
    static let maximumReplyFlows = 64

    init(channel: any Channel, key: FlowKey, destination: Destination, driver: NetstackDriver) {
        self.eventLoop = channel.eventLoop
        self.channel = channel
        self.destination = destination
        self.client = key.remote.address
        self.clientPort = key.remote.port
        self.driver = driver
        self.closed = channel.eventLoop.makePromise()
        channel.closeFuture.whenComplete { [weak self] _ in self?.close() }
    }

    /// Completes once closed (by the relay, the stack's idle timeout or the inbound's close).
    package var closeFuture: EventLoopFuture<Void> { closed.futureResult }

    /// Installs the relay's receiver and starts reading: the datagrams the stack held since the flow
    /// was accepted arrive now. Any thread (hops onto the loop).
    package func setReceiver(_ receiver: any PacketReceiver) {
        // The DNS hijacker installs its receiver from a task; hop onto the flow's loop.
        guard eventLoop.inEventLoop else {
            // Receivers are loop-bound objects; this one is only touched again on our loop.
            let handOff = ReceiverHandOff(receiver: receiver)
            eventLoop.execute { self.setReceiver(handOff.receiver) }
            return
        }
        guard !isClosed else { receiver.packetConnectionClosed(); return }
        self.receiver = receiver
        // Datagrams held since the flow was accepted are delivered now.
        channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { [weak self] _ in self?.close() }
    }

    /// A datagram the client sent (on the flow or on a reply flow to `to`).
    func received(_ payload: ByteBuffer, to: Destination) {
        receiver?.packetReceived(payload, from: to)
    }

    /// Sends `payload` to the client as if from `replySource` (the flow's own channel when that is the
    /// original destination, else a reply flow from that address).
    package func writePacket(_ payload: ByteBuffer, to replySource: Destination) {
        guard !isClosed else { return }
        // A dual-stack outbound socket reports IPv4 peers as `::ffff:a.b.c.d`.
        var source = replySource
        if let ip = source.ip { source.host = .ip(ip.unmapped) }
        if source == destination || source.ip == nil {
            channel.write(payload, promise: nil)
            return
        }
        if let flow = replyFlows[source] {
            flow.write(payload, promise: nil)
            return
        }
        guard replyFlows.count < Self.maximumReplyFlows, let ip = source.ip,
              let local = Self.netstackAddress(ip), local.isIPv4 == client.isIPv4 else {
            droppedForeignReplies += 1
            return
        }
        let replySource = source
        let future = driver.openUDP(to: Endpoint(client, clientPort), from: Endpoint(local, source.port)) { [weak self] channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(TunUDPHandler(connection: self, destination: replySource))
            }
        }
        // openUDP completes synchronously on the loop; a failure (ports, memory) drops this reply.
        future.whenSuccess { [weak self] flow in
            guard let self, !self.isClosed else { flow.close(promise: nil); return }
            self.replyFlows[replySource] = flow
            flow.writeAndFlush(payload, promise: nil)
        }
    }

    /// Pushes written datagrams into the stack (and so to the TUN).
    package func flush() {
        channel.flush()
        for flow in replyFlows.values { flow.flush() }
    }

    /// Closes the flow and its reply flows; the receiver hears `packetConnectionClosed` once. Any thread.
    package func close() {
        guard eventLoop.inEventLoop else {
            eventLoop.execute { self.close() }
            return
        }
        guard !isClosed else { return }
        isClosed = true
        channel.close(promise: nil)
        for flow in replyFlows.values { flow.close(promise: nil) }
        replyFlows.removeAll()
        let receiver = self.receiver
        self.receiver = nil
        receiver?.packetConnectionClosed()
        closed.succeed(())
    }

    /// Adapter's address value as the netstack's (same host-order numbers).
    static func netstackAddress(_ address: Adapter.IPAddress) -> NetstackWire.IPAddress? {
        switch address.unmapped {
        case .v4(let value): return .v4(IPv4Address(value))
        case .v6(let bits): return .v6(IPv6Address(high: bits.high, low: bits.low))
        }
    }

    /// The netstack's address value as Adapter's.
    static func adapterAddress(_ address: NetstackWire.IPAddress) -> Adapter.IPAddress {
        switch address {
        case .v4(let value): return .v4(value.rawValue)
        case .v6(let value): return .v6(IPv6Bits(high: value.high, low: value.low))
        }
    }
}

/// Carries a receiver to the connection's loop (NIOLoopBound must be made on the loop, and the
/// caller is not on it); nothing touches it on the way.
private struct ReceiverHandOff: @unchecked Sendable {
    let receiver: any PacketReceiver
}

/// Passes a UDP flow channel's datagrams to its `TunPacketConnection`. Loop-bound.
final class TunUDPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    weak var connection: TunPacketConnection?
    let destination: Destination?

    init(connection: TunPacketConnection?, destination: Destination?) {
        self.connection = connection
        self.destination = destination
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection else { return }
        connection.received(unwrapInboundIn(data), to: destination ?? connection.destination)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
