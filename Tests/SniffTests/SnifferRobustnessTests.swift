@testable import Router
import Testing

/// Untrusted bytes never trap a sniffer (STYLE.md §4): random input and every prefix of real
/// messages go through every stream and packet sniffer.
@Suite struct SnifferRobustnessTests {
    @Test func randomBytesNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<1000 {
            let length = round < 256 ? round : Int.random(in: 0..<1500, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Steer some inputs past the first checks of each parser.
            if length > 3, round % 4 == 1 { bytes[0] = 0x16; bytes[1] = 0x03 }
            if length > 8, round % 4 == 2 { bytes[0] = 0xC3; bytes[1...4] = [0, 0, 0, 1] }
            if length > 2, round % 4 == 3 { bytes[0] = 0; bytes[1] = UInt8(min(length - 2, 255)) }
            _ = StreamSniffer.run(StreamSniffer.allCases, over: bytes)
            var state = PacketSniffState()
            for _ in 0..<2 { _ = PacketSniffer.run(PacketSniffer.allCases, over: bytes, state: &state) }
        }
    }

    @Test func everyPrefixOfRealMessagesIsSafe() {
        let messages: [[UInt8]] = [
            rfc9001ClientInitial,
            Array("SSH-2.0-OpenSSH_9.2p1\r\n".utf8),
            Array("\u{13}BitTorrent protocol".utf8) + [UInt8](repeating: 0, count: 48),
            [0x03, 0x00, 0x00, 0x13, 0x0E, 0xE0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00],
        ]
        for message in messages {
            for length in 0...message.count {
                let prefix = Array(message.prefix(length))
                _ = StreamSniffer.run(StreamSniffer.allCases, over: prefix)
                var state = PacketSniffState()
                _ = PacketSniffer.run(PacketSniffer.allCases, over: prefix, state: &state)
            }
        }
    }

    /// A DNS name whose compression pointer points at itself, and labels longer than the packet.
    @Test func hostileDNSQueriesAreRejected() {
        let header: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
        #expect(DNSQuerySniffer.sniffPacket((header + [0x3F, 0x61])[...]) == .notThisProtocol)
        #expect(DNSQuerySniffer.sniffPacket((header + [0x80, 0x00, 0x00, 0x01, 0x00, 0x01])[...]) == .notThisProtocol)
        // A self-pointer ends the name (we never follow pointers), so the question parses.
        #expect(DNSQuerySniffer.sniffPacket((header + [0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01])[...]) == .found(protocol: "dns", domain: nil))
    }
}
