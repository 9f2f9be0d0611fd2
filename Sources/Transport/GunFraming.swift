// The "gun" framing of the v2ray `grpc` transport (Go's transport/v2raygrpclite conn.go, after
// Qv2ray's gun-lite): each chunk of the stream is one gRPC message holding one protobuf message
// `Hunk { bytes data = 1; }`:
//
//     0x00 (not compressed) | uint32 BE message length | 0x0A (field 1, bytes) | uvarint n | n bytes
//
// Go's reader skips the first six bytes unchecked and trusts the varint; ours checks them (flag 0,
// tag 0x0A, the message length equal to tag + varint + data) so garbage ends the stream with an
// error instead of being read as data. Payloads are delivered as they arrive (a message may span
// many reads), as Go's `readRemaining` does.
package import NIOCore

/// Why bytes could not be read as gun framing. Carries numbers, no strings.
package enum GunFramingError: Error, Equatable, CustomStringConvertible {
    /// The first byte of a gRPC message was not 0 (compressed messages are not part of gun).
    case badCompressionFlag(UInt8)
    /// The protobuf tag was not 0x0A (field 1, length-delimited).
    case badTag(UInt8)
    /// The varint ran past ten bytes.
    case badVarint
    /// The gRPC length disagrees with the protobuf field inside it.
    case lengthMismatch(message: UInt32, field: UInt64)

    package var description: String {
        switch self {
        case .badCompressionFlag(let flag): "grpc: bad message flag \(flag)"
        case .badTag(let tag): "grpc: bad protobuf tag \(tag)"
        case .badVarint: "grpc: bad varint"
        case .lengthMismatch(let message, let field): "grpc: message length \(message) does not match data length \(field)"
        }
    }
}

/// Encodes and decodes gun framing.
package enum GunFraming {
    /// Bytes in front of a payload of `count` bytes.
    @inlinable
    package static func headerLength(for count: Int) -> Int { 6 + uvarintLength(UInt64(count)) }

    @inlinable
    static func uvarintLength(_ value: UInt64) -> Int {
        var length = 1
        var rest = value >> 7
        while rest != 0 { length += 1; rest >>= 7 }
        return length
    }

    /// One message carrying `payload`.
    package static func encode(_ payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        let count = payload.readableBytes
        let varintLength = uvarintLength(UInt64(count))
        var out = allocator.buffer(capacity: 6 + varintLength + count)
        out.writeInteger(UInt8(0))
        out.writeInteger(UInt32(truncatingIfNeeded: 1 + varintLength + count))
        out.writeInteger(UInt8(0x0A))
        var rest = UInt64(count)
        while rest >= 0x80 {
            out.writeInteger(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        out.writeInteger(UInt8(rest))
        var data = payload
        out.writeBuffer(&data)
        return out
    }
}

/// Reads gun messages from a byte stream, handing out their data as it arrives. Each buffer handed
/// to `next(from:)` may be a fresh one (one per HTTP/2 DATA frame): a message header cut between two
/// buffers is kept here until its end arrives.
package struct GunFrameDecoder {
    /// The longest header: flag, length, tag and a ten-byte varint.
    static let maxHeaderLength = 16

    /// Data bytes of the current message not yet handed out.
    private var remaining: UInt64 = 0
    /// The start of a header whose end has not arrived yet (at most `maxHeaderLength - 1` bytes).
    private var heldHeader: [UInt8] = []

    package init() {}

    /// The next piece of data at the reader index of `buffer` (consumed), or nil when more bytes
    /// are needed; the bytes of `buffer` are all consumed when it returns nil. Throws on bytes that
    /// are not gun framing; never traps.
    package mutating func next(from buffer: inout ByteBuffer) throws(GunFramingError) -> ByteBuffer? {
        while true {
            if remaining > 0 {
                guard buffer.readableBytes > 0 else { return nil }
                let count = Int(min(remaining, UInt64(buffer.readableBytes)))
                remaining -= UInt64(count)
                return buffer.readSlice(length: count)
            }
            guard buffer.readableBytes > 0 else { return nil }
            if heldHeader.isEmpty {
                let available = buffer.readableBytesView
                if let (length, value) = try Self.header(available) {
                    buffer.moveReaderIndex(forwardBy: length)
                    remaining = value
                } else {
                    heldHeader.append(contentsOf: available)
                    buffer.moveReaderIndex(forwardBy: available.count)
                    return nil
                }
            } else {
                let held = heldHeader.count
                let taken = buffer.readableBytesView.prefix(Self.maxHeaderLength - held)
                if let (length, value) = try Self.header(heldHeader + taken) {
                    buffer.moveReaderIndex(forwardBy: length - held)
                    heldHeader.removeAll(keepingCapacity: true)
                    remaining = value
                } else {
                    heldHeader.append(contentsOf: taken)
                    buffer.moveReaderIndex(forwardBy: taken.count)
                    return nil
                }
            }
        }
    }

    /// The header at the start of `bytes`: its length and the data length it announces, or nil
    /// when `bytes` ends inside it.
    static func header<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(GunFramingError) -> (Int, UInt64)? {
        var index = bytes.startIndex
        func byte() -> UInt8? {
            guard index != bytes.endIndex else { return nil }
            defer { index = bytes.index(after: index) }
            return bytes[index]
        }
        guard let flag = byte() else { return nil }
        guard flag == 0 else { throw .badCompressionFlag(flag) }
        var length: UInt32 = 0
        for _ in 0..<4 {
            guard let b = byte() else { return nil }
            length = length << 8 | UInt32(b)
        }
        guard let tag = byte() else { return nil }
        guard tag == 0x0A else { throw .badTag(tag) }
        var value: UInt64 = 0
        var varintLength = 0
        while true {
            guard varintLength < 10 else { throw .badVarint }
            guard let b = byte() else { return nil }
            value |= UInt64(b & 0x7F) << (7 * UInt64(varintLength))
            varintLength += 1
            if b & 0x80 == 0 { break }
        }
        guard UInt64(length) == 1 + UInt64(varintLength) &+ value, value < UInt64(UInt32.max) else {
            throw .lengthMismatch(message: length, field: value)
        }
        return (6 + varintLength, value)
    }
}
