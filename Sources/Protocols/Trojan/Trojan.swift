// Trojan: the trojan wire format (trojan-gfw's protocol, as Go sing-box 1.12.12's transport/trojan
// speaks it), the `trojan` outbound and the `trojan` inbound (TLS or plain TCP, fallback).
//
// Wire (client → server, once, in front of the first payload):
//   hex(SHA224(password)) (56 bytes) CRLF, command (1 connect, 3 UDP associate), address (SOCKS5
//   form: ATYP, address, port), CRLF
// TCP: then the payload both ways, unframed. UDP: then each packet, both ways, as
//   address (SOCKS5 form), length (2 bytes, big endian), CRLF, payload.
// The server never answers the request: a wrong password shows only as the server closing or
// serving its fallback (Go's inbound and trojan-gfw), so the dial itself cannot fail on it.
//
// Invariants: nothing a peer sends can trap; a UDP frame's length is bounded by its 16-bit field.
// Imports: Adapter, Net, TLS, Config, NIOCore, COpenSSL (SHA-224), and SOCKS for its address
// codec only (STYLE.md §1, floor 8).
import COpenSSL

/// The module's constants and the password key.
package enum TrojanModule {
    package static let name = "Trojan"
    /// `KeyLength` in transport/trojan: the hex SHA-224 of the password.
    package static let keyLength = 56
    /// Request commands (trojan-gfw's protocol document).
    package static let commandConnect: UInt8 = 1
    package static let commandUDPAssociate: UInt8 = 3
    /// sing-box's multiplex command (`CommandMux`), answered by sing-mux; not in this build.
    package static let commandMux: UInt8 = 0x7f
    /// Go's `C.ReadPayloadTimeout`: how long the request waits for the first payload bytes to
    /// travel with it before it is sent alone (server-speaks-first protocols).
    package static let firstPayloadWait: Int64 = 300

    /// `Key(password)`: lowercase hex of SHA-224 over the password's UTF-8 bytes.
    package static func key(password: String) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 28)
        var length: UInt32 = 0
        let bytes = Array(password.utf8)
        let ok = bytes.withUnsafeBytes { raw in
            EVP_Digest(raw.baseAddress, raw.count, &digest, &length, EVP_sha224(), nil)
        }
        precondition(ok == 1 && length == 28, "SHA-224 is always available in OpenSSL")
        let hex = Array("0123456789abcdef".utf8)
        var key: [UInt8] = []
        key.reserveCapacity(keyLength)
        for byte in digest {
            key.append(hex[Int(byte >> 4)])
            key.append(hex[Int(byte & 0x0f)])
        }
        return key
    }
}
