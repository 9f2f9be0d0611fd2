package import NetstackWire

/// Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as WireGuard uses it (whitepaper §5.4.2–§5.4.5): one peer's
/// handshake state as a value, and the four steps (create/consume initiation, create/consume response).
///
/// Sans-I/O: randomness (ephemeral keys) and time (TAI64N) come in as arguments; nothing here reads a clock.
/// The symbols follow the whitepaper: C chaining key, H hash, E ephemeral, S static, Q preshared key.
/// MACs are not handled here (`CookieChecker`/`CookieGenerator` do them over the finished bytes).
package enum NoiseConstants {
    /// CONSTRUCTION.
    package static let construction = Array("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s".utf8)
    /// IDENTIFIER.
    package static let identifier = Array("WireGuard v1 zx2c4 Jason@zx2c4.com".utf8)
    /// Ci = HASH(CONSTRUCTION): the initial chaining key.
    package static let initialChainKey: Bytes32 = construction.withUnsafeBytes { Noise.hash($0) }
    /// HASH(Ci || IDENTIFIER): the hash before the responder's static key is mixed in.
    package static let initialHash: Bytes32 = identifier.withUnsafeBytes { Noise.hash(initialChainKey, $0) }
}

/// Our static identity: the interface private key and its public key.
package struct StaticIdentity: Sendable {
    /// The private key.
    package let privateKey: Bytes32
    /// Its public key.
    package let publicKey: Bytes32

    /// Derives the public key.
    package init(privateKey: Bytes32) {
        self.privateKey = privateKey
        publicKey = X25519.publicKey(of: privateKey)
    }
}

/// Where a handshake with one peer stands.
package enum HandshakeStage: Sendable, Equatable {
    case zeroed
    case initiationCreated
    case initiationConsumed
    case responseCreated
    case responseConsumed
}

/// Why a handshake message was refused. Counted, never logged per packet.
package enum HandshakeError: Error, Equatable, Sendable {
    /// DH produced all zeros (a low-order point).
    case invalidPublicKey
    /// An AEAD tag did not verify: wrong keys or a forged message.
    case decryptionFailed
    /// The decrypted static key is not one of our peers.
    case unknownPeer
    /// The timestamp is not newer than the last accepted one (a replayed initiation).
    case replayedTimestamp
    /// Initiations from this peer arrive faster than `handshakeInitiationRate`.
    case initiationFlood
    /// A response that matches no initiation of ours.
    case unexpectedResponse
}

/// The session keys a completed handshake yields.
package struct SessionKeys: Sendable {
    /// T_send.
    package var send: Bytes32
    /// T_recv.
    package var receive: Bytes32
    /// Whether we initiated.
    package var isInitiator: Bool
    /// Our index for this session.
    package var localIndex: UInt32
    /// The peer's index for this session.
    package var remoteIndex: UInt32
}

/// One peer's Noise state (the `Handshake` of the whitepaper), a plain value.
package struct HandshakeState: Sendable {
    /// Where the handshake stands.
    package var stage: HandshakeStage = .zeroed
    /// C, the chaining key.
    package var chainKey = Bytes32.zero
    /// H, the transcript hash.
    package var hash = Bytes32.zero
    /// Our ephemeral private key while a handshake is open.
    package var localEphemeral = Bytes32.zero
    /// The peer's ephemeral public key.
    package var remoteEphemeral = Bytes32.zero
    /// Our index for the handshake in progress.
    package var localIndex: UInt32 = 0
    /// The peer's index for it.
    package var remoteIndex: UInt32 = 0
    /// The newest TAI64N timestamp accepted from this peer (replay protection for initiations).
    package var latestTimestamp = TAI64N.zero
    /// When we last accepted an initiation from this peer (flood protection).
    package var lastInitiationConsumption: Instant?

    /// The peer's static public key.
    package let remoteStatic: Bytes32
    /// Q, all zeros when none is configured.
    package let presharedKey: Bytes32
    /// DH(S_local_priv, S_remote_pub), computed once per peer; nil if the remote key is a low-order point.
    package let precomputedStaticStatic: Bytes32?

    /// `handshakeInitationRate` (wireguard-go): at most one initiation per 20 ms is consumed per peer.
    package static let handshakeInitiationRate: Duration = .milliseconds(20)

    /// A zeroed handshake with the peer `remoteStatic`; precomputes DH(S_local, S_remote).
    package init(identity: StaticIdentity, remoteStatic: Bytes32, presharedKey: Bytes32 = .zero) {
        self.remoteStatic = remoteStatic
        self.presharedKey = presharedKey
        precomputedStaticStatic = X25519.sharedSecret(identity.privateKey, remoteStatic)
    }

    /// Forgets everything but the long-term configuration and the replay/flood records.
    package mutating func clear() {
        stage = .zeroed
        chainKey = .zero
        hash = .zero
        localEphemeral = .zero
        remoteEphemeral = .zero
        localIndex = 0
        remoteIndex = 0
    }

    // MARK: Initiator

    /// Builds an initiation (whitepaper §5.4.2) for `localIndex`, with the ephemeral key `ephemeralPrivate`
    /// and our wall-clock `timestamp`. MAC fields are left zero.
    package mutating func createInitiation(identity: StaticIdentity, localIndex: UInt32, ephemeralPrivate: Bytes32,
                                           timestamp: TAI64N) throws(HandshakeError) -> InitiationMessage {
        guard let staticStatic = precomputedStaticStatic else { throw .invalidPublicKey }
        var c = NoiseConstants.initialChainKey
        var h = Noise.hash(NoiseConstants.initialHash, remoteStatic)
        let ephemeralPublic = X25519.publicKey(of: ephemeralPrivate)
        var message = InitiationMessage(sender: localIndex, ephemeral: ephemeralPublic)
        c = Noise.kdf1(key: c, ephemeralPublic)
        h = Noise.hash(h, ephemeralPublic)

        guard let es = X25519.sharedSecret(ephemeralPrivate, remoteStatic) else { throw .invalidPublicKey }
        var key: Bytes32
        (c, key) = Noise.kdf2(key: c, es)
        message.encryptedStatic = Self.seal(key: key, plaintext: identity.publicKey, hash: h)
        h = Self.mixHash(h, message.encryptedStatic)

        (c, key) = Noise.kdf2(key: c, staticStatic)
        message.encryptedTimestamp = Self.seal(key: key, timestamp: timestamp, hash: h)
        h = Self.mixHash(h, message.encryptedTimestamp)

        chainKey = c
        hash = h
        localEphemeral = ephemeralPrivate
        self.localIndex = localIndex
        remoteIndex = 0
        stage = .initiationCreated
        return message
    }

    /// Consumes a response to our initiation (whitepaper §5.4.3, initiator side) and, on success, returns the
    /// session keys (§5.4.5). On failure the state is unchanged.
    package mutating func consumeResponse(_ message: ResponseMessage, identity: StaticIdentity) throws(HandshakeError) -> SessionKeys {
        guard stage == .initiationCreated, message.receiver == localIndex else { throw .unexpectedResponse }
        var c = chainKey
        var h = hash
        c = Noise.kdf1(key: c, message.ephemeral)
        h = Noise.hash(h, message.ephemeral)
        guard let ee = X25519.sharedSecret(localEphemeral, message.ephemeral),
              let se = X25519.sharedSecret(identity.privateKey, message.ephemeral)
        else { throw .invalidPublicKey }
        c = Noise.kdf1(key: c, ee)
        c = Noise.kdf1(key: c, se)
        let (c2, tau, key) = Noise.kdf3(key: c, presharedKey)
        c = c2
        h = Noise.hash(h, tau)
        guard Self.openEmpty(key: key, tag: message.encryptedNothing, hash: h) else { throw .decryptionFailed }
        h = message.encryptedNothing.withUnsafeBytes { Noise.hash(h, $0) }

        chainKey = c
        hash = h
        remoteEphemeral = message.ephemeral
        remoteIndex = message.sender
        stage = .responseConsumed
        return deriveKeys(isInitiator: true)
    }

    // MARK: Responder

    /// What the responder learns from an initiation before it knows which peer sent it.
    package struct ConsumedInitiation: Sendable {
        /// The initiator's static public key (decrypted).
        package var remoteStatic: Bytes32
        /// C after the timestamp.
        package var chainKey: Bytes32
        /// H after the timestamp.
        package var hash: Bytes32
        /// The initiator's ephemeral public key.
        package var remoteEphemeral: Bytes32
        /// The decrypted timestamp.
        package var timestamp: TAI64N
        /// The initiator's index.
        package var sender: UInt32
    }

    /// Decrypts an initiation addressed to `identity` (whitepaper §5.4.2, responder side) up to the static key and
    /// timestamp. The caller finds the peer by `remoteStatic` and then calls `acceptInitiation`.
    package static func openInitiation(_ message: InitiationMessage, identity: StaticIdentity,
                                       staticStatic: (Bytes32) -> Bytes32?) throws(HandshakeError) -> ConsumedInitiation {
        var c = NoiseConstants.initialChainKey
        var h = Noise.hash(NoiseConstants.initialHash, identity.publicKey)
        c = Noise.kdf1(key: c, message.ephemeral)
        h = Noise.hash(h, message.ephemeral)
        guard let es = X25519.sharedSecret(identity.privateKey, message.ephemeral) else { throw .invalidPublicKey }
        var key: Bytes32
        (c, key) = Noise.kdf2(key: c, es)
        guard let remoteStatic = open(key: key, ciphertext: message.encryptedStatic, hash: h) else { throw .decryptionFailed }
        h = mixHash(h, message.encryptedStatic)
        // The peer lookup happens here: an unknown static key ends the handshake before more DH work.
        guard let ss = staticStatic(remoteStatic) else { throw .unknownPeer }
        (c, key) = Noise.kdf2(key: c, ss)
        guard let timestamp = openTimestamp(key: key, ciphertext: message.encryptedTimestamp, hash: h) else {
            throw .decryptionFailed
        }
        h = mixHash(h, message.encryptedTimestamp)
        return ConsumedInitiation(remoteStatic: remoteStatic, chainKey: c, hash: h, remoteEphemeral: message.ephemeral,
                                  timestamp: timestamp, sender: message.sender)
    }

    /// Takes a decrypted initiation for this peer: rejects replays and floods, then stores the state.
    package mutating func acceptInitiation(_ consumed: ConsumedInitiation, now: Instant) throws(HandshakeError) {
        guard consumed.timestamp > latestTimestamp else { throw .replayedTimestamp }
        if let last = lastInitiationConsumption, now - last < Self.handshakeInitiationRate { throw .initiationFlood }
        chainKey = consumed.chainKey
        hash = consumed.hash
        remoteEphemeral = consumed.remoteEphemeral
        remoteIndex = consumed.sender
        latestTimestamp = consumed.timestamp
        lastInitiationConsumption = now
        stage = .initiationConsumed
    }

    /// Builds the response (whitepaper §5.4.3) and returns it with the session keys (§5.4.5). MACs zero.
    package mutating func createResponse(localIndex: UInt32, ephemeralPrivate: Bytes32) throws(HandshakeError) -> (ResponseMessage, SessionKeys) {
        guard stage == .initiationConsumed else { throw .unexpectedResponse }
        var c = chainKey
        var h = hash
        let ephemeralPublic = X25519.publicKey(of: ephemeralPrivate)
        var message = ResponseMessage(sender: localIndex, receiver: remoteIndex, ephemeral: ephemeralPublic)
        c = Noise.kdf1(key: c, ephemeralPublic)
        h = Noise.hash(h, ephemeralPublic)
        guard let ee = X25519.sharedSecret(ephemeralPrivate, remoteEphemeral),
              let se = X25519.sharedSecret(ephemeralPrivate, remoteStatic)
        else { throw .invalidPublicKey }
        c = Noise.kdf1(key: c, ee)
        c = Noise.kdf1(key: c, se)
        let (c2, tau, key) = Noise.kdf3(key: c, presharedKey)
        c = c2
        h = Noise.hash(h, tau)
        message.encryptedNothing = Self.sealEmpty(key: key, hash: h)
        h = message.encryptedNothing.withUnsafeBytes { Noise.hash(h, $0) }

        chainKey = c
        hash = h
        localEphemeral = ephemeralPrivate
        self.localIndex = localIndex
        stage = .responseCreated
        return (message, deriveKeys(isInitiator: false))
    }

    /// (T_send, T_recv) = KDF2(C, ε), swapped for the responder; the handshake state is then wiped (§5.4.5).
    private mutating func deriveKeys(isInitiator: Bool) -> SessionKeys {
        let (first, second) = Noise.kdf2(key: chainKey, UnsafeRawBufferPointer(start: nil, count: 0))
        let keys = SessionKeys(send: isInitiator ? first : second, receive: isInitiator ? second : first,
                               isInitiator: isInitiator, localIndex: localIndex, remoteIndex: remoteIndex)
        chainKey = .zero
        hash = .zero
        localEphemeral = .zero
        return keys
    }

    // MARK: AEAD helpers over fixed-size fields (counter 0, AAD = H)

    private static func seal(key: Bytes32, plaintext: Bytes32, hash: Bytes32) -> (Bytes32, Bytes16) {
        var out: (Bytes32, Bytes16) = (.zero, .zero)
        plaintext.withUnsafeBytes { plain in
            hash.withUnsafeBytes { aad in
                Swift.withUnsafeMutableBytes(of: &out) { AEAD.seal(key: key, counter: 0, plaintext: plain, aad: aad, into: $0) }
            }
        }
        return out
    }

    private static func open(key: Bytes32, ciphertext: (Bytes32, Bytes16), hash: Bytes32) -> Bytes32? {
        var plain = Bytes32.zero
        let ok = Swift.withUnsafeBytes(of: ciphertext) { sealed in
            hash.withUnsafeBytes { aad in
                plain.withUnsafeMutableBytes { AEAD.open(key: key, counter: 0, ciphertext: sealed, aad: aad, into: $0) }
            }
        }
        return ok ? plain : nil
    }

    private static func seal(key: Bytes32, timestamp: TAI64N, hash: Bytes32) -> (UInt64, UInt32, Bytes16) {
        var out: (UInt64, UInt32, UInt32, Bytes16) = (0, 0, 0, .zero)
        let plain = timestamp.bytes
        plain.withUnsafeBytes { plain in
            hash.withUnsafeBytes { aad in
                Swift.withUnsafeMutableBytes(of: &out) { raw in
                    // Ciphertext in bytes 0..<12, the tag right after it in 12..<28 (then moved to the Bytes16 slot).
                    var sealed = [UInt8](repeating: 0, count: 28)
                    sealed.withUnsafeMutableBytes { AEAD.seal(key: key, counter: 0, plaintext: plain, aad: aad, into: $0) }
                    sealed.withUnsafeBytes { sealed in
                        UnsafeMutableRawBufferPointer(rebasing: raw[0..<12]).copyMemory(from: UnsafeRawBufferPointer(rebasing: sealed[0..<12]))
                        UnsafeMutableRawBufferPointer(rebasing: raw[16..<32]).copyMemory(from: UnsafeRawBufferPointer(rebasing: sealed[12..<28]))
                    }
                }
            }
        }
        return (out.0, out.1, out.3)
    }

    private static func openTimestamp(key: Bytes32, ciphertext: (UInt64, UInt32, Bytes16), hash: Bytes32) -> TAI64N? {
        var sealed = [UInt8](repeating: 0, count: 28)
        sealed.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: ciphertext.0, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: ciphertext.1, toByteOffset: 8, as: UInt32.self)
            ciphertext.2.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: raw[12..<28]).copyMemory(from: $0) }
        }
        var plain = [UInt8](repeating: 0, count: 12)
        let ok = sealed.withUnsafeBytes { sealed in
            hash.withUnsafeBytes { aad in
                plain.withUnsafeMutableBytes { AEAD.open(key: key, counter: 0, ciphertext: sealed, aad: aad, into: $0) }
            }
        }
        return ok ? TAI64N(bytes: plain) : nil
    }

    private static func sealEmpty(key: Bytes32, hash: Bytes32) -> Bytes16 {
        var tag = Bytes16.zero
        hash.withUnsafeBytes { aad in
            tag.withUnsafeMutableBytes { AEAD.seal(key: key, counter: 0, plaintext: UnsafeRawBufferPointer(start: nil, count: 0), aad: aad, into: $0) }
        }
        return tag
    }

    private static func openEmpty(key: Bytes32, tag: Bytes16, hash: Bytes32) -> Bool {
        var nothing: UInt8 = 0
        return tag.withUnsafeBytes { sealed in
            hash.withUnsafeBytes { aad in
                withUnsafeMutableBytes(of: &nothing) { AEAD.open(key: key, counter: 0, ciphertext: sealed, aad: aad, into: $0) }
            }
        }
    }

    private static func mixHash(_ h: Bytes32, _ field: (Bytes32, Bytes16)) -> Bytes32 {
        Swift.withUnsafeBytes(of: field) { Noise.hash(h, $0) }
    }

    private static func mixHash(_ h: Bytes32, _ field: (UInt64, UInt32, Bytes16)) -> Bytes32 {
        var bytes = [UInt8](repeating: 0, count: 28)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: field.0, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: field.1, toByteOffset: 8, as: UInt32.self)
            field.2.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: raw[12..<28]).copyMemory(from: $0) }
        }
        return bytes.withUnsafeBytes { Noise.hash(h, $0) }
    }
}
