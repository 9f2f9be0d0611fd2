import NetstackTCP
import NetstackWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The property test: two connections back to back over lossy, reordering, duplicating links must move
/// every byte exactly and both close cleanly. 100 MB runs behind NETSTACK_TCP_LONG=1.
@Suite struct TransferTests {
    struct Case: CustomStringConvertible, Sendable {
        var seed: UInt64
        var loss: Double
        var algorithm: TCPCongestionAlgorithm
        var sack = true
        var timestamps = true
        var tso = false
        var slowReader = false
        var bytes = 3 * 1024 * 1024
        var description: String { "seed \(seed) loss \(loss) \(algorithm) sack \(sack) ts \(timestamps) tso \(tso) slow \(slowReader)" }
    }

    static let cases: [Case] = [
        Case(seed: 1, loss: 0.01, algorithm: .cubic),
        Case(seed: 2, loss: 0.05, algorithm: .cubic),
        Case(seed: 3, loss: 0.10, algorithm: .newReno),
        Case(seed: 4, loss: 0.03, algorithm: .newReno, sack: false),
        Case(seed: 5, loss: 0.05, algorithm: .cubic, sack: false, timestamps: false),
        Case(seed: 6, loss: 0.02, algorithm: .cubic, sack: true, timestamps: false),
        Case(seed: 7, loss: 0.02, algorithm: .cubic, tso: true),
        // A slow reader behind a 16 KiB window: zero windows, probes and window updates all the way.
        Case(seed: 8, loss: 0.02, algorithm: .cubic, slowReader: true, bytes: 512 * 1024),
    ]

    @Test(arguments: cases)
    func lossyTransferIsByteExactAndClosesCleanly(_ c: Case) {
        var configuration = TCPConfiguration()
        configuration.congestionControl = c.algorithm
        configuration.selectiveAcknowledgments = c.sack
        configuration.timestamps = c.timestamps
        configuration.timeWaitDuration = .seconds(60)  // 2 MSL: shorter lets a late FIN retransmission meet a RST
        if c.tso { configuration.maxSegmentBytes = 65536 }
        var serverConfiguration = configuration
        if c.slowReader {
            serverConfiguration.receiveBufferInitial = 16384
            serverConfiguration.receiveBufferMaximum = 16384
        }
        var transfer = Transfer(seed: c.seed, clientBytes: c.bytes, serverBytes: c.bytes / 3,
                                client: configuration, server: serverConfiguration)
        if c.slowReader { transfer.server.readLimit = 1024 }
        for link in [\Transfer.forward, \Transfer.backward] {
            transfer[keyPath: link].lossRate = c.loss
            transfer[keyPath: link].reorderRate = 0.02
            transfer[keyPath: link].duplicateRate = 0.01
        }
        let finished = transfer.run(until: Instant.zero + .seconds(3600))
        #expect(finished, "stalled at \(transfer.now): client \(String(describing: transfer.client.connection?.state)) server \(String(describing: transfer.server.connection?.state))")
        check(transfer, clientBytes: c.bytes, serverBytes: c.bytes / 3)
    }

    /// 100 MB each way under 2 % loss with reordering and duplication; set NETSTACK_TCP_LONG=1 (use a
    /// release build: `swift test -c release --filter hundredMegabytes`).
    @Test(.enabled(if: getenv("NETSTACK_TCP_LONG") != nil))
    func hundredMegabytes() {
        var configuration = TCPConfiguration()
        configuration.timeWaitDuration = .seconds(60)  // 2 MSL: shorter lets a late FIN retransmission meet a RST
        let size = 100 * 1024 * 1024
        var transfer = Transfer(seed: 100, clientBytes: size, serverBytes: size, client: configuration, server: configuration)
        for link in [\Transfer.forward, \Transfer.backward] {
            transfer[keyPath: link].lossRate = 0.02
            transfer[keyPath: link].reorderRate = 0.02
            transfer[keyPath: link].duplicateRate = 0.01
        }
        let finished = transfer.run(until: Instant.zero + .seconds(36000))
        #expect(finished)
        check(transfer, clientBytes: size, serverBytes: size)
    }

    /// Many seeds with random link and option settings; NETSTACK_TCP_SEEDS=n runs n of them (release build).
    @Test(.enabled(if: getenv("NETSTACK_TCP_SEEDS") != nil))
    func manySeeds() {
        let count = Int(String(cString: getenv("NETSTACK_TCP_SEEDS"))) ?? 100
        let first = UInt64(String(cString: getenv("NETSTACK_TCP_FIRST_SEED") ?? strdup("0"))) ?? 0
        for seed in first..<(first + UInt64(count)) {
            var random = SplitMix64(seed: seed &* 0x5851_F42D)
            var configuration = TCPConfiguration()
            configuration.timeWaitDuration = .seconds(60)  // 2 MSL: shorter lets a late FIN retransmission meet a RST
            configuration.congestionControl = random.chance(0.5) ? .cubic : .newReno
            configuration.selectiveAcknowledgments = random.chance(0.7)
            configuration.timestamps = random.chance(0.7)
            configuration.windowScaling = random.chance(0.8)
            if random.chance(0.3) { configuration.maxSegmentBytes = 65536 }
            if random.chance(0.3) { configuration.receiveBufferInitial = 16384 }
            let bytes = 256 * 1024 + Int(random.next() % (1 << 20))
            var transfer = Transfer(seed: seed, clientBytes: bytes, serverBytes: bytes / 2,
                                    client: configuration, server: configuration)
            let loss = 0.01 + Double(random.next() % 900) / 10000
            for link in [\Transfer.forward, \Transfer.backward] {
                transfer[keyPath: link].lossRate = loss
                transfer[keyPath: link].reorderRate = Double(random.next() % 50) / 1000
                transfer[keyPath: link].duplicateRate = Double(random.next() % 30) / 1000
            }
            transfer.trace = getenv("NETSTACK_TCP_TRACE") != nil
            if random.chance(0.2) { transfer.server.readLimit = 2048 }
            if random.chance(0.2) { configuration.noDelay = false }
            let finished = transfer.run(until: Instant.zero + .seconds(36000))
            #expect(finished, "seed \(seed) stalled")
            check(transfer, clientBytes: bytes, serverBytes: bytes / 2)
            if transfer.client.connection?.closeReason != .normal || transfer.server.connection?.closeReason != .normal {
                for line in transfer.traceLines { print(line) }
                print("seed \(seed): client \(String(describing: transfer.client.connection?.closeReason)) server \(String(describing: transfer.server.connection?.closeReason))")
            }
            if !finished { break }
        }
    }

    func check(_ transfer: Transfer, clientBytes: Int, serverBytes: Int) {
        #expect(transfer.server.received == clientBytes)
        #expect(transfer.client.received == serverBytes)
        #expect(transfer.server.mismatches == 0)
        #expect(transfer.client.mismatches == 0)
        #expect(transfer.server.receivedHash.value == transfer.client.sentHash.value)
        #expect(transfer.client.receivedHash.value == transfer.server.sentHash.value)
        #expect(transfer.client.sawEOF && transfer.server.sawEOF)
        #expect(transfer.client.connection?.closeReason == .normal)
        #expect(transfer.server.connection?.closeReason == .normal)
    }
}
