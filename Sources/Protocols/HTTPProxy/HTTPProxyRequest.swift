// What a proxy does with one request head:
// 1. credentials: `Proxy-Authorization: Basic …` against the inbound's users (RFC 7617)
// 2. CONNECT authority-form → a tunnel to host:port (RFC 9110 §9.3.6; no port means 80, as Go)
// 3. absolute-form → forward: rewrite to origin-form, drop hop-by-hop fields (RFC 9110 §7.6.1,
//    plus Proxy-Connection as Go drops it), keep the body bytes as they come
// 4. anything else (origin-form, `*`) → 400, as Go's proxy answers a request without scheme/host
import Config
package import Adapter
package import NIOCore

/// Credentials from `Proxy-Authorization: Basic`.
package struct HTTPBasicCredentials: Hashable, Sendable {
    package var username: String
    package var password: String

    package init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// Parses a `Basic <base64(user:pass)>` field value; nil when it is not one.
    package init?(proxyAuthorization value: String) {
        let trimmed = value.trimmingSpaces
        guard trimmed.count > 6, HTTPHeaders.same(trimmed.prefix(6), "Basic ") else { return nil }
        guard let bytes = Base64.decode(trimmed.dropFirst(6).trimmingSpaces),
              let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        username = String(decoding: bytes[..<colon], as: UTF8.self)
        password = String(decoding: bytes[(colon + 1)...], as: UTF8.self)
    }

    /// The field value a client sends: `Basic ` and the standard base64 of `user:pass`.
    package var headerValue: String { "Basic " + Base64.encode(Array("\(username):\(password)".utf8)) }
}

/// The decision for one request head.
package enum HTTPProxyRequest: Sendable, Equatable {
    /// Open a tunnel to the destination and answer `200 Connection established`.
    case connect(Destination)
    /// Send `head` (already rewritten to origin-form) to the destination, then relay both ways.
    /// `upgrade` is true for `Connection: upgrade` (WebSocket), which is passed on untouched.
    case forward(Destination, head: HTTPRequestHead, upgrade: Bool)

    /// Interprets `head`; throws `.badTarget` when it names no destination (answer 400).
    package init(_ head: HTTPRequestHead) throws(HTTPProxyError) {
        if head.method == "CONNECT" {
            self = .connect(try Self.authority(Substring(head.target), defaultPort: 80))
            return
        }
        guard let schemeEnd = head.target.firstRange(of: "://") else { throw .badTarget }
        let scheme = head.target[..<schemeEnd.lowerBound].lowercased()
        guard !scheme.isEmpty, scheme.utf8.allSatisfy(Self.isSchemeByte) else { throw .badTarget }
        let afterScheme = head.target[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? afterScheme.endIndex
        var authority = afterScheme[..<authorityEnd]
        // userinfo@ is deprecated in http URIs (RFC 9110 §4.2.4); it never names the host.
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let defaultPort: UInt16 = (scheme == "https" || scheme == "wss") ? 443 : 80
        let destination = try Self.authority(authority, defaultPort: defaultPort)

        var pathAndQuery = afterScheme[authorityEnd...]
        if let hash = pathAndQuery.firstIndex(of: "#") { pathAndQuery = pathAndQuery[..<hash] }
        var target = String(pathAndQuery)
        if !target.hasPrefix("/") { target = "/" + target }

        var rewritten = head
        rewritten.target = target
        let upgrade = head.headers.hasToken("Connection", "upgrade")
        if upgrade {
            // Go writes an upgrade request as it came; credentials for us still stay here.
            rewritten.headers.remove("Proxy-Authorization")
            rewritten.headers.remove("Proxy-Connection")
        } else {
            Self.removeHopByHop(&rewritten.headers)
            // One request per upstream connection: the relay after the head is raw bytes, so the
            // server must end the response by closing.
            rewritten.headers.add("Connection", "close")
        }
        if rewritten.headers["Host"] == nil {
            // Go drops an explicit :80 from the host it sends (removeExtraHTTPHostPort).
            var host = String(authority)
            if host.hasSuffix(":80") { host.removeLast(3) }
            rewritten.headers.fields.insert(HTTPHeader("Host", host), at: 0)
        }
        self = .forward(destination, head: rewritten, upgrade: upgrade)
    }

    /// RFC 3986 §3.1: ALPHA / DIGIT / "+" / "-" / "."
    private static func isSchemeByte(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2B || c == 0x2D || c == 0x2E
    }

    /// `host:port`, `[v6]:port` or a bare host (then `defaultPort`).
    static func authority(_ text: Substring, defaultPort: UInt16) throws(HTTPProxyError) -> Destination {
        // Printable ASCII without URI delimiters; UTF-8 names pass through.
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F && $0 != 0x2F && $0 != 0x3F && $0 != 0x23 && $0 != 0x40 })
        else { throw .badTarget }
        if let destination = Destination(text) {
            guard !destination.host.description.isEmpty else { throw .badTarget }
            return destination
        }
        // No port: a bare name, a bracketed IPv6, or a trailing colon with an empty port.
        var host = text
        if host.hasSuffix(":"), !host.hasSuffix("::") || host.hasPrefix("[") { host = host.dropLast() }
        if host.contains(":"), !host.hasPrefix("[") { throw .badTarget }
        if host.hasPrefix("[") != host.hasSuffix("]") { throw .badTarget }
        guard !host.isEmpty, host != "[]", !host.contains(" ") else { throw .badTarget }
        return Destination(host: Host(host), port: defaultPort)
    }

    /// Drops the fields that describe this hop only: RFC 9110 §7.6.1's list, the names
    /// `Connection` lists, and `Proxy-Connection` as Go drops it. `Transfer-Encoding` stays,
    /// because the body passes through unchanged.
    package static func removeHopByHop(_ headers: inout HTTPHeaders) {
        let listed = headers.values("Connection").flatMap { $0.split(separator: ",").map { String($0.trimmingSpaces) } }
        for name in ["Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Connection",
                     "Keep-Alive", "TE", "Trailer", "Trailers", "Upgrade"] {
            headers.remove(name)
        }
        for name in listed where !name.isEmpty && !HTTPHeaders.same(name, "Transfer-Encoding") {
            headers.remove(name)
        }
    }
}

/// The responses a proxy server writes itself, byte for byte as Go's `http.Response.Write`
/// writes them for sing's proxy.
package enum HTTPProxyResponse {
    /// `407` with `Proxy-Authenticate: Basic realm="sing-box" charset="UTF-8"`.
    package static func proxyAuthenticationRequired(version: String) -> ByteBuffer {
        ByteBuffer(string: "\(version) 407 Proxy Authentication Required\r\n"
            + "Proxy-Authenticate: Basic realm=\"sing-box\" charset=\"UTF-8\"\r\nContent-Length: 0\r\n\r\n")
    }

    /// `200 Connection established`, the CONNECT success line sing writes.
    package static func connectionEstablished(version: String) -> ByteBuffer {
        ByteBuffer(string: "\(version) 200 Connection established\r\n\r\n")
    }

    /// A bodiless error status (`400 Bad Request`, `502 Bad Gateway`, …).
    package static func status(_ code: Int, _ reason: String, version: String) -> ByteBuffer {
        ByteBuffer(string: "\(version) \(code) \(reason)\r\nContent-Length: 0\r\n\r\n")
    }
}
