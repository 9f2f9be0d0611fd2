import Foundation
@testable import Router
import Testing

/// The QUIC Initial sniffer against RFC 9001's sample and Initials from a real QUIC client (aioquic).
@Suite struct QUICSnifferTests {
    func sniff(_ packets: [[UInt8]]) -> [SniffOutcome] {
        var state = PacketSniffState()
        return packets.map { PacketSniffer.run(PacketSniffer.allCases, over: $0, state: &state) }
    }

    @Test func opensRFC9001AppendixAClientInitial() {
        #expect(rfc9001ClientInitial.count == 1200)
        // One CRYPTO frame then PADDING, no Safari fingerprint: Go's rules say "unknown".
        #expect(sniff([rfc9001ClientInitial]) == [.found(protocol: "quic", domain: "example.com", client: "unknown")])
    }

    @Test func decryptsTheRFCPayloadExactly() throws {
        let plain = try #require(QUICInitialSniffer.decryptInitial(rfc9001ClientInitial[...]))
        // RFC 9001 A.2: CRYPTO frame, offset 0, length 0x40f1 = 241, ClientHello of 0xed + 4 bytes.
        #expect(Array(plain.prefix(8)) == [0x06, 0x00, 0x40, 0xF1, 0x01, 0x00, 0x00, 0xED])
        #expect(plain.count == 1200 - 22 - 16)   // header with packet number 22, tag 16
    }

    @Test func rejectsATamperedTagAndEveryTruncation() {
        var tampered = rfc9001ClientInitial
        tampered[tampered.count - 1] ^= 1
        #expect(sniff([tampered]) == [.notThisProtocol])
        for length in 0..<rfc9001ClientInitial.count {
            var state = PacketSniffState()
            let outcome = PacketSniffer.quic.sniff(Array(rfc9001ClientInitial.prefix(length)), state: &state)
            #expect(outcome == .notThisProtocol, "length \(length)")
        }
    }

    @Test func garbageLongHeadersNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var packet = (0..<Int.random(in: 0..<1300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if packet.count > 5 { packet[0] = 0xC0; packet[1...4] = [0, 0, 0, 1] }
            var state = PacketSniffState()
            #expect(PacketSniffer.quic.sniff(packet, state: &state) == .notThisProtocol)
        }
    }

    /// aioquic (a real client) writes its first flight; each line of output is one datagram.
    func aioquicInitials(serverName: String, version: Int, alpnCount: Int = 1) throws -> [[UInt8]] {
        let script = """
        import sys
        from aioquic.quic.configuration import QuicConfiguration
        from aioquic.quic.connection import QuicConnection
        from aioquic.quic.packet import QuicProtocolVersion
        version = QuicProtocolVersion.VERSION_2 if sys.argv[2] == "2" else QuicProtocolVersion.VERSION_1
        alpn = ["h3"] + ["x-alpn-padding-%03d-abcdefghijklmnopqrstuv" % i for i in range(int(sys.argv[3]) - 1)]
        config = QuicConfiguration(is_client=True, server_name=sys.argv[1], alpn_protocols=alpn, supported_versions=[version])
        config.original_version = version
        conn = QuicConnection(configuration=config)
        conn.connect(("127.0.0.1", 443), now=0.0)
        for data, addr in conn.datagrams_to_send(now=0.0):
            print(data.hex())
        """
        let text = try output(of: python3, ["-c", script, serverName, String(version), String(alpnCount)])
        let packets = text.split(separator: "\n").map { bytes(hex: String($0)) }
        guard !packets.isEmpty else { throw SniffTestError("aioquic wrote nothing: pip install aioquic") }
        return packets
    }

    @Test(arguments: [1, 2]) func readsARealClientsInitial(version: Int) throws {
        let packets = try aioquicInitials(serverName: "Quic.Example.NET", version: version)
        let outcome = sniff([packets[0]])[0]
        guard case .found(let name, let domain, let client) = outcome else {
            Issue.record("QUIC v\(version): \(outcome)")
            return
        }
        #expect(name == "quic")
        #expect(domain == "quic.example.net")
        #expect(["chromium", "safari", "firefox", "quic-go", "unknown"].contains(client ?? ""))
    }

    /// A ClientHello too big for one Initial (here: many ALPN ids, as post-quantum key shares make
    /// Chrome's) arrives over several datagrams: each but the last asks for more, the last decides.
    @Test func reassemblesAClientHelloSplitAcrossInitials() throws {
        let packets = try aioquicInitials(serverName: "split.example", version: 1, alpnCount: 60)
        try #require(packets.count >= 2, "aioquic should need several datagrams")
        let outcomes = sniff(packets)
        #expect(outcomes.dropLast().allSatisfy { $0 == .needMore }, "\(outcomes)")
        // Go keeps the chromium it set while waiting for the rest.
        guard case .found("quic", "split.example", "chromium") = outcomes.last else {
            Issue.record("last Initial: \(outcomes)")
            return
        }
        // Out of order: the later Initials first, then the one with offset 0.
        let reordered = sniff(Array(packets.dropFirst()) + [packets[0]])
        guard case .found("quic", "split.example", _) = reordered.last else {
            Issue.record("reordered: \(reordered)")
            return
        }
    }
}
