import Adapter
import HTTPProxy
import NIOCore
import NIOEmbedded
import SOCKS
import Testing

@Suite struct SOCKSClientHandshakeTests {
    @Test func socks5WithPasswordMatchesSingsBytes() throws {
        var machine = SOCKSClientHandshake(version: 5, command: SOCKS5.commandConnect,
                                           destination: Destination(domain: "example.org", port: 443), username: "u", password: "p")
        // sing offers only X'02' when it has a username
        #expect(bytes(try machine.start()) == [0x05, 0x01, 0x02])
        var b = buffer([0x05, 0x02])
        #expect(try machine.advance(&b) == .send(buffer([0x01, 0x01, 0x75, 0x01, 0x70])))
        b = buffer([0x01, 0x00])
        #expect(try machine.advance(&b) == .send(buffer([0x05, 0x01, 0x00, 0x03, 0x0b] + Array("example.org".utf8) + [0x01, 0xbb])))
        b = buffer([0x05, 0x00, 0x00, 0x01, 10, 0, 0, 1])
        #expect(try machine.advance(&b) == .needMore)  // reply cut short
        b.writeBytes([0x04, 0x38])
        #expect(try machine.advance(&b) == .done(bind: Destination(ip: .v4(0x0A00_0001), port: 1080)))
    }

    @Test func socks4aMatchesSingsBytes() throws {
        // Captured from Go sing-box's socks outbound, version 4a, username "uid", to example.org:2.
        let machine = SOCKSClientHandshake(version: 4, command: SOCKS5.commandConnect,
                                           destination: Destination(domain: "example.org", port: 2), username: "uid")
        #expect(bytes(try machine.start()) == [0x04, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01] + Array("uid".utf8) + [0] + Array("example.org".utf8) + [0])
    }

    @Test func refusalsThrow() throws {
        var noAuth = SOCKSClientHandshake(version: 5, command: 1, destination: Destination(ip: .v4(1), port: 1))
        var b = buffer([0x05, 0xff])
        #expect(throws: SOCKSError.noAcceptableMethod) { try noAuth.advance(&b) }
        var unexpected = SOCKSClientHandshake(version: 5, command: 1, destination: Destination(ip: .v4(1), port: 1))
        b = buffer([0x05, 0x02])  // asks for a password we do not have
        #expect(throws: SOCKSError.unexpectedMethod(2)) { try unexpected.advance(&b) }
        var refused = SOCKSClientHandshake(version: 5, command: 1, destination: Destination(ip: .v4(1), port: 1))
        b = buffer([0x05, 0x00, 0x05, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0, 0])
        _ = try refused.advance(&b)
        #expect(throws: SOCKSError.rejected(code: 5)) { try refused.advance(&b) }
        var socks4 = SOCKSClientHandshake(version: 4, command: 1, destination: Destination(ip: .v4(1), port: 1))
        b = buffer([0x00, 0x5b, 0, 0, 0, 0, 0, 0])
        #expect(throws: SOCKSError.rejected(code: 91)) { try socks4.advance(&b) }
        #expect(throws: SOCKSError.unsupportedNetwork) {
            try SOCKSClientHandshake(version: 4, command: SOCKS5.commandUDPAssociate, destination: Destination(ip: .v4(1), port: 1)).start()
        }
    }

    @Test func handlerReplaysBytesAfterTheReply() throws {
        let channel = EmbeddedChannel()
        let result = channel.eventLoop.makePromise(of: Destination.self)
        try channel.pipeline.syncOperations.addHandler(SOCKSClientHandler(
            handshake: SOCKSClientHandshake(version: 5, command: 1, destination: Destination(ip: .v4(1), port: 2)), result: result))
        #expect(try channel.readOutbound(as: ByteBuffer.self).map(bytes) == [0x05, 0x01, 0x00])
        try channel.writeInbound(buffer([0x05, 0x00]))
        #expect(try channel.readOutbound(as: ByteBuffer.self).map(bytes) == [0x05, 0x01, 0x00, 0x01, 0, 0, 0, 1, 0, 2])
        try channel.writeInbound(buffer([0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0] + Array("banner".utf8)))
        #expect(try result.futureResult.wait() == Destination(ip: .v4(0), port: 0))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)  // held for the relay
        channel.read()
        #expect(try channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "banner")
    }

    @Test func handlerFailsWhenTheServerHangsUp() throws {
        let channel = EmbeddedChannel()
        let result = channel.eventLoop.makePromise(of: Destination.self)
        try channel.pipeline.syncOperations.addHandler(SOCKSClientHandler(
            handshake: SOCKSClientHandshake(version: 5, command: 1, destination: Destination(ip: .v4(1), port: 2)), result: result))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.pipeline.fireChannelInactive()
        #expect(throws: (any Error).self) { try result.futureResult.wait() }
    }
}

@Suite struct HTTPConnectClientTests {
    @Test func requestMatchesSingsHeadersInOrder() throws {
        // Go writes: CONNECT, Host, (User-Agent), Proxy-Authorization, Proxy-Connection, then the
        // configured headers sorted. We leave out Go's User-Agent.
        let head = try HTTPConnectClientHandler.request(to: Destination(domain: "example.com", port: 1), path: "/pp",
                                                        headers: [("X-A", ["1"])], username: "u", password: "p")
        var out = ByteBuffer()
        head.write(to: &out)
        #expect(String(buffer: out) == "CONNECT /pp HTTP/1.1\r\nHost: example.com:1\r\nProxy-Authorization: Basic dTpw\r\n"
                + "Proxy-Connection: Keep-Alive\r\nX-A: 1\r\n\r\n")
        let plain = try HTTPConnectClientHandler.request(to: Destination(ip: .v6(IPv6Bits(high: 0, low: 1)), port: 443), path: nil,
                                                         headers: [("Host", ["front.example"])], username: nil, password: nil)
        #expect(plain.target == "[::1]:443")
        #expect(plain.headers["Host"] == "front.example")
        #expect(throws: AdapterError.self) {
            _ = try HTTPConnectClientHandler.request(to: Destination(domain: "a", port: 1), path: "/x",
                                                     headers: [("Host", ["b"])], username: nil, password: nil)
        }
    }

    @Test func statusesAreWordedAsSing() throws {
        for (status, expected) in [("407 Proxy Authentication Required", "authentication required"),
                                   ("405 Method Not Allowed", "method not allowed"),
                                   ("403 Forbidden", "unexpected status: 403 Forbidden")] {
            let channel = EmbeddedChannel()
            let result = channel.eventLoop.makePromise(of: Void.self)
            try channel.pipeline.syncOperations.addHandler(HTTPConnectClientHandler(
                request: HTTPRequestHead(method: "CONNECT", target: "a:1"), result: result))
            try channel.writeInbound(buffer("HTTP/1.1 \(status)\r\nContent-Length: 0\r\n\r\n"))
            do {
                try result.futureResult.wait()
                Issue.record("accepted \(status)")
            } catch {
                #expect("\(error)" == expected)
            }
        }
    }

    @Test func okReplaysTunnelBytes() throws {
        let channel = EmbeddedChannel()
        let result = channel.eventLoop.makePromise(of: Void.self)
        try channel.pipeline.syncOperations.addHandler(HTTPConnectClientHandler(
            request: HTTPRequestHead(method: "CONNECT", target: "a:1"), result: result))
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "CONNECT a:1 HTTP/1.1\r\n\r\n")
        try channel.writeInbound(buffer("HTTP/1.1 200 Connection established\r\n"))
        try channel.writeInbound(buffer("\r\nSSH-2.0-x"))
        try result.futureResult.wait()
        channel.read()
        #expect(try channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "SSH-2.0-x")
    }
}
