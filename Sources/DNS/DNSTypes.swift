/// A resource record TYPE (RFC 1035 §3.2.2, IANA registry). A raw value, so unknown types pass through.
package struct DNSType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    package var rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }
    package init(_ rawValue: UInt16) { self.rawValue = rawValue }

    package static let a = DNSType(1)
    package static let ns = DNSType(2)
    package static let cname = DNSType(5)
    package static let soa = DNSType(6)
    package static let ptr = DNSType(12)
    package static let mx = DNSType(15)
    package static let txt = DNSType(16)
    package static let aaaa = DNSType(28)
    package static let srv = DNSType(33)
    package static let opt = DNSType(41)
    package static let svcb = DNSType(64)
    package static let https = DNSType(65)
    package static let any = DNSType(255)
    package static let caa = DNSType(257)

    private static let names: [UInt16: String] = [
        1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
        41: "OPT", 64: "SVCB", 65: "HTTPS", 255: "ANY", 257: "CAA",
    ]

    /// The mnemonic (`AAAA`), or `TYPE<n>` for unknown types (RFC 3597 §5), as sing-box logs them.
    package var description: String { Self.names[rawValue] ?? "TYPE\(rawValue)" }
}

/// A CLASS value (RFC 1035 §3.2.4). In an OPT record this field is the UDP payload size instead.
package struct DNSClass: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    package var rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }
    package init(_ rawValue: UInt16) { self.rawValue = rawValue }

    package static let inet = DNSClass(1)
    package static let chaos = DNSClass(3)
    package static let any = DNSClass(255)

    package var description: String {
        switch rawValue {
        case 1: "IN"
        case 3: "CH"
        case 255: "ANY"
        default: "CLASS\(rawValue)"
        }
    }
}

/// A response code (RFC 1035 §4.1.1, RFC 6895). Header RCODEs are 4 bits; EDNS extends them to 12.
package struct DNSRcode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    package var rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }
    package init(_ rawValue: UInt16) { self.rawValue = rawValue }

    package static let noError = DNSRcode(0)
    package static let formatError = DNSRcode(1)
    package static let serverFailure = DNSRcode(2)
    package static let nameError = DNSRcode(3)
    package static let notImplemented = DNSRcode(4)
    package static let refused = DNSRcode(5)

    private static let names: [UInt16: String] = [
        0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
        6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 16: "BADSIG",
        17: "BADKEY", 18: "BADTIME", 19: "BADMODE", 20: "BADNAME", 21: "BADALG", 22: "BADTRUNC", 23: "BADCOOKIE",
    ]

    /// The mnemonic as miekg/dns spells it (`NXDOMAIN`); sing-box 1.12 prints rcode errors this way.
    /// Unknown codes print as an empty string there; we print the number so logs stay useful.
    package var description: String { Self.names[rawValue] ?? "RCODE\(rawValue)" }
}

/// An OPCODE (RFC 1035 §4.1.1): 4 bits.
package struct DNSOpcode: RawRepresentable, Hashable, Sendable {
    package var rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue & 0x0f }
    package static let query = DNSOpcode(rawValue: 0)
}

/// A question entry (RFC 1035 §4.1.2).
package struct DNSQuestion: Hashable, Sendable, CustomStringConvertible {
    package var name: DNSName
    package var type: DNSType
    package var `class`: DNSClass

    package init(name: DNSName, type: DNSType, class: DNSClass = .inet) {
        self.name = name
        self.type = type
        self.class = `class`
    }

    /// Whether a response's question answers this one: same type and class, name equal ignoring case
    /// (RFC 5452 §9.1: the ID alone is not enough to accept an answer).
    package func matches(_ other: DNSQuestion) -> Bool {
        type == other.type && self.class == other.class && name.equalsIgnoringCase(other.name)
    }

    package var description: String { "\(name) \(self.class) \(type)" }
}
