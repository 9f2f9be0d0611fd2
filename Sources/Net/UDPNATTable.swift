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
    var inbox: PacketInbox
    var isClosed = false
    /// When the client last sent (the table's clock), for `UDPFlowLimit`.
    package var lastUsed: UInt64 = 0
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
        self.inbox = PacketInbox(maximumCount: Self.maxQueued, maximumBytes: Self.maxQueuedBytes, copyingWith: listener.allocator)
    }

    package func setReceiver(_ receiver: any PacketReceiver) {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { receiver.packetConnectionClosed(); return }
        inbox.install(receiver)
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
        table?.remove(clientAddress)
        inbox.close()?.packetConnectionClosed()
        closed.succeed(())
    }

    func deliver(_ payload: ByteBuffer, destination: Destination) {
        inbox.deliver(payload, from: destination)
    }
}

extension NATPacketConnection: UDPFlowLimit.Flow {}

/// Client address → flow, for one inbound UDP socket. Loop-confined to the socket's loop. At most
/// `UDPFlowLimit.capacity` clients at once (Go's udpnat2): a new one closes the least recently used.
package final class UDPNATTable: @unchecked Sendable {
    let listener: any Channel
    let newFlow: (NATPacketConnection) -> Void
    var flows: [SocketAddress: NATPacketConnection] = [:]
    var clock: UInt64 = 0

    /// `newFlow` runs on the socket's loop for the first datagram of each client.
    package init(listener: any Channel, newFlow: @escaping (NATPacketConnection) -> Void) {
        self.listener = listener
        self.newFlow = newFlow
    }

    /// Number of live client flows.
    package var count: Int { flows.count }

    /// Routes one datagram from `client` towards `destination`.
    package func receive(_ payload: ByteBuffer, from client: SocketAddress, destination: Destination) {
        clock &+= 1
        if let flow = flows[client] {
            flow.lastUsed = clock
            flow.deliver(payload, destination: destination)
            return
        }
        guard let source = Destination(client) else { return }
        UDPFlowLimit.makeRoom(in: flows)
        var unmapped = source
        if let ip = source.ip { unmapped.host = .ip(ip.unmapped) }
        let flow = NATPacketConnection(listener: listener, clientAddress: client, source: unmapped, table: self)
        flow.lastUsed = clock
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

/// Go's bound on a UDP NAT (sing's udpnat2: an LRU of 1024 client addresses whose evicted entries are
/// closed): a flood of new source ports cannot hold more than `capacity` flows until their idle timeout.
package enum UDPFlowLimit {
    /// Client flows per inbound socket.
    package static let capacity = 1024

    /// A flow the limit can judge and close.
    package protocol Flow: AnyObject {
        /// The table's clock when the client last sent.
        var lastUsed: UInt64 { get }
        /// Closes the flow (and removes it from its table).
        func close()
    }

    /// Before a new flow joins `flows`: when it is full, closes the least recently used one.
    package static func makeRoom<Key: Hashable, F: Flow>(in flows: [Key: F]) {
        guard flows.count >= capacity, let oldest = flows.values.min(by: { $0.lastUsed < $1.lastUsed }) else { return }
        oldest.close()
    }
}
