/// Fixed-size byte values for keys, hashes, MACs and nonces: plain stored words, no heap, `BitwiseCopyable`,
/// so handshake state is a value that copies without allocation.
///
/// Bytes are in memory order (byte 0 first); the words are storage only and never interpreted as integers.
package struct Bytes32: Hashable, Sendable, BitwiseCopyable, CustomStringConvertible {
    private var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0

    package static let byteCount = 32
    /// All zeros (an absent preshared key, a wiped secret).
    package static let zero = Bytes32()

    package init() {}

    /// Copies exactly 32 bytes; `nil` for any other count.
    package init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        withUnsafeMutableBytes { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
    }

    /// Copies 32 bytes from `source`; the caller has checked the length.
    @inlinable package init(copying source: UnsafeRawBufferPointer) {
        self.init()
        withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: source.prefix(32))) }
    }

    @inlinable package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: self, body)
    }

    @inlinable package mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeMutableBytes(of: &self, body)
    }

    /// The bytes as an array, for tests, config and logs (not for the data path).
    package var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    package var isZero: Bool { self == .zero }

    /// Equality that takes the same time whatever the contents (for MACs and secrets).
    package func constantTimeEquals(_ other: Bytes32) -> Bool {
        (w0 ^ other.w0) | (w1 ^ other.w1) | (w2 ^ other.w2) | (w3 ^ other.w3) == 0
    }

    package var description: String { bytes.map { hexDigits($0) }.joined() }
}

/// 16 bytes: MACs, AEAD tags, cookies.
package struct Bytes16: Hashable, Sendable, BitwiseCopyable {
    private var w0: UInt64 = 0, w1: UInt64 = 0

    package static let zero = Bytes16()
    package init() {}

    package init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        withUnsafeMutableBytes { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
    }

    @inlinable package init(copying source: UnsafeRawBufferPointer) {
        self.init()
        withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: source.prefix(16))) }
    }

    @inlinable package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: self, body)
    }

    @inlinable package mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeMutableBytes(of: &self, body)
    }

    package var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Equality that takes the same time whatever the contents.
    package func constantTimeEquals(_ other: Bytes16) -> Bool { (w0 ^ other.w0) | (w1 ^ other.w1) == 0 }
}

/// 24 bytes: the XChaCha20-Poly1305 nonce of a cookie reply.
package struct Bytes24: Hashable, Sendable, BitwiseCopyable {
    private var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0

    package init() {}

    @inlinable package init(copying source: UnsafeRawBufferPointer) {
        self.init()
        withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: source.prefix(24))) }
    }

    @inlinable package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: self, body)
    }

    @inlinable package mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeMutableBytes(of: &self, body)
    }
}

func hexDigits(_ byte: UInt8) -> String {
    let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
    return String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
}
