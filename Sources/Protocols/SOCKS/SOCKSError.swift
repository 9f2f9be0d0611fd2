/// Why SOCKS bytes could not be read, or a SOCKS server refused us. Parsers throw it from untrusted
/// input, so it carries numbers, never strings.
package enum SOCKSError: Error, Equatable, Sendable {
    /// A field that must name a version held something else (request, reply or RFC 1929 version).
    case badVersion(UInt8)
    /// An address type other than 1 (IPv4), 3 (domain) or 4 (IPv6) (RFC 1928 §5).
    case badAddressType(UInt8)
    /// A domain of length zero.
    case emptyDomain
    /// A string longer than the 255 bytes its length byte or the SOCKS4 memo allows.
    case fieldTooLong(Field, length: Int)
    /// A UDP datagram with a non-zero FRAG field: RFC 1928 §7 says to drop what we do not reassemble.
    case fragmented(UInt8)
    /// A datagram shorter than its header says.
    case truncated(need: Int, have: Int)
    /// The server accepted none of the methods we offered (method X'FF').
    case noAcceptableMethod
    /// The server chose a method we did not offer.
    case unexpectedMethod(UInt8)
    /// RFC 1929 sub-negotiation status other than success.
    case authenticationFailed(status: UInt8)
    /// The server answered a request with this reply code (SOCKS5 `REP`, SOCKS4 `CD`).
    case rejected(code: UInt8)
    /// A request for a network the peer cannot carry (UDP over SOCKS4).
    case unsupportedNetwork

    /// Which length-limited field overflowed.
    package enum Field: Sendable, Equatable {
        case userID, domain, username, password
    }
}

extension SOCKSError: CustomStringConvertible {
    /// Worded as sing's socks client words the same failures where it has words for them.
    package var description: String {
        switch self {
        case .badVersion(let v): return "socks: unexpected version \(v)"
        case .badAddressType(let t): return "socks5: unknown address type \(t)"
        case .emptyDomain: return "socks: empty domain"
        case .fieldTooLong(let field, let length): return "socks: \(field) too long (\(length) bytes)"
        case .fragmented(let frag): return "socks5: fragmented datagram (FRAG \(frag))"
        case .truncated(let need, let have): return "socks5: invalid packet (need \(need) bytes, have \(have))"
        case .noAcceptableMethod: return "socks5: no acceptable authentication method"
        case .unexpectedMethod(let m): return "socks5: unsupported auth method: \(m)"
        case .authenticationFailed: return "socks5: incorrect user name or password"
        case .rejected(let code) where code >= 90: return "socks4: request rejected, code= \(code)"
        case .rejected(let code): return "socks5: request rejected, code=\(code)"
        case .unsupportedNetwork: return "socks4: udp unsupported"
        }
    }
}
