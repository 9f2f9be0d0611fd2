// Kernel socket parameters from the config's listen and dial fields, and the default dialer factory.
package import Adapter
package import Config
import NIOCore

extension ListenParameters {
    /// From an inbound's listen fields. `listen` absent means all addresses (`::`), as Go does.
    package init(options: ListenOptions) {
        let address = options.listen.flatMap { Adapter.IPAddress($0.text) } ?? .v6(IPv6Bits(high: 0, low: 0))
        self.init(address: address, port: options.listenPort ?? 0, bindInterface: options.bindInterface,
                  routingMark: options.routingMark?.value, reuseAddress: options.reuseAddr,
                  tcpFastOpen: options.tcpFastOpen)
    }
}

extension DialParameters {
    /// From an outbound's dial fields (`detour` is the factory's business).
    package init(options: DialerOptions) {
        let strategy = options.domainResolver?.strategy ?? options.domainStrategy ?? .asIs
        self.init(bindInterface: options.bindInterface,
                  inet4BindAddress: options.inet4BindAddress.flatMap { Adapter.IPAddress($0.text) },
                  inet6BindAddress: options.inet6BindAddress.flatMap { Adapter.IPAddress($0.text) },
                  routingMark: options.routingMark?.value,
                  reuseAddress: options.reuseAddr,
                  connectTimeout: options.connectTimeout.map { .nanoseconds($0.nanoseconds) } ?? .seconds(5),
                  tcpFastOpen: options.tcpFastOpen,
                  domainStrategy: Adapter.DomainStrategy(rawValue: strategy.rawValue) ?? .asIs,
                  fallbackDelay: options.fallbackDelay.map { .nanoseconds($0.nanoseconds) } ?? .milliseconds(300),
                  resolverServer: options.domainResolver.flatMap { $0.server.isEmpty ? nil : $0.server })
    }
}

/// Kernel dialers, or detour dialers when `detour` is set. `defaults` carries the route-level
/// defaults (`route.default_interface`, `default_mark`) applied where an outbound sets nothing.
package struct DefaultDialerFactory: DialerFactory {
    package let resolver: any DNSResolver
    package let outbounds: OutboundManager
    package let defaultInterface: String?
    package let defaultMark: UInt32?
    /// `route.auto_detect_interface` (without `default_interface`): the default interface, read per dial.
    package let autoDetectedInterface: DefaultInterfaceTracker?

    package init(resolver: any DNSResolver, outbounds: OutboundManager, defaultInterface: String? = nil, defaultMark: UInt32? = nil,
                 autoDetectedInterface: DefaultInterfaceTracker? = nil) {
        self.resolver = resolver
        self.outbounds = outbounds
        self.defaultInterface = defaultInterface
        self.defaultMark = defaultMark
        self.autoDetectedInterface = autoDetectedInterface
    }

    package func makeDialer(_ options: DialerOptions) throws -> any Dialer {
        if let detour = options.detour, !detour.isEmpty {
            return DetourDialer(detour: detour, outbounds: outbounds)
        }
        if options.netns != nil { throw AdapterError(.notImplemented, "netns: not implemented") }
        var parameters = DialParameters(options: options)
        if parameters.bindInterface == nil { parameters.bindInterface = defaultInterface }
        if parameters.routingMark == nil { parameters.routingMark = defaultMark }
        return SystemDialer(parameters: parameters, resolver: resolver,
                            defaultInterface: parameters.bindInterface == nil ? autoDetectedInterface : nil)
    }
}
