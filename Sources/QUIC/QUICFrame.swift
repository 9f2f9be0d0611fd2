// QUICFrame: every frame of RFC 9000 §19 and RFC 9221's DATAGRAM, parsed from and written to
// ByteBuffers. Data-carrying frames (CRYPTO, STREAM, DATAGRAM, NEW_TOKEN) hold slices of the
// decrypted payload, so nothing is copied on parse.
//
// Parsing validates every field against the RFC's bounds (RFC 9000 §19: offsets + lengths below
// 2^62, connection ID lengths 1…20, ACK ranges that do not run below zero, MAX_STREAMS ≤ 2^60);
// a violation is FRAME_ENCODING_ERROR (or the stated code) via `QUICWireError`.
package import NIOCore

/// One ACK frame (RFC 9000 §19.3). `ranges` are closed packet-number ranges, highest first, not
/// overlapping, not adjacent.
package struct QUICACKFrame: Equatable, Sendable {
    /// Acknowledged ranges, highest first. Never empty.
    package var ranges: [ClosedRange<UInt64>]
    /// The ACK Delay field, still scaled by the sender's ack_delay_exponent.
    package var delay: UInt64
    /// ECT(0), ECT(1) and ECN-CE counts when the frame type was 0x03.
    package var ecn: ECNCounts?

    /// The ECN counters of an ACK_ECN frame.
    package struct ECNCounts: Equatable, Sendable {
        package var ect0: UInt64, ect1: UInt64, ce: UInt64
        package init(ect0: UInt64, ect1: UInt64, ce: UInt64) { self.ect0 = ect0; self.ect1 = ect1; self.ce = ce }
    }

    package init(ranges: [ClosedRange<UInt64>], delay: UInt64, ecn: ECNCounts? = nil) {
        self.ranges = ranges
        self.delay = delay
        self.ecn = ecn
    }

    /// The highest acknowledged packet number.
    package var largest: UInt64 { ranges.first?.upperBound ?? 0 }

    /// Whether packet `number` is acknowledged.
    package func contains(_ number: UInt64) -> Bool { ranges.contains { $0.contains(number) } }
}

/// A frame of QUIC v1 (RFC 9000 §19) or the DATAGRAM extension (RFC 9221).
package enum QUICFrame: Equatable, Sendable {
    /// `count` consecutive PADDING bytes (type 0x00), read as one frame.
    case padding(count: Int)
    case ping
    case ack(QUICACKFrame)
    case resetStream(streamID: UInt64, errorCode: UInt64, finalSize: UInt64)
    case stopSending(streamID: UInt64, errorCode: UInt64)
    case crypto(offset: UInt64, data: ByteBuffer)
    case newToken(token: ByteBuffer)
    case stream(streamID: UInt64, offset: UInt64, data: ByteBuffer, fin: Bool)
    case maxData(UInt64)
    case maxStreamData(streamID: UInt64, maximum: UInt64)
    case maxStreams(bidirectional: Bool, maximum: UInt64)
    case dataBlocked(limit: UInt64)
    case streamDataBlocked(streamID: UInt64, limit: UInt64)
    case streamsBlocked(bidirectional: Bool, limit: UInt64)
    case newConnectionID(sequence: UInt64, retirePriorTo: UInt64, connectionID: QUICConnectionID, resetToken: [UInt8])
    case retireConnectionID(sequence: UInt64)
    case pathChallenge(data: UInt64)
    case pathResponse(data: UInt64)
    /// CONNECTION_CLOSE: `frameType` is nil for the application variant (0x1d).
    case connectionClose(errorCode: UInt64, frameType: UInt64?, reason: ByteBuffer)
    case handshakeDone
    case datagram(data: ByteBuffer)

    /// The frame's type number (the lowest of its family for STREAM, ACK …).
    package var typeNumber: UInt64 {
        switch self {
        case .padding: 0x00
        case .ping: 0x01
        case .ack(let ack): ack.ecn == nil ? 0x02 : 0x03
        case .resetStream: 0x04
        case .stopSending: 0x05
        case .crypto: 0x06
        case .newToken: 0x07
        case .stream: 0x08
        case .maxData: 0x10
        case .maxStreamData: 0x11
        case .maxStreams(let bidi, _): bidi ? 0x12 : 0x13
        case .dataBlocked: 0x14
        case .streamDataBlocked: 0x15
        case .streamsBlocked(let bidi, _): bidi ? 0x16 : 0x17
        case .newConnectionID: 0x18
        case .retireConnectionID: 0x19
        case .pathChallenge: 0x1A
        case .pathResponse: 0x1B
        case .connectionClose(_, let frameType, _): frameType == nil ? 0x1D : 0x1C
        case .handshakeDone: 0x1E
        case .datagram: 0x31
        }
    }

    /// Whether receiving the frame obliges an ACK (RFC 9002 §2: all but ACK, PADDING, CONNECTION_CLOSE).
    package var isAckEliciting: Bool {
        switch self {
        case .padding, .ack, .connectionClose: false
        default: true
        }
    }

    /// Whether the frame may appear in an Initial or Handshake packet (RFC 9000 §12.4 table 3).
    package var isAllowedDuringHandshake: Bool {
        switch self {
        case .padding, .ping, .ack, .crypto: true
        case .connectionClose(_, let frameType, _): frameType != nil
        default: false
        }
    }
}

extension QUICFrame {
    /// Reads one frame from `buffer` (a decrypted payload). Throws `QUICWireError` on anything
    /// malformed or truncated; the buffer's reader index is then unspecified.
    package static func read(from buffer: inout ByteBuffer) throws(QUICWireError) -> QUICFrame {
        guard let type = buffer.readQUICVarInt() else { throw .frameEncoding(frameType: 0) }
        func varint(_ buffer: inout ByteBuffer) throws(QUICWireError) -> UInt64 {
            guard let value = buffer.readQUICVarInt() else { throw .frameEncoding(frameType: type) }
            return value
        }
        func bytes(_ buffer: inout ByteBuffer, _ count: UInt64) throws(QUICWireError) -> ByteBuffer {
            guard count <= UInt64(buffer.readableBytes), let slice = buffer.readSlice(length: Int(count)) else {
                throw .frameEncoding(frameType: type)
            }
            return slice
        }
        switch type {
        case 0x00:
            // Coalesce a run of PADDING into one value: a full-size Initial has ~1100 of them.
            var count = 1
            while buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0 {
                buffer.moveReaderIndex(forwardBy: 1)
                count += 1
            }
            return .padding(count: count)
        case 0x01: return .ping
        case 0x02, 0x03:
            let largest = try varint(&buffer)
            let delay = try varint(&buffer)
            let rangeCount = try varint(&buffer)
            let firstRange = try varint(&buffer)
            guard firstRange <= largest else { throw .frameEncoding(frameType: type) }
            // Each further range needs at least 2 bytes: bound the count before reserving.
            guard rangeCount <= UInt64(buffer.readableBytes / 2) else { throw .frameEncoding(frameType: type) }
            var ranges = [(largest - firstRange)...largest]
            var smallest = largest - firstRange
            for _ in 0..<rangeCount {
                let gap = try varint(&buffer)
                let length = try varint(&buffer)
                // RFC 9000 §19.3.1: largest = previous smallest - gap - 2; smallest = largest - length.
                guard smallest >= gap &+ 2, gap < smallest else { throw .frameEncoding(frameType: type) }
                let high = smallest - gap - 2
                guard length <= high else { throw .frameEncoding(frameType: type) }
                ranges.append((high - length)...high)
                smallest = high - length
            }
            var ecn: QUICACKFrame.ECNCounts?
            if type == 0x03 {
                ecn = .init(ect0: try varint(&buffer), ect1: try varint(&buffer), ce: try varint(&buffer))
            }
            return .ack(QUICACKFrame(ranges: ranges, delay: delay, ecn: ecn))
        case 0x04:
            return .resetStream(streamID: try varint(&buffer), errorCode: try varint(&buffer), finalSize: try varint(&buffer))
        case 0x05:
            return .stopSending(streamID: try varint(&buffer), errorCode: try varint(&buffer))
        case 0x06:
            let offset = try varint(&buffer)
            let length = try varint(&buffer)
            guard offset + length <= quicVarIntMax else { throw .frameEncoding(frameType: type) }
            return .crypto(offset: offset, data: try bytes(&buffer, length))
        case 0x07:
            let length = try varint(&buffer)
            guard length > 0 else { throw .frameEncoding(frameType: type) }  // §19.7: empty token is an error
            return .newToken(token: try bytes(&buffer, length))
        case 0x08...0x0F:
            let streamID = try varint(&buffer)
            let offset = try type & 0x04 != 0 ? varint(&buffer) : 0
            let data: ByteBuffer
            if type & 0x02 != 0 {
                data = try bytes(&buffer, try varint(&buffer))
            } else {
                data = buffer.readSlice(length: buffer.readableBytes) ?? ByteBuffer()
            }
            // §19.8: offset + length must not exceed 2^62 - 1.
            guard offset + UInt64(data.readableBytes) <= quicVarIntMax else { throw .frameEncoding(frameType: type) }
            return .stream(streamID: streamID, offset: offset, data: data, fin: type & 0x01 != 0)
        case 0x10: return .maxData(try varint(&buffer))
        case 0x11: return .maxStreamData(streamID: try varint(&buffer), maximum: try varint(&buffer))
        case 0x12, 0x13:
            let maximum = try varint(&buffer)
            guard maximum <= 1 << 60 else { throw .frameEncoding(frameType: type) }  // §19.11
            return .maxStreams(bidirectional: type == 0x12, maximum: maximum)
        case 0x14: return .dataBlocked(limit: try varint(&buffer))
        case 0x15: return .streamDataBlocked(streamID: try varint(&buffer), limit: try varint(&buffer))
        case 0x16, 0x17:
            let limit = try varint(&buffer)
            guard limit <= 1 << 60 else { throw .frameEncoding(frameType: type) }  // §19.14
            return .streamsBlocked(bidirectional: type == 0x16, limit: limit)
        case 0x18:
            let sequence = try varint(&buffer)
            let retire = try varint(&buffer)
            guard retire <= sequence, let length: UInt8 = buffer.readInteger(), (1...20).contains(length),
                  let id = buffer.readBytes(length: Int(length)), let token = buffer.readBytes(length: 16) else {
                throw .frameEncoding(frameType: type)
            }
            return .newConnectionID(sequence: sequence, retirePriorTo: retire, connectionID: QUICConnectionID(id), resetToken: token)
        case 0x19: return .retireConnectionID(sequence: try varint(&buffer))
        case 0x1A, 0x1B:
            guard let data: UInt64 = buffer.readInteger() else { throw .frameEncoding(frameType: type) }
            return type == 0x1A ? .pathChallenge(data: data) : .pathResponse(data: data)
        case 0x1C, 0x1D:
            let code = try varint(&buffer)
            let frameType: UInt64? = try type == 0x1C ? varint(&buffer) : nil
            let reason = try bytes(&buffer, try varint(&buffer))
            return .connectionClose(errorCode: code, frameType: frameType, reason: reason)
        case 0x1E: return .handshakeDone
        case 0x30: return .datagram(data: buffer.readSlice(length: buffer.readableBytes) ?? ByteBuffer())
        case 0x31: return .datagram(data: try bytes(&buffer, try varint(&buffer)))
        default: throw .unknownFrame(frameType: type)
        }
    }

    /// Appends the frame's encoding to `buffer`. Values come from our own state; out-of-range
    /// varints are our bug (they trap in `writeQUICVarInt`). STREAM and DATAGRAM always carry an
    /// explicit length, so a frame may be followed by others.
    package func write(to buffer: inout ByteBuffer) {
        switch self {
        case .padding(let count): buffer.writeRepeatingByte(0, count: count)
        case .ping: buffer.writeInteger(UInt8(0x01))
        case .ack(let ack):
            buffer.writeQUICVarInt(ack.ecn == nil ? 0x02 : 0x03)
            let first = ack.ranges[0]
            buffer.writeQUICVarInt(first.upperBound)
            buffer.writeQUICVarInt(ack.delay)
            buffer.writeQUICVarInt(UInt64(ack.ranges.count - 1))
            buffer.writeQUICVarInt(first.upperBound - first.lowerBound)
            var smallest = first.lowerBound
            for range in ack.ranges.dropFirst() {
                buffer.writeQUICVarInt(smallest - range.upperBound - 2)
                buffer.writeQUICVarInt(range.upperBound - range.lowerBound)
                smallest = range.lowerBound
            }
            if let ecn = ack.ecn {
                buffer.writeQUICVarInt(ecn.ect0)
                buffer.writeQUICVarInt(ecn.ect1)
                buffer.writeQUICVarInt(ecn.ce)
            }
        case .resetStream(let id, let code, let finalSize):
            buffer.writeQUICVarInt(0x04); buffer.writeQUICVarInt(id); buffer.writeQUICVarInt(code); buffer.writeQUICVarInt(finalSize)
        case .stopSending(let id, let code):
            buffer.writeQUICVarInt(0x05); buffer.writeQUICVarInt(id); buffer.writeQUICVarInt(code)
        case .crypto(let offset, let data):
            buffer.writeQUICVarInt(0x06); buffer.writeQUICVarInt(offset)
            buffer.writeQUICVarInt(UInt64(data.readableBytes)); buffer.writeImmutableBuffer(data)
        case .newToken(let token):
            buffer.writeQUICVarInt(0x07); buffer.writeQUICVarInt(UInt64(token.readableBytes)); buffer.writeImmutableBuffer(token)
        case .stream(let id, let offset, let data, let fin):
            buffer.writeQUICVarInt(0x08 | 0x02 | (offset > 0 ? 0x04 : 0) | (fin ? 0x01 : 0))
            buffer.writeQUICVarInt(id)
            if offset > 0 { buffer.writeQUICVarInt(offset) }
            buffer.writeQUICVarInt(UInt64(data.readableBytes)); buffer.writeImmutableBuffer(data)
        case .maxData(let maximum): buffer.writeQUICVarInt(0x10); buffer.writeQUICVarInt(maximum)
        case .maxStreamData(let id, let maximum): buffer.writeQUICVarInt(0x11); buffer.writeQUICVarInt(id); buffer.writeQUICVarInt(maximum)
        case .maxStreams(let bidi, let maximum): buffer.writeQUICVarInt(bidi ? 0x12 : 0x13); buffer.writeQUICVarInt(maximum)
        case .dataBlocked(let limit): buffer.writeQUICVarInt(0x14); buffer.writeQUICVarInt(limit)
        case .streamDataBlocked(let id, let limit): buffer.writeQUICVarInt(0x15); buffer.writeQUICVarInt(id); buffer.writeQUICVarInt(limit)
        case .streamsBlocked(let bidi, let limit): buffer.writeQUICVarInt(bidi ? 0x16 : 0x17); buffer.writeQUICVarInt(limit)
        case .newConnectionID(let sequence, let retire, let id, let token):
            buffer.writeQUICVarInt(0x18); buffer.writeQUICVarInt(sequence); buffer.writeQUICVarInt(retire)
            buffer.writeInteger(UInt8(id.count)); buffer.writeBytes(id.bytes); buffer.writeBytes(token)
        case .retireConnectionID(let sequence): buffer.writeQUICVarInt(0x19); buffer.writeQUICVarInt(sequence)
        case .pathChallenge(let data): buffer.writeQUICVarInt(0x1A); buffer.writeInteger(data)
        case .pathResponse(let data): buffer.writeQUICVarInt(0x1B); buffer.writeInteger(data)
        case .connectionClose(let code, let frameType, let reason):
            buffer.writeQUICVarInt(frameType == nil ? 0x1D : 0x1C)
            buffer.writeQUICVarInt(code)
            if let frameType { buffer.writeQUICVarInt(frameType) }
            buffer.writeQUICVarInt(UInt64(reason.readableBytes)); buffer.writeImmutableBuffer(reason)
        case .handshakeDone: buffer.writeQUICVarInt(0x1E)
        case .datagram(let data):
            buffer.writeQUICVarInt(0x31); buffer.writeQUICVarInt(UInt64(data.readableBytes)); buffer.writeImmutableBuffer(data)
        }
    }

    /// The bytes `write(to:)` appends.
    package var encodedLength: Int {
        var scratch = ByteBuffer()
        write(to: &scratch)
        return scratch.readableBytes
    }
}
