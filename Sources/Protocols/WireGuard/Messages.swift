/// WireGuard's four messages (whitepaper §5.4): layouts, sizes and typed-throw parsers over raw bytes.
///
/// Layouts (all integers little-endian):
///   initiation  148 B: type 1 | reserved 3 | sender 4 | ephemeral 32 | static 32+16 | timestamp 12+16 | mac1 16 | mac2 16
///   response     92 B: type 2 | reserved 3 | sender 4 | receiver 4 | ephemeral 32 | empty 0+16 | mac1 16 | mac2 16
///   cookie reply 64 B: type 3 | reserved 3 | receiver 4 | nonce 24 | cookie 16+16
///   transport ≥ 32 B: type 4 | reserved 3 | receiver 4 | counter 8 | packet (padded to 16) + 16 tag
/// The parsers copy the fixed fields out into values (they are small) and never trap on input.
package enum MessageType: UInt8, Sendable {
    case initiation = 1, response = 2, cookieReply = 3, transport = 4
}

/// Sizes and offsets of the wire format.
package enum MessageLayout {
    /// `MessageInitiationSize`.
    package static let initiationSize = 148
    /// `MessageResponseSize`.
    package static let responseSize = 92
    /// `MessageCookieReplySize`.
    package static let cookieReplySize = 64
    /// `messageTransportHeaderSize`: type, reserved, receiver, counter.
    package static let transportHeaderSize = 16
    /// The smallest transport message: a header and a tag (a keepalive).
    package static let transportMinimumSize = 32
    /// Where mac1 starts in an initiation (mac2 follows 16 bytes later).
    package static let initiationMAC1Offset = 116
    /// Where mac1 starts in a response.
    package static let responseMAC1Offset = 60
    /// `messageTransportOffsetCounter`.
    package static let transportCounterOffset = 8
}

/// Why bytes are not a WireGuard message. Thrown on the receive path: numbers, no strings.
package enum MessageError: Error, Equatable, Sendable {
    case empty
    case unknownType(UInt8)
    case badLength(MessageType, Int)
    /// Bytes 1–3 must be zero unless the device clears them (sing-box's `reserved`).
    case nonZeroReserved
}

/// A handshake initiation (type 1).
package struct InitiationMessage: Equatable, Sendable {
    /// The sender's index.
    package var sender: UInt32
    /// The unencrypted ephemeral public key.
    package var ephemeral: Bytes32
    /// AEAD of the initiator's static public key: ciphertext, tag.
    package var encryptedStatic: (Bytes32, Bytes16)
    /// AEAD of the TAI64N timestamp: 12 ciphertext bytes (as 8 + 4, memory order), tag.
    package var encryptedTimestamp: (UInt64, UInt32, Bytes16)
    /// MAC keyed by the receiver's public key.
    package var mac1: Bytes16
    /// MAC keyed by a cookie, or zeros.
    package var mac2: Bytes16

    /// Field-wise equality.
    package static func == (a: Self, b: Self) -> Bool {
        a.sender == b.sender && a.ephemeral == b.ephemeral && a.encryptedStatic == b.encryptedStatic
            && a.encryptedTimestamp == b.encryptedTimestamp && a.mac1 == b.mac1 && a.mac2 == b.mac2
    }

    /// Reads a 148-byte initiation.
    package init(parsing bytes: UnsafeRawBufferPointer) throws(MessageError) {
        try checkHeader(bytes, .initiation, size: MessageLayout.initiationSize)
        sender = bytes.loadLE(at: 4)
        ephemeral = Bytes32(copying: bytes[8..<40])
        encryptedStatic = (Bytes32(copying: bytes[40..<72]), Bytes16(copying: bytes[72..<88]))
        encryptedTimestamp = (bytes.loadRaw(at: 88), bytes.loadRaw(at: 96), Bytes16(copying: bytes[100..<116]))
        mac1 = Bytes16(copying: bytes[116..<132])
        mac2 = Bytes16(copying: bytes[132..<148])
    }

    /// An initiation with the other fields zero, to be filled by the handshake.
    package init(sender: UInt32, ephemeral: Bytes32) {
        self.sender = sender
        self.ephemeral = ephemeral
        encryptedStatic = (.zero, .zero)
        encryptedTimestamp = (0, 0, .zero)
        mac1 = .zero
        mac2 = .zero
    }

    /// Writes the 148 bytes to `out` (reserved bytes zero).
    package func write(to out: UnsafeMutableRawBufferPointer) {
        out.storeHeader(.initiation)
        out.storeLE(sender, at: 4)
        out.store(ephemeral, at: 8)
        out.store(encryptedStatic.0, at: 40)
        out.store(encryptedStatic.1, at: 72)
        out.storeBytes(of: encryptedTimestamp.0, toByteOffset: 88, as: UInt64.self)
        out.storeBytes(of: encryptedTimestamp.1, toByteOffset: 96, as: UInt32.self)
        out.store(encryptedTimestamp.2, at: 100)
        out.store(mac1, at: 116)
        out.store(mac2, at: 132)
    }

    /// The wire bytes (tests, logs).
    package var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: MessageLayout.initiationSize)
        out.withUnsafeMutableBytes { write(to: $0) }
        return out
    }
}

/// A handshake response (type 2).
package struct ResponseMessage: Equatable, Sendable {
    /// The sender's index.
    package var sender: UInt32
    /// The index of the message's recipient.
    package var receiver: UInt32
    /// The unencrypted ephemeral public key.
    package var ephemeral: Bytes32
    /// AEAD of the empty string: just the tag.
    package var encryptedNothing: Bytes16
    /// MAC keyed by the receiver's public key.
    package var mac1: Bytes16
    /// MAC keyed by a cookie, or zeros.
    package var mac2: Bytes16

    /// Reads the message; throws on type, length or reserved bytes.
    package init(parsing bytes: UnsafeRawBufferPointer) throws(MessageError) {
        try checkHeader(bytes, .response, size: MessageLayout.responseSize)
        sender = bytes.loadLE(at: 4)
        receiver = bytes.loadLE(at: 8)
        ephemeral = Bytes32(copying: bytes[12..<44])
        encryptedNothing = Bytes16(copying: bytes[44..<60])
        mac1 = Bytes16(copying: bytes[60..<76])
        mac2 = Bytes16(copying: bytes[76..<92])
    }

    /// A response with the encrypted and MAC fields zero.
    package init(sender: UInt32, receiver: UInt32, ephemeral: Bytes32) {
        self.sender = sender
        self.receiver = receiver
        self.ephemeral = ephemeral
        encryptedNothing = .zero
        mac1 = .zero
        mac2 = .zero
    }

    /// Writes the wire bytes into `out` (at least the message size).
    package func write(to out: UnsafeMutableRawBufferPointer) {
        out.storeHeader(.response)
        out.storeLE(sender, at: 4)
        out.storeLE(receiver, at: 8)
        out.store(ephemeral, at: 12)
        out.store(encryptedNothing, at: 44)
        out.store(mac1, at: 60)
        out.store(mac2, at: 76)
    }

    /// The wire bytes (tests, logs).
    package var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: MessageLayout.responseSize)
        out.withUnsafeMutableBytes { write(to: $0) }
        return out
    }
}

/// A cookie reply (type 3).
package struct CookieReplyMessage: Equatable, Sendable {
    /// The index of the message's recipient.
    package var receiver: UInt32
    /// The XChaCha20 nonce.
    package var nonce: Bytes24
    /// XAEAD of the cookie: ciphertext, tag.
    package var encryptedCookie: (Bytes16, Bytes16)

    /// Field-wise equality.
    package static func == (a: Self, b: Self) -> Bool {
        a.receiver == b.receiver && a.nonce == b.nonce && a.encryptedCookie == b.encryptedCookie
    }

    /// Reads the message; throws on type, length or reserved bytes.
    package init(parsing bytes: UnsafeRawBufferPointer) throws(MessageError) {
        try checkHeader(bytes, .cookieReply, size: MessageLayout.cookieReplySize)
        receiver = bytes.loadLE(at: 4)
        nonce = Bytes24(copying: bytes[8..<32])
        encryptedCookie = (Bytes16(copying: bytes[32..<48]), Bytes16(copying: bytes[48..<64]))
    }

    /// A cookie reply from its fields.
    package init(receiver: UInt32, nonce: Bytes24, encryptedCookie: (Bytes16, Bytes16)) {
        self.receiver = receiver
        self.nonce = nonce
        self.encryptedCookie = encryptedCookie
    }

    /// Writes the wire bytes into `out` (at least the message size).
    package func write(to out: UnsafeMutableRawBufferPointer) {
        out.storeHeader(.cookieReply)
        out.storeLE(receiver, at: 4)
        nonce.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: out[8..<32]).copyMemory(from: $0) }
        out.store(encryptedCookie.0, at: 32)
        out.store(encryptedCookie.1, at: 48)
    }

    /// The wire bytes (tests, logs).
    package var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: MessageLayout.cookieReplySize)
        out.withUnsafeMutableBytes { write(to: $0) }
        return out
    }
}

/// The header of a transport message (type 4); the payload stays where it is.
package struct TransportHeader: Equatable, Sendable {
    /// The index of the message's recipient.
    package var receiver: UInt32
    /// The nonce counter of this message.
    package var counter: UInt64

    /// A header from its fields.
    package init(receiver: UInt32, counter: UInt64) {
        self.receiver = receiver
        self.counter = counter
    }

    /// Reads the header of a transport message of at least 32 bytes.
    package init(parsing bytes: UnsafeRawBufferPointer) throws(MessageError) {
        guard bytes.count >= 1 else { throw .empty }
        guard bytes[0] == MessageType.transport.rawValue else { throw .unknownType(bytes[0]) }
        guard bytes.count >= MessageLayout.transportMinimumSize else { throw .badLength(.transport, bytes.count) }
        guard bytes[1] | bytes[2] | bytes[3] == 0 else { throw .nonZeroReserved }
        receiver = bytes.loadLE(at: 4)
        counter = bytes.loadLE(at: 8)
    }

    /// Writes the wire bytes into `out` (at least the message size).
    package func write(to out: UnsafeMutableRawBufferPointer) {
        out.storeHeader(.transport)
        out.storeLE(receiver, at: 4)
        out.storeLE(counter, at: 8)
    }
}

/// Classifies a datagram by its first byte and length, as wireguard-go does (type as a little-endian u32,
/// so bytes 1–3 must be zero).
package func messageType(of bytes: UnsafeRawBufferPointer) throws(MessageError) -> MessageType {
    guard bytes.count >= 1 else { throw .empty }
    guard let type = MessageType(rawValue: bytes[0]) else { throw .unknownType(bytes[0]) }
    guard bytes.count >= 4, bytes[1] | bytes[2] | bytes[3] == 0 else {
        throw bytes.count < 4 ? .badLength(type, bytes.count) : .nonZeroReserved
    }
    switch type {
    case .initiation: guard bytes.count == MessageLayout.initiationSize else { throw .badLength(type, bytes.count) }
    case .response: guard bytes.count == MessageLayout.responseSize else { throw .badLength(type, bytes.count) }
    case .cookieReply: guard bytes.count == MessageLayout.cookieReplySize else { throw .badLength(type, bytes.count) }
    case .transport: guard bytes.count >= MessageLayout.transportMinimumSize else { throw .badLength(type, bytes.count) }
    }
    return type
}

private func checkHeader(_ bytes: UnsafeRawBufferPointer, _ type: MessageType, size: Int) throws(MessageError) {
    guard bytes.count >= 1 else { throw .empty }
    guard bytes[0] == type.rawValue else { throw .unknownType(bytes[0]) }
    guard bytes.count == size else { throw .badLength(type, bytes.count) }
    guard bytes[1] | bytes[2] | bytes[3] == 0 else { throw .nonZeroReserved }
}

extension UnsafeRawBufferPointer {
    @inline(__always) func loadLE<T: FixedWidthInteger>(at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// Loads without byte-order conversion (fields kept as opaque bytes).
    @inline(__always) func loadRaw<T: FixedWidthInteger>(at offset: Int) -> T {
        loadUnaligned(fromByteOffset: offset, as: T.self)
    }
}

extension Bytes32 {
    init(copying slice: Slice<UnsafeRawBufferPointer>) { self.init(copying: UnsafeRawBufferPointer(rebasing: slice)) }
}

extension Bytes16 {
    init(copying slice: Slice<UnsafeRawBufferPointer>) { self.init(copying: UnsafeRawBufferPointer(rebasing: slice)) }
}

extension Bytes24 {
    init(copying slice: Slice<UnsafeRawBufferPointer>) { self.init(copying: UnsafeRawBufferPointer(rebasing: slice)) }
}

extension UnsafeMutableRawBufferPointer {
    @inline(__always) func storeHeader(_ type: MessageType) {
        storeBytes(of: UInt32(type.rawValue).littleEndian, toByteOffset: 0, as: UInt32.self)
    }

    @inline(__always) func storeLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }

    @inline(__always) func store(_ value: Bytes32, at offset: Int) {
        value.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: self[offset..<offset + 32]).copyMemory(from: $0) }
    }

    @inline(__always) func store(_ value: Bytes16, at offset: Int) {
        value.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: self[offset..<offset + 16]).copyMemory(from: $0) }
    }
}
