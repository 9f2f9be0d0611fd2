package import NetstackWire

/// One TCP connection as a pure state machine (RFC 9293), with the extensions a modern peer expects:
/// window scaling, timestamps and PAWS (RFC 7323), SACK (RFC 2018) and SACK-based loss recovery
/// (RFC 6675), RFC 6298 retransmission timing, NewReno (RFC 6582) or CUBIC (RFC 9438), RFC 5961
/// hardening against blind RST/SYN/ACK injection, delayed ACKs, zero-window probing and keepalive.
///
/// Contract with the owner (the stack's flow table), all on one thread:
/// 1. Hand it every segment of its 4-tuple with `receive(_:now:)` (checksum already verified).
/// 2. Move data with `send(_:)` / `read(max:)`; close with `shutdownWrite()` or `abort()`.
/// 3. After any of those, and whenever the returned deadline passes, call `transmit(into:now:)`: it appends
///    the segments to send and returns the next deadline (nil: nothing timed is pending).
/// 4. `takeEvents()` says what changed; once `state == .closed` the owner drops the connection.
///
/// Segments carry no ports; the owner adds the 4-tuple and the checksum. A data segment whose payload
/// exceeds `sendMSS` (only when `configuration.maxSegmentBytes` allows it) must be split by the owner into
/// `sendMSS`-byte pieces (TSO/GSO), each with a copy of the header.
///
/// Buffer ownership (what keeps the hot path free of copies and allocations):
/// - Emitted payloads are slices of the send buffer. Drop them once written to the device (for example
///   `segments.removeAll(keepingCapacity: true)`) before the next `send(_:)`, or that append copies the
///   whole buffer (copy-on-write).
/// - Received payloads are kept as slices of the owner's packet buffers until `read(max:)` hands them out;
///   the owner must not reuse a packet buffer's storage in place while the connection holds a slice of it.
///   The receive limit counts payload bytes, not the storage those slices pin.
package struct TCPConnection: Sendable {
    package let configuration: TCPConfiguration
    package internal(set) var state: TCPState
    var pendingEvents: TCPEvents = []
    /// Why the connection is (or is about to be) CLOSED.
    package internal(set) var closeReason: TCPCloseReason?

    // MARK: Send sequence space (RFC 9293 §3.3.1)
    /// Initial send sequence number.
    package internal(set) var initialSendSequence: SeqNumber
    /// SND.UNA: oldest unacknowledged sequence number.
    package internal(set) var sendUnacknowledged: SeqNumber
    /// The highest sequence number sent + 1 (RFC 9293's SND.NXT; retransmissions never move it back).
    package internal(set) var sendNext: SeqNumber
    /// SND.WND in bytes (already scaled).
    package internal(set) var sendWindow = 0
    /// The largest window the peer ever offered (RFC 5961 §5.2 MAX.SND.WND; SWS avoidance).
    var maximumSendWindow = 0
    var sendWindowUpdateSequence = SeqNumber(0)  // SND.WL1
    var sendWindowUpdateAcknowledgment = SeqNumber(0)  // SND.WL2
    /// The peer's window shift (Snd.Wind.Shift) and ours (Rcv.Wind.Shift), RFC 7323 §2.
    package internal(set) var sendWindowScale: UInt8 = 0
    package internal(set) var receiveWindowScale: UInt8 = 0
    /// The peer's MSS option (536 when absent, RFC 9293 §3.7.1).
    package internal(set) var peerMaximumSegmentSize = 536
    /// The MSS the path allows, once ICMP said it is below the configured one (RFC 1191, RFC 8201).
    package internal(set) var pathMaximumSegmentSize: Int?

    /// Data not yet acknowledged: its reader index is the byte at `sendBufferStart`.
    var sendBuffer: PacketBuffer
    /// Sequence number of the first byte in `sendBuffer`.
    var sendBufferStart: SeqNumber
    /// The owner asked to close the send side; the FIN goes after the last buffered byte.
    package internal(set) var finQueued = false
    /// The FIN has been sent at least once (its sequence number is `sendDataEnd`).
    var finSent = false
    /// The SYN (active open) or SYN-ACK (passive open) must be (re)sent.
    var synPending = false

    // MARK: Loss recovery (RFC 6675, RFC 6582)
    package internal(set) var scoreboard = TCPScoreboard()
    /// HighRxt + 1: retransmissions covered everything below this.
    var retransmitNext: SeqNumber
    package internal(set) var recovery: Recovery = .none
    /// The "recover" variable of RFC 6582: no new reduction before this is acknowledged.
    var recoverPoint: SeqNumber
    var duplicateAcks = 0
    /// RFC 8985 §7 tail loss probe: the probe timer (PTO), a probe due at the next transmit, and the end
    /// of the probed data while its answer is awaited (one probe per episode).
    var probeDeadline: Instant?
    var probePending = false
    var probeEnd: SeqNumber?
    /// Set when a probe came back SACKed above a hole: every un-SACKed byte below the probed segment was
    /// sent before it and is lost (RACK's rule, RFC 8985 §6.2, with no reordering window; Eifel undoes
    /// the reduction if that was wrong). Cleared when recovery ends.
    var probeLossBoundary: SeqNumber?
    /// Send the next retransmission regardless of cwnd − pipe: the fast retransmit itself (RFC 6675 §5
    /// step 4.3) and, without SACK, the retransmission after a partial ACK (RFC 6582 §3.2 step 3).
    var forceRetransmission = false
    /// Eifel detection (RFC 3522) and response (RFC 4015): the controller before the last reduction and
    /// the TSval of the first retransmission after it. If the first ACK that covers that retransmission
    /// echoes an older TSval, it answers the original: the retransmission was spurious (reordering or a
    /// delay spike) and the reduction is undone.
    var congestionBeforeReduction: TCPCongestionController?
    /// Retransmissions of this recovery with SND.NXT when each left (RACK's rule for a lost retransmission,
    /// RFC 8985 §6.2: once data first sent after a retransmission is SACKed while the retransmission is
    /// still missing, it was lost too and is resent, without waiting for the RTO). At most
    /// `retransmissionLogLimit`, oldest dropped.
    var retransmissionLog: [(start: SeqNumber, end: SeqNumber, sendNextThen: SeqNumber)] = []
    static let retransmissionLogLimit = 64
    /// Lost retransmissions found that way, for tests and counters.
    package internal(set) var lostRetransmissionCount = 0
    var firstRetransmissionTimestamp: UInt32?
    /// Reductions undone after spurious retransmissions, for tests and counters.
    package internal(set) var spuriousRecoveryCount = 0
    package internal(set) var congestion: TCPCongestionController
    package internal(set) var rttEstimator: TCPRTTEstimator
    /// One segment being timed when timestamps are off (Karn: cleared on retransmission).
    var rttProbe: (sequenceNumber: SeqNumber, sentAt: Instant)?
    var retransmitDeadline: Instant?
    /// Retransmission timeouts of data (not the handshake) over the connection's life.
    package internal(set) var dataTimeouts = 0
    /// Consecutive timeouts without progress.
    package internal(set) var retransmitCount = 0
    /// Retransmitted segments, for tests and counters.
    package internal(set) var retransmittedSegmentCount = 0

    /// Why the sender is retransmitting.
    package enum Recovery: Hashable, Sendable {
        case none
        /// Fast retransmit/recovery until `recoverPoint` is acknowledged.
        case fast
        /// After a retransmission timeout: everything below `recoverPoint` not SACKed is lost.
        case timeout
    }

    // MARK: Receive sequence space
    package internal(set) var initialReceiveSequence = SeqNumber(0)
    /// RCV.NXT.
    package internal(set) var receiveNext = SeqNumber(0)
    /// The right edge we advertised (RCV.NXT + RCV.WND); never moves left (RFC 9293 §3.8.6.2.2).
    var receiveEdge = SeqNumber(0)
    package internal(set) var receiveQueue = TCPReceiveQueue()
    /// The receive buffer's current limit (auto-tuned up to `receiveBufferMaximum`).
    package internal(set) var receiveBufferLimit: Int
    /// The peer's FIN was received in order.
    package internal(set) var finReceived = false
    /// A FIN seen beyond a hole, waiting for the hole to fill.
    var outOfOrderFIN: SeqNumber?
    var autotuneStart: Instant
    var autotuneBytes = 0

    // MARK: Negotiated options
    package internal(set) var sackEnabled = false
    /// Both SYNs carried a window scale option.
    package internal(set) var windowScalingEnabled = false
    package internal(set) var timestampsEnabled = false
    /// TS.Recent and when it was set (RFC 7323 §5.3, §5.5).
    var timestampRecent: UInt32 = 0
    var timestampRecentAge = Instant.zero
    /// Added to our millisecond clock so TSvals do not reveal uptime (RFC 7323 §7.1).
    let timestampOffset: UInt32
    var lastAcknowledgmentSent = SeqNumber(0)

    // MARK: Acknowledgment and timers
    var ackPending = false
    var delayedAckDeadline: Instant?
    /// Full-sized segments received since the last ACK (ACK at least every second one, RFC 5681 §4.2).
    var unacknowledgedSegments = 0
    var persistDeadline: Instant?
    var persistBackoff = 0
    var windowProbePending = false
    var keepaliveDeadline: Instant?
    var keepaliveProbesSent = 0
    var keepaliveProbePending = false
    var timeWaitDeadline: Instant?
    /// A RST to emit on the next `transmit` (responses to bad segments, `abort()`).
    var pendingReset: TCPSegment?
    /// RFC 5961 §7 challenge-ACK rate limit: at most `challengeAckLimit` per second.
    var challengeAckWindowStart = Instant.zero
    var challengeAcksSent = 0
    package static let challengeAckLimit = 10
    /// Latest time handed in, for operations that take no `now` (`read`, `send`).
    var lastNow: Instant

    // MARK: Creation

    /// An active open: SYN-SENT, with the SYN emitted by the first `transmit`.
    /// - Parameters:
    ///   - initialSequenceNumber: from the owner's seeded generator (RFC 6528 recommends a keyed hash).
    ///   - timestampOffset: a per-connection random offset for TSvals.
    package init(connecting configuration: TCPConfiguration, initialSequenceNumber: SeqNumber,
                 timestampOffset: UInt32 = 0, now: Instant) {
        self.init(configuration: configuration, state: .synSent, iss: initialSequenceNumber,
                  timestampOffset: timestampOffset, now: now)
        synPending = true
        receiveWindowScale = configuration.windowScaling ? Self.windowScale(for: configuration.receiveBufferMaximum) : 0
    }

    /// A passive open in LISTEN: the next acceptable SYN moves it to SYN-RECEIVED.
    package init(listening configuration: TCPConfiguration, initialSequenceNumber: SeqNumber,
                 timestampOffset: UInt32 = 0, now: Instant) {
        self.init(configuration: configuration, state: .listen, iss: initialSequenceNumber,
                  timestampOffset: timestampOffset, now: now)
    }

    /// A passive open from a SYN the owner already accepted (transparent termination): SYN-RECEIVED,
    /// with the SYN-ACK emitted by the first `transmit`. Returns nil unless `syn` is a SYN without ACK,
    /// RST or FIN.
    package init?(accepting syn: TCPSegment, configuration: TCPConfiguration, initialSequenceNumber: SeqNumber,
                  timestampOffset: UInt32 = 0, now: Instant) {
        guard syn.flags.contains(.syn), syn.flags.isDisjoint(with: [.ack, .rst, .fin]) else { return nil }
        self.init(listening: configuration, initialSequenceNumber: initialSequenceNumber,
                  timestampOffset: timestampOffset, now: now)
        receive(syn, now: now)
        guard state == .synReceived else { return nil }
    }

    init(configuration: TCPConfiguration, state: TCPState, iss: SeqNumber, timestampOffset: UInt32, now: Instant) {
        self.configuration = configuration
        self.state = state
        self.initialSendSequence = iss
        self.sendUnacknowledged = iss
        self.sendNext = iss
        self.retransmitNext = iss
        self.recoverPoint = iss
        self.sendBufferStart = iss + 1
        self.sendBuffer = PacketBuffer()
        self.timestampOffset = timestampOffset
        self.receiveBufferLimit = min(configuration.receiveBufferInitial, configuration.receiveBufferMaximum)
        let mss = min(configuration.maximumSegmentSize, 536)
        self.congestion = TCPCongestionController(configuration.congestionControl,
                                                  initialWindow: configuration.initialWindowSegments * mss)
        self.rttEstimator = TCPRTTEstimator(initial: configuration.initialRetransmitTimeout,
                                            minimum: configuration.minimumRetransmitTimeout,
                                            maximum: configuration.maximumRetransmitTimeout)
        self.autotuneStart = now
        self.lastNow = now
    }

    /// The smallest shift that lets `buffer` bytes be advertised in 16 bits (RFC 7323 §2.3: at most 14).
    static func windowScale(for buffer: Int) -> UInt8 {
        var shift: UInt8 = 0
        while shift < 14, (buffer >> Int(shift)) > 65535 { shift += 1 }
        return shift
    }

    // MARK: Owner API

    /// Returns and clears what happened since the last call.
    package mutating func takeEvents() -> TCPEvents {
        defer { pendingEvents = [] }
        return pendingEvents
    }

    /// The largest payload of one wire segment: the smaller MSS of both sides, minus the timestamp option
    /// (RFC 9293 §3.7.1: the MSS excludes options). GSO splits super-segments at this size.
    package var sendMSS: Int {
        let base = min(peerMaximumSegmentSize, configuration.maximumSegmentSize, pathMaximumSegmentSize ?? .max)
        return max(base - (timestampsEnabled ? 12 : 0), 64)
    }

    /// Bytes `send(_:)` would accept now.
    package var sendSpace: Int {
        guard state.maySend, !finQueued else { return 0 }
        return max(0, sendBufferLimit - sendBuffer.readableBytes)
    }

    /// The send buffer auto-tunes to twice the congestion window (Linux's tcp_sndbuf_expand idea).
    var sendBufferLimit: Int {
        min(configuration.sendBufferMaximum, max(configuration.sendBufferInitial, 2 * congestion.congestionWindow))
    }

    /// Bytes queued but not yet acknowledged.
    package var bufferedSendByteCount: Int { sendBuffer.readableBytes }

    /// In-order bytes `read(max:)` can return.
    package var readableByteCount: Int { receiveQueue.readyByteCount }

    /// True once the peer's FIN was received and all data before it has been read.
    package var isReadClosed: Bool { finReceived && receiveQueue.readyByteCount == 0 }

    /// Copies as much of `data` as fits into the send buffer and consumes it from `data`.
    /// Returns the bytes taken (0 when the state no longer allows sending or the buffer is full).
    @discardableResult
    package mutating func send(_ data: inout PacketBuffer) -> Int {
        let taken = data.withUnsafeReadableBytes { send(bytes: $0) }
        data.moveReaderIndex(forwardBy: taken)
        return taken
    }

    /// Copies as much of `bytes` as fits into the send buffer; returns the count taken (0 when the
    /// state no longer allows sending or the buffer is full).
    @discardableResult
    package mutating func send(bytes: UnsafeRawBufferPointer) -> Int {
        let count = min(sendSpace, bytes.count)
        guard count > 0 else { return 0 }
        if sendBuffer.readerIndex > 0, sendBuffer.readerIndex >= sendBuffer.writerIndex / 2 {
            // Reclaim acknowledged space before growing (amortised: at most one move per half buffer).
            sendBuffer.discardReadBytes()
        }
        sendBuffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[..<count]))
        return count
    }

    /// Takes up to `max` in-order received bytes. Reading opens the receive window; a window update is
    /// sent when it grew by enough to matter (RFC 9293 §3.8.6.2.2 receiver-side SWS avoidance).
    package mutating func read(max: Int) -> PacketBuffer? {
        guard let data = receiveQueue.read(max: max) else { return nil }
        if state.mayReceiveData {
            let advertised = Int(receiveEdge - receiveNext)
            let possible = receiveWindowAvailable
            let threshold = min(receiveBufferLimit / 2, Swift.max(2 * configuration.maximumSegmentSize, receiveBufferLimit / 8))
            if possible - advertised >= threshold { ackPending = true }
        }
        return data
    }

    /// Closes the send side: a FIN follows the buffered data (ESTABLISHED → FIN-WAIT-1,
    /// CLOSE-WAIT → LAST-ACK). In SYN-SENT/SYN-RECEIVED the FIN waits for the handshake.
    package mutating func shutdownWrite() {
        guard !finQueued else { return }
        switch state {
        case .established:
            finQueued = true
            state = .finWait1
        case .closeWait:
            finQueued = true
            state = .lastAck
        case .synSent, .synReceived:
            finQueued = true
        case .listen:
            enterClosed(.normal, events: .closed)
        default:
            break
        }
    }

    /// The path MTU shrank: an ICMP "fragmentation needed" / "packet too big" quoted one of our segments
    /// (RFC 1191 §6.4, RFC 8201 §5.4). `maximumSegmentSize` is the new MTU minus the IP and TCP fixed
    /// headers. Segments in flight were larger and are lost, so everything unacknowledged is resent at the
    /// new size; this is not congestion, so cwnd stays (Linux's tcp_simple_retransmit).
    /// The owner validates the ICMP first (RFC 5927: the quoted sequence number lies in
    /// `sendUnacknowledged..<sendNext`). Ignored unless it lowers the MSS; never below 536 bytes
    /// (RFC 9293's default, which IPv4 paths must carry).
    package mutating func reducePathMSS(to maximumSegmentSize: Int) {
        let current = min(pathMaximumSegmentSize ?? .max, configuration.maximumSegmentSize)
        let new = max(maximumSegmentSize, 536)
        guard new < current else { return }
        pathMaximumSegmentSize = new
        guard state.isSynchronized, flightSize > 0, sendUnacknowledged != initialSendSequence else { return }
        recovery = .timeout
        recoverPoint = sendNext
        retransmitNext = sendUnacknowledged
        forceRetransmission = true
        rttProbe = nil
    }

    /// Resets the connection (RFC 9293 §3.10.5 ABORT): a RST goes out if the peer knows us, buffers are
    /// dropped, and the state is CLOSED at once.
    package mutating func abort() {
        switch state {
        case .synReceived, .established, .finWait1, .finWait2, .closeWait:
            pendingReset = TCPSegment(sequenceNumber: sendNext, flags: [.rst])
        default:
            break
        }
        enterClosed(.aborted, events: [])
    }

    /// Moves to CLOSED, dropping buffers and timers.
    mutating func enterClosed(_ reason: TCPCloseReason, events: TCPEvents) {
        state = .closed
        if closeReason == nil { closeReason = reason }
        pendingEvents.formUnion(events)
        sendBuffer.clear()
        retransmitDeadline = nil
        delayedAckDeadline = nil
        persistDeadline = nil
        keepaliveDeadline = nil
        timeWaitDeadline = nil
        ackPending = false
        synPending = false
    }

    /// The sequence number just past the last queued data byte (the FIN's, once queued).
    var sendDataEnd: SeqNumber { sendBufferStart + sendBuffer.readableBytes }

    /// Bytes sent and not yet acknowledged (SYN and FIN included).
    package var flightSize: Int { Int(sendNext - sendUnacknowledged) }

    /// Free receive space right of RCV.NXT under the current limit.
    var receiveWindowAvailable: Int {
        max(0, receiveBufferLimit - receiveQueue.bufferedByteCount)
    }
}
