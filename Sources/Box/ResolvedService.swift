// The `resolved` service (sing-box 1.12 service/resolved): a drop-in for systemd-resolved.
//
// Built from `ResolvedServiceOptions` (listen, default 127.0.0.53:53). Start stages:
// 1. initialize: netlink monitor (links that vanish lose their DNS settings), the system bus
//    connection with the resolve1 objects and the bus name (fails as Go does when resolved runs).
// 2. start: the stub listener (UDP and TCP), the varlink socket, stub-resolv.conf and resolv.conf.
// Queries from all of them go through the box's DNS router: the stub's and the D-Bus/varlink ones
// are handed to the router's `hijack-dns` handler over an in-memory UDP flow (`RouterExchange`), so
// DNS rules, fakeip and the cache apply exactly as for hijacked traffic. The stub's UDP queries are
// first looked up in the router's cache (answered on the socket's loop, nothing else built), else take
// that flow on the socket's own event loop (no task hop); the rest go through async `exchange`.
// FlushCaches, CacheStatistics and ResetStatistics reach the router's DNS client through the box's
// resolver switch.
//
// The runtime directory (stub-resolv.conf, resolv.conf, io.systemd.Resolve) is
// /run/systemd/resolve unless SING_BOX_RESOLVED_DIRECTORY names another (tests, side-by-side runs);
// Go's options have no field for it.
import Adapter
import Config
import DNS
import Glibc
import Netlink
import NIOCore
import Resolve1
import Router

/// The `resolved` service. Built by the registry; the box starts and closes it.
final class ResolvedService: Service, @unchecked Sendable {  // mutable parts touched only by start/close (one control task)
    let type = "resolved"
    let tag: String
    private let context: AdapterContext
    private let listen: Destination
    private let directory: String
    private let monitor: NetlinkInterfaceMonitor
    private let links: LinkTable
    private let queries: ResolveQueries
    private let writer: ResolvConfWriter
    private let logger: ContextLogger
    private var loop: BusLoop?
    private var bus: Resolve1Bus?
    private var stub: DNSStubListener?
    private var varlink: VarlinkServer?

    /// Registers the `resolved` service type.
    static func register(in registry: AdapterRegistry) {
        registry.register(service: "resolved") { context, options in
            guard case .resolved(let resolved) = options.options else {
                throw AdapterError(.other, "service[\(options.tag)]: not a resolved service")
            }
            return try ResolvedService(context: context, tag: options.tag, options: resolved)
        }
    }

    init(context: AdapterContext, tag: String, options: ResolvedServiceOptions) throws {
        // One bus name, one stub: Go refuses a second service of this type in a box.
        guard ResolvedLinkDirectory.tags(box: context.outbounds).isEmpty else {
            throw AdapterError(.other, "multiple resolved service are not supported")
        }
        self.context = context
        self.tag = tag
        let address = options.listen.listen.flatMap { Adapter.IPAddress($0.text) } ?? Adapter.IPAddress("127.0.0.53")!
        listen = Destination(ip: address, port: options.listen.listenPort ?? 53)
        directory = ProcessEnvironment.value("SING_BOX_RESOLVED_DIRECTORY") ?? Resolve1Module.defaultRuntimeDirectory
        logger = context.logger("service/resolved[\(tag)]")
        monitor = try NetlinkInterfaceMonitor()
        let writer = ResolvConfWriter(directory: directory, stubAddress: address.description)
        self.writer = writer
        let logger = self.logger
        // Every link change rewrites the resolv.conf files, as resolved's manager_write_resolv_conf.
        let linksBox = LinkTableBox()
        links = LinkTable(monitor: monitor) {
            guard let table = linksBox.table else { return }
            do { try writer.write(links: table.links) } catch { logger.error("write resolv.conf: \(error)") }
        }
        linksBox.table = links
        queries = ResolveQueries(backend: RouterExchange(context: context, tag: tag, listen: listen))
        // The `resolved` DNS server finds us here (Go: serviceManager.Get(tag)).
        ResolvedLinkDirectory.register(links, tag: tag, box: context.outbounds)
    }

    func start(_ stage: StartStage) async throws {
        switch stage {
        case .initialize:
            try monitor.start()
            let loop = try BusLoop()
            self.loop = loop
            let bus = Resolve1Bus(loop: loop, links: links, queries: queries,
                                  info: ManagerInfo(stubListener: "yes", runtimeDirectory: directory))
            try bus.register()
            self.bus = bus
            try loop.start()
        case .start:
            let stub = DNSStubListener(address: listen, queries: queries)
            self.stub = stub
            try await stub.start(group: context.group)
            let varlink = VarlinkServer(path: "\(directory)/io.systemd.Resolve", queries: queries)
            self.varlink = varlink
            try writer.write(links: links.links)
            try await varlink.bind(group: context.group)
            logger.info("resolve1 on the system bus, stub at \(listen), varlink at \(varlink.path)")
        default:
            break
        }
    }

    func close() async throws {
        await stub?.close()
        await varlink?.close()
        loop?.stop()
        monitor.stop()
        ResolvedLinkDirectory.unregister(links)
    }
}

/// Lets the LinkTable's change callback reach the table it belongs to without a retain cycle.
private final class LinkTableBox: @unchecked Sendable {  // written once, before the first callback
    weak var table: LinkTable?
}

/// Reads the process environment (Foundation-free).
enum ProcessEnvironment {
    static func value(_ name: String) -> String? {
        guard let pointer = getenv(name) else { return nil }
        let text = String(cString: pointer)
        return text.isEmpty ? nil : text
    }
}

/// Answers queries through the router's `hijack-dns` handler over an in-memory UDP flow, so the
/// DNS router's rules and cache apply. Queries without EDNS get a 65535-octet OPT for the trip (the
/// handler cuts answers to the query's EDNS size) which is removed from the answer again.
struct RouterExchange: ResolveBackend {
    let context: AdapterContext
    let tag: String
    let listen: Destination
    /// How long a query may wait for the router (sing-box's `C.DNSTimeout`).
    static let timeout = TimeAmount.seconds(10)

    func exchange(_ query: DNSMessage) async throws -> DNSMessage {
        guard let hijacker = (context.router as? FlowRouter)?.dnsHijacker else {
            throw AdapterError(.other, "DNS router not available")
        }
        let addedEDNS = query.edns == nil
        // Cached: no flow, no hop to a loop.
        if var cached = cachedAnswer(query) {
            if addedEDNS { cached.edns = nil }
            return cached
        }
        var outgoing = query
        if addedEDNS { outgoing.edns = DNSEDNS(udpPayloadSize: 65_535) }
        let wire = try outgoing.encoded()
        let loop = context.group.next()
        let connection = MemoryPacketConnection(eventLoop: loop)
        let metadata = FlowMetadata(inbound: tag, inboundType: "resolved", network: .udp,
                                    source: Destination(ip: listen.ip ?? Adapter.IPAddress("127.0.0.53")!, port: 0),
                                    destination: listen)
        let listen = self.listen
        try await loop.submit {
            hijacker.hijackUDP(connection, metadata: metadata)
            connection.deliver(ByteBuffer(bytes: wire), from: listen)
        }.get()
        let timeout = loop.scheduleTask(in: Self.timeout) { connection.close() }
        defer {
            timeout.cancel()
            loop.execute { connection.close() }
        }
        guard let reply = try await connection.reply.futureResult.get() else { throw DNSError.timeout }
        var response = try DNSMessage(parsing: reply)
        if addedEDNS { response.edns = nil }
        return response
    }

    func exchangeDatagram(_ query: ByteBuffer, on loop: any EventLoop) -> EventLoopFuture<ByteBuffer?> {
        guard let hijacker = (context.router as? FlowRouter)?.dnsHijacker else { return loop.makeSucceededFuture(nil) }
        let connection = MemoryPacketConnection(eventLoop: loop)
        let metadata = FlowMetadata(inbound: tag, inboundType: "resolved", network: .udp,
                                    source: Destination(ip: listen.ip ?? Adapter.IPAddress("127.0.0.53")!, port: 0),
                                    destination: listen)
        hijacker.hijackUDP(connection, metadata: metadata)
        connection.deliver(query, from: listen)
        let timeout = loop.scheduleTask(in: Self.timeout) { connection.close() }
        return connection.reply.futureResult.always { _ in
            timeout.cancel()
            connection.close()
        }
    }

    /// The DNS client whose cache the router uses: the box's resolver switch points at the DNS
    /// router (or, in boxes built without one, a plain transport resolver).
    private var dnsClient: DNSClient? {
        guard let resolverSwitch = context.resolver as? ResolverSwitch else { return nil }
        switch resolverSwitch.current {
        case let router as DNSRouter: return router.client
        case let resolver as DNSTransportResolver: return resolver.client
        default: return nil
        }
    }

    func cachedAnswer(_ query: DNSMessage) -> DNSMessage? {
        guard let resolverSwitch = context.resolver as? ResolverSwitch,
              let router = resolverSwitch.current as? DNSRouter else { return nil }
        return router.cachedAnswer(to: query)
    }

    func flushCaches() {
        dnsClient?.clearCache()
    }

    var cacheStatistics: DNSCache.Statistics {
        dnsClient?.cache?.statistics ?? DNSCache.Statistics(size: 0, hits: 0, misses: 0)
    }

    func resetCacheStatistics() {
        dnsClient?.cache?.resetStatistics()
    }
}

/// One query's flow: the query goes in through `deliver`, the first datagram written back
/// completes `reply`. Loop-confined to `eventLoop`.
final class MemoryPacketConnection: PacketConnection, @unchecked Sendable {
    let eventLoop: any EventLoop
    let reply: EventLoopPromise<ByteBuffer?>
    private let closed: EventLoopPromise<Void>
    private var receiver: (any PacketReceiver)?
    private var isClosed = false
    private var hasReply = false

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        reply = eventLoop.makePromise()
        closed = eventLoop.makePromise()
    }

    var closeFuture: EventLoopFuture<Void> { closed.futureResult }

    func deliver(_ payload: ByteBuffer, from destination: Destination) {
        receiver?.packetReceived(payload, from: destination)
    }

    func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        guard !hasReply else { return }
        hasReply = true
        reply.succeed(payload)
    }

    func flush() {}

    func setReceiver(_ receiver: any PacketReceiver) { self.receiver = receiver }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        if !hasReply {
            hasReply = true
            reply.succeed(nil)
        }
        receiver?.packetConnectionClosed()
        receiver = nil
        closed.succeed()
    }
}
