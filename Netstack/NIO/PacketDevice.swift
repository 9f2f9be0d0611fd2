package import NIOCore
package import Netstack

/// A source and sink of IP packets for a `NetstackDriver`: a TUN device (Appliance), a WireGuard
/// peer's decrypted side, or a test double.
///
/// Contract: `start` is called once on the driver's loop; the device then calls `deliver` on that
/// loop with each batch it read (the driver empties the batch and the device reuses it). `write` is
/// called on the loop with a batch to send: one packet per device write, packet boundaries kept
/// (SWIFT-LINUX §2: a coalesced writev becomes ONE TUN packet). Each packet has `Stack.headroom`
/// free bytes before its reader index for a virtio-net or tunnel header; its `offload` says what the
/// header must carry (NEEDS_CSUM and GSO for TSO output).
package protocol PacketDevice: AnyObject {
    /// Starts reading; `deliver` runs on `eventLoop` once per batch.
    func start(on eventLoop: any EventLoop, deliver: @escaping (inout PacketBatch) -> Void)
    /// Sends every packet of `batch` (the driver empties it afterwards).
    func write(_ batch: inout PacketBatch)
    /// Stops reading and releases the device.
    func stop()
}
