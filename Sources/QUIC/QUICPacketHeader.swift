// QUICPacketHeader: long and short packet headers (RFC 9000 §17) as far as they can be read
// before header protection is removed, and packet number truncation/recovery (§17.1, Appendix A).
//
// 1. `QUICPacketHeader.parse(datagram:at:shortConnectionIDLength:)` reads the unprotected part
//    of one packet and says where its packet number starts and where the packet ends, so a
//    datagram of coalesced packets (§12.2) is walked packet by packet.
// 2. Header protection is removed by `QUICPacketProtector` (it needs the sample after the PN).
package import NIOCore

/// QUIC version 1 (RFC 9000 §15).
package let quicVersion1: UInt32 = 0x0000_0001

/// The kind of a packet, which also names its packet number space.
package enum QUICPacketType: Sendable, Equatable {
    case initial, zeroRTT, handshake, retry, versionNegotiation, oneRTT
}

/// The unprotected header of one packet inside a datagram.
package struct QUICPacketHeader: Sendable, Equatable {
    package var type: QUICPacketType
    /// The version field (long headers); 1 for short headers.
    package var version: UInt32
    package var destinationID: QUICConnectionID
    package var sourceID: QUICConnectionID
    /// The Initial's token, or Retry's token (then without the 16-byte integrity tag).
    package var token: [UInt8]
    /// Where (datagram index) the packet starts.
    package var start: Int
    /// Where the still-protected packet number starts.
    package var packetNumberOffset: Int
    /// One past the packet's last byte (the next coalesced packet starts here).
    package var end: Int
    /// Versions listed by a Version Negotiation packet.
    package var supportedVersions: [UInt32] = []

    /// Reads the header of the packet at `offset` in `datagram`. `shortConnectionIDLength` is the
    /// length of our own connection IDs (short headers do not carry it). Throws on anything
    /// truncated or malformed; the caller drops the rest of the datagram then (RFC 9000 §12.2).
    package static func parse(datagram: ByteBuffer, at offset: Int, shortConnectionIDLength: Int) throws(QUICWireError) -> QUICPacketHeader {
        var reader = datagram
        reader.moveReaderIndex(to: offset)
        guard let first: UInt8 = reader.readInteger() else { throw .truncatedHeader }
        if first & 0x80 == 0 {
            // Short header (§17.3.1): the fixed bit must be set.
            guard first & 0x40 != 0 else { throw .badHeader }
            guard let id = reader.readBytes(length: shortConnectionIDLength) else { throw .truncatedHeader }
            return QUICPacketHeader(type: .oneRTT, version: quicVersion1, destinationID: QUICConnectionID(id), sourceID: .empty,
                                    token: [], start: offset, packetNumberOffset: reader.readerIndex, end: datagram.writerIndex)
        }
        guard let version: UInt32 = reader.readInteger(),
              let dcidLength: UInt8 = reader.readInteger() else { throw .truncatedHeader }
        // §17.2: v1 IDs are at most 20 bytes; other versions may differ, but we only speak v1 and
        // only need the IDs of a foreign version to answer with Version Negotiation (≤ 255).
        guard version != quicVersion1 || dcidLength <= 20 else { throw .badHeader }
        guard let dcid = reader.readBytes(length: Int(dcidLength)), let scidLength: UInt8 = reader.readInteger() else {
            throw .truncatedHeader
        }
        guard version != quicVersion1 || scidLength <= 20 else { throw .badHeader }
        guard let scid = reader.readBytes(length: Int(scidLength)) else { throw .truncatedHeader }
        var header = QUICPacketHeader(type: .initial, version: version, destinationID: QUICConnectionID(dcid),
                                      sourceID: QUICConnectionID(scid), token: [], start: offset, packetNumberOffset: 0,
                                      end: datagram.writerIndex)
        if version == 0 {
            // Version Negotiation (§17.2.1): the rest is a list of 32-bit versions.
            header.type = .versionNegotiation
            while let supported: UInt32 = reader.readInteger() { header.supportedVersions.append(supported) }
            return header
        }
        guard version == quicVersion1 else {
            // Unknown version: the caller may answer with Version Negotiation; nothing else is readable.
            header.type = .versionNegotiation
            return header
        }
        guard first & 0x40 != 0 else { throw .badHeader }  // fixed bit (§17.2)
        switch (first >> 4) & 0x03 {
        case 0:
            header.type = .initial
            guard let tokenLength = reader.readQUICVarInt(), tokenLength <= UInt64(reader.readableBytes),
                  let token = reader.readBytes(length: Int(tokenLength)) else { throw .truncatedHeader }
            header.token = token
        case 1: header.type = .zeroRTT
        case 2: header.type = .handshake
        default:
            // Retry (§17.2.5): token, then a 16-byte integrity tag; no Length, it fills the datagram.
            header.type = .retry
            guard reader.readableBytes >= 16 else { throw .truncatedHeader }
            header.token = reader.readBytes(length: reader.readableBytes - 16) ?? []
            return header
        }
        guard let length = reader.readQUICVarInt() else { throw .truncatedHeader }
        // The Length covers the packet number and the protected payload; it must fit the datagram
        // and leave room for the 4-byte PN + 16-byte sample that header protection needs (RFC 9001 §5.4.2).
        guard length <= UInt64(reader.readableBytes), length >= 20 else { throw .badLength }
        header.packetNumberOffset = reader.readerIndex
        header.end = reader.readerIndex + Int(length)
        return header
    }
}

/// Packet number truncation and recovery (RFC 9000 §17.1 and Appendix A).
package enum QUICPacketNumber {
    /// How many bytes (1…4) to send packet number `number` in, given the largest number the peer
    /// has acknowledged (Appendix A.2): twice the unacknowledged span must fit.
    package static func encodedLength(_ number: UInt64, largestAcknowledged: UInt64?) -> Int {
        let unacknowledged = largestAcknowledged.map { number - $0 } ?? (number + 1)
        // log2(unacknowledged) + 1 bits, rounded up to whole bytes.
        let bits = (64 - unacknowledged.leadingZeroBitCount) + 1
        return max(1, min(4, (bits + 7) / 8))
    }

    /// Recovers a full packet number from its truncated `bits`-bit form, given the largest number
    /// received so far in the space (Appendix A.3).
    package static func decode(truncated: UInt64, bits: Int, largestReceived: UInt64?) -> UInt64 {
        let expected = largestReceived.map { $0 + 1 } ?? 0
        let window: UInt64 = 1 << UInt64(bits)
        let halfWindow = window / 2
        let mask = window - 1
        let candidate = (expected & ~mask) | truncated
        if expected >= halfWindow, candidate <= expected - halfWindow, candidate < (1 << 62) - window {
            return candidate + window
        }
        if candidate > expected + halfWindow, candidate >= window {
            return candidate - window
        }
        return candidate
    }
}
