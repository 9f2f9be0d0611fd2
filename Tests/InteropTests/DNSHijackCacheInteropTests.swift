// Cached answers through hijack-dns with logs at "warn", where our box serves cache hits for simple UDP
// queries straight from the cached wire form (DNSCachedWire.swift): kdig must see what the first
// (missed, parsed, encoded) answer showed, with the TTL counting down, its ID, its EDNS, its own
// spelling of the name, and TC where the answer does not fit; many sockets asking at once each get
// their own answers; garbage datagrams change nothing. dnsmasq is the upstream, kdig the client.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct DNSHijackCacheInteropTests {
    /// dnsmasq answering every name with 10.1.1.1 / fd00::1 (TTL 300), and `big.example` with a TXT
    /// record of ~600 octets (more than 512 without EDNS).
    static func upstream(in work: TemporaryDirectory) throws -> Dnsmasq {
        let text = String(repeating: "x", count: 200)
        return try Dnsmasq(["--address=/#/10.1.1.1", "--address=/#/fd00::1", "--txt-record=big.example,\"\(text)\",\"\(text)\",\"\(text)\"",
                            "--local-ttl=300"], in: work)
    }

    static func config(dnsPort: UInt16, upstream: UInt16) -> String {
        """
        {"log": {"level": "warn", "timestamp": false},
         "dns": {"servers": [{"type": "udp", "tag": "up", "server": "127.0.0.1", "server_port": \(upstream)}]},
         "inbounds": [{"type": "direct", "tag": "dns-in", "listen": "127.0.0.1", "listen_port": \(dnsPort)}],
         "outbounds": [{"type": "direct", "tag": "direct"}],
         "route": {"rules": [{"inbound": "dns-in", "action": "hijack-dns"}]}}
        """
    }

    /// The upstream, and our box in front of it answering on `dnsPort`, both in `work`.
    static func start(in work: TemporaryDirectory) throws -> (upstream: Dnsmasq, box: SingBox, dnsPort: UInt16) {
        let upstream = try Self.upstream(in: work)
        do {
            let dnsPort = try freeDualPort()
            let box = try SingBox(.ours, config: config(dnsPort: dnsPort, upstream: upstream.port), waitPort: dnsPort, in: work)
            do {
                try waitForUDPAnswer(port: dnsPort)
            } catch {
                box.stop()
                throw error
            }
            return (upstream, box, dnsPort)
        } catch {
            upstream.stop()
            throw error
        }
    }

    /// `SingBox` waits for the inbound's TCP listener; its UDP socket can bind a moment later (a CI run
    /// got port unreachable on the first queries). Asks a name of its own until one answer comes.
    static func waitForUDPAnswer(port: UInt16) throws {
        let probe = try UDPClient(port: port)
        defer { probe.close() }
        for attempt in 0..<50 {
            probe.send(UDPClient.query(id: UInt16(attempt), name: "ready.cache.example"))
            if probe.receive(timeout: 0.1) != nil { return }
            usleep(50_000)
        }
        throw PeerError("no UDP answer on 127.0.0.1:\(port) within 7.5 s")
    }

    /// kdig's full text output for one UDP query (kdig itself refuses an answer whose ID does not match).
    func kdig(_ arguments: [String], port: UInt16) throws -> String {
        let result = try runTool(Peers.kdig, ["@127.0.0.1", "-p", String(port), "+timeout=2", "+retry=1"] + arguments, timeout: 10)
        return String(decoding: result.stdout, as: UTF8.self)
    }

    /// The lines of one kdig section (`;; ANSWER SECTION:` …) up to the blank line.
    func section(_ name: String, of text: String) -> [String] {
        guard let start = text.range(of: ";; \(name) SECTION:\n") ?? text.range(of: ";; \(name):\n") else { return [] }
        return text[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).prefix { !$0.isEmpty }.map(String.init)
    }

    /// The TTL field of an answer line (`host.example. 299 IN A 10.1.1.1`).
    func ttl(_ line: String) -> Int? {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        return fields.count > 1 ? Int(fields[1]) : nil
    }

    /// An answer line without its TTL.
    func withoutTTL(_ line: String) -> String {
        var fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        if fields.count > 1 { fields.remove(at: 1) }
        return fields.joined(separator: " ")
    }

    @Test func cachedAnswersMatchTheFirstMiss() throws {
        let work = try TemporaryDirectory()
        let (upstream, box, dnsPort) = try Self.start(in: work)
        defer { box.stop(); upstream.stop() }
        // kdig asks without EDNS by default; +bufsize adds an option-less OPT (a simple query, cached);
        // +nsid adds an option (DNSClient caches only option-less queries: two misses, alike).
        for (index, flags) in [[], ["+noedns"], ["+bufsize=1232"], ["+bufsize=4096", "+nsid"]].enumerated() {
            for type in ["A", "AAAA"] {
                let name = "host-\(index)-\(type).cache.example"
                let miss = try kdig([name, type] + flags, port: dnsPort)
                let hit = try kdig([name, type] + flags, port: dnsPort)
                let missAnswer = section("ANSWER", of: miss), hitAnswer = section("ANSWER", of: hit)
                #expect(missAnswer.count == 1, "\(flags) \(type) miss:\n\(miss)\n\(box.log.suffix(2000))")
                #expect(missAnswer.map(withoutTTL) == hitAnswer.map(withoutTTL), "\(flags) \(type)\n\(miss)\n\(hit)")
                // The same EDNS pseudo-section (or none) and header flags on the hit as on the miss.
                #expect(section("EDNS PSEUDOSECTION", of: miss) == section("EDNS PSEUDOSECTION", of: hit), "\(flags)\n\(miss)\n\(hit)")
                #expect(miss.contains("status: NOERROR") && hit.contains("status: NOERROR"))
                let missTTL = try #require(missAnswer.first.flatMap(ttl)), hitTTL = try #require(hitAnswer.first.flatMap(ttl))
                #expect(hitTTL <= missTTL && missTTL <= 300)
            }
        }
        // The TTL counts down on cached answers.
        let before = try #require(section("ANSWER", of: try kdig(["host-0-A.cache.example", "A"], port: dnsPort)).first.flatMap(ttl))
        usleep(2_100_000)
        let after = try #require(section("ANSWER", of: try kdig(["host-0-A.cache.example", "A"], port: dnsPort)).first.flatMap(ttl))
        #expect(after <= before - 2, "TTL \(before) then \(after)")
        // Another spelling of a cached name (kdig lowers names, so a raw socket asks): the question is
        // echoed as asked, the answer is the cached one.
        let raw = try UDPClient(port: dnsPort)
        defer { raw.close() }
        let mixedQuery = UDPClient.query(id: 0x5151, name: "HOST-0-a.Cache.Example")
        raw.send(mixedQuery)
        let mixed = try #require(raw.receive(timeout: 3))
        #expect(mixed.count > mixedQuery.count && Array(mixed[12..<mixedQuery.count]) == Array(mixedQuery[12...]))
        #expect(mixed[0] == 0x51 && mixed[1] == 0x51 && Array(mixed.suffix(4)) == [10, 1, 1, 1])
        // ~600 octets of TXT: without EDNS both the miss and the hit are cut with TC (kdig +ignore keeps
        // the truncated answer instead of retrying over TCP); with a 4096 payload both are whole.
        for _ in 0..<2 {
            let cut = try kdig(["big.example", "TXT", "+noedns", "+ignore"], port: dnsPort)
            #expect(cut.contains(" tc") && section("ANSWER", of: cut).isEmpty, "\(cut)")
        }
        for _ in 0..<2 {
            let whole = try kdig(["big.example", "TXT", "+bufsize=4096"], port: dnsPort)
            #expect(!whole.contains(" tc") && section("ANSWER", of: whole).count == 1, "\(whole)")
        }
        #expect(box.process.isRunning)
    }

    @Test func manySourcesAndGarbage() throws {
        let work = try TemporaryDirectory()
        let (upstream, box, dnsPort) = try Self.start(in: work)
        defer { box.stop(); upstream.stop() }
        // Garbage first, from its own socket: nothing comes back and nothing breaks.
        let junk = try UDPClient(port: dnsPort)
        defer { junk.close() }
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 11, 12, 17, 40, 300, 1400] {
            junk.send((0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) })
        }
        // A truncated query, a response, and a query whose name is a compression loop.
        let valid = UDPClient.query(id: 1, name: "junk.cache.example")
        junk.send(Array(valid.prefix(20)))
        var response = valid; response[2] |= 0x80
        junk.send(response)
        junk.send([0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1])
        #expect(junk.receive(timeout: 0.5) == nil)
        // 16 sockets, 10 names (misses and hits interleaved), 4 rounds each: every answer carries the
        // ID asked with and 10.1.1.1.
        let clients = try (0..<16).map { _ in try UDPClient(port: dnsPort) }
        defer { for client in clients { client.close() } }
        var answered = 0
        for round in 0..<4 {
            for (index, client) in clients.enumerated() {
                let id = UInt16(round * 1000 + index * 10)
                client.send(UDPClient.query(id: id, name: "many\(index % 10).cache.example"))
            }
            for (index, client) in clients.enumerated() {
                let id = UInt16(round * 1000 + index * 10)
                var reply = client.receive(timeout: 3)
                if reply == nil {  // loopback under load may drop: one resend, as a resolver would
                    client.send(UDPClient.query(id: id, name: "many\(index % 10).cache.example"))
                    reply = client.receive(timeout: 3)
                }
                guard let reply else { Issue.record("no answer for client \(index) round \(round)"); continue }
                #expect(reply.count > 16 && UInt16(reply[0]) << 8 | UInt16(reply[1]) == id)
                #expect(reply[2] & 0x80 != 0 && reply[7] == 1, "one answer: \(reply)")
                #expect(Array(reply.suffix(4)) == [10, 1, 1, 1])
                answered += 1
            }
        }
        #expect(answered == 64)
        // The garbage socket still gets answers.
        junk.send(valid)
        #expect(junk.receive(timeout: 3).map { $0.suffix(4) == [10, 1, 1, 1] } == true)
        #expect(box.process.isRunning)
    }
}

/// A UDP socket talking to 127.0.0.1:`port`.
final class UDPClient {
    let fd: Int32

    init(port: UInt16) throws {
        fd = connectLoopback(port: port, type: SOCK_DGRAM)
        guard fd >= 0 else { throw PeerError("udp socket to 127.0.0.1:\(port): errno \(errno)") }
    }

    /// An A query with RD set and no EDNS.
    static func query(id: UInt16, name: String) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") {
            bytes.append(UInt8(label.utf8.count))
            bytes.append(contentsOf: label.utf8)
        }
        bytes += [0, 0, 1, 0, 1]
        return bytes
    }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
    }

    /// The next datagram, or nil after `timeout` seconds.
    func receive(timeout: Double) -> [UInt8]? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count >= 0 ? Array(buffer.prefix(count)) : nil
    }

    func close() { Glibc.close(fd) }
}
