package import NetstackWire

/// Identifies one datagram being reassembled (RFC 791 §3.2: source, destination, protocol,
/// identification; RFC 8200 §4.5: source, destination, identification).
package struct ReassemblyKey: Hashable, Sendable {
    /// The datagram's source.
    package var source: IPAddress
    /// The datagram's destination.
    package var destination: IPAddress
    /// The IPv4 identification (16 bits) or the IPv6 fragment header's (32 bits).
    package var identification: UInt32
    /// The IPv4 protocol number; 0 for IPv6 (its key has no protocol).
    package var proto: UInt8

    /// A key from its parts.
    package init(source: IPAddress, destination: IPAddress, identification: UInt32, proto: UInt8) {
        self.source = source
        self.destination = destination
        self.identification = identification
        self.proto = proto
    }
}

/// Fragment reassembly for one address family, with memory and time limits. Pure data: the stack
/// parses headers and fixes the reassembled header; this type only places bytes.
///
/// Rules (matching Linux's `inet_frag_queue_insert`): an exact duplicate fragment is ignored; any
/// other overlap discards the whole datagram (RFC 5722 for IPv6; Linux does the same for IPv4); a
/// fragment past the final length, a second different final fragment, or a non-final fragment whose
/// length is not a multiple of 8 discards it too. A datagram lives `timeout` from its first fragment
/// (Linux `ipfrag_time`, 30 s). When held bytes would pass `memoryLimit` the oldest datagrams go first.
package struct Reassembler {
    /// What the caller does after `insert`.
    package enum Outcome {
        /// Held; more fragments are needed.
        case incomplete
        /// The datagram is whole: `header` (the first fragment's unfragmentable part) then the payload.
        /// `headerLength` tells where the payload starts; the caller fixes lengths and flags.
        case complete(PacketBuffer, headerLength: Int)
        /// The fragment was ignored (a duplicate) or the datagram discarded; counted by the caller.
        case dropped
    }

    /// A datagram whose time ran out, with enough of its first fragment for an ICMP time-exceeded error.
    package struct Expired {
        /// Which datagram it was.
        package var key: ReassemblyKey
        /// The first fragment as received (IP header and data), when it had arrived; RFC 792/RFC 8200
        /// §4.5 send "fragment reassembly time exceeded" only then.
        package var firstFragment: PacketBuffer?
    }

    struct Piece {
        var offset: Int
        var data: PacketBuffer
        var end: Int { offset + data.readableBytes }
    }

    struct Datagram {
        var pieces: [Piece] = []
        var header: PacketBuffer? = nil
        var firstFragment: PacketBuffer? = nil
        var finalLength: Int? = nil
        var heldBytes = 0
        var deadline: Instant
    }

    /// How long a datagram may take to complete, from its first fragment.
    package let timeout: Duration
    /// Most bytes held across all datagrams in progress.
    package let memoryLimit: Int
    /// Most datagrams in progress at once.
    package let maximumDatagrams: Int
    /// Most fragments per datagram (against 8-byte-fragment floods).
    package let maximumFragments: Int
    /// Largest reassembled payload: the 16-bit length fields cap it.
    package static let maximumPayload = 65535

    private var datagrams: [ReassemblyKey: Datagram] = [:]
    /// Bytes held in all pieces and headers.
    package private(set) var heldBytes = 0

    /// A reassembler with Linux's defaults unless told otherwise.
    package init(timeout: Duration = .seconds(30), memoryLimit: Int = 4 << 20,
                 maximumDatagrams: Int = 1024, maximumFragments: Int = 128) {
        self.timeout = timeout
        self.memoryLimit = memoryLimit
        self.maximumDatagrams = maximumDatagrams
        self.maximumFragments = maximumFragments
    }

    /// Datagrams in progress.
    package var count: Int { datagrams.count }

    /// Adds one fragment. `header` is the unfragmentable part when `offset == 0` (IP header and
    /// options, or IPv6 header and extension headers before the fragment header), `data` the fragment
    /// data, `packet` the whole fragment (kept for a time-exceeded error when `offset == 0`).
    package mutating func insert(key: ReassemblyKey, offset: Int, moreFragments: Bool, data: PacketBuffer,
                                 header: PacketBuffer?, packet: PacketBuffer, headroom: Int, now: Instant) -> Outcome {
        let length = data.readableBytes
        let end = offset + length
        guard end <= Reassembler.maximumPayload, !moreFragments || (length > 0 && length % 8 == 0) else {
            discard(key)
            return .dropped
        }
        // Take the datagram out of the table while working on it, so eviction cannot pick it.
        var datagram: Datagram
        if let existing = datagrams.removeValue(forKey: key) {
            datagram = existing
            heldBytes -= existing.heldBytes
        } else {
            datagram = Datagram(deadline: now + timeout)
        }
        let added = length + (offset == 0 ? header?.readableBytes ?? 0 : 0)
        guard makeRoom(for: datagram.heldBytes + added) else { return .dropped }

        switch place(&datagram, offset: offset, end: end, moreFragments: moreFragments) {
        case .drop:
            return .dropped
        case .duplicate:
            heldBytes += datagram.heldBytes
            datagrams[key] = datagram
            return .dropped
        case .insert(let index):
            // Copy the bytes: the fragment's buffer may be a large device buffer we must not pin.
            var copy = PacketBuffer(capacity: length)
            var source = data
            copy.writeBuffer(&source)
            datagram.pieces.insert(Piece(offset: offset, data: copy), at: index)
            datagram.heldBytes += length
            if offset == 0, let header {
                var h = PacketBuffer(capacity: header.readableBytes)
                var hs = header
                h.writeBuffer(&hs)
                datagram.header = h
                datagram.firstFragment = packet
                datagram.heldBytes += header.readableBytes
            }
        }
        if let whole = assemble(datagram, headroom: headroom) { return whole }
        heldBytes += datagram.heldBytes
        datagrams[key] = datagram
        return .incomplete
    }

    private enum Placement { case insert(Int), duplicate, drop }

    /// Where a fragment goes, or why it cannot.
    private func place(_ datagram: inout Datagram, offset: Int, end: Int, moreFragments: Bool) -> Placement {
        // The final length is known once the last fragment (MF = 0) arrives; every byte must fit in it.
        if !moreFragments {
            if let known = datagram.finalLength, known != end { return .drop }
            if let last = datagram.pieces.last, last.end > end { return .drop }
        } else if let known = datagram.finalLength, end > known {
            return .drop
        }
        // Insertion point in the offset-sorted list; both neighbours are checked for overlap.
        var index = datagram.pieces.count
        while index > 0 && datagram.pieces[index - 1].offset > offset { index -= 1 }
        if index > 0 {
            let before = datagram.pieces[index - 1]
            if before.offset == offset && before.end == end { return .duplicate }
            if before.end > offset { return .drop }
        }
        if index < datagram.pieces.count && datagram.pieces[index].offset < end { return .drop }
        guard datagram.pieces.count < maximumFragments else { return .drop }
        if !moreFragments { datagram.finalLength = end }
        return .insert(index)
    }

    /// The whole datagram when the pieces cover `0..<finalLength` without gaps and the header is known.
    private func assemble(_ datagram: Datagram, headroom: Int) -> Outcome? {
        guard let final = datagram.finalLength, let headerBytes = datagram.header else { return nil }
        var covered = 0
        for piece in datagram.pieces {
            guard piece.offset == covered else { return nil }
            covered = piece.end
        }
        guard covered == final else { return nil }
        var out = PacketBuffer(capacity: headroom + headerBytes.readableBytes + final)
        out.moveWriterIndex(forwardBy: headroom)
        out.moveReaderIndex(forwardBy: headroom)
        var hb = headerBytes
        out.writeBuffer(&hb)
        for var piece in datagram.pieces { out.writeBuffer(&piece.data) }
        return .complete(out, headerLength: headerBytes.readableBytes)
    }

    /// Removes datagrams whose time is up and returns them (for ICMP time exceeded).
    package mutating func expire(now: Instant, into expired: inout [Expired]) {
        for (key, datagram) in datagrams where datagram.deadline <= now {
            datagrams[key] = nil
            heldBytes -= datagram.heldBytes
            expired.append(Expired(key: key, firstFragment: datagram.firstFragment))
        }
    }

    /// The earliest deadline of a datagram in progress.
    package var nextDeadline: Instant? {
        guard !datagrams.isEmpty else { return nil }
        var earliest = Instant.distantFuture
        for datagram in datagrams.values where datagram.deadline < earliest { earliest = datagram.deadline }
        return earliest
    }

    private mutating func discard(_ key: ReassemblyKey) {
        if let d = datagrams.removeValue(forKey: key) { heldBytes -= d.heldBytes }
    }

    /// Evicts the oldest datagrams until `bytes` more fit under the limits; false if they never can.
    private mutating func makeRoom(for bytes: Int) -> Bool {
        guard bytes <= memoryLimit else { return false }
        while heldBytes + bytes > memoryLimit || datagrams.count >= maximumDatagrams {
            guard let oldest = datagrams.min(by: { $0.value.deadline < $1.value.deadline })?.key else { return false }
            discard(oldest)
        }
        return true
    }
}
