/// Which congestion controller a connection runs.
package enum TCPCongestionAlgorithm: Hashable, Sendable {
    /// CUBIC (RFC 9438), Linux's default.
    case cubic
    /// NewReno (RFC 5681, RFC 6582).
    case newReno
}

/// Keepalive probing (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): after `idle` without anything received,
/// probe every `interval`; after `count` unanswered probes the connection times out.
package struct TCPKeepalive: Hashable, Sendable {
    package var idle: Duration
    package var interval: Duration
    package var count: Int
    /// sing-box's dialer defaults: 10 minutes idle, 75 seconds between probes; Linux's 9 probes.
    package static let singBoxDefault = TCPKeepalive(idle: .seconds(600), interval: .seconds(75), count: 9)
    package init(idle: Duration, interval: Duration, count: Int) {
        self.idle = idle; self.interval = interval; self.count = count
    }
}

/// The knobs of one connection. Defaults follow Linux where RFCs leave a choice.
package struct TCPConfiguration: Sendable {
    /// The MSS we advertise: the link MTU minus the IP and TCP fixed headers (1460 for IPv4 on 1500).
    package var maximumSegmentSize: Int = 1460
    /// The largest payload one emitted segment may carry when the owner can segment it (TSO/GSO): a
    /// segment longer than `TCPConnection.sendMSS` is split by the owner into `sendMSS`-sized pieces.
    /// 0 (the default) means one MSS per segment.
    package var maxSegmentBytes: Int = 0
    /// Receive buffer: starts at `initial`, auto-tunes up to `maximum` (the window scale is sized for it).
    package var receiveBufferInitial: Int = 128 * 1024
    package var receiveBufferMaximum: Int = 4 * 1024 * 1024
    /// Send buffer: accepts at least `initial` bytes, up to twice the congestion window, at most `maximum`.
    package var sendBufferInitial: Int = 128 * 1024
    package var sendBufferMaximum: Int = 4 * 1024 * 1024
    /// Nagle's algorithm off (TCP_NODELAY): a proxy forwards what it has at once.
    package var noDelay = true
    /// Offer/accept window scaling (RFC 7323 §2), SACK (RFC 2018) and timestamps (RFC 7323 §3).
    package var windowScaling = true
    package var selectiveAcknowledgments = true
    package var timestamps = true
    package var congestionControl: TCPCongestionAlgorithm = .cubic
    /// The delayed-ACK timer (RFC 9293 §3.8.6.3 allows up to 500 ms; Linux uses 40 ms).
    package var delayedAckTimeout: Duration = .milliseconds(40)
    /// RFC 6298: 1 s initial RTO; Linux's 200 ms floor and 120 s ceiling.
    package var initialRetransmitTimeout: Duration = .seconds(1)
    package var minimumRetransmitTimeout: Duration = .milliseconds(200)
    package var maximumRetransmitTimeout: Duration = .seconds(120)
    /// Consecutive timeouts of data before giving up (Linux tcp_retries2 = 15).
    package var maximumRetransmissions = 15
    /// SYN or SYN-ACK retransmissions before giving up (Linux tcp_syn_retries = 6).
    package var maximumSYNRetransmissions = 6
    /// TIME-WAIT length (2 MSL; Linux fixes it at 60 s). Bounded so a gateway does not hoard flows.
    package var timeWaitDuration: Duration = .seconds(60)
    /// nil: no keepalive probes.
    package var keepalive: TCPKeepalive? = nil
    /// Tail loss probe (RFC 8985 §7; Linux's default): when the ACK for the last data is overdue by
    /// two smoothed RTTs, resend the last segment, so a lost tail (a dropped GSO super-packet is 44 of
    /// them) comes back as a SACK and fast recovery instead of a 200 ms+ retransmission timeout.
    package var tailLossProbe = true
    /// Initial congestion window in segments (RFC 6928).
    package var initialWindowSegments = 10

    package init() {}
}
