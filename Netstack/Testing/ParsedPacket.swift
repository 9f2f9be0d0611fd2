package import NetstackWire

/// A packet taken apart for assertions in tests: addresses, protocol, ports, flags, payload, and
/// whether every checksum verifies. Not for the data path (it copies).
package struct ParsedPacket: CustomStringConvertible {
    /// IP source.
    package var source: IPAddress
    /// IP destination.
    package var destination: IPAddress
    /// Upper-layer protocol (after IPv6 extension headers).
    package var proto: UInt8
    /// TTL or hop limit.
    package var ttl: UInt8
    /// IPv4 fragment fields (offset in bytes), or the IPv6 fragment header's.
    package var isFragment: Bool
    package var dontFragment: Bool
    package var sourcePort: UInt16 = 0
    package var destinationPort: UInt16 = 0
    package var tcpFlags: UInt8 = 0
    package var sequence: UInt32 = 0
    package var acknowledgment: UInt32 = 0
    package var window: UInt16 = 0
    package var icmpType: UInt8 = 0
    package var icmpCode: UInt8 = 0
    package var icmpRest: UInt32 = 0
    /// Transport payload (UDP/TCP data, ICMP body).
    package var payload: [UInt8] = []
    /// IP header checksum (v4) and transport checksum both verify.
    package var checksumsValid: Bool
    /// The whole packet.
    package var bytes: [UInt8]

    /// Parses `buffer`'s readable bytes; nil when they are not a packet this type understands.
    package init?(_ buffer: PacketBuffer) {
        self.init(Array(buffer.readableBytesView))
    }

    /// Parses `bytes` (one IP packet); nil when they are not one.
    package init?(_ bytes: [UInt8]) {
        self.bytes = bytes
        guard let first = bytes.first else { return nil }
        var transportOffset: Int
        var end: Int
        var ipValid = true
        if first >> 4 == 4 {
            guard let ip = try? IPv4HeaderView(validating: bytes.span.bytes) else { return nil }
            source = .v4(ip.source); destination = .v4(ip.destination); proto = ip.protocolNumber
            ttl = ip.timeToLive; isFragment = ip.isFragment; dontFragment = ip.dontFragment
            transportOffset = ip.headerLength; end = ip.totalLength
            ipValid = ip.isChecksumValid
        } else {
            guard let ip = try? IPv6HeaderView(validating: bytes.span.bytes) else { return nil }
            source = .v6(ip.source); destination = .v6(ip.destination); proto = ip.upperLayerProtocol
            ttl = ip.hopLimit; isFragment = ip.fragment != nil; dontFragment = false
            transportOffset = ip.upperLayerOffset; end = ip.totalLength
        }
        let t = Array(bytes[transportOffset..<end])
        checksumsValid = ipValid
        guard !isFragment else {
            payload = t
            return
        }
        let pseudo = Checksum.pseudoHeaderSum(source: source, destination: destination, protocol: proto, length: t.count)
        func be16(_ o: Int) -> UInt16 { UInt16(t[o]) << 8 | UInt16(t[o + 1]) }
        func be32(_ o: Int) -> UInt32 { UInt32(be16(o)) << 16 | UInt32(be16(o + 2)) }
        var c = Checksum(sum: proto == IPProtocol.icmp ? 0 : pseudo)
        t.withUnsafeBytes { c.add(bytes: $0) }
        checksumsValid = ipValid && c.sum == 0xffff
        switch proto {
        case IPProtocol.udp:
            guard t.count >= 8 else { return nil }
            sourcePort = be16(0); destinationPort = be16(2)
            payload = Array(t[8...])
        case IPProtocol.tcp:
            guard t.count >= 20 else { return nil }
            sourcePort = be16(0); destinationPort = be16(2)
            sequence = be32(4); acknowledgment = be32(8); tcpFlags = t[13]; window = be16(14)
            let headerLength = Int(t[12] >> 4) * 4
            guard headerLength <= t.count else { return nil }
            payload = Array(t[headerLength...])
        case IPProtocol.icmp, IPProtocol.icmpv6:
            guard t.count >= 8 else { return nil }
            icmpType = t[0]; icmpCode = t[1]; icmpRest = be32(4)
            payload = Array(t[8...])
        default:
            payload = t
        }
    }

    package var description: String {
        "\(source):\(sourcePort) -> \(destination):\(destinationPort) proto \(proto) flags \(tcpFlags) len \(payload.count)"
    }
}
