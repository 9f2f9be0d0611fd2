package import NetstackWire
package import Netstack

/// A point-to-point link between two stacks in simulated time, with seeded loss, duplication and
/// reordering. Each `step()` lets both stacks transmit, puts their packets on the wire, advances
/// time to the next delivery or stack deadline, and delivers what is due.
///
/// The test owns both stacks' owner logic: it drains events and moves data between steps (the
/// `afterStep` closure of `run`). Deterministic for a given seed.
package final class SimulatedLink {
    /// Which stack a packet came from or goes to.
    package enum Side: Sendable { case a, b }

    /// What the wire does to packets. Probabilities are per packet, 0...1.
    package struct Impairments: Sendable {
        /// Probability that a packet is dropped.
        package var loss = 0.0
        /// Probability that a packet arrives twice.
        package var duplication = 0.0
        /// Probability that a packet is held back by `reorderDelay`.
        package var reordering = 0.0
        /// One-way delay of every packet.
        package var latency: Duration = .milliseconds(1)
        /// Extra delay of a reordered packet (it arrives after later ones).
        package var reorderDelay: Duration = .milliseconds(3)

        /// Impairments; all zero is a perfect wire with `latency`.
        package init(loss: Double = 0, duplication: Double = 0, reordering: Double = 0,
                     latency: Duration = .milliseconds(1), reorderDelay: Duration = .milliseconds(3)) {
            self.loss = loss
            self.duplication = duplication
            self.reordering = reordering
            self.latency = latency
            self.reorderDelay = reorderDelay
        }
    }

    struct InFlight {
        var deliverAt: Instant
        var order: Int
        var to: Side
        var packet: Packet
    }

    /// One end.
    package let a: Stack
    /// The other end.
    package let b: Stack
    /// What the wire does; may change between steps.
    package var impairments: Impairments
    package private(set) var now: Instant
    /// Packets put on the wire, dropped by loss, and delivered.
    package private(set) var sent = 0, lost = 0, delivered = 0
    /// Called for every packet a stack sends, before impairments (a pcap tap, an assertion).
    package var onTransmit: ((Side, Packet) -> Void)?
    /// Optional capture of everything sent, timestamped with simulated time.
    package var capture: PcapWriter?

    private var random: SeededRandom
    private var inFlight: [InFlight] = []
    private var order = 0
    private var batch = PacketBatch(capacity: 256)
    private var deadlineA: Instant?
    private var deadlineB: Instant?

    /// A link between `a` and `b`; `seed` fixes every impairment decision.
    package init(a: Stack, b: Stack, impairments: Impairments = Impairments(), seed: UInt64, start: Instant = .zero) {
        self.a = a
        self.b = b
        self.impairments = impairments
        self.random = SeededRandom(seed: seed)
        self.now = start
    }

    /// Packets on the wire now.
    package var packetsInFlight: Int { inFlight.count }

    /// One round: transmit from both, advance time (not past `limit`), deliver what is due.
    /// Returns false when nothing is in flight and neither stack has a deadline before `limit`.
    @discardableResult
    package func step(limit: Instant) -> Bool {
        deadlineA = transmit(from: .a)
        deadlineB = transmit(from: .b)
        var next = inFlight.first?.deliverAt
        for d in [deadlineA, deadlineB] { if let d { next = min(next ?? d, d) } }
        // Nothing in flight and no deadline: time stands still (the owners may still act).
        guard let target = next else { return false }
        guard target <= limit else {
            now = max(now, limit)
            return false
        }
        now = max(now, target)
        deliverDue()
        return true
    }

    /// Steps until `condition` holds or `timeout` of simulated time passes; `afterStep` runs the owners'
    /// logic. Returns whether the condition held.
    @discardableResult
    package func run(timeout: Duration, until condition: () -> Bool, afterStep: () -> Void = {}) -> Bool {
        let limit = now + timeout
        afterStep()
        var idleRounds = 0
        while !condition() {
            if now >= limit { return false }
            if step(limit: limit) {
                idleRounds = 0
            } else {
                // Idle: one more round lets output the owners queued in afterStep go out.
                idleRounds += 1
                if idleRounds > 1 { return condition() }
            }
            afterStep()
        }
        return true
    }

    /// Advances simulated time by `duration`, stepping through everything due on the way.
    package func advance(by duration: Duration, afterStep: () -> Void = {}) {
        let limit = now + duration
        while step(limit: limit) { afterStep() }
        now = max(now, limit)
        afterStep()
    }

    private func transmit(from side: Side) -> Instant? {
        let stack = side == .a ? a : b
        batch.removeAll()
        let deadline = stack.transmit(into: &batch, now: now)
        for packet in batch.packets {
            sent += 1
            onTransmit?(side, packet)
            capture?.write(packet.bytes, at: now)
            if chance(impairments.loss) {
                lost += 1
                continue
            }
            var at = now + impairments.latency
            if chance(impairments.reordering) { at += impairments.reorderDelay }
            put(InFlight(deliverAt: at, order: 0, to: side == .a ? .b : .a, packet: packet))
            if chance(impairments.duplication) {
                put(InFlight(deliverAt: at + .microseconds(100), order: 0, to: side == .a ? .b : .a, packet: packet))
            }
        }
        batch.removeAll()
        return deadline
    }

    private func put(_ item: InFlight) {
        var item = item
        order += 1
        item.order = order
        // Keep the list sorted by delivery time, then sending order.
        var index = inFlight.count
        while index > 0 && (inFlight[index - 1].deliverAt, inFlight[index - 1].order) > (item.deliverAt, item.order) { index -= 1 }
        inFlight.insert(item, at: index)
    }

    private func deliverDue() {
        var toA = PacketBatch(capacity: 16)
        var toB = PacketBatch(capacity: 16)
        while let first = inFlight.first, first.deliverAt <= now {
            inFlight.removeFirst()
            delivered += 1
            if first.to == .a { toA.append(first.packet) } else { toB.append(first.packet) }
        }
        if !toA.isEmpty { a.receive(&toA, now: now) }
        if !toB.isEmpty { b.receive(&toB, now: now) }
    }

    private func chance(_ probability: Double) -> Bool {
        guard probability > 0 else { return false }
        return Double(random.next() >> 11) / Double(1 << 53) < probability
    }
}
