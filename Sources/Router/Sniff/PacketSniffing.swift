// PacketSniffing: runs the packet sniffers over a UDP flow's queued first datagrams.
//
// 1. Read the datagrams the inbound queued (`PacketPeeking`) on the flow's loop.
// 2. Feed each new one to the sniffers; QUIC may ask for the next datagram (a split ClientHello).
// 3. While undecided, look again every 10 ms until the timeout (300 ms default, as Go): a flow
//    whose client sends nothing more is never held longer.
import Adapter
import NIOCore

enum PacketSniffing {
    static let pollInterval: TimeAmount = .milliseconds(10)

    /// The outcome for `connection`'s first datagrams, or nil when it cannot be peeked or nothing
    /// was found in time. A QUIC flow still waiting when time runs out reports `quic`/`chromium`,
    /// as Go leaves its metadata after a fragmented ClientHello.
    static func sniff(_ connection: any PacketConnection, sniffers names: [String], timeout: TimeAmount?) async -> SniffOutcome? {
        guard let peeking = connection as? any PacketPeeking else { return nil }
        let sniffers = PacketSniffer.selected(by: names)
        guard !sniffers.isEmpty else { return nil }
        let deadline = NIODeadline.now() + (timeout ?? .milliseconds(300))
        var state = PacketSniffState()
        var seen = 0
        while true {
            guard let queued = try? await peeking.eventLoop.submit({ peeking.queuedPayloads() }).get() else { return nil }
            for payload in queued.dropFirst(seen) {
                seen += 1
                let outcome = PacketSniffer.run(sniffers, over: Array(payload.readableBytesView), state: &state)
                switch outcome {
                case .found: return outcome
                case .notThisProtocol: return nil
                case .needMore: continue
                }
            }
            guard NIODeadline.now() + pollInterval < deadline else {
                return state.quicNeedsMore ? .found(protocol: "quic", domain: nil, client: "chromium") : nil
            }
            try? await Task.sleep(nanoseconds: UInt64(pollInterval.nanoseconds))
        }
    }
}
