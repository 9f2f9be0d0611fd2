// The grpc transport's gun framing (Go's v2raygrpclite conn.go) as literal bytes, every truncation,
// garbage; the request checks and path escaping of the grpc and http transports. Go at the other
// end: InteropTests/V2RayHTTP2TransportInteropTests.swift.
import Adapter
import Config
import NIOCore
import NIOHPACK
import Testing
@testable import Transport

@Suite struct GunFramingTests {
    // 0x00 (not compressed) | length 7 (BE) | 0x0A (field 1) | varint 5 | "hello"
    static let hello: [UInt8] = [0x00, 0x00, 0x00, 0x00, 0x07, 0x0A, 0x05] + Array("hello".utf8)

    @Test func encodesAsGo() {
        let out = GunFraming.encode(ByteBuffer(string: "hello"), allocator: ByteBufferAllocator())
        #expect(Array(out.readableBytesView) == Self.hello)
        // 300 bytes: varint 0xAC 0x02, length 1 + 2 + 300 = 303 = 0x012F
        let big = GunFraming.encode(ByteBuffer(repeating: 7, count: 300), allocator: ByteBufferAllocator())
        #expect(Array(big.readableBytesView.prefix(8)) == [0x00, 0x00, 0x00, 0x01, 0x2F, 0x0A, 0xAC, 0x02])
        #expect(big.readableBytes == 308)
        #expect(GunFraming.headerLength(for: 300) == 8)
    }

    @Test func decodesWholeAndSplitMessages() throws {
        var decoder = GunFrameDecoder()
        var buffer = ByteBuffer(bytes: Self.hello + Self.hello)
        var out = ""
        while let piece = try decoder.next(from: &buffer) { out += String(buffer: piece) }
        #expect(out == "hellohello")
        #expect(buffer.readableBytes == 0)
    }

    /// Every split point: the data comes out whole, in order, whatever the reads.
    @Test(arguments: 0...GunFramingTests.hello.count)
    func decodesAcrossReads(split: Int) throws {
        var decoder = GunFrameDecoder()
        var buffer = ByteBuffer(bytes: Self.hello.prefix(split))
        var out: [UInt8] = []
        while let piece = try decoder.next(from: &buffer) { out += piece.readableBytesView }
        buffer.writeBytes(Self.hello.dropFirst(split))
        while let piece = try decoder.next(from: &buffer) { out += piece.readableBytesView }
        #expect(out == Array("hello".utf8))
    }

    /// Each read in a buffer of its own, as HTTP/2 DATA frames arrive: a header cut anywhere (the
    /// CI failure of session 8 was a header cut between two DATA frames, read as `bad protobuf
    /// tag 128`) still decodes, for every pair of cut points over three messages.
    @Test func decodesAcrossSeparateBuffers() throws {
        let allocator = ByteBufferAllocator()
        var stream: [UInt8] = []
        var expected: [UInt8] = []
        for size in [5, 300, 0, 20_000] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ size) }
            expected += payload
            stream += GunFraming.encode(ByteBuffer(bytes: payload), allocator: allocator).readableBytesView
        }
        let cuts = Array(0...20) + [310, 311, 312, 313, 314, 315, 316, 317, 318] + [stream.count - 1]
        for first in cuts {
            for second in cuts where second >= first {
                var decoder = GunFrameDecoder()
                var out: [UInt8] = []
                for range in [0..<first, first..<second, second..<stream.count] {
                    var buffer = ByteBuffer(bytes: stream[range])
                    while let piece = try decoder.next(from: &buffer) { out += piece.readableBytesView }
                    #expect(buffer.readableBytes == 0)
                }
                #expect(out == expected, "cut at \(first) and \(second)")
            }
        }
        // One byte per buffer.
        var decoder = GunFrameDecoder()
        var out: [UInt8] = []
        for byte in stream {
            var buffer = ByteBuffer(bytes: [byte])
            while let piece = try decoder.next(from: &buffer) { out += piece.readableBytesView }
        }
        #expect(out == expected)
    }

    /// Garbage cut across buffers is still refused.
    @Test func garbageAcrossBuffersIsRefused() {
        var decoder = GunFrameDecoder()
        var first = ByteBuffer(bytes: [0x00, 0, 0])
        #expect((try? decoder.next(from: &first)) == .some(nil))
        var second = ByteBuffer(bytes: [0, 7, 0x80, 5])
        #expect(throws: GunFramingError.badTag(0x80)) { _ = try decoder.next(from: &second) }
    }

    @Test func emptyMessageIsSkipped() throws {
        var decoder = GunFrameDecoder()
        var buffer = ByteBuffer(bytes: [0, 0, 0, 0, 2, 0x0A, 0] + Self.hello)
        let piece = try #require(try decoder.next(from: &buffer))
        #expect(String(buffer: piece) == "hello")
    }

    @Test(arguments: [
        ([0x01, 0, 0, 0, 7, 0x0A, 5] as [UInt8], GunFramingError.badCompressionFlag(1)),
        ([0x00, 0, 0, 0, 7, 0x12, 5], .badTag(0x12)),
        ([0x00, 0, 0, 0, 9, 0x0A, 5], .lengthMismatch(message: 9, field: 5)),
        ([0x00, 0, 0, 0, 12, 0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], .badVarint),
        (Array("GET / HTTP/1.1\r\n".utf8), .badCompressionFlag(0x47)),
    ])
    func rejectsGarbage(bytes: [UInt8], expected: GunFramingError) {
        var decoder = GunFrameDecoder()
        var buffer = ByteBuffer(bytes: bytes)
        #expect(throws: expected) { _ = try decoder.next(from: &buffer) }
    }
}

@Suite struct V2RayHTTPRouteTests {
    @Test func grpcChecksInGoOrder() {
        let route = V2RayHTTPRoute(kind: .grpc, path: "/tun svc/Tun")
        #expect(route.check(method: "POST", target: "/tun%20svc/Tun", host: "", contentType: "application/grpc+proto") == nil)
        #expect(route.check(method: "GET", target: "/other/Tun", host: "", contentType: "") ?? (0, "") == (404, "bad path: /other/Tun"))
        #expect(route.check(method: "GET", target: "/tun%20svc/Tun", host: "", contentType: "") ?? (0, "") == (404, "bad method: GET"))
        #expect(route.check(method: "POST", target: "/tun%20svc/Tun", host: "", contentType: "text/plain") ?? (0, "")
                == (404, "bad content type: text/plain"))
    }

    @Test func httpChecksHostThenPathPrefixThenMethod() {
        let route = V2RayHTTPRoute(kind: .http(hosts: ["a.test"], method: "PUT", headers: []), path: "/p")
        #expect(route.check(method: "PUT", target: "/p/deeper?x=1", host: "a.test", contentType: "") == nil)
        #expect(route.check(method: "GET", target: "/q", host: "b.test", contentType: "") ?? (0, "") == (400, "bad host: b.test"))
        #expect(route.check(method: "GET", target: "/q", host: "a.test", contentType: "") ?? (0, "") == (404, "bad path: /q"))
        #expect(route.check(method: "GET", target: "/p", host: "a.test", contentType: "") ?? (0, "") == (404, "bad method: GET"))
    }

    @Test func decodedPathLeavesBadEscapes() {
        #expect(V2RayHTTPRoute.decodedPath("/a%2Fb%zz?q=%20") == "/a/b%zz")
    }

    @Test func grpcPathIsEscapedAsGo() throws {
        var grpc = V2RayGRPCOptions()
        grpc.serviceName = "my svc/1;x@y"
        let client = try V2RayTransportClient(options: .grpc(grpc), server: Destination(ip: .v4(0x7F00_0001), port: 443), tlsServerName: nil)
        // url.PathEscape: space, '/' and ';' escaped; '@' kept.
        #expect(client.path == "/my%20svc%2F1%3Bx@y/Tun")
        #expect(client.host == "127.0.0.1:443")
        let request = client.http2Request(method: "POST", authority: client.host)
        #expect(request.first(name: ":path") == "/my%20svc%2F1%3Bx@y/Tun")
        #expect(request.first(name: "content-type") == "application/grpc" && request.first(name: "te") == "trailers")
    }
}
