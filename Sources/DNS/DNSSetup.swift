// Building the DNS parts of a box from the 1.12 `dns` options (sing-box dns/transport_manager.go and
// NewClient), without DNS rules: every lookup and hijacked query goes to the default server
// (`final`, else the first server that is not fakeip; with no servers, a `local` one).
//
// Config has its own text-based IPAddress/IPPrefix/DomainStrategy; Adapter's are the runtime values.
// Both modules are imported here, so every use is qualified.

package import Adapter
package import Config
import NIOCore

/// The client, transports, resolver and hijack handler built from `dns` options. The box points its
/// resolver switch at `resolver`, gives `hijacker` to the router and closes `lifecycle` last.
package struct DNSSetup: Sendable {
    package let client: DNSClient
    package let transports: [any DNSTransport]
    package let resolver: DNSTransportResolver
    package let hijacker: DNSHijackHandler
    package let lifecycle: DNSTransportLifecycle

    /// Builds everything; throws `AdapterError` with sing-box's wording for what cannot be built
    /// (`default DNS server not found: x`, `not implemented: tls`, …).
    package init(options: Config.DNSOptions, context: AdapterContext) throws {
        // DNS rules are not evaluated yet: refuse them rather than answer past them (TODO(#5)).
        guard options.rules.isEmpty else { throw AdapterError.notImplemented("dns rules") }
        let logger = context.logger("dns")
        var clientOptions = DNSClientOptions(disableCache: options.disableCache, disableExpire: options.disableExpire,
                                             independentCache: options.independentCache,
                                             cacheCapacity: Int(options.cacheCapacity ?? 1024))
        if let subnet = options.clientSubnet {
            clientOptions.clientSubnet = Adapter.IPPrefix(subnet.prefix.description)
        }
        client = DNSClient(options: clientOptions, logger: logger)
        var built: [any DNSTransport] = []
        var fakeIPCount = 0
        for server in options.servers {
            let transport = try Self.makeTransport(server, context: context)
            if transport is FakeIPTransport {
                fakeIPCount += 1
                guard fakeIPCount == 1 else { throw AdapterError(.other, "multiple fakeip server are not supported") }
            }
            built.append(transport)
        }
        // The default server: `final`, else the first that is not fakeip, else a local one.
        let defaultTransport: any DNSTransport
        if let final = options.final, !final.isEmpty {
            guard let found = built.first(where: { $0.tag == final }) else {
                throw AdapterError(.notFound, "default DNS server not found: \(final)")
            }
            guard !(found is FakeIPTransport) else { throw AdapterError(.other, "default server cannot be fakeip") }
            defaultTransport = found
        } else if let first = built.first(where: { !($0 is FakeIPTransport) }) {
            defaultTransport = first
        } else {
            let local = LocalTransport(tag: "local", dialer: try context.dialerFactory.makeDialer(DialerOptions()),
                                       eventLoop: context.group.next())
            built.append(local)
            defaultTransport = local
        }
        transports = built
        let strategy = options.strategy.flatMap { Adapter.DomainStrategy(rawValue: $0.rawValue) } ?? .asIs
        guard let resolver = DNSTransportResolver(client: client, transports: built, defaultTag: defaultTransport.tag,
                                                  defaultStrategy: strategy) else {
            throw AdapterError(.notFound, "default DNS server not found: \(defaultTransport.tag)")
        }
        self.resolver = resolver
        let client = self.client
        hijacker = DNSHijackHandler(logger: logger) { message, _ in
            try await client.exchange(message, transport: defaultTransport, options: DNSQueryOptions(strategy: strategy))
        }
        lifecycle = DNSTransportLifecycle(transports: built)
    }

    /// One server from its options. udp/tcp need an IP address as `server` (a domain needs
    /// `domain_resolver`, not built yet); tls, https, quic, h3, dhcp, resolved and tailscale are not
    /// implemented in this module.
    package static func makeTransport(_ server: DNSServerOptions, context: AdapterContext) throws -> any DNSTransport {
        let loop = context.group.next()
        switch server.options {
        case .udp(let remote), .tcp(let remote):
            guard let address = Adapter.IPAddress(remote.server) else {
                throw AdapterError(.notImplemented, "dns server[\(server.tag)]: server address is not an IP address: \(remote.server)")
            }
            let destination = Destination(ip: address, port: remote.serverPort ?? 53)
            let dialer = try context.dialerFactory.makeDialer(remote.dial)
            if case .udp = server.options {
                return UDPTransport(tag: server.tag, server: destination, dialer: dialer, eventLoop: loop)
            }
            return TCPTransport(tag: server.tag, server: destination, dialer: dialer, eventLoop: loop)
        case .local(let dial):
            return LocalTransport(tag: server.tag, dialer: try context.dialerFactory.makeDialer(dial), eventLoop: loop)
        case .hosts(let hosts):
            let predefined = (hosts.predefined ?? []).map { entry in
                (entry.name, entry.addresses.compactMap { Adapter.IPAddress($0.text) })
            }
            do {
                return try HostsTransport(tag: server.tag, paths: hosts.path, predefined: predefined)
            } catch {
                throw AdapterError(.other, "dns server[\(server.tag)]: predefined: \(error)")
            }
        case .fakeip(let fakeIP):
            let store = FakeIPStore(inet4Range: fakeIP.inet4Range.flatMap { Adapter.IPPrefix($0.description) },
                                    inet6Range: fakeIP.inet6Range.flatMap { Adapter.IPPrefix($0.description) })
            return FakeIPTransport(tag: server.tag, store: store)
        case .resolved(let resolved):
            return try ResolvedTransport(tag: server.tag, options: resolved, context: context)
        default:
            throw AdapterError.notImplemented(server.type)
        }
    }
}

/// Closes every transport when the box closes (sockets, pending queries).
package final class DNSTransportLifecycle: Lifecycle {
    private let transports: [any DNSTransport]

    package init(transports: [any DNSTransport]) { self.transports = transports }

    package func close() async throws {
        for transport in transports { await transport.close() }
    }
}
