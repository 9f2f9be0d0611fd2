// The `resolved` DNS server (sing-box service/resolved/transport.go): queries go to the DNS servers a
// network manager set on a link through the `resolved` service's resolve1 API.
//
// 1. Pick the link: the one whose domain matches the query name with the most labels (resolved's
//    routing; Go takes the last match). A `~.` routing-only domain counts only with
//    `accept_default_resolvers`, as in Go.
// 2. With no match and `accept_default_resolvers`, the most recent default-route link with servers.
// 3. No link, or a link without servers: NXDOMAIN (Go's `FixedResponseStatus(RcodeNameError)`).
// 4. Names to try (Go's `nameList`, ndots 1): a single-label name gets the link's search domains first.
// 5. Each name goes to the link's servers in order, twice (Go: attempts 2), over UDP (TCP when
//    truncated) from sockets bound to the link's interface; the first answer wins.

package import Adapter
package import Config
import NIOCore
import Synchronization

/// A DNS server that forwards to per-link servers of a `resolved` service. Thread-safe.
package final class ResolvedTransport: DNSTransport {
    package let tag: String
    package var type: String { "resolved" }
    /// The service's links.
    private let source: any ResolvedLinkSource
    private let acceptDefaultResolvers: Bool
    private let context: AdapterContext
    /// Go: ndots 1, attempts 2 (its options are commented out in 1.12).
    private let ndots = 1
    private let attempts = 2
    /// Upstream transports per link, rebuilt when the link's servers or name change.
    private let upstreams = Mutex<[Int32: LinkUpstreams]>([:])

    private struct LinkUpstreams {
        var link: ResolvedLink
        var transports: [UDPTransport]
    }

    /// Finds the service tagged `options.service` in the box of `context`; throws sing-box's
    /// `service not found: <tag>` when there is none.
    package init(tag: String, options: ResolvedDNSServerOptions, context: AdapterContext) throws {
        guard let source = ResolvedLinkDirectory.lookup(tag: options.service, box: context.outbounds) else {
            throw AdapterError(.notFound, "service not found: \(options.service)")
        }
        self.tag = tag
        self.source = source
        self.acceptDefaultResolvers = options.acceptDefaultResolvers
        self.context = context
    }

    /// A transport over `source` directly (tests).
    package init(tag: String, source: any ResolvedLinkSource, acceptDefaultResolvers: Bool, context: AdapterContext) {
        self.tag = tag
        self.source = source
        self.acceptDefaultResolvers = acceptDefaultResolvers
        self.context = context
    }

    package func exchange(_ message: DNSMessage) async throws -> DNSMessage {
        guard let question = message.question else { throw DNSError.noQuestion }
        guard let link = selectLink(for: question.name.domain.lowercased()), !link.servers.isEmpty else {
            return DNSFixedResponse.status(message, rcode: .nameError)
        }
        let servers = try transports(for: link)
        let names = Self.nameList(link: link, ndots: ndots, name: question.name.domain)
        var lastError: any Error = DNSError.rcode(.nameError)
        for (position, name) in names.enumerated() {
            guard let fqdn = try? DNSName(name) else { continue }
            var query = message
            query.questions = [DNSQuestion(name: fqdn, type: question.type, class: question.class)]
            attempts: for _ in 0..<attempts {
                for server in servers {
                    do {
                        let response = try await server.exchange(query)
                        // resolved moves on to the next search domain on NXDOMAIN (Go stops at the
                        // first answer); the last name's answer stands whatever it is.
                        if response.rcode == .nameError && position < names.count - 1 {
                            lastError = DNSError.rcode(.nameError)
                            break attempts
                        }
                        return response
                    } catch {
                        lastError = error
                    }
                }
            }
        }
        if case DNSError.rcode(.nameError) = lastError { return DNSFixedResponse.status(message, rcode: .nameError) }
        throw lastError
    }

    package func close() async {
        let all = upstreams.withLock { table -> [UDPTransport] in
            defer { table.removeAll() }
            return table.values.flatMap(\.transports)
        }
        for transport in all { await transport.close() }
    }

    /// Steps 1–2 of the file comment; `name` is lower case without the trailing dot.
    func selectLink(for name: String) -> ResolvedLink? {
        let links = source.links
        var best: (link: ResolvedLink, labels: Int)?
        for link in links {
            for domain in link.domains where domain.matches(name) {
                if domain.name.isEmpty && domain.routingOnly && !acceptDefaultResolvers { continue }
                let labels = domain.name.isEmpty ? 0 : domain.name.split(separator: ".").count
                if best == nil || labels > best!.labels { best = (link, labels) }
            }
        }
        if let best { return best.link }
        guard acceptDefaultResolvers else { return nil }
        let byIndex = Dictionary(links.map { ($0.index, $0) }, uniquingKeysWith: { first, _ in first })
        for index in source.defaultRouteOrder.reversed() {
            if let link = byIndex[index], link.isDefaultRoute, !link.servers.isEmpty { return link }
        }
        return nil
    }

    /// Go's `TransportLink.nameList`: fully qualified names to try for `name`, search domains
    /// applied to names with fewer than `ndots` dots first (after it otherwise); `.onion` never.
    static func nameList(link: ResolvedLink, ndots: Int, name: String) -> [String] {
        let search = link.domains.filter { !$0.routingOnly && !$0.name.isEmpty }.map(\.name)
        guard !name.isEmpty, name.utf8.count < 254 else { return [] }
        func avoid(_ candidate: String) -> Bool { candidate.lowercased().hasSuffix(".onion") || candidate == "onion" }
        let hasNdots = name.utf8.count(where: { $0 == UInt8(ascii: ".") }) >= ndots
        var names: [String] = []
        if hasNdots && !avoid(name) { names.append(name + ".") }
        for suffix in search {
            let fqdn = "\(name).\(suffix)"
            if !avoid(fqdn) && fqdn.utf8.count < 254 { names.append(fqdn + ".") }
        }
        if !hasNdots && !avoid(name) { names.append(name + ".") }
        return names
    }

    /// The link's UDP transports, built on first use and rebuilt when its servers change (Go's
    /// `updateTransports`: a dialer bound to the link's interface).
    private func transports(for link: ResolvedLink) throws -> [UDPTransport] {
        var stale: [UDPTransport] = []
        let result = try upstreams.withLock { table throws -> [UDPTransport] in
            if let cached = table[link.index], cached.link.servers == link.servers, cached.link.name == link.name {
                return cached.transports
            }
            stale = table[link.index]?.transports ?? []
            var dialOptions = DialerOptions()
            dialOptions.bindInterface = link.name
            let dialer = try context.dialerFactory.makeDialer(dialOptions)
            let built = link.servers.map { server in
                UDPTransport(tag: tag, server: Destination(ip: server.address, port: server.effectivePort), dialer: dialer,
                             eventLoop: context.group.next(), attempts: 1)
            }
            table[link.index] = LinkUpstreams(link: link, transports: built)
            return built
        }
        if !stale.isEmpty {
            Task { for transport in stale { await transport.close() } }
        }
        return result
    }
}
