// A TUN queue as the netstack's `PacketDevice` (Netstack/NIO): `start` begins event-loop reads through a
// `TunReader`, `write` sends a batch one packet per writev(2), `stop` ends reading and closes the queue.
// One device per queue and per loop; for several queues open more with `TunDevice.openQueue()`.
package import NIOCore
package import Netstack
import NetstackNIO

/// `PacketDevice` over one TUN queue.
///
/// Runs on the driver's loop: `write` must be called on the loop passed to `start`. Write errors other
/// than a full queue stop nothing: the packet is dropped and counted (a TUN that went away shows up
/// on the read side and ends the reader).
package final class TunPacketDevice: PacketDevice, @unchecked Sendable {
    // Invariant: `reader` is set in `start` and cleared in `stop`, both on the driver's loop.
    /// The queue.
    package let device: TunDevice
    private let batchSize: Int
    private var reader: TunReader?
    private let onError: (TunError) -> Void

    /// A device over `device`; batches hold at most `batchSize` packets. `onError` learns why reading
    /// stopped (on the loop).
    package init(device: TunDevice, batchSize: Int = 64, onError: @escaping (TunError) -> Void = { _ in }) {
        self.device = device
        self.batchSize = batchSize
        self.onError = onError
    }

    /// Starts a `TunReader` delivering batches on `eventLoop`.
    package func start(on eventLoop: any EventLoop, deliver: @escaping (inout PacketBatch) -> Void) {
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
        device.close()
    }

    /// Writes that failed with something other than a full queue (touched on the loop only).
    package private(set) var writeErrors = 0
    /// The last such error.
    package private(set) var lastWriteError: TunError?
}
