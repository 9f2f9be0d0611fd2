package import Adapter
/// A DNS message (RFC 1035 §4.1): header, question, answer, authority and additional sections.
///
/// A plain value. `init(parsing:)` (DNSMessage+Parse.swift) reads untrusted octets with typed throws and
/// never traps; `encoded()` (DNSMessage+Emit.swift) writes with name compression. The OPT pseudo-record
/// lives in `additionals` like any record; `edns` reads and writes it as named fields.
package struct DNSMessage: Hashable, Sendable {
    package var id: UInt16
    /// QR: this is a response.
    package var isResponse: Bool
    package var opcode: DNSOpcode
    /// AA: authoritative answer.
    package var isAuthoritative: Bool
    /// TC: truncated; the client should retry over TCP (RFC 1035 §4.2.1, RFC 7766 §5).
    package var isTruncated: Bool
    /// RD: recursion desired.
    package var recursionDesired: Bool
    /// RA: recursion available.
    package var recursionAvailable: Bool
    /// Z: the reserved bit, kept so a message round-trips exactly.
    package var zero: Bool
    /// AD: authenticated data (RFC 4035 §3.2.3).
    package var authenticatedData: Bool
    /// CD: checking disabled.
    package var checkingDisabled: Bool
    /// The header's 4-bit RCODE. With EDNS the full code is `extendedRcode`.
    package var rcode: DNSRcode
    package var questions: [DNSQuestion]
    package var answers: [DNSResourceRecord]
    package var authorities: [DNSResourceRecord]
    package var additionals: [DNSResourceRecord]

    /// An empty message with every flag clear.
    package init(id: UInt16 = 0, isResponse: Bool = false, opcode: DNSOpcode = .query, isAuthoritative: Bool = false,
                 isTruncated: Bool = false, recursionDesired: Bool = false, recursionAvailable: Bool = false,
                 authenticatedData: Bool = false, checkingDisabled: Bool = false, rcode: DNSRcode = .noError,
                 questions: [DNSQuestion] = [], answers: [DNSResourceRecord] = [],
                 authorities: [DNSResourceRecord] = [], additionals: [DNSResourceRecord] = []) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.isAuthoritative = isAuthoritative
        self.isTruncated = isTruncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.zero = false
        self.authenticatedData = authenticatedData
        self.checkingDisabled = checkingDisabled
        self.rcode = rcode
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
    }

    /// A recursive query for one question, as sing-box's lookups build them (RD set, no EDNS).
    package static func query(id: UInt16 = 0, name: DNSName, type: DNSType) -> DNSMessage {
        DNSMessage(id: id, recursionDesired: true, questions: [DNSQuestion(name: name, type: type)])
    }

    /// The first question, if any.
    package var question: DNSQuestion? { questions.first }

    /// The RCODE including the EDNS upper 8 bits (RFC 6891 §6.1.3).
    package var extendedRcode: DNSRcode {
        DNSRcode(UInt16(edns?.extendedRcodeHigh ?? 0) << 4 | rcode.rawValue & 0x0f)
    }

    /// The 16-bit flags word of the header (RFC 1035 §4.1.1, RFC 2535 for AD/CD).
    package var flags: UInt16 {
        get {
            var word: UInt16 = 0
            if isResponse { word |= 0x8000 }
            word |= UInt16(opcode.rawValue & 0x0f) << 11
            if isAuthoritative { word |= 0x0400 }
            if isTruncated { word |= 0x0200 }
            if recursionDesired { word |= 0x0100 }
            if recursionAvailable { word |= 0x0080 }
            if zero { word |= 0x0040 }
            if authenticatedData { word |= 0x0020 }
            if checkingDisabled { word |= 0x0010 }
            word |= rcode.rawValue & 0x0f
            return word
        }
        set {
            isResponse = newValue & 0x8000 != 0
            opcode = DNSOpcode(rawValue: UInt8(truncatingIfNeeded: newValue >> 11))
            isAuthoritative = newValue & 0x0400 != 0
            isTruncated = newValue & 0x0200 != 0
            recursionDesired = newValue & 0x0100 != 0
            recursionAvailable = newValue & 0x0080 != 0
            zero = newValue & 0x0040 != 0
            authenticatedData = newValue & 0x0020 != 0
            checkingDisabled = newValue & 0x0010 != 0
            rcode = DNSRcode(newValue & 0x0f)
        }
    }

    /// The EDNS(0) fields of the first OPT record in `additionals`; setting nil removes every OPT
    /// record, setting a value replaces the first one (or appends one).
    package var edns: DNSEDNS? {
        get {
            guard let record = additionals.first(where: { $0.type == .opt }) else { return nil }
            var options: [DNSEDNSOption] = []
            if case .opt(let list) = record.data { options = list }
            return DNSEDNS(udpPayloadSize: record.class.rawValue,
                           extendedRcodeHigh: UInt8(truncatingIfNeeded: record.ttl >> 24),
                           version: UInt8(truncatingIfNeeded: record.ttl >> 16),
                           flags: UInt16(truncatingIfNeeded: record.ttl), options: options)
        }
        set {
            guard let newValue else {
                additionals.removeAll { $0.type == .opt }
                return
            }
            let record = DNSResourceRecord(
                name: .root, type: .opt, class: DNSClass(newValue.udpPayloadSize),
                ttl: UInt32(newValue.extendedRcodeHigh) << 24 | UInt32(newValue.version) << 16 | UInt32(newValue.flags),
                data: .opt(newValue.options))
            if let index = additionals.firstIndex(where: { $0.type == .opt }) {
                additionals[index] = record
            } else {
                additionals.append(record)
            }
        }
    }

    /// The client subnet carried in the EDNS options, if any (RFC 7871).
    package var clientSubnet: DNSClientSubnet? {
        edns?.options.lazy.compactMap(\.clientSubnet).first
    }

    /// A copy carrying `prefix` as its client subnet option: replaces an existing one, adds an OPT
    /// record when there is none (as sing-box's `SetClientSubnet` does).
    package func settingClientSubnet(_ prefix: IPPrefix) -> DNSMessage {
        var copy = self
        var edns = copy.edns ?? DNSEDNS(udpPayloadSize: 0)
        let option = DNSEDNSOption(clientSubnet: prefix)
        if let index = edns.options.firstIndex(where: { $0.code == DNSEDNSOption.clientSubnetCode }) {
            edns.options[index] = option
        } else {
            edns.options.append(option)
        }
        copy.edns = edns
        return copy
    }

    /// Every record of the three record sections, in order.
    package var allRecords: [DNSResourceRecord] { answers + authorities + additionals }

    /// Applies `body` to every record of the answer, authority and additional sections.
    package mutating func updateRecords(_ body: (inout DNSResourceRecord) -> Void) {
        for index in answers.indices { body(&answers[index]) }
        for index in authorities.indices { body(&authorities[index]) }
        for index in additionals.indices { body(&additionals[index]) }
    }
}

/// The fields of an OPT pseudo-record (RFC 6891 §6.1.3).
package struct DNSEDNS: Hashable, Sendable {
    /// The largest UDP payload the sender can reassemble (the record's CLASS).
    package var udpPayloadSize: UInt16
    /// The upper 8 bits of the 12-bit extended RCODE.
    package var extendedRcodeHigh: UInt8
    /// The EDNS version (0).
    package var version: UInt8
    /// DO and the reserved Z bits (the low 16 bits of the record's TTL).
    package var flags: UInt16
    package var options: [DNSEDNSOption]

    package init(udpPayloadSize: UInt16, extendedRcodeHigh: UInt8 = 0, version: UInt8 = 0, flags: UInt16 = 0, options: [DNSEDNSOption] = []) {
        self.udpPayloadSize = udpPayloadSize
        self.extendedRcodeHigh = extendedRcodeHigh
        self.version = version
        self.flags = flags
        self.options = options
    }

    /// DO: the sender accepts DNSSEC records (RFC 3225).
    package var dnssecOK: Bool {
        get { flags & 0x8000 != 0 }
        set { flags = newValue ? flags | 0x8000 : flags & ~0x8000 }
    }
}
