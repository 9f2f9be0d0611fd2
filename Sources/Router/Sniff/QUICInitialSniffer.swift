// QUICInitialSniffer: SNI and client from a QUIC Initial packet (RFC 9000 §17.2.2, RFC 9001 §5).
//
// 1. Parse the long header: version (v1, v2 RFC 9369, draft-29), connection IDs, token, length.
// 2. Derive the client Initial secrets from the destination connection ID and the version's salt.
// 3. Remove header protection (AES-128-ECB mask over the 16-byte sample) to learn the packet number.
// 4. Open the payload (AES-128-GCM, nonce = IV ⊕ packet number, AAD = the unprotected header).
// 5. Walk the frames (PADDING, PING, ACK, CRYPTO, CONNECTION_CLOSE; anything else: not an Initial a
//    client sends) and collect CRYPTO fragments with the ones earlier packets left in the state.
// 6. Reassemble from offset 0; a ClientHello still short asks for the next packet (Chrome spreads
//    it over two Initials); a whole one gives the SNI and, from the frame layout and fingerprint,
//    the client — the same rules as Go 1.12's sniff.QUICClientHello.

enum QUICInitialSniffer {
    static let version1: UInt32 = 0x0000_0001
    static let version2: UInt32 = 0x6B33_43CF
    static let versionDraft29: UInt32 = 0xFF00_001D
    /// RFC 9001 §5.2 initial_salt.
    static let saltV1: [UInt8] = [0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
                                  0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a]
    /// RFC 9369 §3.3.1.
    static let saltV2: [UInt8] = [0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
                                  0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9]
    /// draft-ietf-quic-tls-29 §5.2.
    static let saltDraft29: [UInt8] = [0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97,
                                       0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99]
    /// Bound on buffered CRYPTO bytes across packets (a ClientHello is a few KiB).
    static let maxCryptoBytes = 64 * 1024

    static let framePadding: UInt8 = 0x00, framePing: UInt8 = 0x01, frameAck: UInt8 = 0x02,
               frameAckECN: UInt8 = 0x03, frameCrypto: UInt8 = 0x06, frameConnectionClose: UInt8 = 0x1C

    static func sniff(_ packet: ArraySlice<UInt8>, state: inout PacketSniffState) -> SniffOutcome {
        // Go sets the client to chromium when it first asks for more, and its client rules only run
        // while the client is unset: a ClientHello that needed several Initials stays chromium.
        let wasFragmented = state.quicNeedsMore
        guard let plain = decryptInitial(packet) else {
            state.quicNeedsMore = false
            return .notThisProtocol
        }
        // 5. Frames.
        var frames: [UInt8] = []
        var fragments = state.cryptoFragments
        var reader = ByteReader(plain[...])
        while let type = reader.u8() {
            frames.append(type)
            switch type {
            case framePadding, framePing:
                continue
            case frameAck, frameAckECN:
                guard reader.varint() != nil, reader.varint() != nil, let ranges = reader.varint(), ranges < 1 << 16,
                      reader.varint() != nil else { return .notThisProtocol }
                for _ in 0..<ranges where reader.varint() == nil || reader.varint() == nil { return .notThisProtocol }
                if type == frameAckECN {
                    guard reader.varint() != nil, reader.varint() != nil, reader.varint() != nil else { return .notThisProtocol }
                }
            case frameCrypto:
                guard let offset = reader.varint(), let length = reader.varint(), length <= UInt64(reader.remaining),
                      offset < UInt64(maxCryptoBytes), let data = reader.bytes(Int(length)) else { return .notThisProtocol }
                fragments.append((Int(offset), Array(data)))
            case frameConnectionClose:
                guard reader.varint() != nil, reader.varint() != nil, let length = reader.varint(),
                      length <= UInt64(reader.remaining), reader.skip(Int(length)) else { return .notThisProtocol }
            default:
                return .notThisProtocol
            }
        }
        // 6. Reassemble the contiguous prefix of the CRYPTO stream.
        var stream: [UInt8] = []
        var progressed = true
        while progressed {
            progressed = false
            for fragment in fragments where fragment.offset <= stream.count && fragment.offset + fragment.bytes.count > stream.count {
                stream.append(contentsOf: fragment.bytes[(stream.count - fragment.offset)...])
                progressed = true
            }
        }
        let total = fragments.reduce(0) { $0 + $1.bytes.count }
        let declared = stream.count >= 4 ? 4 + (Int(stream[1]) << 16 | Int(stream[2]) << 8 | Int(stream[3])) : Int.max
        guard stream.count >= declared, let hello = ClientHello(handshake: stream[..<declared]) else {
            if stream.count >= declared || total > maxCryptoBytes || (!stream.isEmpty && stream[0] != 1) {
                state = PacketSniffState()
                return .found(protocol: "quic", domain: nil, client: nil)
            }
            // Go reports chromium while waiting for the rest of a split ClientHello.
            state.cryptoFragments = fragments
            state.quicNeedsMore = true
            return .needMore
        }
        state = PacketSniffState()
        return .found(protocol: "quic", domain: hello.serverName,
                      client: wasFragmented ? "chromium" : client(frames: frames, hello: hello))
    }

    /// Go 1.12's client rules: one frame → firefox; CRYPTO first then only padding → safari when the
    /// fingerprint matches Safari's; CRYPTO last after only padding → quic-go; several CRYPTO frames
    /// or a PING → chromium; else unknown. (Go's uQUIC fingerprint blacklist, which relabels some
    /// chromium-shaped packets quic-go, is not reproduced.)
    static func client(frames: [UInt8], hello: ClientHello) -> String {
        if frames.count == 1 { return "firefox" }
        if frames.first == frameCrypto, frames.dropFirst().allSatisfy({ $0 == 0 }) {
            if hello.versions.count == 2, hello.versions[0] & 0x0F0F == 0x0A0A,
               hello.curves.count == 5, hello.curves[0] & 0x0F0F == 0x0A0A { return "safari" }
            if hello.cipherSuites == [0x1302], hello.curves == [0x001D], hello.signatureAlgorithms == [0x0403] { return "safari" }
        }
        if frames.last == frameCrypto, frames.dropLast().allSatisfy({ $0 == 0 }) { return "quic-go" }
        if frames.filter({ $0 == frameCrypto }).count > 1 || frames.contains(framePing) { return "chromium" }
        return "unknown"
    }

    /// Steps 1–4: the decrypted payload of a client Initial, or nil.
    static func decryptInitial(_ packet: ArraySlice<UInt8>) -> [UInt8]? {
        var reader = ByteReader(packet)
        guard let first = reader.u8(), first & 0x40 != 0, let version = reader.u32() else { return nil }
        guard version == version1 || version == version2 || version == versionDraft29 else { return nil }
        let packetType = (first & 0x30) >> 4
        // Initial is type 0 in v1 and draft-29, type 1 in v2 (RFC 9369 §3.2); Go's check, verbatim.
        if packetType == 0 && version == version2 || packetType == 2 && version != version2 || packetType > 2 { return nil }
        guard let dcidLength = reader.u8(), (1...20).contains(dcidLength), let dcid = reader.bytes(Int(dcidLength)),
              let scidLength = reader.u8(), reader.skip(Int(scidLength)),
              let tokenLength = reader.varint(), tokenLength <= UInt64(reader.remaining), reader.skip(Int(tokenLength)),
              let payloadLength = reader.varint(), payloadLength <= UInt64(reader.remaining) else { return nil }
        let headerLength = reader.index - packet.startIndex
        let end = headerLength + Int(payloadLength)
        // The sample starts 4 bytes after the packet number's start (RFC 9001 §5.4.2).
        guard payloadLength >= 20 + 16 - 4 + 4, end <= packet.count else { return nil }
        let bytes = Array(packet)
        let salt = version == version1 ? saltV1 : version == version2 ? saltV2 : saltDraft29
        let v2 = version == version2
        let initial = QUICCrypto.extract(salt: salt, ikm: Array(dcid))
        let secret = QUICCrypto.expandLabel(initial, "client in", length: 32)
        let hpKey = QUICCrypto.expandLabel(secret, v2 ? "quicv2 hp" : "quic hp", length: 16)
        guard let mask = QUICCrypto.aesBlock(key: hpKey, bytes[(headerLength + 4)..<(headerLength + 20)]) else { return nil }
        var header = Array(bytes[..<(headerLength + 4)])
        header[0] ^= mask[0] & 0x0F
        let pnLength = Int(header[0] & 0x03) + 1
        var packetNumber: UInt64 = 0
        for i in 0..<pnLength {
            header[headerLength + i] ^= mask[1 + i]
            packetNumber = packetNumber << 8 | UInt64(header[headerLength + i])
        }
        let key = QUICCrypto.expandLabel(secret, v2 ? "quicv2 key" : "quic key", length: 16)
        var nonce = QUICCrypto.expandLabel(secret, v2 ? "quicv2 iv" : "quic iv", length: 12)
        for i in 0..<8 { nonce[11 - i] ^= UInt8(truncatingIfNeeded: packetNumber >> (8 * UInt64(i))) }
        let aad = header[..<(headerLength + pnLength)]
        return QUICCrypto.open(key: key, nonce: nonce, aad: aad, sealed: bytes[(headerLength + pnLength)..<end])
    }
}
