// The naive pieces without sockets: the padding framing both ways (frames split at every byte,
// empty frames, the switch to raw after 8, splitting of big writes), the request checks in Go's
// order with garbage credentials, and Go's Padding header shape.
import Adapter
import NIOCore
import NIOEmbedded
import Testing
@testable import Naive

@Suite struct NaiveFramingTests {
    /// A client's first bytes: 8 frames (one empty) with padding, then raw bytes.
    static func clientBytes() -> (wire: [UInt8], data: [UInt8]) {
        var wire: [UInt8] = []
        var data: [UInt8] = []
        for index in 0..<8 {
            let chunk = index == 3 ? [] : Array(repeating: UInt8(index + 1), count: 10 * index + 1)
            let padding = index * 31
            wire += [UInt8(chunk.count >> 8), UInt8(chunk.count & 0xFF), UInt8(padding)] + chunk + Array(repeating: 0xEE, count: padding)
            data += chunk
        }
        let raw: [UInt8] = Array("raw tail, no framing".utf8)
        return (wire + raw, data + raw)
    }

    /// Every split of the wire into two reads yields the same data, padding dropped.
    @Test func readsStripTheFirstEightFramesAtAnySplit() throws {
        let (wire, data) = Self.clientBytes()
        for split in 0...wire.count {
            let channel = EmbeddedChannel(handler: NaivePaddingHandler())
            try channel.writeInbound(ByteBuffer(bytes: wire[..<split]))
            try channel.writeInbound(ByteBuffer(bytes: wire[split...]))
            var got: [UInt8] = []
            while let buffer = try channel.readInbound(as: ByteBuffer.self) { got += buffer.readableBytesView }
            #expect(got == data, "split at \(split)")
            _ = try channel.finish()
        }
    }

    /// The first 8 writes become frames a client can decode (declared padding sent, zeros); a
    /// 70,000-byte write is two frames; later writes are raw.
    @Test func writesFrameTheFirstEight() throws {
        let channel = EmbeddedChannel(handler: NaivePaddingHandler())
        var sent: [UInt8] = []
        let writes: [[UInt8]] = [Array(repeating: 7, count: 70_000)] + (1...8).map { Array(repeating: UInt8($0), count: $0 * 3) }
        for write in writes {
            try channel.writeOutbound(ByteBuffer(bytes: write))
            sent += write
        }
        var wire: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { wire += buffer.readableBytesView }
        var data: [UInt8] = []
        var index = 0
        var frames: [Int] = []
        for _ in 0..<8 {
            let length = Int(wire[index]) << 8 | Int(wire[index + 1])
            let padding = Int(wire[index + 2])
            frames.append(length)
            data += wire[(index + 3)..<(index + 3 + length)]
            #expect(wire[(index + 3 + length)..<(index + 3 + length + padding)].allSatisfy { $0 == 0 })
            index += 3 + length + padding
        }
        data += wire[index...]
        #expect(frames == [65_535, 4_465, 3, 6, 9, 12, 15, 18])
        #expect(data == sent)
        _ = try channel.finish()
    }

    /// Go's checks in Go's order; garbage credentials are an authorization failure, never a crash.
    @Test func requestChecksInGoOrder() {
        let users = NaiveUsers([("alice", "pw"), ("alice", "second"), ("", "anon")])
        let good = "Basic " + "YWxpY2U6cHc="  // alice:pw
        func check(_ method: String, _ padding: String?, _ auth: String?, _ authority: String = "example.com:443") -> NaiveRequestCheck {
            NaiveRequestCheck(method: method, padding: padding, authorization: auth, authority: authority, users: users)
        }
        #expect(check("GET", nil, nil) == .reject(status: 400, reason: "not CONNECT request"))
        #expect(check("CONNECT", nil, good) == .reject(status: 400, reason: "missing naive padding"))
        #expect(check("CONNECT", "", good) == .reject(status: 400, reason: "missing naive padding"))
        for garbage in [nil, "", "Basic", "Basic ", "Basic !!!!", "Basic YWxpY2U6cHc", "Bearer YWxpY2U6cHc=", "Basic YWxpY2U=",
                        "Basic YWxpY2U6d3Jvbmc=", "Basic \u{0}\u{1}\u{FF}=="] {
            #expect(check("CONNECT", "x", garbage) == .reject(status: 407, reason: "authorization failed"), "\(garbage ?? "nil")")
        }
        #expect(check("CONNECT", "x", good) == .accept(user: "alice", destination: Destination(host: .domain("example.com"), port: 443)))
        // Any of a name's passwords; `basic` in any case; an empty name.
        #expect(check("CONNECT", "x", "bAsIc YWxpY2U6c2Vjb25k") == .accept(user: "alice", destination: Destination(host: .domain("example.com"), port: 443)))
        #expect(check("CONNECT", "x", "Basic OmFub24=", "[::1]:80") == .accept(user: "", destination: Destination(host: Host("::1"), port: 80)))
        // No port: Go's ParseSocksaddr leaves it 0.
        #expect(check("CONNECT", "x", good, "example.com") == .accept(user: "alice", destination: Destination(host: .domain("example.com"), port: 0)))
    }

    @Test func paddingHeaderHasGoShape() {
        for _ in 0..<200 {
            let header = Array(NaiveModule.paddingHeader().utf8)
            #expect((30...61).contains(header.count))
            #expect(header.prefix(16).allSatisfy { Array("!#$()+<>?@[]^`{}".utf8).contains($0) })
            #expect(header.dropFirst(16).allSatisfy { $0 == UInt8(ascii: "~") })
        }
    }

    /// sing's `SourceAddress`: the first parsable `X-Forwarded-For` entry (untrimmed) replaces the IP.
    @Test func forwardedForReplacesTheSourceAddress() {
        let peer = Destination(host: Host("127.0.0.1"), port: 4242)
        #expect(NaiveModule.source(peer, forwardedFor: nil) == peer)
        #expect(NaiveModule.source(peer, forwardedFor: "garbage, 10.0.0.1") == peer)
        #expect(NaiveModule.source(peer, forwardedFor: "garbage,10.0.0.1") == Destination(host: Host("10.0.0.1"), port: 4242))
        #expect(NaiveModule.source(peer, forwardedFor: "[2001:db8::1],10.0.0.1") == Destination(host: Host("2001:db8::1"), port: 4242))
        #expect(NaiveModule.source(nil, forwardedFor: "10.0.0.1") == nil)
    }
}
