package import NetstackWire

// What to send and when, in `transmit(into:now:)`'s order:
// 1. Fire due timers: TIME-WAIT expiry, retransmission timeout (RFC 6298 §5), persist (zero-window
//    probe), keepalive, delayed ACK.
// 2. A pending RST.
// 3. SYN or SYN-ACK.
// 4. Data: retransmissions chosen by RFC 6675 NextSeg (lost holes first), then new data, both gated by
//    cwnd − pipe; new data also by the peer's window, sender-side SWS avoidance and (if on) Nagle.
//    The FIN rides on the last data segment or goes alone.
// 5. Probes (window or keepalive) and, if nothing above carried it, a pure ACK.

extension TCPConnection {
    /// Appends the segments to send now and returns when to call again (nil: only after new input).
    /// Every emitted segment but the first SYN carries the current ACK and window.
    package mutating func transmit(into segments: inout [TCPSegment], now: Instant) -> Instant? {
        lastNow = max(lastNow, now)
        fireTimers(now: now)
        if let reset = pendingReset {
            segments.append(reset)
            pendingReset = nil
        }
        switch state {
        case .closed, .listen:
            return nil
        case .synSent, .synReceived:
            if synPending { emitSYN(into: &segments, now: now) }
        default:
            break
        }
        // SACK blocks are computed once per call: nothing below changes what we hold.
        let sackBlocks = sackEnabled ? receiveQueue.sackBlocks(limit: timestampsEnabled ? 3 : 4) : TCPSACKBlocks()
        if state.isSynchronized, sendUnacknowledged != initialSendSequence {
            let sentBefore = sendNext
            sendData(into: &segments, sackBlocks: sackBlocks, now: now)
            if probePending {
                probePending = false
                // RFC 8985 §7.3: new data if the windows allowed it (sent just above), else the last segment.
                if sendNext != sentBefore {
                    probeEnd = sendNext
                } else {
                    emitTailLossProbe(into: &segments, sackBlocks: sackBlocks, now: now)
                }
            }
            armProbeTimer(now: now)
            if windowProbePending || keepaliveProbePending {
                // Linux's probe: an old sequence number the peer must answer with an ACK (RFC 9293 §3.8.4).
                windowProbePending = false
                keepaliveProbePending = false
                segments.append(makeSegment(sequenceNumber: sendUnacknowledged - 1, flags: .ack,
                                            sackBlocks: sackBlocks, now: now))
            }
        }
        if ackPending, state.isSynchronized, !(state == .synReceived && synPending) {
            segments.append(makeSegment(sequenceNumber: sendNext, flags: .ack, sackBlocks: sackBlocks, now: now))
        }
        return nextDeadline
    }

    /// The earliest armed timer.
    package var nextDeadline: Instant? {
        // No array literal here: this runs after every segment batch and must not allocate.
        var earliest = retransmitDeadline
        @inline(__always) func consider(_ deadline: Instant?) {
            if let deadline, earliest.map({ deadline < $0 }) ?? true { earliest = deadline }
        }
        consider(delayedAckDeadline)
        consider(persistDeadline)
        consider(keepaliveDeadline)
        consider(timeWaitDeadline)
        consider(probeDeadline)
        return earliest
    }

    // MARK: Timers

    mutating func fireTimers(now: Instant) {
        if let deadline = timeWaitDeadline, now >= deadline {
            enterClosed(.normal, events: .closed)
            return
        }
        if let deadline = retransmitDeadline, now >= deadline {
            retransmitTimeout(now: now)
            if state == .closed { return }
        }
        if let deadline = probeDeadline, now >= deadline {
            probeDeadline = nil
            if recovery == .none, flightSize > 0, probeEnd == nil { probePending = true }
        }
        if let deadline = persistDeadline, now >= deadline {
            windowProbePending = true
            persistBackoff += 1
            persistDeadline = now + persistInterval
        }
        if let deadline = keepaliveDeadline, now >= deadline, let keepalive = configuration.keepalive {
            let probing = state == .established || state == .closeWait || state == .finWait2
            if probing, flightSize == 0 {
                if keepaliveProbesSent >= keepalive.count {
                    pendingReset = TCPSegment(sequenceNumber: sendNext, flags: [.rst])
                    enterClosed(.timedOut, events: .timedOut)
                    return
                }
                keepaliveProbePending = true
                keepaliveProbesSent += 1
                keepaliveDeadline = now + keepalive.interval
            } else {
                keepaliveDeadline = now + keepalive.idle
            }
        }
        if let deadline = delayedAckDeadline, now >= deadline {
            ackPending = true
            delayedAckDeadline = nil
        }
    }

    /// The persist timer: the RTO backed off per unanswered probe, at most the maximum RTO (Linux).
    var persistInterval: Duration {
        var interval = rttEstimator.retransmitTimeout
        for _ in 0..<min(persistBackoff, 16) where interval < configuration.maximumRetransmitTimeout { interval = interval * 2 }
        return min(interval, configuration.maximumRetransmitTimeout)
    }

    /// RFC 6298 §5.4–5.6 and RFC 5681 §3.1: back off, shrink cwnd to one segment and resend from SND.UNA.
    mutating func retransmitTimeout(now: Instant) {
        retransmitDeadline = nil
        let handshaking = sendUnacknowledged == initialSendSequence
        guard flightSize > 0 || handshaking else { return }
        retransmitCount += 1
        let limit = handshaking ? configuration.maximumSYNRetransmissions : configuration.maximumRetransmissions
        if retransmitCount > limit {
            if state.isSynchronized { pendingReset = TCPSegment(sequenceNumber: sendNext, flags: [.rst]) }
            enterClosed(.timedOut, events: .timedOut)
            return
        }
        rttEstimator.backOff()
        rttProbe = nil  // Karn: nothing retransmitted is timed
        probeDeadline = nil
        probePending = false
        probeEnd = nil
        probeLossBoundary = nil
        if handshaking {
            synPending = true
        } else {
            dataTimeouts += 1
            if recovery != .timeout {
                if congestionBeforeReduction == nil { rememberCongestionForUndo() }
                // A second timeout of the same data keeps ssthresh (RFC 5681 §3.1 after eq. 4).
                congestion.onRetransmitTimeout(flightSize: flightSize, maximumSegmentSize: sendMSS)
            }
            recovery = .timeout
            recoverPoint = sendNext
            retransmitNext = sendUnacknowledged
            retransmissionLog.removeAll()
            // SACKed data is skipped on the first timeout (as Linux does, it is usually still held), but
            // RFC 2018 §8 lets a receiver renege: a second timeout in a row forgets the scoreboard and
            // resends everything not cumulatively acknowledged.
            if retransmitCount > 1 { scoreboard.removeAll() }
            duplicateAcks = 0
        }
        retransmitDeadline = now + rttEstimator.retransmitTimeout
    }

    // MARK: Segments

    /// Our SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), with the options RFC 7323/2018 allow.
    mutating func emitSYN(into segments: inout [TCPSegment], now: Instant) {
        synPending = false
        let active = state == .synSent
        var options = TCPOptions(maximumSegmentSize: UInt16(clamping: configuration.maximumSegmentSize))
        if active {
            if configuration.windowScaling { options.windowScale = receiveWindowScale }
            options.sackPermitted = configuration.selectiveAcknowledgments
            if configuration.timestamps { options.timestamp = TCPTimestampOption(value: timestampValue(now), echoReply: 0) }
        } else {
            if windowScalingEnabled { options.windowScale = receiveWindowScale }
            options.sackPermitted = sackEnabled
            if timestampsEnabled {
                options.timestamp = TCPTimestampOption(value: timestampValue(now), echoReply: timestampRecent)
            }
        }
        // The window of a SYN is never scaled (RFC 7323 §2.2).
        let window = min(receiveWindowAvailable, 65535)
        var segment = TCPSegment(sequenceNumber: initialSendSequence, flags: active ? .syn : [.syn, .ack],
                                 window: UInt16(window), options: options)
        if !active {
            segment.acknowledgmentNumber = receiveNext
            receiveEdge = laterSeq(receiveEdge, receiveNext + window)
            lastAcknowledgmentSent = receiveNext
            ackPending = false
        }
        segments.append(segment)
        if sendNext == initialSendSequence { sendNext = initialSendSequence + 1 }
        if retransmitCount == 0, rttProbe == nil { rttProbe = (initialSendSequence, now) }
        if retransmitDeadline == nil { retransmitDeadline = now + rttEstimator.retransmitTimeout }
    }

    /// A segment from us with the current ACK, window, timestamp and SACK blocks. Clears the ACK debt.
    mutating func makeSegment(sequenceNumber: SeqNumber, flags: TCPFlags, payload: PacketBuffer = PacketBuffer(),
                              sackBlocks: TCPSACKBlocks, now: Instant) -> TCPSegment {
        var options = TCPOptions()
        if timestampsEnabled {
            options.timestamp = TCPTimestampOption(value: timestampValue(now), echoReply: timestampRecent)
        }
        options.sackBlocks = sackBlocks
        let segment = TCPSegment(sequenceNumber: sequenceNumber, acknowledgmentNumber: receiveNext,
                                 flags: flags.union(.ack), window: advertiseWindow(), options: options, payload: payload)
        lastAcknowledgmentSent = receiveNext
        ackPending = false
        delayedAckDeadline = nil
        unacknowledgedSegments = 0
        return segment
    }

    /// The window field to send, moving the advertised right edge: never left (RFC 9293 §3.8.6.2.2),
    /// and right only by at least min(buffer/2, MSS) (receiver-side SWS avoidance, RFC 1122 §4.2.3.3).
    mutating func advertiseWindow() -> UInt16 {
        let available = min(receiveWindowAvailable, 65535 << Int(receiveWindowScale))
        let candidate = receiveNext + available
        if candidate > receiveEdge {
            let growth = Int(candidate - receiveEdge)
            let threshold = min(receiveBufferLimit / 2, receiveMSS)
            if growth >= threshold || receiveEdge < receiveNext || available == min(receiveBufferLimit, 65535 << Int(receiveWindowScale)) {
                receiveEdge = candidate
            }
        }
        if receiveEdge < receiveNext { receiveEdge = receiveNext }
        return UInt16(clamping: Int(receiveEdge - receiveNext) >> Int(receiveWindowScale))
    }

    /// The largest payload of a new-data segment: `sendMSS`, or a multiple of it up to the owner's TSO limit.
    var maximumSegmentPayload: Int {
        let mss = sendMSS
        guard configuration.maxSegmentBytes > mss else { return mss }
        return (configuration.maxSegmentBytes / mss) * mss
    }

    /// RFC 6675 §4 pipe: un-SACKed bytes not deemed lost, plus retransmitted bytes still out.
    package var pipe: Int {
        let flight = flightSize
        guard flight > 0 else { return 0 }
        let unacknowledged = sendUnacknowledged
        let boundary = lossBoundary
        let retransmittedEnd = earlierSeq(retransmitNext, sendNext)
        if sackEnabled {
            let notLostStart = laterSeq(boundary, unacknowledged)
            var pipe = Int(sendNext - notLostStart) - scoreboard.sackedBytes(from: notLostStart, to: sendNext)
            if retransmittedEnd > unacknowledged {
                pipe += Int(retransmittedEnd - unacknowledged) - scoreboard.sackedBytes(from: unacknowledged, to: retransmittedEnd)
            }
            return max(pipe, 0)
        }
        // Without SACK each duplicate ACK stands for one segment that left the network (RFC 6582's
        // window inflation, expressed as a smaller pipe).
        var pipe = flight - Int(boundary - unacknowledged) - (recovery == .fast ? duplicateAcks * sendMSS : 0)
        pipe = max(pipe, 0)
        if retransmittedEnd > unacknowledged { pipe += Int(retransmittedEnd - unacknowledged) }
        return pipe
    }

    /// Un-SACKed bytes below this are lost (RFC 6675 IsLost). In fast recovery the head segment always
    /// counts as lost (the fast retransmit, and RFC 6582's partial-ACK retransmission); after a timeout
    /// everything sent before the timeout does.
    var lossBoundary: SeqNumber {
        var boundary: SeqNumber
        switch recovery {
        case .none:
            return sendUnacknowledged
        case .fast:
            boundary = sendUnacknowledged + min(sendMSS, flightSize)
            if let probed = probeLossBoundary, probed > boundary { boundary = probed }
        case .timeout:
            boundary = recoverPoint
        }
        if sackEnabled, let sacked = scoreboard.lossBoundary(maximumSegmentSize: sendMSS), sacked > boundary {
            boundary = sacked
        }
        return earlierSeq(boundary, sendNext)
    }

    /// RFC 6675 NextSeg rule 1: the first un-SACKed, not yet retransmitted byte below the loss boundary,
    /// and how much of its hole to resend (at most one MSS, or one TSO super-segment).
    var nextRetransmission: (sequenceNumber: SeqNumber, length: Int)? {
        let boundary = lossBoundary
        var cursor = laterSeq(retransmitNext, sendUnacknowledged)
        while cursor < boundary {
            if let range = scoreboard.range(containing: cursor) {
                cursor = range.end
                continue
            }
            let holeEnd = earlierSeq(scoreboard.nextSackedStart(after: cursor) ?? sendNext, boundary)
            return (cursor, min(Int(holeEnd - cursor), maximumSegmentPayload))
        }
        return nil
    }

    /// Step 4: retransmissions, new data and the FIN.
    mutating func sendData(into segments: inout [TCPSegment], sackBlocks: TCPSACKBlocks, now: Instant) {
        let mss = sendMSS
        // A data segment carrying SACK blocks must still fit the path (Linux's tcp_current_mss).
        let sackBytes = sackBlocks.isEmpty ? 0 : 4 + 8 * sackBlocks.count
        let maxPayload = sackBytes > 0 ? mss - sackBytes : maximumSegmentPayload
        // Each pass emits one segment or stops; every emission moves `retransmitNext` or `sendNext`
        // forward, so the loop ends. Pipe is recomputed per pass because each emission changes it.
        while true {
            let budget = congestion.congestionWindow - pipe
            if let (sequenceNumber, length) = nextRetransmission {
                guard forceRetransmission || budget >= mss || (budget > 0 && length < mss) else { break }
                forceRetransmission = false
                // With TSO a hole goes out as one super-segment, as far as cwnd − pipe allows: one packet
                // to lose instead of up to 44, and each lost retransmission costs a timeout (no RACK).
                // Not with SACK blocks: every piece would carry them and outgrow the MTU.
                var size = min(length, mss - sackBytes)
                if sackBytes == 0, length > mss { size = min(length, max(mss, budget / mss * mss)) }
                emitRetransmission(sequenceNumber, length: size, into: &segments, sackBlocks: sackBlocks, now: now)
                continue
            }
            // Nothing lost is waiting: new data, bounded by what is queued, the peer's window
            // (SND.UNA + SND.WND − SND.NXT, RFC 9293 §3.8.6.2.1), cwnd − pipe and the segment size.
            let available = sendNext <= sendDataEnd ? Int(sendDataEnd - sendNext) : 0
            let windowLeft = sendUnacknowledged + sendWindow >= sendNext ? Int((sendUnacknowledged + sendWindow) - sendNext) : 0
            let length = min(available, windowLeft, max(budget, 0), maxPayload)
            if length > 0 {
                let sendsAll = length == available
                // Sender-side SWS avoidance (RFC 9293 §3.8.6.2.1) and Nagle (RFC 896) when enabled.
                let fullSegment = length >= mss
                let pushesAll = sendsAll && (configuration.noDelay || flightSize == 0)
                let halfWindow = maximumSendWindow > 0 && length >= maximumSendWindow / 2 && length == windowLeft
                guard fullSegment || pushesAll || halfWindow else { break }
                let fin = finQueued && !finSent && sendsAll
                emitNewData(length: length, fin: fin, into: &segments, sackBlocks: sackBlocks, now: now)
                continue
            }
            if finQueued, !finSent, available == 0, sendNext == sendDataEnd {
                emitNewData(length: 0, fin: true, into: &segments, sackBlocks: sackBlocks, now: now)
                continue
            }
            // Zero window with data waiting and nothing in flight to clock an ACK: probe (RFC 9293 §3.8.6.1).
            if available > 0, windowLeft == 0, flightSize == 0, persistDeadline == nil {
                persistDeadline = now + persistInterval
            }
            break
        }
    }

    mutating func emitNewData(length: Int, fin: Bool, into segments: inout [TCPSegment], sackBlocks: TCPSACKBlocks, now: Instant) {
        let sequenceNumber = sendNext
        let payload = payloadSlice(from: sequenceNumber, length: length)
        var flags: TCPFlags = .ack
        if fin { flags.insert(.fin) }
        if length > 0, sequenceNumber + length == sendDataEnd { flags.insert(.psh) }
        segments.append(makeSegment(sequenceNumber: sequenceNumber, flags: flags, payload: payload, sackBlocks: sackBlocks, now: now))
        sendNext = sequenceNumber + length + (fin ? 1 : 0)
        if fin { finSent = true }
        if !timestampsEnabled, rttProbe == nil, recovery == .none { rttProbe = (sequenceNumber, now) }
        if retransmitDeadline == nil { retransmitDeadline = now + rttEstimator.retransmitTimeout }
        persistDeadline = nil
    }

    mutating func emitRetransmission(_ sequenceNumber: SeqNumber, length: Int, into segments: inout [TCPSegment],
                                     sackBlocks: TCPSACKBlocks, now: Instant) {
        // The FIN occupies the sequence number after the last data byte: a hole that reaches it
        // resends the FIN with whatever data precedes it.
        let dataEnd = sendDataEnd
        let coversFIN = finSent && sequenceNumber + length > dataEnd
        let payloadLength = coversFIN ? Int(dataEnd - sequenceNumber) : length
        let payload = payloadSlice(from: sequenceNumber, length: payloadLength)
        let flags: TCPFlags = coversFIN ? [.ack, .fin] : .ack
        segments.append(makeSegment(sequenceNumber: sequenceNumber, flags: flags, payload: payload, sackBlocks: sackBlocks, now: now))
        retransmitNext = sequenceNumber + payloadLength + (coversFIN ? 1 : 0)
        retransmittedSegmentCount += 1
        if sackEnabled, recovery != .none {
            if retransmissionLog.count >= Self.retransmissionLogLimit { retransmissionLog.removeFirst() }
            retransmissionLog.append((sequenceNumber, retransmitNext, sendNext))
        }
        if congestionBeforeReduction != nil, firstRetransmissionTimestamp == nil {
            firstRetransmissionTimestamp = timestampValue(now)
        }
        if let probe = rttProbe, probe.sequenceNumber.isIn(sequenceNumber, retransmitNext) { rttProbe = nil }
        if retransmitDeadline == nil { retransmitDeadline = now + rttEstimator.retransmitTimeout }
    }

    /// RFC 8985 §7.2: arm the PTO (2·SRTT, at least 10 ms as Linux; plus the worst-case delayed ACK
    /// when one segment is out) while data is in flight outside recovery, unless the RTO comes first.
    mutating func armProbeTimer(now: Instant) {
        guard configuration.tailLossProbe, sackEnabled, probeDeadline == nil, probeEnd == nil, !probePending,
              recovery == .none, flightSize > 0, let srtt = rttEstimator.smoothedRTT else { return }
        var timeout = max(srtt * 2, .milliseconds(10))
        if flightSize <= sendMSS { timeout += .milliseconds(200) }
        let deadline = now + timeout
        if let rto = retransmitDeadline, deadline >= rto { return }
        probeDeadline = deadline
    }

    /// Resends the last segment in flight as the probe; HighRxt is left alone (a probe is not part of
    /// a recovery's retransmissions).
    mutating func emitTailLossProbe(into segments: inout [TCPSegment], sackBlocks: TCPSACKBlocks, now: Instant) {
        let flight = Int(sendNext - sendUnacknowledged)
        guard flight > 0 else { return }
        let sackBytes = sackBlocks.isEmpty ? 0 : 4 + 8 * sackBlocks.count
        let length = min(flight, sendMSS - sackBytes)
        let savedRetransmitNext = retransmitNext
        emitRetransmission(sendNext - UInt32(length), length: length, into: &segments, sackBlocks: sackBlocks, now: now)
        retransmitNext = savedRetransmitNext
        probeEnd = sendNext
    }

    /// A slice of the send buffer (shares its storage; no copy).
    func payloadSlice(from sequenceNumber: SeqNumber, length: Int) -> PacketBuffer {
        guard length > 0 else { return PacketBuffer() }
        let offset = Int(sequenceNumber - sendBufferStart)
        assert(offset >= 0 && offset + length <= sendBuffer.readableBytes, "payload [\(offset), +\(length)) outside the \(sendBuffer.readableBytes) buffered bytes")
        return sendBuffer.getSlice(at: sendBuffer.readerIndex + offset, length: length) ?? PacketBuffer()
    }
}
