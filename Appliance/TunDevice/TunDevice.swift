// TunDevice: a Linux TUN queue with the virtio-net header and offloads (TSO/USO/checksum), read in
// batches with headroom and written one packet per write (shared/SWIFT-LINUX.md §2).
//
// 1. open /dev/net/tun with IFF_TUN|IFF_NO_PI|IFF_VNET_HDR (+ IFF_MULTI_QUEUE), non-blocking
// 2. TUNSETVNETHDRSZ 10, TUNSETOFFLOAD with CSUM|TSO4|TSO6|USO4|USO6, falling back to CSUM|TSO4|TSO6
//    (kernels before 6.2 refuse USO), then CSUM, then nothing
// 3. `readBatch` reads until the batch is full or EAGAIN, each packet in its own PacketBuffer with
//    `Stack.headroom` in front; the vnet header is parsed off into `Packet.offload`
// 4. `write` sends one packet per writev(2) with the vnet header as the first iovec: the TUN driver
//    turns one write call into exactly one packet, so packets are never coalesced (a NIO stream
//    channel would coalesce them into one writev and lose all but the first)
// MTU, addresses and up/down are set over rtnetlink (Netlink module), not here.
// Must not import: Netlink, Nftables, Box. Linux headers arrive through CLinux only.
package import Netstack
import NetstackWire
import CLinux
import Glibc
import Synchronization

/// The module's name, for log lines and diagnostics.
package enum TunDeviceModule {
    package static let name = "TunDevice"
}

/// Why a TUN operation failed: the errno and what we were doing.
package struct TunError: Error, CustomStringConvertible, Equatable {
    /// `open tun sb0`, `TUNSETVNETHDRSZ`, `write`.
    package var operation: String
    /// The positive errno.
    package var errno: Int32

    /// An error for `operation`.
    package init(operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// `write sbtun0: Resource temporarily unavailable (errno 11)`.
    package var description: String {
        let text = strerror(errno).map { String(cString: $0) } ?? "error"
        return "\(operation): \(text) (errno \(errno))"
    }
}

/// The offloads a TUN accepted (TUN_F_*). Kernel → user only; user → kernel GSO always works with
/// IFF_VNET_HDR.
package struct TunOffloads: OptionSet, Hashable, Sendable {
    /// The TUN_F_* bits.
    package let rawValue: UInt32
    /// Offloads from TUN_F_* bits.
    package init(rawValue: UInt32) { self.rawValue = rawValue }

    /// TUN_F_CSUM: packets may carry a partial checksum (NEEDS_CSUM). Every other offload needs it.
    package static let checksum = TunOffloads(rawValue: clinux_TUN_F_CSUM)
    /// TUN_F_TSO4: TCP/IPv4 super-packets up to 64 KiB.
    package static let tso4 = TunOffloads(rawValue: clinux_TUN_F_TSO4)
    /// TUN_F_TSO6.
    package static let tso6 = TunOffloads(rawValue: clinux_TUN_F_TSO6)
    /// TUN_F_USO4 (Linux 6.2): UDP super-packets (GSO_UDP_L4).
    package static let uso4 = TunOffloads(rawValue: clinux_TUN_F_USO4)
    /// TUN_F_USO6 (Linux 6.2).
    package static let uso6 = TunOffloads(rawValue: clinux_TUN_F_USO6)

    /// Everything we ask for first.
    package static let all: TunOffloads = [.checksum, .tso4, .tso6, .uso4, .uso6]
}

/// How to open a TUN.
package struct TunOptions: Hashable, Sendable {
    /// The interface name (`tun0`); empty lets the kernel choose (`tun%d`).
    package var name: String
    /// IFF_MULTI_QUEUE: more queues can be attached with `openQueue()`, one per event loop.
    package var multiQueue: Bool
    /// The offloads to request; refused ones are dropped in the fallback order above.
    package var offloads: TunOffloads

    /// Options with all offloads and a single queue.
    package init(name: String, multiQueue: Bool = false, offloads: TunOffloads = .all) {
        self.name = name
        self.multiQueue = multiQueue
        self.offloads = offloads
    }
}

/// One queue (file descriptor) of a TUN interface with the virtio-net header.
///
/// The fd is non-blocking. `readBatch` and `write` may be called from any one thread at a time (in the
/// appliance: the event loop that owns this queue). The interface disappears when its last queue is
/// closed (not persistent).
package final class TunDevice: Sendable {
    /// The interface name the kernel gave.
    package let name: String
    /// The offloads the kernel accepted.
    package let offloads: TunOffloads
    /// How this queue was opened.
    package let options: TunOptions
    /// The file descriptor (closed by `close()` or deinit).
    package let fileDescriptor: CInt
    private let closed = ClosedFlag()
    private let counters = TunCounters()
    /// Read buffers kept between calls: the big one kept while small packets arrive, and the small ones
    /// handed out lately, oldest first, each reused once the stack has let go of it.
    private let readBuffers = Mutex(ReadBuffers())

    struct ReadBuffers: Sendable {
        var spare: PacketBuffer?
        /// A small buffer that staged only the head of a big read (or saw EAGAIN): held by nothing else.
        var spareSmall: PacketBuffer?
        var recentSmall = RingQueue<PacketBuffer>(initialCapacity: TunDevice.recycledSmallBuffers)
    }

    /// Small read buffers remembered for reuse (at 2 KiB each, at most 512 KiB kept alive by the ring).
    static let recycledSmallBuffers = 256

    /// Opens a queue of TUN `options.name` and configures the vnet header and offloads.
    /// Throws `TunError` (EPERM without CAP_NET_ADMIN, EBUSY if the name is a non-TUN link).
    package init(_ options: TunOptions) throws {
        var flags = clinux_IFF_TUN | clinux_IFF_NO_PI | clinux_IFF_VNET_HDR
        if options.multiQueue { flags |= clinux_IFF_MULTI_QUEUE }
        var nameBuffer = [CChar](repeating: 0, count: 16)
        let fd = clinux_tun_open(options.name, flags, &nameBuffer)
        guard fd >= 0 else { throw TunError(operation: "open tun \(options.name)", errno: -fd) }
        let name = String(decoding: nameBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var headerSize = CInt(VirtioNetHeader.length)
        guard ioctl(fd, clinux_TUNSETVNETHDRSZ, &headerSize) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw TunError(operation: "TUNSETVNETHDRSZ on \(name)", errno: code)
        }
        // Without TUN_F_CSUM every offload is EINVAL; without USO support (< 6.2) the full set is EINVAL.
        let attempts: [TunOffloads] = [options.offloads, options.offloads.subtracting([.uso4, .uso6]),
                                       options.offloads.intersection(.checksum), []]
        var accepted: TunOffloads = []
        for attempt in attempts where attempt.isSubset(of: options.offloads) {
            if ioctl(fd, clinux_TUNSETOFFLOAD, CInt(bitPattern: attempt.rawValue)) == 0 {
                accepted = attempt
                break
            }
        }
        self.name = name
        self.offloads = accepted
        self.options = options
        self.fileDescriptor = fd
    }

    /// Attaches another queue to the same interface (IFF_MULTI_QUEUE only). Call it from a thread in the
    /// interface's network namespace: TUNSETIFF resolves the name there.
    package func openQueue() throws -> TunDevice {
        var options = self.options
        options.name = name
        return try TunDevice(options)
    }

    /// Closes the fd. Idempotent; later reads and writes fail with EBADF.
    package func close() {
        if closed.set() { Glibc.close(fileDescriptor) }
    }

    deinit { close() }

    /// The largest packet a read may return: a 64 KiB GSO super-packet plus its vnet header.
    package static let maximumReadSize = 65535 + VirtioNetHeader.length

    /// Packets up to this size (vnet header included) are read into a small buffer of their own.
    package static let smallReadSize = 2048

    /// Reads packets until `batch` holds `maxPackets` more or the queue is empty (EAGAIN). Each packet
    /// gets its own buffer with `headroom` writable bytes in front of its IP header and its virtio-net
    /// header parsed into `offload`. Returns how many were read. Reads with a bad or unsupported vnet
    /// header (legacy UFO) are dropped and counted in `droppedReads`.
    ///
    /// One readv(2) per packet into two pieces: a small buffer (`smallReadSize`) and, behind it, the
    /// tail of a big spare buffer. A small packet stays in its small buffer (no 64 KiB buffer pinned by
    /// a 1400-byte packet); a GSO super-packet's first piece is copied (2 KiB) in front of its tail in the
    /// big buffer, which becomes the packet, and a new spare is made on the next big read. Small
    /// buffers come back for reuse once nothing holds them (`ReadBuffers.takeSmall`).
    package func readBatch(into batch: inout PacketBatch, maxPackets: Int, headroom: Int = Stack.headroom) throws -> Int {
        // Read under the (uncontended) lock: the buffers stay uniquely held, so `clear()` keeps their
        // blocks, and nothing is allocated to stand in for them meanwhile.
        try readBuffers.withLock { buffers in
            try read(into: &batch, maxPackets: maxPackets, headroom: headroom, buffers: &buffers)
        }
    }

    private func read(into batch: inout PacketBatch, maxPackets: Int, headroom: Int, buffers: inout ReadBuffers) throws -> Int {
        let smallSize = TunDevice.smallReadSize
        let tailSize = TunDevice.maximumReadSize - smallSize
        var count = 0
        while count < maxPackets {
            var small = buffers.takeSmall(capacity: headroom + smallSize, counters: counters)
            small.moveWriterIndex(forwardBy: headroom)
            small.moveReaderIndex(forwardBy: headroom)
            var big = buffers.spare.take() ?? PacketBuffer(capacity: headroom + TunDevice.maximumReadSize)
            big.clear()
            big.moveWriterIndex(forwardBy: headroom)
            big.moveReaderIndex(forwardBy: headroom)
            var readCount = 0
            small.withUnsafeMutableWritableBytes { head in
                big.withUnsafeMutableWritableBytes { whole in
                    var vectors = (iovec(iov_base: head.baseAddress, iov_len: smallSize),
                                   iovec(iov_base: whole.baseAddress! + smallSize, iov_len: tailSize))
                    readCount = withUnsafePointer(to: &vectors) { pointer in
                        pointer.withMemoryRebound(to: iovec.self, capacity: 2) { readv(fileDescriptor, $0, 2) }
                    }
                    if readCount > smallSize {
                        // Make the packet contiguous in the big buffer: its first piece goes in front.
                        whole.baseAddress!.copyMemory(from: head.baseAddress!, byteCount: smallSize)
                    }
                }
            }
            if readCount < 0 {
                buffers.spare = big
                buffers.spareSmall = small  // unused: the next read takes it first
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK { break }
                if code == EINTR { continue }
                throw TunError(operation: "read \(name)", errno: code)
            }
            var packet: PacketBuffer
            if readCount > smallSize {
                big.moveWriterIndex(forwardBy: readCount)
                packet = big
                buffers.spareSmall = small  // only staged the head: free for the next read
            } else {
                small.moveWriterIndex(forwardBy: readCount)
                packet = small
                buffers.spare = big
                buffers.rememberSmall(small)
            }
            guard readCount > VirtioNetHeader.length,
                  let header = try? VirtioNetHeader(validating: packet.readableBytesSpan) else {
                counters.droppedReads.add(1, ordering: .relaxed)
                continue
            }
            packet.moveReaderIndex(forwardBy: VirtioNetHeader.length)
            batch.append(Packet(bytes: packet, offload: header))
            count += 1
        }
        return count
    }

    /// Writes one packet: its `offload` header then its readable bytes in one writev(2).
    /// Returns false if the queue is full (EAGAIN: the packet is dropped, as a NIC would, and counted);
    /// throws other errors.
    @discardableResult
    package func write(_ packet: Packet) throws -> Bool {
        var header: (UInt64, UInt16) = (0, 0)  // 10 bytes of storage
        let written = withUnsafeMutableBytes(of: &header) { headerBytes in
            packet.offload.write(to: headerBytes)
            return packet.bytes.withUnsafeReadableBytes { body in
                var vectors = (iovec(iov_base: headerBytes.baseAddress, iov_len: VirtioNetHeader.length),
                               iovec(iov_base: UnsafeMutableRawPointer(mutating: body.baseAddress), iov_len: body.count))
                return withUnsafePointer(to: &vectors) { pointer in
                    pointer.withMemoryRebound(to: iovec.self, capacity: 2) { writev(fileDescriptor, $0, 2) }
                }
            }
        }
        if written < 0 {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK {
                counters.droppedWrites.add(1, ordering: .relaxed)
                return false
            }
            throw TunError(operation: "write \(name)", errno: code)
        }
        return true
    }

    /// Writes each packet of `batch` with its own writev(2), in order, and leaves the batch as it was;
    /// returns how many the kernel took (the rest met a full queue and were dropped).
    @discardableResult
    package func writeBatch(_ batch: PacketBatch) throws -> Int {
        var written = 0
        for packet in batch.packets where try write(packet) { written += 1 }
        return written
    }

    /// Reads dropped because of a bad virtio-net header.
    package var droppedReads: Int { counters.droppedReads.load(ordering: .relaxed) }
    /// Writes dropped because the queue was full.
    package var droppedWrites: Int { counters.droppedWrites.load(ordering: .relaxed) }
    /// Small packets read into a recycled buffer (no allocation).
    package var reusedSmallBuffers: Int { counters.reusedSmallBuffers.load(ordering: .relaxed) }
}

/// Drop and reuse counters, updated without locks.
final class TunCounters: Sendable {
    let droppedReads = Atomic<Int>(0)
    let droppedWrites = Atomic<Int>(0)
    let reusedSmallBuffers = Atomic<Int>(0)
}

/// A one-shot flag for idempotent close.
final class ClosedFlag: Sendable {
    private let value = Atomic<Bool>(false)
    /// Sets the flag; returns true the first time.
    func set() -> Bool {
        value.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }
}

extension TunDevice.ReadBuffers {
    /// An empty small buffer: a remembered one nothing else holds any more (no allocation in steady
    /// state), else a new one. Looks at the oldest few; one still held goes to the back of the ring,
    /// so a packet the stack keeps for long does not block the reuse of those behind it.
    mutating func takeSmall(capacity: Int, counters: TunCounters) -> PacketBuffer {
        if var spare = spareSmall.take(), spare.capacity >= capacity {
            spare.clear()
            counters.reusedSmallBuffers.add(1, ordering: .relaxed)
            return spare
        }
        for _ in 0..<Swift.min(4, recentSmall.count) {
            guard var oldest = recentSmall.popFirst() else { break }
            if oldest.capacity >= capacity && oldest.isUniquelyReferenced {
                oldest.clear()
                counters.reusedSmallBuffers.add(1, ordering: .relaxed)
                return oldest
            }
            recentSmall.append(oldest)
        }
        return PacketBuffer(capacity: capacity)
    }

    /// Remembers a small buffer handed to the stack, forgetting the oldest when the ring is full.
    mutating func rememberSmall(_ buffer: PacketBuffer) {
        if recentSmall.count >= TunDevice.recycledSmallBuffers { _ = recentSmall.popFirst() }
        recentSmall.append(buffer)
    }
}
