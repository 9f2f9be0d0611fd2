// QUICConnection+Streams: the application's stream API and the connection-level side of
// streams — stream limits (MAX_STREAMS, RFC 9000 §4.6), connection flow control (MAX_DATA,
// §4.1), and the STREAM / RESET_STREAM / STOP_SENDING / MAX_* frames in both directions.
package import NIOCore

/// Why a stream call was refused; the connection itself is unaffected.
package enum QUICStreamError: Error, Equatable, Sendable {
    /// No such stream (never opened, or finished and forgotten).
    case unknownStream(UInt64)
    /// The stream has no send half here (a peer's unidirectional stream), or it is finished/reset.
    case notWritable(UInt64)
    /// The connection is not established or is closing.
    case notConnected
}

extension QUICConnection {
    // MARK: Application API

    /// Opens a stream of ours; nil while the peer's MAX_STREAMS allows no more (RFC 9000 §4.6).
    package func openStream(bidirectional: Bool) -> UInt64? {
        guard state == .established else { return nil }
        let opened = bidirectional ? streamLimits.openedBidi : streamLimits.openedUni
        let limit = bidirectional ? streamLimits.peerMaxBidi : streamLimits.peerMaxUni
        guard opened < limit else { return nil }
        let id = opened << 2 | (role == .server ? 0x01 : 0) | (bidirectional ? 0 : 0x02)
        if bidirectional { streamLimits.openedBidi += 1 } else { streamLimits.openedUni += 1 }
        streams[id] = makeStream(id: id)
        return id
    }

    /// Queues `data` (and FIN when `fin`) on a stream. Data is buffered without limit; use
    /// `bufferedBytes(stream:)` for back-pressure.
    package func writeStream(_ id: UInt64, _ data: ByteBuffer, fin: Bool = false) throws(QUICStreamError) {
        guard state == .established else { throw .notConnected }
        guard var stream = streams[id] else { throw .unknownStream(id) }
        guard stream.hasSendSide, !stream.finQueued, stream.resetCode == nil else { throw .notWritable(id) }
        var data = data
        stream.sendBuffer.writeBuffer(&data)
        if fin { stream.finQueued = true }
        streams[id] = stream
    }

    /// Bytes written to a stream and not yet acknowledged.
    package func bufferedBytes(stream id: UInt64) -> Int { streams[id]?.sendBuffer.readableBytes ?? 0 }

    /// Reads up to `maxBytes` in-order bytes of a stream; nil when none are ready.
    package func readStream(_ id: UInt64, maxBytes: Int = .max) -> ByteBuffer? {
        guard var stream = streams[id] else { return nil }
        let data = stream.read(maxBytes: maxBytes)
        if let data {
            connectionFlow.consumed += UInt64(data.readableBytes)
            // §4.2: open the connection window when half of it is used.
            if connectionFlow.localMax - connectionFlow.consumed < configuration.initialMaxData / 2 {
                connectionFlow.localMax = connectionFlow.consumed + configuration.initialMaxData
                connectionFlow.maxDataPending = true
            }
        }
        if stream.isAtEnd, stream.receiveReadable.readableBytes == 0 { stream.receiveFinished = true }
        streams[id] = stream
        readableNotified.remove(id)
        forgetIfDone(id)
        return data
    }

    /// Whether the peer finished the stream and everything was read.
    package func isStreamFinished(_ id: UInt64) -> Bool {
        guard let stream = streams[id] else { return true }
        return stream.isAtEnd && stream.receiveReadable.readableBytes == 0
    }

    /// Abandons our send half with RESET_STREAM (RFC 9000 §3.1).
    package func resetStream(_ id: UInt64, errorCode: UInt64) {
        guard var stream = streams[id], stream.hasSendSide, stream.resetCode == nil, !stream.finAcked else { return }
        stream.resetCode = errorCode
        stream.resetPending = true
        stream.sendRetransmit.removeAll()
        streams[id] = stream
    }

    /// Asks the peer to stop sending (STOP_SENDING, RFC 9000 §3.5); later data is discarded.
    package func stopSending(_ id: UInt64, errorCode: UInt64) {
        guard var stream = streams[id], stream.hasReceiveSide, stream.finalSize == nil, stream.stopSendingCode == nil else { return }
        stream.stopSendingCode = errorCode
        stream.stopSendingPending = true
        stream.receiveReadable.clear()
        stream.receivePending.removeAll()
        streams[id] = stream
    }

    /// The TLS exporter (RFC 8446 §7.5) of this connection's handshake; nil before it completed.
    package func exportKeyingMaterial(label: [UInt8], context: [UInt8], length: Int) -> [UInt8]? {
        tls.exportKeyingMaterial(label: label, context: context, length: length)
    }

    // MARK: Internals

    func makeStream(id: UInt64) -> QUICStream {
        let local = QUICStreamID.isClientInitiated(id) == (role == .client)
        let uni = QUICStreamID.isUnidirectional(id)
        let peer = peerParameters
        // The peer's limit for data we send: bidi_remote for streams we opened, bidi_local for its own (§18.2).
        let sendLimit: UInt64 = uni ? (peer?.initialMaxStreamDataUni ?? 0)
            : local ? (peer?.initialMaxStreamDataBidiRemote ?? 0) : (peer?.initialMaxStreamDataBidiLocal ?? 0)
        return QUICStream(id: id, hasSendSide: !uni || local, hasReceiveSide: !uni || !local,
                          sendLimit: sendLimit, receiveWindow: configuration.initialMaxStreamData)
    }

    /// The stream a peer's frame refers to, opening peer streams up to it (§3.2); nil when the
    /// stream existed and is finished (late frames are ignored). Throws STREAM_STATE_ERROR /
    /// STREAM_LIMIT_ERROR as §19.8 and §4.6 say.
    func peerStream(_ id: UInt64, frameType: UInt64, sending: Bool) throws(QUICConnectionError) -> UInt64? {
        let local = QUICStreamID.isClientInitiated(id) == (role == .client)
        let uni = QUICStreamID.isUnidirectional(id)
        let index = id >> 2
        if local {
            let opened = uni ? streamLimits.openedUni : streamLimits.openedBidi
            guard index < opened else { throw .transport(.streamStateError, frameType: frameType, "frame for an unopened local stream") }
            // The peer cannot send on our unidirectional stream.
            if uni, sending { throw .transport(.streamStateError, frameType: frameType, "data on a send-only stream") }
            return streams[id] == nil ? nil : id
        }
        if uni, !sending, frameType == 0x11 || frameType == 0x05 {
            // MAX_STREAM_DATA / STOP_SENDING for a peer's unidirectional stream: we never send on it.
            throw .transport(.streamStateError, frameType: frameType, "frame for a receive-only stream")
        }
        let limit = uni ? streamLimits.localMaxUni : streamLimits.localMaxBidi
        guard index < limit else { throw .transport(.streamLimitError, frameType: frameType, "stream limit exceeded") }
        var opened = uni ? streamLimits.peerOpenedUni : streamLimits.peerOpenedBidi
        if index >= opened {
            while opened <= index {
                let newID = opened << 2 | (id & 0x03)
                streams[newID] = makeStream(id: newID)
                events.append(.streamOpened(newID))
                opened += 1
            }
            if uni { streamLimits.peerOpenedUni = opened } else { streamLimits.peerOpenedBidi = opened }
        }
        return streams[id] == nil ? nil : id
    }

    func handleStreamFrame(_ frame: QUICFrame) throws(QUICConnectionError) {
        switch frame {
        case .stream(let id, let offset, let data, let fin):
            guard let id = try peerStream(id, frameType: 0x08, sending: true), var stream = streams[id] else { return }
            let raised = try stream.receive(offset: offset, data: data, fin: fin)
            streams[id] = stream
            try accountReceived(raised)
            notifyReadable(id)
        case .resetStream(let id, let code, let finalSize):
            guard let id = try peerStream(id, frameType: 0x04, sending: true), var stream = streams[id] else { return }
            if let known = stream.finalSize, known != finalSize { throw .transport(.finalSizeError, frameType: 0x04, "final size changed") }
            guard finalSize >= stream.receiveHighest, finalSize <= stream.receiveLimit else {
                throw .transport(finalSize > stream.receiveLimit ? .flowControlError : .finalSizeError, frameType: 0x04, "bad final size")
            }
            let raised = finalSize - stream.receiveHighest
            stream.receiveHighest = finalSize
            stream.finalSize = finalSize
            if stream.peerResetCode == nil {
                stream.peerResetCode = code
                stream.receiveReadable.clear()
                stream.receivePending.removeAll()
                stream.receiveFinished = true
                events.append(.streamReset(id, errorCode: code))
            }
            // Data never read still counts as consumed for the connection window (§4.5).
            connectionFlow.consumed += finalSize - min(finalSize, stream.consumed)
            stream.consumed = finalSize
            streams[id] = stream
            try accountReceived(raised)
            forgetIfDone(id)
        case .stopSending(let id, let code):
            guard let id = try peerStream(id, frameType: 0x05, sending: false), streams[id] != nil else { return }
            if streams[id]?.resetCode == nil { events.append(.streamStopSending(id, errorCode: code)) }
            // §3.5: answer with RESET_STREAM carrying the same code.
            resetStream(id, errorCode: code)
        case .maxStreamData(let id, let maximum):
            guard let id = try peerStream(id, frameType: 0x11, sending: false), var stream = streams[id] else { return }
            stream.sendLimit = max(stream.sendLimit, maximum)
            streams[id] = stream
        case .maxData(let maximum): connectionFlow.peerMax = max(connectionFlow.peerMax, maximum)
        case .maxStreams(let bidirectional, let maximum):
            if bidirectional { streamLimits.peerMaxBidi = max(streamLimits.peerMaxBidi, maximum) }
            else { streamLimits.peerMaxUni = max(streamLimits.peerMaxUni, maximum) }
        case .streamDataBlocked(let id, _):
            _ = try peerStream(id, frameType: 0x15, sending: true)
        default: break
        }
    }

    private func accountReceived(_ raised: UInt64) throws(QUICConnectionError) {
        connectionFlow.received += raised
        guard connectionFlow.received <= connectionFlow.localMax else {
            throw .transport(.flowControlError, frameType: 0x08, "connection flow control exceeded")
        }
    }

    private func notifyReadable(_ id: UInt64) {
        guard let stream = streams[id], stream.receiveReadable.readableBytes > 0 || stream.isAtEnd else { return }
        if readableNotified.insert(id).inserted { events.append(.streamReadable(id)) }
    }

    /// Forgets a finished stream; a peer's stream frees a slot, announced with MAX_STREAMS (§4.6).
    func forgetIfDone(_ id: UInt64) {
        guard let stream = streams[id], stream.isDone else { return }
        streams[id] = nil
        readableNotified.remove(id)
        let local = QUICStreamID.isClientInitiated(id) == (role == .client)
        guard !local else { return }
        if QUICStreamID.isUnidirectional(id) {
            streamLimits.localMaxUni += 1
            streamLimits.maxStreamsUniPending = true
        } else {
            streamLimits.localMaxBidi += 1
            streamLimits.maxStreamsBidiPending = true
        }
    }

    func applyPeerStreamLimits(_ parameters: QUICTransportParameters) {
        streamLimits.peerMaxBidi = parameters.initialMaxStreamsBidi
        streamLimits.peerMaxUni = parameters.initialMaxStreamsUni
        connectionFlow.peerMax = parameters.initialMaxData
    }

    /// Whether stream-level or connection-level control frames or stream data wait.
    var hasStreamWork: Bool {
        connectionFlow.maxDataPending || streamLimits.maxStreamsBidiPending || streamLimits.maxStreamsUniPending
            || streams.values.contains { $0.wantsToSend || $0.maxStreamDataPending || $0.stopSendingPending }
    }

    /// Appends stream control frames and STREAM data to `payload` within `budget` bytes.
    /// `allowData` is false when the congestion window is full (control frames still go).
    func writeStreamFrames(into payload: inout ByteBuffer, budget: Int, allowData: Bool, frames: inout [QUICRetransmittable]) -> Bool {
        var elicits = false
        func room() -> Int { budget - payload.readableBytes }
        if connectionFlow.maxDataPending, room() >= 9 {
            connectionFlow.maxDataPending = false
            QUICFrame.maxData(connectionFlow.localMax).write(to: &payload)
            frames.append(.maxData)
            elicits = true
        }
        if streamLimits.maxStreamsBidiPending, room() >= 9 {
            streamLimits.maxStreamsBidiPending = false
            QUICFrame.maxStreams(bidirectional: true, maximum: streamLimits.localMaxBidi).write(to: &payload)
            frames.append(.maxStreams(bidirectional: true))
            elicits = true
        }
        if streamLimits.maxStreamsUniPending, room() >= 9 {
            streamLimits.maxStreamsUniPending = false
            QUICFrame.maxStreams(bidirectional: false, maximum: streamLimits.localMaxUni).write(to: &payload)
            frames.append(.maxStreams(bidirectional: false))
            elicits = true
        }
        let ids = streams.keys.sorted()
        for id in ids where room() >= 25 {
            guard var stream = streams[id] else { continue }
            if stream.maxStreamDataPending {
                stream.maxStreamDataPending = false
                QUICFrame.maxStreamData(streamID: id, maximum: stream.receiveLimit).write(to: &payload)
                frames.append(.maxStreamData(streamID: id))
                elicits = true
            }
            if stream.stopSendingPending, let code = stream.stopSendingCode {
                stream.stopSendingPending = false
                QUICFrame.stopSending(streamID: id, errorCode: code).write(to: &payload)
                frames.append(.stopSending(streamID: id))
                elicits = true
            }
            if stream.resetPending, let code = stream.resetCode {
                stream.resetPending = false
                QUICFrame.resetStream(streamID: id, errorCode: code, finalSize: stream.sendNext).write(to: &payload)
                frames.append(.resetStream(streamID: id))
                elicits = true
            }
            streams[id] = stream
        }
        guard allowData else { return elicits }
        // Round-robin from where the last packet stopped, so concurrent streams share the path.
        let start = ids.firstIndex { $0 > lastStreamServed } ?? 0
        for offset in 0..<ids.count where room() >= 32 {
            let id = ids[(start + offset) % ids.count]
            guard var stream = streams[id], stream.resetCode == nil, stream.hasSendSide else { continue }
            var wrote = false
            // Header: type 1 + ID ≤ 8 + offset ≤ 8 + length 2.
            while room() >= 32 {
                let space = room() - 19
                var range: Range<UInt64>
                var isNew = false
                if let lost = stream.sendRetransmit.first {
                    range = lost.lowerBound..<min(lost.upperBound, lost.lowerBound + UInt64(space))
                    if range.upperBound == lost.upperBound { stream.sendRetransmit.removeFirst() }
                    else { stream.sendRetransmit[0] = range.upperBound..<lost.upperBound }
                } else {
                    // New data: within the stream's and the connection's limits (§4.1).
                    let connectionRoom = connectionFlow.peerMax > connectionFlow.sent ? connectionFlow.peerMax - connectionFlow.sent : 0
                    let streamRoom = stream.sendLimit > stream.sendNext ? stream.sendLimit - stream.sendNext : 0
                    let count = min(stream.unsentBytes, UInt64(space), connectionRoom, streamRoom)
                    let allSent = stream.unsentBytes == 0
                    let finDue = stream.finQueued && (!stream.finSent || stream.finLost) && allSent
                    if count == 0 && !finDue {
                        if stream.unsentBytes > 0, connectionRoom == 0, connectionFlow.blockedSentAt != connectionFlow.peerMax {
                            connectionFlow.blockedSentAt = connectionFlow.peerMax
                            QUICFrame.dataBlocked(limit: connectionFlow.peerMax).write(to: &payload)
                            elicits = true
                        } else if stream.unsentBytes > 0, streamRoom == 0, stream.blockedSentAt != stream.sendLimit {
                            stream.blockedSentAt = stream.sendLimit
                            QUICFrame.streamDataBlocked(streamID: id, limit: stream.sendLimit).write(to: &payload)
                            elicits = true
                        }
                        break
                    }
                    if finDue && count == 0 {
                        // A lost FIN with no data left: resend it at the final offset.
                        range = stream.sendNext..<stream.sendNext
                    } else {
                        range = stream.sendNext..<(stream.sendNext + count)
                        stream.sendNext += count
                        connectionFlow.sent += count
                        isNew = true
                    }
                }
                let fin = stream.finQueued && range.upperBound == stream.sendBase + UInt64(stream.sendBuffer.readableBytes) && stream.unsentBytes == 0
                let data = stream.sendBytes(range)
                QUICFrame.stream(streamID: id, offset: range.lowerBound, data: data, fin: fin).write(to: &payload)
                if fin { stream.finSent = true; stream.finLost = false }
                frames.append(.stream(QUICSentStreamRange(streamID: id, offset: range.lowerBound, length: data.readableBytes, fin: fin)))
                elicits = true
                wrote = true
                _ = isNew
                if fin { break }
            }
            streams[id] = stream
            if wrote { lastStreamServed = id }
        }
        return elicits
    }

    /// A packet carrying stream frames was acknowledged or lost.
    func streamFrameAcked(_ frame: QUICRetransmittable) {
        switch frame {
        case .stream(let range):
            guard var stream = streams[range.streamID] else { return }
            stream.acknowledge(offset: range.offset, length: range.length, fin: range.fin)
            streams[range.streamID] = stream
            forgetIfDone(range.streamID)
        case .resetStream(let id):
            guard var stream = streams[id] else { return }
            stream.resetAcked = true
            streams[id] = stream
            forgetIfDone(id)
        default: break
        }
    }

    func streamFrameLost(_ frame: QUICRetransmittable) {
        switch frame {
        case .stream(let range):
            guard var stream = streams[range.streamID] else { return }
            stream.lose(offset: range.offset, length: range.length, fin: range.fin)
            streams[range.streamID] = stream
        case .resetStream(let id):
            if let acked = streams[id]?.resetAcked, !acked { streams[id]?.resetPending = true }
        case .stopSending(let id): if streams[id]?.finalSize == nil { streams[id]?.stopSendingPending = true }
        case .maxData: connectionFlow.maxDataPending = true
        case .maxStreamData(let id): if streams[id]?.finalSize == nil { streams[id]?.maxStreamDataPending = true }
        case .maxStreams(let bidirectional):
            if bidirectional { streamLimits.maxStreamsBidiPending = true } else { streamLimits.maxStreamsUniPending = true }
        default: break
        }
    }
}

/// Stream counts both ways (RFC 9000 §4.6).
struct QUICStreamLimits {
    var openedBidi: UInt64 = 0, openedUni: UInt64 = 0
    var peerMaxBidi: UInt64 = 0, peerMaxUni: UInt64 = 0
    var peerOpenedBidi: UInt64 = 0, peerOpenedUni: UInt64 = 0
    var localMaxBidi: UInt64, localMaxUni: UInt64
    var maxStreamsBidiPending = false, maxStreamsUniPending = false
}

/// Connection-level flow control both ways (RFC 9000 §4.1).
struct QUICConnectionFlow {
    /// The peer's MAX_DATA and what we sent against it.
    var peerMax: UInt64 = 0
    var sent: UInt64 = 0
    var blockedSentAt: UInt64?
    /// Our MAX_DATA, what the peer used of it, and what the application read.
    var localMax: UInt64
    var received: UInt64 = 0
    var consumed: UInt64 = 0
    var maxDataPending = false
}
