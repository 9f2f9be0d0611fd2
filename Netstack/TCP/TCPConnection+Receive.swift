package import NetstackWire

// Segment arrival, RFC 9293 §3.10.7, in its order:
// 1. CLOSED, LISTEN and SYN-SENT have their own rules (§3.10.7.1–3).
// 2. Otherwise: PAWS (RFC 7323 §5.3), the sequence acceptability test, then RST (RFC 5961 §3),
//    SYN (RFC 5961 §4), ACK (RFC 5961 §5, RFC 6675), segment text, FIN.

extension TCPConnection {
    /// Processes one segment of this connection (checksum verified, ports stripped by the owner).
    /// Never traps on peer input; a segment that fails a check is dropped, possibly answered with an ACK
    /// or RST that the next `transmit` emits.
    package mutating func receive(_ segment: TCPSegment, now: Instant) {
        lastNow = max(lastNow, now)
        switch state {
        case .closed:
            respondToClosed(segment)
        case .listen:
            receiveInListen(segment, now: now)
        case .synSent:
            receiveInSynSent(segment, now: now)
        default:
            receiveSynchronized(segment, now: now)
        }
    }

    /// RFC 6191-style reuse: true when this connection sits in TIME-WAIT and `syn` is a new SYN for the
    /// same 4-tuple that cannot be an old duplicate (a higher sequence number, or a newer timestamp).
    /// The owner then drops this connection and accepts the SYN as a new one.
    package func mayReplace(with syn: TCPSegment) -> Bool {
        guard state == .timeWait, syn.flags.contains(.syn), !syn.flags.contains(.ack), !syn.flags.contains(.rst) else {
            return false
        }
        if timestampsEnabled, let ts = syn.options.timestamp {
            return Int32(bitPattern: ts.value &- timestampRecent) > 0
        }
        return syn.sequenceNumber > receiveNext
    }

    // MARK: CLOSED, LISTEN, SYN-SENT

    /// RFC 9293 §3.10.7.1: answer anything but a RST with a RST.
    mutating func respondToClosed(_ segment: TCPSegment) {
        guard !segment.flags.contains(.rst) else { return }
        pendingReset = Self.resetFor(segment)
    }

    /// The RST that answers `segment` for a 4-tuple with no connection (RFC 9293 §3.10.7.1): the owner
    /// uses it for segments to closed ports. Returns nil for a RST (never answer a RST).
    package static func reset(answering segment: TCPSegment) -> TCPSegment? {
        segment.flags.contains(.rst) ? nil : resetFor(segment)
    }

    /// The RST that answers `segment` from a connection that does not know it (RFC 9293 §3.10.7.1).
    static func resetFor(_ segment: TCPSegment) -> TCPSegment {
        if segment.flags.contains(.ack) {
            return TCPSegment(sequenceNumber: segment.acknowledgmentNumber, flags: [.rst])
        }
        return TCPSegment(sequenceNumber: SeqNumber(0), acknowledgmentNumber: segment.endSequenceNumber, flags: [.rst, .ack])
    }

    /// RFC 9293 §3.10.7.2.
    mutating func receiveInListen(_ segment: TCPSegment, now: Instant) {
        if segment.flags.contains(.rst) { return }
        if segment.flags.contains(.ack) {
            pendingReset = Self.resetFor(segment)
            return
        }
        guard segment.flags.contains(.syn) else { return }
        initialReceiveSequence = segment.sequenceNumber
        receiveNext = segment.sequenceNumber + 1
        negotiateOptions(from: segment, now: now, offeredByUs: false)
        // The window of a SYN is never scaled (RFC 7323 §2.2).
        sendWindow = Int(segment.window)
        maximumSendWindow = sendWindow
        sendWindowUpdateSequence = segment.sequenceNumber
        receiveEdge = receiveNext
        state = .synReceived
        synPending = true
        // Data on a SYN is not taken (no TCP Fast Open): the peer resends it after the handshake.
    }

    /// RFC 9293 §3.10.7.3.
    mutating func receiveInSynSent(_ segment: TCPSegment, now: Instant) {
        let flags = segment.flags
        var ackAcceptable = false
        if flags.contains(.ack) {
            let ack = segment.acknowledgmentNumber
            guard ack > initialSendSequence, ack <= sendNext else {
                if !flags.contains(.rst) { pendingReset = TCPSegment(sequenceNumber: ack, flags: [.rst]) }
                return
            }
            ackAcceptable = true
        }
        if flags.contains(.rst) {
            // RFC 5961 §3.2 leaves SYN-SENT to the ACK check above: only a RST acknowledging our SYN counts.
            if ackAcceptable { enterClosed(.reset, events: .reset) }
            return
        }
        guard flags.contains(.syn) else { return }
        initialReceiveSequence = segment.sequenceNumber
        receiveNext = segment.sequenceNumber + 1
        negotiateOptions(from: segment, now: now, offeredByUs: true)
        sendWindow = Int(segment.window)
        maximumSendWindow = sendWindow
        sendWindowUpdateSequence = segment.sequenceNumber
        sendWindowUpdateAcknowledgment = segment.acknowledgmentNumber
        receiveEdge = receiveNext
        if ackAcceptable {
            takeRTTSample(for: segment, now: now)
            sendUnacknowledged = segment.acknowledgmentNumber
            retransmitNext = sendUnacknowledged
            synPending = false
            retransmitDeadline = nil
            retransmitCount = 0
            rttEstimator.resetBackoff()
            establish(now: now)
            ackPending = true
        } else {
            // Simultaneous open (RFC 9293 §3.5 figure 8): answer with SYN-ACK from our same ISS.
            state = .synReceived
            synPending = true
        }
    }

    /// Takes MSS, window scale, SACK-permitted and timestamps from the peer's SYN (RFC 7323 §2.2, §3.2:
    /// each is on only if both sides sent it).
    mutating func negotiateOptions(from syn: TCPSegment, now: Instant, offeredByUs: Bool) {
        let options = syn.options
        if let mss = options.maximumSegmentSize { peerMaximumSegmentSize = max(Int(mss), 64) }
        if configuration.windowScaling, let shift = options.windowScale {
            sendWindowScale = min(shift, 14)  // RFC 7323 §2.3: larger shifts are treated as 14
            windowScalingEnabled = true
            receiveWindowScale = Self.windowScale(for: configuration.receiveBufferMaximum)
        } else {
            sendWindowScale = 0
            receiveWindowScale = 0
            windowScalingEnabled = false
        }
        sackEnabled = configuration.selectiveAcknowledgments && options.sackPermitted
        if configuration.timestamps, let ts = options.timestamp {
            timestampsEnabled = true
            timestampRecent = ts.value
            timestampRecentAge = now
        } else {
            timestampsEnabled = false
        }
        if !configuration.windowScaling || options.windowScale == nil {
            // Without scaling the window field caps what can be used.
            receiveBufferLimit = min(receiveBufferLimit, 65535)
        }
    }

    /// Both SYNs are acknowledged: ESTABLISHED (or FIN-WAIT-1 if the owner already closed).
    mutating func establish(now: Instant) {
        state = finQueued ? .finWait1 : .established
        pendingEvents.insert(.connected)
        pendingEvents.insert(.writable)
        // RFC 6928 initial window, now that the MSS is known.
        congestion = TCPCongestionController(configuration.congestionControl,
                                             initialWindow: configuration.initialWindowSegments * sendMSS)
        autotuneStart = now
        armKeepalive(now: now)
    }

    // MARK: Synchronized states

    mutating func receiveSynchronized(_ segment: TCPSegment, now: Instant) {
        var segment = segment
        // Simultaneous open (RFC 9293 figure 8 line 6): the peer's SYN-ACK in SYN-RECEIVED carries a SYN we
        // already hold; its ACK is what completes the handshake (Linux special-cases it the same way).
        if state == .synReceived, segment.flags.contains([.syn, .ack]), segment.sequenceNumber == initialReceiveSequence,
           segment.payload.readableBytes == 0, segment.acknowledgmentNumber == sendNext {
            segment.flags.remove(.syn)
            segment.sequenceNumber = receiveNext
        }
        let flags = segment.flags
        // A retransmitted SYN in SYN-RECEIVED: our SYN-ACK was lost; send it again.
        if state == .synReceived, flags.contains(.syn), !flags.contains(.ack), segment.sequenceNumber == initialReceiveSequence {
            synPending = true
            return
        }
        // 1. PAWS (RFC 7323 §5.3 R1): an old timestamp marks an old duplicate.
        if timestampsEnabled, !flags.contains(.rst), let ts = segment.options.timestamp,
           Int32(bitPattern: ts.value &- timestampRecent) < 0 {
            // §5.5: after 24 days idle TS.Recent is stale and the check is skipped.
            if now - timestampRecentAge <= .seconds(24 * 24 * 3600) {
                ackPending = true
                return
            }
        }
        // 2. Sequence acceptability (RFC 9293 §3.10.7.4 table).
        let length = segment.sequenceLength
        let window = Int(receiveEdge - receiveNext)
        let seq = segment.sequenceNumber
        let windowEnd = receiveNext + window
        var acceptable: Bool
        if length == 0 {
            acceptable = window == 0 ? seq == receiveNext : seq.isIn(receiveNext, windowEnd)
        } else if window == 0 {
            // A zero window still takes ACKs and RSTs at RCV.NXT (RFC 9293 §3.10.7.4 note).
            acceptable = seq == receiveNext
        } else {
            acceptable = seq.isIn(receiveNext, windowEnd) || (seq + (length - 1)).isIn(receiveNext, windowEnd)
        }
        if !acceptable {
            if !flags.contains(.rst) {
                ackPending = true
                // RFC 9293 §3.10.7.4: a retransmitted FIN in TIME-WAIT restarts the 2 MSL timer.
                if state == .timeWait, flags.contains(.fin) { timeWaitDeadline = now + configuration.timeWaitDuration }
            }
            return
        }
        // Anything acceptable proves the peer alive.
        noteActivity(now: now)
        // 3. RST (RFC 5961 §3.2): only an exact match resets; in-window otherwise earns a challenge ACK.
        if flags.contains(.rst) {
            if seq == receiveNext {
                if state == .timeWait {
                    enterClosed(.normal, events: .closed)  // Linux's default (RFC 1337 protection off)
                } else {
                    enterClosed(.reset, events: .reset)
                }
            } else {
                sendChallengeAck(now: now)
            }
            return
        }
        // 4. SYN in a synchronized state (RFC 5961 §4): challenge ACK, drop.
        if flags.contains(.syn) {
            sendChallengeAck(now: now)
            return
        }
        // 5. ACK.
        guard flags.contains(.ack) else { return }
        // PAWS R3: remember the timestamp of a segment at the left edge (RFC 7323 §4.3).
        if timestampsEnabled, let ts = segment.options.timestamp, seq <= lastAcknowledgmentSent,
           Int32(bitPattern: ts.value &- timestampRecent) >= 0 {
            timestampRecent = ts.value
            timestampRecentAge = now
        }
        let ack = segment.acknowledgmentNumber
        if state == .synReceived {
            guard ack > sendUnacknowledged, ack <= sendNext else {
                pendingReset = TCPSegment(sequenceNumber: ack, flags: [.rst])
                return
            }
            synPending = false
            establish(now: now)
            // The window of a non-SYN segment is scaled; take it as the first update.
            sendWindowUpdateSequence = seq - 1
        }
        if ack > sendNext {
            ackPending = true  // RFC 5961 §5.2: acknowledges data never sent
            return
        }
        if sendUnacknowledged - ack > UInt32(max(maximumSendWindow, 1)), ack < sendUnacknowledged {
            sendChallengeAck(now: now)  // RFC 5961 §5.2: too old to be a duplicate
            return
        }
        processAck(segment, now: now)
        guard state != .closed else { return }
        let finAcknowledged = finSent && sendUnacknowledged == sendDataEnd + 1
        switch state {
        case .finWait1 where finAcknowledged:
            state = .finWait2
        case .closing where finAcknowledged:
            enterTimeWait(now: now)
        case .lastAck where finAcknowledged:
            enterClosed(.normal, events: .closed)
            return
        default:
            break
        }
        // 6. Segment text and FIN.
        receiveText(segment, now: now)
    }

    /// RFC 5961 §7: a challenge ACK, at most `challengeAckLimit` per second.
    mutating func sendChallengeAck(now: Instant) {
        if now - challengeAckWindowStart >= .seconds(1) {
            challengeAckWindowStart = now
            challengeAcksSent = 0
        }
        guard challengeAcksSent < Self.challengeAckLimit else { return }
        challengeAcksSent += 1
        ackPending = true
    }

    /// Feeds the RTT estimator from the timestamp echo (RFC 7323 §4) or the timed segment (Karn).
    mutating func takeRTTSample(for segment: TCPSegment, now: Instant) {
        if timestampsEnabled, let ts = segment.options.timestamp, ts.echoReply != 0 {
            let elapsed = timestampValue(now) &- ts.echoReply
            if elapsed < 1 << 31 {  // a sane echo (not from the future)
                rttEstimator.addSample(.milliseconds(Int64(elapsed)))
            }
            rttProbe = nil
        } else if let probe = rttProbe, segment.acknowledgmentNumber > probe.sequenceNumber {
            rttEstimator.addSample(now - probe.sentAt)
            rttProbe = nil
        }
    }

    /// Our TSval: a millisecond clock plus the per-connection offset.
    package func timestampValue(_ now: Instant) -> UInt32 {
        UInt32(truncatingIfNeeded: now.nanoseconds / 1_000_000) &+ timestampOffset
    }

    /// RFC 9293 "fifth, check the ACK field" for an acceptable ACK, with RFC 6675 scoreboard upkeep,
    /// RFC 5681 duplicate-ACK counting and RFC 6582/6675 entry to and exit from recovery.
    mutating func processAck(_ segment: TCPSegment, now: Instant) {
        let ack = segment.acknowledgmentNumber
        let flightBefore = flightSize
        let scaledWindow = Int(segment.window) << Int(sendWindowScale)
        if ack > sendUnacknowledged {
            let acked = Int(ack - sendUnacknowledged)
            let spurious = detectSpuriousRetransmission(segment)
            takeRTTSample(for: segment, now: now)
            if ack > sendBufferStart {
                let released = min(Int(ack - sendBufferStart), sendBuffer.readableBytes)
                if released > 0 {
                    sendBuffer.moveReaderIndex(forwardBy: released)
                    sendBufferStart = sendBufferStart + released
                    if state.maySend, !finQueued { pendingEvents.insert(.writable) }
                }
            }
            sendUnacknowledged = ack
            if retransmitNext < ack { retransmitNext = ack }
            probeDeadline = nil  // re-armed from now by the next transmit (RFC 8985 §7.2)
            if let end = probeEnd, ack >= end { probeEnd = nil }
            scoreboard.acknowledge(upTo: ack)
            retransmitCount = 0
            rttEstimator.resetBackoff()
            duplicateAcks = 0
            let windowLimited = flightBefore + sendMSS > congestion.congestionWindow
            switch recovery {
            case .none:
                congestion.onAck(ackedBytes: acked, isWindowLimited: windowLimited, maximumSegmentSize: sendMSS,
                                 smoothedRTT: rttEstimator.smoothedRTT, now: now)
            case .fast:
                if ack >= recoverPoint {
                    recovery = .none
                    retransmissionLog.removeAll()
                    retransmitNext = sendUnacknowledged
                    congestionBeforeReduction = nil
                    forceRetransmission = false
                    probeLossBoundary = nil
                    congestion.onRecoveryExit(maximumSegmentSize: sendMSS)
                }
                // A partial ACK keeps recovery going: the new head is treated as lost (RFC 6582 §3.2 step 3).
                if recovery == .fast, !sackEnabled { forceRetransmission = true }
            case .timeout:
                // After a timeout the sender slow-starts through the lost window (RFC 5681 §3.1).
                congestion.onAck(ackedBytes: acked, isWindowLimited: true, maximumSegmentSize: sendMSS,
                                 smoothedRTT: rttEstimator.smoothedRTT, now: now)
                if ack >= recoverPoint {
                    recovery = .none
                    retransmissionLog.removeAll()
                    retransmitNext = sendUnacknowledged
                    congestionBeforeReduction = nil
                }
            }
            if spurious { retransmitNext = sendUnacknowledged }
            retransmitDeadline = flightSize > 0 ? now + rttEstimator.retransmitTimeout : nil
            // Keep "recover" within 2^31 of SND.UNA so the modular comparison stays meaningful on
            // connections that move more than 2 GiB without a loss.
            if recovery == .none { recoverPoint = sendUnacknowledged }
        } else if ack == sendUnacknowledged, segment.payload.readableBytes == 0,
                  !segment.flags.contains(.fin), scaledWindow == sendWindow, flightBefore > 0 {
            duplicateAcks += 1  // RFC 5681 §2 duplicate ACK
        }
        // SACK blocks are taken even from old ACKs (reordered ACKs still carry true information);
        // the scoreboard clamps them to [SND.UNA, SND.NXT) and ignores inverted ones.
        var newSACKInformation = false
        if sackEnabled, !segment.options.sackBlocks.isEmpty {
            newSACKInformation = scoreboard.add(segment.options.sackBlocks, unacknowledged: sendUnacknowledged, sendMax: sendNext)
        }
        if newSACKInformation, recovery != .none { detectLostRetransmissions() }
        // Window update (RFC 9293 §3.10.7.4: only from a segment newer than the last update).
        let seq = segment.sequenceNumber
        if sendWindowUpdateSequence < seq || (sendWindowUpdateSequence == seq && sendWindowUpdateAcknowledgment <= ack) {
            sendWindow = scaledWindow
            sendWindowUpdateSequence = seq
            sendWindowUpdateAcknowledgment = ack
            maximumSendWindow = max(maximumSendWindow, sendWindow)
            if sendWindow > 0 {
                persistDeadline = nil
                persistBackoff = 0
            }
        }
        // Loss detection (RFC 6675 §5 "upon the receipt of a duplicate ACK" / IsLost(HighACK + 1)).
        if recovery == .none, flightSize > 0, sendUnacknowledged >= recoverPoint {
            var lossDetected = duplicateAcks >= 3
            if sackEnabled, newSACKInformation || duplicateAcks > 0,
               let boundary = scoreboard.lossBoundary(maximumSegmentSize: sendMSS), boundary > sendUnacknowledged {
                lossDetected = true
            }
            // RFC 8985: the tail loss probe came back SACKed with a hole below it.
            if !lossDetected, sackEnabled, let end = probeEnd, let probed = scoreboard.range(containing: end - 1),
               probed.start > sendUnacknowledged {
                probeLossBoundary = probed.start
                lossDetected = true
            }
            if lossDetected {
                probeEnd = nil
                probeDeadline = nil
                enterFastRecovery(now: now)
            }
        }
    }

    /// RACK for retransmissions (RFC 8985 §6.2, with no reordering window): a logged retransmission is
    /// lost once the SACKed data reaches above what had been sent when it left, while part of it is still
    /// neither acknowledged nor SACKed. `retransmitNext` moves back to its first missing byte, so the next
    /// transmit resends it (the RTO would otherwise be the only way out). Entries that are settled —
    /// acknowledged, SACKed, or judged — leave the log.
    mutating func detectLostRetransmissions() {
        guard let highest = scoreboard.highestSacked, !retransmissionLog.isEmpty else { return }
        var lostFrom: SeqNumber?
        retransmissionLog.removeAll { entry in
            if entry.end <= sendUnacknowledged { return true }
            guard highest > entry.sendNextThen else { return false }
            var cursor = laterSeq(entry.start, sendUnacknowledged)
            while cursor < entry.end, let range = scoreboard.range(containing: cursor) { cursor = range.end }
            if cursor < entry.end {
                lostFrom = lostFrom.map { earlierSeq($0, cursor) } ?? cursor
                lostRetransmissionCount += 1
            }
            return true
        }
        if let lostFrom, lostFrom < retransmitNext { retransmitNext = lostFrom }
    }

    /// RFC 3522 on the first ACK that advances SND.UNA after a retransmission (the first retransmission
    /// is always of SND.UNA, so this ACK covers it). Undoes the reduction when the echo predates it
    /// (RFC 4015 §3 response: restore cwnd and ssthresh, leave recovery). Either way the check is spent.
    mutating func detectSpuriousRetransmission(_ segment: TCPSegment) -> Bool {
        guard recovery != .none, let retransmitted = firstRetransmissionTimestamp,
              let saved = congestionBeforeReduction else { return false }
        congestionBeforeReduction = nil
        firstRetransmissionTimestamp = nil
        guard let echo = segment.options.timestamp?.echoReply, echo != 0,
              Int32(bitPattern: echo &- retransmitted) < 0 else { return false }
        congestion = saved
        recovery = .none
        retransmissionLog.removeAll()
        probeLossBoundary = nil
        forceRetransmission = false
        spuriousRecoveryCount += 1
        return true
    }

    /// RFC 6675 §5 steps 4.1–4.3 / RFC 6582 §3.2 step 2.
    mutating func enterFastRecovery(now: Instant) {
        recovery = .fast
        retransmissionLog.removeAll()
        recoverPoint = sendNext
        retransmitNext = sendUnacknowledged
        forceRetransmission = true
        rememberCongestionForUndo()
        congestion.onCongestionEvent(flightSize: flightSize, maximumSegmentSize: sendMSS, now: now)
    }

    /// Saves the controller before a reduction so a spurious retransmission can undo it (timestamps only).
    mutating func rememberCongestionForUndo() {
        guard timestampsEnabled else { return }
        congestionBeforeReduction = congestion
        firstRetransmissionTimestamp = nil
    }

    /// RFC 9293 "seventh, process the segment text" and "eighth, check the FIN bit".
    mutating func receiveText(_ segment: TCPSegment, now: Instant) {
        guard state.mayReceiveData || state == .closeWait || state == .closing || state == .lastAck || state == .timeWait else {
            return
        }
        var seq = segment.sequenceNumber
        var payload = segment.payload
        var fin = segment.flags.contains(.fin)
        // Trim what we already have.
        if seq < receiveNext {
            let old = Int(receiveNext - seq)
            if old > payload.readableBytes {
                payload = PacketBuffer()
                fin = false
            } else {
                payload.moveReaderIndex(forwardBy: old)
            }
            seq = receiveNext
            ackPending = true  // a duplicate: tell the sender where we are (RFC 5681 §4.2)
        }
        // Trim what lies beyond the window.
        let room = Int(receiveEdge - seq)
        if payload.readableBytes > room {
            payload.moveWriterIndex(to: payload.readerIndex + max(room, 0))
            fin = false
            ackPending = true
        }
        // After our peer's FIN nothing more can arrive; duplicates were answered above.
        guard state.mayReceiveData else { return }
        if payload.readableBytes > 0 {
            let readyBefore = receiveQueue.readyByteCount
            let immediate = receiveQueue.insert(payload, at: seq, receiveNext: &receiveNext)
            if receiveQueue.readyByteCount > readyBefore {
                pendingEvents.insert(.readable)
                autotune(received: receiveQueue.readyByteCount - readyBefore, now: now)
            }
            // RFC 5681 §4.2 / RFC 9293 §3.8.6.3: ACK at once for out-of-order data or a filled hole (the
            // sender's loss detection needs it), else at least every second full segment, else delay.
            if immediate {
                ackPending = true
            } else {
                unacknowledgedSegments += max(1, payload.readableBytes / receiveMSS)
                if unacknowledgedSegments >= 2 {
                    ackPending = true
                } else if delayedAckDeadline == nil {
                    delayedAckDeadline = now + configuration.delayedAckTimeout
                }
            }
        }
        if fin {
            let finSequence = seq + payload.readableBytes
            if finSequence > receiveNext {
                outOfOrderFIN = finSequence
                ackPending = true
            } else if finSequence == receiveNext {
                outOfOrderFIN = finSequence
            }
        }
        if let finSequence = outOfOrderFIN, finSequence == receiveNext {
            acceptFIN(now: now)
        }
    }

    /// The full-sized segment we expect from the peer (for the ACK-every-second-segment rule).
    var receiveMSS: Int { max(configuration.maximumSegmentSize - (timestampsEnabled ? 12 : 0), 64) }

    /// The peer's FIN is next in sequence: consume it and move on (RFC 9293 "eighth, check the FIN bit").
    mutating func acceptFIN(now: Instant) {
        outOfOrderFIN = nil
        receiveNext = receiveNext + 1
        finReceived = true
        pendingEvents.insert(.peerClosed)
        ackPending = true
        let finAcknowledged = finSent && sendUnacknowledged == sendDataEnd + 1
        switch state {
        case .synReceived, .established:
            state = .closeWait
        case .finWait1:
            if finAcknowledged { enterTimeWait(now: now) } else { state = .closing }
        case .finWait2:
            enterTimeWait(now: now)
        default:
            break
        }
    }

    mutating func enterTimeWait(now: Instant) {
        state = .timeWait
        timeWaitDeadline = now + configuration.timeWaitDuration
        retransmitDeadline = nil
        persistDeadline = nil
        keepaliveDeadline = nil
        delayedAckDeadline = nil
    }

    /// Receive-buffer auto-tuning: when a round trip's worth of arrivals reaches half the buffer, the
    /// window is what limits the peer, so double it (up to the maximum the window scale allows).
    mutating func autotune(received: Int, now: Instant) {
        autotuneBytes += received
        let interval = max(rttEstimator.smoothedRTT ?? .milliseconds(100), .milliseconds(10))
        guard now - autotuneStart >= interval else { return }
        let maximum = min(configuration.receiveBufferMaximum, 65535 << Int(receiveWindowScale))
        if autotuneBytes >= receiveBufferLimit / 2, receiveBufferLimit < maximum {
            receiveBufferLimit = min(receiveBufferLimit * 2, maximum)
        }
        autotuneStart = now
        autotuneBytes = 0
    }

    /// Something acceptable arrived: the keepalive clock restarts.
    mutating func noteActivity(now: Instant) {
        keepaliveProbesSent = 0
        if keepaliveDeadline != nil { armKeepalive(now: now) }
    }

    mutating func armKeepalive(now: Instant) {
        guard let keepalive = configuration.keepalive else { return }
        keepaliveDeadline = now + keepalive.idle
    }
}
