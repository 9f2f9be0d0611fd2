// AnyTLS: the anytls protocol (github.com/anytls/sing-anytls v0.0.11, as Go sing-box 1.12.12's
// protocol/anytls uses it; read for facts), the `anytls` outbound and the `anytls` inbound.
//
// Wire, inside TLS (the inbound may also run on plain TCP; the outbound requires TLS):
// 1. client → server once, as its own record: SHA-256(password) (32 bytes), padding length
//    (u16 BE), that many zero bytes (the padding scheme's packet 0, `0=30-30` by default).
// 2. then a session both ways: frames of cmd (1 byte), stream id (u32 BE), length (u16 BE), data.
//    The client opens a stream with SYN; a stream's first data is its destination as a SOCKS
//    address (RFC 1928 ATYP 1/3/4); FIN ends a stream both ways (there is no half-close).
// 3. the client's first session write carries a settings frame (`v=2`, `client=…`,
//    `padding-md5=…`); a v2 server answers with server settings (`v=2`), a padding scheme update
//    when the md5 differs, and a SYN-ACK per stream once its outbound connected (with the error
//    text when it did not).
// 4. the client pads its first `stop` writes per session by the scheme (`AnyTLSPaddingScheme`);
//    the server never pads.
// 5. UDP is sing's UDP-over-TCP version 2 on a stream to `sp.v2.udp-over-tcp.arpa` (Transport).
// 6. the client keeps idle sessions and reuses them for new streams (`AnyTLSSessionPool`).
//
// Invariants: nothing a peer sends can trap; a session and its streams live on one event loop.
// Imports: Adapter, Net, TLS, Transport, Config, NIOCore, COpenSSL (SHA-256, MD5) (STYLE.md §1, floor 8).
import COpenSSL

/// The module's constants and digests.
package enum AnyTLSModule {
    /// The module name.
    package static let name = "AnyTLS"
    /// `util.Verison` of sing-anytls v0.0.11, sent as `client=` in the settings frame (servers only
    /// log it; sending Go's value keeps the session's first record the size Go's would be).
    package static let clientVersion = "sing-anytls/0.0.11"
    /// The protocol version both ends speak (`v=2`: SYN-ACK, heartbeats, server settings).
    package static let protocolVersion = 2
    /// Go's session client: an interval or timeout of 5 s or less means 30 s.
    package static let defaultIdleInterval: Int64 = 30
    /// Go's `OpenStream`: a v2 session whose newest stream (id ≥ 2) sees no SYN-ACK in 3 s is closed.
    package static let synAckTimeoutSeconds: Int64 = 3

    /// SHA-256 of the password's UTF-8 bytes (the authentication key, `sha256.Sum256`).
    package static func passwordHash(_ password: String) -> [UInt8] {
        digest(Array(password.utf8), EVP_sha256(), 32)
    }

    /// Lowercase hex MD5 (`fmt.Sprintf("%x", md5.Sum(...))`), the `padding-md5` setting.
    package static func md5Hex(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for byte in digest(bytes, EVP_md5(), 16) {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func digest(_ bytes: [UInt8], _ md: OpaquePointer?, _ size: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBytes { raw in EVP_Digest(raw.baseAddress, raw.count, &out, &length, md, nil) }
        precondition(ok == 1 && Int(length) == size, "SHA-256 and MD5 are always available in OpenSSL")
        return out
    }
}

/// `util.StringMap` of sing-anytls: `key=value` lines joined by `\n` (settings frames, padding schemes).
package enum AnyTLSStringMap {
    /// Go's `StringMapFromBytes`: split on `\n`, each line at its first `=`; lines without one are
    /// skipped; nothing is trimmed; a later key wins.
    package static func parse(_ bytes: [UInt8]) -> [String: String] {
        var map: [String: String] = [:]
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            guard let equals = line.firstIndex(of: UInt8(ascii: "=")) else { continue }
            map[String(decoding: line[line.startIndex..<equals], as: UTF8.self)] =
                String(decoding: line[line.index(after: equals)...], as: UTF8.self)
        }
        return map
    }

    /// `ToBytes`, in the order given (Go's map order is random; a reader must not care).
    package static func encode(_ pairs: [(String, String)]) -> [UInt8] {
        Array(pairs.map { "\($0.0)=\($0.1)" }.joined(separator: "\n").utf8)
    }
}
