// AdapterRegistry: config type string → constructor, like sing-box's `include/registry`.
package import Config
package import NIOCore
import Synchronization

/// Builds dialers from an outbound's dial fields. The box provides the kernel implementation
/// (Net's `DefaultDialerFactory`); `detour` dials through another outbound.
package protocol DialerFactory: Sendable {
    /// Throws `AdapterError` for fields this build cannot honour.
    func makeDialer(_ options: DialerOptions) throws -> any Dialer
}

/// What a constructor gets besides its options: shared services of the box being built.
/// Everything here is safe to use from any thread.
package struct AdapterContext: Sendable {
    /// The event loops flows run on.
    package var group: any EventLoopGroup
    /// The box's log root.
    package var logCore: LogCore
    /// Where inbounds hand their flows (the router).
    package var router: any FlowHandler
    /// Every outbound and endpoint by tag (filled before any adapter starts).
    package var outbounds: OutboundManager
    /// Name resolution for dialers (the DNS router, or the system resolver).
    package var resolver: any DNSResolver
    /// Dialers from dial fields.
    package var dialerFactory: any DialerFactory
    /// Linux SO_ORIGINAL_DST / IP_TRANSPARENT sockets for `redirect` and `tproxy` (nil: not on Linux).
    package var transparentSockets: (any TransparentSockets)?
    /// The destination IP CIDRs of the route rule-set `tag` (tun's `route_address_set`); nil when no
    /// rule-set has that tag. Rule-sets are loaded before any adapter is built.
    package var ruleSetDestinations: @Sendable (_ tag: String) -> [IPPrefix]? = { _ in nil }
    /// Registers `callback` to run with the new destination IP CIDRs each time the rule-set `tag` is
    /// updated (a remote download, a local file reload); on the updating task, never an event loop.
    package var ruleSetUpdates: @Sendable (_ tag: String, _ callback: @escaping @Sendable ([IPPrefix]) -> Void) -> Void = { _, _ in }
    /// `experimental.cache_file` with `store_fakeip`: where the fakeip server keeps its mappings across
    /// restarts; nil when they live in memory only.
    package var fakeIPStorage: FakeIPStorage?
    /// The Clash API's mode, when `experimental.clash_api` is set (DNS rules' `clash_mode` read it).
    package var clashModes: ClashModeStore?

    package init(group: any EventLoopGroup, logCore: LogCore, router: any FlowHandler, outbounds: OutboundManager,
                 resolver: any DNSResolver, dialerFactory: any DialerFactory) {
        self.group = group
        self.logCore = logCore
        self.router = router
        self.outbounds = outbounds
        self.resolver = resolver
        self.dialerFactory = dialerFactory
        self.transparentSockets = nil
    }

    /// A logger named like Go's (`inbound/mixed[mixed-in]`).
    package func logger(_ name: String) -> ContextLogger { ContextLogger(core: logCore, name: name) }
}

/// Maps each config type string to the constructor of its adapter. Protocols register in their
/// module's `register(in:)`; the box looks types up while building. A type with no constructor
/// still parses (Config knows it) and fails when the box starts: `not implemented: <type>`.
package final class AdapterRegistry: Sendable {
    package typealias InboundConstructor = @Sendable (AdapterContext, InboundOptions) throws -> any Inbound
    package typealias OutboundConstructor = @Sendable (AdapterContext, OutboundOptions) throws -> any Outbound
    package typealias EndpointConstructor = @Sendable (AdapterContext, EndpointOptions) throws -> any Endpoint
    package typealias ServiceConstructor = @Sendable (AdapterContext, ServiceOptions) throws -> any Service

    private struct Tables {
        var inbounds: [String: InboundConstructor] = [:]
        var outbounds: [String: OutboundConstructor] = [:]
        var endpoints: [String: EndpointConstructor] = [:]
        var services: [String: ServiceConstructor] = [:]
    }

    private let tables = Mutex(Tables())

    package init() {}

    package func register(inbound type: String, _ constructor: @escaping InboundConstructor) {
        tables.withLock { $0.inbounds[type] = constructor }
    }

    package func register(outbound type: String, _ constructor: @escaping OutboundConstructor) {
        tables.withLock { $0.outbounds[type] = constructor }
    }

    package func register(endpoint type: String, _ constructor: @escaping EndpointConstructor) {
        tables.withLock { $0.endpoints[type] = constructor }
    }

    package func register(service type: String, _ constructor: @escaping ServiceConstructor) {
        tables.withLock { $0.services[type] = constructor }
    }

    package func inbound(_ type: String) -> InboundConstructor? { tables.withLock { $0.inbounds[type] } }
    package func outbound(_ type: String) -> OutboundConstructor? { tables.withLock { $0.outbounds[type] } }
    package func endpoint(_ type: String) -> EndpointConstructor? { tables.withLock { $0.endpoints[type] } }
    package func service(_ type: String) -> ServiceConstructor? { tables.withLock { $0.services[type] } }

    /// Registered inbound, outbound, endpoint and service types (for `version`'s tag line).
    package var registeredTypes: (inbounds: [String], outbounds: [String], endpoints: [String], services: [String]) {
        tables.withLock { t in
            (t.inbounds.keys.sorted(), t.outbounds.keys.sorted(), t.endpoints.keys.sorted(), t.services.keys.sorted())
        }
    }
}

/// The cache file's fakeip slot: the fakeip server's state as an opaque blob of its own format.
/// Both calls do blocking file I/O of one small file (control plane, never an event loop).
package struct FakeIPStorage: Sendable {
    /// The saved state, if any.
    package var load: @Sendable () -> [UInt8]?
    /// Replaces the saved state; errors are logged by the storage.
    package var save: @Sendable ([UInt8]) -> Void

    package init(load: @escaping @Sendable () -> [UInt8]?, save: @escaping @Sendable ([UInt8]) -> Void) {
        self.load = load
        self.save = save
    }
}
