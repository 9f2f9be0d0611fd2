// QUICConnection+Receive: datagrams in (RFC 9000 §12.2 coalescing, §17 headers, RFC 9001 §5
// protection), frames run (RFC 9000 §19), CRYPTO bytes to TLS and TLS's secrets back to keys.
package import NIOCore
package import NetstackWire

extension QUICConnection {
    static func spaceIndex(_ type: QUICPacketType) -> Int? {
        switch type {
        case .initial: 0
        case .handshake: 1
        case .oneRTT: 2
        default: nil
        }
    }

    /// Takes one UDP datagram from the peer. Never throws: unreadable packets are dropped and
    /// counted, protocol violations close the connection.
    package func receive(datagram: ByteBuffer, now: Instant) {
        switch state {
        case .closed, .draining: return
        case .closing:
            // RFC 9000 §10.2.1: answer with CONNECTION_CLOSE again (rate-limited: once per datagram).
            closeNeedsSending = true
            return
        default: break
        }
        bytesReceived += datagram.readableBytes
        var offset = datagram.readerIndex
        while offset < datagram.writerIndex {
            let header: QUICPacketHeader
            do {
                header = try QUICPacketHeader.parse(datagram: datagram, at: offset, shortConnectionIDLength: configuration.connectionIDLength)
            } catch {
                droppedPackets += 1
                return
            }
            offset = header.end
            receivePacket(header, datagram: datagram, now: now)
            if case .closed = state { return }
            if closeFrame != nil || isDrainingOrClosed { return }
        }
    }

    var isDrainingOrClosed: Bool {
        switch state {
        case .draining, .closed: true
        default: false
        }
    }

    private func receivePacket(_ header: QUICPacketHeader, datagram: ByteBuffer, now: Instant) {
        if header.type == .versionNegotiation {
            // We only speak v1; a client that gets VN listing no v1 cannot continue (RFC 9000 §6.2).
            if role == .client, !receivedServerInitial, header.version == 0, !header.supportedVersions.contains(quicVersion1),
               header.destinationID == sourceID {
                finish(QUICCloseReason(errorCode: 0, isApplication: false, reason: "no compatible QUIC version", byPeer: true))
            }
            droppedPackets += 1
            return
        }
        if header.type == .retry {
            receiveRetry(header, datagram: datagram, now: now)
            return
        }
        guard let index = Self.spaceIndex(header.type) else {
            droppedPackets += 1  // 0-RTT: not offered
            return
        }
        // The packet must be addressed to us: one of our IDs, or (server, Initial) the client's original DCID.
        let addressed = localIDs.values.contains(header.destinationID) || (role == .server && index == 0 && header.destinationID == originalDestinationID)
        guard addressed, !spaces[index].isDiscarded, let key = spaces[index].readKey else {
            droppedPackets += 1
            return
        }
        func open(_ key: QUICPacketKey) -> QUICPacketKey.Opened? {
            key.unprotect(datagram, start: header.start, packetNumberOffset: header.packetNumberOffset,
                          end: header.end, largestReceived: spaces[index].largestReceived)
        }
        var openedPacket = open(key)
        if openedPacket == nil, index == 2 {
            // Key update (RFC 9001 §6): the peer may have moved to the next key phase (quic-go does
            // after its first 100 packets), or this is a late packet of the previous phase.
            let next = keyUpdate.nextReadKey ?? key.nextPhase()
            keyUpdate.nextReadKey = next
            if let opened = open(next), (opened.firstByte & 0x04 != 0) != keyUpdate.phase {
                // §6.2: answer with our own update; keep the old read key for reordered packets.
                keyUpdate.previousReadKey = key
                keyUpdate.nextReadKey = nil
                keyUpdate.phase.toggle()
                spaces[2].readKey = next
                spaces[2].writeKey = spaces[2].writeKey?.nextPhase()
                keyUpdate.updates += 1
                openedPacket = opened
            } else if let previous = keyUpdate.previousReadKey, let opened = open(previous) {
                openedPacket = opened
            }
        }
        guard let opened = openedPacket else {
            droppedPackets += 1
            return
        }
        // Reserved bits must be zero after header protection is removed (RFC 9000 §17.2, §17.3.1).
        let reservedMask: UInt8 = header.type == .oneRTT ? 0x18 : 0x0C
        if opened.firstByte & reservedMask != 0 {
            fail(.transport(.protocolViolation, frameType: 0, "reserved bits set"), now: now)
            return
        }
        guard spaces[index].recordReceived(opened.packetNumber, now: now) else { return }  // duplicate
        spaces[index].receivedSinceAck = true
        lastActivity = now
        sentElicitingSinceReceive = false
        if role == .client, index == 0, !receivedServerInitial {
            // RFC 9000 §7.2: the client switches to the server's chosen connection ID.
            receivedServerInitial = true
            destinationID = header.sourceID
        }
        if role == .server, index == 1, !addressValidated {
            // A Handshake packet proves the client got our Initial: address validated (§8.1),
            // and the server drops Initial keys (RFC 9001 §4.9.1).
            addressValidated = true
            discardSpace(0)
        }
        var payload = opened.payload
        var elicits = false
        guard payload.readableBytes > 0 else {
            fail(.transport(.protocolViolation, frameType: 0, "empty packet"), now: now)  // §12.4
            return
        }
        while payload.readableBytes > 0 {
            let frame: QUICFrame
            do {
                frame = try QUICFrame.read(from: &payload)
            } catch {
                fail(.transport(error.transportError, frameType: error.frameType, "frame encoding error"), now: now)
                return
            }
            if frame.isAckEliciting { elicits = true }
            if index < 2, !frame.isAllowedDuringHandshake {
                fail(.transport(.protocolViolation, frameType: frame.typeNumber, "frame not allowed in this packet"), now: now)
                return
            }
            do {
                try handle(frame, space: index, now: now)
            } catch {
                fail(error, now: now)
                return
            }
            if closeFrame != nil || isDrainingOrClosed { return }
        }
        if elicits {
            spaces[index].unacknowledgedElicitingCount += 1
            if spaces[index].ackElicitingSince == nil { spaces[index].ackElicitingSince = now }
        }
    }

    /// A client's answer to Retry (RFC 9000 §17.2.5.2): one only, before any server Initial, with a
    /// valid integrity tag (RFC 9001 §5.8); then Initials restart under keys from the new DCID,
    /// carrying the token, with the CRYPTO stream resent from offset 0 (packet numbers go on).
    private func receiveRetry(_ header: QUICPacketHeader, datagram: ByteBuffer, now: Instant) {
        guard role == .client, !receivedServerInitial, retrySourceID == nil, header.destinationID == sourceID,
              !header.token.isEmpty, header.sourceID != destinationID,
              let packet = datagram.getBytes(at: header.start, length: header.end - header.start), packet.count > 16,
              quicRetryIntegrityTag(retryWithoutTag: Array(packet.dropLast(16)), originalDestinationID: originalDestinationID)
                == Array(packet.suffix(16)) else {
            droppedPackets += 1
            return
        }
        retrySourceID = header.sourceID
        retryToken = header.token
        destinationID = header.sourceID
        installInitialKeys(destinationID: header.sourceID)
        for packet in spaces[0].sent.values where packet.isAckEliciting { congestion.onDiscarded(size: packet.size) }
        spaces[0].sent.removeAll()
        spaces[0].cryptoSentUpTo = 0
        spaces[0].cryptoResend.removeAll()
        spaces[0].timeOfLastAckEliciting = nil
        ptoCount = 0
    }

    private func handle(_ frame: QUICFrame, space index: Int, now: Instant) throws(QUICConnectionError) {
        switch frame {
        case .padding, .ping: break
        case .ack(let ack): try onAck(ack, space: index, now: now)
        case .crypto(let offset, let data):
            let bytes = try spaces[index].receiveCrypto(offset: offset, data: data)
            if !bytes.isEmpty { try provideToTLS(bytes, space: index, now: now) }
        case .handshakeDone:
            // RFC 9000 §19.20: only servers send it.
            guard role == .client else { throw .transport(.protocolViolation, frameType: 0x1E, "HANDSHAKE_DONE from client") }
            confirmHandshake()
        case .newToken:
            guard role == .client else { throw .transport(.protocolViolation, frameType: 0x07, "NEW_TOKEN from client") }
        case .newConnectionID(let sequence, let retirePriorTo, let id, let token):
            // RFC 9000 §19.15: a zero-length-ID peer may not send this; we use non-empty IDs with it.
            guard !destinationID.bytes.isEmpty else { throw .transport(.protocolViolation, frameType: 0x18, "NEW_CONNECTION_ID with zero-length ID") }
            if peerIDs[sequence] == nil, sequence >= destinationSequence { peerIDs[sequence] = (id, token) }
            if peerIDs.count > Int(configuration.activeConnectionIDLimit) + 1 {
                throw .transport(.connectionIDLimitError, frameType: 0x18, "too many connection IDs")
            }
            if retirePriorTo > destinationSequence {
                // Switch to the lowest still-valid ID and retire the old ones (§5.1.2).
                for (old, _) in peerIDs where old < retirePriorTo { peerIDs[old] = nil; pendingRetire.append(old) }
                if destinationSequence < retirePriorTo { pendingRetire.append(destinationSequence) }
                if let next = peerIDs.keys.min(), let entry = peerIDs[next] {
                    destinationSequence = next
                    destinationID = entry.id
                }
            }
        case .retireConnectionID(let sequence):
            guard sequence < nextLocalSequence else { throw .transport(.protocolViolation, frameType: 0x19, "retired an unissued ID") }
            if localIDs.removeValue(forKey: sequence) != nil { retiredLocal.append(sequence); issueConnectionIDs() }
        case .pathChallenge(let data):
            // Answered on the next packet; a flood of challenges keeps only the latest few (§8.2.2).
            if pathResponses.count >= 8 { pathResponses.removeFirst() }
            pathResponses.append(data)
        case .pathResponse: break  // we never challenge (no migration yet)
        case .connectionClose(let code, let frameType, let reason):
            let text = String(decoding: reason.readableBytesView, as: UTF8.self)
            // RFC 9000 §10.2.2: drain for three PTOs, sending nothing.
            state = .draining(until: now + probeTimeout(includeAckDelay: false) * 3)
            closeReason = QUICCloseReason(errorCode: code, isApplication: frameType == nil, reason: text, byPeer: true)
        case .datagram(let data):
            guard let limit = configuration.maxDatagramFrameSize, UInt64(data.readableBytes) <= limit else {
                throw .transport(.protocolViolation, frameType: 0x30, "unexpected DATAGRAM frame")  // RFC 9221 §3
            }
            events.append(.datagram(data))
        case .stream, .resetStream, .stopSending, .maxStreamData, .streamDataBlocked, .maxData, .maxStreams:
            try handleStreamFrame(frame)
        case .dataBlocked, .streamsBlocked: break  // informational (§19.12, §19.14)
        }
    }

    /// Hands in-order CRYPTO bytes to TLS and applies what it produced.
    private func provideToTLS(_ bytes: [UInt8], space index: Int, now: Instant) throws(QUICConnectionError) {
        let level: QUICEncryptionLevel = index == 0 ? .initial : index == 1 ? .handshake : .application
        do {
            try tls.provide(bytes, level: level)
        } catch {
            drainTLS()
            throw .transport(error.transportError, frameType: 0x06, error.message)
        }
        drainTLS()
        if peerParameters == nil, let raw = tls.peerTransportParameters {
            try applyPeerParameters(raw)
        }
        if state == .handshaking, tls.isComplete {
            // RFC 9001 §8.1: QUIC requires ALPN; no agreement is no_application_protocol (120).
            guard let protocolName = tls.negotiatedALPN else {
                throw .transport(.cryptoError(120), frameType: 0x06, "no application protocol")
            }
            alpn = protocolName
            state = .established
            events.append(.handshakeCompleted(alpn: protocolName))
            if role == .server {
                // RFC 9001 §4.1.2: the server's handshake is confirmed once complete.
                handshakeDonePending = true
                confirmHandshake()
            }
            issueConnectionIDs()
        }
    }

    private func applyPeerParameters(_ raw: [UInt8]) throws(QUICConnectionError) {
        let parameters: QUICTransportParameters
        do {
            parameters = try QUICTransportParameters(parsing: ByteBuffer(bytes: raw), fromServer: role == .client)
        } catch {
            throw .transport(.transportParameterError, frameType: 0x06, "malformed transport parameters")
        }
        // RFC 9000 §7.3: authenticate the connection IDs of the handshake.
        if role == .client {
            guard parameters.originalDestinationConnectionID == originalDestinationID,
                  parameters.initialSourceConnectionID == destinationID,
                  parameters.retrySourceConnectionID == retrySourceID else {
                throw .transport(.transportParameterError, frameType: 0x06, "connection ID mismatch")
            }
        } else {
            guard parameters.initialSourceConnectionID == destinationID else {
                throw .transport(.transportParameterError, frameType: 0x06, "connection ID mismatch")
            }
        }
        peerParameters = parameters
        applyPeerStreamLimits(parameters)
        if let token = parameters.statelessResetToken { peerIDs[0] = (destinationID, token) } else { peerIDs[0] = (destinationID, []) }
    }

    /// Moves what TLS queued (secrets, handshake bytes) into the packet spaces.
    func drainTLS() {
        for secret in tls.secrets {
            let index: Int
            switch secret.level {
            case .initial: index = 0
            case .handshake: index = 1
            case .application: index = 2
            case .earlyData: continue  // 0-RTT is not offered
            }
            let key = QUICPacketKey(suite: secret.suite, secret: secret.secret)
            if secret.isWrite { spaces[index].writeKey = key } else { spaces[index].readKey = key }
        }
        tls.secrets.removeAll()
        for (level, data) in tls.outgoing {
            let index = level == .initial ? 0 : level == .handshake ? 1 : 2
            spaces[index].cryptoOut += data
        }
        tls.outgoing.removeAll()
    }

    func confirmHandshake() {
        guard !handshakeConfirmed else { return }
        handshakeConfirmed = true
        // RFC 9001 §4.9.2: Handshake keys go once the handshake is confirmed.
        discardSpace(1)
        if role == .client { discardSpace(0) }
    }

    /// Drops a space's keys and its recovery state (RFC 9001 §4.9, RFC 9002 §6.4).
    func discardSpace(_ index: Int) {
        guard !spaces[index].isDiscarded else { return }
        spaces[index].isDiscarded = true
        spaces[index].readKey = nil
        spaces[index].writeKey = nil
        for packet in spaces[index].sent.values where packet.isAckEliciting { congestion.onDiscarded(size: packet.size) }
        spaces[index].sent.removeAll()
        spaces[index].cryptoResend.removeAll()
        spaces[index].lossTime = nil
        spaces[index].unacknowledgedElicitingCount = 0
        spaces[index].ackElicitingSince = nil
        ptoCount = 0
    }

    /// Issues connection IDs up to the peer's active_connection_id_limit (RFC 9000 §5.1.1), at most 4 live.
    func issueConnectionIDs() {
        guard state == .established else { return }
        let limit = min(Int(peerParameters?.activeConnectionIDLimit ?? 2), 4)
        while localIDs.count < limit {
            let sequence = nextLocalSequence
            nextLocalSequence += 1
            localIDs[sequence] = .random(length: configuration.connectionIDLength, using: &random)
            pendingNewIDs.append(sequence)
        }
    }
}
