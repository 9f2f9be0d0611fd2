// The TCP stream framing of SIP004 and SIP022 after the salt: each chunk is
//   [payload length, 2 bytes big-endian][tag 16] [payload][tag 16]
// sealed with one session subkey and a little-endian counter nonce that advances after every seal
// (two per chunk). SIP022's request and response headers are single sealed blocks of a length the
// reader already knows (`sealBlock` / `openBlock`).
//
// Both types work in place on buffers they own; `ShadowsocksChunkOpener` never traps on peer bytes.
package import NIOCore

/// Seals plaintext into chunks; one per direction per connection, on its loop.
package struct ShadowsocksChunkSealer {
    private let aead: ShadowsocksAEAD
    private var nonce: ShadowsocksNonce
    /// The largest payload in one chunk.
    package let maximumChunk: Int

    /// Seals with `aead` from the zero nonce.
    package init(aead: ShadowsocksAEAD, maximumChunk: Int) {
        self.aead = aead
        self.nonce = ShadowsocksNonce(byteCount: aead.kind.nonceByteCount)
        self.maximumChunk = maximumChunk
    }

    /// Bytes `seal` appends for `count` bytes of plaintext.
    package func sealedLength(_ count: Int) -> Int {
        let chunks = (count + maximumChunk - 1) / maximumChunk
        return count + chunks * (2 + 2 * ShadowsocksAEAD.tagByteCount)
    }

    /// Appends the chunks for all readable bytes of `plaintext` to `output`. Each piece is copied
    /// once into `output` and sealed there in place (reserve `sealedLength` first to avoid regrowth).
    package mutating func seal(_ plaintext: ByteBuffer, into output: inout ByteBuffer) {
        var rest = plaintext
        while rest.readableBytes > 0 {
            let count = min(rest.readableBytes, maximumChunk)
            let lengthStart = output.writerIndex
            output.writeInteger(UInt16(count))
            output.writeRepeatingByte(0, count: ShadowsocksAEAD.tagByteCount)
            sealInPlace(&output, from: lengthStart)
            let payloadStart = output.writerIndex
            output.writeImmutableBuffer(rest.readSlice(length: count)!)
            output.writeRepeatingByte(0, count: ShadowsocksAEAD.tagByteCount)
            sealInPlace(&output, from: payloadStart)
        }
    }

    /// Appends `block`'s bytes sealed as one AEAD message (text then tag).
    package mutating func sealBlock(_ block: ByteBuffer, into output: inout ByteBuffer) {
        let start = output.writerIndex
        output.writeImmutableBuffer(block)
        output.writeRepeatingByte(0, count: ShadowsocksAEAD.tagByteCount)
        sealInPlace(&output, from: start)
    }

    /// Seals `output[start..<writerIndex]` (text then a tag-sized gap) in place; advances the nonce.
    private mutating func sealInPlace(_ output: inout ByteBuffer, from start: Int) {
        let offset = start - output.readerIndex
        let end = output.writerIndex - output.readerIndex
        output.withUnsafeMutableReadableBytes { raw in
            nonce.bytes.withUnsafeBytes { iv in
                aead.seal(nonce: iv, inPlace: UnsafeMutableRawBufferPointer(rebasing: raw[offset..<end]))
            }
        }
        nonce.increment()
    }
}

/// Opens chunks from a byte stream as it arrives; one per connection direction, on its loop.
package struct ShadowsocksChunkOpener {
    private let aead: ShadowsocksAEAD
    private var nonce: ShadowsocksNonce
    /// The largest chunk payload accepted (0x3FFF for SIP004).
    package let maximumChunk: Int
    /// A chunk whose length was opened and whose payload has not fully arrived.
    private var pendingLength: Int?
    /// Where the payloads of one `open` call lie (reused between calls).
    private var ranges: [(offset: Int, count: Int)] = []

    /// Opens with `aead` from the zero nonce.
    package init(aead: ShadowsocksAEAD, maximumChunk: Int) {
        self.aead = aead
        self.nonce = ShadowsocksNonce(byteCount: aead.kind.nonceByteCount)
        self.maximumChunk = maximumChunk
    }

    /// Opens one sealed block of `length` plaintext bytes at the reader index of `buffer`, in place.
    /// Nil (nothing consumed) while fewer than `length + 16` bytes are there.
    package mutating func openBlock(length: Int, from buffer: inout ByteBuffer) throws(ShadowsocksError) -> ByteBuffer? {
        let sealed = length + ShadowsocksAEAD.tagByteCount
        guard buffer.readableBytes >= sealed else { return nil }
        guard openInPlace(&buffer, offset: 0, count: sealed) else { throw .authenticationFailed }
        let plain = buffer.readSlice(length: length)
        buffer.moveReaderIndex(forwardBy: ShadowsocksAEAD.tagByteCount)
        return plain
    }

    /// Opens every complete chunk at the reader index of `buffer` and appends their payloads to
    /// `payloads` (slices of `buffer`); a partial chunk stays for the next call. Throws on a bad tag
    /// or a length above `maximumChunk`; the stream is then unusable.
    package mutating func open(_ buffer: inout ByteBuffer, into payloads: inout [ByteBuffer]) throws(ShadowsocksError) {
        let tag = ShadowsocksAEAD.tagByteCount
        // Pass 1: decrypt in place and note where the payloads are (slicing between decryptions
        // would share the storage and make every later in-place step copy it).
        ranges.removeAll(keepingCapacity: true)
        var offset = 0
        let available = buffer.readableBytes
        var failure: ShadowsocksError?
        while true {
            if pendingLength == nil {
                guard available - offset >= 2 + tag else { break }
                guard openInPlace(&buffer, offset: offset, count: 2 + tag) else { failure = .authenticationFailed; break }
                let length = Int(buffer.getInteger(at: buffer.readerIndex + offset, as: UInt16.self)!)
                offset += 2 + tag
                guard length <= maximumChunk else { failure = .chunkTooLong(length); break }
                pendingLength = length
            }
            guard let length = pendingLength, available - offset >= length + tag else { break }
            guard openInPlace(&buffer, offset: offset, count: length + tag) else { failure = .authenticationFailed; break }
            if length > 0 { ranges.append((offset, length)) }
            offset += length + tag
            pendingLength = nil
        }
        // Pass 2: slices.
        let base = buffer.readerIndex
        for range in ranges { payloads.append(buffer.getSlice(at: base + range.offset, length: range.count)!) }
        buffer.moveReaderIndex(forwardBy: offset)
        if let failure { throw failure }
    }

    /// Verifies and decrypts `count` sealed bytes at `offset` past the reader index; advances the nonce.
    private mutating func openInPlace(_ buffer: inout ByteBuffer, offset: Int, count: Int) -> Bool {
        let ok = buffer.withUnsafeMutableReadableBytes { raw in
            nonce.bytes.withUnsafeBytes { iv in
                aead.open(nonce: iv, inPlace: UnsafeMutableRawBufferPointer(rebasing: raw[offset..<offset + count]))
            }
        }
        nonce.increment()
        return ok
    }
}
