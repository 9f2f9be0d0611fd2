// TProxyUDPTable: tproxy datagrams grouped into flows by client address (Go's udpnat keyed by source).
//
// 1. The reader thread hands a datagram with its source and original destination to `receive` on
//    the table's loop.
// 2. The client's `TProxyPacketConnection` is found or made (its first original destination is the
//    flow's destination) and handed to the router.
// 3. Replies go out of a transparent socket bound to the address they came from: the original
//    destination's socket is kept for the flow's life; a reply from any other address uses a
//    socket opened and closed for that datagram, as Go's tproxyPacketWriter does.
package import Adapter
package import NIOCore
import Net

/// Client address → flow for one tproxy UDP socket. Loop-confined to `eventLoop`. At most
/// `UDPFlowLimit.capacity` clients at once, as Go's udpnat2: a new one closes the least recently used.
package final class TProxyUDPTable: @unchecked Sendable {
    package let eventLoop: any EventLoop
    let sockets: any TransparentSockets
    let routingMark: UInt32?
    let logger: ContextLogger
    let newFlow: (TProxyPacketConnection) -> Void
    var flows: [SocketAddress: TProxyPacketConnection] = [:]
    var clock: UInt64 = 0

    package init(eventLoop: any EventLoop, sockets: any TransparentSockets, routingMark: UInt32?, logger: ContextLogger,
                 newFlow: @escaping (TProxyPacketConnection) -> Void) {
        self.eventLoop = eventLoop
        self.sockets = sockets
        self.routingMark = routingMark
        self.logger = logger
        self.newFlow = newFlow
    }

    /// Live client flows.
    package var count: Int { flows.count }

    /// One datagram from `client` that was sent to `destination`.
    package func receive(_ payload: ByteBuffer, from client: SocketAddress, destination: SocketAddress) {
        eventLoop.preconditionInEventLoop()
        guard let target = Destination(destination) else { return }
        clock &+= 1
        if let flow = flows[client] {
            flow.lastUsed = clock
            flow.deliver(payload, destination: target)
            return
        }
        guard let source = Destination(client) else { return }
        UDPFlowLimit.makeRoom(in: flows)
        let flow = TProxyPacketConnection(table: self, clientAddress: client, source: source,
                                          destination: target, destinationAddress: destination)
        flow.lastUsed = clock
        flows[client] = flow
        flow.deliver(payload, destination: target)
        newFlow(flow)
    }

    func remove(_ client: SocketAddress) { flows[client] = nil }

    /// Closes every flow (the inbound is closing).
    package func closeAll() {
        for flow in Array(flows.values) { flow.close() }
        flows.removeAll()
    }
}

extension TProxyPacketConnection: UDPFlowLimit.Flow {}

/// One tproxy UDP client as a `PacketConnection` for the router.
package final class TProxyPacketConnection: PacketPeeking, @unchecked Sendable {
    /// The client's kernel address.
    package let clientAddress: SocketAddress
    /// The client (`FlowMetadata.source`).
    package let source: Destination
    /// The first datagram's original destination (`FlowMetadata.destination`).
    package let destination: Destination
    let destinationAddress: SocketAddress
    package var eventLoop: any EventLoop { table.eventLoop }
    package var closeFuture: EventLoopFuture<Void> { closed.futureResult }
    let table: TProxyUDPTable
    let closed: EventLoopPromise<Void>
    // Loop-confined.
    var inbox = PacketInbox(maximumCount: TProxyPacketConnection.maxQueued)
    var replySocket: (any TransparentPacketSender)?
    package private(set) var isClosed = false
    /// When the client last sent (the table's clock), for `UDPFlowLimit`.
    package var lastUsed: UInt64 = 0
    static let maxQueued = 64

    init(table: TProxyUDPTable, clientAddress: SocketAddress, source: Destination, destination: Destination,
         destinationAddress: SocketAddress) {
        self.table = table
        self.clientAddress = clientAddress
        self.source = source
        self.destination = destination
        self.destinationAddress = destinationAddress
        self.closed = table.eventLoop.makePromise()
    }

    package func setReceiver(_ receiver: any PacketReceiver) {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { receiver.packetConnectionClosed(); return }
        inbox.install(receiver)
    }

    /// Sends a reply to the client from `source` (the server that answered).
    package func writePacket(_ payload: ByteBuffer, to source: Destination) {
        guard !isClosed else { return }
        // A reply's source is an address (the outbound unmaps domains); fall back to the flow's
        // destination, which the client expects an answer from.
        let from = source.ip.map { SocketAddress(ip: $0.unmapped, port: source.port) } ?? destinationAddress
        do {
            if from == destinationAddress {
                if replySocket == nil {
                    replySocket = try table.sockets.openReplySocket(from: from, routingMark: table.routingMark)
                }
                try replySocket?.send(payload, to: clientAddress)
            } else {
                let socket = try table.sockets.openReplySocket(from: from, routingMark: table.routingMark)
                defer { socket.close() }
                try socket.send(payload, to: clientAddress)
            }
        } catch {
            table.logger.debug("write packet to \(self.source): \(error)")
        }
    }

    package func flush() {}

    package func queuedPayloads() -> [ByteBuffer] { inbox.queuedPayloads }

    package func close() {
        guard !isClosed else { return }
        isClosed = true
        replySocket?.close()
        replySocket = nil
        table.remove(clientAddress)
        inbox.close()?.packetConnectionClosed()
        closed.succeed(())
    }

    func deliver(_ payload: ByteBuffer, destination: Destination) {
        inbox.deliver(payload, from: destination)
    }
}
