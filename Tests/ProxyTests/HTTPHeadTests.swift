import HTTPProxy
import NIOCore
import Testing

private let connectHead = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic Ym9iOnNlY3JldA==\r\n\r\n"

@Suite struct HTTPHeadTests {
    @Test func readsConnect() throws {
        var b = buffer(connectHead + "\u{16}\u{03}")
        let head = try #require(try HTTPRequestHead.read(from: &b))
        #expect(head.method == "CONNECT")
        #expect(head.target == "example.com:443")
        #expect(head.version == "HTTP/1.1")
        #expect(head.headers["host"] == "example.com:443")
        #expect(head.headers["PROXY-AUTHORIZATION"] == "Basic Ym9iOnNlY3JldA==")
        #expect(bytes(b) == [0x16, 0x03])
    }

    @Test func everyTruncationWaits() throws {
        let all = Array(connectHead.utf8)
        for length in 0..<all.count {
            var b = buffer(Array(all.prefix(length)))
            #expect(try HTTPRequestHead.read(from: &b) == nil, "length \(length)")
            #expect(b.readableBytes == length)
        }
    }

    @Test func resumedScanMatchesFullScan() throws {
        let all = Array(connectHead.utf8)
        var b = ByteBuffer()
        var resume = 0
        var found: HTTPRequestHead?
        for byte in all {
            b.writeInteger(byte)
            if let head = try HTTPRequestHead.read(from: &b, resume: &resume) { found = head }
        }
        var whole = buffer(connectHead)
        #expect(found == (try HTTPRequestHead.read(from: &whole)))
    }

    @Test func acceptsBareLFAndLeadingBlankLines() throws {
        var b = buffer("\r\n\nGET http://a/ HTTP/1.0\nHost: a\n\n")
        let head = try #require(try HTTPRequestHead.read(from: &b))
        #expect(head.method == "GET")
        #expect(head.versionMinor == 0)
        #expect(head.headers["host"] == "a")
    }

    @Test func limitsHeadSize() {
        var b = buffer("GET http://a/ HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 1 << 20) + "\r\n\r\n")
        #expect(throws: HTTPProxyError.headTooLarge(limit: HTTPRequestHead.maximumLength)) { try HTTPRequestHead.read(from: &b) }
        // An unterminated head fails as soon as it passes the limit.
        var partial = buffer("GET http://a/ HTTP/1.1\r\nX: " + String(repeating: "b", count: 70_000))
        #expect(throws: HTTPProxyError.headTooLarge(limit: HTTPRequestHead.maximumLength)) { try HTTPRequestHead.read(from: &partial) }
        // Endless blank lines do not escape the limit.
        var blanks = buffer(String(repeating: "\r\n", count: 40_000))
        #expect(throws: HTTPProxyError.self) { try HTTPRequestHead.read(from: &blanks) }
    }

    @Test(arguments: ["garbage\r\n\r\n", "GET /\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/2.0\r\n\r\n",
                      "GET / HTTP/1.1\r\nNoColon\r\n\r\n", "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
                      "GET / HTTP/1.1\r\n folded: x\r\n\r\n", "GET / HTTP/1.1\r\n: empty\r\n\r\n", "\u{01}\u{02} / HTTP/1.1\r\n\r\n"])
    func rejectsMalformed(head: String) {
        var b = buffer(head)
        #expect(throws: HTTPProxyError.self) { try HTTPRequestHead.read(from: &b) }
    }

    @Test func writesHead() {
        var head = HTTPRequestHead(method: "GET", target: "/x", versionMinor: 1)
        head.headers.add("Host", "a")
        var out = ByteBuffer()
        head.write(to: &out)
        #expect(String(buffer: out) == "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    }

    @Test func readsResponseHead() throws {
        var b = buffer("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"sing-box\"\r\n\r\nrest")
        let head = try #require(try HTTPResponseHead.read(from: &b))
        #expect(head.status == 407)
        #expect(head.reason == "Proxy Authentication Required")
        #expect(String(buffer: b) == "rest")
        var noReason = buffer("HTTP/1.0 200\r\n\r\n")
        #expect(try HTTPResponseHead.read(from: &noReason)?.status == 200)
        var bad = buffer("HTTP/1.1 2000 OK\r\n\r\n")
        #expect(throws: HTTPProxyError.malformedStartLine) { try HTTPResponseHead.read(from: &bad) }
    }

    @Test func headerTokens() {
        let headers = HTTPHeaders([HTTPHeader("Connection", "keep-alive, Upgrade"), HTTPHeader("connection", "x")])
        #expect(headers.hasToken("connection", "upgrade"))
        #expect(headers.hasToken("Connection", "X"))
        #expect(!headers.hasToken("Connection", "close"))
    }
}
