import Foundation
import NIOCore
@testable import Router
import Testing

/// Each sniffer against the first bytes a real client sends (ssh, kdig, openssl), or the
/// specification's sample bytes where Debian has no client (RDP, BitTorrent, STUN).
@Suite(.serialized) struct SnifferPeerTests {
    func packet(_ bytes: [UInt8], _ sniffers: [PacketSniffer] = PacketSniffer.allCases) -> SniffOutcome {
        var state = PacketSniffState()
        return PacketSniffer.run(sniffers, over: bytes, state: &state)
    }

    @Test func sshClientBanner() throws {
        let listener = try LoopbackSocket(udp: false)
        let ssh = try Client("/usr/bin/ssh", ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                              "-o", "ConnectTimeout=5", "-p", String(listener.port), "sniff@127.0.0.1"])
        _ = ssh
        let first = listener.firstBytes(enough: 10)
        let line = String(decoding: first, as: UTF8.self)
        try #require(line.hasPrefix("SSH-2.0-"), "ssh sent \(line)")
        let software = line.dropFirst(8).split(whereSeparator: \.isNewline).first ?? ""
        #expect(StreamSniffer.run(StreamSniffer.allCases, over: first) == .found(protocol: "ssh", domain: nil, client: String(software)))
        #expect(software.hasPrefix("OpenSSH_"))
        // Byte by byte: a prefix asks for more, never a wrong answer.
        for length in 1..<8 { #expect(StreamSniffer.ssh.sniff(Array(first.prefix(length))) == .needMore) }
    }

    @Test func dnsQueriesFromKdigOverUDPAndTCP() throws {
        let udp = try LoopbackSocket(udp: true)
        let udpClient = try Client("/usr/bin/kdig", ["@127.0.0.1", "-p", String(udp.port), "+timeout=2", "+retry=0", "example.org", "AAAA"])
        _ = udpClient
        let query = udp.firstBytes()
        try #require(query.count > 12)
        #expect(packet(query) == .found(protocol: "dns", domain: nil))

        let tcp = try LoopbackSocket(udp: false)
        let tcpClient = try Client("/usr/bin/kdig", ["@127.0.0.1", "-p", String(tcp.port), "+tcp", "+timeout=2", "+retry=0", "example.org"])
        _ = tcpClient
        let stream = tcp.firstBytes(enough: 14)
        try #require(stream.count > 14)
        #expect(StreamSniffer.run(StreamSniffer.allCases, over: stream) == .found(protocol: "dns", domain: nil))
        #expect(StreamSniffer.dns.sniff(Array(stream.prefix(stream.count - 1))) == .needMore)
        // A response (QR set) is not a query.
        var response = query
        response[2] |= 0x80
        #expect(DNSQuerySniffer.sniffPacket(response[...]) == .notThisProtocol)
    }

    @Test func dtlsClientHelloFromOpenSSL() throws {
        let udp = try LoopbackSocket(udp: true)
        let client = try Client("/usr/bin/openssl", ["s_client", "-dtls1_2", "-connect", "127.0.0.1:\(udp.port)", "-servername", "dtls.example"])
        _ = client
        let record = udp.firstBytes()
        try #require(record.count >= 13)
        #expect(packet(record) == .found(protocol: "dtls", domain: nil))
        #expect(packet(Array(record.prefix(12))) == .notThisProtocol)
    }

    /// openssl s_client's ClientHello, also re-cut into two handshake records and fed segment by
    /// segment: the SNI is found once the whole message is in (issue #4: fragmented ClientHello).
    @Test func tlsClientHelloSplitAcrossRecordsAndSegments() throws {
        let tcp = try LoopbackSocket(udp: false)
        let client = try Client("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(tcp.port)", "-servername", "Split.Example.COM"])
        _ = client
        var hello = tcp.firstBytes(enough: 5)
        try #require(hello.count >= 5 && hello[0] == 0x16)
        let recordLength = Int(hello[3]) << 8 | Int(hello[4])
        if hello.count < 5 + recordLength { hello += tcp.firstBytes(enough: 5 + recordLength - hello.count) }
        try #require(hello.count >= 5 + recordLength)
        hello = Array(hello.prefix(5 + recordLength))
        #expect(StreamSniffer.tls.sniff(hello) == .found(protocol: "tls", domain: "split.example.com"))

        // Two records: the handshake message cut after 50 bytes.
        let body = Array(hello[5...])
        func record(_ part: ArraySlice<UInt8>) -> [UInt8] { [0x16, hello[1], hello[2], UInt8(part.count >> 8), UInt8(part.count & 0xFF)] + part }
        let split = record(body[..<50]) + record(body[50...])
        for length in 1..<split.count {
            #expect(StreamSniffer.tls.sniff(Array(split.prefix(length))) == .needMore, "prefix \(length)")
        }
        #expect(StreamSniffer.tls.sniff(split) == .found(protocol: "tls", domain: "split.example.com"))
    }

    /// [MS-RDPBCGR] 4.1.1: the client X.224 Connection Request PDU with an RDP Negotiation Request.
    @Test func rdpConnectionRequest() {
        let request: [UInt8] = [0x03, 0x00, 0x00, 0x13, 0x0E, 0xE0, 0x00, 0x00, 0x00, 0x00, 0x00,
                                0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00]
        #expect(StreamSniffer.run(StreamSniffer.allCases, over: request) == .found(protocol: "rdp", domain: nil))
        #expect(StreamSniffer.rdp.sniff(Array(request.prefix(6))) == .needMore)
        var other = request
        other[3] = 0x14
        #expect(StreamSniffer.rdp.sniff(other) == .notThisProtocol)
    }

    /// BEP 3 handshake, BEP 29 uTP ST_SYN, BEP 15 connect request.
    @Test func bitTorrentOverTCPAndUDP() {
        let handshake = Array("\u{13}BitTorrent protocol".utf8) + [UInt8](repeating: 0, count: 8)
        #expect(StreamSniffer.run(StreamSniffer.allCases, over: handshake) == .found(protocol: "bittorrent", domain: nil))
        #expect(StreamSniffer.bittorrent.sniff(Array(handshake.prefix(10))) == .needMore)
        // uTP: type ST_SYN (4) version 1, no extension, connection id, timestamps, window, seq, ack.
        let syn: [UInt8] = [0x41, 0x00, 0x30, 0x39, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                            0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        #expect(packet(syn, [.bittorrent]) == .found(protocol: "bittorrent", domain: nil))
        // Tracker connect: protocol id 0x41727101980, action 0, transaction id.
        let connect: [UInt8] = [0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 0xDE, 0xAD, 0xBE, 0xEF]
        #expect(packet(connect) == .found(protocol: "bittorrent", domain: nil))
    }

    /// RFC 5389 §6 Binding request (header only, RFC 5769's transaction id).
    @Test func stunBindingRequest() {
        let request: [UInt8] = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42,
                                0xB7, 0xE7, 0xA7, 0x01, 0xBC, 0x34, 0xD6, 0x86, 0xFA, 0x87, 0xDF, 0xAE]
        #expect(packet(request) == .found(protocol: "stun", domain: nil))
        var lying = request
        lying[3] = 8   // claims 8 attribute bytes it does not carry
        #expect(packet(lying, [.stun]) == .notThisProtocol)
    }

    /// A flow whose client sends nothing more must not wait past the timeout; half a QUIC
    /// ClientHello reports quic/chromium when time runs out, as Go leaves it.
    @Test func packetSniffingNeverStalls() async throws {
        let quiet = FakePeekingConnection(payloads: [])
        let start = ContinuousClock.now
        let none = await PacketSniffing.sniff(quiet, sniffers: [], timeout: .milliseconds(100))
        #expect(none == nil)
        #expect(ContinuousClock.now - start < .seconds(2))
        let plain = FakePeekingConnection(payloads: [Array("hello".utf8)])
        #expect(await PacketSniffing.sniff(plain, sniffers: [], timeout: .seconds(5)) == nil)
        try await quiet.group.shutdownGracefully()
        try await plain.group.shutdownGracefully()
    }
}
