// TUICPacketConnection: one UDP association (assoc id) of a TUIC connection as a `PacketConnection`.
// Client side: the outbound's packet path (`ListenPacket` in Go); server side: the client's flow
// handed to the router. Datagrams from the peer are reassembled here (`TUICDefragmenter`).
import Adapter
import NIOCore
import Net

/// One association. Loop-confined to its session's loop.
final class TUICPacketConnection: PacketConnection, @unchecked Sendable {
    let eventLoop: any EventLoop
    let associationID: UInt16
    /// quic mode (unidirectional streams) instead of DATAGRAM frames.
    let udpStream: Bool
    private let session: TUICSession
    private var inbox = PacketInbox(maximumCount: 64)
    private var defragmenter = TUICDefragmenter()
    private var packetCounter: UInt32 = 0
    private var routed = false
    private var isClosed = false
    private let closePromise: EventLoopPromise<Void>

    init(session: TUICSession, associationID: UInt16, udpStream: Bool) {
        self.session = session
        self.associationID = associationID
        self.udpStream = udpStream
        self.eventLoop = session.eventLoop
        self.closePromise = session.eventLoop.makePromise()
    }

    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }

    func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        guard !isClosed else { return }
        // Go: `uint16(packetId.Add(1) % math.MaxUint16)`.
        packetCounter &+= 1
        let packetID = UInt16(packetCounter % 0xffff)
        session.sendPacket(association: associationID, packetID: packetID, destination: destination, payload: payload, udpStream: udpStream)
    }

    func flush() { session.flush() }

    func setReceiver(_ receiver: any PacketReceiver) { inbox.install(receiver) }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        session.associationClosed(self)
        inbox.close()?.packetConnectionClosed()
        closePromise.succeed(())
    }

    /// A Packet (or fragment) from the peer.
    func input(_ header: TUICPacketHeader, payload: ByteBuffer) {
        guard !isClosed, let (datagram, address) = defragmenter.feed(header, payload: payload), let address else { return }
        if !routed && session.isServer {
            routed = true
            session.routeAssociation(self, destination: address)
        }
        inbox.deliver(datagram, from: address)
    }
}
