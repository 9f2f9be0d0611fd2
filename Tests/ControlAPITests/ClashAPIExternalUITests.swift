// The pieces of ClashAPIExternalUI that read untrusted text, against Go's behaviour: path cleaning
// and decoding, os.ExpandEnv, HTTP dates, Range headers, content sniffing, listing escapes.
@testable import ControlAPI
import Foundation
import Testing

@Suite struct ClashAPIExternalUITests {
    @Test(arguments: [("/", "/"), ("/../../etc/passwd", "/etc/passwd"), ("/a/./b//c/", "/a/b/c"), ("/a/../..", "/"),
                      ("//assets/app.js", "/assets/app.js"), ("/..%2f", "/..%2f")])
    func cleansRootedPathsAsGo(input: String, expected: String) {
        #expect(ClashAPIExternalUI.cleanPath(input) == expected)
    }

    @Test func decodesPercentEscapes() {
        #expect(ClashAPIExternalUI.percentDecoded("..%2f..%2Fx") == "../../x")
        #expect(ClashAPIExternalUI.percentDecoded("a%20b") == "a b")
        for bad in ["%", "%z1", "%1", "a%zz"] { #expect(ClashAPIExternalUI.percentDecoded(Substring(bad)) == nil, "\(bad)") }
    }

    @Test func namesAndExtensionsAsGo() {
        #expect(ClashAPIExternalUI.baseName("/sub") == "sub" && ClashAPIExternalUI.baseName("/a/b/") == "b" && ClashAPIExternalUI.baseName("/") == "/")
        #expect(ClashAPIExternalUI.extensionOf("app.min.js") == ".js" && ClashAPIExternalUI.extensionOf("LICENSE") == "")
        #expect(ClashAPIExternalUI.escapedURLPath("a b&c?.txt") == "a%20b&c%3F.txt")
        #expect(ClashAPIExternalUI.escapedURLPath("c:d") == "./c:d")
        #expect(ClashAPIExternalUI.escapedHTML("<a href='x'>&\"") == "&lt;a href=&#39;x&#39;&gt;&amp;&#34;")
    }

    /// Go's os.ExpandEnv, including its handling of bad syntax.
    @Test func expandsTheEnvironmentAsGo() {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? ""
        #expect(ClashAPIExternalUI.expandEnvironment("$HOME/ui") == home + "/ui")
        #expect(ClashAPIExternalUI.expandEnvironment("${HOME}ui") == home + "ui")
        #expect(ClashAPIExternalUI.expandEnvironment("u${}i") == "ui")  // `${}` is eaten
        #expect(ClashAPIExternalUI.expandEnvironment("ui${") == "ui")  // so is an unclosed `${`
        #expect(ClashAPIExternalUI.expandEnvironment("ui$") == "ui$")  // a lone trailing `$` stays
        #expect(ClashAPIExternalUI.expandEnvironment("a$/b") == "a$/b")  // `$` before no name stays
        #expect(ClashAPIExternalUI.expandEnvironment("x$SBX_SURELY_UNSET_VARIABLE/y") == "x/y")
        #expect(ClashAPIExternalUI.expandEnvironment("plain/path") == "plain/path")
    }

    @Test func readsAndWritesHTTPDates() {
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110 §5.6.7's example).
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == 784_111_777)
        #expect(HTTPDate.parse("Sun Nov 6 08:49:37 1994") == 784_111_777)  // Go's `_2` takes it unpadded too
        #expect(HTTPDate.parse(HTTPDate.format(1_795_000_000)) == 1_795_000_000)
        for bad in ["", "garbage", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
                    "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Nov 1994 08:49 GMT", "Sun Nov 006 08:49:37 1994"] {
            #expect(HTTPDate.parse(bad) == nil, "\(bad)")
        }
    }

    /// Go's parseRange on a 15-byte file.
    @Test func parsesRangesAsGo() {
        func parse(_ text: String) -> Result<[Range<Int>], HTTPByteRanges.Failure> { HTTPByteRanges.parse(text, size: 15) }
        #expect(parse("") == .success([]))
        #expect(parse("bytes=2-5") == .success([2..<6]))
        #expect(parse("bytes=-3") == .success([12..<15]))
        #expect(parse("bytes=-99") == .success([0..<15]))
        #expect(parse("bytes=10-99") == .success([10..<15]))
        #expect(parse("bytes= 1-2 , 4-") == .success([1..<3, 4..<15]))
        #expect(parse("bytes=50-") == .failure(.noOverlap))
        #expect(parse("bytes=50-,1-2") == .success([1..<3]))
        for bad in ["chars=1-2", "bytes=5-2", "bytes=x-2", "bytes=1", "bytes=-", "bytes=--1", "bytes=-1-2"] {
            #expect(parse(bad) == .failure(.invalid), "\(bad)")
        }
        #expect(HTTPByteRanges.contentRange(2..<6, size: 15) == "bytes 2-5/15")
    }

    @Test func multipartRangesAsGosWriter() {
        let content = Array("0123456789".utf8)
        let (boundary, body) = HTTPByteRanges.multipart([1..<3, 5..<6], of: content, type: "text/plain")
        #expect(boundary.count == 60 && boundary.allSatisfy(\.isHexDigit))
        #expect(String(decoding: body, as: UTF8.self) == """
            --\(boundary)\r\nContent-Range: bytes 1-2/10\r\nContent-Type: text/plain\r\n\r\n12\
            \r\n--\(boundary)\r\nContent-Range: bytes 5-5/10\r\nContent-Type: text/plain\r\n\r\n5\
            \r\n--\(boundary)--\r\n
            """)
    }

    /// Go's http.DetectContentType on the files a dashboard has without a known extension.
    @Test(arguments: [("<!DOCTYPE html><html>", "text/html; charset=utf-8"), ("  <html>", "text/html; charset=utf-8"),
                      ("<htmlx", "text/plain; charset=utf-8"), ("MIT License\n", "text/plain; charset=utf-8"),
                      ("", "text/plain; charset=utf-8"), ("a\u{1}b", "application/octet-stream"),
                      ("\u{89}PNG\r\n\u{1A}\nrest", "image/png"), ("wOF2xxxx", "font/woff2"), ("<?xml version", "text/xml; charset=utf-8"),
                      ("%PDF-1.4", "application/pdf"), ("GIF89a", "image/gif")])
    func sniffsAsGo(text: String, expected: String) {
        // Latin-1 code points as single bytes (the PNG signature's 0x89).
        let bytes = text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
        #expect(GoMIME.sniff(bytes[...]) == expected)
    }

    @Test func knowsGosBuiltinTypes() {
        #expect(GoMIME.type(forExtension: ".js") == "text/javascript; charset=utf-8")
        #expect(GoMIME.type(forExtension: ".HTML") == "text/html; charset=utf-8")
        #expect(GoMIME.type(forExtension: ".json") == "application/json")
        #expect(GoMIME.type(forExtension: "") == nil)
    }
}
