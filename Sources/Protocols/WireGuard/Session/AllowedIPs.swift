/// The allowed-IPs table (whitepaper §2, "cryptokey routing"): IP prefixes → peer, longest prefix wins.
/// Sending picks the peer of the destination; receiving drops a packet whose source does not map back to
/// the peer that sent it.
///
/// A binary trie per address family, nodes in one array (indices, no per-node objects); a lookup walks at
/// most 32 or 128 nodes and allocates nothing. Removal rebuilds from the entry list (a control-plane event).
package struct AllowedIPs: Sendable {
    /// One configured prefix.
    package struct Entry: Equatable, Sendable {
        /// The network address, host bits zero.
        package var address: [UInt8]
        /// Prefix length in bits.
        package var prefixLength: Int
        /// The owning peer's index.
        package var peer: Int
    }

    private struct Node: Sendable {
        var zero: Int32 = -1
        var one: Int32 = -1
        var peer: Int32 = -1
    }

    private var ipv4: [Node] = [Node()]
    private var ipv6: [Node] = [Node()]
    /// Every configured prefix, in insertion order.
    package private(set) var entries: [Entry] = []

    /// An empty table.
    package init() {}

    /// Parses `10.0.0.0/24`, `fd00::/64` or a bare address (a host route); nil when malformed.
    package static func parsePrefix(_ text: String) -> (address: [UInt8], prefixLength: Int)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return nil }
        let addressText = String(parts[0])
        guard let address = IPAddressText.parseIPv4(addressText) ?? IPAddressText.parseIPv6(addressText) else { return nil }
        let maximum = address.count * 8
        var length = maximum
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...maximum).contains(value) else { return nil }
            length = value
        }
        return (address, length)
    }

    /// Routes `address/prefixLength` to `peer`, taking it from any other peer. Host bits are masked off.
    package mutating func insert(address: [UInt8], prefixLength: Int, peer: Int) {
        precondition(address.count == 4 || address.count == 16)
        precondition((0...address.count * 8).contains(prefixLength))
        let masked = Self.mask(address, prefixLength)
        entries.removeAll { $0.address == masked && $0.prefixLength == prefixLength }
        entries.append(Entry(address: masked, prefixLength: prefixLength, peer: peer))
        if address.count == 4 {
            Self.insert(into: &ipv4, masked, prefixLength, peer)
        } else {
            Self.insert(into: &ipv6, masked, prefixLength, peer)
        }
    }

    /// Removes every prefix of `peer`; peers numbered above it move down by one when `renumber` is set
    /// (the device keeps peers in an array).
    package mutating func remove(peer: Int, renumber: Bool) {
        var kept = entries.filter { $0.peer != peer }
        if renumber {
            for index in kept.indices where kept[index].peer > peer { kept[index].peer -= 1 }
        }
        ipv4 = [Node()]
        ipv6 = [Node()]
        entries = []
        for entry in kept { insert(address: entry.address, prefixLength: entry.prefixLength, peer: entry.peer) }
    }

    /// The peer owning the longest prefix that contains `address` (4 or 16 bytes at `bytes`).
    @inline(__always)
    package func lookup(_ bytes: UnsafeRawBufferPointer) -> Int? {
        if bytes.count == 4 { return Self.lookup(ipv4, bytes) }
        if bytes.count == 16 { return Self.lookup(ipv6, bytes) }
        return nil
    }

    /// Lookup by byte array (tests, control plane).
    package func lookup(_ address: [UInt8]) -> Int? { address.withUnsafeBytes { lookup($0) } }

    private static func mask(_ address: [UInt8], _ length: Int) -> [UInt8] {
        var out = address
        for index in out.indices {
            let bitsHere = max(0, min(8, length - index * 8))
            out[index] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bitsHere))
        }
        return out
    }

    private static func insert(into nodes: inout [Node], _ address: [UInt8], _ length: Int, _ peer: Int) {
        var node = 0
        for bit in 0..<length {
            let isOne = address[bit >> 3] & (0x80 >> UInt8(bit & 7)) != 0
            var child = isOne ? nodes[node].one : nodes[node].zero
            if child < 0 {
                child = Int32(nodes.count)
                nodes.append(Node())
                if isOne { nodes[node].one = child } else { nodes[node].zero = child }
            }
            node = Int(child)
        }
        nodes[node].peer = Int32(peer)
    }

    private static func lookup(_ nodes: [Node], _ bytes: UnsafeRawBufferPointer) -> Int? {
        // Walk 64 address bits at a time from a big-endian word, over the node storage without bounds checks
        // (child indices are always valid: they are only ever set to appended nodes).
        nodes.withUnsafeBufferPointer { nodes -> Int? in
            var node = 0
            var best: Int32 = nodes[0].peer
            var offset = 0
            while offset < bytes.count {
                let chunk = min(8, bytes.count - offset)
                var word: UInt64 = 0
                for index in 0..<chunk { word = word << 8 | UInt64(bytes[offset + index]) }
                word <<= UInt64(64 - chunk * 8)
                for _ in 0..<(chunk * 8) {
                    let child = word & (1 << 63) != 0 ? nodes[node].one : nodes[node].zero
                    if child < 0 { return best >= 0 ? Int(best) : nil }
                    node = Int(child)
                    let peer = nodes[node].peer
                    if peer >= 0 { best = peer }
                    word <<= 1
                }
                offset += chunk
            }
            return best >= 0 ? Int(best) : nil
        }
    }
}
