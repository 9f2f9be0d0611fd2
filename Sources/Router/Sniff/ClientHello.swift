// ClientHello: the fields of a TLS ClientHello that sniffing reads (RFC 8446 §4.1.2): SNI for
// routing, and the lists Go's ja3 fingerprint keeps for telling QUIC clients apart.

/// A parsed ClientHello handshake message. Lists keep GREASE values (RFC 8701) as sent, as Go's
/// `ja3.Compute` does (its Safari test looks at a GREASE first entry).
struct ClientHello: Equatable {
    /// `server_name` host_name, lowercased; nil when absent or not a plausible domain.
    var serverName: String?
    var cipherSuites: [UInt16] = []
    /// `supported_versions` (extension 43).
    var versions: [UInt16] = []
    /// `supported_groups` (extension 10).
    var curves: [UInt16] = []
    /// `signature_algorithms` (extension 13).
    var signatureAlgorithms: [UInt16] = []

    /// Parses a whole handshake message (type 1, 3-byte length, body). Nil when malformed.
    init?(handshake: ArraySlice<UInt8>) {
        var reader = ByteReader(handshake)
        guard reader.u8() == 1, let length = reader.u24(), let body = reader.bytes(length) else { return nil }
        var hello = ByteReader(body)
        guard hello.skip(2 + 32),                                        // legacy_version, random
              let sessionLength = hello.u8(), hello.skip(Int(sessionLength)),
              let suitesLength = hello.u16(), let suites = hello.bytes(Int(suitesLength)), suitesLength % 2 == 0,
              let compressionLength = hello.u8(), hello.skip(Int(compressionLength)) else { return nil }
        cipherSuites = ByteReader.u16List(suites)
        guard !hello.isAtEnd else { return }                             // no extensions
        guard let extensionsLength = hello.u16(), let extensions = hello.bytes(Int(extensionsLength)) else { return nil }
        var reader2 = ByteReader(extensions)
        while !reader2.isAtEnd {
            guard let type = reader2.u16(), let length = reader2.u16(), let data = reader2.bytes(Int(length)) else { return nil }
            var value = ByteReader(data)
            switch type {
            case 0:  // server_name: list length, then (type, length, name)*
                guard value.skip(2) else { return nil }
                while !value.isAtEnd {
                    guard let nameType = value.u8(), let nameLength = value.u16(), let name = value.bytes(Int(nameLength)) else { return nil }
                    if nameType == 0 {
                        let text = String(decoding: name, as: UTF8.self)
                        serverName = isDomainName(text) ? text.lowercased() : nil
                        break
                    }
                }
            case 10:  // supported_groups: 2-byte list length
                guard let listLength = value.u16(), let list = value.bytes(Int(listLength)) else { return nil }
                curves = ByteReader.u16List(list)
            case 13:  // signature_algorithms: 2-byte list length
                guard let listLength = value.u16(), let list = value.bytes(Int(listLength)) else { return nil }
                signatureAlgorithms = ByteReader.u16List(list)
            case 43:  // supported_versions (client form): 1-byte list length
                guard let listLength = value.u8(), let list = value.bytes(Int(listLength)) else { return nil }
                versions = ByteReader.u16List(list)
            default:
                break
            }
        }
    }
}

/// Big-endian reads over untrusted bytes; every read returns nil past the end instead of trapping.
struct ByteReader {
    let bytes: ArraySlice<UInt8>
    var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.index = bytes.startIndex
    }

    var isAtEnd: Bool { index >= bytes.endIndex }
    var remaining: Int { bytes.endIndex - index }

    mutating func u8() -> UInt8? {
        guard index < bytes.endIndex else { return nil }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func u16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { index += 2 }
        return UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])
    }

    mutating func u24() -> Int? {
        guard remaining >= 3 else { return nil }
        defer { index += 3 }
        return Int(bytes[index]) << 16 | Int(bytes[index + 1]) << 8 | Int(bytes[index + 2])
    }

    mutating func u32() -> UInt32? {
        guard let high = u16(), let low = u16() else { return nil }
        return UInt32(high) << 16 | UInt32(low)
    }

    /// A QUIC variable-length integer (RFC 9000 §16).
    mutating func varint() -> UInt64? {
        guard let first = u8() else { return nil }
        let length = 1 << Int(first >> 6)
        var value = UInt64(first & 0x3F)
        for _ in 1..<length {
            guard let next = u8() else { return nil }
            value = value << 8 | UInt64(next)
        }
        return value
    }

    mutating func bytes(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, remaining >= count else { return nil }
        defer { index += count }
        return bytes[index..<(index + count)]
    }

    mutating func skip(_ count: Int) -> Bool { bytes(count) != nil }

    static func u16List(_ list: ArraySlice<UInt8>) -> [UInt16] {
        stride(from: list.startIndex, to: list.endIndex - 1, by: 2).map { UInt16(list[$0]) << 8 | UInt16(list[$0 + 1]) }
    }
}
