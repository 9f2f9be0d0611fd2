package import NetstackWire
import NetstackTCP

/// A sans-I/O IPv4/IPv6 host: the netstack's centre.
///
/// 1. `receive(_:now:)` takes a batch: each packet is validated (IP header, checksums unless the
///    virtio-net header says the kernel vouches for them), reassembled if a fragment, and demuxed:
///    ICMP echo is answered, UDP and TCP go to their flow or become an `.incoming` flow.
/// 2. The owner drains `nextEvent()` and calls `accept`/`reject`/`receiveDatagram`/`sendDatagram`/`close`.
/// 3. `transmit(into:now:)` runs due timers (UDP idle, pending flows, reassembly) and hands over every
///    queued packet; it returns the next deadline.
///
/// One owner, one thread: a `Stack` belongs to one event loop (NetstackNIO) or one test; it has no
/// locks. It is a class because flows and the owner's channels refer to it.
package final class Stack: PacketStack {
    /// Bytes kept free before the IP header of every packet the stack builds: virtio-net (10) or a
    /// WireGuard header (16) fits, with room to spare.
    package static let headroom = 64

    /// What the stack was built with; fixed for its life.
    package let configuration: StackConfiguration
    /// Counters of what it did and dropped.
    package internal(set) var statistics = StackStatistics()

    var random: SeededRandom
    var events = RingQueue<StackEvent>(initialCapacity: 64)
    var output = RingQueue<Packet>(initialCapacity: 256)

    /// Flow slots; a `FlowID` indexes here and must match the slot's generation.
    var slots: [FlowSlot] = []
    /// The generation of each slot: bumped when its flow is removed.
    var generations: [UInt32] = []
    var freeSlots: [UInt32] = []
    var flowIndex: [FlowKey: FlowID] = [:]
    var flowCount = 0
    var pendingSYNs = 0
    var bufferedBytes = 0
    /// Bytes buffered by all TCP connections (send and receive), counted after each change.
    var tcpBufferedBytes = 0
    var listeners: Set<ListenKey> = []
    var timers = DeadlineHeap()
    /// TCP flows with something to transmit.
    var dirtyTCP: [FlowID] = []
    var tcpSegmentScratch: [TCPSegment] = []
    /// Output buffers given back by `recycle`, reused by `makeTransportBuffer`.
    var bufferPool: [PacketBuffer] = []

    var reassembly4: Reassembler
    var reassembly6: Reassembler
    var expiredScratch: [Reassembler.Expired] = []
    var icmpLimiter: TokenBucket
    var ipv4Identification: UInt16
    /// The time of the last `receive`/`transmit`, for calls that come without one (owner writes).
    package internal(set) var lastNow: Instant = .zero

    /// Makes a stack. `seed` feeds every random choice (ports, identifications), so tests reproduce.
    package init(configuration: StackConfiguration, seed: UInt64) {
        self.configuration = configuration
        random = SeededRandom(seed: seed)
        reassembly4 = Reassembler(timeout: configuration.reassemblyTimeout, memoryLimit: configuration.reassemblyMemory)
        reassembly6 = Reassembler(timeout: configuration.reassemblyTimeout, memoryLimit: configuration.reassemblyMemory)
        icmpLimiter = TokenBucket(ratePerSecond: configuration.icmpErrorsPerSecond, burst: configuration.icmpErrorBurst)
        ipv4Identification = UInt16(truncatingIfNeeded: random.next())
    }

    // MARK: Events

    /// The next event for the owner, oldest first.
    package func nextEvent() -> StackEvent? { events.popFirst() }

    /// Whether events are waiting.
    package var hasEvents: Bool { !events.isEmpty }

    /// Bytes held in receive queues and TCP buffers, against `totalBufferBytes`.
    package var bufferedByteCount: Int { bufferedBytes + tcpBufferedBytes }

    /// Live flows (TCP and UDP, pending included).
    package var numberOfFlows: Int { flowCount }

    // MARK: PacketStack

    /// Processes every packet of `batch` at `now` and empties it (see the numbered stages above).
    package func receive(_ batch: inout PacketBatch, now: Instant) {
        lastNow = max(lastNow, now)
        for index in batch.packets.indices {
            receive(batch.packets[index], now: now)
        }
        batch.removeAll()
    }

    /// Runs due timers, appends every queued packet to `batch`, and returns the next deadline.
    package func transmit(into batch: inout PacketBatch, now: Instant) -> Instant? {
        lastNow = max(lastNow, now)
        runTimers(now: now)
        transmitTCP(now: now)
        while let packet = output.popFirst() {
            batch.append(packet)
            statistics.packetsSent += 1
        }
        return nextDeadline()
    }

    /// The earliest time `transmit` has work to do.
    package func nextDeadline() -> Instant? {
        var deadline = timers.next
        // No array literal here: this runs on every transmit and must not allocate.
        if let c = reassembly4.nextDeadline { deadline = min(deadline ?? c, c) }
        if let c = reassembly6.nextDeadline { deadline = min(deadline ?? c, c) }
        if let c = nextTCPDeadline() { deadline = min(deadline ?? c, c) }
        return deadline
    }

    // MARK: Listening

    /// Accepts flows to `port` on own addresses (or only `address`) in ordinary mode; they still arrive
    /// as `.incoming` for the owner to accept.
    package func listen(_ proto: FlowProtocol, port: UInt16, address: IPAddress? = nil) throws(FlowError) {
        let key = ListenKey(proto: proto, port: port, address: address)
        guard listeners.insert(key).inserted else { throw .addressInUse }
    }

    /// Stops listening.
    package func stopListening(_ proto: FlowProtocol, port: UInt16, address: IPAddress? = nil) {
        listeners.remove(ListenKey(proto: proto, port: port, address: address))
    }

    // MARK: Owner decisions

    /// Accepts an `.incoming` flow: UDP datagrams become readable; TCP answers the SYN.
    package func accept(_ id: FlowID) throws(FlowError) {
        switch slot(id) {
        case .udp(let flow):
            guard flow.state == .pending else { throw .invalidState }
            flow.state = .open
            flow.deadline = lastNow + configuration.udpIdleTimeout
            flow.firstPacket = nil
            if !flow.queue.isEmpty { signalReadable(flow) }
        case .tcp(let flow):
            try acceptTCP(flow)
        case .free:
            throw .unknownFlow
        }
    }

    /// Rejects an `.incoming` flow as sing-box's reject action would, then forgets it.
    package func reject(_ id: FlowID, _ how: FlowRejection) throws(FlowError) {
        switch slot(id) {
        case .udp(let flow):
            guard flow.state == .pending else { throw .invalidState }
            if let packet = flow.firstPacket {
                switch how {
                case .reset: sendICMPError(.portUnreachable, about: packet, now: lastNow)
                case .unreachable: sendICMPError(.administrativelyProhibited, about: packet, now: lastNow)
                case .drop: break
                }
            }
            removeFlow(id, key: flow.key)
        case .tcp(let flow):
            try rejectTCP(flow, how)
        case .free:
            throw .unknownFlow
        }
    }

    /// Closes a flow from the owner's side: a UDP flow is forgotten (its buffered datagrams dropped);
    /// a TCP flow sends FIN after its buffered data (or RST with `abort`). No `.closed` event follows.
    package func close(_ id: FlowID, abort: Bool = false) throws(FlowError) {
        switch slot(id) {
        case .udp(let flow):
            removeFlow(id, key: flow.key)
        case .tcp(let flow):
            try closeTCP(flow, abort: abort)
        case .free:
            throw .unknownFlow
        }
    }

    /// The 5-tuple of a live flow.
    package func key(of id: FlowID) -> FlowKey? {
        switch slot(id) {
        case .udp(let flow): flow.key
        case .tcp(let flow): flow.key
        case .free: nil
        }
    }

    // MARK: Flow table

    /// The live flow behind `id`, or `.free`.
    func slot(_ id: FlowID) -> FlowSlot {
        let index = Int(id.index)
        guard index < slots.count, generations[index] == id.generation else { return .free }
        return slots[index]
    }

    /// Takes a slot for a new flow, or nil when `maximumFlows` is reached.
    func allocateFlowID() -> FlowID? {
        guard flowCount < configuration.maximumFlows else { return nil }
        flowCount += 1
        statistics.flowsOpened += 1
        if let index = freeSlots.popLast() {
            return FlowID(index: index, generation: generations[Int(index)])
        }
        slots.append(.free)
        generations.append(0)
        return FlowID(index: UInt32(slots.count - 1), generation: 0)
    }

    /// Frees a flow's slot and key; a later id for the slot gets a new generation.
    func removeFlow(_ id: FlowID, key: FlowKey) {
        let index = Int(id.index)
        guard index < slots.count, generations[index] == id.generation else { return }
        switch slots[index] {
        case .udp(let flow):
            bufferedBytes -= flow.queuedBytes
            flow.queue.removeAll()
            flow.queuedBytes = 0
        case .tcp(let flow):
            if flow.isPendingSYN { pendingSYNs -= 1 }
            releaseTCP(flow)
        case .free:
            return
        }
        slots[index] = .free
        generations[index] = id.generation &+ 1
        freeSlots.append(id.index)
        if flowIndex[key] == id { flowIndex[key] = nil }
        flowCount -= 1
        statistics.flowsClosed += 1
    }

    // MARK: Timers

    func runTimers(now: Instant) {
        while let entry = timers.popDue(now: now) {
            switch slot(entry.flow) {
            case .udp(let flow):
                if flow.deadline <= now {
                    let wasOpen = flow.state == .open
                    removeFlow(flow.id, key: flow.key)
                    if wasOpen { events.append(.closed(flow.id, .idle)) }
                } else {
                    timers.push(flow.deadline, flow.id)
                }
            case .tcp(let flow):
                tcpTimer(flow, now: now)
            case .free:
                break
            }
        }
        expiredScratch.removeAll(keepingCapacity: true)
        reassembly4.expire(now: now, into: &expiredScratch)
        reassembly6.expire(now: now, into: &expiredScratch)
        for expired in expiredScratch {
            statistics.reassemblyTimeouts += 1
            if let first = expired.firstFragment { sendICMPError(.reassemblyTimeExceeded, about: first, now: now) }
        }
    }

    // MARK: Addresses

    /// Whether `address` is one of the stack's own.
    func isOwn(_ address: IPAddress) -> Bool {
        switch address {
        case .v4(let a): configuration.ipv4Addresses.contains(a)
        case .v6(let a): configuration.ipv6Addresses.contains(a)
        }
    }

    /// The first own address of `address`'s family.
    func ownAddress(like address: IPAddress) -> IPAddress? {
        switch address {
        case .v4: configuration.ipv4Addresses.first.map(IPAddress.v4)
        case .v6: configuration.ipv6Addresses.first.map(IPAddress.v6)
        }
    }

    /// Whether a new flow to `local` is for us: any destination in transparent mode, else a listener.
    func acceptsNewFlow(_ proto: FlowProtocol, local: Endpoint) -> Bool {
        if configuration.transparent { return true }
        guard isOwn(local.address) else { return false }
        return listeners.contains(ListenKey(proto: proto, port: local.port, address: nil))
            || listeners.contains(ListenKey(proto: proto, port: local.port, address: local.address))
    }

    /// Queues a packet for `transmit`, dropping (and counting) past the output limit.
    func enqueue(_ packet: Packet) {
        guard output.count < configuration.outputQueueLimit else {
            statistics.outputQueueDrops += 1
            return
        }
        output.append(packet)
    }
}

/// A flow slot: free or a live flow (its generation is kept beside it in `Stack.generations`).
enum FlowSlot {
    case free
    case udp(UDPFlow)
    case tcp(TCPFlow)
}

/// A listened port (optionally on one address).
struct ListenKey: Hashable {
    var proto: FlowProtocol
    var port: UInt16
    var address: IPAddress?
}
