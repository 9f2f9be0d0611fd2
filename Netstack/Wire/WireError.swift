/// Why bytes could not be read as a packet. Thrown on the hot path: no strings, no boxing, only numbers.
///
/// Every parser of untrusted bytes in the netstack throws this (typed throws); callers drop and count.
public enum WireError: Error, Equatable, Sendable {
    /// Fewer bytes than the layer needs: `need` bytes were required, `have` were there.
    case truncated(Layer, need: Int, have: Int)
    /// A header length field that is below the minimum or beyond the bytes present.
    case badHeaderLength(Layer, Int)
    /// A total/payload length field that disagrees with the bytes present.
    case badLength(Layer, Int)
    /// The IP version nibble is not the one the view reads.
    case badVersion(Int)
    /// A checksum that does not verify.
    case badChecksum(Layer)
    /// A value the layer does not handle (an unknown GSO type, a chain of too many IPv6 extension headers).
    case unsupported(Layer, Int)

    /// The protocol layer an error belongs to.
    public enum Layer: Sendable, Equatable {
        case virtioNet, ipv4, ipv6, ipv6Extension, tcp, udp, icmpv4, icmpv6
    }
}
