/// The connection states of RFC 9293 §3.3.2.
package enum TCPState: Hashable, Sendable, CustomStringConvertible {
    case closed, listen, synSent, synReceived, established
    case finWait1, finWait2, closeWait, closing, lastAck, timeWait

    /// States after the handshake in which sequence numbers of both sides are known (RFC 9293 §3.5).
    package var isSynchronized: Bool {
        switch self {
        case .closed, .listen, .synSent: false
        default: true
        }
    }

    /// States in which the peer may still send us data.
    package var mayReceiveData: Bool {
        switch self {
        case .synReceived, .established, .finWait1, .finWait2: true
        default: false
        }
    }

    /// States in which the owner may still queue data to send.
    package var maySend: Bool {
        switch self {
        case .synSent, .synReceived, .established, .closeWait: true
        default: false
        }
    }

    package var description: String {
        switch self {
        case .closed: "CLOSED"
        case .listen: "LISTEN"
        case .synSent: "SYN-SENT"
        case .synReceived: "SYN-RECEIVED"
        case .established: "ESTABLISHED"
        case .finWait1: "FIN-WAIT-1"
        case .finWait2: "FIN-WAIT-2"
        case .closeWait: "CLOSE-WAIT"
        case .closing: "CLOSING"
        case .lastAck: "LAST-ACK"
        case .timeWait: "TIME-WAIT"
        }
    }
}

/// What happened since the owner last called `takeEvents()`. Edge-triggered: each bit is set once per
/// occurrence and cleared by `takeEvents()`.
package struct TCPEvents: OptionSet, Hashable, Sendable, CustomStringConvertible {
    package var rawValue: UInt8
    @inlinable package init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The handshake completed (ESTABLISHED reached).
    package static let connected = TCPEvents(rawValue: 1 << 0)
    /// In-order data arrived; `read(max:)` returns it.
    package static let readable = TCPEvents(rawValue: 1 << 1)
    /// Send-buffer space opened up (acknowledged data was released).
    package static let writable = TCPEvents(rawValue: 1 << 2)
    /// The peer's FIN arrived in order: after the buffered data is read, the read side is at EOF.
    package static let peerClosed = TCPEvents(rawValue: 1 << 3)
    /// The connection reached CLOSED after an orderly close (or TIME-WAIT ran out).
    package static let closed = TCPEvents(rawValue: 1 << 4)
    /// An acceptable RST arrived (or a SYN was refused); the connection is CLOSED.
    package static let reset = TCPEvents(rawValue: 1 << 5)
    /// Retransmissions, the SYN or keepalive probes went unanswered; the connection is CLOSED.
    package static let timedOut = TCPEvents(rawValue: 1 << 6)

    package var description: String {
        let names: [(TCPEvents, String)] = [(.connected, "connected"), (.readable, "readable"), (.writable, "writable"),
                                            (.peerClosed, "peerClosed"), (.closed, "closed"), (.reset, "reset"),
                                            (.timedOut, "timedOut")]
        return "[" + names.filter { contains($0.0) }.map(\.1).joined(separator: ",") + "]"
    }
}

/// Why a connection reached CLOSED.
package enum TCPCloseReason: Hashable, Sendable {
    /// Both FINs were exchanged and acknowledged (or TIME-WAIT expired).
    case normal
    /// The peer reset the connection (or refused it in SYN-SENT).
    case reset
    /// The owner called `abort()`.
    case aborted
    /// Retransmission, SYN or keepalive limits ran out.
    case timedOut
}
