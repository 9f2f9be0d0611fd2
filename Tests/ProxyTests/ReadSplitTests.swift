// The socks4/4a/5 and http inbounds behind the mixed sniffer under arbitrary read splits
// (TestSupport/ReadSplits): a pipelined handshake (greeting, RFC 1929 auth, request) or request head
// with early payload behind it, cut one byte per read, at every point and pair of points over the
// handshake, and at seeded random points: the same flow, user and payload every time.
import Adapter
import HTTPProxy
import Mixed
import NIOCore
import NIOEmbedded
import SOCKS
import Testing
import TestSupport

@Suite struct ProxyReadSplitTests {
    struct Output: Equatable {
        var destination: Destination?
        var user: String?
        var payload = ByteBuffer()
    }

    static func run(_ reads: [ArraySlice<UInt8>]) throws -> Output {
        let flows = RecordingFlowHandler()
        let socks = SOCKSInboundContext(tag: "in", type: "mixed", users: SOCKSUsers([(username: "u", password: "p")]),
                                        flowHandler: flows, logger: silentLogger)
        let http = HTTPInboundContext(tag: "in", type: "mixed", users: HTTPProxyUsers([(username: "u", password: "p")]),
                                      flowHandler: flows, logger: silentLogger)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(MixedSniffHandler(socks: socks, http: http))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        for read in reads where channel.isActive { try channel.writeInbound(ByteBuffer(bytes: read)) }
        var output = Output()
        if let flow = flows.tcp.first {
            output.destination = flow.metadata.destination
            output.user = flow.metadata.user
            if let responder = flow.responder { _ = responder.succeed(channel) }
            channel.embeddedEventLoop.run()
            channel.read()
            while var piece = try channel.readInbound(as: ByteBuffer.self) { output.payload.writeBuffer(&piece) }
        }
        _ = try? channel.finish()
        return output
    }

    @Test(arguments: 0..<4)
    func handshakeUnderEverySplit(kind: Int) throws {
        let early = (0..<1500).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let request: [UInt8]
        let expected: Output
        switch kind {
        case 0:  // SOCKS5: greeting (user/pass), auth u/p, CONNECT a.local:80
            request = [5, 1, 2] + [1, 1, 0x75, 1, 0x70] + [5, 1, 0, 3, 7] + Array("a.local".utf8) + [0, 80]
            expected = Output(destination: Destination(domain: "a.local", port: 80), user: "u", payload: ByteBuffer(bytes: early))
        case 1:  // SOCKS5 CONNECT to IPv6
            request = [5, 2, 0, 2] + [1, 1, 0x75, 1, 0x70] + [5, 1, 0, 4] + [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1, 0x1F, 0x90]
            expected = Output(destination: Destination(ip: IPAddress("2001:db8::1")!, port: 8080), user: "u", payload: ByteBuffer(bytes: early))
        case 2:  // HTTP CONNECT with Basic u:p
            request = Array("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n".utf8)
            expected = Output(destination: Destination(domain: "example.com", port: 443), user: "u", payload: ByteBuffer(bytes: early))
        default:  // SOCKS4 with a user that is not allowed: no flow
            request = [4, 1, 0x1F, 0x90, 0, 0, 0, 9] + Array("u".utf8) + [0] + Array("b.local".utf8) + [0]
            expected = Output()
        }
        let bytes = request + early
        let schedules = ReadSplits.schedules(length: bytes.count, boundaries: [request.count], pairRegion: 0..<min(request.count + 2, 40),
                                             randomRuns: 16)
        let failures = ReadSplits.mismatches(bytes, schedules: schedules, expected: expected) { try Self.run($0) }
        #expect(failures.isEmpty, "\(failures)")
    }
}
