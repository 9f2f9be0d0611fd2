import NetstackWire

/// What the stack tells its owner. Drained with `Stack.nextEvent()` after `receive`/`transmit`.
package enum StackEvent: Sendable, Equatable {
    /// A new flow arrived: a TCP SYN or a first UDP datagram, for ANY destination in transparent mode
    /// or for a listened port. Nothing has been answered yet: the owner calls `accept(_:)` or
    /// `reject(_:_:)`. `key.local` is the original destination.
    case incoming(FlowID, FlowKey)
    /// A flow the owner opened (dialled) is established.
    case connected(FlowID)
    /// Data (TCP bytes or UDP datagrams) can be read from the flow.
    case readable(FlowID)
    /// Send buffer space opened up after the flow refused a write.
    case writable(FlowID)
    /// The peer finished sending (TCP FIN): reads return what is buffered, then end.
    case readClosed(FlowID)
    /// The flow is gone; its id is dead.
    case closed(FlowID, FlowCloseReason)
}

/// Why a flow ended.
package enum FlowCloseReason: Sendable, Equatable {
    /// Both directions finished normally.
    case finished
    /// The owner closed or aborted it.
    case local
    /// The peer reset it.
    case reset
    /// A UDP flow (or a TCP connection) saw no traffic for its idle timeout.
    case idle
    /// Retransmissions or the connect attempt timed out.
    case timedOut
    /// The owner rejected an incoming flow.
    case rejected
    /// The peer or a router said the destination is unreachable.
    case unreachable
}

/// How the owner turns down an incoming flow (sing-box's `reject` route action and its methods).
package enum FlowRejection: Sendable, Equatable {
    /// TCP: RST. UDP: ICMP port unreachable. (sing-box `reject`, method `default`.)
    case reset
    /// ICMP destination unreachable, administratively prohibited (v4 code 13, v6 code 1).
    case unreachable
    /// Say nothing (sing-box `reject` with method `drop`).
    case drop
}
