// QUICStream: one stream's send and receive halves (RFC 9000 §2–§4): ordered reassembly,
// final size, per-stream flow control both ways, retransmission ranges, RESET_STREAM and
// STOP_SENDING. A value owned by its connection; the connection enforces connection-level limits.
package import NIOCore

/// Stream IDs (RFC 9000 §2.1): bit 0 says who opened it, bit 1 whether it is unidirectional.
package enum QUICStreamID {
    package static func isClientInitiated(_ id: UInt64) -> Bool { id & 0x01 == 0 }
    package static func isUnidirectional(_ id: UInt64) -> Bool { id & 0x02 != 0 }
}

struct QUICStream {
    let id: UInt64

    // MARK: Send half
    /// Whether we may send on this stream (false for a peer's unidirectional stream).
    let hasSendSide: Bool
    /// Unacknowledged bytes from `sendBase` on (everything queued and not yet acknowledged in order).
    var sendBuffer = ByteBuffer()
    /// The stream offset of `sendBuffer`'s first byte.
    var sendBase: UInt64 = 0
    /// The next offset never sent.
    var sendNext: UInt64 = 0
    /// Ranges sent and lost, to send again (lowest first).
    var sendRetransmit: [Range<UInt64>] = []
    /// Acknowledged ranges above `sendBase`.
    var sendAcked: [Range<UInt64>] = []
    /// Whether the application finished writing; `finSent`/`finAcked` track the FIN bit.
    var finQueued = false
    var finSent = false
    var finAcked = false
    var finLost = false
    /// The peer's MAX_STREAM_DATA for this stream.
    var sendLimit: UInt64
    /// Set when we reset the stream: error code; nothing but RESET_STREAM is sent then.
    var resetCode: UInt64?
    var resetPending = false
    var resetAcked = false
    /// STREAM_DATA_BLOCKED already sent at this limit.
    var blockedSentAt: UInt64?

    // MARK: Receive half
    let hasReceiveSide: Bool
    /// Out-of-order data by offset.
    var receivePending: [UInt64: ByteBuffer] = [:]
    /// In-order data the application has not read yet.
    var receiveReadable = ByteBuffer()
    /// The offset up to which data is in order (delivered to `receiveReadable`).
    var receiveOffset: UInt64 = 0
    /// The highest offset seen (for connection flow control).
    var receiveHighest: UInt64 = 0
    var finalSize: UInt64?
    /// The limit we advertised (MAX_STREAM_DATA) and the window we keep open.
    var receiveLimit: UInt64
    let receiveWindow: UInt64
    var maxStreamDataPending = false
    /// Bytes the application has read.
    var consumed: UInt64 = 0
    /// The peer reset its half: error code.
    var peerResetCode: UInt64?
    /// We asked the peer to stop (STOP_SENDING), with this code.
    var stopSendingCode: UInt64?
    var stopSendingPending = false
    /// The application saw the end (FIN read or reset reported).
    var receiveFinished = false

    init(id: UInt64, hasSendSide: Bool, hasReceiveSide: Bool, sendLimit: UInt64, receiveWindow: UInt64) {
        self.id = id
        self.hasSendSide = hasSendSide
        self.hasReceiveSide = hasReceiveSide
        self.sendLimit = sendLimit
        self.receiveWindow = receiveWindow
        receiveLimit = receiveWindow
        if !hasSendSide { finAcked = true; finQueued = true; finSent = true }
        if !hasReceiveSide { receiveFinished = true }
    }

    /// Whether both halves are finished and the stream may be forgotten.
    var isDone: Bool {
        // All data acknowledged, not just the FIN: a FIN can be acknowledged while an earlier range
        // is still lost in flight, and forgetting the stream then would never resend that range.
        let sendDone = !hasSendSide || resetAcked || (finAcked && sendBuffer.readableBytes == 0)
        return sendDone && receiveFinished
    }

    // MARK: Send

    /// Bytes queued and not yet sent once.
    var unsentBytes: UInt64 { sendBase + UInt64(sendBuffer.readableBytes) - sendNext }

    /// Whether anything (data, retransmissions, FIN, reset) waits to be sent.
    var wantsToSend: Bool {
        if resetPending { return true }
        if resetCode != nil { return false }
        return !sendRetransmit.isEmpty || (unsentBytes > 0 && sendNext < sendLimit) || (finQueued && !finSent) || finLost
    }

    /// The bytes of `range` from the send buffer.
    func sendBytes(_ range: Range<UInt64>) -> ByteBuffer {
        let start = Int(range.lowerBound - sendBase)
        return sendBuffer.getSlice(at: sendBuffer.readerIndex + start, length: Int(range.upperBound - range.lowerBound)) ?? ByteBuffer()
    }

    /// Marks `[offset, offset+length)` acknowledged and frees the in-order prefix.
    mutating func acknowledge(offset: UInt64, length: Int, fin: Bool) {
        if fin { finAcked = true }
        guard length > 0 else { return }
        var range = offset..<(offset + UInt64(length))
        guard range.upperBound > sendBase else { return }
        range = max(range.lowerBound, sendBase)..<range.upperBound
        sendAcked.append(range)
        sendAcked.sort { $0.lowerBound < $1.lowerBound }
        var merged: [Range<UInt64>] = []
        for item in sendAcked {
            if let last = merged.last, item.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, item.upperBound)
            } else {
                merged.append(item)
            }
        }
        if let first = merged.first, first.lowerBound <= sendBase {
            let advance = Int(first.upperBound - sendBase)
            sendBuffer.moveReaderIndex(forwardBy: min(advance, sendBuffer.readableBytes))
            sendBase = first.upperBound
            merged.removeFirst()
            // Reclaim acknowledged space only once it is at least as large as what is still held
            // (one move per doubling): a move of the whole unacknowledged buffer per ACK made
            // sending quadratic in the stream window (5 MB/s in a release build).
            if sendBuffer.readerIndex >= max(sendBuffer.readableBytes, 64 * 1024) { sendBuffer.discardReadBytes() }
        }
        sendAcked = merged
        sendRetransmit = sendRetransmit.compactMap { $0.upperBound <= sendBase ? nil : max($0.lowerBound, sendBase)..<$0.upperBound }
    }

    /// Puts a lost range back for retransmission (unless acknowledged since).
    mutating func lose(offset: UInt64, length: Int, fin: Bool) {
        if fin, !finAcked { finLost = true }
        // Already acknowledged in order (an ACK can arrive for a copy after the loss was declared).
        guard length > 0, resetCode == nil, offset + UInt64(length) > sendBase else { return }
        let range = max(offset, sendBase)..<(offset + UInt64(length))
        if sendAcked.contains(where: { $0.lowerBound <= range.lowerBound && range.upperBound <= $0.upperBound }) { return }
        sendRetransmit.append(range)
        sendRetransmit.sort { $0.lowerBound < $1.lowerBound }
    }

    // MARK: Receive

    /// Takes STREAM data. Returns how many new bytes raised `receiveHighest` (connection flow control).
    /// Throws FLOW_CONTROL_ERROR / FINAL_SIZE_ERROR per RFC 9000 §4.1, §4.5.
    mutating func receive(offset: UInt64, data: ByteBuffer, fin: Bool) throws(QUICConnectionError) -> UInt64 {
        let end = offset + UInt64(data.readableBytes)
        if let finalSize {
            guard end <= finalSize, !fin || end == finalSize else {
                throw .transport(.finalSizeError, frameType: 0x08, "final size changed")
            }
        }
        if fin {
            guard end >= receiveHighest else { throw .transport(.finalSizeError, frameType: 0x08, "final size below received data") }
            finalSize = end
        }
        guard end <= receiveLimit else { throw .transport(.flowControlError, frameType: 0x08, "stream flow control exceeded") }
        let raised = end > receiveHighest ? end - receiveHighest : 0
        receiveHighest = max(receiveHighest, end)
        guard peerResetCode == nil, stopSendingCode == nil else { return raised }  // discard: reset or not wanted
        if end > receiveOffset, data.readableBytes > 0 {
            var chunk = data
            if offset < receiveOffset { chunk.moveReaderIndex(forwardBy: Int(receiveOffset - offset)) }
            let start = max(offset, receiveOffset)
            if (receivePending[start]?.readableBytes ?? -1) < chunk.readableBytes { receivePending[start] = chunk }
            deliverInOrder()
        }
        return raised
    }

    private mutating func deliverInOrder() {
        while true {
            guard let (start, chunk) = receivePending.first(where: { $0.key <= receiveOffset }) else { return }
            receivePending[start] = nil
            let chunkEnd = start + UInt64(chunk.readableBytes)
            guard chunkEnd > receiveOffset else { continue }
            var tail = chunk
            tail.moveReaderIndex(forwardBy: Int(receiveOffset - start))
            receiveReadable.writeBuffer(&tail)
            receiveOffset = chunkEnd
        }
    }

    /// Whether the application has reached the end of the stream (all data up to the FIN read).
    var isAtEnd: Bool { finalSize.map { consumed >= $0 } ?? false }

    /// Reads up to `maxBytes` in-order bytes and opens the window when half of it is used (§4.2).
    mutating func read(maxBytes: Int) -> ByteBuffer? {
        guard receiveReadable.readableBytes > 0 else { return nil }
        let slice = receiveReadable.readSlice(length: min(maxBytes, receiveReadable.readableBytes))
        // The slice shares the storage, so a discard here would copy all that is still unread on
        // every read; reclaim only once the read part is at least as large as the rest.
        if receiveReadable.readerIndex >= max(receiveReadable.readableBytes, 64 * 1024) { receiveReadable.discardReadBytes() }
        consumed += UInt64(slice?.readableBytes ?? 0)
        if finalSize == nil, receiveLimit - consumed < receiveWindow / 2 {
            receiveLimit = consumed + receiveWindow
            maxStreamDataPending = true
        }
        return slice
    }
}
