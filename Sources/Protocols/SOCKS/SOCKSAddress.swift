// The SOCKS5 address field (RFC 1928 §4/§5): ATYP, then 4 bytes, a length-prefixed domain or
// 16 bytes, then the port in network order. Shared by requests, replies and UDP headers.
package import Adapter
package import NIOCore

/// RFC 1928 address types.
package enum SOCKS5AddressType {
    package static let ipv4: UInt8 = 1
    package static let domain: UInt8 = 3
    package static let ipv6: UInt8 = 4
}

extension Destination {
    /// Reads an RFC 1928 address and port at the buffer's reader index.
    ///
    /// Returns nil, consuming nothing, when the bytes end early; on success the reader index moves
    /// past the port. A domain that spells an IP literal becomes that IP, as Go's
    /// `M.ParseSocksaddrHostPort` does. Throws on an unknown type or an empty domain.
    package static func readSOCKS5(from buffer: inout ByteBuffer) throws(SOCKSError) -> Destination? {
        do { return try AddressSerializer.socks.read(from: &buffer) } catch { throw SOCKSError(error) }
    }

    /// Bytes `writeSOCKS5` will write; the domain form counts its UTF-8 bytes.
    package var socks5EncodedLength: Int { AddressSerializer.socks.encodedLength(self) }

    /// Writes this destination as an RFC 1928 address. IPv4-mapped IPv6 goes out as IPv4, as Go
    /// unwraps it. Throws when a domain does not fit its length byte; then nothing is written.
    package func writeSOCKS5(to buffer: inout ByteBuffer) throws(SOCKSError) {
        do { try AddressSerializer.socks.write(self, to: &buffer) } catch { throw SOCKSError(error) }
    }
}

extension SOCKSError {
    /// The SOCKS wording of an address field error.
    init(_ error: AddressSerializerError) {
        switch error {
        case .badFamily(let type): self = .badAddressType(type)
        case .emptyDomain: self = .emptyDomain
        case .domainTooLong(let length): self = .fieldTooLong(.domain, length: length)
        }
    }
}
