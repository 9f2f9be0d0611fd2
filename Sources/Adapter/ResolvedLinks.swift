// ResolvedLinks: per-link DNS settings that network managers push over resolve1 (SetLinkDNS,
// SetLinkDomains, SetLinkDefaultRoute …), as the `resolved` service keeps them and the `resolved`
// DNS server reads them. Appliance/Resolve1 implements the source; DNS consumes it. Neither imports
// the other: the service registers itself here under its tag, the transport looks it up on its first
// query (Go's transport does `serviceManager.Get(tag)` at start).
import Synchronization

/// One DNS server of a link (resolve1 `SetLinkDNS` `(iay)` or `SetLinkDNSEx` `(iayqs)`).
package struct ResolvedLinkServer: Hashable, Sendable, CustomStringConvertible {
    /// The server's address.
    package var address: IPAddress
    /// The port; 0 means 53 (resolved stores 0 for "default").
    package var port: UInt16
    /// The TLS server name (SetLinkDNSEx), empty when not given.
    package var serverName: String

    /// A server; port 0 and an empty name mean "not given".
    package init(address: IPAddress, port: UInt16 = 0, serverName: String = "") {
        self.address = address
        self.port = port
        self.serverName = serverName
    }

    /// The port queries go to.
    package var effectivePort: UInt16 { port == 0 ? 53 : port }

    /// `192.0.2.1`, `[2001:db8::1]:5353#name`, as resolvectl prints DNSEx entries.
    package var description: String {
        var text = address.description
        if port != 0 { text = address.isIPv4 ? "\(text):\(port)" : "[\(text)]:\(port)" }
        if !serverName.isEmpty { text += "#\(serverName)" }
        return text
    }
}

/// One domain of a link: a search domain, or routing-only (`~example.com`; `~.` = the default route).
package struct ResolvedLinkDomain: Hashable, Sendable {
    /// The domain in lower case without a trailing dot; "" is the root (`.`).
    package var name: String
    /// Only routes queries to the link, never appended to single-label names.
    package var routingOnly: Bool

    /// A domain; `name` must already be normalized (lower case, no trailing dot).
    package init(name: String, routingOnly: Bool) {
        self.name = name
        self.routingOnly = routingOnly
    }

    /// Whether `queryName` (lower case, no trailing dot) is this domain or lies below it, on a label
    /// boundary (resolved's `dns_name_endswith`).
    package func matches(_ queryName: String) -> Bool {
        if name.isEmpty { return true }
        if queryName == name { return true }
        return queryName.hasSuffix("." + name)
    }
}

/// The DNS state of one link as resolved keeps it.
package struct ResolvedLink: Hashable, Sendable {
    /// The kernel's interface index.
    package var index: Int32
    /// The interface name (for binding sockets to it).
    package var name: String
    /// Servers in the order they were set.
    package var servers: [ResolvedLinkServer]
    /// Search and routing-only domains in the order they were set.
    package var domains: [ResolvedLinkDomain]
    /// `SetLinkDefaultRoute`; nil when never set (resolved then decides: true unless the link has
    /// routing-only domains and no `~.`).
    package var defaultRoute: Bool?
    /// `SetLinkDNSOverTLS` mode ("" when unset, else "yes", "no", "opportunistic").
    package var dnsOverTLS: String

    /// A link's state as the service reports it.
    package init(index: Int32, name: String, servers: [ResolvedLinkServer] = [], domains: [ResolvedLinkDomain] = [],
                 defaultRoute: Bool? = nil, dnsOverTLS: String = "") {
        self.index = index
        self.name = name
        self.servers = servers
        self.domains = domains
        self.defaultRoute = defaultRoute
        self.dnsOverTLS = dnsOverTLS
    }

    /// resolved's `link_get_default_route`: the explicit setting, else true unless the link has a
    /// routing-only domain (and no `~.`, which says "default route" itself).
    package var isDefaultRoute: Bool {
        if let defaultRoute { return defaultRoute }
        if domains.contains(where: { $0.routingOnly && $0.name.isEmpty }) { return true }
        return !domains.contains(where: \.routingOnly)
    }
}

/// Where the `resolved` service publishes link state. Thread-safe; reads are snapshots.
package protocol ResolvedLinkSource: AnyObject, Sendable {
    /// Every link with any DNS setting, ordered by interface index.
    var links: [ResolvedLink] { get }
    /// Indexes of links in the order they became default-route links (Go's
    /// `defaultRouteSequence`; the most recent last).
    var defaultRouteOrder: [Int32] { get }
}

/// Finds a box's `resolved` service by tag. Scoped by the box's `OutboundManager` (one per box), so
/// two boxes in one process do not see each other's services.
package enum ResolvedLinkDirectory {
    private struct Entry {
        weak var box: OutboundManager?
        weak var source: (any ResolvedLinkSource)?
        var tag: String
    }

    private static let entries = Mutex<[Entry]>([])

    /// Publishes `source` as the service tagged `tag` of the box owning `box`.
    package static func register(_ source: any ResolvedLinkSource, tag: String, box: OutboundManager) {
        entries.withLock { list in
            list.removeAll { $0.box == nil || $0.source == nil || ($0.box === box && $0.tag == tag) }
            list.append(Entry(box: box, source: source, tag: tag))
        }
    }

    /// Withdraws a source (the service closed).
    package static func unregister(_ source: any ResolvedLinkSource) {
        entries.withLock { list in list.removeAll { $0.source == nil || $0.source === source } }
    }

    /// Tags of the sources registered in the box owning `box`.
    package static func tags(box: OutboundManager) -> [String] {
        entries.withLock { list in list.filter { $0.box === box && $0.source != nil }.map(\.tag) }
    }

    /// The source registered as `tag` in the box owning `box`.
    package static func lookup(tag: String, box: OutboundManager) -> (any ResolvedLinkSource)? {
        entries.withLock { list in list.first { $0.box === box && $0.tag == tag }?.source }
    }
}
