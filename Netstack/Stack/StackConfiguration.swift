package import NetstackWire
package import NetstackTCP

/// How a `Stack` behaves and what it may hold. Defaults follow Linux where Linux has a knob.
package struct StackConfiguration: Sendable {
    /// Addresses the stack owns: echo is answered, listeners bind, dials originate from them.
    package var ipv4Addresses: [IPv4Address] = []
    /// IPv6 addresses the stack owns.
    package var ipv6Addresses: [IPv6Address] = []
    /// Transparent termination: a TCP SYN or UDP datagram to ANY destination becomes an `.incoming`
    /// flow with its original destination (a tun inbound). Off: only own addresses and listened ports.
    package var transparent = false
    /// Answer ICMP echo for any destination in transparent mode (otherwise only own addresses).
    package var answersEchoForAnyDestination = false
    /// The link MTU: larger IP packets are fragmented on output (IPv4 without DF, IPv6 at the source).
    package var mtu = 1500
    /// Most flows (TCP + UDP) at once; new ones beyond are dropped and counted.
    package var maximumFlows = 65536
    /// Most incoming TCP flows awaiting the owner's decision (the SYN backlog).
    package var synBacklog = 1024
    /// An undecided incoming flow is dropped after this long.
    package var pendingTimeout: Duration = .seconds(10)
    /// A UDP flow closes after this long without traffic either way (sing-box `udp_timeout`, 5 m).
    package var udpIdleTimeout: Duration = .seconds(300)
    /// Datagrams buffered per UDP flow that the owner has not read.
    package var udpReceiveBufferBytes = 256 << 10
    /// All bytes buffered by the stack together (UDP queues, TCP send and receive buffers). UDP
    /// datagrams past it are dropped; new TCP connections are not accepted while it is reached.
    package var totalBufferBytes = 64 << 20
    /// Packets queued for `transmit` before new ones are dropped.
    package var outputQueueLimit = 8192
    /// Fragment reassembly: lifetime and memory (Linux `ipfrag_time` 30 s, `ipfrag_high_thresh` 4 MiB).
    package var reassemblyTimeout: Duration = .seconds(30)
    /// Most bytes held by incomplete datagrams per family.
    package var reassemblyMemory = 4 << 20
    /// ICMP error rate limit (Linux `icmp_msgs_per_sec` 1000, `icmp_msgs_burst` 50).
    package var icmpErrorsPerSecond = 1000
    /// ICMP errors that may go out at once before the rate applies.
    package var icmpErrorBurst = 50
    /// TTL / hop limit of packets the stack originates.
    package var defaultTTL: UInt8 = 64
    /// A TCP flow the owner closed lives at most this long waiting for the peer's FIN (Linux
    /// `tcp_fin_timeout`, 60 s); then it is reset, so half-open peers cannot pin flows forever.
    package var orphanTimeout: Duration = .seconds(60)
    /// Per-connection TCP settings; the MSS is derived from `mtu` and the address family.
    package var tcp = TCPConfiguration()
    /// Emit TCP segments larger than the MSS as one GSO packet (virtio-net TCPv4/TCPv6 with a partial
    /// checksum) for a TUN device that segments them; off: the stack cuts them itself.
    package var tcpSegmentationOffload = false
    /// Local ports for dialled flows (Linux `ip_local_port_range`).
    package var ephemeralPorts: ClosedRange<UInt16> = 32768...60999
    /// sing-box's tun `loopback_address` (transparent mode): a TCP segment to one of these goes back
    /// out at once with its addresses swapped, so a client connecting to `address:port` reaches its
    /// own `port` and the connection's other direction is turned around the same way. The swap
    /// keeps every checksum valid (the header and pseudo-header sums do not depend on the order).
    package var loopbackAddresses: [IPAddress] = []

    package init() {}
}

/// Counters of what the stack did and dropped. Plain integers: read them on the stack's loop.
package struct StackStatistics: Sendable, Equatable {
    package var packetsReceived = 0
    package var packetsSent = 0
    package var malformed = 0
    package var badChecksum = 0
    package var notForUs = 0
    package var unknownProtocol = 0
    package var fragmentsReceived = 0
    package var fragmentsDropped = 0
    package var datagramsReassembled = 0
    package var reassemblyTimeouts = 0
    package var echoRequestsAnswered = 0
    package var icmpErrorsSent = 0
    package var icmpErrorsRateLimited = 0
    package var icmpReceived = 0
    /// ICMP "fragmentation needed" / "packet too big" messages that lowered a TCP flow's MSS.
    package var pathMTUReductions = 0
    package var udpDatagramsReceived = 0
    package var udpDatagramsDropped = 0
    package var tcpSegmentsReceived = 0
    /// TCP segments sent back to their sender (`loopbackAddresses`).
    package var tcpSegmentsReflected = 0
    package var tcpResetsSent = 0
    /// Retransmission timeouts of TCP data (each one a stall of at least the RTO).
    package var tcpRetransmitTimeouts = 0
    package var synBacklogDrops = 0
    package var memoryPressureDrops = 0
    package var flowLimitDrops = 0
    package var outputQueueDrops = 0
    package var flowsOpened = 0
    package var flowsClosed = 0
    package var tcpSegmentsSent = 0
    package var orphansReset = 0

    package init() {}
}

/// Why a flow call failed. The owner's mistakes and the stack's limits, not peer input.
package enum FlowError: Error, Equatable, Sendable {
    /// The id names no live flow (closed, or never was).
    case unknownFlow
    /// The call does not fit the flow's state (a datagram on a pending flow, accepting twice).
    case invalidState
    /// The buffer is full: wait for `.writable`.
    case wouldBlock
    /// A datagram larger than 65,507 (IPv4) / 65,527 (IPv6) bytes.
    case tooLarge
    /// Source and destination families differ, or the stack has no address of that family.
    case noLocalAddress
    /// No free ephemeral port.
    case portsExhausted
    /// `maximumFlows` reached.
    case tooManyFlows
    /// The port is already listened on.
    case addressInUse
}
