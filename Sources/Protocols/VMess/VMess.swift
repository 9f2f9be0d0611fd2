// VMess: the VMess AEAD protocol as Go sing-box 1.12.12 speaks it (github.com/sagernet/sing-vmess
// v0.2.7, read for facts; v2ray's protocol documents for the same bytes), the `vmess` outbound and
// the `vmess` inbound.
//
// Wire (client → server, once, before the body):
//   auth ID (16: AES-128(KDF(cmdKey, "AES Auth ID Encryption")) of time u64 ‖ rand 4 ‖ crc32 of both)
//   ‖ sealed header length (2 + 16) ‖ connection nonce (8) ‖ sealed header (L + 16)
//   header = version 1 ‖ body nonce 16 ‖ body key 16 ‖ response byte ‖ option ‖ padding<<4|security
//            ‖ 0 ‖ command ‖ port u16 ‖ address type (1 IPv4, 2 domain, 3 IPv6) ‖ address
//            ‖ padding ‖ fnv1a32 of everything before it
// Server → client, once, before its body: sealed length (2 + 16) ‖ sealed (response byte, option, 0, 0).
// Body: chunks, each a (masked) u16 length then the data sealed with the security's AEAD
// (counter nonce) and random padding when `global_padding` is on; `authenticated_length` seals the
// length instead of masking it. Security `none` on TCP sends the body unframed.
// UDP (command 2): one datagram per chunk, on its own stream.
//
// Invariants: nothing a peer sends can trap; crypto contexts are per connection and loop-confined.
// Imports: Adapter, Net, TLS, Transport, Config, NIOCore, COpenSSL, CZlib (STYLE.md §1, floor 8).
import Config
import COpenSSL

/// The module's constants (sing-vmess protocol.go).
package enum VMessModule {
    package static let name = "VMess"
    /// Header version byte.
    package static let version: UInt8 = 1
    /// Commands.
    package static let commandTCP: UInt8 = 1
    package static let commandUDP: UInt8 = 2
    package static let commandMux: UInt8 = 3
    /// Networks of mux frames.
    package static let networkTCP: UInt8 = 1
    package static let networkUDP: UInt8 = 2
    /// Request options.
    package static let optionChunkStream: UInt8 = 1
    package static let optionChunkMasking: UInt8 = 4
    package static let optionGlobalPadding: UInt8 = 8
    package static let optionAuthenticatedLength: UInt8 = 16
    /// Security bytes of the header.
    package static let securityLegacy: UInt8 = 1
    package static let securityAES128GCM: UInt8 = 3
    package static let securityChaCha20Poly1305: UInt8 = 4
    package static let securityNone: UInt8 = 5
    /// v2ray's `zero`: no body framing (sing-vmess clients send `none` for it).
    package static let securityZero: UInt8 = 6
    /// Plaintext per AEAD chunk (`WriteChunkSize`).
    package static let writeChunkSize = 15000
    /// Tag bytes of every AEAD here (`CipherOverhead`).
    package static let tagByteCount = 16
    /// Global padding is `hash % 64` bytes (`MaxPaddingSize`).
    package static let maxPaddingSize: UInt16 = 64
    /// Seconds an auth ID's time may differ from ours, and how long auth IDs are remembered.
    package static let cacheDurationSeconds: Int64 = 120
    /// The shortest first read a server accepts (auth ID, sealed length, nonce, tag, 42 header bytes).
    package static let aeadMinimumHeaderLength = 16 + 18 + 8 + 16 + 42
    /// Go's `C.ReadPayloadTimeout`: how long the request waits for the first payload.
    package static let firstPayloadWait: Int64 = 300

    /// The UUID's 16 bytes: a UUID string, else (as gofrs `uuid.NewV5(uuid.Nil, text)`) the SHA-1
    /// name-based UUID of the text. Never fails, as in Go.
    package static func userID(_ text: String) -> [UInt8] {
        if let parsed = parseUUID(text) { return parsed }
        var digest = VMessCrypto.sha1([UInt8](repeating: 0, count: 16) + Array(text.utf8))
        digest = Array(digest.prefix(16))
        digest[6] = (digest[6] & 0x0f) | 0x50
        digest[8] = (digest[8] & 0x3f) | 0x80
        return digest
    }

    /// Parses the canonical 8-4-4-4-12 form, braces and `urn:uuid:` and the 32-hex form, as gofrs does.
    static func parseUUID(_ text: String) -> [UInt8]? {
        var hex = Substring(text)
        if hex.hasPrefix("urn:uuid:") { hex = hex.dropFirst(9) }
        if hex.hasPrefix("{") && hex.hasSuffix("}") { hex = hex.dropFirst().dropLast() }
        let utf8 = Array(hex.utf8)
        let digits: [UInt8]
        if utf8.count == 36 {
            guard utf8[8] == 0x2d, utf8[13] == 0x2d, utf8[18] == 0x2d, utf8[23] == 0x2d else { return nil }
            digits = utf8.filter { $0 != 0x2d }
            guard digits.count == 32 else { return nil }
        } else if utf8.count == 32 {
            digits = utf8
        } else {
            return nil
        }
        var out: [UInt8] = []
        out.reserveCapacity(16)
        var index = 0
        while index < 32 {
            guard let high = asciiHexValue(digits[index]), let low = asciiHexValue(digits[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }


    /// The legacy header's alter ID after `userID` (`AlterId`): MD5(id ‖ "16167dc8-…"), extended with
    /// "533eff8a-…" while it equals `userID`.
    package static func alterID(_ userID: [UInt8]) -> [UInt8] {
        var input = userID + Array("16167dc8-16b6-4e6d-b8bb-65dd68113a81".utf8)
        while true {
            let candidate = VMessCrypto.md5(input)
            if candidate != userID { return candidate }
            input += Array("533eff8a-4113-4b10-b5ce-0f5d76b98cd2".utf8)
        }
    }

    /// The command key: MD5(uuid ‖ "c48619fe-8f02-49e0-b9e9-edf763e17e21") (`Key`).
    package static func commandKey(userID: [UInt8]) -> [UInt8] {
        VMessCrypto.md5(userID + Array("c48619fe-8f02-49e0-b9e9-edf763e17e21".utf8))
    }
}
