// The `urltest` outbound: probes its members with an HTTP HEAD of `url` through each, and sends flows
// to the fastest (within `tolerance` of the one in use, which is kept), re-probing every `interval`
// while it is used and pausing after `idle_timeout` without use. As Go's protocol/group/urltest.go.
package import Adapter
package import NIOCore
import Glibc
import Synchronization

/// A group whose current member can be asked for (Go's `OutboundGroup.Now`).
package protocol OutboundGroup: Outbound {
    /// The tag of the member flows go to now (nil when none is chosen yet).
    var nowTag: String? { get }
    /// The members' tags in config order (Go's `All`).
    var members: [String] { get }
}

extension SelectorOutbound: OutboundGroup {
    package var nowTag: String? { now?.tag }
}

/// Runs each job's probe, at most 10 at once (Go's batch of 10 in `urlTest` and the Clash API's
/// group delay); the delays that came back, by tag.
package func runProbes(_ jobs: [(tag: String, probe: @Sendable () async -> UInt16?)]) async -> [String: UInt16] {
    await withTaskGroup(of: (String, UInt16?).self) { group in
        var results: [String: UInt16] = [:]
        var running = 0
        for job in jobs {
            if running == 10, let (tag, delay) = await group.next() {
                running -= 1
                if let delay { results[tag] = delay }
            }
            running += 1
            group.addTask { (job.tag, await job.probe()) }
        }
        for await (tag, delay) in group { if let delay { results[tag] = delay } }
        return results
    }
}

/// Go's `RealTag`: a group member is tested and remembered as the member it points at.
package func realTag(_ outbound: any Outbound) -> String {
    (outbound as? any OutboundGroup)?.nowTag ?? outbound.tag
}

/// Probe delays by real outbound tag, shared by a box's urltest groups (Go's history storage).
package final class URLTestHistory: Sendable {
    /// One probe: its delay, when (monotonic, for `interval`), and when on the wall clock (seconds since
    /// the epoch, for the Clash API's `history`).
    package typealias Entry = (delay: UInt16, time: NIODeadline, wallTime: Double)
    private let entries = Mutex<[String: Entry]>([:])
    package init() {}
    package func load(_ tag: String) -> Entry? { entries.withLock { $0[tag] } }
    package func store(_ tag: String, delay: UInt16) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let wall = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        entries.withLock { $0[tag] = (delay, .now(), wall) }
    }
    package func delete(_ tag: String) { _ = entries.withLock { $0.removeValue(forKey: tag) } }
}

/// The flows a group opened, so a change of member can close them (Go's `interrupt.Group`). A flow
/// from an inbound is external; one the box opened itself (a DNS server, a download) is not.
final class FlowInterrupter: Sendable {
    private let open = Mutex<[ObjectIdentifier: (close: @Sendable () -> Void, external: Bool)]>([:])

    func track(_ channel: any Channel, external: Bool) {
        let key = ObjectIdentifier(channel)
        open.withLock { $0[key] = ({ channel.close(promise: nil) }, external) }
        channel.closeFuture.whenComplete { [self] _ in _ = open.withLock { $0.removeValue(forKey: key) } }
    }

    func track(_ connection: any PacketConnection, external: Bool) {
        let key = ObjectIdentifier(connection)
        open.withLock { $0[key] = ({ connection.eventLoop.execute { connection.close() } }, external) }
        connection.closeFuture.whenComplete { [self] _ in _ = open.withLock { $0.removeValue(forKey: key) } }
    }

    /// Closes the box's own flows, and the inbounds' too when `external`.
    func interrupt(external: Bool) {
        let closing = open.withLock { open -> [@Sendable () -> Void] in
            let chosen = open.filter { !$0.value.external || external }
            for key in chosen.keys { open.removeValue(forKey: key) }
            return chosen.values.map(\.close)
        }
        for close in closing { close() }
    }
}

/// Sends `HEAD url` through an outbound (on a loop of `group`) and returns when the response head
/// arrived (the box's HTTP client; throws on failure).
package typealias URLProber = @Sendable (_ outbound: any Outbound, _ url: String, _ group: any EventLoopGroup) async throws -> Void

package final class URLTestOutbound: OutboundGroup {
    package let type = "urltest"
    package let tag: String
    package let members: [String]
    /// Go's defaults: generate_204, 3 m, 50 ms, 30 m.
    package let url: String
    package let interval: TimeAmount
    package let tolerance: UInt16
    package let idleTimeout: TimeAmount
    /// `interrupt_exist_connections`: a change of member also closes the inbounds' flows through it.
    package let interruptExistConnections: Bool
    let interrupter = FlowInterrupter()
    let outbounds: OutboundManager
    /// The probe delays this group reads (shared by the box's urltest groups and its Clash API).
    package let history: URLTestHistory
    let prober: URLProber
    let group: any EventLoopGroup
    let logger: ContextLogger

    private struct State {
        var members: [any Outbound] = []
        var selectedTCP: (any Outbound)?
        var selectedUDP: (any Outbound)?
        var started = false
        var closed = false
        var checking = false
        var lastActive = NIODeadline.now()
        /// The periodic check, while the group is in use.
        var loop: Task<Void, Never>?
    }
    private let state = Mutex(State())

    package init(tag: String, members: [String], url: String?, interval: TimeAmount?, tolerance: UInt16?, idleTimeout: TimeAmount?,
                 interruptExistConnections: Bool = false, outbounds: OutboundManager, history: URLTestHistory, prober: @escaping URLProber, group: any EventLoopGroup,
                 logger: ContextLogger) throws {
        guard !members.isEmpty else { throw AdapterError(.other, "missing tags") }
        self.tag = tag
        self.members = members
        self.url = url.flatMap { $0.isEmpty ? nil : $0 } ?? "https://www.gstatic.com/generate_204"
        self.interval = interval.flatMap { $0 > .zero ? $0 : nil } ?? .minutes(3)
        self.tolerance = tolerance.flatMap { $0 > 0 ? $0 : nil } ?? 50
        self.idleTimeout = idleTimeout.flatMap { $0 > .zero ? $0 : nil } ?? .minutes(30)
        self.interruptExistConnections = interruptExistConnections
        self.outbounds = outbounds
        self.history = history
        self.prober = prober
        self.group = group
        self.logger = logger.named("outbound/urltest[\(tag)]")
    }

    package var dependencies: [String] { members }
    package let networks: Set<NetworkKind> = [.tcp, .udp]

    package var nowTag: String? {
        state.withLock { ($0.selectedTCP ?? $0.selectedUDP)?.tag }
    }

    package func start(_ stage: StartStage) async throws {
        switch stage {
        case .start:
            let resolved = try resolveMembers(members, in: outbounds)
            guard interval <= idleTimeout else { throw AdapterError(.other, "interval must be less or equal than idle_timeout") }
            state.withLock { $0.members = resolved }
        case .postStart:
            state.withLock {
                $0.started = true
                $0.lastActive = .now()
            }
            Task { await check(force: false) }
        default:
            break
        }
    }

    package func close() async throws {
        let loop = state.withLock { state -> Task<Void, Never>? in
            state.closed = true
            defer { state.loop = nil }
            return state.loop
        }
        loop?.cancel()
    }

    package func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        let channel = try await through(.tcp, metadata) { try await $0.dialTCP(metadata, on: eventLoop) }
        interrupter.track(channel, external: !metadata.inbound.isEmpty)
        return channel
    }

    package func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        let connection = try await through(.udp, metadata) { try await $0.listenPacket(metadata, on: eventLoop) }
        interrupter.track(connection, external: !metadata.inbound.isEmpty)
        return connection
    }

    /// Opens a flow through the chosen member; a member that fails is logged and its delay forgotten,
    /// so the next check tests it again (Go's DialContext / ListenPacket).
    private func through<Result>(_ network: NetworkKind, _ metadata: FlowMetadata,
                                 _ open: (any Outbound) async throws -> Result) async throws -> Result {
        let outbound = try pick(network)
        do {
            return try await open(outbound)
        } catch {
            logger.error("\(error)", flow: metadata.flowID)
            history.delete(realTag(outbound))
            throw error
        }
    }

    /// The member for a new flow (Go's DialContext: touch, the selected one, else `Select`).
    private func pick(_ network: NetworkKind) throws -> any Outbound {
        touch()
        let chosen = state.withLock { state -> (any Outbound)? in
            (network == .tcp ? state.selectedTCP : state.selectedUDP) ?? Self.select(network, state: state, history: history, tolerance: tolerance).outbound
        }
        guard let chosen else { throw AdapterError(.other, "missing supported outbound") }
        return chosen
    }

    /// Go's `Select`: the member with the least delay, where the one in use stays unless another
    /// beats it by more than `tolerance`; without any delay known, the first member for `network`.
    private static func select(_ network: NetworkKind, state: State, history: URLTestHistory,
                               tolerance: UInt16) -> (outbound: (any Outbound)?, tested: Bool) {
        var best: (any Outbound)?
        var bestDelay: UInt16 = 0
        if let current = network == .tcp ? state.selectedTCP : state.selectedUDP, let known = history.load(realTag(current)) {
            best = current
            bestDelay = known.delay
        }
        for member in state.members where member.networks.contains(network) {
            guard let known = history.load(realTag(member)) else { continue }
            if bestDelay == 0 || bestDelay > known.delay &+ tolerance {
                bestDelay = known.delay
                best = member
            }
        }
        if let best { return (best, true) }
        return (state.members.first { $0.networks.contains(network) }, false)
    }

    /// Go's `Touch`: a flow keeps the periodic check running (or starts it again after idling).
    private func touch() {
        state.withLock { state in
            guard state.started, !state.closed else { return }
            if state.loop != nil {
                state.lastActive = .now()
            } else {
                state.loop = Task { [self] in await loopCheck() }
            }
        }
    }

    /// Go's `loopCheck`: check now if the last activity is older than `interval`, then every
    /// `interval` until the group has been idle for `idleTimeout`.
    private func loopCheck() async {
        let stale = state.withLock { state -> Bool in
            guard NIODeadline.now() - state.lastActive > interval else { return false }
            state.lastActive = .now()
            return true
        }
        if stale { await check(force: false) }
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(interval.nanoseconds))
            if Task.isCancelled { return }
            let idle = state.withLock { state -> Bool in
                guard NIODeadline.now() - state.lastActive > idleTimeout else { return false }
                state.loop = nil
                return true
            }
            if idle { return }
            await check(force: false)
        }
    }

    /// Go's `urlTest`: probe each member not tested within `interval` (at most 10 at once), record
    /// or forget its delay, then re-select. Returns the delays measured, by member tag (empty when a
    /// check was already running, as Go's).
    @discardableResult
    package func check(force: Bool) async -> [String: UInt16] {
        let members = state.withLock { state -> [any Outbound]? in
            guard !state.checking, !state.closed else { return nil }
            state.checking = true
            return state.members
        }
        guard let members else { return [:] }
        var seen = Set<String>()
        var jobs: [(tag: String, real: String, outbound: any Outbound)] = []
        for member in members {
            let real = realTag(member)
            guard !seen.contains(real) else { continue }
            if !force, let known = history.load(real), NIODeadline.now() - known.time < interval { continue }
            seen.insert(real)
            guard let outbound = outbounds.outbound(real) else { continue }
            jobs.append((member.tag, real, outbound))
        }
        let results = await runProbes(jobs.map { job in (job.tag, { [self] in await probe(job.tag, real: job.real, outbound: job.outbound) }) })
        let changed = state.withLock { state -> Bool in
            state.checking = false
            return Self.updateSelection(&state, history: history, tolerance: tolerance)
        }
        if changed { interrupter.interrupt(external: interruptExistConnections) }
        return results
    }

    private func probe(_ tag: String, real: String, outbound: any Outbound) async -> UInt16? {
        let start = NIODeadline.now()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.prober(outbound, self.url, self.group) }
                group.addTask {
                    try await Task.sleep(nanoseconds: 15_000_000_000)  // Go's C.TCPTimeout
                    throw AdapterError(.other, "context deadline exceeded")
                }
                try await group.next()
                group.cancelAll()
            }
            let delay = UInt16(clamping: (NIODeadline.now() - start).nanoseconds / 1_000_000)
            logger.debug("outbound \(tag) available: \(delay)ms")
            history.store(real, delay: delay)
            return delay
        } catch {
            logger.debug("outbound \(tag) unavailable: \(error)")
            history.delete(real)
            return nil
        }
    }

    /// Go's `performUpdateCheck`: take `Select`'s answer when nothing is selected yet, or when it
    /// came from a measured delay and differs. True when a member in use was replaced.
    private static func updateSelection(_ state: inout State, history: URLTestHistory, tolerance: UInt16) -> Bool {
        var replaced = false
        let tcp = select(.tcp, state: state, history: history, tolerance: tolerance)
        if let outbound = tcp.outbound, state.selectedTCP == nil || (tcp.tested && outbound !== state.selectedTCP!) {
            if state.selectedTCP != nil { replaced = true }
            state.selectedTCP = outbound
        }
        let udp = select(.udp, state: state, history: history, tolerance: tolerance)
        if let outbound = udp.outbound, state.selectedUDP == nil || (udp.tested && outbound !== state.selectedUDP!) {
            if state.selectedUDP != nil { replaced = true }
            state.selectedUDP = outbound
        }
        return replaced
    }
}
