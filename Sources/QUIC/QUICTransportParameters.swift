// QUICTransportParameters: the quic_transport_parameters TLS extension body (RFC 9000 §18),
// plus RFC 9221's max_datagram_frame_size. Unknown parameters (and GREASE, §18.1) are skipped;
// duplicates and out-of-range values are TRANSPORT_PARAMETER_ERROR (§7.4).
package import NIOCore

/// One endpoint's transport parameters. Defaults are the RFC's values when absent.
package struct QUICTransportParameters: Equatable, Sendable {
    package var originalDestinationConnectionID: QUICConnectionID?
    /// Milliseconds; 0 means no idle timeout (§10.1).
    package var maxIdleTimeout: UInt64 = 0
    package var statelessResetToken: [UInt8]?
    package var maxUDPPayloadSize: UInt64 = 65527
    package var initialMaxData: UInt64 = 0
    package var initialMaxStreamDataBidiLocal: UInt64 = 0
    package var initialMaxStreamDataBidiRemote: UInt64 = 0
    package var initialMaxStreamDataUni: UInt64 = 0
    package var initialMaxStreamsBidi: UInt64 = 0
    package var initialMaxStreamsUni: UInt64 = 0
    package var ackDelayExponent: UInt64 = 3
    /// Milliseconds.
    package var maxAckDelay: UInt64 = 25
    package var disableActiveMigration = false
    /// The raw preferred_address value (servers only); kept, not acted on.
    package var preferredAddress: [UInt8]?
    package var activeConnectionIDLimit: UInt64 = 2
    package var initialSourceConnectionID: QUICConnectionID?
    package var retrySourceConnectionID: QUICConnectionID?
    /// RFC 9221: the largest DATAGRAM frame accepted; nil means DATAGRAM is not supported.
    package var maxDatagramFrameSize: UInt64?

    package init() {}

    /// Parses an extension body. `fromServer` rejects server-only parameters sent by a client (§18.2).
    package init(parsing bytes: ByteBuffer, fromServer: Bool) throws(QUICWireError) {
        var buffer = bytes
        var seen = Set<UInt64>()
        while buffer.readableBytes > 0 {
            guard let id = buffer.readQUICVarInt(), let length = buffer.readQUICVarInt(),
                  length <= UInt64(buffer.readableBytes), var value = buffer.readSlice(length: Int(length)) else {
                throw .transportParameter(id: 0)
            }
            guard seen.insert(id).inserted else { throw .transportParameter(id: id) }
            func integer() throws(QUICWireError) -> UInt64 {
                guard let number = value.readQUICVarInt(), value.readableBytes == 0 else { throw .transportParameter(id: id) }
                return number
            }
            func connectionID() throws(QUICWireError) -> QUICConnectionID {
                guard value.readableBytes <= 20 else { throw .transportParameter(id: id) }
                return QUICConnectionID(value.readBytes(length: value.readableBytes) ?? [])
            }
            // §18.2: these may only come from a server.
            if !fromServer, [0x00, 0x02, 0x0D, 0x10].contains(id) { throw .transportParameter(id: id) }
            switch id {
            case 0x00: originalDestinationConnectionID = try connectionID()
            case 0x01: maxIdleTimeout = try integer()
            case 0x02:
                guard value.readableBytes == 16 else { throw .transportParameter(id: id) }
                statelessResetToken = value.readBytes(length: 16)
            case 0x03:
                maxUDPPayloadSize = try integer()
                guard maxUDPPayloadSize >= 1200 else { throw .transportParameter(id: id) }
            case 0x04: initialMaxData = try integer()
            case 0x05: initialMaxStreamDataBidiLocal = try integer()
            case 0x06: initialMaxStreamDataBidiRemote = try integer()
            case 0x07: initialMaxStreamDataUni = try integer()
            case 0x08:
                initialMaxStreamsBidi = try integer()
                guard initialMaxStreamsBidi <= 1 << 60 else { throw .transportParameter(id: id) }
            case 0x09:
                initialMaxStreamsUni = try integer()
                guard initialMaxStreamsUni <= 1 << 60 else { throw .transportParameter(id: id) }
            case 0x0A:
                ackDelayExponent = try integer()
                guard ackDelayExponent <= 20 else { throw .transportParameter(id: id) }
            case 0x0B:
                maxAckDelay = try integer()
                guard maxAckDelay < 1 << 14 else { throw .transportParameter(id: id) }
            case 0x0C:
                guard value.readableBytes == 0 else { throw .transportParameter(id: id) }
                disableActiveMigration = true
            case 0x0D:
                // IPv4 (4+2) + IPv6 (16+2) + CID length + CID (1…20) + reset token (16).
                guard value.readableBytes >= 41 else { throw .transportParameter(id: id) }
                preferredAddress = value.readBytes(length: value.readableBytes)
            case 0x0E:
                activeConnectionIDLimit = try integer()
                guard activeConnectionIDLimit >= 2 else { throw .transportParameter(id: id) }
            case 0x0F: initialSourceConnectionID = try connectionID()
            case 0x10: retrySourceConnectionID = try connectionID()
            case 0x20: maxDatagramFrameSize = try integer()
            default: break  // unknown or GREASE: ignored (§18.1)
            }
        }
    }

    /// The extension body for these parameters; values equal to the defaults are left out.
    package func encoded() -> [UInt8] {
        var buffer = ByteBuffer()
        func integer(_ id: UInt64, _ value: UInt64) {
            buffer.writeQUICVarInt(id)
            buffer.writeQUICVarInt(UInt64(quicVarIntLength(value)))
            buffer.writeQUICVarInt(value)
        }
        func bytes(_ id: UInt64, _ value: [UInt8]) {
            buffer.writeQUICVarInt(id)
            buffer.writeQUICVarInt(UInt64(value.count))
            buffer.writeBytes(value)
        }
        if let id = originalDestinationConnectionID { bytes(0x00, id.bytes) }
        if maxIdleTimeout != 0 { integer(0x01, maxIdleTimeout) }
        if let token = statelessResetToken { bytes(0x02, token) }
        if maxUDPPayloadSize != 65527 { integer(0x03, maxUDPPayloadSize) }
        if initialMaxData != 0 { integer(0x04, initialMaxData) }
        if initialMaxStreamDataBidiLocal != 0 { integer(0x05, initialMaxStreamDataBidiLocal) }
        if initialMaxStreamDataBidiRemote != 0 { integer(0x06, initialMaxStreamDataBidiRemote) }
        if initialMaxStreamDataUni != 0 { integer(0x07, initialMaxStreamDataUni) }
        if initialMaxStreamsBidi != 0 { integer(0x08, initialMaxStreamsBidi) }
        if initialMaxStreamsUni != 0 { integer(0x09, initialMaxStreamsUni) }
        if ackDelayExponent != 3 { integer(0x0A, ackDelayExponent) }
        if maxAckDelay != 25 { integer(0x0B, maxAckDelay) }
        if disableActiveMigration { bytes(0x0C, []) }
        if let address = preferredAddress { bytes(0x0D, address) }
        if activeConnectionIDLimit != 2 { integer(0x0E, activeConnectionIDLimit) }
        if let id = initialSourceConnectionID { bytes(0x0F, id.bytes) }
        if let id = retrySourceConnectionID { bytes(0x10, id.bytes) }
        if let size = maxDatagramFrameSize { integer(0x20, size) }
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }
}
