// QUICConnection+Transmit: timers, then datagrams out.
//
// 1. Due timers: closing/draining end, idle timeout (RFC 9000 §10.1), loss and PTO (RFC 9002 §6).
// 2. Closing: only CONNECTION_CLOSE, in every space the peer may be reading (RFC 9000 §10.2.3).
// 3. Otherwise one datagram at a time: a packet per space with something to send (Initial,
//    Handshake, 1-RTT, coalesced), the last one padded when an ack-eliciting Initial needs the
//    datagram at 1200 bytes (§14.1); the server stays within 3× what it received (§8.1).
package import NIOCore
package import NetstackWire

extension QUICConnection {
    /// Bytes a 1-RTT/long header packet number takes: always 4 (simple, and always enough).
    static let packetNumberLength = 4
    /// QUIC's smallest datagram for Initials (RFC 9000 §14.1).
    static let minimumInitialDatagram = 1200
    /// Our ack_delay_exponent (the default 3: ACK Delay in units of 8 µs).
    static let ackDelayExponent: UInt64 = 3

    /// Runs due timers and returns the datagrams to send now (possibly none).
    package func transmit(now: Instant) -> [ByteBuffer] {
        switch state {
        case .closed: return []
        case .draining(let until):
            if now >= until { finish(closeReason ?? QUICCloseReason(errorCode: 0, isApplication: false, reason: "", byPeer: true)) }
            return []
        case .closing(let until):
            if now >= until {
                finish(closeReason ?? QUICCloseReason(errorCode: 0, isApplication: false, reason: "", byPeer: false))
                return []
            }
            guard closeNeedsSending else { return [] }
            closeNeedsSending = false
            return closeDatagram().map { [$0] } ?? []
        default: break
        }
        if let timeout = idleTimeout, now >= lastActivity + timeout {
            // RFC 9000 §10.1: silently closed, no CONNECTION_CLOSE.
            var reason = QUICCloseReason(errorCode: 0, isApplication: false, reason: "", byPeer: false)
            reason.idleTimeout = true
            finish(reason)
            return []
        }
        onLossDetectionTimeout(now: now)
        var datagrams: [ByteBuffer] = []
        while datagrams.count < 64, let datagram = buildDatagram(now: now) { datagrams.append(datagram) }
        return datagrams
    }

    /// How many bytes the server may still send before the client's address is validated.
    var amplificationBudget: Int {
        guard role == .server, !addressValidated else { return .max }
        return max(0, 3 * bytesReceived - bytesSent)
    }

    /// The header bytes of a packet of space `index` (packet number included, Length as 2 bytes).
    func headerLength(space index: Int) -> Int {
        if index == 2 { return 1 + destinationID.count + Self.packetNumberLength }
        return 1 + 4 + 1 + destinationID.count + 1 + sourceID.count + (index == 0 ? quicVarIntLength(UInt64(retryToken.count)) + retryToken.count : 0) + 2 + Self.packetNumberLength
    }

    private struct PendingPacket {
        var space: Int
        var payload: ByteBuffer
        var frames: [QUICRetransmittable]
        var isAckEliciting: Bool
    }

    private func buildDatagram(now: Instant) -> ByteBuffer? {
        let limit = min(configuration.maxUDPPayloadSize, amplificationBudget)
        guard limit >= 64 else { return nil }
        var remaining = limit
        var packets: [PendingPacket] = []
        for index in 0..<3 where !spaces[index].isDiscarded && spaces[index].writeKey != nil {
            let overhead = headerLength(space: index) + QUICPacketKey.tagLength
            guard remaining > overhead + 8 else { break }
            guard let packet = buildPayload(space: index, budget: remaining - overhead, now: now) else { continue }
            remaining -= overhead + packet.payload.readableBytes
            packets.append(packet)
        }
        guard !packets.isEmpty else { return nil }
        // §14.1: a datagram with an ack-eliciting Initial is at least 1200 bytes; pad the last packet.
        if packets.contains(where: { $0.space == 0 && $0.isAckEliciting }) {
            let size = limit - remaining
            if size < Self.minimumInitialDatagram {
                let padding = Self.minimumInitialDatagram - size
                guard padding <= remaining else { return nil }  // amplification budget too small: wait
                packets[packets.count - 1].payload.writeRepeatingByte(0, count: padding)
            }
        }
        // Header protection samples 16 bytes from PN start + 4: payload + tag must cover it; a
        // 4-byte packet number and a 16-byte tag always do.
        var datagram = ByteBuffer()
        var sentHandshake = false
        for packet in packets {
            var bytes = encodePacket(packet, now: now)
            datagram.writeBuffer(&bytes)
            if packet.space == 1 { sentHandshake = true }
        }
        bytesSent += datagram.readableBytes
        // RFC 9001 §4.9.1: a client drops Initial keys when it first sends a Handshake packet.
        if role == .client, sentHandshake { discardSpace(0) }
        return datagram
    }

    private func buildPayload(space index: Int, budget: Int, now: Instant) -> PendingPacket? {
        var payload = ByteBuffer()
        var frames: [QUICRetransmittable] = []
        var elicits = false
        func room() -> Int { budget - payload.readableBytes }

        // ACK: Initial/Handshake at once; 1-RTT after two ack-eliciting packets or max_ack_delay (RFC 9000 §13.2.1).
        let space = spaces[index]
        let ackDue = space.unacknowledgedElicitingCount > 0
            && (index < 2 || space.unacknowledgedElicitingCount >= 2 || space.ackImmediately
                || (space.ackElicitingSince.map { now >= $0 + .milliseconds(25) } ?? false))
        var wantsAck = ackDue
        // Anything else to send? Then an ACK rides along if new packets arrived.
        let hasOther = space.hasCryptoToSend || space.probePending
            || (index == 2 && (handshakeDonePending || !pendingNewIDs.isEmpty || !pendingRetire.isEmpty || !pathResponses.isEmpty
                               || !outgoingDatagrams.isEmpty || (state == .established && hasStreamWork)))
        if hasOther && space.receivedSinceAck && !space.received.isEmpty { wantsAck = true }
        if !wantsAck && !hasOther { return nil }

        if wantsAck, !space.received.isEmpty {
            let delayMicros = index == 2 ? UInt64(max(0, (now - space.largestReceivedTime).nanosecondsClamped / 1000)) : 0
            var ranges = space.received
            let ack = QUICFrame.ack(QUICACKFrame(ranges: ranges, delay: delayMicros >> Self.ackDelayExponent))
            var length = ack.encodedLength
            while length > room(), ranges.count > 1 { ranges.removeLast(); length = QUICFrame.ack(QUICACKFrame(ranges: ranges, delay: 0)).encodedLength + 8 }
            if length <= room() {
                QUICFrame.ack(QUICACKFrame(ranges: ranges, delay: delayMicros >> Self.ackDelayExponent)).write(to: &payload)
                spaces[index].unacknowledgedElicitingCount = 0
                spaces[index].ackElicitingSince = nil
                spaces[index].ackImmediately = false
                spaces[index].receivedSinceAck = false
            }
        }
        if index == 2 {
            while let data = pathResponses.first, room() >= 9 {
                pathResponses.removeFirst()
                QUICFrame.pathResponse(data: data).write(to: &payload)
                elicits = true
            }
            if handshakeDonePending, room() >= 1 {
                handshakeDonePending = false
                QUICFrame.handshakeDone.write(to: &payload)
                frames.append(.handshakeDone)
                elicits = true
            }
            while let sequence = pendingRetire.first, room() >= 9 {
                pendingRetire.removeFirst()
                QUICFrame.retireConnectionID(sequence: sequence).write(to: &payload)
                frames.append(.retireConnectionID(sequence: sequence))
                elicits = true
            }
            while let sequence = pendingNewIDs.first, room() >= 48 {
                pendingNewIDs.removeFirst()
                guard let id = localIDs[sequence] else { continue }
                QUICFrame.newConnectionID(sequence: sequence, retirePriorTo: 0, connectionID: id, resetToken: resetToken(for: sequence)).write(to: &payload)
                frames.append(.newConnectionID(sequence: sequence))
                elicits = true
            }
        }
        // CRYPTO: frame overhead is type (1) + offset (≤ 4) + length (2).
        while room() > 8, let range = spaces[index].takeCrypto(budget: room() - 7) {
            let data = ByteBuffer(bytes: spaces[index].cryptoOut[range])
            QUICFrame.crypto(offset: UInt64(range.lowerBound), data: data).write(to: &payload)
            frames.append(.crypto(range))
            elicits = true
        }
        if index == 2 {
            while let datagram = outgoingDatagrams.first, datagram.readableBytes + 9 <= room() {
                outgoingDatagrams.removeFirst()
                QUICFrame.datagram(data: datagram).write(to: &payload)
                elicits = true  // DATAGRAM is ack-eliciting but never retransmitted (RFC 9221 §5.2)
            }
            if state == .established {
                // New stream data waits for congestion window room; probes may exceed it (RFC 9002 §7.5).
                let allowData = spaces[2].probePending || congestion.canSend(configuration.maxUDPPayloadSize)
                if writeStreamFrames(into: &payload, budget: budget, allowData: allowData, frames: &frames) { elicits = true }
            }
        }
        if spaces[index].probePending {
            spaces[index].probePending = false
            if !elicits, room() >= 1 {
                QUICFrame.ping.write(to: &payload)
                elicits = true
            }
        }
        guard payload.readableBytes > 0 else { return nil }
        return PendingPacket(space: index, payload: payload, frames: frames, isAckEliciting: elicits)
    }

    /// A stateless reset token for our connection ID of `sequence` (RFC 9000 §10.3): random, kept.
    func resetToken(for sequence: UInt64) -> [UInt8] {
        if let token = localResetTokens[sequence] { return token }
        let token = (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) }
        localResetTokens[sequence] = token
        return token
    }

    /// Writes the header, protects the packet and records it for recovery.
    private func encodePacket(_ packet: PendingPacket, now: Instant) -> ByteBuffer {
        let index = packet.space
        let number = spaces[index].nextPacketNumber
        spaces[index].nextPacketNumber += 1
        var bytes = ByteBuffer()
        let pnLength = Self.packetNumberLength
        if index == 2 {
            // Short header: spin 0, our key phase (RFC 9001 §6), PN length.
            bytes.writeInteger(UInt8(0x40 | (keyUpdate.phase ? 0x04 : 0) | UInt8(pnLength - 1)))
            bytes.writeBytes(destinationID.bytes)
        } else {
            let type: UInt8 = index == 0 ? 0x00 : 0x20
            bytes.writeInteger(UInt8(0xC0 | type | UInt8(pnLength - 1)))
            bytes.writeInteger(quicVersion1)
            bytes.writeInteger(UInt8(destinationID.count)); bytes.writeBytes(destinationID.bytes)
            bytes.writeInteger(UInt8(sourceID.count)); bytes.writeBytes(sourceID.bytes)
            if index == 0 {
                // The Retry token, if the server sent one (RFC 9000 §17.2.2); servers send none.
                bytes.writeQUICVarInt(UInt64(retryToken.count))
                bytes.writeBytes(retryToken)
            }
            let length = pnLength + packet.payload.readableBytes + QUICPacketKey.tagLength
            bytes.writeInteger(UInt16(length) | 0x4000)
        }
        let pnOffset = bytes.writerIndex
        bytes.writeInteger(UInt32(truncatingIfNeeded: number))
        var payload = packet.payload
        bytes.writeBuffer(&payload)
        spaces[index].writeKey?.protect(&bytes, packetNumberOffset: pnOffset, packetNumberLength: pnLength, packetNumber: number)
        if packet.isAckEliciting {
            spaces[index].sent[number] = QUICSentPacket(packetNumber: number, time: now, size: bytes.readableBytes,
                                                        isAckEliciting: true, frames: packet.frames)
            spaces[index].timeOfLastAckEliciting = now
            congestion.onSent(size: bytes.readableBytes)
            // §10.1: the idle timer also restarts on the first ack-eliciting packet after a receive.
            if !sentElicitingSinceReceive {
                sentElicitingSinceReceive = true
                lastActivity = max(lastActivity, now)
            }
        }
        return bytes
    }

    /// CONNECTION_CLOSE in every space with write keys the peer may still read (RFC 9000 §10.2.3).
    private func closeDatagram() -> ByteBuffer? {
        guard let closeFrame else { return nil }
        var packets: [PendingPacket] = []
        let useApplication = handshakeConfirmed && spaces[2].writeKey != nil
        for index in 0..<3 where !spaces[index].isDiscarded && spaces[index].writeKey != nil {
            if useApplication && index < 2 { continue }
            var frame = closeFrame
            if index < 2, case .connectionClose(_, nil, _) = closeFrame {
                // An application close must not leak in Initial/Handshake: APPLICATION_ERROR instead.
                frame = .connectionClose(errorCode: QUICTransportError.applicationError.rawValue, frameType: 0, reason: ByteBuffer())
            }
            var payload = ByteBuffer()
            frame.write(to: &payload)
            packets.append(PendingPacket(space: index, payload: payload, frames: [], isAckEliciting: false))
        }
        guard !packets.isEmpty else { return nil }
        if role == .client, packets.contains(where: { $0.space == 0 }) {
            let size = packets.reduce(0) { $0 + headerLength(space: $1.space) + $1.payload.readableBytes + QUICPacketKey.tagLength }
            if size < Self.minimumInitialDatagram { packets[packets.count - 1].payload.writeRepeatingByte(0, count: Self.minimumInitialDatagram - size) }
        }
        var datagram = ByteBuffer()
        for packet in packets {
            var bytes = encodePacket(packet, now: .zero)
            datagram.writeBuffer(&bytes)
        }
        return datagram
    }
}
