// One TCP connection's protocol state, client side and server side, without I/O.
//
// Client (SIP004): salt ‖ chunks(address ‖ payload …).   Server reply: salt ‖ chunks(payload …).
// Client (SIP022): salt ‖ block(type 0, time u64, length u16) ‖ block(address, padding length u16,
//   padding, payload) ‖ chunks.  Server reply: salt ‖ block(type 1, time, request salt, length u16) ‖
//   block(payload) ‖ chunks. Session keys: BLAKE3 derive_key over PSK ‖ salt.
// `none`: address ‖ payload, then the plain stream both ways.
//
// The handlers own these values on their channel's loop; every method that reads peer bytes throws
// `ShadowsocksError` instead of trapping.
package import Adapter
package import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Unix time in seconds, for SIP022 headers (a parameter so tests can skew it).
package typealias ShadowsocksClock = @Sendable () -> Int64

/// The system clock.
package let shadowsocksSystemClock: ShadowsocksClock = { Int64(time(nil)) }

/// SIP022 constants (sing-shadowsocks `shadowaead_2022`).
package enum SIP022 {
    /// Header type of client → server messages.
    package static let headerTypeClient: UInt8 = 0
    /// Header type of server → client messages.
    package static let headerTypeServer: UInt8 = 1
    /// The most padding a request (or a short DNS packet) carries.
    package static let maxPaddingLength = 900
    /// type + timestamp + length.
    package static let requestFixedLength = 1 + 8 + 2
    /// Seconds a timestamp may differ from our clock.
    package static let maxTimeDifference: Int64 = 30
    /// How long a request salt is remembered.
    package static let replayWindowSeconds: Int64 = 60
}

/// Request salts seen in the last minute (Go's `replay.NewSimple(60s)`): two generations rotated
/// every window, so a salt is remembered for at least one full window. Shared by an inbound's loops.
package final class ShadowsocksSaltFilter: Sendable {
    private let state = Mutex<(current: Set<[UInt8]>, previous: Set<[UInt8]>, rotated: Int64)>(([], [], 0))
    private let clock: ShadowsocksClock

    /// An empty filter reading time from `clock`.
    package init(clock: @escaping ShadowsocksClock = shadowsocksSystemClock) { self.clock = clock }

    /// True (and remembered) when `salt` is new; false for a replay.
    package func check(_ salt: [UInt8]) -> Bool {
        let now = clock()
        return state.withLock { state in
            if now - state.rotated >= SIP022.replayWindowSeconds {
                state.previous = state.current
                state.current = []
                state.rotated = now
            }
            if state.current.contains(salt) || state.previous.contains(salt) { return false }
            state.current.insert(salt)
            return true
        }
    }
}

/// The client half of one TCP connection.
package struct ShadowsocksClientSession {
    /// The method and keys.
    package let method: ShadowsocksMethod
    /// Where the server is asked to connect.
    package let destination: Destination
    private let clock: ShadowsocksClock
    private var sealer: ShadowsocksChunkSealer?
    private var opener: ShadowsocksChunkOpener?
    /// Stream ciphers: our keystream and the server's.
    private var streamWriter: ShadowsocksStreamCipher?
    private var streamReader: ShadowsocksStreamCipher?
    private var requestSalt: [UInt8] = []
    private(set) var pending = ByteBuffer()
    private var readState = ReadState.salt
    /// True once the request header went out.
    package private(set) var requestSent = false

    private enum ReadState { case salt, fixedHeader, firstPayload(Int), stream }

    /// A session that has sent nothing yet.
    package init(method: ShadowsocksMethod, destination: Destination, clock: @escaping ShadowsocksClock = shadowsocksSystemClock) {
        self.method = method
        self.destination = destination
        self.clock = clock
    }

    /// The request header with `payload` (may be empty), then the rest of the stream as chunks.
    package mutating func request(payload: ByteBuffer) -> ByteBuffer {
        precondition(!requestSent)
        requestSent = true
        var out = ByteBuffer()
        switch method.family {
        case .none:
            out.reserveCapacity(destination.shadowsocksAddressLength + payload.readableBytes)
            destination.writeShadowsocks(to: &out)
            out.writeImmutableBuffer(payload)
        case .stream:
            let salt = ShadowsocksKDF.random(method.saltByteCount)
            let cipher = ShadowsocksStreamCipher(kind: method.stream!, key: method.key, salt: salt, encrypting: true)
            out.reserveCapacity(salt.count + destination.shadowsocksAddressLength + payload.readableBytes)
            out.writeBytes(salt)
            destination.writeShadowsocks(to: &out)
            out.writeImmutableBuffer(payload)
            cipher.apply(to: &out, from: salt.count)
            streamWriter = cipher
        case .legacy:
            let salt = ShadowsocksKDF.random(method.saltByteCount)
            let key = ShadowsocksKDF.legacySubkey(masterKey: method.key, salt: salt, byteCount: method.key.count)
            var sealer = ShadowsocksChunkSealer(aead: ShadowsocksAEAD(kind: method.aead!, key: key, sealing: true), maximumChunk: method.maximumChunk)
            var plain = ByteBuffer()
            plain.reserveCapacity(destination.shadowsocksAddressLength + payload.readableBytes)
            destination.writeShadowsocks(to: &plain)
            plain.writeImmutableBuffer(payload)
            out.reserveCapacity(salt.count + sealer.sealedLength(plain.readableBytes))
            out.writeBytes(salt)
            sealer.seal(plain, into: &out)
            self.sealer = sealer
        case .blake3:
            let salt = ShadowsocksKDF.random(method.saltByteCount)
            requestSalt = salt
            let key = ShadowsocksKDF.sessionKey(psk: method.key, salt: salt, byteCount: method.key.count)
            var sealer = ShadowsocksChunkSealer(aead: ShadowsocksAEAD(kind: method.aead!, key: key, sealing: true), maximumChunk: method.maximumChunk)
            // Padding hides the length of short first payloads (SIP022 §3.1.2).
            let padding = payload.readableBytes < SIP022.maxPaddingLength ? ShadowsocksKDF.randomInt(in: 1...SIP022.maxPaddingLength) : 0
            let headerLength = destination.shadowsocksAddressLength + 2 + padding
            var rest = payload
            let first = rest.readSlice(length: min(rest.readableBytes, 0xFFFF - headerLength))!
            var fixed = ByteBuffer()
            fixed.writeInteger(SIP022.headerTypeClient)
            fixed.writeInteger(UInt64(clamping: clock()))
            fixed.writeInteger(UInt16(headerLength + first.readableBytes))
            var variable = ByteBuffer()
            variable.reserveCapacity(headerLength + first.readableBytes)
            destination.writeShadowsocks(to: &variable)
            variable.writeInteger(UInt16(padding))
            if padding > 0 {
                variable.writeWithUnsafeMutableBytes(minimumWritableBytes: padding) { raw in
                    ShadowsocksKDF.fillRandom(UnsafeMutableRawBufferPointer(rebasing: raw[0..<padding]))
                    return padding
                }
            }
            variable.writeImmutableBuffer(first)
            out.reserveCapacity(salt.count + 16 * method.identityKeys.count + fixed.readableBytes + variable.readableBytes + 32
                                + sealer.sealedLength(rest.readableBytes))
            out.writeBytes(salt)
            // SIP022 extensible identity headers: each PSK but the last names the next one.
            for (index, identityKey) in method.identityKeys.enumerated() {
                var header = method.identityHashes[index]
                let subkey = ShadowsocksKDF.identityKey(psk: identityKey, salt: salt)
                header.withUnsafeMutableBytes { ShadowsocksAESBlock(key: subkey, encrypting: true).apply($0.baseAddress!) }
                out.writeBytes(header)
            }
            sealer.sealBlock(fixed, into: &out)
            sealer.sealBlock(variable, into: &out)
            sealer.seal(rest, into: &out)
            self.sealer = sealer
        }
        return out
    }

    /// Frames `payload` after the request went out.
    package mutating func seal(_ payload: ByteBuffer) -> ByteBuffer {
        if let streamWriter {
            var out = ByteBuffer()
            out.reserveCapacity(payload.readableBytes)
            out.writeImmutableBuffer(payload)
            streamWriter.apply(to: &out)
            return out
        }
        guard sealer != nil else { return payload }
        var out = ByteBuffer()
        out.reserveCapacity(sealer!.sealedLength(payload.readableBytes))
        sealer!.seal(payload, into: &out)
        return out
    }

    /// Takes bytes from the server; appends the plaintext it carries to `payloads`.
    package mutating func receive(_ bytes: ByteBuffer, into payloads: inout [ByteBuffer]) throws(ShadowsocksError) {
        if method.family == .none {
            if bytes.readableBytes > 0 { payloads.append(bytes) }
            return
        }
        if method.family == .stream {
            var bytes = bytes
            if streamReader == nil {
                // The server's IV first, as Go's readResponse.
                if pending.readableBytes == 0 { pending = bytes } else { pending.writeImmutableBuffer(bytes) }
                guard let salt = pending.readBytes(length: method.saltByteCount) else { return }
                streamReader = ShadowsocksStreamCipher(kind: method.stream!, key: method.key, salt: salt, encrypting: false)
                bytes = pending
                pending = ByteBuffer()
            }
            guard bytes.readableBytes > 0 else { return }
            var plain = ByteBuffer()
            plain.reserveCapacity(bytes.readableBytes)
            plain.writeImmutableBuffer(bytes)
            streamReader!.apply(to: &plain)
            payloads.append(plain)
            return
        }
        if pending.readableBytes == 0 { pending = bytes } else { pending.writeImmutableBuffer(bytes) }
        defer { ShadowsocksStreamBuffer.compact(&pending) }
        while true {
            switch readState {
            case .salt:
                guard let salt = pending.readBytes(length: method.saltByteCount) else { return }
                let key = method.family == .legacy
                    ? ShadowsocksKDF.legacySubkey(masterKey: method.key, salt: salt, byteCount: method.key.count)
                    : ShadowsocksKDF.sessionKey(psk: method.key, salt: salt, byteCount: method.key.count)
                opener = ShadowsocksChunkOpener(aead: ShadowsocksAEAD(kind: method.aead!, key: key, sealing: false), maximumChunk: method.maximumChunk)
                readState = method.family == .legacy ? .stream : .fixedHeader
            case .fixedHeader:
                let length = 1 + 8 + method.saltByteCount + 2
                guard var header = try opener!.openBlock(length: length, from: &pending) else { return }
                let type = header.readInteger(as: UInt8.self)!
                guard type == SIP022.headerTypeServer else { throw .badHeaderType(expected: SIP022.headerTypeServer, got: type) }
                let epoch = header.readInteger(as: UInt64.self)!
                let diff = abs(clock() - Int64(truncatingIfNeeded: epoch))
                guard diff <= SIP022.maxTimeDifference else { throw .badTimestamp(received: epoch, diff: diff) }
                guard header.readBytes(length: method.saltByteCount)! == requestSalt else { throw .badRequestSalt }
                readState = .firstPayload(Int(header.readInteger(as: UInt16.self)!))
            case .firstPayload(let length):
                guard let payload = try opener!.openBlock(length: length, from: &pending) else { return }
                if payload.readableBytes > 0 { payloads.append(payload) }
                readState = .stream
            case .stream:
                try opener!.open(&pending, into: &payloads)
                return
            }
        }
    }

    /// Bytes received and not yet opened (a partial chunk).
    package var bufferedByteCount: Int { pending.readableBytes }
}

/// The server half of one TCP connection.
package struct ShadowsocksServerSession {
    /// The method and the inbound's key.
    package let method: ShadowsocksMethod
    private let clock: ShadowsocksClock
    private let saltFilter: ShadowsocksSaltFilter?
    private var opener: ShadowsocksChunkOpener?
    private var sealer: ShadowsocksChunkSealer?
    private var requestSalt: [UInt8] = []
    private(set) var pending = ByteBuffer()
    /// Legacy and none: plaintext gathered until the address is complete.
    private var header = ByteBuffer()
    private var readState = ReadState.salt
    /// The client's destination, once its header was read.
    package private(set) var destination: Destination?
    /// True once our response header went out.
    package private(set) var responseSent = false

    private enum ReadState { case salt, fixedHeader, variableHeader(Int), address, stream }

    /// A multi-user inbound's users; nil for a single-user one.
    private let users: ShadowsocksUserTable?
    /// The key this connection's session keys come from (the user's, on a multi-user inbound).
    private var sessionPSK: [UInt8]
    /// The user the client proved to be (multi-user inbounds).
    package private(set) var user: String?

    /// A session waiting for the client's salt; `saltFilter` is the inbound's (SIP022 replay protection).
    package init(method: ShadowsocksMethod, saltFilter: ShadowsocksSaltFilter?, users: ShadowsocksUserTable? = nil,
                 clock: @escaping ShadowsocksClock = shadowsocksSystemClock) {
        self.method = method
        self.saltFilter = saltFilter
        self.users = users
        self.sessionPSK = method.key
        self.clock = clock
        if method.family == .none { readState = .address }
    }

    /// Multi-user legacy: the user whose subkey opens the first length chunk (Go tries them in turn).
    private func legacyUser(salt: [UInt8], users: ShadowsocksUserTable) throws(ShadowsocksError) -> ShadowsocksServerUser? {
        let sealedLength = 2 + ShadowsocksAEAD.tagByteCount
        guard let chunk = pending.getBytes(at: pending.readerIndex + salt.count, length: sealedLength) else { return nil }
        for candidate in users.users {
            let key = ShadowsocksKDF.legacySubkey(masterKey: candidate.key, salt: salt, byteCount: method.key.count)
            var trial = ByteBuffer(bytes: chunk)
            var opener = ShadowsocksChunkOpener(aead: ShadowsocksAEAD(kind: method.aead!, key: key, sealing: false), maximumChunk: method.maximumChunk)
            var ignored: [ByteBuffer] = []
            if (try? opener.open(&trial, into: &ignored)) != nil { return candidate }
        }
        throw .authenticationFailed
    }

    /// Takes bytes from the client; appends payload plaintext to `payloads` (only after the header).
    /// `destination` becomes non-nil once the header is complete. Throws on anything malformed.
    package mutating func receive(_ bytes: ByteBuffer, into payloads: inout [ByteBuffer]) throws(ShadowsocksError) {
        if pending.readableBytes == 0 { pending = bytes } else { pending.writeImmutableBuffer(bytes) }
        defer { ShadowsocksStreamBuffer.compact(&pending) }
        while true {
            switch readState {
            case .salt:
                let identityLength = users != nil && method.family == .blake3 ? 16 : 0
                guard pending.readableBytes >= method.saltByteCount + identityLength,
                      let salt = pending.getBytes(at: pending.readerIndex, length: method.saltByteCount) else { return }
                let key: [UInt8]
                if method.family == .legacy {
                    if let users {
                        // Nothing is consumed until a user's key opened the first length chunk.
                        guard let found = try legacyUser(salt: salt, users: users) else { return }
                        sessionPSK = found.key
                        user = found.name
                    }
                    pending.moveReaderIndex(forwardBy: salt.count)
                    key = ShadowsocksKDF.legacySubkey(masterKey: sessionPSK, salt: salt, byteCount: method.key.count)
                    readState = .address
                } else {
                    pending.moveReaderIndex(forwardBy: salt.count)
                    // Go checks the salt before it can know the header is genuine.
                    guard saltFilter?.check(salt) ?? true else { throw .saltNotUnique }
                    if let users {
                        // The identity header: the user's PSK hash under a subkey of the inbound's PSK.
                        var identity = pending.readBytes(length: 16)!
                        let subkey = ShadowsocksKDF.identityKey(psk: method.key, salt: salt)
                        identity.withUnsafeMutableBytes { ShadowsocksAESBlock(key: subkey, encrypting: false).apply($0.baseAddress!) }
                        guard let found = users.user(identity: identity) else { throw .invalidRequest }
                        sessionPSK = found.key
                        user = found.name
                    }
                    requestSalt = salt
                    key = ShadowsocksKDF.sessionKey(psk: sessionPSK, salt: salt, byteCount: method.key.count)
                    readState = .fixedHeader
                }
                opener = ShadowsocksChunkOpener(aead: ShadowsocksAEAD(kind: method.aead!, key: key, sealing: false), maximumChunk: method.maximumChunk)
            case .fixedHeader:
                guard var fixed = try opener!.openBlock(length: SIP022.requestFixedLength, from: &pending) else { return }
                let type = fixed.readInteger(as: UInt8.self)!
                guard type == SIP022.headerTypeClient else { throw .badHeaderType(expected: SIP022.headerTypeClient, got: type) }
                let epoch = fixed.readInteger(as: UInt64.self)!
                let diff = abs(clock() - Int64(truncatingIfNeeded: epoch))
                guard diff <= SIP022.maxTimeDifference else { throw .badTimestamp(received: epoch, diff: diff) }
                readState = .variableHeader(Int(fixed.readInteger(as: UInt16.self)!))
            case .variableHeader(let length):
                guard var variable = try opener!.openBlock(length: length, from: &pending) else { return }
                guard let address = try Destination.readShadowsocks(from: &variable),
                      let padding = variable.readInteger(as: UInt16.self) else { throw .badAddress }
                guard variable.readableBytes >= Int(padding) else { throw .noPadding }
                variable.moveReaderIndex(forwardBy: Int(padding))
                if padding == 0 && variable.readableBytes == 0 { throw .noPadding }
                destination = address
                if variable.readableBytes > 0 { payloads.append(variable) }
                readState = .stream
            case .address:
                if method.family == .none {
                    header.writeImmutableBuffer(pending)
                    pending.clear()
                } else {
                    var opened: [ByteBuffer] = []
                    try opener!.open(&pending, into: &opened)
                    for var piece in opened { header.writeBuffer(&piece) }
                }
                guard let address = try Destination.readShadowsocks(from: &header) else {
                    // An address is at most 1 + 1 + 255 + 2 bytes.
                    if header.readableBytes > 259 { throw .badAddress }
                    return
                }
                destination = address
                if header.readableBytes > 0 { payloads.append(header) }
                header = ByteBuffer()
                readState = .stream
            case .stream:
                if method.family == .none {
                    if pending.readableBytes > 0 { payloads.append(pending) }
                    pending = ByteBuffer()
                } else {
                    try opener!.open(&pending, into: &payloads)
                }
                return
            }
        }
    }

    /// Frames `payload` for the client; the first call puts the response header in front.
    package mutating func seal(_ payload: ByteBuffer) -> ByteBuffer {
        if method.family == .none { responseSent = true; return payload }
        var out = ByteBuffer()
        if !responseSent {
            responseSent = true
            let salt = ShadowsocksKDF.random(method.saltByteCount)
            let key = method.family == .legacy
                ? ShadowsocksKDF.legacySubkey(masterKey: sessionPSK, salt: salt, byteCount: method.key.count)
                : ShadowsocksKDF.sessionKey(psk: sessionPSK, salt: salt, byteCount: method.key.count)
            var sealer = ShadowsocksChunkSealer(aead: ShadowsocksAEAD(kind: method.aead!, key: key, sealing: true), maximumChunk: method.maximumChunk)
            out.reserveCapacity(salt.count + 64 + method.saltByteCount + sealer.sealedLength(payload.readableBytes))
            out.writeBytes(salt)
            if method.family == .blake3 {
                var rest = payload
                let first = rest.readSlice(length: min(rest.readableBytes, 0xFFFF))!
                var fixed = ByteBuffer()
                fixed.writeInteger(SIP022.headerTypeServer)
                fixed.writeInteger(UInt64(clamping: clock()))
                fixed.writeBytes(requestSalt)
                fixed.writeInteger(UInt16(first.readableBytes))
                sealer.sealBlock(fixed, into: &out)
                sealer.sealBlock(first, into: &out)
                sealer.seal(rest, into: &out)
            } else {
                sealer.seal(payload, into: &out)
            }
            self.sealer = sealer
            return out
        }
        out.reserveCapacity(sealer!.sealedLength(payload.readableBytes))
        sealer!.seal(payload, into: &out)
        return out
    }
}

/// What both sessions do with their input buffer after a read.
enum ShadowsocksStreamBuffer {
    /// Drops the bytes already read: a read that ends inside a chunk leaves it in `buffer`, and the
    /// next read is appended behind it, so without this a download whose reads never end on a
    /// chunk boundary kept (and copied, read after read) every byte since the last one that did.
    static func compact(_ buffer: inout ByteBuffer) {
        if buffer.readableBytes == 0 {
            buffer = ByteBuffer()
        } else if buffer.readerIndex > 1 << 16 {
            buffer.discardReadBytes()
        }
    }
}
