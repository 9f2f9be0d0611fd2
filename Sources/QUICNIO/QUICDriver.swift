// QUICNIO: runs sans-I/O QUIC connections over one NIO UDP channel, on that channel's event loop.
//
// 1. A datagram arrives → (server) `QUICServerEndpoint.route` finds or makes its connection,
//    (client) the one connection takes it → `receive(datagram:now:)` with the loop's clock.
// 2. `flush(connection)`: `transmit` → datagrams written to the connection's peer address; events
//    drained to `onEvent` (which may write to the connection: flushing repeats until quiet); the
//    connection's `nextDeadline` (re)schedules one loop task per connection.
// 3. A `.closed` event forgets the connection and cancels its timer.
//
// All methods run on the channel's loop. The owner's callbacks run there too; they use the
// connection's stream API and call `flush` to send at once.
package import NIOCore
import NIOPosix
import NetstackWire
package import QUIC

/// One UDP socket carrying QUIC client or server connections. Confined to its channel's event
/// loop (hence `@unchecked Sendable`: only handles cross threads, every touch is on the loop).
package final class QUICDriver: ChannelInboundHandler, @unchecked Sendable {
    package typealias InboundIn = AddressedEnvelope<ByteBuffer>
    package typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private struct Peer {
        let connection: QUICConnection
        let address: SocketAddress
        var timer: Scheduled<Void>?
        var deadline: Instant?
    }

    private let server: QUICServerEndpoint?
    private var peers: [ObjectIdentifier: Peer] = [:]
    private var context: ChannelHandlerContext?
    private var flushing: Set<ObjectIdentifier> = []
    private var flushAgain: Set<ObjectIdentifier> = []

    /// Every connection event, on the loop.
    package var onEvent: ((QUICConnection, QUICConnectionEvent) -> Void)?
    /// A server connection was made for a new client (before its first events).
    package var onAccept: ((QUICConnection) -> Void)?
    /// After each flush of a connection (acknowledgements may have freed send buffers): owners
    /// re-check their streams' writability here. On the loop; may write and flush again.
    package var onFlushed: ((QUICConnection) -> Void)?

    /// A driver for client connections (`server` nil) or for a server endpoint.
    package init(server: QUICConfiguration?) {
        self.server = server.map { QUICServerEndpoint(configuration: $0) }
    }

    /// Binds a UDP socket on `host:port` with a new driver as its handler.
    package static func bind(group: any EventLoopGroup, host: String, port: Int, server: QUICConfiguration? = nil)
        -> EventLoopFuture<(any Channel, QUICDriver)> {
        let driver = QUICDriver(server: server)
        return DatagramBootstrap(group: group)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(driver) } }
            .bind(host: host, port: port)
            .map { ($0, driver) }
    }

    /// Binds a UDP socket on `address` with a new driver as its handler.
    package static func bind(group: any EventLoopGroup, address: SocketAddress, server: QUICConfiguration? = nil)
        -> EventLoopFuture<(any Channel, QUICDriver)> {
        let driver = QUICDriver(server: server)
        return DatagramBootstrap(group: group)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(driver) } }
            .bind(to: address)
            .map { ($0, driver) }
    }

    /// The loop's clock as QUIC's `Instant`. The driver reads the clock; connections never do.
    var now: Instant { Instant(nanoseconds: NIODeadline.now().uptimeNanoseconds) }

    package func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    package func handlerRemoved(context: ChannelHandlerContext) {
        for peer in peers.values { peer.timer?.cancel() }
        peers.removeAll()
        self.context = nil
    }

    /// Starts a client connection to `address`; its first flight leaves at once. On the loop.
    package func connect(to address: SocketAddress, configuration: QUICConfiguration) throws -> QUICConnection {
        let connection = try QUICConnection(client: configuration, now: now)
        peers[ObjectIdentifier(connection)] = Peer(connection: connection, address: address)
        flush(connection)
        return connection
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let time = now
        let connection: QUICConnection
        if let server {
            guard let (routed, isNew) = server.route(envelope.data, now: time) else {
                if let negotiation = server.versionNegotiation(for: envelope.data) {
                    context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: negotiation)), promise: nil)
                }
                return
            }
            if isNew {
                peers[ObjectIdentifier(routed)] = Peer(connection: routed, address: envelope.remoteAddress)
                onAccept?(routed)
            }
            connection = routed
        } else {
            // A client socket carries the connections it started; match the sender.
            guard let peer = peers.values.first(where: { $0.address == envelope.remoteAddress }) else { return }
            connection = peer.connection
        }
        connection.receive(datagram: envelope.data, now: time)
        flush(connection)
    }

    /// Sends what `connection` has, delivers its events and re-arms its timer. On the loop;
    /// re-entrant calls from `onEvent` are folded into one more round.
    package func flush(_ connection: QUICConnection) {
        let key = ObjectIdentifier(connection)
        guard let context, peers[key] != nil else { return }
        if flushing.contains(key) { flushAgain.insert(key); return }
        flushing.insert(key)
        defer { flushing.remove(key) }
        repeat {
            flushAgain.remove(key)
            guard let address = peers[key]?.address else { return }
            let datagrams = connection.transmit(now: now)
            for datagram in datagrams {
                context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: address, data: datagram)), promise: nil)
            }
            if !datagrams.isEmpty { context.flush() }
            server?.refresh(connection)
            while let event = connection.nextEvent() {
                onEvent?(connection, event)
                if case .closed = event { forget(connection); return }
            }
        } while flushAgain.contains(key)
        schedule(connection)
        onFlushed?(connection)
    }

    private func schedule(_ connection: QUICConnection) {
        let key = ObjectIdentifier(connection)
        guard var peer = peers[key], let context else { return }
        let deadline = connection.nextDeadline
        guard deadline != peer.deadline else { return }
        peer.timer?.cancel()
        peer.deadline = deadline
        peer.timer = nil
        if let deadline {
            let delay = deadline - now
            peer.timer = context.eventLoop.scheduleTask(in: .nanoseconds(max(0, delay.nanosecondsClamped))) { [weak self] in
                // Looked up again: the connection may have closed and been forgotten meanwhile.
                guard let self, let connection = self.peers[key]?.connection else { return }
                self.peers[key]?.deadline = nil
                self.flush(connection)
            }
        }
        peers[key] = peer
    }

    private func forget(_ connection: QUICConnection) {
        let key = ObjectIdentifier(connection)
        peers[key]?.timer?.cancel()
        peers[key] = nil
        server?.forget(connection)
    }

    /// The address `connection`'s datagrams come from and go to; nil once it is forgotten.
    package func peerAddress(of connection: QUICConnection) -> SocketAddress? { peers[ObjectIdentifier(connection)]?.address }

    /// Connections currently driven.
    package var connectionCount: Int { peers.count }
}
