import Adapter
import HTTPProxy
import NIOCore
import Testing

private func head(_ text: String) throws -> HTTPRequestHead {
    var b = buffer(text)
    return try #require(try HTTPRequestHead.read(from: &b))
}

@Suite struct HTTPProxyRequestTests {
    @Test(arguments: [("example.com:443", Destination(domain: "example.com", port: 443)),
                      ("example.com", Destination(domain: "example.com", port: 80)),
                      ("1.2.3.4:8443", Destination(ip: .v4(0x0102_0304), port: 8443)),
                      ("[::1]:22", Destination(ip: .v6(IPv6Bits(high: 0, low: 1)), port: 22)),
                      ("[::1]", Destination(ip: .v6(IPv6Bits(high: 0, low: 1)), port: 80))])
    func connectTargets(target: String, destination: Destination) throws {
        let request = try HTTPProxyRequest(try head("CONNECT \(target) HTTP/1.1\r\n\r\n"))
        #expect(request == .connect(destination))
    }

    @Test(arguments: ["::1:80", "[::1:80", "", ":80", "a b:80"])
    func badConnectTargets(target: String) throws {
        let h = HTTPRequestHead(method: "CONNECT", target: target)
        #expect(throws: HTTPProxyError.badTarget) { try HTTPProxyRequest(h) }
    }

    @Test func forwardRewritesToOriginForm() throws {
        let request = try HTTPProxyRequest(try head(
            "GET http://user:pw@example.com:8080/a/b?q=1#frag HTTP/1.1\r\nHost: example.com:8080\r\n"
            + "Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nConnection: keep-alive, X-Hop\r\n"
            + "X-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\nAccept: */*\r\n\r\n"))
        guard case .forward(let destination, let rewritten, let upgrade) = request else { Issue.record("\(request)"); return }
        #expect(destination == Destination(domain: "example.com", port: 8080))
        #expect(!upgrade)
        var out = ByteBuffer()
        rewritten.write(to: &out)
        #expect(String(buffer: out) == "GET /a/b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nTransfer-Encoding: chunked\r\n"
                + "Accept: */*\r\nConnection: close\r\n\r\n")
    }

    @Test func forwardAddsHostWithoutPort80() throws {
        let request = try HTTPProxyRequest(try head("GET http://example.com:80 HTTP/1.0\r\n\r\n"))
        guard case .forward(let destination, let rewritten, _) = request else { Issue.record("\(request)"); return }
        #expect(destination.port == 80)
        #expect(rewritten.target == "/")
        #expect(rewritten.headers["Host"] == "example.com")
        #expect(rewritten.version == "HTTP/1.0")
    }

    @Test func forwardKeepsUpgradeHeaders() throws {
        let request = try HTTPProxyRequest(try head(
            "GET http://ws.example/chat HTTP/1.1\r\nHost: ws.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Proxy-Authorization: Basic eDp5\r\n\r\n"))
        guard case .forward(_, let rewritten, let upgrade) = request else { Issue.record("\(request)"); return }
        #expect(upgrade)
        #expect(rewritten.headers["Upgrade"] == "websocket")
        #expect(rewritten.headers["Connection"] == "Upgrade")
        #expect(rewritten.headers["Proxy-Authorization"] == nil)
    }

    @Test func httpsSchemeDefaultsTo443() throws {
        guard case .forward(let destination, _, _) = try HTTPProxyRequest(try head("GET https://a.b/ HTTP/1.1\r\n\r\n")) else {
            Issue.record("not forward"); return
        }
        #expect(destination.port == 443)
    }

    @Test(arguments: ["/", "*", "example.com/", "://x/"])
    func originFormIsBadRequest(target: String) {
        #expect(throws: HTTPProxyError.badTarget) { try HTTPProxyRequest(HTTPRequestHead(method: "GET", target: target)) }
    }

    @Test func basicCredentials() {
        #expect(HTTPBasicCredentials(proxyAuthorization: "Basic Ym9iOnNlY3JldA==") == HTTPBasicCredentials(username: "bob", password: "secret"))
        #expect(HTTPBasicCredentials(proxyAuthorization: "basic Ym9iOnNlY3JldA") == HTTPBasicCredentials(username: "bob", password: "secret"))
        // password with a colon keeps it
        #expect(HTTPBasicCredentials(proxyAuthorization: "Basic " + Base64.encode(Array("u:a:b".utf8)))?.password == "a:b")
        #expect(HTTPBasicCredentials(proxyAuthorization: "Bearer abc") == nil)
        #expect(HTTPBasicCredentials(proxyAuthorization: "Basic !!!!") == nil)
        #expect(HTTPBasicCredentials(proxyAuthorization: "Basic " + Base64.encode(Array("nocolon".utf8))) == nil)
        #expect(HTTPBasicCredentials(username: "bob", password: "secret").headerValue == "Basic Ym9iOnNlY3JldA==")
    }

    @Test func base64RoundTrips() {
        for length in 0..<40 {
            let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let encoded = Base64.encode(data)
            #expect(Base64.decode(encoded) == data)
            #expect(Base64.decode(encoded.replacing("=", with: "")) == data)
        }
        #expect(Base64.decode("-_8=") == [0xfb, 0xff])  // URL alphabet, as Go's proxy decodes
        #expect(Base64.decode("A") == nil)
        #expect(Base64.decode("AB=C") == nil)
    }

    @Test func responsesMatchGoBytes() {
        // Captured from Go sing-box 1.12.12's mixed inbound.
        #expect(String(buffer: HTTPProxyResponse.proxyAuthenticationRequired(version: "HTTP/1.1"))
                == "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"sing-box\" charset=\"UTF-8\"\r\nContent-Length: 0\r\n\r\n")
        #expect(String(buffer: HTTPProxyResponse.connectionEstablished(version: "HTTP/1.0")) == "HTTP/1.0 200 Connection established\r\n\r\n")
        #expect(String(buffer: HTTPProxyResponse.status(502, "Bad Gateway", version: "HTTP/1.1"))
                == "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
    }
}
