// Registration hooks for protocol modules beyond direct and block, and the DNS seam. Each engineer
// adds their line here when their module's entry point lands (one file keeps merges small).
package import Adapter
import AnyTLS
import TUIC
import Config
import DNS
import Rules
import HTTPProxy
import Mixed
import Naive
import SOCKS
import Shadowsocks
import SSH
import Trojan
import VLESS
import VMess
import WireGuard

/// What the box built for DNS: the resolver dialers and the `resolve` action use, the handler for
/// `hijack-dns` flows, and its lifecycle (started with the services, closed after the inbounds).
package struct BoxDNS: Sendable {
    package var resolver: any DNSResolver
    package var hijacker: (any DNSHijacker)?
    package var lifecycle: (any Lifecycle)?
    /// fakeip and reverse mapping for the flow router.
    package var domainMapper: (any DNSDomainMapper)?
    /// The `resolve` action's resolver (DNS rules see the flow).
    package var flowResolver: (any FlowDNSResolver)?
    /// A DNS rule reads the owning process, so the flow router must look it up (Go's `isProcessDNSRule`).
    package var needsProcess = false
    /// The Clash API's DNS routes (fakeip flush, queries).
    package var clashAPI: ClashAPIDNS?

    package init(resolver: any DNSResolver, hijacker: (any DNSHijacker)?, lifecycle: (any Lifecycle)?,
                 domainMapper: (any DNSDomainMapper)? = nil, flowResolver: (any FlowDNSResolver)? = nil) {
        self.resolver = resolver
        self.hijacker = hijacker
        self.lifecycle = lifecycle
        self.domainMapper = domainMapper
        self.flowResolver = flowResolver
    }
}

enum BoxRegistrations {
    /// Protocol modules' `register(in:)` calls.
    static let all: [@Sendable (AdapterRegistry) -> Void] = [
        SOCKSModule.register, HTTPProxyModule.register, MixedModule.register, SSHModule.register, ShadowsocksModule.register, TrojanModule.register, NaiveModule.register, AnyTLSModule.register, TUICModule.register, VMessModule.register, VLESSModule.register,
        BoxTunPlatform.register,
        BoxRegistrations.registerTransparent,
        ResolvedService.register,
        BoxWireGuardPlatform.register,
    ]

    /// Builds the DNS router from `options.dns` with the box's context (outbounds are already in
    /// `context.outbounds`, dialers resolve through a switch the box points at the result).
    /// No `dns` section means Go's default: one `local` server.
    /// DNS rules' `rule_set` items use the box's own rule-sets (so remote updates reach them too).
    static let dns: (@Sendable (Options, AdapterContext, [String: RuleSet]) throws -> BoxDNS?)? = { options, context, ruleSets in
        let setup = try DNSSetup(options: options.dns ?? DNSOptions(), context: context, ruleSets: ruleSets)
        var dns = BoxDNS(resolver: setup.router, hijacker: setup.hijacker, lifecycle: setup.lifecycle, domainMapper: setup.domainMapper,
                         flowResolver: setup.router)
        dns.needsProcess = setup.router.rules.contains { $0.condition.readsProcess }
        let router = setup.router
        let fakeIP = setup.transports.compactMap { $0 as? FakeIPTransport }
        dns.clashAPI = ClashAPIDNS(resetFakeIP: {
            for transport in fakeIP {
                transport.store.reset()
                transport.saveIfChanged()
            }
        }, exchange: { query in
            try await router.exchange(try DNSMessage(parsing: query), metadata: nil).encoded()
        })
        if let modes = context.clashModes {
            // Go's SetMode clears the DNS cache: answers may depend on the mode.
            let router = setup.router
            router.clashModes = modes
            modes.observe { _ in router.client.clearCache() }
        }
        return dns
    }
}
