/// A domain name in uncompressed wire form (RFC 1035 §3.1): length-prefixed labels ending in the root.
///
/// Invariant, checked by every initialiser: each label is 1...63 octets and the whole form, root
/// octet included, is at most 255 octets. Equality is octet-exact (case preserved, as a response
/// echoes it); `lowercased()` gives the canonical form that caches and lookups compare by.
package struct DNSName: Hashable, Sendable, CustomStringConvertible {
    /// RFC 1035 §2.3.4: labels are 63 octets or less.
    package static let maxLabelLength = 63
    /// RFC 1035 §2.3.4: names are 255 octets or less, counting length octets and the root.
    package static let maxWireLength = 255

    /// The wire octets, ending with the zero-length root label.
    package private(set) var wire: [UInt8]

    /// The root name `.`.
    package static let root = DNSName(uncheckedWire: [0])

    init(uncheckedWire wire: [UInt8]) { self.wire = wire }

    /// Hashes the octets in one `combine(bytes:)` (an array's own hashing feeds them one at a time;
    /// every cache lookup hashes a name). Consistent with the octet-exact `==`.
    package func hash(into hasher: inout Hasher) {
        wire.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    /// A name from its labels (each 1...63 octets, raw bytes, no escaping).
    package init(labels: some Sequence<some Collection<UInt8>>) throws(DNSWireError) {
        var wire: [UInt8] = []
        for label in labels {
            guard !label.isEmpty else { throw .emptyLabel }
            guard label.count <= Self.maxLabelLength else { throw .labelTooLong(label.count) }
            wire.append(UInt8(label.count))
            wire.append(contentsOf: label)
            guard wire.count < Self.maxWireLength else { throw .nameTooLong(wire.count + 1) }
        }
        wire.append(0)
        self.wire = wire
    }

    /// Parses presentation text: `example.com`, `example.com.`, `.` for the root. `\.` and `\DDD`
    /// escape a label's octets (RFC 1035 §5.1). A missing trailing dot means the same absolute name.
    package init(_ text: some StringProtocol) throws(DNSWireError) {
        let utf8 = Array(text.utf8)
        if utf8.isEmpty || utf8 == [UInt8(ascii: ".")] { self = .root; return }
        var labels: [[UInt8]] = []
        var label: [UInt8] = []
        var index = 0
        var endedWithDot = false
        while index < utf8.count {
            let byte = utf8[index]
            endedWithDot = false
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < utf8.count else { throw .badEscape }
                let next = utf8[index + 1]
                if let d1 = decimal(next) {
                    guard index + 3 < utf8.count, let d2 = decimal(utf8[index + 2]), let d3 = decimal(utf8[index + 3]),
                          Int(d1) * 100 + Int(d2) * 10 + Int(d3) <= 255 else { throw .badEscape }
                    label.append(UInt8(Int(d1) * 100 + Int(d2) * 10 + Int(d3)))
                    index += 4
                } else {
                    label.append(next)
                    index += 2
                }
            } else if byte == UInt8(ascii: ".") {
                guard !label.isEmpty else { throw .emptyLabel }
                labels.append(label)
                label = []
                index += 1
                endedWithDot = true
            } else {
                label.append(byte)
                index += 1
            }
        }
        if !endedWithDot { labels.append(label) }
        try self.init(labels: labels)
    }

    /// The labels in order, without the root.
    package var labels: [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        var index = 0
        while index < wire.count, wire[index] != 0 {
            let length = Int(wire[index])
            result.append(wire[(index + 1)..<(index + 1 + length)])
            index += 1 + length
        }
        return result
    }

    /// The number of labels (the root has none).
    package var labelCount: Int { labels.count }

    /// Whether this is the root name.
    package var isRoot: Bool { wire.count == 1 }

    /// The name with ASCII letters lowered: the canonical form for comparisons (RFC 4343).
    package func lowercased() -> DNSName {
        DNSName(uncheckedWire: wire.map { $0 >= 0x41 && $0 <= 0x5a ? $0 | 0x20 : $0 })
    }

    /// Whether two names are equal ignoring ASCII case (RFC 4343).
    package func equalsIgnoringCase(_ other: DNSName) -> Bool {
        guard wire.count == other.wire.count else { return false }
        for (a, b) in zip(wire, other.wire) where a != b {
            let la = a >= 0x41 && a <= 0x5a ? a | 0x20 : a
            let lb = b >= 0x41 && b <= 0x5a ? b | 0x20 : b
            if la != lb { return false }
        }
        return true
    }

    /// Presentation form with the trailing dot (`example.com.`), escaping `.`, `\`, quotes, spaces
    /// and non-printable octets so `init(_:)` reads it back to the same octets.
    package var description: String {
        if isRoot { return "." }
        var text = ""
        for label in labels {
            for byte in label {
                switch byte {
                case UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: ";"),
                     UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "@"), UInt8(ascii: "$"):
                    text += "\\" + String(UnicodeScalar(byte))
                case 0x21...0x7e:
                    text.unicodeScalars.append(UnicodeScalar(byte))
                default:
                    let digits = String(byte)
                    text += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
                }
            }
            text += "."
        }
        return text
    }

    /// The name without its trailing dot, as sing-box logs and matches domains (`FqdnToDomain`).
    package var domain: String {
        let text = description
        return text == "." ? "" : String(text.dropLast())
    }
}

@inline(__always)
private func decimal(_ byte: UInt8) -> UInt8? {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? byte - UInt8(ascii: "0") : nil
}
