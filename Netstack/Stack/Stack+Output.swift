import NetstackWire

// Packet output: transport bytes in a buffer with room in front → IP header prepended in place →
// fragmented if larger than the MTU → queued for `transmit`.

extension Stack {
    /// Room reserved in front of a transport payload the stack builds: headroom, IPv6 + fragment
    /// header, and the largest TCP header.
    static let reservedFront = Stack.headroom + 48 + 60

    /// A buffer for `capacity` transport bytes with `reservedFront` bytes free before the reader index;
    /// a recycled one when the pool has one large enough (steady state allocates nothing).
    func makeTransportBuffer(capacity: Int) -> PacketBuffer {
        let needed = Stack.reservedFront + capacity
        while var pooled = bufferPool.popLast() {
            guard pooled.capacity >= needed else { continue }
            pooled.clear()
            pooled.moveWriterIndex(forwardBy: Stack.reservedFront)
            pooled.moveReaderIndex(forwardBy: Stack.reservedFront)
            return pooled
        }
        var buffer = PacketBuffer(capacity: max(needed, Stack.pooledBufferSize))
        buffer.moveWriterIndex(forwardBy: Stack.reservedFront)
        buffer.moveReaderIndex(forwardBy: Stack.reservedFront)
        return buffer
    }

    /// Takes back the buffers of a batch the device has written, for reuse by later packets, and
    /// empties the batch. Only call it when nothing else holds those packets.
    package func recycle(_ batch: inout PacketBatch) {
        for packet in batch.packets where bufferPool.count < Stack.bufferPoolLimit {
            let capacity = packet.bytes.capacity
            if capacity >= Stack.pooledBufferSize && capacity <= 256 << 10 { bufferPool.append(packet.bytes) }
        }
        batch.removeAll()
    }

    /// Most buffers kept for reuse.
    static let bufferPoolLimit = 512
    /// Smallest buffer the stack allocates for output: a full-MTU packet with headroom, so any
    /// recycled buffer fits the common case.
    static let pooledBufferSize = 2048

    /// Moves the reader index back by `count` bytes, copying into a fresh buffer first if there is
    /// not that much room (the owner's payload came without headroom).
    func prepend(_ count: Int, to buffer: inout PacketBuffer) {
        if buffer.readerIndex < count {
            var fresh = makeTransportBuffer(capacity: buffer.readableBytes)
            fresh.writeBuffer(&buffer)
            buffer = fresh
        }
        buffer.moveReaderIndex(to: buffer.readerIndex - count)
    }

    /// Puts an IP header in front of `transport` (a complete transport header + payload with its
    /// checksum, or a partial one with `offload`) and queues it, fragmenting above the MTU unless
    /// `offload` is GSO (the device segments those).
    ///
    /// `transport` is taken (inout, left empty) so the header is written into a uniquely referenced
    /// buffer: a second reference would make the write copy the whole packet.
    func emitIP(source: IPAddress, destination: IPAddress, proto: UInt8, transport: inout PacketBuffer,
                dontFragment: Bool = false, offload: VirtioNetHeader = .none) {
        let length = transport.readableBytes
        switch (source, destination) {
        case let (.v4(s), .v4(d)):
            if 20 + length > configuration.mtu && !offload.isGSO {
                fragmentIPv4(source: s, destination: d, proto: proto, transport: transport)
                return
            }
            var header = IPv4Header(source: s, destination: d, protocolNumber: proto, totalLength: 20 + length)
            header.timeToLive = configuration.defaultTTL
            header.dontFragment = dontFragment
            header.identification = nextIPv4Identification()
            prepend(20, to: &transport)
            transport.withUnsafeMutableReadableBytes { header.write(to: $0) }
        case let (.v6(s), .v6(d)):
            if 40 + length > configuration.mtu && !offload.isGSO {
                fragmentIPv6(source: s, destination: d, proto: proto, transport: transport)
                return
            }
            var header = IPv6Header(source: s, destination: d, nextHeader: proto, payloadLength: length)
            header.hopLimit = configuration.defaultTTL
            prepend(40, to: &transport)
            transport.withUnsafeMutableReadableBytes { header.write(to: $0) }
        default:
            preconditionFailure("emitIP with mixed address families")
        }
        enqueue(Packet(bytes: transport, offload: offload))
    }

    func nextIPv4Identification() -> UInt16 {
        ipv4Identification &+= 1
        return ipv4Identification
    }

    /// RFC 791 §3.2 fragmentation: pieces of `(mtu - 20) & ~7` bytes, MF on all but the last.
    private func fragmentIPv4(source: IPv4Address, destination: IPv4Address, proto: UInt8, transport: PacketBuffer) {
        let step = (configuration.mtu - 20) & ~7
        let identification = nextIPv4Identification()
        var offset = 0
        let total = transport.readableBytes
        while offset < total {
            let size = min(step, total - offset)
            var piece = makeTransportBuffer(capacity: size)
            var slice = transport.getSlice(at: transport.readerIndex + offset, length: size)!
            piece.writeBuffer(&slice)
            var header = IPv4Header(source: source, destination: destination, protocolNumber: proto, totalLength: 20 + size)
            header.timeToLive = configuration.defaultTTL
            header.identification = identification
            header.fragmentOffset = offset
            header.moreFragments = offset + size < total
            prepend(20, to: &piece)
            piece.withUnsafeMutableReadableBytes { header.write(to: $0) }
            enqueue(Packet(bytes: piece))
            offset += size
        }
    }

    /// RFC 8200 §4.5 source fragmentation: a fragment header after the fixed header in each piece.
    private func fragmentIPv6(source: IPv6Address, destination: IPv6Address, proto: UInt8, transport: PacketBuffer) {
        let step = (configuration.mtu - 48) & ~7
        let identification = UInt32(truncatingIfNeeded: random.next())
        var offset = 0
        let total = transport.readableBytes
        while offset < total {
            let size = min(step, total - offset)
            var piece = makeTransportBuffer(capacity: size)
            var slice = transport.getSlice(at: transport.readerIndex + offset, length: size)!
            piece.writeBuffer(&slice)
            var header = IPv6Header(source: source, destination: destination, nextHeader: IPProtocol.ipv6Fragment, payloadLength: 8 + size)
            header.hopLimit = configuration.defaultTTL
            let fragment = IPv6FragmentHeader(nextHeader: proto, offset: offset, moreFragments: offset + size < total,
                                              identification: identification, headerOffset: 40)
            prepend(48, to: &piece)
            piece.withUnsafeMutableReadableBytes { raw in
                header.write(to: raw)
                fragment.write(to: UnsafeMutableRawBufferPointer(rebasing: raw[40..<48]))
            }
            enqueue(Packet(bytes: piece))
            offset += size
        }
    }
}
