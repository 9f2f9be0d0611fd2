// A configured method: which construction, which key, and the errors Go words for a bad one.
package import Adapter

/// Why a peer's bytes were refused. Parsers of untrusted bytes throw these; none traps.
/// `description` is sing-shadowsocks' wording where it has one.
package enum ShadowsocksError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The AEAD tag did not verify (wrong key, garbage, tampering).
    case authenticationFailed
    /// A SIP022 UDP body did not verify (Go: `decrypt packet: …`).
    case packetAuthenticationFailed
    /// A SIP022 ChaCha UDP packet did not verify (Go: `decrypt packet header: …`).
    case packetHeaderAuthenticationFailed
    /// A 2022 request reused a salt seen within the replay window.
    case saltNotUnique
    /// A 2022 header's timestamp is more than 30 s from our clock.
    case badTimestamp(received: UInt64, diff: Int64)
    /// A 2022 header carried the wrong type byte.
    case badHeaderType(expected: UInt8, got: UInt8)
    /// A 2022 response did not echo our request salt.
    case badRequestSalt
    /// A 2022 request had neither padding nor payload.
    case noPadding
    /// A 2022 UDP packet id was seen before (or is too old).
    case packetIDNotUnique
    /// A 2022 UDP reply named another client session.
    case badClientSessionID
    /// A 2022 UDP server changed session twice within a minute.
    case tooManyServerSessions
    /// A legacy chunk length above 0x3FFF.
    case chunkTooLong(Int)
    /// A datagram too short for its headers.
    case packetTooShort
    /// The SOCKS address in the header is malformed.
    case badAddress
    /// The stream ended inside a header.
    case truncated
    /// The client closed before sending anything (Go logs this at debug level only).
    case headerEOF
    /// The client closed inside its SIP022 header (Go's short first read: `bad header`).
    case badHeader
    /// The client closed inside its SIP004 header.
    case headerUnexpectedEOF
    /// A multi-user SIP022 request named no known user.
    case invalidRequest

    package var description: String {
        switch self {
        case .authenticationFailed: "cipher: message authentication failed"
        case .packetAuthenticationFailed: "decrypt packet: cipher: message authentication failed"
        case .packetHeaderAuthenticationFailed: "decrypt packet header: chacha20poly1305: message authentication failed"
        case .saltNotUnique: "salt not unique"
        case .badTimestamp(let received, let diff): "bad timestamp: received \(received), diff \(diff)s"
        case .badHeaderType(let expected, let got): "bad header type: expected \(expected), got \(got)"
        case .badRequestSalt: "bad request salt"
        case .noPadding: "bad request: missing payload or padding"
        case .packetIDNotUnique: "packet id not unique"
        case .badClientSessionID: "bad client session id"
        case .tooManyServerSessions: "server session changed more than once during the last minute"
        case .chunkTooLong(let length): "bad chunk length: \(length)"
        case .packetTooShort: "packet too short"
        case .badAddress: "bad socks address"
        case .truncated: "EOF"
        case .headerEOF: "read header: EOF"
        case .badHeader: "bad header"
        case .headerUnexpectedEOF: "read header: unexpected EOF"
        case .invalidRequest: "invalid request"
        }
    }
}

extension ShadowsocksError {
    /// The text Go logs for this error under `method`: Go's ChaCha20-Poly1305 AEADs say
    /// `chacha20poly1305: message authentication failed` where GCM says `cipher: …`.
    package func message(for method: ShadowsocksMethod) -> String {
        switch (self, method.aead) {
        case (.authenticationFailed, .chacha20Poly1305?), (.authenticationFailed, .xchacha20Poly1305?):
            return "chacha20poly1305: message authentication failed"
        default:
            return description
        }
    }
}

/// A method with its key material, shared read-only by every connection of an adapter.
package struct ShadowsocksMethod: Sendable, Equatable {
    /// The three protocol families.
    package enum Family: Sendable, Equatable {
        /// `none`: the SOCKS address then the plain stream.
        case none
        /// SIP004 AEAD with a password-derived master key.
        case legacy
        /// SIP022 (`2022-blake3-*`) with a base64 PSK.
        case blake3
        /// A legacy stream cipher (outbound only): the salt as IV, then the XORed stream.
        case stream
    }

    /// The config name.
    package let name: String
    /// Which protocol family the name selects.
    package let family: Family
    /// The AEAD (nil for `none` and the stream ciphers).
    package let aead: ShadowsocksAEADKind?
    /// The stream cipher (`stream` only).
    package let stream: ShadowsocksStreamKind?
    /// Legacy: the EVP_BytesToKey master key. 2022: the PSK the session keys come from (a client's
    /// last PSK). Empty for `none`.
    package let key: [UInt8]
    /// A SIP022 client with several PSKs (`iPSK:…:uPSK`): the PSKs before the last; each encrypts an
    /// extensible identity header naming the next one.
    package let identityKeys: [[UInt8]]
    /// For each identity key: the first 16 bytes of BLAKE3(next PSK), the identity it sends.
    package let identityHashes: [[UInt8]]

    /// The key of the SIP022 AES separate header a client sends (its first PSK).
    package var udpHeaderKey: [UInt8] { identityKeys.first ?? key }

    /// Salt length = key length (both AEAD families); the stream ciphers' IV length.
    package var saltByteCount: Int { stream?.saltByteCount ?? key.count }
    /// The largest plaintext per TCP chunk we send and accept: SIP004 caps it at 0x3FFF; SIP022's
    /// length field allows 0xFFFF.
    package var maximumChunk: Int { family == .blake3 ? 0xFFFF : 0x3FFF }

    /// Legacy AEAD method names (sing-shadowsocks `shadowaead.List`).
    package static let legacyNames = ["aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "chacha20-ietf-poly1305", "xchacha20-ietf-poly1305"]
    /// SIP022 method names.
    package static let blake3Names = ["2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305"]
    /// Stream ciphers Go's outbound also knows (sing-shadowsocks `shadowstream`); Go's inbound does not.
    static let streamNames = ["aes-128-ctr", "aes-192-ctr", "aes-256-ctr", "aes-128-cfb", "aes-192-cfb", "aes-256-cfb",
                              "rc4-md5", "chacha20-ietf", "xchacha20"]

    init(name: String, family: Family, aead: ShadowsocksAEADKind?, key: [UInt8], identityKeys: [[UInt8]] = [],
         stream: ShadowsocksStreamKind? = nil) {
        self.name = name
        self.family = family
        self.aead = aead
        self.stream = stream
        self.key = key
        self.identityKeys = identityKeys
        let next = identityKeys.dropFirst() + [key]
        self.identityHashes = next.map { ShadowsocksMethod.identityHash($0) }
    }

    /// SIP022's identity of a PSK: the first 16 bytes of its BLAKE3 hash.
    package static func identityHash(_ psk: [UInt8]) -> [UInt8] { BLAKE3.hash(psk, byteCount: 16) }

    static func aeadKind(_ name: String) -> ShadowsocksAEADKind? {
        switch name {
        case "aes-128-gcm", "2022-blake3-aes-128-gcm": .aes128GCM
        case "aes-192-gcm": .aes192GCM
        case "aes-256-gcm", "2022-blake3-aes-256-gcm": .aes256GCM
        case "chacha20-ietf-poly1305", "2022-blake3-chacha20-poly1305": .chacha20Poly1305
        case "xchacha20-ietf-poly1305": .xchacha20Poly1305
        default: nil
        }
    }

    /// The outbound's method, with sing-shadowsocks2's errors: `unknown method: x`, `missing password`,
    /// `decode key: illegal base64 data at input byte n`, `bad key length, required 16, got 32`.
    package static func client(name: String, password: String) throws(AdapterError) -> ShadowsocksMethod {
        if name == "none" { return ShadowsocksMethod(name: name, family: .none, aead: nil, key: []) }
        if let kind = ShadowsocksStreamKind(name: name) {
            guard !password.isEmpty else { throw AdapterError(.other, "missing password") }
            return ShadowsocksMethod(name: name, family: .stream, aead: nil,
                                     key: ShadowsocksKDF.legacyKey(password: password, byteCount: kind.keyByteCount), stream: kind)
        }
        guard let kind = aeadKind(name) else { throw AdapterError(.other, "unknown method: \(name)") }
        if legacyNames.contains(name) {
            guard !password.isEmpty else { throw AdapterError(.other, "missing password") }
            return ShadowsocksMethod(name: name, family: .legacy, aead: kind,
                                     key: ShadowsocksKDF.legacyKey(password: password, byteCount: kind.keyByteCount))
        }
        guard !password.isEmpty else { throw AdapterError(.other, "missing password") }
        let parts = password.split(separator: ":", omittingEmptySubsequences: false)
        var keys: [[UInt8]] = []
        for part in parts {
            switch Base64.decode(part) {
            case .success(let bytes): keys.append(bytes)
            case .failure(let offset): throw AdapterError(.other, "decode key: illegal base64 data at input byte \(offset)")
            }
        }
        if keys.count > 1 && kind == .chacha20Poly1305 {
            throw AdapterError(.other, "Shadowsocks 2022 EIH support only available in AES ciphers")
        }
        for key in keys where key.count != kind.keyByteCount {
            throw AdapterError(.other, "bad key length, required \(kind.keyByteCount), got \(key.count)")
        }
        return ShadowsocksMethod(name: name, family: .blake3, aead: kind, key: keys[keys.count - 1], identityKeys: Array(keys.dropLast()))
    }

    /// The inbound's method, with sing-shadowsocks' errors: `unsupported method: x`, `missing password`,
    /// `missing psk`, `decode psk: illegal base64 data at input byte n`, `bad key`. A 2022 PSK longer
    /// than the key is hashed down with SHA-256, as Go does.
    /// With `multiUser` (`users` present): legacy methods need no password (each user has one);
    /// SIP022 takes the inbound's PSK as the identity PSK and has no ChaCha variant (Go: `invalid argument`).
    package static func server(name: String, password: String, multiUser: Bool = false) throws(AdapterError) -> ShadowsocksMethod {
        if name == "none" {
            if multiUser { throw AdapterError(.other, "unsupported method: \(name)") }
            return ShadowsocksMethod(name: name, family: .none, aead: nil, key: [])
        }
        guard let kind = aeadKind(name) else { throw AdapterError(.other, "unsupported method: \(name)") }
        if multiUser && legacyNames.contains(name) {
            return ShadowsocksMethod(name: name, family: .legacy, aead: kind, key: [UInt8](repeating: 0, count: kind.keyByteCount))
        }
        if multiUser && kind == .chacha20Poly1305 { throw AdapterError(.other, "invalid argument") }
        if legacyNames.contains(name) {
            guard !password.isEmpty else { throw AdapterError(.other, "missing password") }
            return ShadowsocksMethod(name: name, family: .legacy, aead: kind,
                                     key: ShadowsocksKDF.legacyKey(password: password, byteCount: kind.keyByteCount))
        }
        guard !password.isEmpty else { throw AdapterError(.other, "missing psk") }
        var psk: [UInt8]
        switch Base64.decode(Substring(password)) {
        case .success(let bytes): psk = bytes
        case .failure(let offset): throw AdapterError(.other, "decode psk: illegal base64 data at input byte \(offset)")
        }
        if psk.count < kind.keyByteCount { throw AdapterError(.other, "bad key") }
        if psk.count > kind.keyByteCount { psk = Array(ShadowsocksKDF.sha256(psk).prefix(kind.keyByteCount)) }
        return ShadowsocksMethod(name: name, family: .blake3, aead: kind, key: psk)
    }
}

/// One user of a multi-user inbound: its name for logs and metadata, its key (legacy: the master key
/// from its password; SIP022: its uPSK) and, for SIP022, its identity hash.
package struct ShadowsocksServerUser: Sendable, Equatable {
    /// The config name, or the user's index when it has none.
    package var name: String
    /// Legacy: the master key from the password; SIP022: the uPSK.
    package var key: [UInt8]
    /// SIP022: the first 16 bytes of BLAKE3(uPSK); empty for legacy.
    package var identity: [UInt8]
}

/// The users of a multi-user inbound (sing-shadowsocks `MultiService`), looked up by identity (SIP022)
/// or tried in order (legacy).
package struct ShadowsocksUserTable: Sendable {
    /// The users in config order (the order legacy keys are tried in).
    package let users: [ShadowsocksServerUser]
    private let byIdentity: [[UInt8]: Int]

    /// Users from the config, with sing-shadowsocks' errors (`missing password`, `decode psk: …`,
    /// `bad key`). A user without a name is called by its index, as Go does.
    package init(method: ShadowsocksMethod, users: [(name: String, password: String)]) throws(AdapterError) {
        var built: [ShadowsocksServerUser] = []
        for (index, user) in users.enumerated() {
            guard !user.password.isEmpty else { throw AdapterError(.other, "missing password") }
            let name = user.name.isEmpty ? String(index) : user.name
            switch method.family {
            case .blake3:
                var psk: [UInt8]
                switch Base64.decode(Substring(user.password)) {
                case .success(let bytes): psk = bytes
                case .failure(let offset): throw AdapterError(.other, "decode psk: illegal base64 data at input byte \(offset)")
                }
                if psk.count < method.key.count { throw AdapterError(.other, "bad key") }
                if psk.count > method.key.count { psk = Array(ShadowsocksKDF.sha256(psk).prefix(method.key.count)) }
                built.append(ShadowsocksServerUser(name: name, key: psk, identity: ShadowsocksMethod.identityHash(psk)))
            case .legacy:
                built.append(ShadowsocksServerUser(name: name, key: ShadowsocksKDF.legacyKey(password: user.password, byteCount: method.key.count),
                                                   identity: []))
            case .none, .stream:
                throw AdapterError(.other, "unsupported method: \(method.name)")
            }
        }
        self.users = built
        var byIdentity: [[UInt8]: Int] = [:]
        for (index, user) in built.enumerated() where !user.identity.isEmpty { byIdentity[user.identity] = index }
        self.byIdentity = byIdentity
    }

    /// The user whose identity hash is `identity`.
    package func user(identity: [UInt8]) -> ShadowsocksServerUser? {
        byIdentity[identity].map { users[$0] }
    }
}

/// Go's `base64.StdEncoding.DecodeString`: padded, strict; a failure carries the byte offset Go reports.
enum Base64 {
    enum Result { case success([UInt8]), failure(Int) }

    static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }

    static func decode(_ text: Substring) -> Result {
        // Go skips \r and \n anywhere; offsets count them.
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            var quantum: [UInt8] = []
            var start = index
            var padding = 0
            while quantum.count + padding < 4 {
                guard index < bytes.count else {
                    // Input ended inside a quantum: Go reports where the quantum began.
                    return quantum.isEmpty && padding == 0 ? .success(out) : .failure(start)
                }
                let c = bytes[index]
                if c == 0x0A || c == 0x0D {
                    index += 1
                    if quantum.isEmpty && padding == 0 { start = index }
                    continue
                }
                if c == UInt8(ascii: "=") {
                    // Padding only after two or three symbols.
                    guard quantum.count >= 2 else { return .failure(index) }
                    padding += 1
                    index += 1
                    continue
                }
                guard padding == 0, let v = value(c) else { return .failure(index) }
                quantum.append(v)
                index += 1
            }
            let n = quantum.count
            let word = quantum.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << UInt32(18 - 6 * $1.offset) }
            out.append(UInt8(truncatingIfNeeded: word >> 16))
            if n >= 3 { out.append(UInt8(truncatingIfNeeded: word >> 8)) }
            if n == 4 { out.append(UInt8(truncatingIfNeeded: word)) }
            if padding > 0 {
                // Nothing but newlines may follow padding.
                if let extra = bytes[index...].firstIndex(where: { $0 != 0x0A && $0 != 0x0D }) { return .failure(extra) }
                return .success(out)
            }
        }
        return .success(out)
    }
}
