package import NetstackWire

/// Received data: the in-order bytes waiting for the owner, and out-of-order pieces waiting for a hole
/// to fill (RFC 9293 §3.10.7.4 "seventh, process the segment text"; RFC 2018 for what they report).
///
/// Payloads are kept as the slices the segments arrived in (no copy). Pieces are sorted by sequence
/// number and never overlap: overlapping arrivals are trimmed to the bytes not yet held.
package struct TCPReceiveQueue: Sendable {
    /// One held range `[sequenceNumber, sequenceNumber + data.readableBytes)` above RCV.NXT.
    struct Piece: Sendable {
        var sequenceNumber: SeqNumber
        var data: PacketBuffer
        var end: SeqNumber { sequenceNumber + data.readableBytes }
    }

    /// In-order bytes the owner has not read yet.
    var ready = RingQueue<PacketBuffer>(initialCapacity: 16)
    package private(set) var readyByteCount = 0
    /// Out-of-order pieces, sorted, disjoint.
    var pieces: [Piece] = []
    package private(set) var outOfOrderByteCount = 0
    /// Sequence numbers of the latest out-of-order arrivals, newest first, so the first SACK block reports
    /// the most recent one and the next blocks repeat recent ones (RFC 2018 §4).
    var recentArrivals = InlineArray<4, SeqNumber>(repeating: SeqNumber(0))
    var recentArrivalCount = 0

    package init() {
        pieces.reserveCapacity(16)
    }

    /// Takes bytes starting at `sequenceNumber` (not below `receiveNext`; the caller trimmed the segment
    /// to the window). Advances `receiveNext` over everything now contiguous.
    /// Returns true if the arrival was out of order or filled (part of) a hole: both call for an
    /// immediate ACK (RFC 5681 §4.2).
    mutating func insert(_ data: PacketBuffer, at sequenceNumber: SeqNumber, receiveNext: inout SeqNumber) -> Bool {
        guard data.readableBytes > 0 else { return false }
        if sequenceNumber == receiveNext {
            appendReady(data)
            receiveNext = sequenceNumber + data.readableBytes
            let hadPieces = !pieces.isEmpty
            drainContiguous(receiveNext: &receiveNext)
            return hadPieces
        }
        insertOutOfOrder(data, at: sequenceNumber)
        noteArrival(sequenceNumber)
        return true
    }

    mutating func appendReady(_ data: PacketBuffer) {
        ready.append(data)
        readyByteCount += data.readableBytes
    }

    /// Moves pieces that now start at or below `receiveNext` into the ready queue.
    mutating func drainContiguous(receiveNext: inout SeqNumber) {
        var consumed = 0
        while consumed < pieces.count, pieces[consumed].sequenceNumber <= receiveNext {
            var piece = pieces[consumed]
            let end = piece.end
            outOfOrderByteCount -= piece.data.readableBytes
            if end > receiveNext {
                piece.data.moveReaderIndex(forwardBy: Int(receiveNext - piece.sequenceNumber))
                appendReady(piece.data)
                receiveNext = end
            }
            consumed += 1
        }
        if consumed > 0 { pieces.removeFirst(consumed) }
    }

    /// Inserts the bytes of `[start, start + count)` not already held, as slices of `data`.
    mutating func insertOutOfOrder(_ data: PacketBuffer, at start: SeqNumber) {
        let end = start + data.readableBytes
        var cursor = start
        var index = 0
        // Skip pieces wholly before the new range.
        while index < pieces.count, pieces[index].end <= cursor { index += 1 }
        while cursor < end {
            if index < pieces.count, pieces[index].sequenceNumber <= cursor {
                // Already held from `cursor`: jump past the piece.
                cursor = laterSeq(cursor, pieces[index].end)
                index += 1
                continue
            }
            // A gap from `cursor` to the next piece (or to `end`).
            let gapEnd = index < pieces.count ? earlierSeq(end, pieces[index].sequenceNumber) : end
            let offset = Int(cursor - start)
            let length = Int(gapEnd - cursor)
            if length > 0, let slice = data.getSlice(at: data.readerIndex + offset, length: length) {
                pieces.insert(Piece(sequenceNumber: cursor, data: slice), at: index)
                outOfOrderByteCount += length
                index += 1
            }
            cursor = gapEnd
        }
    }

    mutating func noteArrival(_ sequenceNumber: SeqNumber) {
        var index = recentArrivalCount < 4 ? recentArrivalCount : 3
        while index > 0 {
            recentArrivals[index] = recentArrivals[index - 1]
            index -= 1
        }
        recentArrivals[0] = sequenceNumber
        recentArrivalCount = min(recentArrivalCount + 1, 4)
    }

    /// Takes up to `max` in-order bytes (nil when none are ready).
    package mutating func read(max: Int) -> PacketBuffer? {
        guard max > 0, var head = ready.first else { return nil }
        if head.readableBytes <= max {
            ready.removeFirst()
            readyByteCount -= head.readableBytes
            return head
        }
        let slice = head.readSlice(length: max)
        ready.first = head
        readyByteCount -= max
        return slice
    }

    /// Bytes held in total (counted against the receive window).
    package var bufferedByteCount: Int { readyByteCount + outOfOrderByteCount }

    /// The SACK blocks to report (RFC 2018 §4): the block holding the most recent arrival first, then
    /// blocks of other recent arrivals, then the highest remaining blocks; at most `limit`.
    func sackBlocks(limit: Int) -> TCPSACKBlocks {
        var blocks = TCPSACKBlocks()
        guard !pieces.isEmpty, limit > 0 else { return blocks }
        for i in 0..<recentArrivalCount where blocks.count < limit {
            if let block = block(containing: recentArrivals[i]), !blocks.contains(block) { blocks.append(block) }
        }
        var index = pieces.count - 1
        while blocks.count < limit, index >= 0 {
            if let block = block(containing: pieces[index].sequenceNumber), !blocks.contains(block) {
                blocks.append(block)
            }
            index -= 1
        }
        return blocks
    }

    /// The contiguous run of pieces containing `sequenceNumber`, if any.
    func block(containing sequenceNumber: SeqNumber) -> TCPSACKBlock? {
        guard let index = pieces.firstIndex(where: { sequenceNumber.isIn($0.sequenceNumber, $0.end) }) else { return nil }
        var low = index
        while low > 0, pieces[low - 1].end == pieces[low].sequenceNumber { low -= 1 }
        var high = index
        while high + 1 < pieces.count, pieces[high].end == pieces[high + 1].sequenceNumber { high += 1 }
        return TCPSACKBlock(start: pieces[low].sequenceNumber, end: pieces[high].end)
    }
}
