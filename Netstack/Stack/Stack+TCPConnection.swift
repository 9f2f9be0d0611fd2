package import NetstackWire
package import NetstackTCP

// TCP flows with a connection (NetstackTCP's state machine) behind them.
// 1. Input: a segment of a known 4-tuple is parsed into a `TCPSegment` (payload a slice, no copy) and
//    handed to the connection; its events become `StackEvent`s and the flow is marked dirty.
// 2. Owner calls (send, read, shutdown, close) mark the flow dirty too.
// 3. `transmit` asks each dirty flow (and each flow whose timer is due) for segments, adds ports and
//    checksum, cuts super-segments to the MSS (or emits them as GSO), and re-arms the flow's timer.
// 4. A connection that reaches CLOSED leaves the flow table with a `.closed` event (none when the
//    owner aborted it).

extension Stack {
    // MARK: Owner API

    /// Dials `remote` from an own address (or `local`): SYN-SENT now, `.connected` when established.
    package func connectTCP(to remote: Endpoint, from local: Endpoint? = nil) throws(FlowError) -> FlowID {
        let localAddress: IPAddress
        if let local {
            guard local.address.isIPv4 == remote.address.isIPv4 else { throw .noLocalAddress }
            localAddress = local.address
        } else {
            guard let own = ownAddress(like: remote.address) else { throw .noLocalAddress }
            localAddress = own
        }
        var key = FlowKey(proto: .tcp, local: Endpoint(localAddress, local?.port ?? 0), remote: remote)
        if let port = local?.port, port != 0 {
            guard flowIndex[key] == nil else { throw .addressInUse }
        } else {
            key.local.port = try ephemeralPort(for: key)
        }
        guard let id = allocateFlowID() else { throw .tooManyFlows }
        let flow = TCPFlow(id: id, key: key, isPendingSYN: false, deadline: .distantFuture)
        flow.connection = TCPConnection(connecting: tcpConfiguration(for: remote.address),
                                        initialSequenceNumber: SeqNumber(UInt32(truncatingIfNeeded: random.next())),
                                        timestampOffset: UInt32(truncatingIfNeeded: random.next()), now: lastNow)
        slots[Int(id.index)] = .tcp(flow)
        flowIndex[key] = id
        markDirty(flow)
        return id
    }

    /// Queues bytes from `data` (consuming what was taken) on an established or connecting TCP flow.
    /// Returns the count taken; fewer than offered means the send buffer is full: wait for `.writable`.
    @discardableResult
    package func send(_ data: inout PacketBuffer, on id: FlowID) throws(FlowError) -> Int {
        let taken = try data.withUnsafeReadableBytes { (bytes) throws(FlowError) in try send(bytes: bytes, on: id) }
        data.moveReaderIndex(forwardBy: taken)
        return taken
    }

    /// Copies as much of `bytes` as the send buffer takes on an established or connecting TCP flow.
    /// Returns the count taken; fewer than offered means the buffer is full: wait for `.writable`.
    @discardableResult
    package func send(bytes: UnsafeRawBufferPointer, on id: FlowID) throws(FlowError) -> Int {
        guard case .tcp(let flow) = slot(id), flow.connection != nil, !flow.isReleased else { throw .unknownFlow }
        let taken = flow.connection!.send(bytes: bytes)
        if taken > 0 {
            markDirty(flow)
            account(flow)
        }
        return taken
    }

    /// Bytes a `send` would take now.
    package func sendSpace(on id: FlowID) -> Int {
        guard case .tcp(let flow) = slot(id) else { return 0 }
        return flow.withConnection { $0.sendSpace } ?? 0
    }

    /// Takes up to `max` received bytes in order; nil when none are ready. Reading opens the window.
    package func read(on id: FlowID, max: Int = .max) throws(FlowError) -> PacketBuffer? {
        guard case .tcp(let flow) = slot(id), flow.connection != nil else { throw .unknownFlow }
        let data = flow.connection!.read(max: max)
        if data != nil {
            markDirty(flow)
            account(flow)
        }
        if flow.isDrainingBeforeClose && flow.withConnection({ $0.readableByteCount }) == 0 {
            removeFlow(id, key: flow.key)
            events.append(.closed(id, .finished))
        }
        return data
    }

    /// Bytes ready to read.
    package func readableBytes(on id: FlowID) -> Int {
        guard case .tcp(let flow) = slot(id) else { return 0 }
        return flow.withConnection { $0.readableByteCount } ?? 0
    }

    /// Whether the peer's FIN arrived and everything before it was read.
    package func isReadClosed(_ id: FlowID) -> Bool {
        guard case .tcp(let flow) = slot(id) else { return true }
        return flow.withConnection { $0.isReadClosed } ?? true
    }

    /// Half-close: a FIN follows the buffered data; reading goes on.
    package func shutdownWrite(_ id: FlowID) throws(FlowError) {
        guard case .tcp(let flow) = slot(id), flow.connection != nil else { throw .unknownFlow }
        flow.connection!.shutdownWrite()
        markDirty(flow)
    }

    /// The connection's state, for diagnostics and tests.
    package func tcpState(of id: FlowID) -> TCPState? {
        guard case .tcp(let flow) = slot(id) else { return nil }
        return flow.connection?.state
    }

    // MARK: Stack hooks

    func acceptTCP(_ flow: TCPFlow) throws(FlowError) {
        guard flow.isPendingSYN, let synBytes = flow.synSegment else { throw .invalidState }
        flow.isPendingSYN = false
        pendingSYNs -= 1
        flow.synSegment = nil
        let packet = flow.synPacket
        flow.synPacket = nil
        guard let syn = try? TCPSegment(parsing: synBytes),
              let connection = TCPConnection(accepting: syn, configuration: tcpConfiguration(for: flow.key.local.address),
                                             initialSequenceNumber: SeqNumber(UInt32(truncatingIfNeeded: random.next())),
                                             timestampOffset: UInt32(truncatingIfNeeded: random.next()), now: lastNow) else {
            // A SYN the connection refuses (malformed options): answer as a reset rejection would.
            if packet != nil {
                let basics = TCPBasics(sourcePort: flow.key.remote.port, destinationPort: flow.key.local.port,
                                       sequence: flow.synSequence, acknowledgment: 0, headerLength: 20, flags: TCPBasics.syn)
                sendReset(to: flow.key, replyingTo: basics, payloadLength: 0)
            }
            removeFlow(flow.id, key: flow.key)
            throw .invalidState
        }
        flow.connection = connection
        flow.deadline = .distantFuture
        markDirty(flow)
    }

    func closeTCP(_ flow: TCPFlow, abort: Bool) throws(FlowError) {
        guard flow.connection != nil else {
            removeFlow(flow.id, key: flow.key)
            return
        }
        if abort {
            // RST goes out with this transmit; the flow leaves now, without an event.
            flow.connection!.abort()
            var segments: [TCPSegment] = []
            _ = flow.connection!.transmit(into: &segments, now: lastNow)
            for segment in segments { emitSegment(segment, for: flow) }
            removeFlow(flow.id, key: flow.key)
            return
        }
        flow.isReleased = true
        // Unread data is dropped, as close(2) would (Linux then resets; we finish with FIN instead).
        while flow.connection!.read(max: .max) != nil {}
        flow.connection!.shutdownWrite()
        flow.deadline = lastNow + configuration.orphanTimeout
        timers.push(flow.deadline, flow.id)
        markDirty(flow)
    }

    func releaseTCP(_ flow: TCPFlow) {
        tcpBufferedBytes -= flow.accountedBytes
        flow.accountedBytes = 0
        flow.synPacket = nil
        flow.synSegment = nil
        flow.connection = nil
    }

    func tcpTimer(_ flow: TCPFlow, now: Instant) {
        if flow.isPendingSYN {
            if flow.deadline <= now { removeFlow(flow.id, key: flow.key) }
            return
        }
        if flow.isReleased && flow.deadline <= now, flow.connection?.state != .timeWait {
            // Orphaned too long (the peer never finished): reset and forget, as Linux does after
            // tcp_fin_timeout. TIME-WAIT is left to its own timer.
            statistics.orphansReset += 1
            flow.connection!.abort()
            tcpSegmentScratch.removeAll(keepingCapacity: true)
            _ = flow.connection!.transmit(into: &tcpSegmentScratch, now: now)
            for segment in tcpSegmentScratch { emitSegment(segment, for: flow) }
            tcpSegmentScratch.removeAll(keepingCapacity: true)
            removeFlow(flow.id, key: flow.key)
            return
        }
        flow.scheduled = nil
        transmit(flow, now: now)
    }

    /// Hands a segment to the flow's connection. Returns false when the segment was a SYN that
    /// replaced a TIME-WAIT connection: the caller then treats it as a new flow.
    func receiveTCPSegment(_ flow: TCPFlow, segment: PacketBuffer, tcp: TCPBasics, offload: VirtioNetHeader, now: Instant) -> Bool {
        guard flow.connection != nil else { return true }
        let parsed: TCPSegment
        do {
            parsed = try TCPSegment(parsing: segment)
        } catch {
            statistics.malformed += 1
            return true
        }
        if flow.withConnection({ $0.mayReplace(with: parsed) })! {
            // A new SYN for a 4-tuple in TIME-WAIT (RFC 6191): the old connection makes way.
            removeFlow(flow.id, key: flow.key)
            return false
        }
        flow.connection!.receive(parsed, now: now)
        if flow.isReleased { while flow.connection!.read(max: .max) != nil {} }
        markDirty(flow)
        collectEvents(flow)
        return true
    }

    func transmitTCP(now: Instant) {
        // Dirty flows may dirty others only through the owner, so one pass suffices.
        while let id = dirtyTCP.popLast() {
            guard case .tcp(let flow) = slot(id) else { continue }
            flow.isDirty = false
            transmit(flow, now: now)
        }
    }

    func nextTCPDeadline() -> Instant? {
        dirtyTCP.isEmpty ? nil : lastNow
    }

    // MARK: Internals

    func markDirty(_ flow: TCPFlow) {
        guard !flow.isDirty else { return }
        flow.isDirty = true
        dirtyTCP.append(flow.id)
    }

    /// One flow's transmit: segments out, timer re-armed, events reported, CLOSED flows removed.
    private func transmit(_ flow: TCPFlow, now: Instant) {
        guard flow.connection != nil else { return }
        tcpSegmentScratch.removeAll(keepingCapacity: true)
        let (deadline, timeouts) = flow.withConnection { connection in
            let before = connection.dataTimeouts
            return (connection.transmit(into: &tcpSegmentScratch, now: now), connection.dataTimeouts - before)
        }!
        statistics.tcpRetransmitTimeouts += timeouts
        for segment in tcpSegmentScratch { emitSegment(segment, for: flow) }
        tcpSegmentScratch.removeAll(keepingCapacity: true)
        if let deadline, flow.scheduled.map({ deadline < $0 }) ?? true {
            flow.scheduled = deadline
            timers.push(deadline, flow.id)
        }
        collectEvents(flow)
    }

    /// Recounts what the flow's connection buffers into `tcpBufferedBytes`.
    func account(_ flow: TCPFlow) {
        guard flow.connection != nil else { return }
        let now = flow.withConnection { $0.bufferedSendByteCount + $0.readableByteCount }!
        tcpBufferedBytes += now - flow.accountedBytes
        flow.accountedBytes = now
    }

    /// Turns the connection's events into stack events; removes the flow once CLOSED.
    private func collectEvents(_ flow: TCPFlow) {
        account(flow)
        guard let (events, state) = flow.withConnection({ ($0.takeEvents(), $0.state) }), !events.isEmpty || state == .closed else { return }
        let id = flow.id
        if !flow.isReleased {
            if events.contains(.connected) { self.events.append(.connected(id)) }
            if events.contains(.readable) { self.events.append(.readable(id)) }
            if events.contains(.writable) { self.events.append(.writable(id)) }
            if events.contains(.peerClosed) { self.events.append(.readClosed(id)) }
        }
        if state == .closed {
            // A normal close with data still unread waits for the reader (`read` finishes it), so the
            // last bytes are not lost with the flow.
            if flow.connection?.closeReason == .normal, !flow.isReleased, (flow.connection?.readableByteCount ?? 0) > 0 {
                flow.isDrainingBeforeClose = true
                return
            }
            let reason: FlowCloseReason
            switch flow.connection?.closeReason {
            case .reset?: reason = .reset
            case .timedOut?: reason = .timedOut
            case .aborted?: reason = .local
            default: reason = .finished
            }
            removeFlow(id, key: flow.key)
            self.events.append(.closed(id, reason))
        }
    }

    /// Adds ports and checksum to a segment and queues it; a payload above the MSS is cut (or sent as
    /// GSO when the device segments).
    private func emitSegment(_ segment: TCPSegment, for flow: TCPFlow) {
        let mss = flow.connection?.sendMSS ?? 536
        if segment.payload.readableBytes > mss && !configuration.tcpSegmentationOffload {
            var offset = 0
            let total = segment.payload.readableBytes
            while offset < total {
                var piece = segment
                let size = min(mss, total - offset)
                piece.payload = segment.payload.getSlice(at: segment.payload.readerIndex + offset, length: size)!
                piece.sequenceNumber = segment.sequenceNumber + offset
                // FIN and PSH belong to the last piece only.
                if offset + size < total { piece.flags.remove([.fin, .psh]) }
                emitOne(piece, for: flow, gsoSize: 0)
                offset += size
            }
            return
        }
        emitOne(segment, for: flow, gsoSize: segment.payload.readableBytes > mss ? mss : 0)
    }

    private func emitOne(_ segment: TCPSegment, for flow: TCPFlow, gsoSize: Int) {
        let key = flow.key
        var buffer = makeTransportBuffer(capacity: segment.headerByteCount + segment.payload.readableBytes)
        segment.write(into: &buffer, sourcePort: key.local.port, destinationPort: key.remote.port)
        statistics.tcpSegmentsSent += 1
        guard gsoSize > 0 else {
            fillTCPChecksum(&buffer, source: key.local.address, destination: key.remote.address)
            emitIP(source: key.local.address, destination: key.remote.address, proto: IPProtocol.tcp, transport: &buffer, dontFragment: true)
            return
        }
        // GSO: the checksum field holds the pseudo-header sum (not complemented) of a full segment;
        // the device completes it per segment (SWIFT-LINUX §2).
        let pseudo = Checksum.pseudoHeaderSum(source: key.local.address, destination: key.remote.address,
                                              protocol: IPProtocol.tcp, length: buffer.readableBytes)
        buffer.setInteger(pseudo, at: buffer.readerIndex + 16)
        let isIPv4 = key.local.address.isIPv4
        let ipLength = isIPv4 ? 20 : 40
        let offload = VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum,
            gsoType: isIPv4 ? VirtioNetHeader.gsoTCPv4 : VirtioNetHeader.gsoTCPv6,
            headerLength: UInt16(ipLength + segment.headerByteCount), gsoSize: UInt16(gsoSize),
            checksumStart: UInt16(ipLength), checksumOffset: 16)
        emitIP(source: key.local.address, destination: key.remote.address, proto: IPProtocol.tcp, transport: &buffer,
               dontFragment: true, offload: offload)
    }

    /// The connection settings for a flow of `address`'s family: MSS from the MTU (RFC 9293 §3.7.1).
    func tcpConfiguration(for address: IPAddress) -> TCPConfiguration {
        var c = configuration.tcp
        c.maximumSegmentSize = configuration.mtu - (address.isIPv4 ? 40 : 60)
        // With TSO the connection may hand out super-segments; 64000 keeps IP + TCP headers under 64 KiB.
        if configuration.tcpSegmentationOffload && c.maxSegmentBytes == 0 { c.maxSegmentBytes = 64000 }
        return c
    }
}
