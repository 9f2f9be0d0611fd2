package import Adapter

/// A resource record (RFC 1035 §4.1.3) with typed RDATA.
///
/// For an OPT pseudo-record (RFC 6891 §6.1.2) `class` holds the requester's UDP payload size and
/// `ttl` holds the extended RCODE, version and flags; `DNSMessage.edns` reads them as named fields.
package struct DNSResourceRecord: Hashable, Sendable {
    package var name: DNSName
    package var type: DNSType
    package var `class`: DNSClass
    package var ttl: UInt32
    package var data: DNSRData

    package init(name: DNSName, type: DNSType, class: DNSClass = .inet, ttl: UInt32, data: DNSRData) {
        self.name = name
        self.type = type
        self.class = `class`
        self.ttl = ttl
        self.data = data
    }

    /// An A (IPv4) or AAAA (IPv6) record for `address`.
    package static func address(_ name: DNSName, _ address: IPAddress, ttl: UInt32) -> DNSResourceRecord {
        address.isIPv4 ? DNSResourceRecord(name: name, type: .a, ttl: ttl, data: .a(address))
            : DNSResourceRecord(name: name, type: .aaaa, ttl: ttl, data: .aaaa(address))
    }
}

/// RDATA by type. The case follows the record's TYPE: a record of an unknown type, or one whose
/// RDATA we do not model, keeps its octets in `.unknown` (RFC 3597) and round-trips them exactly.
package enum DNSRData: Hashable, Sendable {
    /// An IPv4 address (emitting an IPv6 one throws `.addressFamilyMismatch`).
    case a(IPAddress)
    /// An IPv6 address (emitting an IPv4 one throws `.addressFamilyMismatch`).
    case aaaa(IPAddress)
    /// CNAME, NS and PTR: one name (which one is the record's TYPE).
    case name(DNSName)
    case mx(preference: UInt16, exchange: DNSName)
    /// Character-strings, each up to 255 octets (RFC 1035 §3.3.14).
    case txt([[UInt8]])
    case srv(DNSSRV)
    case soa(DNSSOA)
    /// SVCB and HTTPS (RFC 9460).
    case svcb(DNSSVCB)
    case caa(DNSCAA)
    case opt([DNSEDNSOption])
    case unknown([UInt8])
}

/// SOA RDATA (RFC 1035 §3.3.13).
package struct DNSSOA: Hashable, Sendable {
    package var mname: DNSName
    package var rname: DNSName
    package var serial: UInt32
    package var refresh: UInt32
    package var retry: UInt32
    package var expire: UInt32
    /// The negative-caching TTL bound (RFC 2308 §4).
    package var minimum: UInt32

    package init(mname: DNSName, rname: DNSName, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32) {
        self.mname = mname
        self.rname = rname
        self.serial = serial
        self.refresh = refresh
        self.retry = retry
        self.expire = expire
        self.minimum = minimum
    }
}

/// SRV RDATA (RFC 2782). The target is never compressed on emit (RFC 2782, "Target").
package struct DNSSRV: Hashable, Sendable {
    package var priority: UInt16
    package var weight: UInt16
    package var port: UInt16
    package var target: DNSName

    package init(priority: UInt16, weight: UInt16, port: UInt16, target: DNSName) {
        self.priority = priority
        self.weight = weight
        self.port = port
        self.target = target
    }
}

/// CAA RDATA (RFC 8659 §4.1).
package struct DNSCAA: Hashable, Sendable {
    package var flags: UInt8
    /// The property tag, 1...255 octets.
    package var tag: [UInt8]
    package var value: [UInt8]

    package init(flags: UInt8, tag: [UInt8], value: [UInt8]) {
        self.flags = flags
        self.tag = tag
        self.value = value
    }
}

/// SVCB/HTTPS RDATA (RFC 9460 §2.2): priority, target, and parameters in strictly increasing key order.
package struct DNSSVCB: Hashable, Sendable {
    package var priority: UInt16
    package var target: DNSName
    package var parameters: [DNSSVCParameter]

    package init(priority: UInt16, target: DNSName, parameters: [DNSSVCParameter]) {
        self.priority = priority
        self.target = target
        self.parameters = parameters
    }

    /// The `ipv4hint` addresses (key 4), empty when absent or malformed.
    package var ipv4Hints: [IPAddress] {
        guard let value = parameters.first(where: { $0.key == DNSSVCParameter.ipv4hint })?.value,
              value.count % 4 == 0 else { return [] }
        return stride(from: 0, to: value.count, by: 4).compactMap { IPAddress(bytes: value[$0..<($0 + 4)]) }
    }

    /// The `ipv6hint` addresses (key 6), empty when absent or malformed.
    package var ipv6Hints: [IPAddress] {
        guard let value = parameters.first(where: { $0.key == DNSSVCParameter.ipv6hint })?.value,
              value.count % 16 == 0 else { return [] }
        return stride(from: 0, to: value.count, by: 16).compactMap { IPAddress(bytes: value[$0..<($0 + 16)]) }
    }

    /// The `alpn` protocol ids (key 1), each a length-prefixed string.
    package var alpn: [[UInt8]] {
        guard let value = parameters.first(where: { $0.key == DNSSVCParameter.alpn })?.value else { return [] }
        var result: [[UInt8]] = []
        var index = 0
        while index < value.count {
            let length = Int(value[index])
            guard index + 1 + length <= value.count else { return [] }
            result.append(Array(value[(index + 1)..<(index + 1 + length)]))
            index += 1 + length
        }
        return result
    }

    /// The `port` parameter (key 3), if present and two octets.
    package var port: UInt16? {
        guard let value = parameters.first(where: { $0.key == DNSSVCParameter.port })?.value, value.count == 2 else { return nil }
        return UInt16(value[0]) << 8 | UInt16(value[1])
    }
}

/// One SvcParam: a key and its raw value octets (RFC 9460 §2.2).
package struct DNSSVCParameter: Hashable, Sendable {
    package static let mandatory: UInt16 = 0
    package static let alpn: UInt16 = 1
    package static let noDefaultALPN: UInt16 = 2
    package static let port: UInt16 = 3
    package static let ipv4hint: UInt16 = 4
    package static let ech: UInt16 = 5
    package static let ipv6hint: UInt16 = 6

    package var key: UInt16
    package var value: [UInt8]

    package init(key: UInt16, value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

/// One EDNS(0) option (RFC 6891 §6.1.2). Client subnet is read and written through `clientSubnet`.
package struct DNSEDNSOption: Hashable, Sendable {
    /// RFC 7871 §6: OPTION-CODE 8.
    package static let clientSubnetCode: UInt16 = 8

    package var code: UInt16
    package var data: [UInt8]

    package init(code: UInt16, data: [UInt8]) {
        self.code = code
        self.data = data
    }

    /// A client subnet option for `prefix` with scope 0, the address cut to its prefix octets (RFC 7871 §6).
    package init(clientSubnet prefix: IPPrefix) {
        let masked = prefix  // IPPrefix keeps its address masked
        let family: UInt16 = masked.address.isIPv4 ? 1 : 2
        let octets = (masked.bits + 7) / 8
        data = [UInt8(family >> 8), UInt8(family & 0xff), UInt8(masked.bits), 0] + masked.address.bytes.prefix(octets)
        code = Self.clientSubnetCode
    }

    /// This option read as a client subnet: nil when it is another option or malformed
    /// (unknown family, prefix over the family's width, address length not `ceil(source/8)`).
    package var clientSubnet: DNSClientSubnet? {
        guard code == Self.clientSubnetCode, data.count >= 4 else { return nil }
        let family = UInt16(data[0]) << 8 | UInt16(data[1])
        let source = Int(data[2]), scope = Int(data[3])
        let width: Int
        switch family {
        case 1: width = 32
        case 2: width = 128
        default: return nil
        }
        guard source <= width, scope <= width, data.count - 4 == (source + 7) / 8 else { return nil }
        var full = Array(data[4...])
        full += repeatElement(0, count: width / 8 - full.count)
        guard let address = IPAddress(bytes: full), let prefix = IPPrefix(address, bits: source) else { return nil }
        return DNSClientSubnet(prefix: prefix, scopePrefixLength: scope)
    }
}

/// A decoded client subnet option (RFC 7871 §6).
package struct DNSClientSubnet: Hashable, Sendable {
    /// The address and SOURCE PREFIX-LENGTH.
    package var prefix: IPPrefix
    /// SCOPE PREFIX-LENGTH (0 in queries).
    package var scopePrefixLength: Int
}
