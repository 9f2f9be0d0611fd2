// Reading a DNS message from untrusted octets.
//
// 1. header: 12 octets, four section counts
// 2. each count is checked against the octets left (a question needs ≥ 5, a record ≥ 11), so a hostile
//    count cannot make us reserve or loop beyond the input
// 3. names: labels ≤ 63, total ≤ 255, compression pointers must point strictly before the start of the
//    label run they interrupt, so every jump goes backwards and decompression always terminates
// 4. RDATA: parsed within its RDLENGTH and must consume it exactly; unknown types stay opaque
// Nothing here traps on input: every index is checked first and every failure is a DNSWireError.

import Adapter
package import NIOCore

extension DNSMessage {
    /// Parses a whole message. Octets after the last record are ignored unless `strict` is set
    /// (some servers pad; sing-box's miekg/dns ignores them too).
    package init(parsing bytes: [UInt8], strict: Bool = false) throws(DNSWireError) {
        var reader = DNSReader(bytes: bytes)
        let id = try reader.readUInt16()
        let flags = try reader.readUInt16()
        let questionCount = Int(try reader.readUInt16())
        let answerCount = Int(try reader.readUInt16())
        let authorityCount = Int(try reader.readUInt16())
        let additionalCount = Int(try reader.readUInt16())
        // The smallest question is 5 octets (root name, type, class); the smallest record is 11.
        guard questionCount * 5 + (answerCount + authorityCount + additionalCount) * 11 <= reader.remaining else {
            throw .badCount(questionCount + answerCount + authorityCount + additionalCount)
        }
        self.init(id: id)
        self.flags = flags
        questions.reserveCapacity(questionCount)
        for _ in 0..<questionCount {
            let name = try reader.readName()
            let type = DNSType(try reader.readUInt16())
            let klass = DNSClass(try reader.readUInt16())
            questions.append(DNSQuestion(name: name, type: type, class: klass))
        }
        answers = try reader.readRecords(answerCount)
        authorities = try reader.readRecords(authorityCount)
        additionals = try reader.readRecords(additionalCount)
        if strict, reader.remaining > 0 { throw .trailingBytes(reader.remaining) }
    }

    /// Parses the readable bytes of `buffer` without moving its reader index.
    package init(parsing buffer: ByteBuffer, strict: Bool = false) throws(DNSWireError) {
        try self.init(parsing: Array(buffer.readableBytesView), strict: strict)
    }
}

/// A cursor over a message's octets. Every read checks bounds first and throws `.truncated`.
struct DNSReader {
    let bytes: [UInt8]
    var offset = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    @inline(__always)
    func need(_ count: Int) throws(DNSWireError) {
        guard count <= bytes.count - offset else { throw .truncated(offset: offset, need: count) }
    }

    mutating func readUInt8() throws(DNSWireError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readUInt16() throws(DNSWireError) -> UInt16 {
        try need(2)
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func readUInt32() throws(DNSWireError) -> UInt32 {
        try need(4)
        defer { offset += 4 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    mutating func readUInt64() throws(DNSWireError) -> UInt64 {
        UInt64(try readUInt32()) << 32 | UInt64(try readUInt32())
    }

    mutating func readBytes(_ count: Int) throws(DNSWireError) -> [UInt8] {
        try need(count)
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    /// Reads a possibly compressed name at the cursor and leaves the cursor after its in-place part.
    mutating func readName() throws(DNSWireError) -> DNSName {
        var wire: [UInt8] = []
        var position = offset
        // The start of the label run being read: a pointer must target strictly before it.
        var runStart = offset
        var resumeAt: Int? = nil
        while true {
            guard position < bytes.count else { throw .truncated(offset: position, need: 1) }
            let length = bytes[position]
            switch length & 0xc0 {
            case 0x00:
                if length == 0 {
                    wire.append(0)
                    offset = resumeAt ?? position + 1
                    return DNSName(uncheckedWire: wire)
                }
                let count = Int(length)
                guard position + 1 + count <= bytes.count else { throw .truncated(offset: position + 1, need: count) }
                // Room for this label plus at least the root octet.
                guard wire.count + 1 + count + 1 <= DNSName.maxWireLength else { throw .nameTooLong(wire.count + 2 + count) }
                wire.append(contentsOf: bytes[position..<(position + 1 + count)])
                position += 1 + count
            case 0xc0:
                guard position + 1 < bytes.count else { throw .truncated(offset: position + 1, need: 1) }
                let target = Int(length & 0x3f) << 8 | Int(bytes[position + 1])
                // Backwards only, and before the run that led here: loops and forward jumps are refused.
                guard target < runStart else { throw .badPointer(offset: position, target: target) }
                if resumeAt == nil { resumeAt = position + 2 }
                position = target
                runStart = target
            default:
                // 0x40 (RFC 6891 retired extended labels) and 0x80 are not valid label types.
                throw .badLabelType(offset: position)
            }
        }
    }

    mutating func readRecords(_ count: Int) throws(DNSWireError) -> [DNSResourceRecord] {
        var records: [DNSResourceRecord] = []
        records.reserveCapacity(count)
        for _ in 0..<count { records.append(try readRecord()) }
        return records
    }

    mutating func readRecord() throws(DNSWireError) -> DNSResourceRecord {
        let name = try readName()
        let type = DNSType(try readUInt16())
        let klass = DNSClass(try readUInt16())
        let ttl = try readUInt32()
        let length = Int(try readUInt16())
        try need(length)
        let end = offset + length
        let data = try readRData(type: type, end: end)
        return DNSResourceRecord(name: name, type: type, class: klass, ttl: ttl, data: data)
    }

    /// Reads RDATA of `type` ending exactly at `end` (already checked to be inside the message).
    mutating func readRData(type: DNSType, end: Int) throws(DNSWireError) -> DNSRData {
        let start = offset
        let bad = DNSWireError.badRData(type: type.rawValue, offset: start)
        let data: DNSRData
        switch type {
        case .a:
            guard end - start == 4 else { throw bad }
            data = .a(.v4(try readUInt32()))
        case .aaaa:
            guard end - start == 16 else { throw bad }
            let high = try readUInt64()
            data = .aaaa(.v6(IPv6Bits(high: high, low: try readUInt64())))
        case .cname, .ns, .ptr:
            data = .name(try readName())
        case .mx:
            let preference = try readUInt16()
            data = .mx(preference: preference, exchange: try readName())
        case .txt:
            var strings: [[UInt8]] = []
            while offset < end {
                let count = Int(try readUInt8())
                guard offset + count <= end else { throw bad }
                strings.append(try readBytes(count))
            }
            data = .txt(strings)
        case .srv:
            let priority = try readUInt16(), weight = try readUInt16(), port = try readUInt16()
            data = .srv(DNSSRV(priority: priority, weight: weight, port: port, target: try readName()))
        case .soa:
            let mname = try readName(), rname = try readName()
            let serial = try readUInt32(), refresh = try readUInt32(), retry = try readUInt32()
            let expire = try readUInt32(), minimum = try readUInt32()
            data = .soa(DNSSOA(mname: mname, rname: rname, serial: serial, refresh: refresh, retry: retry, expire: expire, minimum: minimum))
        case .svcb, .https:
            let priority = try readUInt16()
            let target = try readName()
            var parameters: [DNSSVCParameter] = []
            while offset < end {
                let key = try readUInt16()
                let count = Int(try readUInt16())
                // RFC 9460 §2.2: keys strictly increasing, else the RR is malformed.
                if let last = parameters.last, key <= last.key { throw bad }
                guard offset + count <= end else { throw bad }
                parameters.append(DNSSVCParameter(key: key, value: try readBytes(count)))
            }
            data = .svcb(DNSSVCB(priority: priority, target: target, parameters: parameters))
        case .caa:
            let flags = try readUInt8()
            let tagLength = Int(try readUInt8())
            guard tagLength > 0, offset + tagLength <= end else { throw bad }
            let tag = try readBytes(tagLength)
            guard offset <= end else { throw bad }
            data = .caa(DNSCAA(flags: flags, tag: tag, value: try readBytes(end - offset)))
        case .opt:
            var options: [DNSEDNSOption] = []
            while offset < end {
                let code = try readUInt16()
                let count = Int(try readUInt16())
                guard offset + count <= end else { throw bad }
                options.append(DNSEDNSOption(code: code, data: try readBytes(count)))
            }
            data = .opt(options)
        default:
            data = .unknown(try readBytes(end - start))
        }
        // RDATA must fill RDLENGTH exactly: a name or field running past it is malformed.
        guard offset == end else { throw bad }
        return data
    }
}
