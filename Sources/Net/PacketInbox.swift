// PacketInbox: a client flow's datagrams on their way to the router's receiver, for the per-client
// packet connections of inbound UDP sockets (UDPNATTable, tproxy's TProxyUDPTable).
package import Adapter
package import NIOCore

/// Until the router installs a receiver, datagrams wait here (at most `maximumCount` and
/// `maximumBytes`, later ones dropped as Go's udpnat channel drops them); from then on they go straight
/// through. Loop-confined, like the connection that owns it.
package struct PacketInbox {
    /// Where datagrams go once the router decided.
    package private(set) var receiver: (any PacketReceiver)?
    private var queued: [(ByteBuffer, Destination)] = []
    private var queuedBytes = 0
    private let maximumCount: Int
    private let maximumBytes: Int
    /// Copies a datagram before it waits: a socket's batch read buffer must not be pinned by a burst.
    private let allocator: ByteBufferAllocator?

    /// An empty inbox; `allocator` non-nil copies waiting datagrams out of their read buffer.
    package init(maximumCount: Int, maximumBytes: Int = .max, copyingWith allocator: ByteBufferAllocator? = nil) {
        self.maximumCount = maximumCount
        self.maximumBytes = maximumBytes
        self.allocator = allocator
    }

    /// The waiting payloads, oldest first (the sniffers peek at them).
    package var queuedPayloads: [ByteBuffer] { queued.map(\.0) }

    /// Hands `payload` from `source` to the receiver, or keeps it while there is none and room is left.
    package mutating func deliver(_ payload: ByteBuffer, from source: Destination) {
        if let receiver {
            receiver.packetReceived(payload, from: source)
            return
        }
        guard queued.count < maximumCount, queuedBytes + payload.readableBytes <= maximumBytes else { return }
        var kept = payload
        if let allocator {
            kept = allocator.buffer(capacity: payload.readableBytes)
            kept.writeImmutableBuffer(payload)
        }
        queuedBytes += kept.readableBytes
        queued.append((kept, source))
    }

    /// Installs `receiver` and delivers what waited, in order.
    package mutating func install(_ receiver: any PacketReceiver) {
        self.receiver = receiver
        let backlog = queued
        queued = []
        queuedBytes = 0
        for (payload, source) in backlog { receiver.packetReceived(payload, from: source) }
    }

    /// Drops what waited and returns the receiver, to be told the connection closed.
    package mutating func close() -> (any PacketReceiver)? {
        queued = []
        queuedBytes = 0
        defer { receiver = nil }
        return receiver
    }
}
