/// A UDP endpoint (IPv4 or IPv6 address and port) as a small value: where a peer was last heard from, where
/// its datagrams go, and the input of the cookie MAC. No sockets here; the owner converts to its socket type.
package struct WireGuardEndpoint: Hashable, Sendable, CustomStringConvertible {
    /// IPv4 addresses use the first 4 bytes; the rest are zero.
    package var address: (UInt64, UInt64)
    /// Whether `address` holds 16 IPv6 bytes (else 4 IPv4 bytes).
    package var isIPv6: Bool
    /// The UDP port.
    package var port: UInt16

    /// An IPv4 endpoint.
    package init(ipv4 bytes: (UInt8, UInt8, UInt8, UInt8), port: UInt16) {
        var storage: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &storage) { raw in
            raw[0] = bytes.0; raw[1] = bytes.1; raw[2] = bytes.2; raw[3] = bytes.3
        }
        address = storage
        isIPv6 = false
        self.port = port
    }

    /// An endpoint from 4 (IPv4) or 16 (IPv6) address bytes; nil for another count.
    package init?(addressBytes: some Collection<UInt8>, port: UInt16) {
        guard addressBytes.count == 4 || addressBytes.count == 16 else { return nil }
        var storage: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &storage) { raw in
            for (index, byte) in addressBytes.enumerated() { raw[index] = byte }
        }
        address = storage
        isIPv6 = addressBytes.count == 16
        self.port = port
    }

    /// Parses `1.2.3.4:51820` or `[::1]:51820` (numeric only; names are resolved by the owner).
    package init?(parsing text: String) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"),
                  text[text.index(after: close)...].hasPrefix(":"),
                  let port = UInt16(text[text.index(close, offsetBy: 2)...]),
                  let bytes = IPAddressText.parseIPv6(String(text[text.index(after: text.startIndex)..<close]))
            else { return nil }
            self.init(addressBytes: bytes, port: port)
        } else {
            guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]),
                  let bytes = IPAddressText.parseIPv4(String(text[..<colon]))
            else { return nil }
            self.init(addressBytes: bytes, port: port)
        }
    }

    /// The address bytes: 4 for IPv4, 16 for IPv6.
    package var addressBytes: [UInt8] {
        withUnsafeBytes(of: address) { Array($0.prefix(isIPv6 ? 16 : 4)) }
    }

    /// Same family, address and port.
    package static func == (a: Self, b: Self) -> Bool {
        a.address == b.address && a.isIPv6 == b.isIPv6 && a.port == b.port
    }

    /// Hashes family, address and port.
    package func hash(into hasher: inout Hasher) {
        hasher.combine(address.0)
        hasher.combine(address.1)
        hasher.combine(isIPv6)
        hasher.combine(port)
    }

    /// Calls `body` with the bytes the cookie MAC covers: the address bytes then the port, big-endian.
    func withCookieInput<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        var buffer: (UInt64, UInt64, UInt64) = (address.0, address.1, 0)
        let count = isIPv6 ? 16 : 4
        return withUnsafeMutableBytes(of: &buffer) { bytes in
            bytes.storeBytes(of: port.bigEndian, toByteOffset: count, as: UInt16.self)
            return body(UnsafeRawBufferPointer(rebasing: bytes[0..<count + 2]))
        }
    }

    /// `1.2.3.4:5` or `[2001:db8::1]:5`.
    package var description: String {
        isIPv6 ? "[\(IPAddressText.format(addressBytes))]:\(port)" : "\(IPAddressText.format(addressBytes)):\(port)"
    }
}

/// Numeric IP address text, both ways (no Foundation, no resolver).
package enum IPAddressText {
    /// Dotted-quad text to 4 bytes; nil when malformed.
    package static func parseIPv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let value = UInt8(part) else { return nil }
            out.append(value)
        }
        return out
    }

    /// RFC 4291 text (with `::` and an IPv4 tail; a zone is ignored) to 16 bytes; nil when malformed.
    package static func parseIPv6(_ text: String) -> [UInt8]? {
        var text = Substring(text)
        if let zone = text.firstIndex(of: "%") { text = text[..<zone] }
        // An embedded IPv4 tail (::ffff:1.2.3.4).
        var tail: [UInt8] = []
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard let v4 = parseIPv4(String(text[text.index(after: lastColon)...])) else { return nil }
            tail = v4
            text = text[...lastColon]
            if text.hasSuffix(":") && !text.hasSuffix("::") { text = text.dropLast() }
        }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(group.count), let value = UInt16(group, radix: 16) else { return nil }
                out.append(value)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        let rest = halves.count == 2 ? groups(halves[1]) : []
        guard let rest else { return nil }
        let tailGroups = tail.count / 2
        let total = head.count + rest.count + tailGroups
        if halves.count == 1 { guard total == 8 else { return nil } } else { guard total < 8 else { return nil } }
        var words = head + Array(repeating: 0, count: 8 - total) + rest
        if !tail.isEmpty {
            words.append(UInt16(tail[0]) << 8 | UInt16(tail[1]))
            words.append(UInt16(tail[2]) << 8 | UInt16(tail[3]))
        }
        return words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    /// 4 or 16 bytes as text (RFC 5952 for IPv6).
    package static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        guard bytes.count == 16 else { return "?" }
        var words: [UInt16] = []
        for index in stride(from: 0, to: 16, by: 2) { words.append(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])) }
        // RFC 5952: compress the longest run (length ≥ 2) of zero groups.
        var bestStart = -1, bestLength = 0, index = 0
        while index < 8 {
            if words[index] == 0 {
                var end = index
                while end < 8 && words[end] == 0 { end += 1 }
                if end - index > bestLength && end - index >= 2 { bestStart = index; bestLength = end - index }
                index = end
            } else {
                index += 1
            }
        }
        func hex(_ range: Range<Int>) -> String { words[range].map { String($0, radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

extension Substring {
    fileprivate func components(separatedBy separator: String) -> [Substring] {
        var parts: [Substring] = []
        var rest = self
        while let range = rest.range(of: separator) {
            parts.append(rest[..<range.lowerBound])
            rest = rest[range.upperBound...]
        }
        parts.append(rest)
        return parts
    }

    fileprivate func range(of needle: String) -> Range<Substring.Index>? {
        let needle = Array(needle)
        var index = startIndex
        while index < endIndex {
            var probe = index
            var matched = 0
            while matched < needle.count, probe < endIndex, self[probe] == needle[matched] {
                probe = self.index(after: probe)
                matched += 1
            }
            if matched == needle.count { return index..<probe }
            index = self.index(after: index)
        }
        return nil
    }
}
