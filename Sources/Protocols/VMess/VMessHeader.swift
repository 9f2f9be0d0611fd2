// The AEAD request and response headers (see VMess.swift for the layout). Handshake-time code:
// byte arrays, one call per connection. Every function that reads peer bytes throws `VMessError`.
package import Adapter
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Why a VMess exchange failed. `description` is sing-vmess's wording where it has one.
package enum VMessError: Error, Equatable, CustomStringConvertible {
    /// The first read was shorter than an AEAD header can be.
    case badHeader
    /// The header plaintext is too short for its fixed fields or its address.
    case headerShort
    /// A padding longer than what is left of the header.
    case badPadding
    /// An auth ID of a user whose time is off by more than 120 seconds.
    case badTimestamp
    /// An auth ID seen in the last 120 seconds.
    case replayed
    /// No user's key opens the auth ID.
    case badRequest
    case badVersion(UInt8)
    case unknownCommand(UInt8)
    /// Command UDP without chunk stream.
    case badPacketConnection
    /// An address type other than 1, 2, 3 in the header.
    case badAddressType(UInt8)
    /// A domain too long for its length byte (when writing).
    case domainTooLong(Int)
    /// A sealed header, length or chunk did not open.
    case authenticationFailed
    case unsupportedSecurity(UInt8)
    /// A legacy-security chunk whose FNV checksum does not match.
    case invalidChecksum
    case badLengthChunk(length: Int, padding: Int)
    /// The server's response byte is not the one we asked for.
    case badResponseHeader
    /// A mux frame shorter than its fixed fields, or a new frame without an address.
    case badMuxFrame
    case badMuxNetwork(UInt8)
    case badMuxStatus(UInt8)

    package var description: String {
        switch self {
        case .badHeader: "bad header"
        case .headerShort: "bad header: short buffer"
        case .badPadding: "bad header: bad padding"
        case .badTimestamp: "bad timestamp"
        case .replayed: "replayed request"
        case .badRequest: "bad request"
        case .badVersion(let version): "bad version: \(version)"
        case .unknownCommand(let command): "unknown command: \(command)"
        case .badPacketConnection: "bad packet connection"
        case .badAddressType(let type): "unknown address family: \(type)"
        case .domainTooLong(let length): "vmess: domain too long: \(length) bytes"
        case .authenticationFailed: "cipher: message authentication failed"
        case .unsupportedSecurity(let security): "vmess: unsupported security type: \(security)"
        case .invalidChecksum: "vmess: invalid chunk checksum"
        case .badLengthChunk(let length, let padding): "bad length chunk: length=\(length), padding=\(padding)"
        case .badResponseHeader: "bad response header"
        case .badMuxFrame: "read frame header: bad frame"
        case .badMuxNetwork(let network): "bad network: \(network)"
        case .badMuxStatus(let status): "bad session status: \(status)"
        }
    }
}

/// The decoded request header: what the client asks for and the body's keys.
package struct VMessRequest: Equatable, Sendable {
    /// Client → server body key and nonce (16 bytes each).
    package var bodyKey: [UInt8]
    package var bodyNonce: [UInt8]
    /// The byte the server must echo.
    package var responseHeader: UInt8
    /// Request options (chunk stream, masking, global padding, authenticated length).
    package var option: UInt8
    /// The body security byte (3 AES-128-GCM, 4 ChaCha20-Poly1305, 5 none, 1 AES-128-CFB).
    package var security: UInt8
    /// 1 TCP, 2 UDP, 3 mux.
    package var command: UInt8
    /// Nil for the mux command.
    package var destination: Destination?
    /// The legacy (alterId) header was used: response keys are MD5, not SHA-256.
    package var legacy = false

    /// All fields as given (an AEAD-header request; set `legacy` for the alterId header).
    package init(bodyKey: [UInt8], bodyNonce: [UInt8], responseHeader: UInt8, option: UInt8, security: UInt8,
                 command: UInt8, destination: Destination?) {
        self.bodyKey = bodyKey
        self.bodyNonce = bodyNonce
        self.responseHeader = responseHeader
        self.option = option
        self.security = security
        self.command = command
        self.destination = destination
    }

    /// The server → client body key and nonce: SHA-256 of the request's, cut to 16 bytes (legacy: MD5).
    package var responseKey: [UInt8] { legacy ? VMessCrypto.md5(bodyKey) : Array(VMessCrypto.sha256(bodyKey).prefix(16)) }
    package var responseNonce: [UInt8] { legacy ? VMessCrypto.md5(bodyNonce) : Array(VMessCrypto.sha256(bodyNonce).prefix(16)) }
}

/// One inbound user's keys.
package struct VMessServerUser: Sendable {
    /// `name`, possibly empty (Go then logs the index).
    package var name: String
    /// Position in `users` (what Go logs when the name is empty).
    package var index: Int
    /// MD5(uuid ‖ constant): the AEAD header's key.
    package var commandKey: [UInt8]
    /// KDF(cmdKey, "AES Auth ID Encryption")[:16].
    package var authIDKey: [UInt8]

    /// Derives the keys from `uuid` (a UUID, or any text as a name-based UUID, as Go).
    package init(name: String, index: Int, uuid: String) {
        self.name = name
        self.index = index
        commandKey = VMessModule.commandKey(userID: VMessModule.userID(uuid))
        authIDKey = Array(VMessCrypto.kdf(commandKey, VMessHeader.saltAuthIDKey).prefix(16))
    }

    /// How Go logs the user: its name, else its index.
    package var logName: String { name.isEmpty ? String(index) : name }
}

/// The legacy header's auths of every user with alter IDs: HMAC-MD5(alter ID, time) for each second
/// within 120 s of now (sing-vmess `generateLegacyKeys`), rebuilt every 10 seconds. Shared by an
/// inbound's loops.
package final class VMessLegacyTable: Sendable {
    /// Per user: their index and alter IDs (the chain `AlterId(AlterId(…(uuid)))`, alterId long).
    private let alterIDs: [(user: Int, ids: [[UInt8]])]
    private let state = Mutex<(built: Int64, map: [[UInt8]: (user: Int, time: Int64)])>((0, [:]))

    /// `users` with their configured alterId counts (0: AEAD only).
    package init(users: [(index: Int, uuid: String, alterID: Int)]) {
        alterIDs = users.filter { $0.alterID > 0 }.map { user in
            var current = VMessModule.userID(user.uuid)
            var ids: [[UInt8]] = []
            for _ in 0..<user.alterID {
                current = VMessModule.alterID(current)
                ids.append(current)
            }
            return (user.index, ids)
        }
    }

    /// True when some user has alter IDs (the server then accepts 54-byte first reads).
    package var isEmpty: Bool { alterIDs.isEmpty }

    /// The user and the header's time for a legacy auth, or nil.
    package func lookup(_ auth: [UInt8], now: Int64) -> (user: Int, time: Int64)? {
        guard !alterIDs.isEmpty else { return nil }
        return state.withLock { state in
            if now - state.built >= 10 || now < state.built {
                var map: [[UInt8]: (user: Int, time: Int64)] = [:]
                for (user, ids) in alterIDs {
                    for id in ids {
                        for time in (now - VMessModule.cacheDurationSeconds)...(now + VMessModule.cacheDurationSeconds) {
                            map[VMessCrypto.hmacMD5(key: id, VMessHeader.bigEndian(UInt64(bitPattern: time)))] = (user, time)
                        }
                    }
                }
                state = (now, map)
            }
            return state.map[auth]
        }
    }
}

/// Auth IDs seen in the last 120 seconds (Go's `replay.NewSimple(120s)`): two generations rotated
/// every window. Shared by an inbound's loops.
package final class VMessReplayFilter: Sendable {
    private let state = Mutex<(current: Set<[UInt8]>, previous: Set<[UInt8]>, rotated: Int64)>(([], [], 0))

    /// An empty filter.
    package init() {}

    /// True (and remembered) when `id` is new.
    package func check(_ id: [UInt8], now: Int64) -> Bool {
        state.withLock { state in
            if now - state.rotated >= VMessModule.cacheDurationSeconds {
                state.previous = state.current
                state.current = []
                state.rotated = now
            }
            if state.current.contains(id) || state.previous.contains(id) { return false }
            state.current.insert(id)
            return true
        }
    }
}

/// Unix time in seconds.
package typealias VMessClock = @Sendable () -> Int64
/// The system clock.
package let vmessSystemClock: VMessClock = { Int64(time(nil)) }

/// Encodes and decodes the headers.
package enum VMessHeader {
    // KDF salts (sing-vmess protocol.go, v2ray's vmess/aead).
    static let saltAuthIDKey = "AES Auth ID Encryption"
    static let saltResponseLengthKey = "AEAD Resp Header Len Key"
    static let saltResponseLengthIV = "AEAD Resp Header Len IV"
    static let saltResponseKey = "AEAD Resp Header Key"
    static let saltResponseIV = "AEAD Resp Header IV"
    static let saltHeaderKey = "VMess Header AEAD Key"
    static let saltHeaderIV = "VMess Header AEAD Nonce"
    static let saltLengthKey = "VMess Header AEAD Key_Length"
    static let saltLengthIV = "VMess Header AEAD Nonce_Length"
    /// Bytes before the sealed header: auth ID, sealed length, connection nonce.
    package static let headerIndex = 16 + 18 + 8

    /// The auth ID for `commandKey` at `time` with the 4 `random` bytes.
    package static func authID(commandKey: [UInt8], time: Int64, random: [UInt8]) -> [UInt8] {
        var plain = bigEndian(UInt64(bitPattern: time)) + random
        plain += bigEndian(VMessCrypto.crc32(plain))
        return VMessCrypto.aes128Block(key: Array(VMessCrypto.kdf(commandKey, saltAuthIDKey).prefix(16)), plain, encrypt: true)
    }

    /// The header plaintext (version … fnv1a) with `padding` random bytes.
    package static func encodeRequest(_ request: VMessRequest, padding: [UInt8]) throws(VMessError) -> [UInt8] {
        precondition(padding.count < 16 && request.bodyKey.count == 16 && request.bodyNonce.count == 16)
        var header: [UInt8] = [VMessModule.version] + request.bodyNonce + request.bodyKey
        header += [request.responseHeader, request.option, UInt8(padding.count) << 4 | request.security, 0, request.command]
        if let destination = request.destination { header += try encodeAddress(destination) }
        header += padding
        header += bigEndian(VMessCrypto.fnv1a32(header))
        return header
    }

    /// The whole sealed request: auth ID, sealed length, connection nonce, sealed header.
    package static func sealRequest(_ request: VMessRequest, commandKey: [UInt8], time: Int64) throws(VMessError) -> [UInt8] {
        let header = try encodeRequest(request, padding: VMessCrypto.random(Int.random(in: 0..<16)))
        let id = authID(commandKey: commandKey, time: time, random: VMessCrypto.random(4))
        let connectionNonce = VMessCrypto.random(8)
        return id + sealHeader(header, commandKey: commandKey, authID: id, connectionNonce: connectionNonce)
    }

    /// The legacy request (alterId > 0): HMAC-MD5(alter ID, time) ‖ the header under AES-128-CFB
    /// with the command key and IV MD5(time ×4). The body that follows is the same as with AEAD.
    package static func sealLegacyRequest(_ request: VMessRequest, commandKey: [UInt8], alterID: [UInt8], time: Int64) throws(VMessError) -> [UInt8] {
        let header = try encodeRequest(request, padding: VMessCrypto.random(Int.random(in: 0..<16)))
        let stamp = bigEndian(UInt64(bitPattern: time))
        let cipher = VMessCFB(key: commandKey, iv: VMessCrypto.md5(stamp + stamp + stamp + stamp), encrypting: true)
        return VMessCrypto.hmacMD5(key: alterID, stamp) + cipher.apply(header)
    }

    /// Decrypts the legacy header from `sealed` (everything after the 16-byte auth that has arrived):
    /// the request and the header's length, or nil while it is incomplete.
    package static func openLegacyRequest(_ sealed: [UInt8], commandKey: [UInt8], time: Int64) throws(VMessError) -> (VMessRequest, Int)? {
        let stamp = bigEndian(UInt64(bitPattern: time))
        let plain = VMessCFB(key: commandKey, iv: VMessCrypto.md5(stamp + stamp + stamp + stamp), encrypting: false)
            .apply(Array(sealed.prefix(38 + 3 + 1 + 255 + 15 + 4)))
        guard plain.count >= 38 else { return nil }
        var length = 38
        if plain[37] != VMessModule.commandMux {
            guard plain.count >= 41 else { return nil }
            switch plain[40] {
            case 1: length += 3 + 4
            case 3: length += 3 + 16
            case 2:
                guard plain.count >= 42 else { return nil }
                length += 3 + 1 + Int(plain[41])
            default: throw .badAddressType(plain[40])
            }
        }
        length += Int(plain[35] >> 4) + 4
        guard plain.count >= length else { return nil }
        var request = try decodeRequest(Array(plain.prefix(length)))
        request.legacy = true
        return (request, length)
    }

    /// The legacy response: (response byte, option, 0, 0) under AES-128-CFB with the response key and
    /// IV, and that stream (the legacy body security goes on with it).
    package static func sealLegacyResponse(responseHeader: UInt8, option: UInt8, responseKey: [UInt8],
                                           responseNonce: [UInt8]) -> ([UInt8], VMessCFB) {
        let cfb = VMessCFB(key: responseKey, iv: responseNonce, encrypting: true)
        return (cfb.apply([responseHeader, option, 0, 0]), cfb)
    }

    /// Sealed length ‖ connection nonce ‖ sealed header (everything after the auth ID).
    static func sealHeader(_ header: [UInt8], commandKey: [UInt8], authID: [UInt8], connectionNonce: [UInt8]) -> [UInt8] {
        let lengthKey = Array(VMessCrypto.kdf(commandKey, saltLengthKey, authID, connectionNonce).prefix(16))
        let lengthNonce = Array(VMessCrypto.kdf(commandKey, saltLengthIV, authID, connectionNonce).prefix(12))
        let headerKey = Array(VMessCrypto.kdf(commandKey, saltHeaderKey, authID, connectionNonce).prefix(16))
        let headerNonce = Array(VMessCrypto.kdf(commandKey, saltHeaderIV, authID, connectionNonce).prefix(12))
        let length = VMessAEAD(kind: .aes128GCM, key: lengthKey, sealing: true)
            .sealed(bigEndian(UInt16(header.count)), nonce: lengthNonce, aad: authID)
        let sealed = VMessAEAD(kind: .aes128GCM, key: headerKey, sealing: true).sealed(header, nonce: headerNonce, aad: authID)
        return length + connectionNonce + sealed
    }

    /// Finds the user whose key decrypts `authID` to a checksummed time; checks the time and the
    /// replay filter (sing-vmess `NewConnection` order). Returns the user's index in `users`.
    package static func identify(authID: [UInt8], users: [VMessServerUser], filter: VMessReplayFilter, now: Int64) throws(VMessError) -> Int {
        for (index, user) in users.enumerated() {
            let decoded = VMessCrypto.aes128Block(key: user.authIDKey, authID, encrypt: false)
            let checksum = UInt32(decoded[12]) << 24 | UInt32(decoded[13]) << 16 | UInt32(decoded[14]) << 8 | UInt32(decoded[15])
            guard VMessCrypto.crc32(Array(decoded.prefix(12))) == checksum else { continue }
            let timestamp = decoded.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let signed = Int64(bitPattern: timestamp)
            // Go compares |(|t|) − now| as floats: no overflow for any t.
            guard abs(abs(Double(signed)) - Double(now)) <= Double(VMessModule.cacheDurationSeconds) else { throw .badTimestamp }
            guard filter.check(decoded, now: now) else { throw .replayed }
            return index
        }
        throw .badRequest
    }

    /// Opens the sealed length at bytes 16..<34 of `request` (its first 42 bytes at least).
    package static func openLength(_ request: [UInt8], commandKey: [UInt8]) throws(VMessError) -> Int {
        let authID = Array(request[0..<16]), connectionNonce = Array(request[34..<42])
        let lengthKey = Array(VMessCrypto.kdf(commandKey, saltLengthKey, authID, connectionNonce).prefix(16))
        let lengthNonce = Array(VMessCrypto.kdf(commandKey, saltLengthIV, authID, connectionNonce).prefix(12))
        guard let plain = VMessAEAD(kind: .aes128GCM, key: lengthKey, sealing: false)
            .opened(Array(request[16..<34]), nonce: lengthNonce, aad: authID) else { throw .authenticationFailed }
        return Int(plain[0]) << 8 | Int(plain[1])
    }

    /// Opens and decodes the header of `length` bytes after the first 42 bytes of `request`.
    package static func openRequest(_ request: [UInt8], length: Int, commandKey: [UInt8]) throws(VMessError) -> VMessRequest {
        guard request.count >= headerIndex + length + 16 else { throw .headerShort }
        let authID = Array(request[0..<16]), connectionNonce = Array(request[34..<42])
        let headerKey = Array(VMessCrypto.kdf(commandKey, saltHeaderKey, authID, connectionNonce).prefix(16))
        let headerNonce = Array(VMessCrypto.kdf(commandKey, saltHeaderIV, authID, connectionNonce).prefix(12))
        guard let header = VMessAEAD(kind: .aes128GCM, key: headerKey, sealing: false)
            .opened(Array(request[headerIndex..<headerIndex + length + 16]), nonce: headerNonce, aad: authID) else {
            throw .authenticationFailed
        }
        return try decodeRequest(header)
    }

    /// Decodes a header plaintext. Like sing-vmess, the FNV checksum is skipped, not checked (the
    /// AEAD already authenticated the header).
    package static func decodeRequest(_ header: [UInt8]) throws(VMessError) -> VMessRequest {
        guard header.count > 38 else { throw .headerShort }
        guard header[0] == VMessModule.version else { throw .badVersion(header[0]) }
        let paddingLength = Int(header[35] >> 4)
        let command = header[37]
        guard command == VMessModule.commandTCP || command == VMessModule.commandUDP || command == VMessModule.commandMux else {
            throw .unknownCommand(command)
        }
        let option = header[34]
        if command == VMessModule.commandUDP && option == 0 { throw .badPacketConnection }
        var offset = 38
        var destination: Destination?
        if command != VMessModule.commandMux { destination = try decodeAddress(header, offset: &offset) }
        guard header.count - offset >= paddingLength else { throw .badPadding }
        offset += paddingLength
        guard header.count - offset >= 4 else { throw .headerShort }
        return VMessRequest(bodyKey: Array(header[17..<33]), bodyNonce: Array(header[1..<17]), responseHeader: header[33],
                            option: option, security: header[35] & 0x0f, command: command, destination: destination)
    }

    /// Port, then type and address (`PortThenAddress`; 1 IPv4, 2 domain, 3 IPv6).
    package static func encodeAddress(_ destination: Destination) throws(VMessError) -> [UInt8] {
        var out = bigEndian(destination.port)
        switch destination.host {
        case .ip(let ip):
            switch ip.unmapped {
            case .v4(let value): out += [1] + bigEndian(value)
            case .v6(let value): out += [3] + bigEndian(value.high) + bigEndian(value.low)
            }
        case .domain(let name):
            let bytes = Array(name.utf8)
            guard bytes.count <= 255 else { throw .domainTooLong(bytes.count) }
            out += [2, UInt8(bytes.count)] + bytes
        }
        return out
    }

    static func decodeAddress(_ bytes: [UInt8], offset: inout Int) throws(VMessError) -> Destination {
        guard bytes.count - offset >= 3 else { throw .headerShort }
        let port = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        let type = bytes[offset + 2]
        offset += 3
        switch type {
        case 1:
            guard bytes.count - offset >= 4 else { throw .headerShort }
            defer { offset += 4 }
            return Destination(ip: IPAddress(bytes: bytes[offset..<offset + 4])!, port: port)
        case 3:
            guard bytes.count - offset >= 16 else { throw .headerShort }
            defer { offset += 16 }
            return Destination(ip: IPAddress(bytes: bytes[offset..<offset + 16])!, port: port)
        case 2:
            guard bytes.count - offset >= 1 else { throw .headerShort }
            let length = Int(bytes[offset])
            guard bytes.count - offset - 1 >= length else { throw .headerShort }
            defer { offset += 1 + length }
            return Destination(host: Host(String(decoding: bytes[offset + 1..<offset + 1 + length], as: UTF8.self)), port: port)
        default:
            throw .badAddressType(type)
        }
    }

    /// The server's response: sealed length (4) ‖ sealed (response byte, option, 0, 0).
    package static func sealResponse(responseHeader: UInt8, option: UInt8, responseKey: [UInt8], responseNonce: [UInt8]) -> [UInt8] {
        let lengthKey = Array(VMessCrypto.kdf(responseKey, saltResponseLengthKey).prefix(16))
        let lengthNonce = Array(VMessCrypto.kdf(responseNonce, saltResponseLengthIV).prefix(12))
        let key = Array(VMessCrypto.kdf(responseKey, saltResponseKey).prefix(16))
        let nonce = Array(VMessCrypto.kdf(responseNonce, saltResponseIV).prefix(12))
        return VMessAEAD(kind: .aes128GCM, key: lengthKey, sealing: true).sealed([0, 4], nonce: lengthNonce)
            + VMessAEAD(kind: .aes128GCM, key: key, sealing: true).sealed([responseHeader, option, 0, 0], nonce: nonce)
    }

    /// Opens the response's 18-byte sealed length.
    package static func openResponseLength(_ sealed: [UInt8], responseKey: [UInt8], responseNonce: [UInt8]) throws(VMessError) -> Int {
        let lengthKey = Array(VMessCrypto.kdf(responseKey, saltResponseLengthKey).prefix(16))
        let lengthNonce = Array(VMessCrypto.kdf(responseNonce, saltResponseLengthIV).prefix(12))
        guard let plain = VMessAEAD(kind: .aes128GCM, key: lengthKey, sealing: false).opened(sealed, nonce: lengthNonce) else {
            throw .authenticationFailed
        }
        return Int(plain[0]) << 8 | Int(plain[1])
    }

    /// Opens the response header (length + 16 sealed bytes).
    package static func openResponse(_ sealed: [UInt8], responseKey: [UInt8], responseNonce: [UInt8]) throws(VMessError) -> [UInt8] {
        let key = Array(VMessCrypto.kdf(responseKey, saltResponseKey).prefix(16))
        let nonce = Array(VMessCrypto.kdf(responseNonce, saltResponseIV).prefix(12))
        guard let plain = VMessAEAD(kind: .aes128GCM, key: key, sealing: false).opened(sealed, nonce: nonce) else {
            throw .authenticationFailed
        }
        return plain
    }

    static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<(T.bitWidth / 8)).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }
}
