// The body framing after the headers, one direction (sing-vmess CreateWriter / CreateReader):
//
//   security aes-128-gcm / chacha20-poly1305 (always framed):
//     [len u16][data sealed: nonce = count u16 ‖ nonce[2..<12]][padding]
//     len = sealed bytes + padding, XORed with the next SHAKE128(nonce) u16 when chunk masking is on;
//     padding = next SHAKE u16 % 64 random bytes when global padding is on (read before the mask,
//     from the same SHAKE stream).
//   authenticated length: [len − 16 + padding, sealed with KDF(requestKey, "auth_len") and the
//     request nonce, counting its own nonces][data][padding], no masking.
//   none: the same frames with plaintext data when chunk stream is on (UDP), else no framing.
//   aes-128-cfb (legacy): the whole direction under one AES-128-CFB stream (key and nonce of the
//     direction; after a legacy response header the server and client continue its stream); inside,
//     chunk stream frames whose data is fnv1a32(payload) ‖ payload (no authentication).
// ChaCha20-Poly1305 keys are MD5(key) ‖ MD5(MD5(key)). A zero-length chunk ends the stream.
//
// `VMessChunkSealer` writes into buffers we own; `VMessChunkOpener` parses peer bytes in place and
// never traps on them.
package import NIOCore
import COpenSSL

/// What one direction of a body needs: the header's security and option, this direction's key and
/// nonce, and the request's key and nonce (the authenticated-length cipher always uses those).
package struct VMessBodyParameters: Sendable {
    /// The header's security byte and request option.
    package var security: UInt8
    package var option: UInt8
    /// This direction's body key and nonce (16 bytes each).
    package var key: [UInt8]
    package var nonce: [UInt8]
    /// The request's body key and nonce (the authenticated-length cipher's, in both directions).
    package var requestKey: [UInt8]
    package var requestNonce: [UInt8]

    /// All fields as given; `request(_:)` and `response(_:)` build them from a header.
    package init(security: UInt8, option: UInt8, key: [UInt8], nonce: [UInt8], requestKey: [UInt8], requestNonce: [UInt8]) {
        self.security = security
        self.option = option
        self.key = key
        self.nonce = nonce
        self.requestKey = requestKey
        self.requestNonce = requestNonce
    }

    /// The client → server direction of `request`.
    package static func request(_ request: VMessRequest) -> VMessBodyParameters {
        VMessBodyParameters(security: request.security, option: request.option, key: request.bodyKey, nonce: request.bodyNonce,
                            requestKey: request.bodyKey, requestNonce: request.bodyNonce)
    }

    /// The server → client direction of `request`.
    package static func response(_ request: VMessRequest) -> VMessBodyParameters {
        VMessBodyParameters(security: request.security, option: request.option, key: request.responseKey, nonce: request.responseNonce,
                            requestKey: request.bodyKey, requestNonce: request.bodyNonce)
    }
}

/// The per-direction state both ends build the same way.
struct VMessChunkState {
    /// The data AEAD; nil for `none`.
    let aead: VMessAEAD?
    var nonce: [UInt8]
    var count: UInt16 = 0
    /// The authenticated-length AEAD, its nonce and counter.
    let lengthAEAD: VMessAEAD?
    var lengthNonce: [UInt8]
    var lengthCount: UInt16 = 0
    /// SHAKE128(nonce): padding lengths and/or masks.
    var shake: VMessShake128?
    let padding: Bool
    let masking: Bool
    /// False: `none` without chunk stream, bytes pass as they are.
    let framed: Bool
    /// Legacy security: the AES-CFB stream over everything, and the FNV checksum in each chunk.
    var cfb: VMessCFB?
    let checksum: Bool

    init(_ parameters: VMessBodyParameters, sealing: Bool) throws(VMessError) {
        let option = parameters.option
        let kind: VMessAEAD.Kind?
        switch parameters.security {
        case VMessModule.securityAES128GCM: kind = .aes128GCM
        case VMessModule.securityChaCha20Poly1305: kind = .chacha20Poly1305
        case VMessModule.securityNone, VMessModule.securityZero, VMessModule.securityLegacy: kind = nil
        default: throw .unsupportedSecurity(parameters.security)
        }
        checksum = parameters.security == VMessModule.securityLegacy && option & VMessModule.optionChunkStream != 0
        cfb = parameters.security == VMessModule.securityLegacy ? VMessCFB(key: parameters.key, iv: parameters.nonce, encrypting: sealing) : nil
        aead = kind.map { VMessAEAD(kind: $0, key: $0 == .aes128GCM ? parameters.key : VMessCrypto.chachaKey(parameters.key), sealing: sealing) }
        nonce = Array(parameters.nonce.prefix(12))
        framed = kind != nil || option & VMessModule.optionChunkStream != 0
        padding = framed && option & VMessModule.optionGlobalPadding != 0
        // The legacy security has no authenticated length (sing-vmess ignores the option there).
        let authenticatedLength = framed && parameters.security != VMessModule.securityLegacy
            && option & VMessModule.optionAuthenticatedLength != 0
        masking = framed && !authenticatedLength && option & VMessModule.optionChunkMasking != 0
        shake = padding || masking ? VMessShake128(message: parameters.nonce) : nil
        if authenticatedLength {
            let lengthKey = Array(VMessCrypto.kdf(parameters.requestKey, "auth_len").prefix(16))
            // `none` with authenticated length uses AES-128-GCM (NewAes128GcmChunkWriter), as in Go.
            lengthAEAD = kind == .chacha20Poly1305 ? VMessAEAD(kind: .chacha20Poly1305, key: VMessCrypto.chachaKey(lengthKey), sealing: sealing)
                                                   : VMessAEAD(kind: .aes128GCM, key: lengthKey, sealing: sealing)
        } else {
            lengthAEAD = nil
        }
        lengthNonce = Array(parameters.requestNonce.prefix(12))
    }

    /// The next padding length (0 without global padding).
    mutating func nextPadding() -> Int {
        // Mutated in place through the optional: copying it out would copy its arrays per chunk.
        guard padding, let value = shake?.nextUInt16() else { return 0 }
        return Int(value % VMessModule.maxPaddingSize)
    }

    /// The next length mask (0 without masking).
    mutating func nextMask() -> UInt16 {
        guard masking, let value = shake?.nextUInt16() else { return 0 }
        return value
    }

    /// Runs the legacy AES-CFB stream over `count` bytes at `offset` past the reader index, in place.
    func applyStream(_ buffer: inout ByteBuffer, offset: Int, count: Int) {
        guard let cfb, count > 0 else { return }
        buffer.withUnsafeMutableReadableBytes { raw in
            cfb.apply(inPlace: UnsafeMutableRawBufferPointer(rebasing: raw[offset..<offset + count]))
        }
    }

    /// Seals or opens `count` bytes at `offset` past `buffer`'s reader index with `cipher`, the nonce
    /// being `counter` ‖ `base[2..<12]`. Returns the AEAD's verdict (always true when sealing).
    static func apply(_ cipher: VMessAEAD, sealing: Bool, base: inout [UInt8], counter: inout UInt16,
                      buffer: inout ByteBuffer, offset: Int, count: Int) -> Bool {
        base[0] = UInt8(counter >> 8)
        base[1] = UInt8(truncatingIfNeeded: counter)
        counter &+= 1
        return buffer.withUnsafeMutableReadableBytes { raw in
            base.withUnsafeBytes { iv in
                let region = UnsafeMutableRawBufferPointer(rebasing: raw[offset..<offset + count])
                if sealing {
                    cipher.seal(nonce: iv, inPlace: region)
                    return true
                }
                return cipher.open(nonce: iv, inPlace: region)
            }
        }
    }
}

/// Seals a direction's plaintext into chunks; loop-confined.
package struct VMessChunkSealer {
    private var state: VMessChunkState

    /// Throws `unsupportedSecurity` for a security byte we cannot speak.
    package init(_ parameters: VMessBodyParameters) throws(VMessError) {
        state = try VMessChunkState(parameters, sealing: true)
    }

    /// Legacy security after a legacy response header: go on with that header's CFB stream.
    package mutating func continueStream(_ cfb: VMessCFB) {
        if state.cfb != nil { state.cfb = cfb }
    }

    /// Upper bound of the bytes `seal` appends for `count` bytes.
    package func sealedLength(_ count: Int) -> Int {
        let chunks = max(1, (count + VMessModule.writeChunkSize - 1) / VMessModule.writeChunkSize)
        return count + chunks * (18 + 16 + Int(VMessModule.maxPaddingSize))
    }

    /// Appends `plaintext` as chunks of at most `WriteChunkSize` bytes (stream), or as exactly one
    /// chunk (`asOnePacket`, UDP: false when it does not fit a chunk; nothing is written then).
    @discardableResult
    package mutating func seal(_ plaintext: ByteBuffer, into output: inout ByteBuffer, asOnePacket: Bool = false) -> Bool {
        let start = output.writerIndex - output.readerIndex
        defer { state.applyStream(&output, offset: start, count: output.writerIndex - output.readerIndex - start) }
        guard state.framed else {
            output.writeImmutableBuffer(plaintext)
            return true
        }
        if asOnePacket {
            guard plaintext.readableBytes + 20 + Int(VMessModule.maxPaddingSize) <= Int(UInt16.max) else { return false }
            sealChunk(plaintext, into: &output)
            return true
        }
        var rest = plaintext
        while rest.readableBytes > 0 {
            sealChunk(rest.readSlice(length: min(rest.readableBytes, VMessModule.writeChunkSize))!, into: &output)
        }
        return true
    }

    private mutating func sealChunk(_ plaintext: ByteBuffer, into output: inout ByteBuffer) {
        let dataLength = plaintext.readableBytes + (state.aead == nil ? 0 : 16) + (state.checksum ? 4 : 0)
        let padding = state.nextPadding()
        if let lengthAEAD = state.lengthAEAD {
            let start = output.writerIndex - output.readerIndex
            output.writeInteger(UInt16(truncatingIfNeeded: dataLength + padding - 16))
            output.writeRepeatingByte(0, count: 16)
            _ = VMessChunkState.apply(lengthAEAD, sealing: true, base: &state.lengthNonce, counter: &state.lengthCount,
                                      buffer: &output, offset: start, count: 18)
        } else {
            output.writeInteger(UInt16(truncatingIfNeeded: dataLength + padding) ^ state.nextMask())
        }
        let start = output.writerIndex - output.readerIndex
        if state.checksum { output.writeInteger(VMessCrypto.fnv1a32(plaintext.readableBytesView)) }
        output.writeImmutableBuffer(plaintext)
        if let aead = state.aead {
            output.writeRepeatingByte(0, count: 16)
            _ = VMessChunkState.apply(aead, sealing: true, base: &state.nonce, counter: &state.count,
                                      buffer: &output, offset: start, count: dataLength)
        }
        if padding > 0 {
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: padding) { raw in
                precondition(RAND_bytes(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(padding)) == 1, "RAND_bytes failed")
                return padding
            }
        }
    }
}

/// Opens a direction's chunks as bytes arrive; loop-confined.
package struct VMessChunkOpener {
    private var state: VMessChunkState
    /// A chunk whose length was read and whose data (and padding) has not all arrived.
    private var pending: (data: Int, padding: Int)?
    private var ranges: [(offset: Int, count: Int)] = []
    /// True once the zero-length chunk arrived: the peer's body ended.
    package private(set) var ended = false
    /// Legacy security: how many readable bytes were already run through the CFB stream (what a
    /// previous call left, a partial chunk). Callers only append between calls.
    private var decrypted = 0

    /// Throws `unsupportedSecurity` for a security byte we cannot speak.
    package init(_ parameters: VMessBodyParameters) throws(VMessError) {
        state = try VMessChunkState(parameters, sealing: false)
    }

    /// Legacy security after a legacy response header: go on with that header's CFB stream.
    package mutating func continueStream(_ cfb: VMessCFB) {
        if state.cfb != nil { state.cfb = cfb }
    }

    /// Opens every complete chunk at the reader index of `buffer` and appends the payloads (slices
    /// of `buffer`, one per chunk with data) to `payloads`; a partial chunk stays. Throws on a bad
    /// tag or length; the stream is then unusable. Bytes after the end chunk are ignored.
    package mutating func open(_ buffer: inout ByteBuffer, into payloads: inout [ByteBuffer]) throws(VMessError) {
        guard !ended else {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return
        }
        state.applyStream(&buffer, offset: decrypted, count: buffer.readableBytes - decrypted)
        guard state.framed else {
            if buffer.readableBytes > 0 { payloads.append(buffer.readSlice(length: buffer.readableBytes)!) }
            decrypted = 0
            return
        }
        defer { decrypted = buffer.readableBytes }
        ranges.removeAll(keepingCapacity: true)
        var offset = 0
        let available = buffer.readableBytes
        var failure: VMessError?
        while !ended {
            if pending == nil {
                let length: Int
                let padding: Int
                if let lengthAEAD = state.lengthAEAD {
                    guard available - offset >= 18 else { break }
                    guard VMessChunkState.apply(lengthAEAD, sealing: false, base: &state.lengthNonce, counter: &state.lengthCount,
                                                buffer: &buffer, offset: offset, count: 18) else {
                        failure = .authenticationFailed
                        break
                    }
                    let field = buffer.getInteger(at: buffer.readerIndex + offset, as: UInt16.self)!
                    length = Int(field &+ 16)
                    padding = state.nextPadding()
                    offset += 18
                } else {
                    guard available - offset >= 2 else { break }
                    let field = buffer.getInteger(at: buffer.readerIndex + offset, as: UInt16.self)!
                    padding = state.nextPadding()
                    length = Int(field ^ state.nextMask())
                    offset += 2
                }
                let data = length - padding
                guard data >= 0 else { failure = .badLengthChunk(length: length, padding: padding); break }
                if data == 0 {
                    ended = true
                    break
                }
                guard state.aead == nil || data >= 16 else { failure = .badLengthChunk(length: length, padding: padding); break }
                pending = (data, padding)
            }
            guard let (data, padding) = pending, available - offset >= data + padding else { break }
            if let aead = state.aead {
                guard VMessChunkState.apply(aead, sealing: false, base: &state.nonce, counter: &state.count,
                                            buffer: &buffer, offset: offset, count: data) else {
                    failure = .authenticationFailed
                    break
                }
                if data > 16 { ranges.append((offset, data - 16)) }
            } else if state.checksum {
                guard data >= 4 else { failure = .badLengthChunk(length: data, padding: padding); break }
                let base = buffer.readerIndex + offset
                let expected = buffer.getInteger(at: base, as: UInt32.self)!
                guard buffer.withUnsafeReadableBytes({ VMessCrypto.fnv1a32($0[(offset + 4)..<(offset + data)]) }) == expected else {
                    failure = .invalidChecksum
                    break
                }
                if data > 4 { ranges.append((offset + 4, data - 4)) }
            } else {
                ranges.append((offset, data))
            }
            offset += data + padding
            pending = nil
        }
        let base = buffer.readerIndex
        for range in ranges { payloads.append(buffer.getSlice(at: base + range.offset, length: range.count)!) }
        buffer.moveReaderIndex(forwardBy: ended ? available : offset)
        if let failure { throw failure }
    }
}
