// SIP003 plugins: plugin_opts parsing and plugin lookup with Go's error texts (transport/sip003),
// and both simple-obfs client handlers on an EmbeddedChannel: what they write (checked against the
// layout of Go's http.go / tls.go) and how they unwrap a server's reply or refuse garbage.
// The real peer (shadowsocks-libev + obfs-server) is in InteropTests/ShadowsocksPluginInteropTests.swift.
import Adapter
import Config
import Foundation
import NIOCore
import NIOEmbedded
import Testing
import TestSupport
@testable import Transport

@Suite struct SIP003ArgumentsTests {
    @Test func parsesPairsFlagsAndEscapes() throws {
        let arguments = try SIP003Arguments.parse(#"obfs=tls;obfs-host=a\;b\=c;tls;path=/x;path=/y"#)
        #expect(arguments.values == ["obfs": ["tls"], "obfs-host": ["a;b=c"], "tls": ["1"], "path": ["/x", "/y"]])
        #expect(arguments.first("path") == "/x")
        #expect(try SIP003Arguments.parse("").values.isEmpty)
        #expect(try SIP003Arguments.parse("a=").values == ["a": [""]])
        #expect(try SIP003Arguments.parse("a=1;").values == ["a": ["1"]])
    }

    @Test(arguments: [
        (#"obfs=http\"#, #"nothing following final escape in "http\\""#),
        (#"a\"#, #"nothing following final escape in "a\\""#),
        ("=x", #"empty key in """#),
        ("a=1;;b", #"empty key in """#),
    ])
    func refusesWhatGoRefuses(text: String, message: String) {
        #expect(throws: SIP003ArgumentsError(message: message)) { try SIP003Arguments.parse(text) }
    }
}

@Suite struct SIP003PluginTests {
    @Test func buildsObfsLocal() throws {
        #expect(try SIP003Plugin(name: "obfs-local", options: "", serverPort: 8388) == .obfsHTTP(host: "", port: 8388))
        #expect(try SIP003Plugin(name: "obfs-local", options: "obfs=http;obfs-host=www.bing.com", serverPort: 80)
            == .obfsHTTP(host: "www.bing.com", port: 80))
        #expect(try SIP003Plugin(name: "obfs-local", options: "obfs=tls;obfs-host=x.io", serverPort: 443) == .obfsTLS(host: "x.io"))
        // v2ray-plugin: Host cloudfront.com and path / by default, mux 1; `host` is also the TLS name.
        var ws = V2RayWebsocketOptions()
        ws.headers = ListableMap([(key: "Host", values: ["cloudfront.com"])])
        ws.path = "/"
        #expect(try SIP003Plugin(name: "v2ray-plugin", options: "", serverPort: 80) == .v2ray(tls: nil, transport: .ws(ws), mux: 1))
        ws.headers = ListableMap([(key: "Host", values: ["a.io"])])
        ws.path = "/ws"
        var tls = OutboundTLSOptions()
        tls.enabled = true
        tls.serverName = "a.io"
        tls.certificatePath = "/ca.pem"
        #expect(try SIP003Plugin(name: "v2ray-plugin", options: "tls;host=a.io;path=/ws;mux=0;cert=/ca.pem", serverPort: 443)
            == .v2ray(tls: tls, transport: .ws(ws), mux: 0))
    }

    @Test(arguments: [
        ("obfs-local", "obfs=websocket", "unknown obfs mode websocket"),
        ("obfs-local", #"obfs=tls\"#, #"parse plugin_opts: nothing following final escape in "tls\\""#),
        ("simple-obfs", "obfs=http", "plugin not found: simple-obfs"),
        // Go parses the options before it looks the name up.
        ("nope", "=", #"parse plugin_opts: empty key in """#),
        ("v2ray-plugin", "mode=grpc", "v2ray-plugin: unknown mode: grpc"),
        ("v2ray-plugin", "mux=x", #"parse mux value: strconv.Atoi: parsing "x": invalid syntax"#),
        ("v2ray-plugin", "mux=99999999999999999999", #"parse mux value: strconv.Atoi: parsing "99999999999999999999": value out of range"#),
        ("v2ray-plugin", "mode=quic", "not implemented: v2ray-plugin mode quic on shadowsocks outbound"),
    ])
    func refusesWithGoWording(name: String, options: String, message: String) {
        #expect(throws: AdapterError.self) { try SIP003Plugin(name: name, options: options, serverPort: 8388) }
        do {
            _ = try SIP003Plugin(name: name, options: options, serverPort: 8388)
        } catch {
            #expect(error.description == message)
        }
    }
}

@Suite struct SimpleObfsHTTPTests {
    @Test func firstWriteIsAnUpgradeRequestAndTheReplyHeaderIsStripped() throws {
        let channel = try connected(SimpleObfsHTTPClientHandler(host: "www.bing.com", port: 8388))
        try channel.writeOutbound(ByteBuffer(string: "first"))
        let request = String(buffer: try #require(try channel.readOutbound(as: ByteBuffer.self)))
        let lines = request.components(separatedBy: "\r\n")
        #expect(lines.first == "GET / HTTP/1.1")
        #expect(lines[1] == "Host: www.bing.com:8388")
        #expect(lines[2].hasPrefix("User-Agent: curl/7."))
        #expect(lines[3] == "Content-Length: 5")
        #expect(lines[4] == "Connection: Upgrade")
        #expect(lines[5].hasPrefix("Sec-Websocket-Key: ") && lines[5].count == "Sec-Websocket-Key: ".count + 24)
        #expect(lines[6] == "Upgrade: websocket")
        #expect(request.hasSuffix("\r\n\r\nfirst"))
        // Later writes, and the relay's empty marker, pass unchanged.
        try channel.writeOutbound(ByteBuffer(string: "second"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "second"))

        // The header may arrive split; what follows it is data.
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nServer: nginx\r\n"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        try channel.writeInbound(ByteBuffer(string: "Upgrade: websocket\r\n\r\nreply"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "reply"))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 is data now"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "HTTP/1.1 is data now"))
        _ = try channel.finish()
    }

    @Test func port80IsLeftOutOfHost() throws {
        let channel = try connected(SimpleObfsHTTPClientHandler(host: "a.io", port: 80))
        try channel.writeOutbound(ByteBuffer(string: "x"))
        let request = String(buffer: try #require(try channel.readOutbound(as: ByteBuffer.self)))
        #expect(request.contains("\r\nHost: a.io\r\n"))
        _ = try channel.finish()
    }

    @Test func garbageReplyFailsAndCloses() throws {
        let channel = try connected(SimpleObfsHTTPClientHandler(host: "a.io", port: 80))
        try channel.writeOutbound(ByteBuffer(string: "x"))
        #expect(throws: SimpleObfsError.notHTTPResponse("474152424147450d")) {
            try channel.writeInbound(ByteBuffer(string: "GARBAGE\r\n\r\nmore"))
        }
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        #expect(!channel.isActive)
    }

    @Test func endlessHeaderFails() throws {
        let channel = try connected(SimpleObfsHTTPClientHandler(host: "a.io", port: 80))
        try channel.writeOutbound(ByteBuffer(string: "x"))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n"))
        #expect(throws: SimpleObfsError.httpHeaderTooLong(17 + 40_000)) {
            try channel.writeInbound(ByteBuffer(repeating: UInt8(ascii: "a"), count: 40_000))
        }
        #expect(!channel.isActive)
    }

    @Test func closeBeforeTheHeaderEndsIsAnError() throws {
        let channel = try connected(SimpleObfsHTTPClientHandler(host: "a.io", port: 80))
        try channel.writeOutbound(ByteBuffer(string: "x"))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(throws: SimpleObfsError.closedBeforeResponse) { try channel.throwIfErrorCaught() }
        #expect(!channel.isActive)
    }
}

@Suite struct SimpleObfsTLSTests {
    /// A reply as obfs-server sends it: ServerHello (5+91), ChangeCipherSpec (5+1), then a
    /// handshake record header whose length covers `data`.
    static func firstReply(_ data: String) -> ByteBuffer {
        var out = ByteBuffer(bytes: [22, 3, 3, 0, 91])
        out.writeRepeatingByte(0, count: 91)
        out.writeBytes([20, 3, 3, 0, 1, 1, 22, 3, 3])
        out.writeInteger(UInt16(data.utf8.count))
        out.writeString(data)
        return out
    }

    @Test func clientHelloCarriesTheFirstChunkThenRecords() throws {
        let channel = try connected(SimpleObfsTLSClientHandler(host: "x.io"))
        let first = ByteBuffer(repeating: 0xAB, count: 20_000)
        try channel.writeOutbound(first)
        var out = try #require(try channel.readOutbound(as: ByteBuffer.self))
        let data = 1 << 14, server = 4
        // record header: handshake, TLS 1.0, length 212 + data + server
        #expect(out.readBytes(length: 5) == [22, 3, 1, UInt8((212 + data + server) >> 8), UInt8((212 + data + server) & 0xFF)])
        #expect(out.readInteger(as: UInt8.self) == 1)
        #expect(out.readInteger(as: UInt8.self) == 0)
        #expect(out.readInteger(as: UInt16.self) == UInt16(208 + data + server))
        #expect(out.readBytes(length: 2) == [3, 3])
        out.moveReaderIndex(forwardBy: 4 + 28)
        #expect(out.readInteger(as: UInt8.self) == 32)
        out.moveReaderIndex(forwardBy: 32)
        #expect(out.readInteger(as: UInt16.self) == 0x38)
        out.moveReaderIndex(forwardBy: 0x38)
        #expect(out.readBytes(length: 2) == [1, 0])
        #expect(out.readInteger(as: UInt16.self) == UInt16(79 + data + server))
        #expect(out.readBytes(length: 2) == [0, 0x23])
        #expect(out.readInteger(as: UInt16.self) == UInt16(data))
        #expect(out.readBytes(length: data) == [UInt8](repeating: 0xAB, count: data))
        #expect(out.readBytes(length: 9) == [0, 0, 0, 9, 0, 7, 0, 0, 4])
        #expect(out.readString(length: 4) == "x.io")
        out.moveReaderIndex(forwardBy: SimpleObfsTLSClientHandler.trailingExtensions.count)
        // The rest of the first write: one application-data record.
        #expect(out.readBytes(length: 5) == [23, 3, 3, UInt8((20_000 - data) >> 8), UInt8((20_000 - data) & 0xFF)])
        #expect(out.readableBytes == 20_000 - data)
        try channel.writeOutbound(ByteBuffer(string: "next"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: [23, 3, 3, 0, 4] + Array("next".utf8)))
        _ = try channel.finish()
    }

    @Test func repliesAreUnwrappedAcrossSplits() throws {
        let channel = try connected(SimpleObfsTLSClientHandler(host: "x.io"))
        try channel.writeOutbound(ByteBuffer(string: "hello"))
        var stream = Self.firstReply("first")
        stream.writeBytes([23, 3, 3, 0, 6] + Array("second".utf8) + [23, 3, 3, 0, 0] + [23, 3, 3, 0, 5] + Array("third".utf8))
        var received = ""
        // One byte at a time: every header and length straddles reads.
        while let byte = stream.readSlice(length: 1) {
            try channel.writeInbound(byte)
            while let part = try channel.readInbound(as: ByteBuffer.self) { received += String(buffer: part) }
        }
        #expect(received == "firstsecondthird")
        _ = try channel.finish()
    }

    @Test(arguments: [
        (ByteBuffer(string: "HTTP/1.1 200 OK\r\n"), SimpleObfsError.unexpectedTLSRecord(type: 0x48, expected: "ServerHello")),
        ({ var b = firstReply("x"); b.setInteger(UInt8(21), at: 96); return b }(), .unexpectedTLSRecord(type: 21, expected: "ChangeCipherSpec")),
        ({ var b = firstReply("x"); b.writeBytes([21, 3, 3, 0, 2, 2, 40]); return b }(), .unexpectedTLSRecord(type: 21, expected: "application data")),
    ])
    func garbageFailsAndCloses(reply: ByteBuffer, error: SimpleObfsError) throws {
        let channel = try connected(SimpleObfsTLSClientHandler(host: "x.io"))
        try channel.writeOutbound(ByteBuffer(string: "hello"))
        #expect(throws: error) { try channel.writeInbound(reply) }
        #expect(!channel.isActive)
    }
}

@Suite struct MuxCoolClientTests {
    @Test func framesWritesAndUnwrapsKeepFrames() throws {
        let channel = try connected(MuxCoolClientHandler())
        try channel.writeOutbound(ByteBuffer(string: "hi"))
        // meta length 20; session 0; New; option data; TCP; port 666; domain (2) of 11 bytes; data length 2
        let opened: [UInt8] = [0, 20, 0, 0, 1, 1, 1, 0x02, 0x9a, 2, 11] + Array("v1.mux.cool".utf8) + [0, 2] + Array("hi".utf8)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: opened))
        try channel.writeOutbound(ByteBuffer(string: "yo"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: [0, 4, 0, 0, 2, 1, 0, 2] + Array("yo".utf8)))
        // Keep with data, KeepAlive without, Keep with extra metadata; split byte by byte.
        var stream = ByteBuffer(bytes: [0, 4, 0, 0, 2, 1, 0, 3] + Array("abc".utf8) + [0, 4, 0, 0, 4, 0] + [0, 6, 0, 0, 2, 1, 9, 9, 0, 1] + Array("d".utf8))
        var received = ""
        while let byte = stream.readSlice(length: 1) {
            try channel.writeInbound(byte)
            while let part = try channel.readInbound(as: ByteBuffer.self) { received += String(buffer: part) }
        }
        #expect(received == "abcd")
        // End: EOF for the reader (input closed); nothing after it is data, the channel stays open.
        let events = EventRecorder()
        try channel.pipeline.syncOperations.addHandler(events)
        try channel.writeInbound(ByteBuffer(bytes: [0, 4, 0, 0, 3, 0] + [0, 4, 0, 0, 2, 1, 0, 1, 0x78]))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        #expect(events.inputClosed)
        #expect(channel.isActive)
    }

    @Test(arguments: [([UInt8]([0, 4, 0, 0, 1, 1]), MuxCoolError.unexpectedNew), ([0, 4, 0, 0, 9, 0], .unexpectedStatus(9)),
                      ([0, 4, 0, 0, 2, 2], .remoteClosed), ([0, 2, 0, 0, 2, 1], .badMetadataLength(2))])
    func garbageFailsAndCloses(frame: [UInt8], error: MuxCoolError) throws {
        let channel = try connected(MuxCoolClientHandler())
        #expect(throws: error) { try channel.writeInbound(ByteBuffer(bytes: frame)) }
        #expect(!channel.isActive)
    }
}

/// Swallows and notes the input-closed event (the relay's part in a real pipeline).
final class EventRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var inputClosed = false
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { inputClosed = true } else { context.fireUserInboundEventTriggered(event) }
    }
}

/// An EmbeddedChannel with `handler`, connected (active), so a close by the handler shows.
func connected(_ handler: some ChannelHandler) throws -> EmbeddedChannel {
    let channel = EmbeddedChannel(handler: handler)
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    #expect(channel.isActive)
    return channel
}

/// Random server bytes never trap a decoder: each chunk is data or a clean error and close.
@Suite struct SIP003DecoderGarbageTests {
    /// SplitMix64 (TestSupport), seeded so random tests reproduce.
    typealias SeededGenerator = SplitMix

    @Test(arguments: ["http", "tls", "mux.cool"])
    func randomRepliesNeverTrap(decoder: String) throws {
        var generator = SeededGenerator(seed: 12_345)
        for round in 0..<300 {
            let handler: any ChannelHandler = switch decoder {
            case "http": SimpleObfsHTTPClientHandler(host: "a.io", port: 80)
            case "tls": SimpleObfsTLSClientHandler(host: "a.io")
            default: MuxCoolClientHandler()
            }
            let channel = EmbeddedChannel(handler: handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.writeOutbound(ByteBuffer(string: "request"))
            // Half the rounds start plausibly, so the decoders get past their first check.
            var bytes: [UInt8] = round % 2 == 0 ? [] : (decoder == "http" ? Array("HTTP/1.1 101 OK\r\n\r\n".utf8)
                : decoder == "tls" ? [22, 3, 3, 0, 91] + [UInt8](repeating: 0, count: 91) + [20, 3, 3, 0, 1, 1, 22, 3, 3] : [0, 4, 0, 0, 2, 1])
            bytes += (0..<Int.random(in: 0..<400, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var stream = ByteBuffer(bytes: bytes)
            while stream.readableBytes > 0, channel.isActive {
                let piece = stream.readSlice(length: min(stream.readableBytes, Int.random(in: 1...64, using: &generator)))!
                do { try channel.writeInbound(piece) } catch { #expect(!channel.isActive, "\(decoder) round \(round): \(error)") }
                while (try channel.readInbound(as: ByteBuffer.self)) != nil {}
            }
            _ = try? channel.finish()
        }
    }
}
