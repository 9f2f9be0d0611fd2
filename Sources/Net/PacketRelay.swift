// PacketRelay: joins a client-side packet connection to an outbound's, with an idle timeout.
//
// Datagrams from the client go to the address they were sent to; replies go back to the client
// stamped with the address they came from (or with the flow's domain destination, so a client that
// sent to `example.com:53` sees the reply from `example.com:53`, as Go does unless
// `udp_disable_domain_unmapping`). Either side closing, or no datagram for `idleTimeout`, closes both.
package import Adapter
package import NIOCore

/// Splices two `PacketConnection`s on one loop.
package enum PacketRelay {
    /// Starts relaying; the future completes (on the loop) when both sides are closed.
    /// `domainDestination`: replies from that port are reported as coming from it.
    /// `rewrite`: datagrams the client sends to `from` go to `to` instead, and replies from `to`
    /// appear to come from `from` (route `override_address` / `override_port`).
    package static func start(client: any PacketConnection, remote: any PacketConnection,
                              idleTimeout: TimeAmount, domainDestination: Destination? = nil,
                              rewrite: (from: Destination, to: Destination)? = nil,
                              counter: TrackedFlow? = nil) -> EventLoopFuture<RelayStatistics> {
        let loop = client.eventLoop
        precondition(loop === remote.eventLoop, "PacketRelay joins connections on one event loop")
        return loop.flatSubmit {
            let state = PacketRelayState(client: client, remote: remote, idleTimeout: idleTimeout,
                                         domainDestination: domainDestination)
            state.rewrite = rewrite
            state.counter = counter
            client.setReceiver(PacketRelaySide(state: state, isClient: true))
            remote.setReceiver(PacketRelaySide(state: state, isClient: false))
            state.armTimer()
            return state.done.futureResult
        }
    }
}

final class PacketRelayState {
    let client: any PacketConnection
    let remote: any PacketConnection
    let idleTimeout: TimeAmount
    let domainDestination: Destination?
    let done: EventLoopPromise<RelayStatistics>
    var statistics = RelayStatistics()
    var lastActivity = NIODeadline.now()
    var timer: Scheduled<Void>?
    var closedSides = 0
    var finished = false
    var rewrite: (from: Destination, to: Destination)?
    /// The Clash API's flow: told each datagram's payload size (Go counts packet payloads).
    var counter: TrackedFlow?

    init(client: any PacketConnection, remote: any PacketConnection, idleTimeout: TimeAmount, domainDestination: Destination?) {
        self.client = client
        self.remote = remote
        self.idleTimeout = idleTimeout
        self.domainDestination = domainDestination
        self.done = client.eventLoop.makePromise()
    }

    func armTimer() {
        guard !finished else { return }
        let loop = client.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        timer = loop.scheduleTask(deadline: lastActivity + idleTimeout) {
            let state = bound.value
            guard !state.finished else { return }
            if NIODeadline.now() >= state.lastActivity + state.idleTimeout {
                state.finish()
            } else {
                state.armTimer()
            }
        }
    }

    func finish() {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        client.close()
        remote.close()
    }

    func sideClosed() {
        closedSides += 1
        finish()
        if closedSides == 2 { done.succeed(statistics) }
    }
}

final class PacketRelaySide: PacketReceiver {
    let state: PacketRelayState
    let isClient: Bool

    init(state: PacketRelayState, isClient: Bool) {
        self.state = state
        self.isClient = isClient
    }

    func packetReceived(_ payload: ByteBuffer, from address: Destination) {
        guard !state.finished else { return }
        state.lastActivity = .now()
        let count = UInt64(payload.readableBytes)
        if isClient {
            state.statistics.upload &+= count
            state.counter?.countUpload(Int(count))
            var target = address
            if let rewrite = state.rewrite, address == rewrite.from { target = rewrite.to }
            state.remote.writePacket(payload, to: target)
            state.remote.flush()
        } else {
            state.statistics.download &+= count
            state.counter?.countDownload(Int(count))
            var source = address
            if let domain = state.domainDestination, address.port == domain.port { source = domain }
            if let rewrite = state.rewrite, address == rewrite.to || (rewrite.to.isDomain && address.port == rewrite.to.port) {
                source = rewrite.from
            }
            state.client.writePacket(payload, to: source)
            state.client.flush()
        }
    }

    func packetConnectionClosed() {
        state.sideClosed()
    }
}
