// UDP packets of every method (one datagram = one packet):
//   none:    address ‖ payload
//   SIP004:  salt ‖ AEAD(subkey(salt), nonce 0)[address ‖ payload]
//   SIP022 AES: AES-ECB(PSK)[session id u64 ‖ packet id u64] ‖
//               AEAD(session key(session id), nonce = header[4..<16])[body]
//   SIP022 ChaCha: nonce(24) ‖ XChaCha20-Poly1305(PSK)[session id ‖ packet id ‖ body]
//   body, client → server: type 0 ‖ time u64 ‖ padding length u16 ‖ padding ‖ address ‖ payload
//   body, server → client: type 1 ‖ time u64 ‖ client session id u64 ‖ padding length u16 ‖ padding ‖
//                          address ‖ payload
// Packets to port 53 shorter than 900 bytes are padded, as sing-shadowsocks does.
//
// Opening never traps: a short, forged or replayed packet throws and is dropped by the caller.
package import Adapter
package import NIOCore

/// Go's sliding window of seen packet ids (sing-shadowsocks `SlidingWindow`: 128 blocks of 64 bits;
/// ids more than 8128 behind the newest are refused).
package struct ShadowsocksSlidingWindow {
    private static let blockBits: UInt64 = 64
    private static let ringBlocks: UInt64 = 128
    private static let size: UInt64 = (ringBlocks - 1) * blockBits
    private var last: UInt64 = 0
    private var ring = [UInt64](repeating: 0, count: Int(ringBlocks))

    /// An empty window.
    package init() {}

    /// True when `counter` was not seen and is not too old.
    package func check(_ counter: UInt64) -> Bool {
        if counter > last { return true }
        if last - counter > Self.size { return false }
        let block = Int((counter / Self.blockBits) % Self.ringBlocks)
        return ring[block] >> (counter % Self.blockBits) & 1 == 0
    }

    /// Records `counter` (call `check` first).
    package mutating func add(_ counter: UInt64) {
        let blockIndex = counter / Self.blockBits
        if counter > last {
            var lastBlock = last / Self.blockBits
            let diff = min(blockIndex - lastBlock, Self.ringBlocks)
            for _ in 0..<diff {
                lastBlock = (lastBlock + 1) % Self.ringBlocks
                ring[Int(lastBlock)] = 0
            }
            last = counter
        }
        ring[Int(blockIndex % Self.ringBlocks)] |= 1 << (counter % Self.blockBits)
    }
}

/// Our side of a SIP022 UDP session: our session id, the next packet id, the AEAD for our packets
/// (AES variants). Loop-confined to its socket's loop.
package final class ShadowsocksUDPSender {
    /// Our random session id.
    package let sessionID: UInt64
    /// The id the next packet gets (from 0).
    package private(set) var nextPacketID: UInt64 = 0
    let sealer: ShadowsocksAEAD?
    /// AES variants: encrypts our separate header (a client's first PSK; a server's user PSK).
    let headerBlock: ShadowsocksAESBlock?
    /// A client's identity headers: one block cipher per PSK before the last.
    let identityBlocks: [ShadowsocksAESBlock]
    let identityHashes: [[UInt8]]

    /// A client's session (`psk` nil) or a server's session answering a client whose session keys
    /// come from `psk` (the user's PSK on a multi-user inbound; the method's key otherwise).
    package init(method: ShadowsocksMethod, psk: [UInt8]? = nil) {
        var id: UInt64 = 0
        withUnsafeMutableBytes(of: &id) { ShadowsocksKDF.fillRandom($0) }
        sessionID = id
        if method.family == .blake3, let kind = method.aead, kind != .chacha20Poly1305 {
            let sessionPSK = psk ?? method.key
            sealer = ShadowsocksAEAD(kind: kind, key: ShadowsocksPacketCodec.udpSessionKey(sessionPSK, sessionID: id), sealing: true)
            headerBlock = ShadowsocksAESBlock(key: psk ?? method.udpHeaderKey, encrypting: true)
            identityBlocks = psk == nil ? method.identityKeys.map { ShadowsocksAESBlock(key: $0, encrypting: true) } : []
            identityHashes = psk == nil ? method.identityHashes : []
        } else {
            sealer = nil
            headerBlock = nil
            identityBlocks = []
            identityHashes = []
        }
    }

    func takePacketID() -> UInt64 {
        defer { nextPacketID &+= 1 }
        return nextPacketID
    }
}

/// What a SIP022 packet's header says before its body is trusted.
package struct SIP022PacketHeader: Sendable, Equatable {
    /// The sender's session id.
    package var sessionID: UInt64
    /// The packet's id within that session.
    package var packetID: UInt64
    /// Where the body starts after the ids (past a multi-user client's identity header).
    package var bodyOffset: Int = 16
    /// The user a multi-user inbound recognised.
    package var user: ShadowsocksServerUser?
}

/// A packet opened: where it is for (client → server) or from (server → client), and its payload.
package struct ShadowsocksOpenedPacket {
    /// SIP022: the ids the packet carried.
    package var header: SIP022PacketHeader?
    /// Server → client only: the session id the server answers.
    package var clientSessionID: UInt64?
    /// The SOCKS address in the packet.
    package var address: Destination
    /// The payload after the headers (a slice of the datagram).
    package var payload: ByteBuffer
    /// Legacy multi-user: the user whose key opened the packet.
    package var user: ShadowsocksServerUser?
}

/// Seals and opens datagrams for one method and role. Holds the PSK-keyed contexts (AES-ECB header
/// cipher, XChaCha20 packet AEAD), so it is loop-confined like its socket.
package final class ShadowsocksPacketCodec {
    /// The method and keys.
    package let method: ShadowsocksMethod
    /// True on the inbound: we read client packets (type 0) and write server packets (type 1).
    package let isServer: Bool
    private let clock: ShadowsocksClock
    private let blockDecrypt: ShadowsocksAESBlock?
    /// A multi-user inbound's users (identity headers on SIP022 AES, trial keys on legacy).
    private let users: ShadowsocksUserTable?
    private let pskSealer: ShadowsocksAEAD?
    private let pskOpener: ShadowsocksAEAD?

    /// Keys the PSK contexts once; `users` only on a multi-user inbound.
    package init(method: ShadowsocksMethod, isServer: Bool, users: ShadowsocksUserTable? = nil,
                 clock: @escaping ShadowsocksClock = shadowsocksSystemClock) {
        self.method = method
        self.isServer = isServer
        self.users = users
        self.clock = clock
        if method.family == .blake3, let kind = method.aead {
            if kind == .chacha20Poly1305 {
                pskSealer = ShadowsocksAEAD(kind: .xchacha20Poly1305, key: method.key, sealing: true)
                pskOpener = ShadowsocksAEAD(kind: .xchacha20Poly1305, key: method.key, sealing: false)
                blockDecrypt = nil
            } else {
                // Headers we read: a server's under its (identity) PSK, a client's under its last PSK.
                blockDecrypt = ShadowsocksAESBlock(key: method.key, encrypting: false)
                pskSealer = nil
                pskOpener = nil
            }
        } else {
            blockDecrypt = nil
            pskSealer = nil
            pskOpener = nil
        }
    }

    /// The SIP022 AES session key for a session id (BLAKE3 derive_key over PSK ‖ id, big-endian).
    static func udpSessionKey(_ psk: [UInt8], sessionID: UInt64) -> [UInt8] {
        let id = (0..<8).map { UInt8(truncatingIfNeeded: sessionID >> (56 - 8 * UInt64($0))) }
        return ShadowsocksKDF.sessionKey(psk: psk, salt: id, byteCount: psk.count)
    }

    /// The opening AEAD for a remote session's packets (AES variants; nil for ChaCha, which uses the
    /// PSK). `psk`: the user's key on a multi-user inbound.
    package func remoteOpener(sessionID: UInt64, psk: [UInt8]? = nil) -> ShadowsocksAEAD? {
        guard method.family == .blake3, let kind = method.aead, kind != .chacha20Poly1305 else { return nil }
        return ShadowsocksAEAD(kind: kind, key: Self.udpSessionKey(psk ?? method.key, sessionID: sessionID), sealing: false)
    }

    private static func padding(for payload: ByteBuffer, to address: Destination) -> Int {
        guard address.port == 53, payload.readableBytes < SIP022.maxPaddingLength else { return 0 }
        return ShadowsocksKDF.randomInt(in: 1...(SIP022.maxPaddingLength - payload.readableBytes))
    }

    // MARK: Seal

    /// One datagram carrying `payload` with `address` (the destination from a client, the origin
    /// from a server). SIP022 needs our `sender`; a server also names the client's session.
    /// `legacyKey`: a multi-user inbound answers with the user's master key.
    package func seal(_ payload: ByteBuffer, address: Destination, sender: ShadowsocksUDPSender?, clientSessionID: UInt64 = 0,
                      legacyKey: [UInt8]? = nil) -> ByteBuffer {
        var out = ByteBuffer()
        let tag = ShadowsocksAEAD.tagByteCount
        switch method.family {
        case .none:
            out.reserveCapacity(address.shadowsocksAddressLength + payload.readableBytes)
            address.writeShadowsocks(to: &out)
            out.writeImmutableBuffer(payload)
        case .stream:
            let salt = ShadowsocksKDF.random(method.saltByteCount)
            out.reserveCapacity(salt.count + address.shadowsocksAddressLength + payload.readableBytes)
            out.writeBytes(salt)
            address.writeShadowsocks(to: &out)
            out.writeImmutableBuffer(payload)
            ShadowsocksStreamCipher(kind: method.stream!, key: method.key, salt: salt, encrypting: true).apply(to: &out, from: salt.count)
        case .legacy:
            let salt = ShadowsocksKDF.random(method.saltByteCount)
            out.reserveCapacity(salt.count + address.shadowsocksAddressLength + payload.readableBytes + tag)
            out.writeBytes(salt)
            address.writeShadowsocks(to: &out)
            out.writeImmutableBuffer(payload)
            out.writeRepeatingByte(0, count: tag)
            let aead = ShadowsocksAEAD(kind: method.aead!,
                                       key: ShadowsocksKDF.legacySubkey(masterKey: legacyKey ?? method.key, salt: salt, byteCount: method.key.count),
                                       sealing: true)
            let nonce = [UInt8](repeating: 0, count: aead.kind.nonceByteCount)
            let start = salt.count
            out.withUnsafeMutableReadableBytes { raw in
                nonce.withUnsafeBytes { aead.seal(nonce: $0, inPlace: UnsafeMutableRawBufferPointer(rebasing: raw[start...])) }
            }
        case .blake3:
            guard let sender else { preconditionFailure("SIP022 packets need a session") }
            let padding = Self.padding(for: payload, to: address)
            let isChaCha = method.aead == .chacha20Poly1305
            out.reserveCapacity(24 + 16 + 1 + 8 + 8 + 2 + padding + address.shadowsocksAddressLength + payload.readableBytes + tag)
            if isChaCha {
                out.writeWithUnsafeMutableBytes(minimumWritableBytes: 24) { raw in
                    ShadowsocksKDF.fillRandom(UnsafeMutableRawBufferPointer(rebasing: raw[0..<24]))
                    return 24
                }
            }
            out.writeInteger(sender.sessionID)
            out.writeInteger(sender.takePacketID())
            // Identity headers (AES, several PSKs), filled in below from the plain header.
            let identityCount = sender.identityBlocks.count
            out.writeRepeatingByte(0, count: 16 * identityCount)
            out.writeInteger(isServer ? SIP022.headerTypeServer : SIP022.headerTypeClient)
            out.writeInteger(UInt64(clamping: clock()))
            if isServer { out.writeInteger(clientSessionID) }
            out.writeInteger(UInt16(padding))
            if padding > 0 { out.writeRepeatingByte(0, count: padding) }
            address.writeShadowsocks(to: &out)
            out.writeImmutableBuffer(payload)
            out.writeRepeatingByte(0, count: tag)
            if isChaCha {
                let sealer = pskSealer!
                out.withUnsafeMutableReadableBytes { raw in
                    let nonce = UnsafeRawBufferPointer(rebasing: raw[0..<24])
                    sealer.seal(nonce: nonce, inPlace: UnsafeMutableRawBufferPointer(rebasing: raw[24...]))
                }
            } else {
                let sealer = sender.sealer!, block = sender.headerBlock!
                let bodyOffset = 16 + 16 * identityCount
                out.withUnsafeMutableReadableBytes { raw in
                    for index in 0..<identityCount {
                        // Identity i: the next PSK's hash XOR the plain header, under PSK i.
                        let start = 16 + 16 * index
                        for byte in 0..<16 { raw[start + byte] = sender.identityHashes[index][byte] ^ raw[byte] }
                        sender.identityBlocks[index].apply(raw.baseAddress! + start)
                    }
                    sealer.seal(nonce: UnsafeRawBufferPointer(rebasing: raw[4..<16]),
                                inPlace: UnsafeMutableRawBufferPointer(rebasing: raw[bodyOffset...]))
                    block.apply(raw.baseAddress!)
                }
            }
        }
        return out
    }

    // MARK: Open

    /// Opens a none or SIP004 packet. A multi-user inbound tries each user's key in turn (Go's order)
    /// and reports the one that opened it.
    package func openLegacy(_ datagram: ByteBuffer) throws(ShadowsocksError) -> ShadowsocksOpenedPacket {
        var packet = datagram
        var user: ShadowsocksServerUser?
        if method.family == .stream {
            guard let salt = packet.readBytes(length: method.saltByteCount) else { throw .packetTooShort }
            ShadowsocksStreamCipher(kind: method.stream!, key: method.key, salt: salt, encrypting: false).apply(to: &packet)
        }
        if method.family == .legacy {
            let tag = ShadowsocksAEAD.tagByteCount
            guard packet.readableBytes >= method.saltByteCount + tag, let salt = packet.readBytes(length: method.saltByteCount) else {
                throw .packetTooShort
            }
            let candidates: [ShadowsocksServerUser?] = users.map { $0.users.map { Optional($0) } } ?? [nil]
            var opened: ByteBuffer?
            for candidate in candidates {
                var trial = packet
                let aead = ShadowsocksAEAD(kind: method.aead!,
                                           key: ShadowsocksKDF.legacySubkey(masterKey: candidate?.key ?? method.key, salt: salt,
                                                                            byteCount: method.key.count),
                                           sealing: false)
                let nonce = [UInt8](repeating: 0, count: aead.kind.nonceByteCount)
                let ok = trial.withUnsafeMutableReadableBytes { raw in
                    nonce.withUnsafeBytes { aead.open(nonce: $0, inPlace: raw) }
                }
                if ok {
                    trial.moveWriterIndex(to: trial.writerIndex - tag)
                    opened = trial
                    user = candidate
                    break
                }
            }
            guard let opened else { throw .authenticationFailed }
            packet = opened
        }
        guard let address = try Destination.readShadowsocks(from: &packet) else { throw .badAddress }
        var result = ShadowsocksOpenedPacket(header: nil, address: address, payload: packet)
        result.user = user
        return result
    }

    /// First step for SIP022: reveals the session and packet ids. AES: decrypts the separate header in
    /// place (the body is still sealed); ChaCha: opens the whole packet with the PSK. Afterwards
    /// `datagram` starts at the ids.
    package func openHeader(_ datagram: inout ByteBuffer) throws(ShadowsocksError) -> SIP022PacketHeader {
        let tag = ShadowsocksAEAD.tagByteCount
        // sing's PacketMinimalHeaderSize: ids, type, time, padding length, a little address.
        let minimum = 30
        if method.aead == .chacha20Poly1305 {
            guard datagram.readableBytes >= 24 + minimum, let opener = pskOpener else { throw .packetTooShort }
            let ok = datagram.withUnsafeMutableReadableBytes { raw in
                opener.open(nonce: UnsafeRawBufferPointer(rebasing: raw[0..<24]), inPlace: UnsafeMutableRawBufferPointer(rebasing: raw[24...]))
            }
            guard ok else { throw .packetHeaderAuthenticationFailed }
            datagram.moveReaderIndex(forwardBy: 24)
            datagram.moveWriterIndex(to: datagram.writerIndex - tag)
        } else {
            let identityLength = users == nil ? 0 : 16
            guard datagram.readableBytes >= minimum + identityLength, let block = blockDecrypt else { throw .packetTooShort }
            var identity = [UInt8](repeating: 0, count: identityLength)
            datagram.withUnsafeMutableReadableBytes { raw in
                block.apply(raw.baseAddress!)
                if identityLength > 0 {
                    // The identity header: the user's PSK hash XOR the plain header, under our PSK.
                    block.apply(raw.baseAddress! + 16)
                    for byte in 0..<16 { identity[byte] = raw[16 + byte] ^ raw[byte] }
                }
            }
            if let users {
                guard let user = users.user(identity: identity) else { throw .invalidRequest }
                var header = try Self.ids(datagram)
                header.bodyOffset = 32
                header.user = user
                return header
            }
        }
        return try Self.ids(datagram)
    }

    private static func ids(_ datagram: ByteBuffer) throws(ShadowsocksError) -> SIP022PacketHeader {
        guard let sessionID = datagram.getInteger(at: datagram.readerIndex, as: UInt64.self),
              let packetID = datagram.getInteger(at: datagram.readerIndex + 8, as: UInt64.self) else { throw .packetTooShort }
        return SIP022PacketHeader(sessionID: sessionID, packetID: packetID)
    }

    /// Second step for SIP022: verifies the body (AES, with the remote session's `opener`), checks
    /// type and time, and reads the address and payload. `datagram` is what `openHeader` left.
    package func openBody(_ datagram: ByteBuffer, header: SIP022PacketHeader, opener: ShadowsocksAEAD?) throws(ShadowsocksError) -> ShadowsocksOpenedPacket {
        var packet = datagram
        if method.aead != .chacha20Poly1305 {
            guard let opener else { throw .authenticationFailed }
            let bodyOffset = header.bodyOffset
            guard packet.readableBytes >= bodyOffset + ShadowsocksAEAD.tagByteCount else { throw .packetTooShort }
            let ok = packet.withUnsafeMutableReadableBytes { raw in
                opener.open(nonce: UnsafeRawBufferPointer(rebasing: raw[4..<16]), inPlace: UnsafeMutableRawBufferPointer(rebasing: raw[bodyOffset...]))
            }
            guard ok else { throw .packetAuthenticationFailed }
            packet.moveWriterIndex(to: packet.writerIndex - ShadowsocksAEAD.tagByteCount)
        }
        packet.moveReaderIndex(forwardBy: header.bodyOffset)
        let expected = isServer ? SIP022.headerTypeClient : SIP022.headerTypeServer
        guard let type = packet.readInteger(as: UInt8.self) else { throw .packetTooShort }
        guard type == expected else { throw .badHeaderType(expected: expected, got: type) }
        guard let epoch = packet.readInteger(as: UInt64.self) else { throw .packetTooShort }
        let diff = abs(clock() - Int64(truncatingIfNeeded: epoch))
        guard diff <= SIP022.maxTimeDifference else { throw .badTimestamp(received: epoch, diff: diff) }
        var clientSessionID: UInt64?
        if !isServer {
            guard let id = packet.readInteger(as: UInt64.self) else { throw .packetTooShort }
            clientSessionID = id
        }
        guard let padding = packet.readInteger(as: UInt16.self), packet.readableBytes >= Int(padding) else { throw .packetTooShort }
        packet.moveReaderIndex(forwardBy: Int(padding))
        guard let address = try Destination.readShadowsocks(from: &packet) else { throw .badAddress }
        return ShadowsocksOpenedPacket(header: header, clientSessionID: clientSessionID, address: address, payload: packet)
    }
}
