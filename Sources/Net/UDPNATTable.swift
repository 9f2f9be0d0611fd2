// UDPNATTable: demultiplexes one inbound UDP socket into per-client flows.
//
// 1. A datagram arrives on the inbound's socket from client address S.
// 2. The table finds S's `NATPacketConnection`, or makes one and hands it to `newFlow`
//    (the inbound then passes it to the router).
// 3. The datagram is delivered to that connection's receiver (queued, bounded, until the router
//    installs one). A queued datagram is copied out of the socket's receive buffer, so a burst
//    waiting for the router pins its own octets, not the large batch buffer it was read into.
// 4. Replies written to the connection go out of the same socket to S. Closing the connection
//    (idle timeout in the packet relay) removes S from the table.
package import Adapter
package import NIOCore

/// The per-client view of an inbound UDP socket, as a `PacketConnection` for the router.
package final class NATPacketConnection: PacketConnection, @unchecked Sendable {
    /// The inbound's socket.
    package let listener: any Channel
    /// The client's kernel address.
    package let clientAddress: SocketAddress
    /// The client as a destination value (for `FlowMetadata.source`).
    package let source: Destination
    package var eventLoop: any EventLoop { listener.eventLoop }
    package var closeFuture: EventLoopFuture<Void> { closed.futureResult }
    let closed: EventLoopPromise<Void>
    weak var table: UDPNATTable?
    // Loop-confined.
    var receiver: (any PacketReceiver)?
    var queued: [(ByteBuffer, Destination)] = []
    var queuedBytes = 0
    var isClosed = false
    /// What waits for the router's decision: a client's first burst (dnsperf sends hundreds of
    /// queries at once from a new socket; sing-box's udpnat channel holds 64, and Go loses the rest).
    static let maxQueued = 512
    static let maxQueuedBytes = 256 * 1024

    init(listener: any Channel, clientAddress: SocketAddress, source: Destination, table: UDPNATTable) {
        self.listener = listener
        self.clientAddress = clientAddress
        self.source = source
        self.table = table
        self.closed = listener.eventLoop.makePromise()
    }

    package func setReceiver(_ receiver: any PacketReceiver) {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { receiver.packetConnectionClosed(); return }
        self.receiver = receiver
        let backlog = queued
        queued = []
        queuedBytes = 0
        for (payload, destination) in backlog { receiver.packetReceived(payload, from: destination) }
    }

    /// Sends a reply to the client. A plain socket cannot fake the reply's source address, so
    /// `destination` is ignored here (tproxy inbounds use their own connection type).
    package func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        guard !isClosed else { return }
        listener.write(AddressedEnvelope(remoteAddress: clientAddress, data: payload), promise: nil)
    }

    package func flush() { listener.flush() }

    package func close() {
        guard !isClosed else { return }
        isClosed = true
        queued = []
        queuedBytes = 0
        table?.remove(clientAddress)
        let receiver = self.receiver
        self.receiver = nil
        receiver?.packetConnectionClosed()
        closed.succeed(())
    }

    func deliver(_ payload: ByteBuffer, destination: Destination) {
        if let receiver {
            receiver.packetReceived(payload, from: destination)
        } else if queued.count < Self.maxQueued, queuedBytes + payload.readableBytes <= Self.maxQueuedBytes {
            var copy = listener.allocator.buffer(capacity: payload.readableBytes)
            copy.writeImmutableBuffer(payload)
            queuedBytes += copy.readableBytes
            queued.append((copy, destination))
        }
    }
}

/// Client address → flow, for one inbound UDP socket. Loop-confined to the socket's loop.
package final class UDPNATTable: @unchecked Sendable {
    let listener: any Channel
    let newFlow: (NATPacketConnection) -> Void
    var flows: [SocketAddress: NATPacketConnection] = [:]

    /// `newFlow` runs on the socket's loop for the first datagram of each client.
    package init(listener: any Channel, newFlow: @escaping (NATPacketConnection) -> Void) {
        self.listener = listener
        self.newFlow = newFlow
    }

    /// Number of live client flows.
    package var count: Int { flows.count }

    /// Routes one datagram from `client` towards `destination`.
    package func receive(_ payload: ByteBuffer, from client: SocketAddress, destination: Destination) {
        if let flow = flows[client] {
            flow.deliver(payload, destination: destination)
            return
        }
        guard let source = Destination(client) else { return }
        var unmapped = source
        if let ip = source.ip { unmapped.host = .ip(ip.unmapped) }
        let flow = NATPacketConnection(listener: listener, clientAddress: client, source: unmapped, table: self)
        flows[client] = flow
        flow.deliver(payload, destination: destination)
        newFlow(flow)
    }

    func remove(_ client: SocketAddress) {
        flows[client] = nil
    }

    /// Closes every client flow (the inbound is closing).
    package func closeAll() {
        for flow in Array(flows.values) { flow.close() }
        flows.removeAll()
    }
}
