// Long/short headers (RFC 9000 §17), packet number recovery (Appendix A) and transport parameters (§18).
import NIOCore
@testable import QUIC
import Testing

@Test func recoversPacketNumbers() {
    // RFC 9000 A.3: largest 0xa82f30ea, 16-bit 0x9b32 → 0xa82f9b32.
    #expect(QUICPacketNumber.decode(truncated: 0x9b32, bits: 16, largestReceived: 0xa82f_30ea) == 0xa82f_9b32)
    #expect(QUICPacketNumber.decode(truncated: 0, bits: 8, largestReceived: nil) == 0)
    #expect(QUICPacketNumber.decode(truncated: 0x01, bits: 8, largestReceived: 0xff) == 0x101)
    #expect(QUICPacketNumber.decode(truncated: 0xff, bits: 8, largestReceived: 0x100) == 0xff)
    // RFC 9000 A.2: 0xac5c02 with 0xabe8b3 acknowledged needs 2 bytes; 0xace8fe needs 3.
    #expect(QUICPacketNumber.encodedLength(0xac5c02, largestAcknowledged: 0xabe8b3) == 2)
    #expect(QUICPacketNumber.encodedLength(0xace8fe, largestAcknowledged: 0xabe8b3) == 3)
    #expect(QUICPacketNumber.encodedLength(0, largestAcknowledged: nil) == 1)
}

@Test func rejectsEveryTruncatedLongHeader() {
    for length in 0..<20 {
        let datagram = ByteBuffer(bytes: Array(rfcClientProtected.prefix(length)))
        #expect(throws: QUICWireError.self) {
            try QUICPacketHeader.parse(datagram: datagram, at: 0, shortConnectionIDLength: 8)
        }
    }
    // Length (0x49e) runs past a datagram cut at 1000 bytes.
    #expect(throws: QUICWireError.badLength) {
        try QUICPacketHeader.parse(datagram: ByteBuffer(bytes: Array(rfcClientProtected.prefix(1000))), at: 0, shortConnectionIDLength: 8)
    }
}

@Test func readsHeaderKinds() throws {
    // Short header with an 8-byte DCID.
    let short = try QUICPacketHeader.parse(datagram: ByteBuffer(bytes: [0x41] + Array(1...8) + [0, 0]), at: 0, shortConnectionIDLength: 8)
    #expect(short.type == .oneRTT && short.packetNumberOffset == 9 && short.destinationID.bytes == Array(1...8))
    // Fixed bit clear: not QUIC v1.
    #expect(throws: QUICWireError.badHeader) { try QUICPacketHeader.parse(datagram: ByteBuffer(bytes: [0x01, 0, 0]), at: 0, shortConnectionIDLength: 0) }
    // Version Negotiation: version 0, DCID 1 byte, SCID 1 byte, versions 1 and a GREASE one.
    let negotiation = try QUICPacketHeader.parse(datagram: ByteBuffer(bytes: [0x80, 0, 0, 0, 0, 1, 0xaa, 1, 0xbb, 0, 0, 0, 1, 0x0a, 0x1a, 0x2a, 0x3a]),
                                                  at: 0, shortConnectionIDLength: 0)
    #expect(negotiation.type == .versionNegotiation && negotiation.supportedVersions == [1, 0x0a1a_2a3a])
    // A v1 long header with a 21-byte DCID.
    #expect(throws: QUICWireError.badHeader) {
        try QUICPacketHeader.parse(datagram: ByteBuffer(bytes: [0xc0, 0, 0, 0, 1, 21] + [UInt8](repeating: 0, count: 40)), at: 0, shortConnectionIDLength: 0)
    }
}

@Test func roundTripsTransportParameters() throws {
    var parameters = QUICTransportParameters()
    parameters.originalDestinationConnectionID = QUICConnectionID([1, 2, 3, 4])
    parameters.maxIdleTimeout = 30000
    parameters.statelessResetToken = Array(0..<16)
    parameters.initialMaxData = 1 << 20
    parameters.initialMaxStreamDataBidiLocal = 1 << 18
    parameters.initialMaxStreamDataBidiRemote = 1 << 18
    parameters.initialMaxStreamDataUni = 1 << 18
    parameters.initialMaxStreamsBidi = 100
    parameters.initialMaxStreamsUni = 3
    parameters.activeConnectionIDLimit = 4
    parameters.initialSourceConnectionID = QUICConnectionID([9, 9])
    parameters.maxDatagramFrameSize = 1200
    parameters.disableActiveMigration = true
    let encoded = ByteBuffer(bytes: parameters.encoded())
    #expect(try QUICTransportParameters(parsing: encoded, fromServer: true) == parameters)
    // A client must not send original_destination_connection_id (RFC 9000 §18.2).
    #expect(throws: QUICWireError.transportParameter(id: 0)) { try QUICTransportParameters(parsing: encoded, fromServer: false) }
}

@Test func rejectsBadTransportParameters() {
    func fails(_ bytes: [UInt8]) {
        #expect(throws: QUICWireError.self) { try QUICTransportParameters(parsing: ByteBuffer(bytes: bytes), fromServer: true) }
    }
    fails([0x01, 0x01, 0x05, 0x01, 0x01, 0x06])  // duplicate max_idle_timeout
    fails([0x03, 0x02, 0x44, 0xaf])  // max_udp_payload_size 1199
    fails([0x0a, 0x01, 0x15])  // ack_delay_exponent 21
    fails([0x0e, 0x01, 0x01])  // active_connection_id_limit 1
    fails([0x02, 0x03, 1, 2, 3])  // stateless_reset_token of 3 bytes
    fails([0x01, 0x05, 0x01])  // length past the end
    fails([0x01, 0x02, 0x05, 0x05])  // trailing byte inside an integer parameter
    // Unknown and GREASE ids are skipped.
    #expect((try? QUICTransportParameters(parsing: ByteBuffer(bytes: [0x40, 0x5b, 0x02, 0xaa, 0xbb]), fromServer: true)) != nil)
}
