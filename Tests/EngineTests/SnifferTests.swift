// Sniffers over literal first bytes, and the sniff action end to end through a direct inbound.
import Adapter
import Block
import Direct
import Net
import NIOCore
import NIOPosix
import Router
import Rules
import Box
import Testing

/// A minimal TLS 1.2-style ClientHello carrying `sni` (RFC 8446 §4.1.2 layout).
func clientHello(sni: String?) -> [UInt8] {
    var extensions: [UInt8] = []
    if let sni {
        let name = Array(sni.utf8)
        let entry: [UInt8] = [0] + be16(name.count) + name           // host_name(0), length, name
        let list = be16(entry.count) + entry                         // server_name_list
        extensions += [0, 0] + be16(list.count) + list               // extension type 0
    }
    extensions += [0, 0x0b, 0, 2, 1, 0]                             // ec_point_formats, for realism
    var body: [UInt8] = [3, 3] + [UInt8](repeating: 7, count: 32)    // client_version, random
    body += [0]                                                      // empty session id
    body += be16(2) + [0x13, 0x01]                                   // one cipher suite
    body += [1, 0]                                                   // null compression
    body += be16(extensions.count) + extensions
    let handshake: [UInt8] = [1] + [0] + be16(body.count) + body     // ClientHello, 24-bit length
    return [0x16, 3, 1] + be16(handshake.count) + handshake          // handshake record
}

func be16(_ value: Int) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }

@Suite struct SnifferTests {
    @Test func tlsClientHelloGivesSNI() {
        #expect(StreamSniffer.tls.sniff(clientHello(sni: "Example.COM")) == .found(protocol: "tls", domain: "example.com"))
        #expect(StreamSniffer.tls.sniff(clientHello(sni: nil)) == .found(protocol: "tls", domain: nil))
        #expect(StreamSniffer.tls.sniff(Array("GET / HTTP/1.1\r\n".utf8)) == .notThisProtocol)
    }

    @Test func everyTruncationOfAClientHelloAsksForMoreOrGivesUp() {
        let hello = clientHello(sni: "a.test")
        for length in 0..<hello.count {
            let outcome = StreamSniffer.tls.sniff(Array(hello.prefix(length)))
            #expect(outcome == .needMore, "length \(length)")
        }
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: Example.org:8080\r\nAccept: */*\r\n\r\n", SniffOutcome.found(protocol: "http", domain: "example.org")),
        ("POST /x HTTP/1.0\r\nhost: [2001:db8::1]:80\r\n\r\n", .found(protocol: "http", domain: "2001:db8::1")),
        ("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", .found(protocol: "http", domain: nil)),
        ("GET / HTTP/1.1\r\nHost: a", .needMore),
        ("GE", .needMore),
        ("SSH-2.0-OpenSSH_9.2\r\n", .notThisProtocol),
        ("GET /index HTTP/2\r\n\r\n", .notThisProtocol),
    ])
    func httpHost(request: String, expected: SniffOutcome) {
        #expect(StreamSniffer.http.sniff(Array(request.utf8)) == expected)
    }

    @Test func sniffActionRoutesBySniffedDomain() async throws {
        // sniff first, then a domain rule sends `blocked.test` to block; everything else goes direct.
        let upstream = try await startServer { _ in EchoHandler() }
        let upstreamPort = upstream.boundPort
        let rules = [
            RouteRule(condition: .default(DefaultRule(items: [])), action: .sniff(sniffers: [], timeout: nil)),
            RouteRule(condition: .default(DefaultRule(items: [try RuleItem.domain([], suffixes: ["blocked.test"])])),
                      action: .route(outbound: "block", RouteOverrides())),
            RouteRule(condition: .default(DefaultRule(items: [])), action: .route(outbound: "direct", RouteOverrides())),
        ]
        let box = MiniBox(rules: rules, overrideHost: "127.0.0.1", overridePort: UInt16(upstreamPort), networks: [.tcp])
        try await box.inbound.start(.start)
        let port = try #require(box.inbound.tcpLocalAddress?.port)

        let allowedRequest = Array("GET / HTTP/1.1\r\nHost: open.test\r\n\r\n".utf8)
        let allowed = CollectHandler(loop: testGroup.next())
        let first = try await connectClient(port: port, handler: allowed)
        try await first.writeAndFlush(ByteBuffer(bytes: allowedRequest))
        try await first.close(mode: .output)
        #expect(try await wait(allowed.done.futureResult) == allowedRequest, "sniffed bytes are still relayed")

        let blocked = CollectHandler(loop: testGroup.next())
        let second = try await connectClient(port: port, handler: blocked)
        try await second.writeAndFlush(ByteBuffer(bytes: clientHello(sni: "www.blocked.test")))
        #expect(try await wait(blocked.done.futureResult).isEmpty)

        try await box.inbound.close()
        try await upstream.close()
        let log = box.sink.text
        #expect(log.contains("router: sniffed protocol: http, domain: open.test"))
        #expect(log.contains("router: sniffed protocol: tls, domain: www.blocked.test"))
        #expect(log.contains("router: match[1] domain_suffix=blocked.test => route(block)"))
        #expect(log.contains("outbound/block[block]: blocked connection to 127.0.0.1:"))
    }
}

@Suite struct LegacyInboundSniffTests {
    @Test func inboundSniffFieldSniffsBeforeRules() async throws {
        let upstream = try await startServer { _ in EchoHandler() }
        let port = try await freePort()
        let sink = CapturingSink()
        let options = try loadOptions("""
            {"inbounds":[{"type":"direct","tag":"d","listen":"127.0.0.1","listen_port":\(port),"network":"tcp",
                          "override_address":"127.0.0.1","override_port":\(upstream.boundPort),"sniff":true}],
             "outbounds":[{"type":"direct","tag":"out"},{"type":"block","tag":"no"}],
             "route":{"rules":[{"domain":["blocked.test"],"outbound":"no"}],"final":"out"}}
            """)
        let box = try SingBox(options: options, logCore: LogCore(level: .debug, sink: sink))
        try await box.start()
        let collector = CollectHandler(loop: testGroup.next())
        let client = try await connectClient(port: port, handler: collector)
        try await client.writeAndFlush(ByteBuffer(bytes: Array("GET / HTTP/1.1\r\nHost: blocked.test\r\n\r\n".utf8)))
        #expect(try await wait(collector.done.futureResult).isEmpty)
        await box.close()
        try await upstream.close()
        #expect(sink.text.contains("router: sniffed protocol: http, domain: blocked.test"))
        #expect(sink.text.contains("router: match[0] domain=blocked.test => route(no)"))
    }
}
