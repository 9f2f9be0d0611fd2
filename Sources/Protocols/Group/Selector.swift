// Group: the `selector` and `urltest` outbounds, which pick one of their member outbounds per flow.
//
// Imports: Adapter, Config, NIOCore (STYLE.md §1).
package import Adapter
package import NIOCore
import Config
import Synchronization

/// The module's name, for log lines and diagnostics.
package enum GroupModule {
    package static let name = "Group"
}

/// sing-box's `selector`: every flow goes to the selected member, `default` or else the first one.
/// The selection changes through the Clash API (`select`); a change closes the box's own flows
/// through the group, and the inbounds' too with `interrupt_exist_connections` (Go's interrupt
/// group). Nothing is stored in the cache file.
package final class SelectorOutbound: Outbound {
    package let type = "selector"
    package let tag: String
    /// The members, in config order.
    package let members: [String]
    package let defaultTag: String?
    /// `interrupt_exist_connections`: a change of member also closes the inbounds' flows through it.
    package let interruptExistConnections: Bool
    let outbounds: OutboundManager
    private let selected = Mutex<(any Outbound)?>(nil)
    private let resolvedMembers = Mutex<[any Outbound]>([])
    let interrupter = FlowInterrupter()

    package init(tag: String, members: [String], defaultTag: String?, interruptExistConnections: Bool = false,
                 outbounds: OutboundManager) throws {
        guard !members.isEmpty else { throw AdapterError(.other, "missing tags") }
        self.tag = tag
        self.members = members
        self.defaultTag = defaultTag.flatMap { $0.isEmpty ? nil : $0 }
        self.interruptExistConnections = interruptExistConnections
        self.outbounds = outbounds
    }

    /// Members start first.
    package var dependencies: [String] { members }

    /// The selected member's networks (both before the box starts, as Go answers).
    package var networks: Set<NetworkKind> { selected.withLock { $0 }?.networks ?? [.tcp, .udp] }

    /// The member every flow goes to now (nil before start).
    package var now: (any Outbound)? { selected.withLock { $0 } }

    package func start(_ stage: StartStage) async throws {
        guard stage == .start else { return }
        let resolved = try resolveMembers(members, in: outbounds)
        var choice = resolved[0]
        if let defaultTag {
            guard let found = resolved.first(where: { $0.tag == defaultTag }) else {
                throw AdapterError(.notFound, "default outbound not found: \(defaultTag)")
            }
            choice = found
        }
        resolvedMembers.withLock { $0 = resolved }
        selected.withLock { $0 = choice }
    }

    /// Go's `SelectOutbound`: false when `tag` is not a member (or the group has not started); a
    /// new member interrupts the flows through the group.
    package func select(_ tag: String) -> Bool {
        guard let member = resolvedMembers.withLock({ $0.first { $0.tag == tag } }) else { return false }
        let previous = selected.withLock { current -> (any Outbound)? in
            defer { current = member }
            return current
        }
        if previous.map({ $0 !== member }) ?? true {
            interrupter.interrupt(external: interruptExistConnections)
        }
        return true
    }

    package func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        let channel = try await current().dialTCP(metadata, on: eventLoop)
        interrupter.track(channel, external: !metadata.inbound.isEmpty)
        return channel
    }

    package func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        let connection = try await current().listenPacket(metadata, on: eventLoop)
        interrupter.track(connection, external: !metadata.inbound.isEmpty)
        return connection
    }

    private func current() throws -> any Outbound {
        guard let outbound = selected.withLock({ $0 }) else { throw AdapterError(.other, "\(logName): not started") }
        return outbound
    }
}

/// A group's members by tag, in order; throws Go's `outbound <i> not found: <tag>`.
func resolveMembers(_ members: [String], in outbounds: OutboundManager) throws(AdapterError) -> [any Outbound] {
    try members.enumerated().map { (index, member) throws(AdapterError) -> any Outbound in
        guard let outbound = outbounds.outbound(member) else { throw AdapterError(.notFound, "outbound \(index) not found: \(member)") }
        return outbound
    }
}

extension GroupModule {
    /// Registers `selector` and `urltest`; `prober` is the box's HTTP client (one history per box).
    package static func register(in registry: AdapterRegistry, prober: @escaping URLProber) {
        let history = URLTestHistory()
        registry.register(outbound: "urltest") { context, options in
            guard case .urltest(let urltest) = options.options else {
                throw AdapterError(.other, "urltest: unexpected options for \(options.type)")
            }
            return try URLTestOutbound(tag: options.tag, members: urltest.outbounds, url: urltest.url,
                                       interval: urltest.interval.map { .nanoseconds($0.nanoseconds) }, tolerance: urltest.tolerance,
                                       idleTimeout: urltest.idleTimeout.map { .nanoseconds($0.nanoseconds) },
                                       interruptExistConnections: urltest.interruptExistConnections, outbounds: context.outbounds, history: history, prober: prober, group: context.group,
                                       logger: context.logger(""))
        }
        registry.register(outbound: "selector") { context, options in
            guard case .selector(let selector) = options.options else {
                throw AdapterError(.other, "selector: unexpected options for \(options.type)")
            }
            return try SelectorOutbound(tag: options.tag, members: selector.outbounds, defaultTag: selector.default,
                                        interruptExistConnections: selector.interruptExistConnections, outbounds: context.outbounds)
        }
    }
}
