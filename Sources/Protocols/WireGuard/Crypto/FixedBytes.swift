/// Fixed-size byte values for keys, hashes, MACs and nonces: plain stored words, no heap, `BitwiseCopyable`,
/// so handshake state is a value that copies without allocation.
///
/// Bytes are in memory order (byte 0 first); the words are storage only and never interpreted as integers.
package struct Bytes32: Hashable, Sendable, BitwiseCopyable, CustomStringConvertible {
    private var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0

    /// The size in bytes.
    package static let byteCount = 32
    /// All zeros (an absent preshared key, a wiped secret).
    package static let zero = Bytes32()

    /// All zeros.
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

    /// Whether every byte is zero.
    package var isZero: Bool { self == .zero }

    /// A key from its standard base64 text (`wg genkey`, sing-box's `private_key`/`public_key`/`pre_shared_key`);
    /// nil unless it decodes to exactly 32 bytes.
    package init?(base64 text: String) {
        guard let bytes = Base64Decoding.decode(text), let key = Bytes32(bytes) else { return nil }
        self = key
    }

    /// The key as standard base64 (what `wg show` prints).
    package var base64: String { Base64Decoding.encode(bytes) }

    /// Equality that takes the same time whatever the contents (for MACs and secrets).
    package func constantTimeEquals(_ other: Bytes32) -> Bool {
        (w0 ^ other.w0) | (w1 ^ other.w1) | (w2 ^ other.w2) | (w3 ^ other.w3) == 0
    }

    /// Lowercase hex (tests and debugging; never log secrets).
    package var description: String { bytes.map { hexDigits($0) }.joined() }
}

/// 16 bytes: MACs, AEAD tags, cookies.
package struct Bytes16: Hashable, Sendable, BitwiseCopyable {
    private var w0: UInt64 = 0, w1: UInt64 = 0

    /// All zeros.
    package static let zero = Bytes16()
    /// All zeros.
    package init() {}

    /// Copies exactly 16 bytes; nil for any other count.
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

    /// The bytes as an array (tests).
    package var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Equality that takes the same time whatever the contents.
    package func constantTimeEquals(_ other: Bytes16) -> Bool { (w0 ^ other.w0) | (w1 ^ other.w1) == 0 }
}

/// 24 bytes: the XChaCha20-Poly1305 nonce of a cookie reply.
package struct Bytes24: Hashable, Sendable, BitwiseCopyable {
    private var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0

    /// All zeros.
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

/// Standard base64 (RFC 4648 §4) for key text; padding required as in Go's base64.StdEncoding.
enum Base64Decoding {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func decode(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        var table = [Int8](repeating: -1, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = Int8(index) }
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        var index = 0
        while index < input.count {
            var values: [Int] = []
            var padding = 0
            for offset in 0..<4 {
                let byte = input[index + offset]
                if byte == UInt8(ascii: "=") {
                    // Padding only at the very end, at most two.
                    guard index + 4 == input.count, offset >= 2 else { return nil }
                    padding += 1
                    values.append(0)
                } else {
                    guard padding == 0, table[Int(byte)] >= 0 else { return nil }
                    values.append(Int(table[Int(byte)]))
                }
            }
            let word = values[0] << 18 | values[1] << 12 | values[2] << 6 | values[3]
            out.append(UInt8(truncatingIfNeeded: word >> 16))
            if padding < 2 { out.append(UInt8(truncatingIfNeeded: word >> 8)) }
            if padding < 1 { out.append(UInt8(truncatingIfNeeded: word)) }
            index += 4
        }
        return out
    }

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let remaining = min(3, bytes.count - index)
            var word = UInt32(bytes[index]) << 16
            if remaining > 1 { word |= UInt32(bytes[index + 1]) << 8 }
            if remaining > 2 { word |= UInt32(bytes[index + 2]) }
            for position in 0..<4 {
                if position <= remaining {
                    out.append(alphabet[Int((word >> UInt32(18 - 6 * position)) & 63)])
                } else {
                    out.append(UInt8(ascii: "="))
                }
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
