import NIOCore
import NetstackWire

// The established side of TCP flows: filled in when NetstackTCP's connection is integrated.
// Until then an accepted TCP flow cannot proceed, and the calls below say so.

extension Stack {
    func acceptTCP(_ flow: TCPFlow) throws(FlowError) {
        guard flow.isPendingSYN else { throw .invalidState }
        throw .invalidState  // TODO(#tcp): hand the SYN to TCPConnection(accepting:)
    }

    func closeTCP(_ flow: TCPFlow, abort: Bool) throws(FlowError) {
        removeFlow(flow.id, key: flow.key)
    }

    func releaseTCP(_ flow: TCPFlow) {
        flow.synPacket = nil
    }

    func tcpTimer(_ flow: TCPFlow, now: Instant) {
        if flow.isPendingSYN && flow.deadline <= now {
            removeFlow(flow.id, key: flow.key)
        }
    }

    func receiveTCPSegment(_ flow: TCPFlow, segment: ByteBuffer, tcp: TCPBasics, offload: VirtioNetHeader, now: Instant) {}

    func transmitTCP(now: Instant) {}

    func nextTCPDeadline() -> Instant? { nil }
}
