// A TUN queue as the netstack's `PacketDevice` (Netstack/NIO): `start` begins event-loop reads, `write`
// sends a batch one packet per writev(2), `stop` ends reading and closes the queue. One device per queue
// and per loop; for several queues open more with `TunDevice.openQueue()`.
//
// Two read paths, measured here (release build, TunPacketDevice delivering to a counting closure, 2 vCPUs
// shared with other engineers' builds, kernel sender in the same namespace, 3 s per run, runs alternated
// in one session at load ~5; absolute numbers swing 2-3x with the load, compare within a row):
//   path           64 KiB UDP GSO (3 runs)   1400-byte UDP (2 runs)   memory per received packet
//   .pollThread    18.1 / 22.0 / 27.8 Gbit/s  59 / 89 kpps             2 KiB (small) or exact 64 KiB (GSO)
//   .nioPipe       25.6 / 29.2 / 30.5 Gbit/s  68 / 105 kpps            64 KiB always (fixed receive size)
// - `.pollThread` (`TunReader`): batches of up to `batchSize`, `Stack.headroom` in front of every packet,
//   one readv(2) per packet (`TunDevice.readBatch`); one poll-thread wakeup and one loop hop per batch.
// - `.nioPipe` (`NIOPipeBootstrap`, input only): NIO's own epoll; NIO ends a stream read cycle after a
//   short read, so every TUN packet is its own batch with only its 10-byte vnet header in front, and
//   every packet, however small, holds a 64 KiB buffer while the stack keeps it.
// `.pollThread` is the default: 10-25 % less raw read throughput, but a queue of small packets cannot pin
// 64 KiB each (128 MB routers run out of memory under load, shared/ANCHORS.md). With a stack behind it
// the poll thread also wins: since `TunReader` reads again after a short batch, a relayed single-stream
// iperf3 upload (bench/netstack.sh topology, 4 alternating pairs) ran 13.4-14.5 Gbit/s against
// 9.9-11.3 for `.nioPipe`, which wakes through epoll and delivers one packet per batch.
// Writes never go through NIO (a coalesced writev would merge packets, shared/SWIFT-LINUX.md §2).
package import NIOCore
package import Netstack
import NetstackNIO
import NetstackWire
import NIOPosix
import Glibc

/// `PacketDevice` over one TUN queue.
///
/// Runs on the driver's loop: `write` must be called on the loop passed to `start`. Write errors other
/// than a full queue stop nothing: the packet is dropped and counted (a TUN that went away shows up
/// on the read side and ends the reader).
package final class TunPacketDevice: PacketDevice, @unchecked Sendable {
    // Invariant: `reader` and `channel` are set in `start` and cleared in `stop`, on the driver's loop.
    /// The queue.
    package let device: TunDevice
    private let batchSize: Int
    private var reader: TunReader?
    private var channel: (any Channel)?
    private let onError: (TunError) -> Void
    /// How reads are done.
    package let readPath: ReadPath

    /// The two read paths (see the file comment for their measured cost).
    package enum ReadPath: Sendable {
        /// `TunReader`: batches with full headroom.
        case pollThread
        /// `NIOPipeBootstrap` on a dup of the fd: one packet per batch, 10 bytes of headroom.
        case nioPipe
    }

    /// A device over `device`; batches hold at most `batchSize` packets. `onError` learns why reading
    /// stopped (on the loop).
    package init(device: TunDevice, batchSize: Int = 64, readPath: ReadPath = .pollThread,
                 onError: @escaping (TunError) -> Void = { _ in }) {
        self.device = device
        self.batchSize = batchSize
        self.readPath = readPath
        self.onError = onError
    }

    /// Starts reading on `eventLoop` with the configured read path.
    package func start(on eventLoop: any EventLoop, deliver: @escaping (inout PacketBatch) -> Void) {
        if readPath == .nioPipe {
            startPipe(on: eventLoop, deliver: deliver)
            return
        }
        do {
            let reader = try TunReader(device: device, loop: eventLoop, batchSize: batchSize, handler: deliver, errorHandler: onError)
            try reader.start()
            self.reader = reader
        } catch let error as TunError {
            onError(error)
        } catch {
            onError(TunError(operation: "start \(device.name)", errno: 0))
        }
    }

    /// Writes every packet with its own writev(2); failures are counted, never thrown.
    package func write(_ batch: inout PacketBatch) {
        do { try device.writeBatch(batch) } catch let error as TunError {
            writeErrors += 1
            lastWriteError = error
        } catch {}
    }

    /// Stops reading and closes the queue.
    package func stop() {
        reader?.stop()
        reader = nil
        channel?.close(promise: nil)
        channel = nil
        device.close()
    }

    private func startPipe(on eventLoop: any EventLoop, deliver: @escaping (inout PacketBatch) -> Void) {
        let input = dup(device.fileDescriptor)
        guard input >= 0 else {
            onError(TunError(operation: "dup \(device.name)", errno: errno))
            return
        }
        let onError = self.onError
        let name = device.name
        let batchSize = self.batchSize
        let future = NIOPipeBootstrap(group: eventLoop)
            .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: TunDevice.maximumReadSize))
            .channelOption(ChannelOptions.maxMessagesPerRead, value: UInt(batchSize))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(PipeReader(deliver: deliver, batchSize: batchSize, name: name, onError: onError))
                }
            }
            .takingOwnershipOfDescriptor(input: input)
        future.whenSuccess { self.channel = $0 }
        future.whenFailure { _ in onError(TunError(operation: "read \(name) through NIO", errno: EIO)) }
    }

    /// Writes that failed with something other than a full queue (touched on the loop only).
    package private(set) var writeErrors = 0
    /// The last such error.
    package private(set) var lastWriteError: TunError?
}

/// Collects one NIO read cycle's packets into a batch and delivers it at channelReadComplete.
private final class PipeReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let deliver: (inout PacketBatch) -> Void
    private let name: String
    private let onError: (TunError) -> Void
    private var batch: PacketBatch

    init(deliver: @escaping (inout PacketBatch) -> Void, batchSize: Int, name: String, onError: @escaping (TunError) -> Void) {
        self.deliver = deliver
        self.name = name
        self.onError = onError
        self.batch = PacketBatch(capacity: batchSize)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard buffer.readableBytes > VirtioNetHeader.length,
              let header = try? VirtioNetHeader(validating: buffer.readableBytesSpan) else { return }
        buffer.moveReaderIndex(forwardBy: VirtioNetHeader.length)
        batch.append(Packet(bytes: PacketBuffer(copying: buffer, headroom: Stack.headroom), offload: header))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !batch.isEmpty { deliver(&batch) }
        batch.removeAll()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        onError(TunError(operation: "read \(name) through NIO", errno: (error as? IOError)?.errnoCode ?? EIO))
        context.close(promise: nil)
    }
}
