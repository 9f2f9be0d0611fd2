// DNSQueryView: the few fields of a simple UDP query, read in place for the cached-answer fast path.
//
// A "simple" query is what stub resolvers and dnsperf send: a 12-octet header with QR clear, exactly
// one question whose name is written out in full (no compression pointer), no answer or authority
// record, and at most one additional record, an OPT (RFC 6891 §6.1.2) whose options fill its RDATA
// exactly. Anything else gets `nil` and takes the full parser (DNSMessage+Parse.swift), which then
// decides as before. Every offset is checked before it is read: untrusted octets never trap.

package import NIOCore

/// A simple query's ID, question and EDNS payload size, over the readable bytes of a `ByteBuffer`.
/// Copies nothing; offsets are relative to the buffer's reader index.
package struct DNSQueryView {
    /// The header's ID.
    package let id: UInt16
    /// Where the question (name, type, class) ends; it starts at offset 12.
    package let questionEnd: Int
    /// The question's TYPE.
    package let type: DNSType
    /// The question's CLASS.
    package let `class`: DNSClass
    /// The OPT record's UDP payload size (its CLASS field), nil without EDNS.
    package let udpPayloadSize: UInt16?

    /// Reads `buffer`'s readable bytes; nil when they are not a simple query (see the file header).
    package init?(_ buffer: ByteBuffer) {
        let parsed: (UInt16, Int, UInt16, UInt16, UInt16?)? = buffer.withUnsafeReadableBytes { bytes in
            let count = bytes.count
            guard count >= 12 + 5 else { return nil }
            @inline(__always) func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
            let flags = u16(2)
            // QR set: a response, which hijack-dns drops; the full parser logs why.
            guard flags & 0x8000 == 0, u16(4) == 1, u16(6) == 0, u16(8) == 0 else { return nil }
            let additionalCount = u16(10)
            guard additionalCount <= 1 else { return nil }
            // The question name: uncompressed labels of 1...63 octets, at most 255 octets in all.
            var offset = 12
            while true {
                guard offset < count else { return nil }
                let length = Int(bytes[offset])
                if length == 0 { offset += 1; break }
                guard length <= DNSName.maxLabelLength else { return nil }  // pointers and retired label types
                offset += 1 + length
                guard offset - 12 + 1 <= DNSName.maxWireLength else { return nil }
            }
            guard offset + 4 <= count else { return nil }
            let type = u16(offset), klass = u16(offset + 2)
            let questionEnd = offset + 4
            offset = questionEnd
            var payloadSize: UInt16? = nil
            if additionalCount == 1 {
                // OPT: root owner (0), TYPE 41, CLASS = payload size, TTL, RDLENGTH, options.
                guard offset + 11 <= count, bytes[offset] == 0, u16(offset + 1) == DNSType.opt.rawValue else { return nil }
                payloadSize = u16(offset + 3)
                let end = offset + 11 + Int(u16(offset + 9))
                guard end <= count else { return nil }
                offset += 11
                while offset < end {
                    guard offset + 4 <= end else { return nil }
                    offset += 4 + Int(u16(offset + 2))
                    guard offset <= end else { return nil }
                }
            }
            // Trailing octets: the full parser ignores them; leave such oddities to it.
            guard offset == count else { return nil }
            return (u16(0), questionEnd, type, klass, payloadSize)
        }
        guard let parsed else { return nil }
        id = parsed.0
        questionEnd = parsed.1
        type = DNSType(parsed.2)
        `class` = DNSClass(parsed.3)
        udpPayloadSize = parsed.4
    }

    /// The largest UDP answer the asker takes: its EDNS payload size, at least 512 (RFC 1035 §4.2.1,
    /// as `DNSMessage.encodedForUDP(replyingTo:)`).
    package var udpAnswerLimit: Int { max(512, Int(udpPayloadSize ?? 0)) }

    /// The question name with ASCII letters lowered (the cache key's form, RFC 4343), from `buffer`,
    /// the buffer this view was read from.
    package func loweredName(in buffer: ByteBuffer) -> DNSName {
        buffer.withUnsafeReadableBytes { bytes in
            DNSName(uncheckedWire: bytes[12..<(questionEnd - 4)].map { $0 >= 0x41 && $0 <= 0x5a ? $0 | 0x20 : $0 })
        }
    }
}
