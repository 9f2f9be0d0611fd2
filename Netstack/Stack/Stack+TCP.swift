import NetstackWire
import NetstackTCP

// TCP in the stack: the SYN hand-off and the answers for segments without a connection. The
// connection state machine lives in NetstackTCP; this file owns the flow around it.
// 1. A SYN (no ACK) for an accepted destination and no flow → a pending flow (bounded by the SYN
//    backlog) and `.incoming`; nothing is answered until the owner decides.
// 2. reject: `.reset` sends RST|ACK (RFC 9293 §3.10.7.1), `.unreachable` ICMP administratively
//    prohibited, `.drop` nothing.
// 3. A segment with no flow that is not an acceptable SYN gets a RST (RFC 9293 §3.10.7.1), unless it
//    is a RST itself or not for us.

/// One TCP flow; owned by its stack (same loop).
final class TCPFlow {
    let id: FlowID
    let key: FlowKey
    /// Waiting for the owner's accept/reject.
    var isPendingSYN: Bool
    /// The SYN packet (IP header on), while pending.
    var synPacket: PacketBuffer?
    /// The SYN's sequence number, for the RST|ACK of a rejection.
    var synSequence: UInt32 = 0
    /// The SYN's TCP header and payload, while pending: accepting hands it to the connection.
    var synSegment: PacketBuffer?
    var deadline: Instant
    /// The connection once accepted or dialled.
    var connection: TCPConnection?
    /// The earliest timer entry this flow has in the stack's heap.
    var scheduled: Instant?
    /// Queued for `transmitTCP` (something changed since the last transmit).
    var isDirty = false
    /// The owner closed it: received data is discarded, and no event is reported any more.
    var isReleased = false
    /// CLOSED normally with unread data: removed once the owner has read it all.
    var isDrainingBeforeClose = false
    /// Bytes this flow's connection buffers (send + receive), as last counted into `Stack.tcpBufferedBytes`.
    var accountedBytes = 0

    init(id: FlowID, key: FlowKey, isPendingSYN: Bool, deadline: Instant) {
        self.id = id
        self.key = key
        self.isPendingSYN = isPendingSYN
        self.deadline = deadline
    }

    /// Runs `body` on the connection in place; nil without one. A plain read (`connection?.state`,
    /// `connection!.sendSpace`) copies the whole struct out first, retaining every buffer it holds:
    /// the per-segment paths read through this instead.
    @inline(__always) func withConnection<R>(_ body: (inout TCPConnection) -> R) -> R? {
        Self.inPlace(&connection, body)
    }

    @inline(__always) private static func inPlace<R>(_ connection: inout TCPConnection?, _ body: (inout TCPConnection) -> R) -> R? {
        guard connection != nil else { return nil }
        return body(&connection!)
    }
}

/// The fixed TCP header fields the stack reads itself (the full view is NetstackTCP's).
struct TCPBasics {
    var sourcePort: UInt16
    var destinationPort: UInt16
    var sequence: UInt32
    var acknowledgment: UInt32
    var headerLength: Int
    var flags: UInt8

    static let fin: UInt8 = 0x01, syn: UInt8 = 0x02, rst: UInt8 = 0x04, ack: UInt8 = 0x10

    /// Reads the fixed header; nil if it is truncated or its data offset is impossible.
    init?(_ segment: PacketBuffer) {
        let r = segment.readerIndex
        guard segment.readableBytes >= 20,
              let sp = segment.getInteger(at: r, as: UInt16.self),
              let dp = segment.getInteger(at: r + 2, as: UInt16.self),
              let seq = segment.getInteger(at: r + 4, as: UInt32.self),
              let ack = segment.getInteger(at: r + 8, as: UInt32.self),
              let offset = segment.getInteger(at: r + 12, as: UInt8.self),
              let flags = segment.getInteger(at: r + 13, as: UInt8.self) else { return nil }
        let length = Int(offset >> 4) * 4
        guard length >= 20, length <= segment.readableBytes else { return nil }
        sourcePort = sp; destinationPort = dp; sequence = seq; acknowledgment = ack
        headerLength = length; self.flags = flags
    }
}

extension Stack {
    /// Sends a packet back where it came from with source and destination swapped (`loopbackAddresses`).
    /// Checksums and offload state stay as they came: both sums cover the two addresses unordered.
    /// DATA_VALID is an input-only promise and is dropped (the complete checksum is still right).
    private func reflect(_ packet: PacketBuffer, offload: VirtioNetHeader) {
        var bytes = packet
        bytes.withUnsafeMutableReadableBytes { raw in
            let (at, length) = raw[0] >> 4 == 4 ? (12, 4) : (8, 16)
            for index in at..<(at + length) { raw.swapAt(index, index + length) }
        }
        var offload = offload
        offload.flags &= ~VirtioNetHeader.flagDataValid
        statistics.tcpSegmentsReflected += 1
        enqueue(Packet(bytes: bytes, offload: offload))
    }

    func receiveTCP(_ ip: IPInfo, segment: PacketBuffer, packet: PacketBuffer, offload: VirtioNetHeader, now: Instant) {
        statistics.tcpSegmentsReceived += 1
        guard let tcp = TCPBasics(segment) else {
            statistics.malformed += 1
            return
        }
        if ip.verifyChecksum {
            var c = Checksum(sum: Checksum.pseudoHeaderSum(source: ip.source, destination: ip.destination,
                                                           protocol: IPProtocol.tcp, length: segment.readableBytes))
            c.add(bytes: segment.readableBytesSpan)
            guard c.sum == 0xffff else {
                statistics.badChecksum += 1
                return
            }
        }
        // tun `loopback_address`: a valid segment to one is turned around, never terminated. From the
        // address to itself the swap would change nothing and the packet would circle.
        if !configuration.loopbackAddresses.isEmpty && configuration.loopbackAddresses.contains(ip.destination) {
            if ip.source == ip.destination { statistics.malformed += 1 } else { reflect(packet, offload: offload) }
            return
        }
        let key = FlowKey(proto: .tcp, local: Endpoint(ip.destination, tcp.destinationPort), remote: Endpoint(ip.source, tcp.sourcePort))
        if let id = flowIndex[key], case .tcp(let flow) = slot(id) {
            if flow.isPendingSYN {
                // A retransmitted SYN waits with the first; a RST from the client withdraws it.
                if tcp.flags & TCPBasics.rst != 0 { removeFlow(id, key: key) }
                return
            }
            // A new SYN may replace a connection in TIME-WAIT (RFC 6191); it then opens a new flow below.
            guard !receiveTCPSegment(flow, segment: segment, tcp: tcp, offload: offload, now: now) else { return }
        }
        guard tcp.flags & TCPBasics.rst == 0 else { return }
        let isSYN = tcp.flags & (TCPBasics.syn | TCPBasics.ack | TCPBasics.fin) == TCPBasics.syn
        if isSYN && acceptsNewFlow(.tcp, local: key.local) {
            // Memory pressure (Linux's tcp_mem idea): while the buffers of all flows are at the limit,
            // new connections are not taken on; the client's SYN retransmission tries again later.
            guard bufferedBytes + tcpBufferedBytes < configuration.totalBufferBytes else {
                statistics.memoryPressureDrops += 1
                return
            }
            guard pendingSYNs < configuration.synBacklog else {
                // Linux drops SYNs past a full backlog (without syncookies); the client retries.
                statistics.synBacklogDrops += 1
                return
            }
            guard let id = allocateFlowID() else {
                statistics.flowLimitDrops += 1
                return
            }
            let flow = TCPFlow(id: id, key: key, isPendingSYN: true, deadline: now + configuration.pendingTimeout)
            flow.synPacket = packet
            flow.synSegment = segment
            flow.synSequence = tcp.sequence
            slots[Int(id.index)] = .tcp(flow)
            flowIndex[key] = id
            pendingSYNs += 1
            timers.push(flow.deadline, id)
            events.append(.incoming(id, key))
            return
        }
        guard configuration.transparent || isOwn(key.local.address) else {
            statistics.notForUs += 1
            return
        }
        let length = segment.readableBytes - tcp.headerLength
        sendReset(to: key, replyingTo: tcp, payloadLength: length)
    }

    /// RFC 9293 §3.10.7.1 reset for a segment that has no connection: with ACK, `<SEQ=SEG.ACK><CTL=RST>`;
    /// without, `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`.
    func sendReset(to key: FlowKey, replyingTo tcp: TCPBasics, payloadLength: Int) {
        let sequence: UInt32, acknowledgment: UInt32, flags: UInt8
        if tcp.flags & TCPBasics.ack != 0 {
            sequence = tcp.acknowledgment; acknowledgment = 0; flags = TCPBasics.rst
        } else {
            let length = UInt32(payloadLength) + (tcp.flags & TCPBasics.syn != 0 ? 1 : 0) + (tcp.flags & TCPBasics.fin != 0 ? 1 : 0)
            sequence = 0; acknowledgment = tcp.sequence &+ length; flags = TCPBasics.rst | TCPBasics.ack
        }
        var buffer = makeTransportBuffer(capacity: 20)
        buffer.writeInteger(key.local.port)
        buffer.writeInteger(key.remote.port)
        buffer.writeInteger(sequence)
        buffer.writeInteger(acknowledgment)
        buffer.writeInteger(UInt8(0x50))
        buffer.writeInteger(flags)
        buffer.writeInteger(UInt16(0))  // window
        buffer.writeInteger(UInt16(0))  // checksum, below
        buffer.writeInteger(UInt16(0))  // urgent
        fillTCPChecksum(&buffer, source: key.local.address, destination: key.remote.address)
        statistics.tcpResetsSent += 1
        emitIP(source: key.local.address, destination: key.remote.address, proto: IPProtocol.tcp, transport: &buffer, dontFragment: true)
    }

    /// Computes the checksum of the TCP segment in `buffer` (readable bytes) into its field.
    func fillTCPChecksum(_ buffer: inout PacketBuffer, source: IPAddress, destination: IPAddress) {
        let pseudo = Checksum.pseudoHeaderSum(source: source, destination: destination, protocol: IPProtocol.tcp,
                                              length: buffer.readableBytes)
        buffer.withUnsafeMutableReadableBytes { raw in
            raw.storeBigEndian(UInt16(0), at: 16)
            var c = Checksum(sum: pseudo)
            c.add(bytes: UnsafeRawBufferPointer(raw))
            raw.storeBigEndian(c.value, at: 16)
        }
    }

    func rejectTCP(_ flow: TCPFlow, _ how: FlowRejection) throws(FlowError) {
        guard flow.isPendingSYN else { throw .invalidState }
        switch how {
        case .reset:
            let syn = TCPBasics(sourcePort: flow.key.remote.port, destinationPort: flow.key.local.port,
                                sequence: flow.synSequence, acknowledgment: 0, headerLength: 20, flags: TCPBasics.syn)
            sendReset(to: flow.key, replyingTo: syn, payloadLength: 0)
        case .unreachable:
            if let packet = flow.synPacket { sendICMPError(.administrativelyProhibited, about: packet, now: lastNow) }
        case .drop:
            break
        }
        removeFlow(flow.id, key: flow.key)
    }
}

extension TCPBasics {
    init(sourcePort: UInt16, destinationPort: UInt16, sequence: UInt32, acknowledgment: UInt32, headerLength: Int, flags: UInt8) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequence = sequence
        self.acknowledgment = acknowledgment
        self.headerLength = headerLength
        self.flags = flags
    }
}
