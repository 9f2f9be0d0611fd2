/// Why bytes could not be read as a DNS message, or a message could not be written.
/// Thrown by the codec with typed throws; carries numbers, never strings (STYLE §4).
package enum DNSWireError: Error, Equatable, Sendable {
    /// The message ended at `offset` when `need` more octets were required.
    case truncated(offset: Int, need: Int)
    /// A label length octet above 63 (RFC 1035 §2.3.4).
    case labelTooLong(Int)
    /// A name longer than 255 octets in wire form.
    case nameTooLong(Int)
    /// A label type other than a length (00) or a pointer (11) (RFC 6891 §5 retired 01).
    case badLabelType(offset: Int)
    /// A compression pointer at `offset` that does not point strictly backwards, or outside the message.
    case badPointer(offset: Int, target: Int)
    /// An empty label inside a name (`a..b`).
    case emptyLabel
    /// A malformed presentation escape in a name's text.
    case badEscape
    /// RDATA of `type` whose content does not fit its declared length or its format.
    case badRData(type: UInt16, offset: Int)
    /// A record set count that promises more records than octets could hold.
    case badCount(Int)
    /// Octets after the last record (only when strict parsing is asked for).
    case trailingBytes(Int)
    /// On emit: a value too large for its wire field (a TXT string over 255, RDATA over 65535, …).
    case valueTooLarge(Int)
    /// On emit: an A record holding an IPv6 address or an AAAA record holding an IPv4 one.
    case addressFamilyMismatch
}
