// RecordWire: answer records of a response in the form ResolveRecord returns them — each record on
// its own, names written out in full (resolved's `dns_resource_record_to_wire_format(rr, false)`),
// since a compression pointer means nothing outside the message it came from.
//
// Names inside RDATA are expanded for the RFC 1035 types that may compress them (NS, CNAME, PTR, MX,
// SOA) and for SRV and DNAME, which some servers compress anyway; other RDATA is copied as is.
// Input is a message we encoded ourselves, yet the walker checks every bound and stops at the
// first inconsistency rather than trapping.

enum RecordWire {
    /// One answer: class, type and the full uncompressed record (owner, type, class, TTL, RDLENGTH, RDATA).
    typealias Record = (class: UInt16, type: UInt16, wire: [UInt8])

    /// The answer section of `message`.
    static func answers(in message: [UInt8]) -> [Record] {
        guard message.count >= 12 else { return [] }
        let questionCount = Int(message[4]) << 8 | Int(message[5])
        let answerCount = Int(message[6]) << 8 | Int(message[7])
        var offset = 12
        for _ in 0..<questionCount {
            guard let (_, next) = readName(message, at: offset), next + 4 <= message.count else { return [] }
            offset = next + 4
        }
        var records: [Record] = []
        for _ in 0..<answerCount {
            guard let (owner, afterName) = readName(message, at: offset), afterName + 10 <= message.count else { break }
            let type = UInt16(message[afterName]) << 8 | UInt16(message[afterName + 1])
            let dnsClass = UInt16(message[afterName + 2]) << 8 | UInt16(message[afterName + 3])
            let length = Int(message[afterName + 8]) << 8 | Int(message[afterName + 9])
            let dataStart = afterName + 10
            guard dataStart + length <= message.count else { break }
            guard let data = expandData(message, type: type, start: dataStart, length: length) else { break }
            var wire = owner
            wire += message[afterName..<(afterName + 8)]
            wire += [UInt8(data.count >> 8), UInt8(data.count & 0xFF)]
            wire += data
            records.append((dnsClass, type, wire))
            offset = dataStart + length
        }
        return records
    }

    /// RDATA with its names expanded.
    private static func expandData(_ message: [UInt8], type: UInt16, start: Int, length: Int) -> [UInt8]? {
        let end = start + length
        func name(at offset: Int) -> ([UInt8], Int)? {
            guard let (bytes, next) = readName(message, at: offset), next <= end else { return nil }
            return (bytes, next)
        }
        switch type {
        case 2, 5, 12, 39:  // NS, CNAME, PTR, DNAME: one name
            guard let (bytes, next) = name(at: start), next == end else { return nil }
            return bytes
        case 15:  // MX: preference, exchange
            guard length >= 3, let (bytes, next) = name(at: start + 2), next == end else { return nil }
            return Array(message[start..<(start + 2)]) + bytes
        case 33:  // SRV: priority, weight, port, target
            guard length >= 7, let (bytes, next) = name(at: start + 6), next == end else { return nil }
            return Array(message[start..<(start + 6)]) + bytes
        case 6:  // SOA: mname, rname, five 32-bit numbers
            guard let (mname, afterM) = name(at: start), let (rname, afterR) = name(at: afterM), afterR + 20 == end else { return nil }
            return mname + rname + Array(message[afterR..<end])
        default:
            return Array(message[start..<end])
        }
    }

    /// The name at `offset` in wire form without pointers, and the offset after it in the message.
    /// RFC 1035 §4.1.4: pointers must point backwards (which also bounds the loop).
    static func readName(_ message: [UInt8], at start: Int) -> ([UInt8], Int)? {
        var out: [UInt8] = []
        var offset = start
        var resume: Int?
        var limit = start
        while true {
            guard offset < message.count else { return nil }
            let length = Int(message[offset])
            switch length & 0xC0 {
            case 0:
                if length == 0 {
                    out.append(0)
                    guard out.count <= 255 else { return nil }
                    return (out, resume ?? offset + 1)
                }
                guard offset + 1 + length <= message.count else { return nil }
                out += message[offset...(offset + length)]
                offset += 1 + length
            case 0xC0:
                guard offset + 1 < message.count else { return nil }
                let target = (length & 0x3F) << 8 | Int(message[offset + 1])
                guard target < limit else { return nil }
                if resume == nil { resume = offset + 2 }
                limit = target
                offset = target
            default:
                return nil
            }
        }
    }
}
