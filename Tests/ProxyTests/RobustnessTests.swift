import Adapter
import HTTPProxy
import Mixed
import NIOCore
import NIOEmbedded
import SOCKS
import Testing
import TestSupport

/// SplitMix64 (TestSupport), seeded so random tests reproduce.
private typealias SplitMix64 = SplitMix

private func mixedChannel(_ flows: RecordingFlowHandler) throws -> EmbeddedChannel {
    let socks = SOCKSInboundContext(tag: "in", type: "mixed", users: SOCKSUsers([(username: "u", password: "p")]),
                                    flowHandler: flows, logger: silentLogger)
    let http = HTTPInboundContext(tag: "in", type: "mixed", users: HTTPProxyUsers([(username: "u", password: "p")]),
                                  flowHandler: flows, logger: silentLogger)
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandler(MixedSniffHandler(socks: socks, http: http))
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    return channel
}

@Suite struct RobustnessTests {
    /// Valid requests cut into random pieces give the same flow as when sent whole.
    @Test(arguments: 0..<20) func randomSplitsGiveTheSameFlow(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let requests: [([UInt8], Destination)] = [
            ([0x05, 0x02, 0x00, 0x02, 0x01, 0x01, 0x75, 0x01, 0x70, 0x05, 0x01, 0x00, 0x03, 0x07] + Array("a.local".utf8) + [0x00, 0x50],
             Destination(domain: "a.local", port: 80)),
            (Array("CONNECT [2001:db8::2]:8443 HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\n".utf8),
             Destination(ip: IPAddress("2001:db8::2")!, port: 8443)),
            ([0x04, 0x01, 0x1f, 0x90, 0, 0, 0, 9] + Array("u".utf8) + [0] + Array("b.local".utf8) + [0],
             Destination(domain: "b.local", port: 8080)),
        ]
        for (request, destination) in requests {
            let flows = RecordingFlowHandler()
            let channel = try mixedChannel(flows)
            var rest = request[...]
            while !rest.isEmpty {
                let take = Int.random(in: 1...max(1, min(rest.count, 7)), using: &random)
                try channel.writeInbound(buffer(Array(rest.prefix(take))))
                rest = rest.dropFirst(take)
            }
            if request.first == 0x04 {
                // SOCKS4 with users: USERID "u" is not a user with an empty password
                #expect(flows.tcp.isEmpty)
                #expect(!channel.isActive)
            } else {
                #expect(flows.tcp.first?.metadata.destination == destination)
                #expect(flows.tcp.first?.metadata.user == "u")
            }
        }
    }

    /// Random bytes in random pieces: the handler answers, closes or waits; it never traps and
    /// never hands the router a flow without valid credentials.
    @Test(arguments: 0..<40) func garbageNeverTrapsOrPassesAuth(seed: UInt64) throws {
        var random = SplitMix64(seed: seed &+ 1000)
        let flows = RecordingFlowHandler()
        let channel = try mixedChannel(flows)
        var prefix: [UInt8] = []
        switch seed % 4 {
        case 0: prefix = [0x05]
        case 1: prefix = [0x04]
        case 2: prefix = Array("GET ".utf8)
        default: break
        }
        try channel.writeInbound(buffer(prefix))
        for _ in 0..<Int.random(in: 1...20, using: &random) where channel.isActive {
            let junk = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            try channel.writeInbound(buffer(junk))
        }
        for flow in flows.tcp { #expect(flow.metadata.user == "u") }
        _ = try? channel.finish()
    }
}
