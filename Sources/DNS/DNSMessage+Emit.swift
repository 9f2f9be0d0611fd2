// Writing a DNS message.
//
// Names are compressed (RFC 1035 §4.1.4) where RFC 3597 §4 allows it: owner names, question names and
// the names inside the RDATA of the RFC 1035 types we model (NS, CNAME, PTR, MX, SOA). SRV (RFC 2782)
// and SVCB/HTTPS (RFC 9460 §2.2) targets are written in full, but may still be pointed at later.
// Suffixes match octet-exactly so the case a server sent is the case we send on.

import Adapter
package import NIOCore

extension DNSMessage {
    /// The message in wire form. Throws `.valueTooLarge` when a field or the whole message overflows.
    package func encoded() throws(DNSWireError) -> [UInt8] {
        var writer = DNSWriter()
        try writer.write(self)
        return writer.bytes
    }

    /// Writes the message into `buffer` after its writer index.
    package func encode(into buffer: inout ByteBuffer) throws(DNSWireError) {
        buffer.writeBytes(try encoded())
    }

    /// The wire form cut to at most `maxSize` octets for a UDP reply (RFC 1035 §4.2.1, RFC 6891 §7):
    /// records are dropped from the end (additional, then authority, then answer), the OPT record is
    /// kept, and TC is set when an answer or authority record had to go.
    package func encoded(maxSize: Int) throws(DNSWireError) -> [UInt8] {
        let full = try encoded()
        if full.count <= maxSize { return full }
        var copy = self
        let opt = copy.additionals.filter { $0.type == .opt }
        copy.additionals = copy.additionals.filter { $0.type != .opt }
        while !copy.additionals.isEmpty {
            copy.additionals.removeLast()
            let bytes = try (copy.withAdditionals(opt)).encoded()
            if bytes.count <= maxSize { return bytes }
        }
        copy.isTruncated = true
        while !copy.authorities.isEmpty {
            copy.authorities.removeLast()
            let bytes = try (copy.withAdditionals(opt)).encoded()
            if bytes.count <= maxSize { return bytes }
        }
        while !copy.answers.isEmpty {
            copy.answers.removeLast()
            let bytes = try (copy.withAdditionals(opt)).encoded()
            if bytes.count <= maxSize { return bytes }
        }
        return try copy.withAdditionals(opt).encoded()
    }

    /// The wire form of this response for a UDP reply to `request` (sing-box `TruncateDNSMessage`):
    /// cut to the request's EDNS payload size, or to 512 octets without EDNS (RFC 1035 §4.2.1).
    package func encodedForUDP(replyingTo request: DNSMessage) throws(DNSWireError) -> [UInt8] {
        let limit = max(512, Int(request.edns?.udpPayloadSize ?? 0))
        return try encoded(maxSize: limit)
    }

    private func withAdditionals(_ records: [DNSResourceRecord]) -> DNSMessage {
        var copy = self
        copy.additionals = records
        return copy
    }
}

/// Appends a message to an octet array, remembering where each name suffix was written.
struct DNSWriter {
    var bytes: [UInt8] = []
    /// Offsets of name suffixes already written, keyed by their uncompressed wire octets.
    private var suffixes: [Suffix: Int] = [:]
    /// Where the TTL field of each record other than OPT was written, when `recordsTTLOffsets` is set
    /// (the cache's wire copy patches them as the entry ages).
    var ttlOffsets: [Int] = []
    var recordsTTLOffsets = false

    /// A name suffix as a dictionary key, hashed in one `combine(bytes:)`: ArraySlice's own hashing
    /// feeds the hasher one octet at a time, the top user-space cost of cached hijack-dns answers.
    private struct Suffix: Hashable {
        var octets: ArraySlice<UInt8>
        func hash(into hasher: inout Hasher) { octets.withUnsafeBytes { hasher.combine(bytes: $0) } }
    }

    /// RFC 1035 §4.1.4: a pointer holds a 14-bit offset.
    static let maxPointerOffset = 0x3fff

    init() { bytes.reserveCapacity(512) }

    mutating func write(_ message: DNSMessage) throws(DNSWireError) {
        guard message.questions.count <= 0xffff, message.answers.count <= 0xffff,
              message.authorities.count <= 0xffff, message.additionals.count <= 0xffff else {
            throw .valueTooLarge(max(message.answers.count, message.authorities.count, message.additionals.count, message.questions.count))
        }
        writeUInt16(message.id)
        writeUInt16(message.flags)
        writeUInt16(UInt16(message.questions.count))
        writeUInt16(UInt16(message.answers.count))
        writeUInt16(UInt16(message.authorities.count))
        writeUInt16(UInt16(message.additionals.count))
        for question in message.questions {
            writeName(question.name, compress: true)
            writeUInt16(question.type.rawValue)
            writeUInt16(question.class.rawValue)
        }
        for record in message.answers { try write(record) }
        for record in message.authorities { try write(record) }
        for record in message.additionals { try write(record) }
        // RFC 1035 §4.2.2: a message is at most 65535 octets (the TCP length prefix).
        guard bytes.count <= 0xffff else { throw .valueTooLarge(bytes.count) }
    }

    mutating func writeUInt8(_ value: UInt8) { bytes.append(value) }

    mutating func writeUInt16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    mutating func writeUInt32(_ value: UInt32) {
        writeUInt16(UInt16(truncatingIfNeeded: value >> 16))
        writeUInt16(UInt16(truncatingIfNeeded: value))
    }

    /// Writes `name`, replacing its longest suffix already in the message by a pointer when `compress`.
    mutating func writeName(_ name: DNSName, compress: Bool) {
        let wire = name.wire
        var index = 0
        while wire[index] != 0 {
            let suffix = Suffix(octets: wire[index...])
            if let target = suffixes[suffix] {
                if compress {
                    writeUInt16(0xc000 | UInt16(target))
                    return
                }
            } else if bytes.count <= Self.maxPointerOffset {
                suffixes[suffix] = bytes.count
            }
            let length = Int(wire[index])
            bytes.append(contentsOf: wire[index...(index + length)])
            index += 1 + length
        }
        bytes.append(0)
    }

    mutating func write(_ record: DNSResourceRecord) throws(DNSWireError) {
        writeName(record.name, compress: true)
        writeUInt16(record.type.rawValue)
        writeUInt16(record.class.rawValue)
        if recordsTTLOffsets, record.type != .opt { ttlOffsets.append(bytes.count) }
        writeUInt32(record.ttl)
        let lengthAt = bytes.count
        writeUInt16(0)
        try writeRData(record.data)
        let length = bytes.count - lengthAt - 2
        guard length <= 0xffff else { throw .valueTooLarge(length) }
        bytes[lengthAt] = UInt8(truncatingIfNeeded: length >> 8)
        bytes[lengthAt + 1] = UInt8(truncatingIfNeeded: length)
    }

    mutating func writeRData(_ data: DNSRData) throws(DNSWireError) {
        switch data {
        case .a(let address):
            guard case .v4(let value) = address else { throw .addressFamilyMismatch }
            writeUInt32(value)
        case .aaaa(let address):
            guard !address.isIPv4 else { throw .addressFamilyMismatch }
            bytes.append(contentsOf: address.bytes)
        case .name(let name):
            writeName(name, compress: true)
        case .mx(let preference, let exchange):
            writeUInt16(preference)
            writeName(exchange, compress: true)
        case .txt(let strings):
            for string in strings {
                guard string.count <= 255 else { throw .valueTooLarge(string.count) }
                writeUInt8(UInt8(string.count))
                bytes.append(contentsOf: string)
            }
        case .srv(let srv):
            writeUInt16(srv.priority)
            writeUInt16(srv.weight)
            writeUInt16(srv.port)
            writeName(srv.target, compress: false)
        case .soa(let soa):
            writeName(soa.mname, compress: true)
            writeName(soa.rname, compress: true)
            writeUInt32(soa.serial)
            writeUInt32(soa.refresh)
            writeUInt32(soa.retry)
            writeUInt32(soa.expire)
            writeUInt32(soa.minimum)
        case .svcb(let svcb):
            writeUInt16(svcb.priority)
            writeName(svcb.target, compress: false)
            for parameter in svcb.parameters {
                guard parameter.value.count <= 0xffff else { throw .valueTooLarge(parameter.value.count) }
                writeUInt16(parameter.key)
                writeUInt16(UInt16(parameter.value.count))
                bytes.append(contentsOf: parameter.value)
            }
        case .caa(let caa):
            guard !caa.tag.isEmpty, caa.tag.count <= 255 else { throw .valueTooLarge(caa.tag.count) }
            writeUInt8(caa.flags)
            writeUInt8(UInt8(caa.tag.count))
            bytes.append(contentsOf: caa.tag)
            bytes.append(contentsOf: caa.value)
        case .opt(let options):
            for option in options {
                guard option.data.count <= 0xffff else { throw .valueTooLarge(option.data.count) }
                writeUInt16(option.code)
                writeUInt16(UInt16(option.data.count))
                bytes.append(contentsOf: option.data)
            }
        case .unknown(let raw):
            bytes.append(contentsOf: raw)
        }
    }
}
