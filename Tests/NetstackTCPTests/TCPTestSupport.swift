import NetstackTCP
import NetstackWire

/// The peer's initial sequence number and ours, in every state-machine test.
let peerISN = SeqNumber(5000)
let localISN = SeqNumber(1000)
let start = Instant.zero + .seconds(100)

extension TCPConfiguration {
    /// Defaults with a short TIME-WAIT so tests read easily.
    static var test: TCPConfiguration {
        var configuration = TCPConfiguration()
        configuration.timeWaitDuration = .seconds(60)
        return configuration
    }
}

/// `count` bytes 0, 1, 2, … (mod 251).
func bytes(_ count: Int, from offset: Int = 0) -> PacketBuffer {
    var buffer = PacketBuffer()
    for i in 0..<count { buffer.writeInteger(UInt8((offset + i) % 251)) }
    return buffer
}

/// One connection under test plus the peer's view: the peer's next sequence number, simulated time and
/// everything the connection emitted. Named constructors put it in each RFC 9293 state through real
/// transitions; `peer(...)` is the template segment, so each test states only what differs.
struct Harness {
    var connection: TCPConnection
    var now: Instant
    /// The peer's next sequence number (advanced by `receive` when the test does not pin `seq`).
    var peerNext: SeqNumber
    /// The peer's timestamp clock (when the peer uses timestamps).
    var peerTimestamp: UInt32 = 1000
    var peerUsesTimestamps = false
    var deadline: Instant?
    /// The TSval of the latest segment the connection sent (what the peer echoes).
    var lastTimestampSent: UInt32 = 0

    /// The peer's SYN: MSS 1460, optionally window scale 7, SACK-permitted and timestamps.
    static func peerSYN(modern: Bool) -> TCPSegment {
        var options = TCPOptions(maximumSegmentSize: 1460)
        if modern {
            options.windowScale = 7
            options.sackPermitted = true
            options.timestamp = TCPTimestampOption(value: 999, echoReply: 0)
        }
        return TCPSegment(sequenceNumber: peerISN, flags: .syn, window: 65535, options: options)
    }

    // MARK: Named constructors, one per state

    static func listen(_ configuration: TCPConfiguration = .test) -> Harness {
        Harness(connection: TCPConnection(listening: configuration, initialSequenceNumber: localISN, now: start),
                now: start, peerNext: peerISN)
    }

    static func synSent(_ configuration: TCPConfiguration = .test) -> Harness {
        var h = Harness(connection: TCPConnection(connecting: configuration, initialSequenceNumber: localISN, now: start),
                        now: start, peerNext: peerISN)
        _ = h.transmit()
        return h
    }

    static func synReceived(_ configuration: TCPConfiguration = .test, modern: Bool = false) -> Harness {
        let connection = TCPConnection(accepting: peerSYN(modern: modern), configuration: configuration,
                                       initialSequenceNumber: localISN, now: start)!
        var h = Harness(connection: connection, now: start, peerNext: peerISN + 1)
        h.peerUsesTimestamps = modern
        _ = h.transmit()
        return h
    }

    static func established(_ configuration: TCPConfiguration = .test, modern: Bool = false) -> Harness {
        var h = synReceived(configuration, modern: modern)
        h.now += .milliseconds(100)  // one round trip: SRTT 100 ms, RTO 300 ms
        h.receive(.ack)
        _ = h.connection.takeEvents()
        return h
    }

    static func finWait1(_ configuration: TCPConfiguration = .test) -> Harness {
        var h = established(configuration)
        h.connection.shutdownWrite()
        _ = h.transmit()
        return h
    }

    static func finWait2(_ configuration: TCPConfiguration = .test) -> Harness {
        var h = finWait1(configuration)
        h.receive(.ack)
        return h
    }

    static func closeWait(_ configuration: TCPConfiguration = .test) -> Harness {
        var h = established(configuration)
        h.receive([.fin, .ack])
        _ = h.transmit()
        _ = h.connection.takeEvents()
        return h
    }

    static func closing(_ configuration: TCPConfiguration = .test) -> Harness {
        var h = finWait1(configuration)
        // The peer's FIN acknowledges everything but our FIN.
        h.receive([.fin, .ack], ack: h.connection.sendNext - 1)
        _ = h.transmit()
        return h
    }

    static func lastAck(_ configuration: TCPConfiguration = .test) -> Harness {
        var h = closeWait(configuration)
        h.connection.shutdownWrite()
        _ = h.transmit()
        return h
    }

    static func timeWait(_ configuration: TCPConfiguration = .test) -> Harness {
        var h = finWait2(configuration)
        h.receive([.fin, .ack])
        _ = h.transmit()
        _ = h.connection.takeEvents()
        return h
    }

    // MARK: Driving

    /// The template segment from the peer: at `peerNext`, acknowledging everything we sent, a 64 KiB
    /// window (scaled by the peer's shift when negotiated), and a timestamp echoing ours if in use.
    func peer(_ flags: TCPFlags, seq: SeqNumber? = nil, ack: SeqNumber? = nil, window: UInt16 = 65535,
              payload: PacketBuffer = PacketBuffer(), sack: [(SeqNumber, SeqNumber)] = [], timestamp: UInt32? = nil) -> TCPSegment {
        var options = TCPOptions()
        for (low, high) in sack { options.sackBlocks.append(TCPSACKBlock(start: low, end: high)) }
        if peerUsesTimestamps {
            options.timestamp = TCPTimestampOption(value: timestamp ?? peerTimestamp,
                                                   echoReply: lastTimestampSent)
        }
        return TCPSegment(sequenceNumber: seq ?? peerNext, acknowledgmentNumber: ack ?? connection.sendNext,
                          flags: flags, window: window, options: options, payload: payload)
    }

    /// Delivers the template segment; when `seq` is not pinned, the peer's sequence number advances.
    mutating func receive(_ flags: TCPFlags, seq: SeqNumber? = nil, ack: SeqNumber? = nil, window: UInt16 = 65535,
                          payload: PacketBuffer = PacketBuffer(), sack: [(SeqNumber, SeqNumber)] = [], timestamp: UInt32? = nil) {
        let segment = peer(flags, seq: seq, ack: ack, window: window, payload: payload, sack: sack, timestamp: timestamp)
        if seq == nil { peerNext = segment.endSequenceNumber }
        connection.receive(segment, now: now)
    }

    mutating func deliver(_ segment: TCPSegment) { connection.receive(segment, now: now) }

    /// What the connection sends now.
    mutating func transmit() -> [TCPSegment] {
        var segments: [TCPSegment] = []
        deadline = connection.transmit(into: &segments, now: now)
        if let ts = segments.last?.options.timestamp { lastTimestampSent = ts.value }
        return segments
    }

    /// Moves time forward and returns what the connection sends then.
    mutating func advance(_ duration: Duration) -> [TCPSegment] {
        now += duration
        return transmit()
    }

    /// One MSS out and its ACK back 4 ms later: an RTT sample, so timers derived from SRTT (the tail
    /// loss probe's 2·SRTT, RACK's reordering window) are known.
    mutating func sampleRoundTrip() {
        let mss = connection.sendMSS
        write(mss)
        let first = transmit()
        _ = advance(.milliseconds(4))
        receive(.ack, ack: first[0].sequenceNumber + mss)
    }

    /// Moves time to the connection's next deadline (if any) and transmits.
    mutating func advanceToDeadline() -> [TCPSegment] {
        guard let deadline else { return [] }
        now = max(now, deadline)
        return transmit()
    }

    /// Queues `count` bytes to send.
    mutating func write(_ count: Int, from offset: Int = 0) {
        var data = bytes(count, from: offset)
        _ = connection.send(&data)
    }
}

extension TCPSegment {
    var payloadBytes: [UInt8] { Array(payload.readableBytesView) }
}
