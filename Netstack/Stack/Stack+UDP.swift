package import NetstackWire

// UDP: one flow per 5-tuple. A first datagram to an accepted destination makes a pending flow and an
// `.incoming` event; its datagrams wait (bounded) until the owner accepts. Open flows queue datagrams
// for `receiveDatagram` and send with `sendDatagram`; a flow closes after `udpIdleTimeout` without
// traffic either way. A GSO (UDP_L4) super-datagram from the kernel is cut into `gsoSize` datagrams.

/// One UDP flow's state; owned by its stack (same loop).
final class UDPFlow {
    enum State { case pending, open }

    let id: FlowID
    let key: FlowKey
    var state: State
    var queue = RingQueue<PacketBuffer>(initialCapacity: 4)
    var queuedBytes = 0
    /// When the flow expires unless traffic moves it (pending: the decision deadline).
    var deadline: Instant
    /// The first packet, while pending: a rejection answers it with ICMP.
    var firstPacket: PacketBuffer?

    init(id: FlowID, key: FlowKey, state: State, deadline: Instant) {
        self.id = id
        self.key = key
        self.state = state
        self.deadline = deadline
    }
}

extension Stack {
    func receiveUDP(_ ip: IPInfo, segment: PacketBuffer, packet: PacketBuffer, offload: VirtioNetHeader, now: Instant) {
        statistics.udpDatagramsReceived += 1
        let sourcePort: UInt16, destinationPort: UInt16, length: Int
        do {
            let udp = try UDPHeaderView(validating: segment.readableBytesSpan)
            if ip.verifyChecksum {
                let pseudo = Checksum.pseudoHeaderSum(source: ip.source, destination: ip.destination,
                                                      protocol: IPProtocol.udp, length: udp.length)
                guard udp.isChecksumValid(pseudoHeaderSum: pseudo, zeroAllowed: ip.source.isIPv4) else {
                    statistics.badChecksum += 1
                    return
                }
            }
            sourcePort = udp.sourcePort; destinationPort = udp.destinationPort; length = udp.length
        } catch {
            statistics.malformed += 1
            return
        }
        let key = FlowKey(proto: .udp, local: Endpoint(ip.destination, destinationPort), remote: Endpoint(ip.source, sourcePort))
        let payload = segment.getSlice(at: segment.readerIndex + 8, length: length - 8)!
        if offload.gsoKind == VirtioNetHeader.gsoUDPL4 && offload.gsoSize > 0 {
            // USO: the kernel glued datagrams of gsoSize bytes (the last may be shorter).
            let size = Int(offload.gsoSize)
            var offset = 0
            repeat {
                let piece = payload.getSlice(at: payload.readerIndex + offset, length: min(size, payload.readableBytes - offset))!
                deliverDatagram(key, payload: piece, packet: packet, now: now)
                offset += size
            } while offset < payload.readableBytes
        } else {
            deliverDatagram(key, payload: payload, packet: packet, now: now)
        }
    }

    private func deliverDatagram(_ key: FlowKey, payload: PacketBuffer, packet: PacketBuffer, now: Instant) {
        if let id = flowIndex[key], case .udp(let flow) = slot(id) {
            if flow.state == .open { flow.deadline = now + configuration.udpIdleTimeout }
            queueDatagram(payload, on: flow)
            return
        }
        guard acceptsNewFlow(.udp, local: key.local) else {
            if isOwn(key.local.address) {
                sendICMPError(.portUnreachable, about: packet, now: now)
            } else {
                statistics.notForUs += 1
            }
            return
        }
        guard let id = allocateFlowID() else {
            statistics.flowLimitDrops += 1
            statistics.udpDatagramsDropped += 1
            return
        }
        let flow = UDPFlow(id: id, key: key, state: .pending, deadline: now + configuration.pendingTimeout)
        flow.firstPacket = packet
        slots[Int(id.index)] = .udp(flow)
        flowIndex[key] = id
        timers.push(flow.deadline, id)
        queueDatagram(payload, on: flow)
        events.append(.incoming(id, key))
    }

    private func queueDatagram(_ payload: PacketBuffer, on flow: UDPFlow) {
        let size = payload.readableBytes
        guard flow.queuedBytes + size <= configuration.udpReceiveBufferBytes,
              bufferedBytes + size <= configuration.totalBufferBytes else {
            statistics.udpDatagramsDropped += 1
            return
        }
        let wasEmpty = flow.queue.isEmpty
        flow.queue.append(payload)
        flow.queuedBytes += size
        bufferedBytes += size
        if wasEmpty && flow.state == .open { signalReadable(flow) }
    }

    func signalReadable(_ flow: UDPFlow) {
        events.append(.readable(flow.id))
    }

    // MARK: Owner API

    /// The next datagram queued on an open UDP flow, or nil when none is waiting. A `.readable` event
    /// comes again once a datagram arrives on an empty queue.
    package func receiveDatagram(on id: FlowID) throws(FlowError) -> PacketBuffer? {
        guard case .udp(let flow) = slot(id) else { throw .unknownFlow }
        guard flow.state == .open else { throw .invalidState }
        guard let datagram = flow.queue.popFirst() else { return nil }
        flow.queuedBytes -= datagram.readableBytes
        bufferedBytes -= datagram.readableBytes
        return datagram
    }

    /// The first datagram of a pending UDP flow without taking it, so the owner can sniff (DNS name,
    /// QUIC SNI) before it decides; nil when the flow is not pending UDP.
    package func peekFirstDatagram(of id: FlowID) -> PacketBuffer? {
        guard case .udp(let flow) = slot(id), flow.state == .pending else { return nil }
        return flow.queue.first
    }

    /// Sends `payload` on an open UDP flow, from its local end (the original destination) to its
    /// remote. Give the payload `Stack.reservedFront` bytes of headroom to avoid a copy.
    package func sendDatagram(_ payload: PacketBuffer, on id: FlowID) throws(FlowError) {
        guard case .udp(let flow) = slot(id) else { throw .unknownFlow }
        guard flow.state == .open else { throw .invalidState }
        flow.deadline = lastNow + configuration.udpIdleTimeout
        try sendDatagram(payload, from: flow.key.local, to: flow.key.remote)
    }

    /// Sends a copy of `bytes` on an open UDP flow (the copy lands in a recycled buffer with headroom).
    package func sendDatagram(bytes: UnsafeRawBufferPointer, on id: FlowID) throws(FlowError) {
        var payload = makeTransportBuffer(capacity: bytes.count)
        payload.writeBytes(bytes)
        try sendDatagram(payload, on: id)
    }

    /// Sends a datagram between any two endpoints of one family (full-cone replies from another
    /// source than the flow's destination, a DNS answer from a hijacked address).
    package func sendDatagram(_ payload: PacketBuffer, from source: Endpoint, to destination: Endpoint) throws(FlowError) {
        guard source.address.isIPv4 == destination.address.isIPv4 else { throw .noLocalAddress }
        let length = 8 + payload.readableBytes
        guard length <= 0xffff - (source.address.isIPv4 ? 20 : 0) else { throw .tooLarge }
        var buffer = payload
        prepend(8, to: &buffer)
        let pseudo = Checksum.pseudoHeaderSum(source: source.address, destination: destination.address,
                                              protocol: IPProtocol.udp, length: length)
        buffer.withUnsafeMutableReadableBytes { raw in
            UDPHeader(sourcePort: source.port, destinationPort: destination.port, length: length)
                .write(to: raw, pseudoHeaderSum: pseudo)
        }
        emitIP(source: source.address, destination: destination.address, proto: IPProtocol.udp, transport: &buffer)
    }

    /// Opens a UDP flow from an own address (or `local`) to `remote` (ordinary mode dialling).
    /// Replies from `remote` to the chosen local endpoint arrive on it.
    package func openUDP(to remote: Endpoint, from local: Endpoint? = nil) throws(FlowError) -> FlowID {
        let localAddress: IPAddress
        if let local {
            guard local.address.isIPv4 == remote.address.isIPv4 else { throw .noLocalAddress }
            localAddress = local.address
        } else {
            guard let own = ownAddress(like: remote.address) else { throw .noLocalAddress }
            localAddress = own
        }
        var key = FlowKey(proto: .udp, local: Endpoint(localAddress, local?.port ?? 0), remote: remote)
        if let port = local?.port, port != 0 {
            guard flowIndex[key] == nil else { throw .addressInUse }
        } else {
            key.local.port = try ephemeralPort(for: key)
        }
        guard let id = allocateFlowID() else { throw .tooManyFlows }
        let flow = UDPFlow(id: id, key: key, state: .open, deadline: lastNow + configuration.udpIdleTimeout)
        slots[Int(id.index)] = .udp(flow)
        flowIndex[key] = id
        timers.push(flow.deadline, id)
        return id
    }

    /// A free local port for `key` from the ephemeral range: random start, linear probe (RFC 6056 §3.3.1).
    func ephemeralPort(for key: FlowKey) throws(FlowError) -> UInt16 {
        let range = configuration.ephemeralPorts
        let size = Int(range.upperBound) - Int(range.lowerBound) + 1
        let start = Int(random.next() % UInt64(size))
        var candidate = key
        for step in 0..<size {
            candidate.local.port = UInt16(Int(range.lowerBound) + (start + step) % size)
            if flowIndex[candidate] == nil && !listeners.contains(ListenKey(proto: key.proto, port: candidate.local.port, address: nil)) {
                return candidate.local.port
            }
        }
        throw .portsExhausted
    }
}
