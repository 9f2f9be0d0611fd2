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
        var resume = HTTPHeadProgress()
        var found: HTTPRequestHead?
        for byte in all {
            b.writeInteger(byte)
            if let head = try HTTPRequestHead.read(from: &b, resume: &resume) { found = head }
        }
        var whole = buffer(connectHead)
        #expect(found == (try HTTPRequestHead.read(from: &whole)))
    }

    /// A 30 KiB head (one line of it 29 KiB long, after blank lines) fed one byte per read: each byte
    /// is scanned once, however long its line (resuming at the start of the last line used to
    /// rescan a long line on every read: quadratic). Counted, never timed.
    @Test func byteByByteHeadScansLinearly() throws {
        let text = "\r\n\r\nGET http://a/ HTTP/1.1\r\nHost: a\r\nX-Long: " + String(repeating: "l", count: 29 * 1024)
            + "\r\nX-Short: s\r\n" + String(repeating: "X-N: 1\r\n", count: 200) + "\r\n"
        let all = Array(text.utf8)
        #expect(all.count > 30 * 1024)
        var b = ByteBuffer()
        var resume = HTTPHeadProgress()
        var found: HTTPRequestHead?
        for (index, byte) in all.enumerated() {
            b.writeInteger(byte)
            if let head = try HTTPRequestHead.read(from: &b, resume: &resume) {
                found = head
                #expect(index == all.count - 1)
            }
        }
        #expect(found?.headers["x-long"]?.count == 29 * 1024 && found?.headers["x-short"] == "s")
        #expect(resume.examinedByteCount <= all.count, "scanned \(resume.examinedByteCount) bytes for \(all.count)")
        // The same for a response head.
        var r = ByteBuffer()
        var responseResume = HTTPHeadProgress()
        let response = Array(("HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "r", count: 30 * 1024) + "\r\n\r\n").utf8)
        var answered = false
        for byte in response {
            r.writeInteger(byte)
            if try HTTPResponseHead.read(from: &r, resume: &responseResume) != nil { answered = true }
        }
        #expect(answered && responseResume.examinedByteCount <= response.count, "scanned \(responseResume.examinedByteCount)")
    }

    /// Garbage trickling in still fails at the limit, with linear work.
    @Test func byteByByteGarbageFailsAtTheLimit() {
        var b = ByteBuffer()
        var resume = HTTPHeadProgress()
        var failedAt: Int?
        for index in 0..<(HTTPRequestHead.maximumLength + 10) where failedAt == nil {
            b.writeInteger(UInt8(index % 2 == 0 ? 0x0A : 0x0D))  // endless blank lines
            do { _ = try HTTPRequestHead.read(from: &b, resume: &resume) } catch { failedAt = index }
        }
        #expect(failedAt == HTTPRequestHead.maximumLength - 1 && resume.examinedByteCount <= HTTPRequestHead.maximumLength)
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
