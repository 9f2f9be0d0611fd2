// Plain VMess UDP (command 2): one stream carries datagrams to and from the one destination of
// its request, one datagram per chunk (the codec handlers cut and seal the chunks).
//
// `VMessStreamPacketConnection` serves both ends: the client writes each datagram through
// `VMessClientHandler` (whatever the destination of a write, it goes to the request's, as in
// sing-vmess; replies come from it); the server hands it to the router for a command-2 request.
// packetaddr (sing-vmess packetaddr, `packet_encoding: "packetaddr"`): the request names the magic
// `sp.packet-addr.v2fly.arpa`, and each datagram starts with its address (type 1 IPv4 / 2 IPv6,
// address, port u16), so one stream carries datagrams to and from any IP destination.
package import Adapter
package import NIOCore
import Net

/// One plain-UDP (command 2) VMess stream as a packet path, for either end: the outbound's flow
/// through a server, or what the router gets for a client's command-2 request. Datagrams go to and
/// come from the request's destination (or, with packetaddr, carry their address). Loop-confined
/// to the stream's loop.
package final class VMessStreamPacketConnection: ControlledPacketConnection, @unchecked Sendable {
    /// The stream (for an inbound: the TCP connection whose request created this flow).
    package let control: any Channel
    let destination: Destination
    let packetAddress: Bool
    package var eventLoop: any EventLoop { control.eventLoop }
    package var closeFuture: EventLoopFuture<Void> { closed.futureResult }
    private let closed: EventLoopPromise<Void>
    private var inbox = PacketInbox(maximumCount: 512, maximumBytes: 256 * 1024)
    private var isClosed = false

    /// Takes over `channel` (the codec installed: `VMessClientHandler` with nothing written, or
    /// `VMessServerHandler` with the request read): installs the datagram reader at its tail. Call
    /// on the channel's loop; an outbound's caller then removes the dialer's early-bytes holder.
    init(channel: any Channel, destination: Destination, packetAddress: Bool = false) throws {
        self.control = channel
        self.destination = destination
        self.packetAddress = packetAddress
        self.closed = channel.eventLoop.makePromise()
        try channel.pipeline.syncOperations.addHandler(VMessDatagramReader(sink: self), position: .last)
        channel.closeFuture.whenComplete { [self] _ in close() }
    }

    package func setReceiver(_ receiver: any PacketReceiver) {
        guard !isClosed else { receiver.packetConnectionClosed(); return }
        inbox.install(receiver)
        _ = try? control.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        control.read()
    }

    /// One datagram, one chunk. Without packetaddr it goes to the request's destination whatever
    /// `destination` says (as in sing-vmess); on the inbound side that is the reply's implied source.
    package func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        // UDP may drop: a stream that cannot take more does not queue without bound.
        guard !isClosed, control.isWritable, payload.readableBytes > 0 else { return }
        guard packetAddress else {
            control.write(payload, promise: nil)
            return
        }
        // A domain cannot be carried (sing-vmess: `packetaddr: fqdn unsupported`): dropped.
        guard let framed = VMessPacketAddress.frame(payload, to: destination, allocator: control.allocator) else { return }
        control.write(framed, promise: nil)
    }

    package func flush() { control.flush() }

    package func close() {
        guard !isClosed else { return }
        isClosed = true
        control.close(promise: nil)
        inbox.close()?.packetConnectionClosed()
        closed.succeed(())
    }
}

extension VMessStreamPacketConnection: VMessDatagramSink {
    func received(_ payload: ByteBuffer) {
        guard packetAddress else {
            inbox.deliver(payload, from: destination)
            return
        }
        var packet = payload
        guard let address = VMessPacketAddress.read(&packet) else { return }
        inbox.deliver(packet, from: address)
    }
}

/// The packetaddr datagram prefix: type (1 IPv4, 2 IPv6), address, port u16.
package enum VMessPacketAddress {
    /// The request's destination for a packetaddr stream.
    package static let magicAddress = "sp.packet-addr.v2fly.arpa"

    /// `payload` with its address in front; nil for a domain (not representable).
    package static func frame(_ payload: ByteBuffer, to destination: Destination, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard let ip = destination.ip?.unmapped else { return nil }
        var out = allocator.buffer(capacity: 19 + payload.readableBytes)
        switch ip {
        case .v4(let value):
            out.writeInteger(UInt8(1))
            out.writeInteger(value)
        case .v6(let value):
            out.writeInteger(UInt8(2))
            out.writeInteger(value.high)
            out.writeInteger(value.low)
        }
        out.writeInteger(destination.port)
        out.writeImmutableBuffer(payload)
        return out
    }

    /// Reads the prefix off `packet`; nil (the datagram is dropped) when it is short or of an unknown type.
    package static func read(_ packet: inout ByteBuffer) -> Destination? {
        guard let type = packet.readInteger(as: UInt8.self) else { return nil }
        let ip: IPAddress
        switch type {
        case 1:
            guard let value = packet.readInteger(as: UInt32.self) else { return nil }
            ip = .v4(value)
        case 2:
            guard let high = packet.readInteger(as: UInt64.self), let low = packet.readInteger(as: UInt64.self) else { return nil }
            ip = .v6(IPv6Bits(high: high, low: low))
        default:
            return nil
        }
        guard let port = packet.readInteger(as: UInt16.self) else { return nil }
        return Destination(ip: ip, port: port)
    }
}

/// Where a datagram reader hands what it reads.
protocol VMessDatagramSink: AnyObject {
    func received(_ payload: ByteBuffer)
    /// The stream's writability changed.
    func writabilityChanged()
}

extension VMessDatagramSink {
    func writabilityChanged() {}
}

/// Last in a UDP stream's pipeline: each read (one opened chunk) is one datagram. Loop-confined.
final class VMessDatagramReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private weak var sink: (any VMessDatagramSink)?

    init(sink: any VMessDatagramSink) {
        self.sink = sink
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        sink?.received(unwrapInboundIn(data))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        sink?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
