import Adapter
package import NIOCore
package import Netstack
import NetstackNIO
import NetstackWire

// The sing-box endpoint's data plane: one `WireGuardDevice` on one loop, one netstack shard per loop.
//
// Why shards: the router relays a flow only between channels on ONE loop (Relay, PacketRelay), and a flow
// from an inbound lives on whichever loop accepted it. So every loop of the box's group runs a `Stack`
// of its own with the endpoint's addresses, each dialling from a disjoint slice of the ephemeral port
// range; the WireGuard device (sessions, timers, replay windows) stays on one loop, the tunnel loop.
//
// 1. UDP in: the transport (a dialer's packet connection, or a socket on `listen_port`) calls
//    `receiveDatagram` on the tunnel loop → `device.receive` decrypts in place.
// 2. Demux: each inner packet goes to the shard that owns its destination port (a dialled flow's local
//    port falls in that shard's slice); anything else (ICMP, ports outside every slice, which is where
//    peers connect to) goes to shard 0, the tunnel loop's own stack.
// 3. Hand-off: per-shard queues fill during a read burst and leave in one `execute` per shard per burst.
// 4. Out: a shard's stack transmits → `WireGuardShardDevice.write` moves the buffers (no copy) to the
//    tunnel loop, again one `execute` per batch → `device.send` encrypts in place into the headroom.
// 5. Datagrams go to the transport; one flush per burst. Timers: one scheduled task at `device.poll`'s
//    deadline.

/// The UDP side of the tunnel: where sealed datagrams go and come from.
enum WireGuardTransport {
    /// An unconnected packet path from the endpoint's dialer (dial fields and `detour` honoured).
    case connection(any PacketConnection)
    /// A UDP socket bound to `listen_port`, carrying `AddressedEnvelope`s.
    case channel(any Channel)
}

/// Owns the `WireGuardDevice`, its UDP transport and the netstack shards. Every member runs on
/// `loop` unless it says otherwise.
package final class WireGuardTunnel: @unchecked Sendable {
    /// The loop the device, its timers and the transport live on.
    package let loop: any EventLoop
    /// The WireGuard device (touch it only on `loop`).
    package let device: WireGuardDevice
    /// One stack per loop of the group; shard 0 runs on `loop`.
    package private(set) var shards: [WireGuardShardDevice] = []
    var transport: WireGuardTransport?

    private var output = WireGuardOutput()
    private var spare = WireGuardOutput()
    private var delivering = false
    private var flushScheduled = false
    private var transportNeedsFlush = false
    private var timer: Scheduled<Void>?
    private var timerDeadline: Instant?
    /// Decrypted packets waiting for their shard's loop, one queue per shard.
    private var shardQueues: [[ByteBuffer]] = []
    /// NIO addresses of recent endpoints for the `listen_port` socket (converting allocates).
    private var addressCache: [WireGuardEndpoint: SocketAddress] = [:]
    /// The ephemeral port slice of shard i is `portBase + i * portSliceSize ..< + portSliceSize`.
    let portBase: Int
    let portSliceSize: Int

    /// A tunnel for `device` on `loop` with `shardCount` port slices of `ephemeralPorts`.
    init(device: WireGuardDevice, loop: any EventLoop, shardCount: Int, ephemeralPorts: ClosedRange<UInt16>) {
        self.device = device
        self.loop = loop
        portBase = Int(ephemeralPorts.lowerBound)
        portSliceSize = (Int(ephemeralPorts.upperBound) - portBase + 1) / max(1, shardCount)
        shardQueues = Array(repeating: [], count: shardCount)
    }

    /// The ephemeral ports shard `index` dials from.
    func ephemeralPorts(ofShard index: Int) -> ClosedRange<UInt16> {
        let lower = portBase + index * portSliceSize
        return UInt16(lower)...UInt16(lower + portSliceSize - 1)
    }

    /// Adds the shard devices (before any packet flows).
    func attach(_ shards: [WireGuardShardDevice]) { self.shards = shards }

    /// The loop's clock as the device's `Instant`.
    static func now() -> Instant { Instant(nanoseconds: NIODeadline.now().uptimeNanoseconds) }

    // MARK: UDP in

    /// One datagram from the transport. On `loop`.
    func receiveDatagram(_ datagram: ByteBuffer, from source: WireGuardEndpoint) {
        device.receive(datagram: datagram, from: source, now: Self.now(), into: &output)
        afterEvent()
    }

    /// Starts a handshake with every peer that has a persistent keepalive (wireguard-go sends the first
    /// keepalive when such a peer comes up, so the peer learns our endpoint without waiting for traffic).
    func startKeepalives() {
        for (index, peer) in device.peers.enumerated() where peer.configuration.persistentKeepalive != nil {
            device.initiateHandshake(peer: index, now: Self.now(), into: &output)
        }
        afterEvent()
        flushTransport()
    }

    // MARK: Inner packets out

    /// Inner packets a shard's stack transmitted, already moved off that shard. On `loop`.
    func sendPackets(_ packets: [ByteBuffer]) {
        let now = Self.now()
        for packet in packets { device.send(packet: packet, now: now, into: &output) }
        afterEvent()
        // One batch from a stack is already a burst: flush now rather than after another loop turn.
        flushTransport()
    }

    // MARK: The pump

    /// Sends datagrams, queues decrypted packets per shard, re-arms the timer. Re-entrant calls only add to
    /// `output`; the outermost loops until nothing is left. `output` and `spare` swap: no copies.
    private func afterEvent() {
        if delivering { return }
        delivering = true
        defer { delivering = false }
        repeat {
            swap(&output, &spare)
            for datagram in spare.datagrams { transmit(datagram.buffer, to: datagram.endpoint) }
            for packet in spare.packets {
                let shard = shardIndex(for: packet.buffer)
                shardQueues[shard].append(packet.buffer)
            }
            if !spare.packets.isEmpty || transportNeedsFlush { scheduleFlush() }
            spare.removeAll()
            armTimer(device.poll(now: Self.now(), into: &output))
        } while !output.datagrams.isEmpty || !output.packets.isEmpty
    }

    /// After the current burst (the rest of this loop tick), hands each shard its queue and flushes the socket.
    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.execute { [self] in
            flushScheduled = false
            flushTransport()
            for index in shardQueues.indices where !shardQueues[index].isEmpty {
                let packets = shardQueues[index]
                shardQueues[index].removeAll(keepingCapacity: true)
                shards[index].deliverFromTunnel(packets)
            }
        }
    }

    /// The shard whose stack owns the destination of an inner packet (see the note at the top).
    func shardIndex(for packet: ByteBuffer) -> Int {
        guard shards.count > 1 else { return 0 }
        let port: Int? = packet.withUnsafeReadableBytes { bytes in
            guard bytes.count >= 1 else { return nil }
            var proto: UInt8
            var offset: Int
            if bytes[0] >> 4 == 4 {
                guard bytes.count >= 20 else { return nil }
                // A later fragment carries no ports; it goes where fragment 0 cannot follow (shard 0).
                let fragment = UInt16(bytes[6] & 0x1f) << 8 | UInt16(bytes[7])
                guard fragment == 0 else { return nil }
                proto = bytes[9]
                offset = Int(bytes[0] & 0x0f) * 4
            } else {
                proto = bytes.count >= 40 ? bytes[6] : 0
                offset = 40
            }
            guard proto == 6 || proto == 17, bytes.count >= offset + 4 else { return nil }
            return Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
        }
        guard let port, port >= portBase else { return 0 }
        let index = (port - portBase) / max(1, portSliceSize)
        return index < shards.count ? index : 0
    }

    // MARK: UDP out

    private func transmit(_ buffer: ByteBuffer, to endpoint: WireGuardEndpoint) {
        switch transport {
        case .connection(let connection):
            connection.writePacket(buffer, to: Destination(ip: endpoint.adapterAddress, port: endpoint.port))
        case .channel(let channel):
            guard let address = socketAddress(endpoint) else { return }
            channel.write(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
        case nil:
            return
        }
        transportNeedsFlush = true
    }

    private func flushTransport() {
        guard transportNeedsFlush else { return }
        transportNeedsFlush = false
        switch transport {
        case .connection(let connection): connection.flush()
        case .channel(let channel): channel.flush()
        case nil: break
        }
    }

    private func socketAddress(_ endpoint: WireGuardEndpoint) -> SocketAddress? {
        if let cached = addressCache[endpoint] { return cached }
        // The listen socket is dual-stack (`[::]`): IPv4 peers are written as mapped addresses.
        var mapped = endpoint
        if !endpoint.isIPv6 {
            let v4 = endpoint.addressBytes
            guard let converted = WireGuardEndpoint(addressBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + v4, port: endpoint.port)
            else { return nil }
            mapped = converted
        }
        guard let address = mapped.socketAddress else { return nil }
        if addressCache.count >= 1024 { addressCache.removeAll(keepingCapacity: true) }
        addressCache[endpoint] = address
        return address
    }

    private func armTimer(_ next: Instant?) {
        guard let next else { return }
        if let current = timerDeadline, current <= next, timer != nil { return }
        timer?.cancel()
        timerDeadline = next
        timer = loop.scheduleTask(deadline: .uptimeNanoseconds(next.nanoseconds)) { [weak self] in
            guard let self else { return }
            timer = nil
            timerDeadline = nil
            afterEvent()
            flushTransport()
        }
    }

    /// Cancels the timer and forgets the transport (the endpoint closes it).
    func stop() {
        timer?.cancel()
        timer = nil
        transport = nil
    }
}

/// The `PacketDevice` of one netstack shard: its output goes to the tunnel loop's WireGuard device, and the
/// tunnel hands it the decrypted packets addressed to its flows.
package final class WireGuardShardDevice: PacketDevice, @unchecked Sendable {
    /// The shard's position (its ephemeral port slice).
    let index: Int
    /// The loop the shard's stack runs on.
    let loop: any EventLoop
    unowned let tunnel: WireGuardTunnel
    private var deliver: ((inout PacketBatch) -> Void)?
    private var inbound = PacketBatch(capacity: 64)
    private var stopped = false

    init(index: Int, loop: any EventLoop, tunnel: WireGuardTunnel) {
        self.index = index
        self.loop = loop
        self.tunnel = tunnel
    }

    /// Remembers the driver's delivery; packets arrive once the tunnel hands them over.
    package func start(on eventLoop: any EventLoop, deliver: @escaping (inout PacketBatch) -> Void) {
        self.deliver = deliver
    }

    /// Moves the stack's packets (not copies: each buffer is taken over, so the device seals in place)
    /// to the tunnel loop. Called by the driver on `loop`.
    package func write(_ batch: inout PacketBatch) {
        guard !stopped else { return }
        var packets: [ByteBuffer] = []
        packets.reserveCapacity(batch.count)
        for index in batch.packets.indices {
            // The stack's buffer itself, with its headroom and the room behind: the device seals in place.
            packets.append(ByteBuffer(takingOver: &batch.packets[index].bytes))
        }
        batch.removeAll()
        let tunnel = self.tunnel
        tunnel.loop.execute { tunnel.sendPackets(packets) }
    }

    /// Decrypted packets for this shard. Called on the tunnel loop; hops to `loop` unless it is the same.
    func deliverFromTunnel(_ packets: [ByteBuffer]) {
        if loop.inEventLoop {
            deliverOnLoop(packets)
        } else {
            loop.execute { [self] in deliverOnLoop(packets) }
        }
    }

    /// At most this many packets per `deliver`: the stack answers each call with its ACKs and window updates,
    /// so a whole read burst (up to 512 datagrams) in one call would stretch ACKs over hundreds of segments.
    static let maximumDeliveryBatch = 32

    private func deliverOnLoop(_ packets: [ByteBuffer]) {
        for packet in packets {
            guard !stopped, let deliver else { return }
            inbound.append(Packet(bytes: PacketBuffer(adopting: packet)))
            if inbound.count == Self.maximumDeliveryBatch {
                deliver(&inbound)
                inbound.removeAll()
            }
        }
        if !inbound.isEmpty, !stopped, let deliver { deliver(&inbound) }
        inbound.removeAll()
    }

    /// Drops whatever arrives from now on.
    package func stop() {
        stopped = true
        deliver = nil
    }
}

extension WireGuardEndpoint {
    /// The address as the adapter layer's value.
    var adapterAddress: Adapter.IPAddress {
        withUnsafeBytes(of: address) { raw in
            if isIPv6 {
                var high: UInt64 = 0, low: UInt64 = 0
                for index in 0..<8 { high = high << 8 | UInt64(raw[index]) }
                for index in 8..<16 { low = low << 8 | UInt64(raw[index]) }
                return .v6(IPv6Bits(high: high, low: low))
            }
            return .v4(UInt32(raw[0]) << 24 | UInt32(raw[1]) << 16 | UInt32(raw[2]) << 8 | UInt32(raw[3]))
        }
    }

    /// The endpoint of an adapter address (IPv4-mapped IPv6 becomes IPv4, as wireguard-go's endpoints are).
    init(_ ip: Adapter.IPAddress, port: UInt16) {
        switch ip.unmapped {
        case .v4(let value):
            self.init(ipv4: (UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)),
                      port: port)
        case .v6(let bits):
            // `address` holds the bytes in network order: big-endian halves.
            self.init(ipv4: (0, 0, 0, 0), port: port)
            address = (bits.high.bigEndian, bits.low.bigEndian)
            isIPv6 = true
        }
    }
}
