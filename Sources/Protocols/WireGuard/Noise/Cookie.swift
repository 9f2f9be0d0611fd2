package import NetstackWire

/// MAC1/MAC2 and cookies (whitepaper §5.4.4, §5.4.7): DoS protection for handshakes.
///
/// mac1 = MAC(HASH(LABEL_MAC1 || S_receiver_pub), msg[..<mac1]) proves the sender knows whom it addresses.
/// Under load the receiver also wants mac2 = MAC(cookie, msg[..<mac2]), where
/// cookie = MAC(R_secret, source IP || port) and R_secret changes every two minutes; a sender without a fresh
/// cookie gets a cookie reply: XAEAD(HASH(LABEL_COOKIE || S_receiver_pub), nonce, cookie, aad = its mac1).
package enum CookieConstants {
    /// LABEL_MAC1.
    package static let labelMAC1 = Array("mac1----".utf8)
    /// LABEL_COOKIE.
    package static let labelCookie = Array("cookie--".utf8)
    /// `CookieRefreshTime`: a secret or a received cookie is good for two minutes.
    package static let cookieRefreshTime: Duration = .seconds(120)
    /// Received cookies are used only while younger than this (refresh time minus the retry jitter margin,
    /// so a cookie never dies in flight: wireguard-go does the same).
    package static let cookieUsableTime: Duration = .seconds(120) - .seconds(5) - .milliseconds(334)

    static func mac1Key(_ publicKey: Bytes32) -> Bytes32 { labelMAC1.withUnsafeBytes { label in hash(label, publicKey) } }
    static func cookieKey(_ publicKey: Bytes32) -> Bytes32 { labelCookie.withUnsafeBytes { label in hash(label, publicKey) } }

    private static func hash(_ label: UnsafeRawBufferPointer, _ key: Bytes32) -> Bytes32 {
        var state = BLAKE2s()
        state.update(label)
        state.update(key)
        return state.finalize()
    }
}

/// What our side checks on handshake messages it receives (keyed by our own public key).
package struct CookieChecker: Sendable {
    private let mac1Key: Bytes32
    private let encryptionKey: Bytes32
    private var secret = Bytes32.zero
    private var secretCreated: Instant?

    /// A checker for messages addressed to `localPublicKey`.
    package init(localPublicKey: Bytes32) {
        mac1Key = CookieConstants.mac1Key(localPublicKey)
        encryptionKey = CookieConstants.cookieKey(localPublicKey)
    }

    /// Checks mac1 of a complete initiation (148 B) or response (92 B).
    package func checkMAC1(_ message: UnsafeRawBufferPointer) -> Bool {
        let offset = message.count - 32
        guard offset > 0 else { return false }
        let expected = Noise.mac(key: mac1Key, UnsafeRawBufferPointer(rebasing: message[0..<offset]))
        return expected.constantTimeEquals(Bytes16(copying: UnsafeRawBufferPointer(rebasing: message[offset..<offset + 16])))
    }

    /// Checks mac2 against the cookie `source` would hold now. False when our secret has expired.
    package func checkMAC2(_ message: UnsafeRawBufferPointer, source: WireGuardEndpoint, now: Instant) -> Bool {
        guard let created = secretCreated, now - created <= CookieConstants.cookieRefreshTime else { return false }
        let offset = message.count - 16
        guard offset > 16 else { return false }
        let cookie = source.withCookieInput { Noise.mac(key: secret, $0) }
        let expected = Noise.mac(key: cookie, UnsafeRawBufferPointer(rebasing: message[0..<offset]))
        return expected.constantTimeEquals(Bytes16(copying: UnsafeRawBufferPointer(rebasing: message[offset..<offset + 16])))
    }

    /// Builds the cookie reply to `message` (whose mac1 already checked) from `source`; rotates the secret when due.
    package mutating func makeReply(to message: UnsafeRawBufferPointer, source: WireGuardEndpoint, now: Instant,
                                    random: (UnsafeMutableRawBufferPointer) -> Void) -> CookieReplyMessage {
        if secretCreated == nil || now - secretCreated! > CookieConstants.cookieRefreshTime {
            secret.withUnsafeMutableBytes { random($0) }
            secretCreated = now
        }
        let cookie = source.withCookieInput { Noise.mac(key: secret, $0) }
        var nonce = Bytes24()
        nonce.withUnsafeMutableBytes { random($0) }
        let sender: UInt32 = UnsafeRawBufferPointer(rebasing: message[4..<8]).loadLE(at: 0)
        let mac1Offset = message.count - 32
        let mac1 = UnsafeRawBufferPointer(rebasing: message[mac1Offset..<mac1Offset + 16])
        var sealed: (Bytes16, Bytes16) = (.zero, .zero)
        cookie.withUnsafeBytes { plain in
            Swift.withUnsafeMutableBytes(of: &sealed) { out in
                AEAD.xseal(key: encryptionKey, nonce: nonce, plaintext: plain, aad: mac1, into: out)
            }
        }
        return CookieReplyMessage(receiver: sender, nonce: nonce, encryptedCookie: sealed)
    }
}

/// What our side adds to the handshake messages it sends to one peer (keyed by the peer's public key),
/// and the cookie that peer last gave us.
package struct CookieGenerator: Sendable {
    private let mac1Key: Bytes32
    private let encryptionKey: Bytes32
    private var cookie = Bytes16.zero
    private var cookieReceived: Instant?
    /// mac1 of the last initiation or response we sent: the AAD of the cookie reply that may answer it.
    private var lastMAC1: Bytes16?

    /// A generator for messages to `remotePublicKey`.
    package init(remotePublicKey: Bytes32) {
        mac1Key = CookieConstants.mac1Key(remotePublicKey)
        encryptionKey = CookieConstants.cookieKey(remotePublicKey)
    }

    /// Fills mac1 and mac2 of a complete initiation or response in place.
    package mutating func addMACs(_ message: UnsafeMutableRawBufferPointer, now: Instant) {
        let mac1Offset = message.count - 32
        let mac1 = Noise.mac(key: mac1Key, UnsafeRawBufferPointer(rebasing: message[0..<mac1Offset]))
        message.store(mac1, at: mac1Offset)
        lastMAC1 = mac1
        var mac2 = Bytes16.zero
        if let received = cookieReceived, now - received < CookieConstants.cookieUsableTime {
            mac2 = Noise.mac(key: cookie, UnsafeRawBufferPointer(rebasing: message[0..<mac1Offset + 16]))
        }
        message.store(mac2, at: mac1Offset + 16)
    }

    /// Takes a cookie reply; false when it answers nothing we sent or does not decrypt.
    package mutating func consume(_ reply: CookieReplyMessage, now: Instant) -> Bool {
        guard let mac1 = lastMAC1 else { return false }
        var plain = Bytes16.zero
        let ok = Swift.withUnsafeBytes(of: reply.encryptedCookie) { sealed in
            mac1.withUnsafeBytes { aad in
                plain.withUnsafeMutableBytes { AEAD.xopen(key: encryptionKey, nonce: reply.nonce, ciphertext: sealed, aad: aad, into: $0) }
            }
        }
        guard ok else { return false }
        cookie = plain
        cookieReceived = now
        // One reply per message: a second copy of the reply must not refresh the cookie again.
        lastMAC1 = nil
        return true
    }

    /// Whether a usable cookie is held (tests and diagnostics).
    package func hasCookie(now: Instant) -> Bool {
        guard let received = cookieReceived else { return false }
        return now - received < CookieConstants.cookieUsableTime
    }
}
