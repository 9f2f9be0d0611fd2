// ConnectionTracker: the routed flows the Clash API shows and closes (Go's `trafficontrol.Manager`).
//
// 1. The router registers a flow once its outbound is chosen, before dialing (Go wraps the client
//    connection there): metadata, the matched rule as Go prints it, the outbound chain.
// 2. The relay counts bytes on its existing read paths: `countUpload` / `countDownload` are relaxed
//    atomic adds on the flow and on the totals, no allocation, once per read (not per packet).
// 3. The flow leaves when its client side closes; `close` ends it from the API.
// The box builds a tracker only when the Clash API is served; without one the router passes nil and
// the relay's only cost is a nil check per read.
import Glibc
package import NIOCore
import Synchronization

/// One tracked flow: what `/connections` shows and its byte counters. Immutable but for the
/// counters, which any loop may bump.
package final class TrackedFlow: Sendable {
    /// A random UUID (version 4) in Go's text form.
    package let id: String
    /// The flow's metadata when it was routed.
    package let metadata: FlowMetadata
    /// Wall-clock seconds since the epoch when it was routed (Go's `CreatedAt`).
    package let start: Double
    /// Outbound tags from the final outbound back to the one the rule chose (Go's reversed chain).
    package let chains: [String]
    /// `<rule> => <action>`, or `final` when no rule matched.
    package let rule: String
    /// Type of the last outbound in the chain (Go hides `dns` flows from snapshots).
    package let outboundType: String
    private let uploaded = Atomic<Int64>(0)
    private let downloaded = Atomic<Int64>(0)
    private let tracker: ConnectionTracker
    private let closer: @Sendable () -> Void

    init(metadata: FlowMetadata, start: Double, chains: [String], rule: String, outboundType: String,
         tracker: ConnectionTracker, closer: @escaping @Sendable () -> Void) {
        id = Self.randomUUID()
        self.metadata = metadata
        self.start = start
        self.chains = chains
        self.rule = rule
        self.outboundType = outboundType
        self.tracker = tracker
        self.closer = closer
    }

    /// Bytes read from the client so far.
    package var upload: Int64 { uploaded.load(ordering: .relaxed) }
    /// Bytes read from the remote so far.
    package var download: Int64 { downloaded.load(ordering: .relaxed) }

    /// Counts `byteCount` bytes from the client (any loop).
    package func countUpload(_ byteCount: Int) {
        uploaded.wrappingAdd(Int64(byteCount), ordering: .relaxed)
        tracker.uploadTotal.wrappingAdd(Int64(byteCount), ordering: .relaxed)
    }

    /// Counts `byteCount` bytes towards the client (any loop).
    package func countDownload(_ byteCount: Int) {
        downloaded.wrappingAdd(Int64(byteCount), ordering: .relaxed)
        tracker.downloadTotal.wrappingAdd(Int64(byteCount), ordering: .relaxed)
    }

    /// Closes the client side (the relay then closes the outbound side); callable from any thread.
    package func close() { closer() }

    /// Go's `uuid.NewV4` text: 16 random bytes with the version and variant bits set.
    static func randomUUID() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if [4, 6, 8, 10].contains(index) { text.append(UInt8(ascii: "-")) }
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// Every routed flow of one box while the Clash API is served, and the byte totals.
/// Joining and leaving take a lock once per flow; counting is lock-free.
package final class ConnectionTracker: Sendable {
    let uploadTotal = Atomic<Int64>(0)
    let downloadTotal = Atomic<Int64>(0)
    private let live = Mutex<[String: TrackedFlow]>([:])
    private let outbounds: OutboundManager
    private let groupNow: @Sendable (any Outbound) -> String?

    /// `groupNow` tells the member a group outbound uses now (nil: not a group), to build chains.
    package init(outbounds: OutboundManager, groupNow: @escaping @Sendable (any Outbound) -> String?) {
        self.outbounds = outbounds
        self.groupNow = groupNow
    }

    /// Bytes uploaded and downloaded by every flow since the start (Go's `Total`).
    package var totals: (upload: Int64, download: Int64) {
        (uploadTotal.load(ordering: .relaxed), downloadTotal.load(ordering: .relaxed))
    }

    /// Tracks a TCP flow until `channel` closes.
    package func track(_ channel: any Channel, metadata: FlowMetadata, rule: String, outbound: any Outbound) -> TrackedFlow {
        let flow = makeFlow(metadata: metadata, rule: rule, outbound: outbound) { channel.close(promise: nil) }
        join(flow, closeFuture: channel.closeFuture)
        return flow
    }

    /// Tracks a UDP flow until `connection` closes.
    package func track(_ connection: any PacketConnection, metadata: FlowMetadata, rule: String, outbound: any Outbound) -> TrackedFlow {
        let flow = makeFlow(metadata: metadata, rule: rule, outbound: outbound) {
            connection.eventLoop.execute { connection.close() }
        }
        join(flow, closeFuture: connection.closeFuture)
        return flow
    }

    /// The live flows, without `dns` ones (Go's `Snapshot`); order is unspecified, as Go's map.
    package func snapshot() -> [TrackedFlow] {
        live.withLock { Array($0.values) }.filter { $0.outboundType != "dns" }.sorted { $0.start < $1.start }
    }

    /// Closes the flow with `id` if it is live; false when none is.
    @discardableResult
    package func close(id: String) -> Bool {
        guard let flow = live.withLock({ $0[id.lowercased()] }) else { return false }
        flow.close()
        return true
    }

    /// Closes every live flow (Go's `DELETE /connections`).
    package func closeAll() {
        for flow in live.withLock({ Array($0.values) }) { flow.close() }
    }

    private func makeFlow(metadata: FlowMetadata, rule: String, outbound: any Outbound,
                          closer: @escaping @Sendable () -> Void) -> TrackedFlow {
        // Go's chain: the chosen outbound, then each group's current member, reversed.
        var chain: [String] = []
        var outboundType = outbound.type
        var next: String? = outbound.tag
        while let tag = next, let detour = outbounds.outbound(tag), !chain.contains(tag) {
            chain.append(tag)
            outboundType = detour.type
            next = groupNow(detour)
        }
        return TrackedFlow(metadata: metadata, start: Self.wallClock(), chains: chain.reversed(), rule: rule,
                           outboundType: outboundType, tracker: self, closer: closer)
    }

    private func join(_ flow: TrackedFlow, closeFuture: EventLoopFuture<Void>) {
        live.withLock { $0[flow.id] = flow }
        closeFuture.whenComplete { [self] _ in _ = live.withLock { $0.removeValue(forKey: flow.id) } }
    }

    private static func wallClock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
