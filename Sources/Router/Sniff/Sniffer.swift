// Stream sniffers: read the protocol and domain from a flow's first bytes (sing-box `sniff`).
//
// Each sniffer looks at the bytes seen so far and answers found / not this protocol / need more.
// Parsing is over untrusted bytes: every length is checked before use, nothing traps.

/// What a sniffer made of the first bytes.
package enum SniffOutcome: Equatable, Sendable {
    /// The protocol, and the domain when the bytes carry one (TLS SNI, HTTP Host).
    case found(protocol: String, domain: String?)
    /// These bytes are not this protocol.
    case notThisProtocol
    /// A prefix of this protocol: more bytes might decide.
    case needMore
}

/// The stream sniffers sing-box 1.12 names (`tls`, `http`); others are not implemented here.
package enum StreamSniffer: String, CaseIterable, Sendable {
    case tls, http

    /// Runs this sniffer over `bytes`.
    package func sniff(_ bytes: [UInt8]) -> SniffOutcome {
        switch self {
        case .tls: TLSClientHelloSniffer.sniff(bytes)
        case .http: HTTPHostSniffer.sniff(bytes)
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
            switch sniffer.sniff(bytes) {
            case .found(let name, let domain): return .found(protocol: name, domain: domain)
            case .needMore: mayNeedMore = true
            case .notThisProtocol: continue
            }
        }
        return mayNeedMore ? .needMore : .notThisProtocol
    }
}

/// TLS ClientHello → SNI (RFC 8446 §4.1.2, RFC 6066 §3).
enum TLSClientHelloSniffer {
    static func sniff(_ b: [UInt8]) -> SniffOutcome {
        // Record: content type 22 (handshake), legacy version 3.x, 2-byte length.
        guard b.count >= 1 else { return .needMore }
        guard b[0] == 0x16 else { return .notThisProtocol }
        guard b.count >= 5 else { return .needMore }
        guard b[1] == 3 else { return .notThisProtocol }
        let recordLength = Int(b[3]) << 8 | Int(b[4])
        guard b.count >= 9 else { return .needMore }
        // Handshake: type 1 (ClientHello), 3-byte length.
        guard b[5] == 1 else { return .notThisProtocol }
        let helloLength = Int(b[6]) << 16 | Int(b[7]) << 8 | Int(b[8])
        // A ClientHello may span records; we read it from the first record's bytes onward.
        let end = 9 + helloLength
        guard recordLength >= 4 else { return .notThisProtocol }
        guard b.count >= end else { return .needMore }
        var i = 9 + 2 + 32                                   // client_version, random
        guard i < end else { return .notThisProtocol }
        i += 1 + Int(b[i])                                    // session id
        guard i + 2 <= end else { return .notThisProtocol }
        i += 2 + (Int(b[i]) << 8 | Int(b[i + 1]))            // cipher suites
        guard i + 1 <= end else { return .notThisProtocol }
        i += 1 + Int(b[i])                                    // compression methods
        guard i + 2 <= end else { return .found(protocol: "tls", domain: nil) }  // no extensions
        let extensionsEnd = min(end, i + 2 + (Int(b[i]) << 8 | Int(b[i + 1])))
        i += 2
        while i + 4 <= extensionsEnd {
            let type = Int(b[i]) << 8 | Int(b[i + 1])
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
            let body = i + 4
            guard body + length <= extensionsEnd else { return .notThisProtocol }
            if type == 0 {  // server_name
                var j = body + 2                            // server_name_list length
                while j + 3 <= body + length {
                    let nameType = b[j]
                    let nameLength = Int(b[j + 1]) << 8 | Int(b[j + 2])
                    let start = j + 3
                    guard start + nameLength <= body + length else { return .notThisProtocol }
                    if nameType == 0 {
                        let name = String(decoding: b[start..<(start + nameLength)], as: UTF8.self)
                        return .found(protocol: "tls", domain: isDomainName(name) ? name.lowercased() : nil)
                    }
                    j = start + nameLength
                }
            }
            i = body + length
        }
        return .found(protocol: "tls", domain: nil)
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
