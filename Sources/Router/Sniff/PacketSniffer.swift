// Packet sniffers: read the protocol (and for QUIC the SNI and client) from a UDP flow's first
// datagrams, as Go 1.12's PeekPacket does with its default list: dns, quic, stun, bittorrent (uTP,
// then the UDP tracker), dtls.

/// The packet sniffers sing-box 1.12 names, in Go's default order.
package enum PacketSniffer: String, CaseIterable, Sendable {
    case dns, quic, stun, bittorrent, dtls

    /// The sniffers a `sniff` action names (all packet sniffers when it names none). Stream-only
    /// names (tls, http, …) select nothing on a UDP flow.
    package static func selected(by names: [String]) -> [PacketSniffer] {
        names.isEmpty ? allCases : names.compactMap(PacketSniffer.init(rawValue:))
    }

    /// Runs this sniffer over one datagram. `state` carries QUIC CRYPTO fragments between the
    /// Initial packets of one ClientHello (Chrome splits it over two).
    package func sniff(_ packet: [UInt8], state: inout PacketSniffState) -> SniffOutcome {
        let bytes = packet[...]
        switch self {
        case .dns: return DNSQuerySniffer.sniffPacket(bytes)
        case .quic: return QUICInitialSniffer.sniff(bytes, state: &state)
        case .stun: return STUNSniffer.sniff(bytes)
        case .bittorrent:
            let utp = BitTorrentSniffer.sniffUTP(bytes)
            return utp == .notThisProtocol ? BitTorrentSniffer.sniffUDPTracker(bytes) : utp
        case .dtls: return DTLSSniffer.sniff(bytes)
        }
    }

    /// Runs `sniffers` over the next datagram of a flow: the first found wins. `needMore` (only
    /// QUIC asks) means: feed the next datagram, and run only QUIC on it, as Go does.
    package static func run(_ sniffers: [PacketSniffer], over packet: [UInt8], state: inout PacketSniffState) -> SniffOutcome {
        if state.quicNeedsMore { return PacketSniffer.quic.sniff(packet, state: &state) }
        for sniffer in sniffers {
            let outcome = sniffer.sniff(packet, state: &state)
            if outcome != .notThisProtocol { return outcome }
        }
        return .notThisProtocol
    }
}

/// What packet sniffing keeps between datagrams of one flow.
package struct PacketSniffState: Sendable {
    /// CRYPTO frames of a ClientHello not complete yet (offset, bytes).
    var cryptoFragments: [(offset: Int, bytes: [UInt8])] = []
    /// The last QUIC packet asked for more.
    package var quicNeedsMore = false
    /// A fresh state for a new flow.
    package init() {}
}

/// STUN (RFC 5389 §6): magic cookie 0x2112A442 at offset 4 and a message no shorter than its header
/// says.
enum STUNSniffer {
    static func sniff(_ p: ArraySlice<UInt8>) -> SniffOutcome {
        var reader = ByteReader(p)
        guard p.count >= 20, reader.skip(2), let length = reader.u16(), let cookie = reader.u32() else { return .notThisProtocol }
        guard cookie == 0x2112_A442, p.count >= 20 + Int(length) else { return .notThisProtocol }
        return .found(protocol: "stun", domain: nil)
    }
}

/// DTLS (RFC 6347 §4.1): a 13-byte record header with content type 20–23 or 25 and version
/// 0xFEFF (1.0) or 0xFEFD (1.2).
enum DTLSSniffer {
    static func sniff(_ p: ArraySlice<UInt8>) -> SniffOutcome {
        guard p.count >= 13 else { return .notThisProtocol }
        let s = p.startIndex
        guard [20, 21, 22, 23, 25].contains(p[s]), p[s + 1] == 0xFE, p[s + 2] == 0xFF || p[s + 2] == 0xFD else {
            return .notThisProtocol
        }
        return .found(protocol: "dtls", domain: nil)
    }
}
