import Adapter

// Presentation text of records, as sing-box logs them: miekg/dns's `RR.String()` passed through
// sing-box's `FormatQuestion` (tabs and newlines to single spaces, leading `;` dropped):
// `example.com. 300 IN A 192.0.2.1`.

extension DNSResourceRecord: CustomStringConvertible {
    package var description: String {
        if type == .opt {
            // miekg prints the OPT record as a pseudo-section; FormatQuestion flattens it to this.
            let edns = DNSEDNS(udpPayloadSize: self.class.rawValue, extendedRcodeHigh: UInt8(truncatingIfNeeded: ttl >> 24),
                               version: UInt8(truncatingIfNeeded: ttl >> 16), flags: UInt16(truncatingIfNeeded: ttl))
            return "OPT PSEUDOSECTION: EDNS: version \(edns.version); flags:\(edns.dnssecOK ? " do" : ""); udp: \(edns.udpPayloadSize)"
        }
        return "\(name) \(ttl) \(self.class) \(type) \(data.presentation)"
    }
}

extension DNSRData {
    /// The RDATA in zone-file form (RFC 1035 §5.1; RFC 3597 `\#` for opaque data; RFC 9460 §2.1 keys).
    package var presentation: String {
        switch self {
        case .a(let address), .aaaa(let address):
            return address.description
        case .name(let name):
            return name.description
        case .mx(let preference, let exchange):
            return "\(preference) \(exchange)"
        case .txt(let strings):
            return strings.map(quoted).joined(separator: " ")
        case .srv(let srv):
            return "\(srv.priority) \(srv.weight) \(srv.port) \(srv.target)"
        case .soa(let soa):
            return "\(soa.mname) \(soa.rname) \(soa.serial) \(soa.refresh) \(soa.retry) \(soa.expire) \(soa.minimum)"
        case .svcb(let svcb):
            var text = "\(svcb.priority) \(svcb.target)"
            for parameter in svcb.parameters { text += " " + parameter.presentation(in: svcb) }
            return text
        case .caa(let caa):
            return "\(caa.flags) \(String(decoding: caa.tag, as: UTF8.self)) \(quoted(caa.value))"
        case .opt(let options):
            return options.map { "\($0.code):\(hex($0.data))" }.joined(separator: " ")
        case .unknown(let bytes):
            return bytes.isEmpty ? "\\# 0" : "\\# \(bytes.count) \(hex(bytes))"
        }
    }
}

extension DNSSVCParameter {
    /// `key="value"` as miekg prints SvcParams (`alpn="h2,h3"`, `port="443"`, `keyNNNNN="…"`).
    func presentation(in svcb: DNSSVCB) -> String {
        let value: String?
        switch key {
        case Self.mandatory:
            value = stride(from: 0, to: self.value.count - 1, by: 2)
                .map { Self.keyName(UInt16(self.value[$0]) << 8 | UInt16(self.value[$0 + 1])) }.joined(separator: ",")
        case Self.alpn:
            value = svcb.alpn.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ",")
        case Self.noDefaultALPN:
            value = nil
        case Self.port:
            value = svcb.port.map(String.init) ?? hex(self.value)
        case Self.ipv4hint:
            value = svcb.ipv4Hints.map(\.description).joined(separator: ",")
        case Self.ipv6hint:
            value = svcb.ipv6Hints.map(\.description).joined(separator: ",")
        case Self.ech:
            value = base64(self.value)
        default:
            value = String(decoding: self.value, as: UTF8.self)
        }
        guard let value else { return Self.keyName(key) }
        return "\(Self.keyName(key))=\"\(value)\""
    }

    static func keyName(_ key: UInt16) -> String {
        switch key {
        case mandatory: "mandatory"
        case alpn: "alpn"
        case noDefaultALPN: "no-default-alpn"
        case port: "port"
        case ipv4hint: "ipv4hint"
        case ech: "ech"
        case ipv6hint: "ipv6hint"
        default: "key\(key)"
        }
    }
}

/// A character-string in quotes, escaping `"` and `\` and writing non-printable octets as `\DDD`.
private func quoted(_ bytes: [UInt8]) -> String {
    var text = "\""
    for byte in bytes {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"):
            text += "\\" + String(UnicodeScalar(byte))
        case 0x20...0x7e:
            text.unicodeScalars.append(UnicodeScalar(byte))
        default:
            let digits = String(byte)
            text += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
        }
    }
    return text + "\""
}

private func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

private func base64(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    var index = 0
    while index < bytes.count {
        let chunk = bytes[index..<min(index + 3, bytes.count)]
        var value: UInt32 = 0
        for (offset, byte) in chunk.enumerated() { value |= UInt32(byte) << UInt32(16 - 8 * offset) }
        for position in 0..<4 {
            if position <= chunk.count {
                out.append(alphabet[Int(value >> UInt32(18 - 6 * position) & 0x3f)])
            } else {
                out.append(UInt8(ascii: "="))
            }
        }
        index += 3
    }
    return String(decoding: out, as: UTF8.self)
}
