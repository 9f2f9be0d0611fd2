// The `naive` inbound (Go sing-box 1.12.12 protocol/naive, read for facts): an HTTP CONNECT
// proxy that naiveproxy's client reaches over HTTP/2 (TLS, ALPN h2: one TCP connection carries many
// proxied streams) or HTTP/1.1 (plain TCP or TLS).
// 1. Each request is checked in Go's order, each failure one log line
//    (`process connection from <source>: <reason>`) and Go's answer: not CONNECT → 400
//    `not CONNECT request`; no `Padding` header → 400 `missing naive padding`; Basic
//    `Proxy-Authorization` not naming a user → 407 `authorization failed`. Over HTTP/2 the status
//    is sent; over HTTP/1.1 Go hijacks and closes instead (a reset on plain TCP, SO_LINGER 0).
// 2. Success: 200 with a `Padding` header of its own, then `[user] inbound connection from/to`.
// 3. The first 8 reads and the first 8 writes of the tunnel are naive frames (`NaivePaddingHandler`),
//    raw bytes after that.
// QUIC (`network` udp, HTTP/3) is not in this build. Imports: Transport (HTTP/2 streams), HTTPProxy
// for its HTTP/1 head and Basic credential codecs only.
import Adapter

/// The naive protocol's shared pieces.
package enum NaiveModule {
    /// Padded frames each way before the stream goes raw (Go's `kFirstPaddings`).
    static let firstPaddings = 8

    /// Go's `generateNaivePaddingHeader`: 30–61 bytes, 16 random ones of a set HPACK's Huffman
    /// code would not shorten, then `~`.
    static func paddingHeader() -> String {
        let length = Int.random(in: 30...61)
        let alphabet = Array("!#$()+<>?@[]^`{}".utf8)
        var bits = UInt64.random(in: .min ... .max)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(length)
        for _ in 0..<16 {
            bytes.append(alphabet[Int(bits & 15)])
            bits >>= 4
        }
        while bytes.count < length { bytes.append(UInt8(ascii: "~")) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension NaiveModule {
    /// sing's `http.SourceAddress`: the first entry of `X-Forwarded-For` that is an IP address
    /// (untrimmed, as Go parses it) replaces the peer's address; the port stays.
    static func source(_ peer: Destination?, forwardedFor: String?) -> Destination? {
        guard var source = peer, let forwardedFor, !forwardedFor.isEmpty else { return peer }
        for entry in forwardedFor.split(separator: ",", omittingEmptySubsequences: false) {
            var text = entry
            if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
            if let ip = IPAddress(text) {
                source.host = .ip(ip.unmapped)
                break
            }
        }
        return source
    }
}

/// sing's `auth.Authenticator`: a name may carry several passwords; any of them passes.
struct NaiveUsers: Sendable {
    private var passwords: [String: [String]] = [:]

    init(_ users: [(username: String, password: String)]) {
        for user in users { passwords[user.username, default: []].append(user.password) }
    }

    func verify(username: String, password: String) -> Bool {
        passwords[username]?.contains(password) ?? false
    }
}

/// One request's verdict (Go's `ServeHTTP` checks, in its order).
enum NaiveRequestCheck: Equatable {
    case reject(status: Int, reason: String)
    /// The user name (may be empty) and where to connect.
    case accept(user: String, destination: Destination)

    /// `method`, the `Padding` and `Proxy-Authorization` values (nil when absent) and the
    /// authority (`host:port`; Go's `M.ParseSocksaddr`, port 0 when missing).
    init(method: String, padding: String?, authorization: String?, authority: String, users: NaiveUsers) {
        guard method == "CONNECT" else {
            self = .reject(status: 400, reason: "not CONNECT request")
            return
        }
        guard let padding, !padding.isEmpty else {
            self = .reject(status: 400, reason: "missing naive padding")
            return
        }
        guard let credentials = authorization.flatMap({ Self.basicCredentials($0) }),
              users.verify(username: credentials.username, password: credentials.password) else {
            self = .reject(status: 407, reason: "authorization failed")
            return
        }
        self = .accept(user: credentials.username, destination: Self.destination(authority))
    }

    /// sing's `http.ParseBasicAuth`: `Basic ` (any case), standard base64, split at the first colon.
    static func basicCredentials(_ value: String) -> (username: String, password: String)? {
        let prefix = "basic "
        guard value.utf8.count >= prefix.utf8.count, value.prefix(6).lowercased() == prefix,
              let bytes = NaiveBase64.decode(Array(value.utf8.dropFirst(6))),
              let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        return (String(decoding: bytes[..<colon], as: UTF8.self), String(decoding: bytes[(colon + 1)...], as: UTF8.self))
    }

    /// Go's `M.ParseSocksaddr(hostPort).Unwrap()`: a missing port is 0.
    static func destination(_ authority: String) -> Destination {
        if let parsed = Destination(authority) { return parsed }
        var host = Substring(authority)
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return Destination(host: Host(String(host)), port: 0)
    }
}

/// Strict standard base64 (Go's `base64.StdEncoding`: padding required, no whitespace).
enum NaiveBase64 {
    static func decode(_ text: [UInt8]) -> [UInt8]? {
        guard text.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 4 * 3)
        var index = 0
        while index < text.count {
            var values: [UInt8] = []
            var padding = 0
            for offset in 0..<4 {
                let byte = text[index + offset]
                if byte == UInt8(ascii: "=") {
                    // Padding only at the end of the last quantum, at most two.
                    guard index + 4 == text.count, offset >= 2 else { return nil }
                    padding += 1
                    values.append(0)
                    continue
                }
                guard padding == 0, let value = sextet(byte) else { return nil }
                values.append(value)
            }
            let triple = UInt32(values[0]) << 18 | UInt32(values[1]) << 12 | UInt32(values[2]) << 6 | UInt32(values[3])
            out.append(UInt8(truncatingIfNeeded: triple >> 16))
            if padding < 2 { out.append(UInt8(truncatingIfNeeded: triple >> 8)) }
            if padding < 1 { out.append(UInt8(truncatingIfNeeded: triple)) }
            index += 4
        }
        return out
    }

    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }
}
