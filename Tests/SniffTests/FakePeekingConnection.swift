import Adapter
import NIOCore
import NIOPosix

/// A `PacketPeeking` connection holding fixed payloads, on its own event loop.
final class FakePeekingConnection: PacketPeeking, @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let payloads: [ByteBuffer]
    var eventLoop: any EventLoop { group.next() }
    var closeFuture: EventLoopFuture<Void> { eventLoop.makeSucceededVoidFuture() }

    init(payloads: [[UInt8]]) {
        self.payloads = payloads.map { ByteBuffer(bytes: $0) }
    }

    func queuedPayloads() -> [ByteBuffer] { payloads }
    func writePacket(_ payload: ByteBuffer, to destination: Destination) {}
    func flush() {}
    func setReceiver(_ receiver: any PacketReceiver) {}
    func close() {}
}
