// Sniffers: read the protocol and domain from a flow's first bytes (sing-box `sniff`).
//
// Each sniffer looks at the bytes seen so far and answers found / not this protocol / need more.
// Parsing is over untrusted bytes: every length is checked before use, nothing traps. Stream
// sniffers (this file, StreamSniffers.swift) see a TCP flow's first bytes; packet sniffers
// (PacketSniffer.swift, QUICInitialSniffer.swift) see a UDP flow's first datagrams. Protocol and
// client strings are Go 1.12's constants (`C.ProtocolTLS` … `C.ClientChromium`).

/// What a sniffer made of the first bytes.
package enum SniffOutcome: Equatable, Sendable {
    /// The protocol, the domain when the bytes carry one (TLS SNI, HTTP Host, QUIC SNI), and the
    /// client when the sniffer names one (QUIC: `chromium`, `safari`, `firefox`, `quic-go`,
    /// `unknown`; SSH: the software version after `SSH-2.0-`).
    case found(protocol: String, domain: String?, client: String? = nil)
    /// These bytes are not this protocol.
    case notThisProtocol
    /// A prefix of this protocol: more bytes might decide.
    case needMore
}

/// The stream sniffers sing-box 1.12 names, in Go's default order (`sniff` with no list runs them
/// all, route.go's list): `tls`, `http`, `dns` (over TCP), `bittorrent`, `ssh`, `rdp`.
package enum StreamSniffer: String, CaseIterable, Sendable {
    case tls, http, dns, bittorrent, ssh, rdp

    /// Runs this sniffer over `bytes`.
    package func sniff(_ bytes: [UInt8]) -> SniffOutcome {
        switch self {
        case .tls: TLSClientHelloSniffer.sniff(bytes)
        case .http: HTTPHostSniffer.sniff(bytes)
        case .dns: DNSQuerySniffer.sniffStream(bytes)
        case .ssh: SSHSniffer.sniff(bytes)
        case .bittorrent: BitTorrentSniffer.sniffStream(bytes)
        case .rdp: RDPSniffer.sniff(bytes)
        }
    }

    /// The sniffers a `sniff` action names (all stream sniffers when it names none). Names for
    /// packet protocols (quic, stun, …) select nothing on a TCP flow.
    package static func selected(by names: [String]) -> [StreamSniffer] {
        names.isEmpty ? allCases : names.compactMap(StreamSniffer.init(rawValue:))
    }

    /// Runs `sniffers` in order: the first found wins; `needMore` if any still might match.
    package static func run(_ sniffers: [StreamSniffer], over bytes: [UInt8]) -> SniffOutcome {
        var mayNeedMore = false
        for sniffer in sniffers {
            let outcome = sniffer.sniff(bytes)
            switch outcome {
            case .found: return outcome
            case .needMore: mayNeedMore = true
            case .notThisProtocol: continue
            }
        }
        return mayNeedMore ? .needMore : .notThisProtocol
    }
}

/// TLS ClientHello → SNI (RFC 8446 §4.1.2, RFC 6066 §3). The ClientHello may arrive split over
/// TCP segments and over several handshake records (RFC 8446 §5.1: a handshake message may be
/// fragmented across records, as post-quantum key shares make Chrome's exceed one segment); the
/// records' payloads are joined before parsing, as Go's crypto/tls reader does.
enum TLSClientHelloSniffer {
    static func sniff(_ b: [UInt8]) -> SniffOutcome {
        // Record: content type 22 (handshake), legacy version 3.x, 2-byte length.
        guard b.count >= 1 else { return .needMore }
        guard b[0] == 0x16 else { return .notThisProtocol }
        guard b.count >= 3 else { return .needMore }
        guard b[1] == 3 else { return .notThisProtocol }
        var handshake: [UInt8] = []
        var offset = 0
        var needed = Int.max      // 4 + ClientHello length once the handshake header is in
        while handshake.count < needed {
            guard offset + 5 <= b.count else { return .needMore }
            guard b[offset] == 0x16, b[offset + 1] == 3 else { return .notThisProtocol }
            let recordLength = Int(b[offset + 3]) << 8 | Int(b[offset + 4])
            guard recordLength > 0 else { return .notThisProtocol }
            let available = min(recordLength, b.count - offset - 5)
            handshake.append(contentsOf: b[(offset + 5)..<(offset + 5 + available)])
            if needed == .max, handshake.count >= 4 {
                // Handshake: type 1 (ClientHello), 3-byte length.
                guard handshake[0] == 1 else { return .notThisProtocol }
                needed = 4 + (Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3]))
            } else if needed == .max, !handshake.isEmpty, handshake[0] != 1 {
                return .notThisProtocol
            }
            if available < recordLength { break }
            offset += 5 + recordLength
        }
        guard handshake.count >= needed else { return .needMore }
        guard let hello = ClientHello(handshake: handshake[..<needed]) else { return .notThisProtocol }
        return .found(protocol: "tls", domain: hello.serverName)
    }
}

/// HTTP/1.x request → Host header.
enum HTTPHostSniffer {
    static let methods: [String] = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "PRI"]

    static func sniff(_ b: [UInt8]) -> SniffOutcome {
        // The method token must be a known one followed by a space.
        let prefix = String(decoding: b.prefix(8), as: UTF8.self)
        let method = methods.first { prefix.hasPrefix($0 + " ") }
        guard let method else {
            let partial = methods.contains { $0.hasPrefix(prefix) || (prefix.hasPrefix($0) && prefix.count == $0.count) }
            return partial && b.count < 8 ? .needMore : .notThisProtocol
        }
        guard let headerEnd = find(b, [13, 10, 13, 10]) ?? (b.count > 8192 ? b.count : nil) else { return .needMore }
        let text = String(decoding: b[..<headerEnd], as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { return .notThisProtocol }
        let requestLine = lines.removeFirst()
        guard requestLine.hasSuffix(" HTTP/1.1") || requestLine.hasSuffix(" HTTP/1.0") || method == "PRI" else {
            return .notThisProtocol
        }
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            guard line[..<colon].lowercased() == "host" else { continue }
            var host = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            if host.hasPrefix("[") {
                if let close = host.firstIndex(of: "]") { host = String(host[host.index(after: host.startIndex)..<close]) }
            } else if let portColon = host.lastIndex(of: ":") {
                host = String(host[..<portColon])
            }
            return .found(protocol: "http", domain: host.isEmpty ? nil : host.lowercased())
        }
        return .found(protocol: "http", domain: nil)
    }

    static func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<(start + needle.count)]) == needle { return start }
        }
        return nil
    }
}

/// A plausible DNS name (letters, digits, hyphen, underscore, dots), as sing's `M.IsDomainName`.
func isDomainName(_ name: String) -> Bool {
    guard !name.isEmpty, name.utf8.count <= 253 else { return false }
    return name.utf8.allSatisfy { c in
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x2E || c == 0x5F
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let first = s.first, set.contains(first) { s = s.dropFirst() }
        while let last = s.last, set.contains(last) { s = s.dropLast() }
        return String(s)
    }
}
