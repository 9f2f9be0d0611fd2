// LinkTable: the per-link settings resolve1 callers push (resolved-link-bus.c semantics), keyed by
// ifindex and kept only for links that exist. Validation happens here so D-Bus and tests share it;
// every change bumps `generation` and calls `onChange` (resolv.conf rewrite) after the lock is released.
package import Adapter
import Synchronization

/// Everything resolved stores for one link beyond what `ResolvedLink` carries.
package struct LinkSettings: Sendable, Equatable {
    /// SetLinkDNS / SetLinkDNSEx, in order.
    package var servers: [ResolvedLinkServer] = []
    /// SetLinkDomains, in order, duplicates removed.
    package var domains: [ResolvedLinkDomain] = []
    /// SetLinkDefaultRoute; nil until set.
    package var defaultRoute: Bool?
    /// SetLinkLLMNR: "" = unset (the global default applies), else "yes"/"no"/"resolve".
    package var llmnr = ""
    /// SetLinkMulticastDNS, same values.
    package var multicastDNS = ""
    /// "" or "yes"/"no"/"opportunistic".
    package var dnsOverTLS = ""
    /// "" or "yes"/"no"/"allow-downgrade".
    package var dnssec = ""
    /// SetLinkDNSSECNegativeTrustAnchors, normalized.
    package var negativeTrustAnchors: [String] = []

    /// Nothing set.
    package init() {}

    /// Whether anything was set (an untouched link is not listed by `links`).
    var isEmpty: Bool { self == LinkSettings() }
}

/// The per-link table. Thread-safe; implements the Adapter source the `resolved` DNS server reads.
package final class LinkTable: ResolvedLinkSource, @unchecked Sendable {  // listenerToken: written once in init
    private struct State {
        var settings: [Int32: LinkSettings] = [:]
        var defaultRouteOrder: [Int32] = []
    }

    private let state = Mutex(State())
    /// The interfaces as netlink reports them (names, existence).
    private let monitor: any InterfaceMonitor
    private var listenerToken: InterfaceListenerToken?
    /// Called after every change, off the lock.
    private let onChange: @Sendable () -> Void

    /// A table following `monitor`: a link that disappears loses its settings.
    package init(monitor: any InterfaceMonitor, onChange: @escaping @Sendable () -> Void = {}) {
        self.monitor = monitor
        self.onChange = onChange
        listenerToken = monitor.addListener { [weak self] event in
            if case .linkRemoved(let index, _) = event { self?.linkRemoved(index) }
        }
    }

    deinit {
        if let listenerToken { monitor.removeListener(listenerToken) }
    }

    // MARK: ResolvedLinkSource

    package var links: [ResolvedLink] {
        let names = Dictionary(monitor.interfaces.map { ($0.index, $0.name) }, uniquingKeysWith: { first, _ in first })
        return state.withLock { state in
            state.settings.keys.sorted().compactMap { index -> ResolvedLink? in
                guard let settings = state.settings[index], let name = names[index] else { return nil }
                return ResolvedLink(index: index, name: name, servers: settings.servers, domains: settings.domains,
                                    defaultRoute: settings.defaultRoute, dnsOverTLS: settings.dnsOverTLS)
            }
        }
    }

    package var defaultRouteOrder: [Int32] { state.withLock { $0.defaultRouteOrder } }

    // MARK: Reading

    /// The interface with `index`, or NoSuchLink (resolved: "Link %i not known"); index ≤ 0 is
    /// InvalidArgs "Invalid interface index".
    package func interface(_ index: Int32) throws(Resolve1Error) -> NetworkInterface {
        guard index > 0 else { throw .invalidArgs("Invalid interface index") }
        guard let found = monitor.interfaces.first(where: { $0.index == index }) else { throw .noSuchLink(index) }
        return found
    }

    /// The settings of `index` (empty when never set).
    package func settings(_ index: Int32) -> LinkSettings {
        state.withLock { $0.settings[index] ?? LinkSettings() }
    }

    /// All interfaces the monitor knows, for link object enumeration.
    package var interfaces: [NetworkInterface] { monitor.interfaces }

    // MARK: Writing (each checks the link exists first, as resolved's verify_unmanaged_link)

    /// SetLinkDNS / SetLinkDNSEx.
    package func setServers(_ index: Int32, _ servers: [ResolvedLinkServer]) throws(Resolve1Error) {
        _ = try interface(index)
        update(index) { $0.servers = servers }
    }

    /// SetLinkDomains: `(name, routingOnly)` pairs, validated as resolved does.
    package func setDomains(_ index: Int32, _ domains: [(String, Bool)]) throws(Resolve1Error) {
        _ = try interface(index)
        var parsed: [ResolvedLinkDomain] = []
        for (name, routingOnly) in domains {
            let normalized = try Self.normalizeDomain(name)
            if normalized.isEmpty && !routingOnly {
                throw .invalidArgs("Root domain is not suitable as search domain")
            }
            let domain = ResolvedLinkDomain(name: normalized, routingOnly: routingOnly)
            if !parsed.contains(domain) { parsed.append(domain) }
        }
        update(index) { $0.domains = parsed }
    }

    /// SetLinkDefaultRoute.
    package func setDefaultRoute(_ index: Int32, _ enabled: Bool) throws(Resolve1Error) {
        _ = try interface(index)
        update(index) { $0.defaultRoute = enabled }
    }

    /// SetLinkLLMNR / SetLinkMulticastDNS: "", "yes", "no", "resolve".
    package func setResolveSupport(_ index: Int32, multicast: Bool, _ mode: String) throws(Resolve1Error) {
        _ = try interface(index)
        guard ["", "yes", "no", "resolve"].contains(mode) else {
            throw .invalidArgs("Invalid \(multicast ? "MulticastDNS" : "LLMNR") setting: \(mode)")
        }
        update(index) { if multicast { $0.multicastDNS = mode } else { $0.llmnr = mode } }
    }

    /// SetLinkDNSOverTLS: "", "yes", "no", "opportunistic".
    package func setDNSOverTLS(_ index: Int32, _ mode: String) throws(Resolve1Error) {
        _ = try interface(index)
        guard ["", "yes", "no", "opportunistic"].contains(mode) else { throw .invalidArgs("Invalid DNSOverTLS setting: \(mode)") }
        update(index) { $0.dnsOverTLS = mode }
    }

    /// SetLinkDNSSEC: "", "yes", "no", "allow-downgrade".
    package func setDNSSEC(_ index: Int32, _ mode: String) throws(Resolve1Error) {
        _ = try interface(index)
        guard ["", "yes", "no", "allow-downgrade"].contains(mode) else { throw .invalidArgs("Invalid DNSSEC setting: \(mode)") }
        update(index) { $0.dnssec = mode }
    }

    /// SetLinkDNSSECNegativeTrustAnchors.
    package func setNegativeTrustAnchors(_ index: Int32, _ names: [String]) throws(Resolve1Error) {
        _ = try interface(index)
        var normalized: [String] = []
        for name in names {
            guard let value = try? Self.normalizeDomain(name), !value.isEmpty else {
                throw .invalidArgs("Invalid negative trust anchor domain: \(name)")
            }
            if !normalized.contains(value) { normalized.append(value) }
        }
        update(index) { $0.negativeTrustAnchors = normalized }
    }

    /// RevertLink: forget everything set on the link.
    package func revert(_ index: Int32) throws(Resolve1Error) {
        _ = try interface(index)
        update(index) { $0 = LinkSettings() }
    }

    /// Netlink said the link is gone: drop its settings (resolved frees the Link on RTM_DELLINK).
    func linkRemoved(_ index: Int32) {
        let removed = state.withLock { state -> Bool in
            state.defaultRouteOrder.removeAll { $0 == index }
            return state.settings.removeValue(forKey: index) != nil
        }
        if removed { onChange() }
    }

    private func update(_ index: Int32, _ body: (inout LinkSettings) -> Void) {
        state.withLock { state in
            var settings = state.settings[index] ?? LinkSettings()
            body(&settings)
            state.settings[index] = settings.isEmpty ? nil : settings
            // Go's defaultRouteSequence: a link joins at the end when it (re)gains servers.
            state.defaultRouteOrder.removeAll { $0 == index }
            if !settings.servers.isEmpty { state.defaultRouteOrder.append(index) }
        }
        onChange()
    }

    /// A domain as resolved stores it: lower case, no trailing dot, each label 1…63 octets of
    /// LDH or underscore, at most 253 octets; "." and "" are the root ("").
    static func normalizeDomain(_ name: String) throws(Resolve1Error) -> String {
        var text = name.lowercased()
        if text.hasSuffix(".") { text.removeLast() }
        if text.isEmpty { return "" }
        guard text.utf8.count <= 253 else { throw .invalidArgs("Invalid search domain \(name)") }
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count),
                  label.utf8.allSatisfy({ $0 >= 0x80 || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
                      || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
            else { throw .invalidArgs("Invalid search domain \(name)") }
        }
        return text
    }
}
