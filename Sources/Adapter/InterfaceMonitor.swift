// The engine's view of the host's network interfaces: which links exist, their addresses, and which one
// carries the default route (sing-box's `route.auto_detect_interface`). Appliance/Netlink implements it
// over rtnetlink; engine tests use a fake.

/// An IP address with a prefix length, as the kernel reports it on an interface or a route
/// (`192.0.2.1/24`, `2001:db8::1/64`). `bytes` holds 4 or 16 bytes in network order.
package struct NetworkPrefix: Hashable, Sendable, CustomStringConvertible {
    /// The address, 4 bytes (IPv4) or 16 bytes (IPv6), network order.
    package var bytes: [UInt8]
    /// The prefix length in bits: 0...32 or 0...128.
    package var length: Int

    /// A prefix over `bytes`; `nil` unless there are 4 or 16 bytes and the length fits the family.
    package init?(bytes: [UInt8], length: Int) {
        guard bytes.count == 4 || bytes.count == 16, (0...(bytes.count * 8)).contains(length) else { return nil }
        self.bytes = bytes
        self.length = length
    }

    /// Parses `"10.0.0.1/24"`, `"2001:db8::/32"` or a bare address (full length).
    package init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = NetworkPrefix.parseAddress(String(parts[0])) else { return nil }
        let length: Int
        if parts.count == 2 {
            guard let parsed = Int(parts[1]) else { return nil }
            length = parsed
        } else {
            length = bytes.count * 8
        }
        self.init(bytes: bytes, length: length)
    }

    /// Whether this is an IPv4 prefix.
    package var isIPv4: Bool { bytes.count == 4 }

    /// The same prefix with the host bits cleared (`10.0.0.1/24` → `10.0.0.0/24`).
    package var masked: NetworkPrefix {
        var copy = self
        for index in copy.bytes.indices {
            let bitsBefore = index * 8
            if bitsBefore >= length { copy.bytes[index] = 0 }
            else if bitsBefore + 8 > length { copy.bytes[index] &= UInt8(truncatingIfNeeded: 0xFF << (8 - (length - bitsBefore))) }
        }
        return copy
    }

    /// Whether `address` (4 or 16 bytes) lies inside this prefix.
    package func contains(_ address: [UInt8]) -> Bool {
        guard address.count == bytes.count else { return false }
        let candidate = NetworkPrefix(bytes: address, length: length)
        return candidate?.masked.bytes == masked.bytes
    }

    /// Whether the address is a global unicast address in Go's sense (`netip.Addr.IsGlobalUnicast`):
    /// not unspecified, loopback, multicast, link-local or the IPv4 broadcast address. sing-box fills its
    /// local address sets with these.
    package var isGlobalUnicast: Bool {
        if isIPv4 {
            if bytes == [0, 0, 0, 0] || bytes == [255, 255, 255, 255] { return false }
            if bytes[0] == 127 || bytes[0] >= 224 { return false }
            if bytes[0] == 169 && bytes[1] == 254 { return false }
            return true
        }
        if bytes.allSatisfy({ $0 == 0 }) { return false }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return false }
        if bytes[0] == 0xFF { return false }
        if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return false }
        // IPv4-mapped addresses follow the IPv4 rules.
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return NetworkPrefix(bytes: Array(bytes[12..<16]), length: 32)?.isGlobalUnicast ?? false
        }
        return true
    }

    /// `address/length` in the usual text forms (IPv6 compressed per RFC 5952).
    package var description: String { "\(addressDescription)/\(length)" }

    /// The address alone, without the length.
    package var addressDescription: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [UInt16] = []
        for index in stride(from: 0, to: 16, by: 2) { groups.append(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])) }
        // RFC 5952 §4.2: compress the longest run (of at least two) zero groups, the first one on ties.
        var bestStart = -1, bestLength = 0, runStart = -1
        for index in 0...8 {
            if index < 8 && groups[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                if index - runStart > bestLength && index - runStart >= 2 { bestStart = runStart; bestLength = index - runStart }
                runStart = -1
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        if bestStart < 0 { return hex.joined(separator: ":") }
        let head = hex[0..<bestStart].joined(separator: ":")
        let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
        return head + "::" + tail
    }

    /// Parses a dotted IPv4 or an RFC 4291 IPv6 address (no zone) into network-order bytes.
    package static func parseAddress(_ text: String) -> [UInt8]? {
        if !text.contains(":") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var result: [UInt8] = []
            for part in parts {
                guard !part.isEmpty, part.count <= 3, let value = UInt8(part) else { return nil }
                result.append(value)
            }
            return result
        }
        let halves = text.components(separatedByDoubleColon: ())
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring) -> [UInt8]? {
            if part.isEmpty { return [] }
            var out: [UInt8] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, field) in fields.enumerated() {
                if field.contains("."), index == fields.count - 1 {
                    guard let v4 = parseAddress(String(field)) else { return nil }
                    out += v4
                    continue
                }
                guard (1...4).contains(field.count), let value = UInt16(field, radix: 16) else { return nil }
                out += [UInt8(value >> 8), UInt8(value & 0xFF)]
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }
}

extension String {
    /// Splits at every `::` (IPv6 text form); `"a::b"` → `["a", "b"]`; more than two parts is an error
    /// for the caller to reject.
    fileprivate func components(separatedByDoubleColon _: Void) -> [Substring] {
        var parts: [Substring] = []
        var start = startIndex
        var index = startIndex
        while index < endIndex {
            let next = self.index(after: index)
            if self[index] == ":" && next < endIndex && self[next] == ":" {
                parts.append(self[start..<index])
                start = self.index(after: next)
                index = start
                continue
            }
            index = next
        }
        parts.append(self[start..<endIndex])
        return parts
    }
}

/// One network interface as the monitor last saw it.
package struct NetworkInterface: Hashable, Sendable {
    /// The kernel's interface index (never 0).
    package var index: Int32
    /// The interface name (`eth0`).
    package var name: String
    /// The MTU in bytes.
    package var mtu: UInt32
    /// IFF_UP: administratively up.
    package var isUp: Bool
    /// IFF_RUNNING / IFF_LOWER_UP: carrier present.
    package var isRunning: Bool
    /// IFF_LOOPBACK.
    package var isLoopback: Bool
    /// Its addresses, IPv4 first, each with the interface's prefix length.
    package var addresses: [NetworkPrefix]

    /// A value for an interface; the monitor fills it from RTM_NEWLINK / RTM_NEWADDR.
    package init(index: Int32, name: String, mtu: UInt32, isUp: Bool, isRunning: Bool, isLoopback: Bool,
                 addresses: [NetworkPrefix]) {
        self.index = index
        self.name = name
        self.mtu = mtu
        self.isUp = isUp
        self.isRunning = isRunning
        self.isLoopback = isLoopback
        self.addresses = addresses
    }
}

/// What changed, delivered after the monitor's snapshot has been updated.
package enum InterfaceEvent: Hashable, Sendable {
    /// A link appeared, changed flags or MTU, or was renamed.
    case linkChanged(NetworkInterface)
    /// A link disappeared.
    case linkRemoved(index: Int32, name: String)
    /// An address was added to or removed from an interface.
    case addressesChanged(NetworkInterface)
    /// The interface carrying the default route changed (`nil`: there is none).
    case defaultInterfaceChanged(NetworkInterface?)
}

/// A handle to a registered listener; pass it back to remove the listener.
package struct InterfaceListenerToken: Hashable, Sendable {
    /// An opaque number unique within one monitor.
    package let id: UInt64
    /// A token with the given number (monitors hand these out).
    package init(id: UInt64) { self.id = id }
}

/// The interfaces of the host and the default interface, kept current.
///
/// Implementations keep a snapshot (readable from any thread) and call listeners, in order, on their own
/// thread after each change. Listeners must not block.
package protocol InterfaceMonitor: AnyObject, Sendable {
    /// All interfaces, ordered by index.
    var interfaces: [NetworkInterface] { get }
    /// The interface of the best default route (lowest metric in the main table, IPv4 before IPv6),
    /// excluding interfaces the caller told the monitor to ignore (its own TUN).
    var defaultInterface: NetworkInterface? { get }
    /// Registers `listener`; it sees every change from now on.
    func addListener(_ listener: @escaping @Sendable (InterfaceEvent) -> Void) -> InterfaceListenerToken
    /// Removes a listener; unknown tokens are ignored.
    func removeListener(_ token: InterfaceListenerToken)
}
