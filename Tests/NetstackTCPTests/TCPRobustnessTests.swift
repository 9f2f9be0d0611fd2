import NetstackTCP
import NetstackWire
import Testing

/// Peer input never traps: random bytes into the parser, random segments into every state.
@Suite struct TCPRobustnessTests {
    @Test func randomBytesNeverTrapTheParser() {
        var random = SplitMix64(seed: 42)
        var parsed = 0
        for _ in 0..<20_000 {
            let length = Int(random.next() % 80)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if length > 12, random.chance(0.5) { bytes[12] = UInt8(5 + random.next() % 11) << 4 }  // plausible offsets
            if (try? TCPSegment(parsing: PacketBuffer(bytes: bytes))) != nil { parsed += 1 }
        }
        #expect(parsed > 0)
    }

    static let states: [String] = ["listen", "synSent", "synReceived", "established", "finWait1", "finWait2",
                                   "closeWait", "closing", "lastAck", "timeWait"]

    static func harness(_ name: String) -> Harness {
        switch name {
        case "listen": .listen()
        case "synSent": .synSent()
        case "synReceived": .synReceived(modern: true)
        case "established": .established(modern: true)
        case "finWait1": .finWait1()
        case "finWait2": .finWait2()
        case "closeWait": .closeWait()
        case "closing": .closing()
        case "lastAck": .lastAck()
        default: .timeWait()
        }
    }

    @Test(arguments: states)
    func randomSegmentsNeverTrapAnyState(state: String) {
        var random = SplitMix64(seed: UInt64(state.utf8.count) &* 7919)
        var h = Self.harness(state)
        h.write(3000)
        let payloads = bytes(1500)
        for _ in 0..<2_000 {
            let near = random.chance(0.7)
            let seq = near ? h.peerNext + Int(random.next() % 4000) - 2000 : SeqNumber(UInt32(truncatingIfNeeded: random.next()))
            let ack = near ? h.connection.sendNext + Int(random.next() % 4000) - 3000 : SeqNumber(UInt32(truncatingIfNeeded: random.next()))
            var options = TCPOptions()
            if random.chance(0.3) {
                options.sackBlocks.append(TCPSACKBlock(start: ack + Int(random.next() % 3000), end: ack + Int(random.next() % 5000)))
            }
            if random.chance(0.3) { options.timestamp = TCPTimestampOption(value: UInt32(truncatingIfNeeded: random.next()), echoReply: UInt32(truncatingIfNeeded: random.next())) }
            let segment = TCPSegment(sequenceNumber: seq, acknowledgmentNumber: ack,
                                     flags: TCPFlags(rawValue: UInt8(truncatingIfNeeded: random.next()) & 0x1f),
                                     window: UInt16(truncatingIfNeeded: random.next()), options: options,
                                     payload: payloads.getSlice(at: 0, length: Int(random.next() % 1500))!)
            h.deliver(segment)
            if random.chance(0.2) { h.now += .milliseconds(Int64(random.next() % 2000)) }
            _ = h.transmit()
            _ = h.connection.read(max: 1 << 20)
            if h.connection.state == .closed { h = Self.harness(state); h.write(3000) }
        }
    }
}
