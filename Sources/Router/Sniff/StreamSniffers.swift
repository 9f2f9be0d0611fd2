// Stream sniffers beyond TLS and HTTP, each as Go 1.12's common/sniff reads them: DNS over TCP,
// SSH banner, BitTorrent handshake, RDP connection request. Each answers `needMore` only while the
// bytes so far are a prefix of what it accepts.

/// DNS queries: over TCP (2-byte length prefix, RFC 1035 §4.2.2) and UDP. Go reports `dns` with no
/// domain for a query (QR 0) with at least one question and no answer or authority records.
enum DNSQuerySniffer {
    static func sniffStream(_ b: [UInt8]) -> SniffOutcome {
        guard b.count >= 2 else { return .needMore }
        let length = Int(b[0]) << 8 | Int(b[1])
        guard length >= 12 else { return .notThisProtocol }
        let message = b.dropFirst(2).prefix(length)
        // Reject early on what is already visible, as Go's StreamDomainNameQuery does.
        if !headerLooksLikeQuery(message) { return .notThisProtocol }
        guard message.count == length else { return .needMore }
        return sniffPacket(message)
    }

    static func sniffPacket(_ message: ArraySlice<UInt8>) -> SniffOutcome {
        guard message.count >= 12, headerLooksLikeQuery(message) else { return .notThisProtocol }
        var reader = ByteReader(message)
        guard reader.skip(4), let questions = reader.u16(), reader.skip(6) else { return .notThisProtocol }
        for _ in 0..<questions {
            guard skipName(&reader), reader.skip(4) else { return .notThisProtocol }
        }
        return .found(protocol: "dns", domain: nil)
    }

    /// QR clear, QDCOUNT non-zero, ANCOUNT and NSCOUNT zero: checked on the bytes present.
    static func headerLooksLikeQuery(_ m: ArraySlice<UInt8>) -> Bool {
        let s = m.startIndex
        if m.count > 2, m[s + 2] & 0x80 != 0 { return false }
        if m.count > 5, m[s + 4] == 0, m[s + 5] == 0 { return false }
        for i in 6..<10 where m.count > i && m[s + i] != 0 { return false }
        return true
    }

    /// Skips one (possibly compressed) name; false when malformed. A pointer ends the name.
    static func skipName(_ reader: inout ByteReader) -> Bool {
        var total = 0
        while let length = reader.u8() {
            if length == 0 { return true }
            if length & 0xC0 == 0xC0 { return reader.skip(1) }
            guard length & 0xC0 == 0 else { return false }
            total += Int(length) + 1
            guard total <= 255, reader.skip(Int(length)) else { return false }
        }
        return false
    }
}

/// SSH: the client's identification string `SSH-2.0-<software>` (RFC 4253 §4.2). Go reports the
/// software part as the client.
enum SSHSniffer {
    static let prefix = Array("SSH-2.0-".utf8)

    static func sniff(_ b: [UInt8]) -> SniffOutcome {
        guard b.count >= prefix.count else {
            return b.elementsEqual(prefix.prefix(b.count)) ? .needMore : .notThisProtocol
        }
        guard b.starts(with: prefix) else { return .notThisProtocol }
        guard let newline = b.firstIndex(of: 0x0A) else { return b.count > 255 ? .notThisProtocol : .needMore }
        var line = b[prefix.count..<newline]
        if line.last == 0x0D { line = line.dropLast() }
        return .found(protocol: "ssh", domain: nil, client: String(decoding: line, as: UTF8.self))
    }
}

/// BitTorrent: the peer wire handshake `\x13BitTorrent protocol` (BEP 3) on TCP; uTP (BEP 29) and
/// the UDP tracker connect request (BEP 15) on UDP.
enum BitTorrentSniffer {
    static let header = Array("\u{13}BitTorrent protocol".utf8)

    static func sniffStream(_ b: [UInt8]) -> SniffOutcome {
        guard b.count >= header.count else {
            return b.elementsEqual(header.prefix(b.count)) ? .needMore : .notThisProtocol
        }
        return b.starts(with: header) ? .found(protocol: "bittorrent", domain: nil) : .notThisProtocol
    }

    /// uTP: version 1, type ≤ 4 (ST_DATA … ST_SYN), a 20-byte header, and a well-formed extension
    /// chain (types ≤ 4).
    static func sniffUTP(_ p: ArraySlice<UInt8>) -> SniffOutcome {
        guard p.count >= 20 else { return .notThisProtocol }
        let first = p[p.startIndex]
        guard first & 0x0F == 1, first >> 4 <= 4 else { return .notThisProtocol }
        var next = p[p.startIndex + 1]
        var reader = ByteReader(p.dropFirst(20))
        while next != 0 {
            guard let type = reader.u8(), type <= 4, let length = reader.u8(), reader.skip(Int(length)) else {
                return .notThisProtocol
            }
            next = type
        }
        return .found(protocol: "bittorrent", domain: nil)
    }

    /// UDP tracker connect: protocol id 0x41727101980, action 0 (connect).
    static func sniffUDPTracker(_ p: ArraySlice<UInt8>) -> SniffOutcome {
        var reader = ByteReader(p)
        guard p.count >= 16, let high = reader.u32(), let low = reader.u32(), let action = reader.u32() else { return .notThisProtocol }
        return UInt64(high) << 32 | UInt64(low) == 0x417_2710_1980 && action == 0
            ? .found(protocol: "bittorrent", domain: nil) : .notThisProtocol
    }
}

/// RDP: an X.224 Connection Request carrying an RDP Negotiation Request ([MS-RDPBCGR] 2.2.1.1):
/// TPKT version 3, length 19, COTP length 14, type 0xE0, then the 8-byte negotiation request.
enum RDPSniffer {
    static func sniff(_ b: [UInt8]) -> SniffOutcome {
        // Each check applies once its byte is present; a short prefix that passes needs more.
        let checks: [(Int, (UInt8) -> Bool)] = [
            (0, { $0 == 0x03 }), (1, { $0 == 0x00 }), (2, { $0 == 0x00 }), (3, { $0 == 19 }),
            (4, { $0 == 14 }), (5, { $0 == 0xE0 }), (11, { $0 == 0x01 }), (13, { $0 == 8 }),
        ]
        for (index, check) in checks {
            guard index < b.count else { return .needMore }
            guard check(b[index]) else { return .notThisProtocol }
        }
        return .found(protocol: "rdp", domain: nil)
    }
}
