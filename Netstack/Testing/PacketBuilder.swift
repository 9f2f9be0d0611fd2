package import NetstackWire
package import Netstack

/// Builds whole IP packets with correct checksums, the way a client host would send them.
package enum PacketBuilder {
    /// A buffer with `Stack.headroom` in front and `bytes` as its readable bytes.
    package static func buffer(_ bytes: [UInt8]) -> PacketBuffer {
        var buffer = PacketBuffer(capacity: Stack.headroom + bytes.count)
        buffer.moveWriterIndex(forwardBy: Stack.headroom)
        buffer.moveReaderIndex(forwardBy: Stack.headroom)
        buffer.writeBytes(bytes)
        return buffer
    }

    /// An IP packet around `transport` (whose checksum is already right). IPv4 header fields can be tuned.
    package static func ip(source: IPAddress, destination: IPAddress, proto: UInt8, transport: [UInt8],
                           ttl: UInt8 = 64, identification: UInt16 = 0x1234, dontFragment: Bool = false) -> [UInt8] {
        switch (source, destination) {
        case let (.v4(s), .v4(d)):
            var bytes = [UInt8](repeating: 0, count: 20) + transport
            var header = IPv4Header(source: s, destination: d, protocolNumber: proto, totalLength: bytes.count)
            header.timeToLive = ttl
            header.identification = identification
            header.dontFragment = dontFragment
            bytes.withUnsafeMutableBytes { header.write(to: $0) }
            return bytes
        case let (.v6(s), .v6(d)):
            var bytes = [UInt8](repeating: 0, count: 40) + transport
            var header = IPv6Header(source: s, destination: d, nextHeader: proto, payloadLength: transport.count)
            header.hopLimit = ttl
            bytes.withUnsafeMutableBytes { header.write(to: $0) }
            return bytes
        default:
            preconditionFailure("mixed families")
        }
    }

    /// A UDP datagram in an IP packet.
    package static func udp(from source: Endpoint, to destination: Endpoint, payload: [UInt8]) -> [UInt8] {
        var transport = [UInt8](repeating: 0, count: 8) + payload
        let pseudo = Checksum.pseudoHeaderSum(source: source.address, destination: destination.address,
                                              protocol: IPProtocol.udp, length: transport.count)
        transport.withUnsafeMutableBytes {
            UDPHeader(sourcePort: source.port, destinationPort: destination.port, length: $0.count).write(to: $0, pseudoHeaderSum: pseudo)
        }
        return ip(source: source.address, destination: destination.address, proto: IPProtocol.udp, transport: transport)
    }

    /// TCP flag bits.
    package static let fin: UInt8 = 0x01, syn: UInt8 = 0x02, rst: UInt8 = 0x04, psh: UInt8 = 0x08, ack: UInt8 = 0x10

    /// A TCP segment in an IP packet; `options` must be a multiple of 4 bytes.
    package static func tcp(from source: Endpoint, to destination: Endpoint, sequence: UInt32, acknowledgment: UInt32 = 0,
                            flags: UInt8, window: UInt16 = 65535, options: [UInt8] = [], payload: [UInt8] = []) -> [UInt8] {
        precondition(options.count % 4 == 0)
        let headerLength = 20 + options.count
        var t: [UInt8] = []
        t += [UInt8(source.port >> 8), UInt8(source.port & 0xff), UInt8(destination.port >> 8), UInt8(destination.port & 0xff)]
        t += withUnsafeBytes(of: sequence.bigEndian) { Array($0) }
        t += withUnsafeBytes(of: acknowledgment.bigEndian) { Array($0) }
        t += [UInt8(headerLength / 4) << 4, flags, UInt8(window >> 8), UInt8(window & 0xff), 0, 0, 0, 0]
        t += options + payload
        var c = Checksum(sum: Checksum.pseudoHeaderSum(source: source.address, destination: destination.address,
                                                       protocol: IPProtocol.tcp, length: t.count))
        t.withUnsafeBytes { c.add(bytes: $0) }
        let sum = c.value
        t[16] = UInt8(sum >> 8); t[17] = UInt8(sum & 0xff)
        return ip(source: source.address, destination: destination.address, proto: IPProtocol.tcp, transport: t, dontFragment: true)
    }

    /// An ICMP (v4) or ICMPv6 echo request.
    package static func echoRequest(from source: IPAddress, to destination: IPAddress, identifier: UInt16, sequence: UInt16,
                                    payload: [UInt8]) -> [UInt8] {
        let isIPv4 = source.isIPv4
        var t = [UInt8](repeating: 0, count: 8) + payload
        let pseudo = isIPv4 ? 0 : Checksum.pseudoHeaderSum(source: source, destination: destination, protocol: IPProtocol.icmpv6, length: t.count)
        t.withUnsafeMutableBytes {
            ICMPHeader.echo(type: isIPv4 ? ICMPv4Type.echoRequest : ICMPv6Type.echoRequest, identifier: identifier, sequenceNumber: sequence)
                .write(to: $0, pseudoHeaderSum: pseudo)
        }
        return ip(source: source, destination: destination, proto: isIPv4 ? IPProtocol.icmp : IPProtocol.icmpv6, transport: t)
    }

    /// Cuts an unfragmented IP packet into fragments carrying at most `dataPerFragment` bytes each
    /// (rounded down to 8), as a host would: IPv4 by header flags, IPv6 with a fragment header.
    package static func fragment(_ packet: [UInt8], dataPerFragment: Int, identification: UInt32 = 0x4242) -> [[UInt8]] {
        let step = dataPerFragment & ~7
        precondition(step >= 8)
        if packet[0] >> 4 == 4 {
            let headerLength = Int(packet[0] & 0x0f) * 4
            let data = Array(packet[headerLength...])
            var out: [[UInt8]] = []
            var offset = 0
            while offset < data.count {
                let size = min(step, data.count - offset)
                var piece = Array(packet[0..<headerLength]) + data[offset..<(offset + size)]
                let total = piece.count
                piece[2] = UInt8(total >> 8); piece[3] = UInt8(total & 0xff)
                piece[4] = UInt8((identification >> 8) & 0xff); piece[5] = UInt8(identification & 0xff)
                let field = UInt16(offset / 8) | (offset + size < data.count ? 0x2000 : 0)
                piece[6] = UInt8(field >> 8); piece[7] = UInt8(field & 0xff)
                piece[10] = 0; piece[11] = 0
                let sum = piece[0..<headerLength].withUnsafeBytes { Checksum.compute($0) }
                piece[10] = UInt8(sum >> 8); piece[11] = UInt8(sum & 0xff)
                out.append(piece)
                offset += size
            }
            return out
        }
        // IPv6 without extension headers: the fragment header goes right after the fixed header.
        let next = packet[6]
        let data = Array(packet[40...])
        var out: [[UInt8]] = []
        var offset = 0
        while offset < data.count {
            let size = min(step, data.count - offset)
            var piece = Array(packet[0..<40])
            let payload = 8 + size
            piece[4] = UInt8(payload >> 8); piece[5] = UInt8(payload & 0xff)
            piece[6] = IPProtocol.ipv6Fragment
            var fragmentHeader = [UInt8](repeating: 0, count: 8)
            fragmentHeader.withUnsafeMutableBytes {
                IPv6FragmentHeader(nextHeader: next, offset: offset, moreFragments: offset + size < data.count,
                                   identification: identification, headerOffset: 40).write(to: $0)
            }
            piece += fragmentHeader + data[offset..<(offset + size)]
            out.append(piece)
            offset += size
        }
        return out
    }
}
