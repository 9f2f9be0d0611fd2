// DNSCachedWire: a cached response kept in wire form beside its DNSMessage, so a cache hit for a simple
// UDP query (DNSQueryView) is one copy of octets instead of a copy of the message, a TTL rewrite of
// every record and a fresh encode with name compression.
//
// The answer this produces is octet-identical to the message path's (DNSClient.exchangeCache, then
// encodedForUDP): that path serves the stored message with the asker's ID, the asker's question and
// every TTL but OPT's set to the seconds left, and encodes it. Here the stored message was encoded
// once; the fast path is taken only when the asker's question is octet-equal to the stored one (so
// name compression comes out the same) and the whole answer fits the asker's UDP limit (so nothing is
// cut), and then only the ID and the TTL fields differ: they are patched at offsets noted at encode.

package import NIOCore

/// A cached response's wire form, with where its ID and TTL fields are. Immutable, shared by readers.
package struct DNSCachedWire: Sendable {
    /// The encoded response, ID and TTLs as stored.
    let bytes: [UInt8]
    /// Where the single question, which starts at offset 12, ends.
    let questionEnd: Int
    /// The offset of every record's TTL field, OPT excepted (its "TTL" holds EDNS flags).
    let ttlOffsets: [Int]

    /// Encodes `message`; nil when it has not exactly one question or cannot be encoded (the message
    /// path then serves it as before).
    init?(encoding message: DNSMessage) {
        guard message.questions.count == 1 else { return nil }
        var writer = DNSWriter()
        writer.recordsTTLOffsets = true
        do { try writer.write(message) } catch { return nil }
        bytes = writer.bytes
        ttlOffsets = writer.ttlOffsets
        // The first name of a message is never compressed: it is written in full at offset 12.
        questionEnd = 12 + message.questions[0].name.wire.count + 4
    }

    /// Whether this answers `query` exactly as the message path would: the same question octets (name
    /// spelling, type, class) and a size within the asker's UDP limit.
    func serves(_ query: DNSQueryView, in buffer: ByteBuffer) -> Bool {
        guard query.questionEnd == questionEnd, bytes.count <= query.udpAnswerLimit else { return false }
        return buffer.withUnsafeReadableBytes { asked in
            bytes.withUnsafeBytes { stored in
                asked[12..<questionEnd].elementsEqual(stored[12..<questionEnd])
            }
        }
    }

    /// The answer in a buffer of its own: the stored octets with `id`, and every TTL set to `ttl` unless
    /// nil (`disable_expire` serves the TTLs as stored).
    package func reply(id: UInt16, ttl: UInt32?) -> ByteBuffer {
        var reply = ByteBufferAllocator().buffer(capacity: bytes.count)
        reply.writeBytes(bytes)
        reply.setInteger(id, at: 0)
        if let ttl {
            for offset in ttlOffsets { reply.setInteger(ttl, at: offset) }
        }
        return reply
    }
}
