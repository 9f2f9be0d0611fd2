import NetstackTCP
import NetstackWire

/// A seeded generator (SplitMix64), so every simulated run is reproducible from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// True with probability `p`.
    mutating func chance(_ p: Double) -> Bool { p > 0 && Double(next() >> 11) / Double(1 << 53) < p }
}

/// One direction of a simulated path: a bottleneck of `bytesPerSecond` with a drop-tail queue, a fixed
/// propagation delay, and seeded loss, reordering (an extra random delay) and duplication.
/// Segments cross it as bytes: written with `TCPSegment.write(into:)` and parsed back, so the wire code
/// is exercised on every packet.
struct SimulatedLink {
    var random: SplitMix64
    var lossRate = 0.0
    var reorderRate = 0.0
    var duplicateRate = 0.0
    var delay: Duration = .milliseconds(10)
    var bytesPerSecond = 12_500_000  // 100 Mbit/s
    var maximumQueueDelay: Duration = .milliseconds(50)
    var nextFree = Instant.zero
    var queue: [(arrival: Instant, order: Int, bytes: PacketBuffer)] = []
    var order = 0
    var sent = 0, dropped = 0

    init(seed: UInt64) { random = SplitMix64(seed: seed) }

    mutating func send(_ segment: TCPSegment, now: Instant) {
        var bytes = PacketBuffer()
        segment.write(into: &bytes, sourcePort: 40000, destinationPort: 443)
        sent += 1
        // Bottleneck queue: drop tail when the backlog exceeds the queue.
        let start = max(now, nextFree)
        if start - now > maximumQueueDelay { dropped += 1; return }
        // With TSO a super-segment occupies the link for all of its bytes.
        let wireBytes = bytes.readableBytes + 40
        nextFree = start + .nanoseconds(Int64(wireBytes) * 1_000_000_000 / Int64(bytesPerSecond))
        if random.chance(lossRate) { dropped += 1; return }
        var arrival = nextFree + delay
        if random.chance(reorderRate) { arrival += .milliseconds(Int64(random.next() % 20) + 1) }
        enqueue(bytes, at: arrival)
        if random.chance(duplicateRate) { enqueue(bytes, at: arrival + .milliseconds(Int64(random.next() % 15))) }
    }

    mutating func enqueue(_ bytes: PacketBuffer, at arrival: Instant) {
        order += 1
        queue.append((arrival, order, bytes))
    }

    /// The earliest arrival still queued.
    var nextArrival: Instant? { queue.min { ($0.arrival, $0.order) < ($1.arrival, $1.order) }?.arrival }

    /// Removes and parses everything due by `now`, in arrival order.
    mutating func deliver(upTo now: Instant) -> [TCPSegment] {
        var due = queue.filter { $0.arrival <= now }
        guard !due.isEmpty else { return [] }
        queue.removeAll { $0.arrival <= now }
        due.sort { ($0.arrival, $0.order) < ($1.arrival, $1.order) }
        return due.map { try! TCPSegment(parsing: $0.bytes) }
    }
}

/// A byte stream whose content is a function of its offset, so the receiver checks every byte: a table
/// of prime length (so it never lines up with segment sizes), salted per direction.
struct Pattern {
    static let period = 65521
    let table: [UInt8]
    init(salt: UInt8) {
        var random = SplitMix64(seed: UInt64(salt))
        let base = (0..<Self.period).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        table = base + base  // byte k of the stream is base[k % period]; any window fits
    }
    /// `count` pattern bytes from stream offset `offset` (count ≤ period).
    func chunk(at offset: Int, count: Int) -> ArraySlice<UInt8> {
        let start = offset % Self.period
        return table[start..<(start + count)]
    }
}

/// FNV-1a over a stream, for the end-to-end hash check.
struct FNV1a {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var v = value
        for byte in bytes { v = (v ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        value = v
    }
}

/// One end of a simulated transfer: writes `total` pattern bytes, reads and checks the peer's.
struct Endpoint {
    var connection: TCPConnection?
    let pattern: Pattern, peerPattern: Pattern
    let total: Int
    var written = 0
    var received = 0
    var sentHash = FNV1a(), receivedHash = FNV1a()
    var mismatches = 0
    var firstMismatch: Int?
    var sawEOF = false
    var shutDown = false
    var events: TCPEvents = []
    /// At most this many bytes are read per pump (a slow reader closes the window).
    var readLimit = Int.max

    /// Moves application data: fills the send buffer, drains the receive buffer, closes when done.
    /// Works on the stored connection in place: a copy would share the send buffer's storage and turn
    /// every `send` into a copy-on-write of the whole buffer.
    mutating func pump(chunk: Int = 16384) {
        guard connection != nil else { return }
        events.formUnion(connection!.takeEvents())
        while written < total, connection!.sendSpace > 0 {
            let count = min(chunk, total - written, connection!.sendSpace)
            var buffer = PacketBuffer(bytes: pattern.chunk(at: written, count: count))
            buffer.withUnsafeReadableBytes { sentHash.add($0) }
            let taken = connection!.send(&buffer)
            written += taken
            if taken == 0 { break }
        }
        var readBudget = readLimit
        while readBudget > 0, let data = connection!.read(max: min(32768, readBudget)) {
            readBudget -= data.readableBytes
            let expected = peerPattern.chunk(at: received, count: data.readableBytes)
            data.withUnsafeReadableBytes { bytes in
                receivedHash.add(bytes)
                let same = expected.withUnsafeBytes { $0.elementsEqual(bytes) }
                if !same {
                    if mismatches == 0 { firstMismatch = received }
                    mismatches += 1
                }
            }
            received += data.readableBytes
        }
        if connection!.isReadClosed { sawEOF = true }
        if written == total, !shutDown, connection!.state == .established || connection!.state == .closeWait {
            connection!.shutdownWrite()
            shutDown = true
        }
        events.formUnion(connection!.takeEvents())
    }
}

/// Two connections back to back over two simulated links, driven in simulated time.
struct Transfer {
    var client: Endpoint
    var server: Endpoint
    var forward: SimulatedLink   // client → server
    var backward: SimulatedLink  // server → client
    var serverConfiguration: TCPConfiguration
    var now = Instant.zero
    var steps = 0
    var outbox: [TCPSegment] = []
    /// When on, the last 80 deliveries are kept for a failure report.
    var trace = false
    var traceLines: [String] = []
    mutating func note(_ line: String) {
        traceLines.append("\(now) " + line)
        if traceLines.count > 80 { traceLines.removeFirst() }
    }

    init(seed: UInt64, clientBytes: Int, serverBytes: Int, client clientConfiguration: TCPConfiguration,
         server serverConfiguration: TCPConfiguration) {
        var seeds = SplitMix64(seed: seed)
        forward = SimulatedLink(seed: seeds.next())
        backward = SimulatedLink(seed: seeds.next())
        let clientISN = SeqNumber(UInt32(truncatingIfNeeded: seeds.next()))
        client = Endpoint(connection: TCPConnection(connecting: clientConfiguration, initialSequenceNumber: clientISN,
                                                    timestampOffset: UInt32(truncatingIfNeeded: seeds.next()), now: .zero),
                          pattern: Pattern(salt: 0x5a), peerPattern: Pattern(salt: 0xa5), total: clientBytes)
        server = Endpoint(connection: nil, pattern: Pattern(salt: 0xa5), peerPattern: Pattern(salt: 0x5a), total: serverBytes)
        self.serverConfiguration = serverConfiguration
        serverISN = SeqNumber(UInt32(truncatingIfNeeded: seeds.next()))
    }
    var serverISN: SeqNumber

    /// Both connections closed and both applications have read everything.
    var isDone: Bool {
        client.connection?.state == .closed && server.connection?.state == .closed
            && client.connection?.readableByteCount == 0 && server.connection?.readableByteCount == 0
    }

    /// Runs until both sides are closed or `limit` passes. Returns false on a stall (no deadline, no packet).
    mutating func run(until limit: Instant) -> Bool {
        while !isDone, now < limit {
            steps += 1
            for segment in forward.deliver(upTo: now) {
                if server.connection == nil {
                    server.connection = TCPConnection(accepting: segment, configuration: serverConfiguration,
                                                      initialSequenceNumber: serverISN, timestampOffset: 77, now: now)
                } else {
                    server.connection!.receive(segment, now: now)
                }
                if trace { let state = server.connection!.state; note("C→S \(segment) ⇒ server \(state)") }
            }
            for segment in backward.deliver(upTo: now) {
                client.connection!.receive(segment, now: now)
                if trace { let state = client.connection!.state; note("S→C \(segment) ⇒ client \(state)") }
            }
            client.pump()
            server.pump()
            var next: Instant? = nil
            if client.connection != nil {
                outbox.removeAll(keepingCapacity: true)
                next = earliest(next, client.connection!.transmit(into: &outbox, now: now))
                for s in outbox { forward.send(s, now: now) }
                outbox.removeAll(keepingCapacity: true)  // drop send-buffer slices before the next send
                client.pump()
            }
            if server.connection != nil {
                outbox.removeAll(keepingCapacity: true)
                next = earliest(next, server.connection!.transmit(into: &outbox, now: now))
                for segment in outbox { backward.send(segment, now: now) }
                outbox.removeAll(keepingCapacity: true)
                server.pump()
            }
            next = earliest(next, forward.nextArrival)
            next = earliest(next, backward.nextArrival)
            guard let next else {
                // Nothing timed or in flight: a slow reader may still be draining a closed connection.
                if client.connection?.state == .closed && server.connection?.state == .closed { continue }
                return isDone
            }
            now = max(now, next)
        }
        return isDone
    }

    func earliest(_ a: Instant?, _ b: Instant?) -> Instant? {
        guard let a else { return b }
        guard let b else { return a }
        return min(a, b)
    }
}
