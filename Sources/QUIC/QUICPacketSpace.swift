// QUICPacketSpace: what one packet number space (Initial, Handshake, Application; RFC 9000 §12.3)
// remembers — keys, packet numbers received (for ACKs and duplicate detection), packets sent and
// not yet acknowledged (for RFC 9002 recovery), and the CRYPTO stream of its encryption level.
package import NIOCore
import NetstackWire

/// Something a sent packet carried that must be sent again if the packet is lost (RFC 9000 §13.3).
enum QUICRetransmittable: Equatable {
    case crypto(Range<Int>)
    case handshakeDone
    case newConnectionID(sequence: UInt64)
    case retireConnectionID(sequence: UInt64)
    case stream(QUICSentStreamRange)
    case resetStream(streamID: UInt64)
    case stopSending(streamID: UInt64)
    case maxData
    case maxStreamData(streamID: UInt64)
    case maxStreams(bidirectional: Bool)
}

/// A range of a stream's send buffer carried by one packet.
struct QUICSentStreamRange: Equatable {
    var streamID: UInt64
    var offset: UInt64
    var length: Int
    var fin: Bool
}

/// A packet sent and not yet acknowledged or declared lost.
struct QUICSentPacket {
    var packetNumber: UInt64
    var time: Instant
    var size: Int
    var isAckEliciting: Bool
    var frames: [QUICRetransmittable]
}

/// One packet number space. A value owned by its connection.
struct QUICPacketSpace {
    var readKey: QUICPacketKey?
    var writeKey: QUICPacketKey?
    /// Set when the space's keys are dropped (RFC 9001 §4.9): nothing is sent or accepted any more.
    var isDiscarded = false

    // Receive side.
    /// Received packet numbers as disjoint ranges, highest first; bounded to `maxAckRanges`.
    var received: [ClosedRange<UInt64>] = []
    var largestReceived: UInt64? { received.first?.upperBound }
    var largestReceivedTime = Instant.zero
    /// Ack-eliciting packets received since we last sent an ACK.
    var unacknowledgedElicitingCount = 0
    /// When the first of them arrived (the ACK delay counts from here).
    var ackElicitingSince: Instant?
    /// An ACK should go out with the next packet even without an ack-eliciting trigger (duplicates, reordering).
    var ackImmediately = false

    // Send side.
    var nextPacketNumber: UInt64 = 0
    var largestAcknowledged: UInt64?
    var sent: [UInt64: QUICSentPacket] = [:]
    var timeOfLastAckEliciting: Instant?
    var lossTime: Instant?
    /// A probe timeout fired: the next packet of this space must be ack-eliciting (RFC 9002 §6.2.4).
    var probePending = false
    /// Whether packets arrived since we last sent an ACK (an ACK may ride along with other frames).
    var receivedSinceAck = false

    // CRYPTO stream (RFC 9000 §19.6): everything ever queued at this level, what went out once, what to resend.
    var cryptoOut: [UInt8] = []
    var cryptoSentUpTo = 0
    var cryptoResend: [Range<Int>] = []
    var cryptoInOffset: UInt64 = 0
    var cryptoInPending: [UInt64: ByteBuffer] = [:]

    static let maxAckRanges = 32

    /// Records packet `number` as received. False for a duplicate (RFC 9000 §12.3: drop it).
    mutating func recordReceived(_ number: UInt64, now: Instant) -> Bool {
        if received.contains(where: { $0.contains(number) }) { return false }
        if let largest = largestReceived, number < largest { ackImmediately = true }  // reordered: §13.2.1
        if number > (largestReceived ?? 0) || received.isEmpty { largestReceivedTime = now }
        var merged = number...number
        var kept: [ClosedRange<UInt64>] = []
        for range in received {
            if range.upperBound &+ 1 == merged.lowerBound || merged.upperBound &+ 1 == range.lowerBound {
                merged = min(range.lowerBound, merged.lowerBound)...max(range.upperBound, merged.upperBound)
            } else {
                kept.append(range)
            }
        }
        kept.append(merged)
        kept.sort { $0.lowerBound > $1.lowerBound }
        if kept.count > Self.maxAckRanges { kept.removeLast(kept.count - Self.maxAckRanges) }
        received = kept
        return true
    }

    /// Whether any sent packet is still ack-eliciting and unacknowledged.
    var hasAckElicitingInFlight: Bool { sent.values.contains { $0.isAckEliciting } }

    /// Whether there is CRYPTO data to (re)send.
    var hasCryptoToSend: Bool { cryptoSentUpTo < cryptoOut.count || !cryptoResend.isEmpty }

    /// Takes up to `budget` bytes of CRYPTO data to send: resends first, then new bytes.
    mutating func takeCrypto(budget: Int) -> Range<Int>? {
        guard budget > 0 else { return nil }
        if !cryptoResend.isEmpty {
            let range = cryptoResend.removeFirst()
            if range.count > budget {
                cryptoResend.insert((range.lowerBound + budget)..<range.upperBound, at: 0)
                return range.lowerBound..<(range.lowerBound + budget)
            }
            return range
        }
        guard cryptoSentUpTo < cryptoOut.count else { return nil }
        let end = min(cryptoOut.count, cryptoSentUpTo + budget)
        defer { cryptoSentUpTo = end }
        return cryptoSentUpTo..<end
    }

    /// Stores a CRYPTO frame and returns the bytes now contiguous from the read offset.
    /// Throws CRYPTO_BUFFER_EXCEEDED when data lies too far ahead (RFC 9000 §7.5).
    mutating func receiveCrypto(offset: UInt64, data: ByteBuffer) throws(QUICConnectionError) -> [UInt8] {
        let end = offset + UInt64(data.readableBytes)
        guard end > cryptoInOffset else { return [] }  // all old: a retransmission
        guard end - cryptoInOffset <= 65536 else { throw .transport(.cryptoBufferExceeded, frameType: 0x06, "crypto buffer exceeded") }
        var chunk = data
        if offset < cryptoInOffset { chunk.moveReaderIndex(forwardBy: Int(cryptoInOffset - offset)) }
        let start = max(offset, cryptoInOffset)
        if let existing = cryptoInPending[start], existing.readableBytes >= chunk.readableBytes { } else { cryptoInPending[start] = chunk }
        var out: [UInt8] = []
        var progressed = true
        while progressed {
            progressed = false
            for (chunkOffset, bytes) in cryptoInPending where chunkOffset <= cryptoInOffset {
                cryptoInPending[chunkOffset] = nil
                let chunkEnd = chunkOffset + UInt64(bytes.readableBytes)
                if chunkEnd > cryptoInOffset {
                    let skip = Int(cryptoInOffset - chunkOffset)
                    out += bytes.getBytes(at: bytes.readerIndex + skip, length: bytes.readableBytes - skip) ?? []
                    cryptoInOffset = chunkEnd
                }
                progressed = true
                break
            }
        }
        return out
    }
}

/// 1-RTT key phases (RFC 9001 §6). We follow the peer's updates; we never start one.
struct QUICKeyUpdateState {
    /// The current key phase bit.
    var phase = false
    /// The next phase's read key, derived on first need.
    var nextReadKey: QUICPacketKey?
    /// The previous phase's read key, for packets reordered across an update.
    var previousReadKey: QUICPacketKey?
    /// Key updates followed so far.
    var updates = 0
}

/// RTT estimation (RFC 9002 §5).
struct QUICRTTEstimator {
    /// RFC 9002 §6.2.2: 333 ms before any sample.
    static let initialRTT = Duration.milliseconds(333)
    /// RFC 9002 §6.1.2: kGranularity.
    static let granularity = Duration.milliseconds(1)

    var latest = Duration.zero
    var minimum = Duration.zero
    var smoothed = initialRTT
    var variation = initialRTT / 2
    var hasSample = false

    /// Takes one sample: `ackDelay` is the peer's reported delay, already capped to max_ack_delay
    /// once the handshake is confirmed (§5.3).
    mutating func update(sample: Duration, ackDelay: Duration) {
        latest = sample
        if !hasSample {
            hasSample = true
            minimum = sample
            smoothed = sample
            variation = sample / 2
            return
        }
        minimum = min(minimum, sample)
        var adjusted = sample
        if sample >= minimum + ackDelay { adjusted = sample - ackDelay }
        let difference = smoothed > adjusted ? smoothed - adjusted : adjusted - smoothed
        variation = (variation * 3 + difference) / 4
        smoothed = (smoothed * 7 + adjusted) / 8
    }

    /// The probe timeout without max_ack_delay and backoff (§6.2.1).
    var probeTimeout: Duration { smoothed + max(variation * 4, Self.granularity) }
}
