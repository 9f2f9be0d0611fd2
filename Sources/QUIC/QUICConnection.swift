// QUICConnection: one QUIC v1 connection, client or server, as a sans-I/O state machine.
//
// 1. `receive(datagram:now:)`: split coalesced packets (RFC 9000 §12.2), remove protection with
//    the space's keys (RFC 9001 §5), drop duplicates, run the frames, hand CRYPTO bytes to TLS.
// 2. `transmit(now:)`: run due timers (idle, ACK delay, loss and PTO per RFC 9002), then build
//    datagrams: ACKs, CRYPTO, HANDSHAKE_DONE, connection IDs, DATAGRAMs, CONNECTION_CLOSE, padded
//    to 1200 bytes when they carry an ack-eliciting Initial (§14.1), within the server's
//    anti-amplification budget (§8.1).
// 3. `nextDeadline`: when to call `transmit` again without new input.
// 4. The owner drains `nextEvent()` (handshake done, datagrams, close).
//
// One owner, one thread; a class because TLS callbacks and the owner refer to it.
package import NIOCore
package import NetstackWire

/// Why a connection is closing, as the transport sees it.
package enum QUICConnectionError: Error, Equatable, Sendable {
    /// A transport error (CONNECTION_CLOSE 0x1c) with the frame type that caused it.
    case transport(QUICTransportError, frameType: UInt64, String)
}

/// How a connection ended.
package struct QUICCloseReason: Equatable, Sendable, CustomStringConvertible {
    /// The error code (transport or application space).
    package var errorCode: UInt64
    /// Whether `errorCode` is an application error (CONNECTION_CLOSE 0x1d).
    package var isApplication: Bool
    /// The reason phrase.
    package var reason: String
    /// Whether the peer closed (false: we did, or the idle timer did).
    package var byPeer: Bool
    /// Whether the idle timeout ended the connection silently (RFC 9000 §10.1).
    package var idleTimeout = false

    package var description: String {
        if idleTimeout { return "timeout: no recent network activity" }
        let code = isApplication ? "application error 0x\(String(errorCode, radix: 16))" : QUICTransportError(rawValue: errorCode).description
        return "\(byPeer ? "peer closed" : "closed"): \(code)\(reason.isEmpty ? "" : " (\(reason))")"
    }
}

/// What happened on a connection, for its owner.
package enum QUICConnectionEvent: Sendable, Equatable {
    /// TLS finished; `alpn` is the negotiated protocol.
    case handshakeCompleted(alpn: String)
    /// A DATAGRAM frame's payload (RFC 9221).
    case datagram(ByteBuffer)
    /// The peer opened a stream.
    case streamOpened(UInt64)
    /// A stream has data (or its end) to read with `readStream`; sent again only after a read.
    case streamReadable(UInt64)
    /// The peer reset its sending half (RESET_STREAM) with an application error code.
    case streamReset(UInt64, errorCode: UInt64)
    /// The peer asked us to stop sending (STOP_SENDING); we answered with RESET_STREAM.
    case streamStopSending(UInt64, errorCode: UInt64)
    /// The connection is closed (draining or closing finished, or idle timeout).
    case closed(QUICCloseReason)
}

/// Settings of one endpoint.
package struct QUICConfiguration: Sendable {
    package var tls: QUICTLSConfiguration
    /// max_idle_timeout we advertise; zero disables it.
    package var idleTimeout: Duration = .seconds(30)
    /// Flow control we grant (RFC 9000 §4): connection, per stream, stream counts.
    package var initialMaxData: UInt64 = 16 << 20
    package var initialMaxStreamData: UInt64 = 4 << 20
    package var initialMaxStreamsBidi: UInt64 = 100
    package var initialMaxStreamsUni: UInt64 = 100
    /// RFC 9221: the largest DATAGRAM frame we accept; nil disables DATAGRAM.
    package var maxDatagramFrameSize: UInt64? = 1500
    /// The largest UDP payload we send (no path MTU discovery yet: QUIC's minimum).
    package var maxUDPPayloadSize = 1200
    /// Length of the connection IDs we issue.
    package var connectionIDLength = 8
    /// active_connection_id_limit we advertise.
    package var activeConnectionIDLimit: UInt64 = 4

    package init(tls: QUICTLSConfiguration) { self.tls = tls }
}

/// One QUIC connection. See the file header for the flow.
package final class QUICConnection {
    package enum Role: Sendable { case client, server }
    enum State: Equatable { case handshaking, established, closing(until: Instant), draining(until: Instant), closed }

    package let role: Role
    let configuration: QUICConfiguration
    var random: any RandomNumberGenerator
    var tls: QUICTLSSession!
    var state = State.handshaking
    var spaces = [QUICPacketSpace(), QUICPacketSpace(), QUICPacketSpace()]
    var events: [QUICConnectionEvent] = []
    var rtt = QUICRTTEstimator()
    var ptoCount = 0

    /// The client's first Destination Connection ID (Initial keys and transport parameter check).
    package internal(set) var originalDestinationID: QUICConnectionID
    /// Where we send: the peer's current connection ID.
    package internal(set) var destinationID: QUICConnectionID
    var destinationSequence: UInt64 = 0
    /// Connection IDs the peer issued us (sequence → ID), for when it retires ours.
    var peerIDs: [UInt64: (id: QUICConnectionID, token: [UInt8])] = [:]
    /// IDs we issued (sequence → ID); any of them may address us.
    package internal(set) var localIDs: [UInt64: QUICConnectionID] = [:]
    var nextLocalSequence: UInt64 = 1
    var pendingNewIDs: [UInt64] = []
    var pendingRetire: [UInt64] = []
    var retiredLocal: [UInt64] = []
    var localResetTokens: [UInt64: [UInt8]] = [:]
    var keyUpdate = QUICKeyUpdateState()
    var streams: [UInt64: QUICStream] = [:]
    var streamLimits: QUICStreamLimits
    var connectionFlow: QUICConnectionFlow
    var readableNotified: Set<UInt64> = []
    var lastStreamServed: UInt64 = 0
    /// The congestion controller (RFC 9002 §7).
    package internal(set) var congestion: QUICNewReno
    /// The peer's transport parameters, once TLS delivered them.
    package internal(set) var peerParameters: QUICTransportParameters?
    var receivedServerInitial = false
    var handshakeConfirmed = false
    var handshakeDonePending = false
    var pathResponses: [UInt64] = []
    var outgoingDatagrams: [ByteBuffer] = []
    var closeFrame: QUICFrame?
    var closeReason: QUICCloseReason?
    var closeNeedsSending = false

    // Anti-amplification (RFC 9000 §8.1): until the client's address is validated, a server sends
    // at most three times what it received.
    var addressValidated: Bool
    var bytesReceived = 0
    var bytesSent = 0
    var lastActivity: Instant
    /// Whether an ack-eliciting packet went out since the last packet was received (RFC 9000 §10.1).
    var sentElicitingSinceReceive = false
    /// Client: the Retry token to put in Initials, and the server's Retry SCID (RFC 9000 §8.1.2).
    var retryToken: [UInt8] = []
    var retrySourceID: QUICConnectionID?
    /// Packets dropped because they could not be read or opened.
    package internal(set) var droppedPackets = 0

    /// The negotiated ALPN protocol, once the handshake completed.
    package internal(set) var alpn: String?

    /// Our connection ID of sequence 0 (the one in our long headers).
    package var sourceID: QUICConnectionID { localIDs[0] ?? .empty }
    /// Whether the handshake completed.
    package var isEstablished: Bool { state == .established }
    /// Whether the connection is gone and may be freed.
    package var isClosed: Bool { state == .closed }

    /// A client connection; the first datagram comes from `transmit(now:)`.
    package init(client configuration: QUICConfiguration, now: Instant, random: some RandomNumberGenerator = SystemRandomNumberGenerator()) throws(QUICTLSError) {
        role = .client
        self.configuration = configuration
        streamLimits = QUICStreamLimits(localMaxBidi: configuration.initialMaxStreamsBidi, localMaxUni: configuration.initialMaxStreamsUni)
        connectionFlow = QUICConnectionFlow(localMax: configuration.initialMaxData)
        congestion = QUICNewReno(maxDatagramSize: configuration.maxUDPPayloadSize)
        var generator = random
        originalDestinationID = .random(length: 8, using: &generator)
        destinationID = originalDestinationID
        localIDs[0] = .random(length: configuration.connectionIDLength, using: &generator)
        self.random = generator
        addressValidated = true
        lastActivity = now
        installInitialKeys()
        var parameters = localParameters()
        parameters.initialSourceConnectionID = localIDs[0]
        tls = try QUICTLSSession(configuration: configuration.tls, isClient: true, transportParameters: parameters.encoded())
        try tls.start()
        drainTLS()
    }

    /// A server connection for a client's first Initial (whose header the endpoint parsed).
    package init(server configuration: QUICConfiguration, firstInitial header: QUICPacketHeader, now: Instant,
                 random: some RandomNumberGenerator = SystemRandomNumberGenerator()) throws(QUICTLSError) {
        role = .server
        self.configuration = configuration
        streamLimits = QUICStreamLimits(localMaxBidi: configuration.initialMaxStreamsBidi, localMaxUni: configuration.initialMaxStreamsUni)
        connectionFlow = QUICConnectionFlow(localMax: configuration.initialMaxData)
        congestion = QUICNewReno(maxDatagramSize: configuration.maxUDPPayloadSize)
        var generator = random
        originalDestinationID = header.destinationID
        destinationID = header.sourceID
        localIDs[0] = .random(length: configuration.connectionIDLength, using: &generator)
        self.random = generator
        addressValidated = false
        lastActivity = now
        installInitialKeys()
        var parameters = localParameters()
        parameters.originalDestinationConnectionID = originalDestinationID
        parameters.initialSourceConnectionID = localIDs[0]
        parameters.statelessResetToken = (0..<16).map { _ in UInt8.random(in: 0...255, using: &self.random) }
        tls = try QUICTLSSession(configuration: configuration.tls, isClient: false, transportParameters: parameters.encoded())
    }

    func installInitialKeys(destinationID initialID: QUICConnectionID? = nil) {
        let secrets = quicInitialSecrets(destinationID: initialID ?? originalDestinationID)
        let ours = role == .client ? secrets.client : secrets.server, theirs = role == .client ? secrets.server : secrets.client
        spaces[0].writeKey = QUICPacketKey(suite: .aes128GCMSHA256, secret: ours)
        spaces[0].readKey = QUICPacketKey(suite: .aes128GCMSHA256, secret: theirs)
    }

    private func localParameters() -> QUICTransportParameters {
        var parameters = QUICTransportParameters()
        parameters.maxIdleTimeout = UInt64(configuration.idleTimeout.nanosecondsClamped / 1_000_000)
        parameters.maxUDPPayloadSize = 1452
        parameters.initialMaxData = configuration.initialMaxData
        parameters.initialMaxStreamDataBidiLocal = configuration.initialMaxStreamData
        parameters.initialMaxStreamDataBidiRemote = configuration.initialMaxStreamData
        parameters.initialMaxStreamDataUni = configuration.initialMaxStreamData
        parameters.initialMaxStreamsBidi = configuration.initialMaxStreamsBidi
        parameters.initialMaxStreamsUni = configuration.initialMaxStreamsUni
        parameters.activeConnectionIDLimit = configuration.activeConnectionIDLimit
        parameters.maxDatagramFrameSize = configuration.maxDatagramFrameSize
        return parameters
    }

    /// The next event for the owner, if any.
    package func nextEvent() -> QUICConnectionEvent? { events.isEmpty ? nil : events.removeFirst() }

    /// Queues a DATAGRAM frame (RFC 9221). False when the peer does not accept DATAGRAM or the
    /// payload does not fit its limit or one packet.
    @discardableResult package func sendDatagram(_ payload: ByteBuffer) -> Bool {
        // A bounded queue: DATAGRAM is unreliable, so a sender outrunning the path loses frames here.
        guard state == .established, outgoingDatagrams.count < 1024, let limit = peerParameters?.maxDatagramFrameSize,
              UInt64(payload.readableBytes) + 9 <= limit, payload.readableBytes + 60 <= configuration.maxUDPPayloadSize else { return false }
        outgoingDatagrams.append(payload)
        return true
    }

    /// The largest DATAGRAM payload `sendDatagram` takes now: one packet's room (our UDP payload
    /// size less short header, AEAD tag and frame header) within the peer's
    /// max_datagram_frame_size; nil when the peer does not accept DATAGRAM or the handshake is not done.
    package var maxDatagramPayloadSize: Int? {
        guard state == .established, let limit = peerParameters?.maxDatagramFrameSize, limit > 9 else { return nil }
        return min(configuration.maxUDPPayloadSize - 60, Int(min(limit - 9, UInt64(Int.max))))
    }

    /// Closes with an application error (CONNECTION_CLOSE 0x1d; RFC 9000 §10.2).
    package func close(errorCode: UInt64, reason: String = "", now: Instant) {
        guard closeFrame == nil, state != .closed else { return }
        if case .draining = state { return }
        enterClosing(frame: .connectionClose(errorCode: errorCode, frameType: nil, reason: ByteBuffer(string: reason)),
                     reason: QUICCloseReason(errorCode: errorCode, isApplication: true, reason: reason, byPeer: false), now: now)
    }

    func enterClosing(frame: QUICFrame, reason: QUICCloseReason, now: Instant) {
        closeFrame = frame
        closeReason = reason
        closeNeedsSending = true
        // RFC 9000 §10.2: stay closing for three PTOs, answering packets with CONNECTION_CLOSE.
        state = .closing(until: now + probeTimeout(includeAckDelay: false) * 3)
    }

    func fail(_ error: QUICConnectionError, now: Instant) {
        guard closeFrame == nil else { return }
        switch error {
        case .transport(let code, let frameType, let reason):
            enterClosing(frame: .connectionClose(errorCode: code.rawValue, frameType: frameType, reason: ByteBuffer(string: reason)),
                         reason: QUICCloseReason(errorCode: code.rawValue, isApplication: false, reason: reason, byPeer: false), now: now)
        }
    }

    func finish(_ reason: QUICCloseReason) {
        guard state != .closed else { return }
        state = .closed
        events.append(.closed(reason))
        for index in 0..<3 { spaces[index].sent.removeAll() }
        streams.removeAll()
    }

    /// The probe timeout (RFC 9002 §6.2.1) without backoff.
    func probeTimeout(includeAckDelay: Bool) -> Duration {
        var timeout = rtt.probeTimeout
        if includeAckDelay { timeout += .milliseconds(Int64(peerParameters?.maxAckDelay ?? 25)) }
        return timeout
    }

    /// The idle timeout in force: the smaller non-zero of ours and the peer's (RFC 9000 §10.1),
    /// at least three PTOs.
    var idleTimeout: Duration? {
        var timeout: Duration? = configuration.idleTimeout > .zero ? configuration.idleTimeout : nil
        if let peer = peerParameters?.maxIdleTimeout, peer > 0 {
            let peerTimeout = Duration.milliseconds(Int64(peer))
            timeout = timeout.map { min($0, peerTimeout) } ?? peerTimeout
        }
        return timeout.map { max($0, probeTimeout(includeAckDelay: false) * 3) }
    }

    /// When `transmit(now:)` must run next without new input; nil once closed.
    package var nextDeadline: Instant? {
        switch state {
        case .closed: return nil
        case .closing(let until), .draining(let until): return until
        default: break
        }
        var deadline = idleTimeout.map { lastActivity + $0 } ?? .distantFuture
        if let loss = lossOrProbeDeadline() { deadline = min(deadline, loss.time) }
        let ackDelay = Duration.milliseconds(25)
        // The ACK timer only matters when something may be sent (not while amplification-limited).
        if let since = spaces[2].ackElicitingSince, spaces[2].writeKey != nil, amplificationBudget >= 64 {
            deadline = min(deadline, since + ackDelay)
        }
        return deadline
    }
}
