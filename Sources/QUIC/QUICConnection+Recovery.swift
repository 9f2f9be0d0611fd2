// QUICConnection+Recovery: RFC 9002 loss detection — ACK processing with RTT samples (§5),
// packet and time thresholds (§6.1), the probe timeout (§6.2) — and what a lost packet's frames
// turn back into.
import NetstackWire

extension QUICConnection {
    /// RFC 9002 §6.1.1: kPacketThreshold.
    static let packetThreshold: UInt64 = 3

    func onAck(_ ack: QUICACKFrame, space index: Int, now: Instant) throws(QUICConnectionError) {
        // RFC 9000 §13.1: acknowledging a packet never sent is a PROTOCOL_VIOLATION.
        guard ack.largest < spaces[index].nextPacketNumber else {
            throw .transport(.protocolViolation, frameType: 0x02, "ACK of an unsent packet")
        }
        var newlyAcked: [QUICSentPacket] = []
        for number in spaces[index].sent.keys where ack.contains(number) {
            if let packet = spaces[index].sent.removeValue(forKey: number) { newlyAcked.append(packet) }
        }
        guard !newlyAcked.isEmpty else { return }
        spaces[index].largestAcknowledged = max(spaces[index].largestAcknowledged ?? 0, ack.largest)
        // §5.1: an RTT sample when the largest acknowledged is newly acknowledged and something was ack-eliciting.
        if let largest = newlyAcked.first(where: { $0.packetNumber == ack.largest }), newlyAcked.contains(where: { $0.isAckEliciting }) {
            var ackDelay = Duration.zero
            if index == 2 {
                let exponent = peerParameters?.ackDelayExponent ?? 3
                let micros = ack.delay << min(exponent, 20)
                ackDelay = .microseconds(Int64(clamping: min(micros, 1 << 40)))
                if handshakeConfirmed { ackDelay = min(ackDelay, .milliseconds(Int64(peerParameters?.maxAckDelay ?? 25))) }
            }
            rtt.update(sample: now - largest.time, ackDelay: ackDelay)
        }
        for packet in newlyAcked { onAcknowledged(packet) }
        detectLoss(space: index, now: now)
        // §6.2.1: the backoff resets on an acknowledgment (a client keeps it until it knows the
        // server validated its address; with no Retry support that is the same moment here).
        ptoCount = 0
    }

    /// What an acknowledged packet's frames mean now (stream data delivered …).
    func onAcknowledged(_ packet: QUICSentPacket) {
        if packet.isAckEliciting { congestion.onAcked(size: packet.size, sentTime: packet.time) }
        for frame in packet.frames { streamFrameAcked(frame) }
    }

    /// Declares packets lost by the packet or time threshold (RFC 9002 §6.1) and re-queues their frames.
    func detectLoss(space index: Int, now: Instant) {
        spaces[index].lossTime = nil
        guard let largest = spaces[index].largestAcknowledged else { return }
        // §6.1.2: 9/8 of the larger of smoothed and latest RTT, at least kGranularity.
        let lossDelay = max(max(rtt.latest, rtt.smoothed) * 9 / 8, QUICRTTEstimator.granularity)
        var lost: [QUICSentPacket] = []
        for (number, packet) in spaces[index].sent where number <= largest {
            if largest - number >= Self.packetThreshold || now - packet.time >= lossDelay {
                lost.append(packet)
            } else {
                let when = packet.time + lossDelay
                spaces[index].lossTime = min(spaces[index].lossTime ?? when, when)
            }
        }
        for packet in lost {
            spaces[index].sent[packet.packetNumber] = nil
            requeue(packet.frames, space: index)
        }
        if let newest = lost.max(by: { $0.time < $1.time }), let oldest = lost.min(by: { $0.time < $1.time }) {
            congestion.onLost(size: lost.reduce(0) { $0 + $1.size }, largestSentTime: newest.time, now: now)
            // §7.6: losses spanning more than three PTOs (after an RTT sample) are persistent
            // congestion. Simplified: the span of one batch of ack-eliciting losses.
            let persistent = (rtt.probeTimeout + .milliseconds(Int64(peerParameters?.maxAckDelay ?? 25))) * 3
            if rtt.hasSample, lost.count >= 2, newest.time - oldest.time > persistent { congestion.onPersistentCongestion() }
        }
    }

    /// Puts a lost (or probed) packet's retransmittable frames back in the send queues.
    func requeue(_ frames: [QUICRetransmittable], space index: Int) {
        for frame in frames {
            switch frame {
            case .crypto(let range): if !spaces[index].cryptoResend.contains(range) { spaces[index].cryptoResend.append(range) }
            case .handshakeDone: handshakeDonePending = true
            case .newConnectionID(let sequence): if localIDs[sequence] != nil, !pendingNewIDs.contains(sequence) { pendingNewIDs.append(sequence) }
            case .retireConnectionID(let sequence): if !pendingRetire.contains(sequence) { pendingRetire.append(sequence) }
            default: streamFrameLost(frame)
            }
        }
    }

    /// The earliest loss-time or probe-timeout deadline and its space (RFC 9002 §6.2.1 SetLossDetectionTimer).
    func lossOrProbeDeadline() -> (time: Instant, space: Int, isLoss: Bool)? {
        var best: (time: Instant, space: Int, isLoss: Bool)?
        for index in 0..<3 where !spaces[index].isDiscarded {
            if let lossTime = spaces[index].lossTime, lossTime < (best?.time ?? .distantFuture) { best = (lossTime, index, true) }
        }
        if let best { return best }
        let backoff = Int64(1) << Int64(min(ptoCount, 16))
        for index in 0..<3 where !spaces[index].isDiscarded && spaces[index].writeKey != nil {
            // §6.2.1: the application space is probed only once the handshake is confirmed.
            if index == 2, !handshakeConfirmed { continue }
            guard spaces[index].hasAckElicitingInFlight, let last = spaces[index].timeOfLastAckEliciting else { continue }
            let when = last + probeTimeout(includeAckDelay: index == 2) * backoff
            if when < (best?.time ?? .distantFuture) { best = (when, index, false) }
        }
        // §6.2.2.1: a client keeps probing until the handshake is confirmed, even with nothing in flight,
        // so a lost server flight cannot deadlock it on the amplification limit.
        if best == nil, role == .client, !handshakeConfirmed, state != .closed {
            let index = spaces[1].writeKey != nil && !spaces[1].isDiscarded ? 1 : 0
            let last = spaces[index].timeOfLastAckEliciting ?? lastActivity
            best = (last + probeTimeout(includeAckDelay: false) * backoff, index, false)
        }
        return best
    }

    /// Runs a due loss or probe timer (RFC 9002 §6.2.4 OnLossDetectionTimeout).
    func onLossDetectionTimeout(now: Instant) {
        guard let (time, index, isLoss) = lossOrProbeDeadline(), time <= now else { return }
        if isLoss {
            detectLoss(space: index, now: now)
            return
        }
        ptoCount += 1
        // Probe: resend the space's unacknowledged CRYPTO data (the likeliest thing the peer lacks),
        // or a PING if there is none (§6.2.4).
        for packet in spaces[index].sent.values.sorted(by: { $0.packetNumber < $1.packetNumber }) {
            requeue(packet.frames, space: index)
        }
        spaces[index].probePending = true
        if spaces[index].timeOfLastAckEliciting == nil { spaces[index].timeOfLastAckEliciting = now }
    }
}
