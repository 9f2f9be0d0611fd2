import NetstackWire
import Testing
@testable import WireGuard

/// Message codecs (round trip, every truncation, reserved bytes) and the Noise handshake as bare values.
@Suite struct MessageAndHandshakeTests {
    let random = SeededRandom(seed: 99)

    func handshakePair() -> (StaticIdentity, StaticIdentity, HandshakeState, HandshakeState) {
        let initiator = StaticIdentity(privateKey: random.key())
        let responder = StaticIdentity(privateKey: random.key())
        let psk = random.key()
        return (initiator, responder,
                HandshakeState(identity: initiator, remoteStatic: responder.publicKey, presharedKey: psk),
                HandshakeState(identity: responder, remoteStatic: initiator.publicKey, presharedKey: psk))
    }

    @Test func initiationRoundTripAndTruncations() throws {
        var (initiator, responder, state, _) = handshakePair()
        _ = responder
        let message = try state.createInitiation(identity: initiator, localIndex: 0x0102_0304, ephemeralPrivate: random.key(),
                                                 timestamp: TAI64N(unixSeconds: 1_700_000_000, nanoseconds: 0))
        let bytes = message.bytes
        #expect(bytes.count == 148)
        #expect(Array(bytes[0..<8]) == [1, 0, 0, 0, 4, 3, 2, 1])  // type 1, reserved, sender index little-endian
        let parsed = try bytes.withUnsafeBytes { try InitiationMessage(parsing: $0) }
        #expect(parsed == message)
        for length in 0..<148 {
            #expect(throws: MessageError.self) { try Array(bytes.prefix(length)).withUnsafeBytes { try InitiationMessage(parsing: $0) } }
        }
        var reserved = bytes
        reserved[2] = 1
        #expect(throws: MessageError.nonZeroReserved) { try reserved.withUnsafeBytes { try InitiationMessage(parsing: $0) } }
        #expect(throws: MessageError.unknownType(2)) {
            try ([2] + Array(bytes.dropFirst())).withUnsafeBytes { try InitiationMessage(parsing: $0) }
        }
    }

    @Test func handshakeDerivesMatchingKeys() throws {
        var (initiator, responder, initiatorState, responderState) = handshakePair()
        let timestamp = TAI64N(unixSeconds: 1_700_000_000, nanoseconds: 123_456_789)
        let initiation = try initiatorState.createInitiation(identity: initiator, localIndex: 11, ephemeralPrivate: random.key(),
                                                             timestamp: timestamp)
        let opened = try HandshakeState.openInitiation(initiation, identity: responder) { key in
            key == initiator.publicKey ? responderState.precomputedStaticStatic : nil
        }
        #expect(opened.remoteStatic == initiator.publicKey)
        #expect(opened.timestamp == timestamp)
        #expect(opened.timestamp.nanoseconds & ~TAI64N.whitenerMask == 0)
        try responderState.acceptInitiation(opened, now: Instant(nanoseconds: 1))
        let (response, responderKeys) = try responderState.createResponse(localIndex: 22, ephemeralPrivate: random.key())
        #expect(response.bytes.count == 92)
        let reparsed = try response.bytes.withUnsafeBytes { try ResponseMessage(parsing: $0) }
        #expect(reparsed == response)
        let initiatorKeys = try initiatorState.consumeResponse(reparsed, identity: initiator)
        #expect(initiatorKeys.send == responderKeys.receive)
        #expect(initiatorKeys.receive == responderKeys.send)
        #expect(initiatorKeys.send != initiatorKeys.receive)
        #expect(initiatorKeys.localIndex == 11 && initiatorKeys.remoteIndex == 22)
        #expect(responderKeys.localIndex == 22 && responderKeys.remoteIndex == 11)
        // The handshake secrets are wiped once keys are derived.
        #expect(initiatorState.chainKey.isZero && responderState.chainKey.isZero)
        // A second response for the same initiation is refused.
        #expect(throws: HandshakeError.unexpectedResponse) { try initiatorState.consumeResponse(reparsed, identity: initiator) }
    }

    @Test func wrongResponderCannotOpen() throws {
        var (initiator, _, state, _) = handshakePair()
        let stranger = StaticIdentity(privateKey: random.key())
        let initiation = try state.createInitiation(identity: initiator, localIndex: 1, ephemeralPrivate: random.key(),
                                                    timestamp: TAI64N(unixSeconds: 1, nanoseconds: 0))
        #expect(throws: HandshakeError.decryptionFailed) {
            _ = try HandshakeState.openInitiation(initiation, identity: stranger) { _ in .zero }
        }
    }

    @Test func lowOrderPublicKeyRejected() {
        let identity = StaticIdentity(privateKey: random.key())
        // The all-zero point is of small order: DH gives zero, which WireGuard refuses.
        let state = HandshakeState(identity: identity, remoteStatic: .zero)
        #expect(state.precomputedStaticStatic == nil)
        #expect(X25519.sharedSecret(random.key(), .zero) == nil)
    }

    @Test func tai64nWireForm() {
        let stamp = TAI64N(unixSeconds: 1, nanoseconds: 0x1234_5678)
        #expect(stamp.bytes == [0x40, 0, 0, 0, 0, 0, 0, 0x0b, 0x12, 0x00, 0x00, 0x00])
        #expect(TAI64N(bytes: stamp.bytes) == stamp)
        #expect(TAI64N(unixSeconds: 2, nanoseconds: 0) > stamp)
    }

    @Test func transportHeaderAndClassification() throws {
        var bytes = [UInt8](repeating: 0, count: 48)
        bytes.withUnsafeMutableBytes { TransportHeader(receiver: 0xa0b0_c0d0, counter: 0x0102_0304_0506_0708).write(to: $0) }
        #expect(Array(bytes[0..<16]) == [4, 0, 0, 0, 0xd0, 0xc0, 0xb0, 0xa0, 8, 7, 6, 5, 4, 3, 2, 1])
        let header = try bytes.withUnsafeBytes { try TransportHeader(parsing: $0) }
        #expect(header == TransportHeader(receiver: 0xa0b0_c0d0, counter: 0x0102_0304_0506_0708))
        #expect(try bytes.withUnsafeBytes { try messageType(of: $0) } == .transport)
        #expect(throws: MessageError.badLength(.transport, 31)) { try Array(bytes.prefix(31)).withUnsafeBytes { try messageType(of: $0) } }
        #expect(throws: MessageError.badLength(.cookieReply, 65)) {
            try ([3, 0, 0, 0] + [UInt8](repeating: 0, count: 61)).withUnsafeBytes { try messageType(of: $0) }
        }
        #expect(throws: MessageError.empty) { try [UInt8]().withUnsafeBytes { try messageType(of: $0) } }
    }
}
