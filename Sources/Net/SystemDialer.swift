// SystemDialer: the default `Dialer` — kernel TCP and UDP sockets with sing-box's dial fields.
//
// 1. A domain is resolved through the dialer's `DNSResolver` with its `domain_strategy`.
// 2. Addresses split into a primary family and a fallback family (happy eyeballs, RFC 8305 in
//    spirit, as sing's `DialParallel`): the primary family is tried address by address; the
//    fallback family starts after `fallback_delay` (300 ms default) or as soon as the primary fails.
// 3. The first connected socket wins; the loser is closed.
// 4. Every socket gets the dial fields before connect: SO_BINDTODEVICE, SO_MARK, bind address,
//    TCP_FASTOPEN_CONNECT, SO_REUSEADDR; connect_timeout bounds each attempt.
package import Adapter
package import NIOCore
import NIOPosix
import Glibc

/// The dial fields of sing-box's `DialerOptions` that reach a kernel socket, already validated.
package struct DialParameters: Sendable, Equatable {
    /// `bind_interface`: SO_BINDTODEVICE.
    package var bindInterface: String?
    /// `inet4_bind_address`.
    package var inet4BindAddress: IPAddress?
    /// `inet6_bind_address`.
    package var inet6BindAddress: IPAddress?
    /// `routing_mark`: SO_MARK (needs CAP_NET_ADMIN).
    package var routingMark: UInt32?
    /// `reuse_addr`.
    package var reuseAddress: Bool
    /// `connect_timeout`; sing-box's default is 5 s (`C.TCPConnectTimeout`).
    package var connectTimeout: TimeAmount
    /// `tcp_fast_open`: TCP_FASTOPEN_CONNECT, the SYN carries the first write.
    package var tcpFastOpen: Bool
    /// `domain_strategy` for domain destinations.
    package var domainStrategy: DomainStrategy
    /// `fallback_delay`; 300 ms default (Go's `N.DefaultFallbackDelay`).
    package var fallbackDelay: TimeAmount
    /// `domain_resolver.server`: the DNS server tag for lookups.
    package var resolverServer: String?

    package init(bindInterface: String? = nil, inet4BindAddress: IPAddress? = nil, inet6BindAddress: IPAddress? = nil,
                 routingMark: UInt32? = nil, reuseAddress: Bool = false, connectTimeout: TimeAmount = .seconds(5),
                 tcpFastOpen: Bool = false, domainStrategy: DomainStrategy = .asIs,
                 fallbackDelay: TimeAmount = .milliseconds(300), resolverServer: String? = nil) {
        self.bindInterface = bindInterface
        self.inet4BindAddress = inet4BindAddress
        self.inet6BindAddress = inet6BindAddress
        self.routingMark = routingMark
        self.reuseAddress = reuseAddress
        self.connectTimeout = connectTimeout
        self.tcpFastOpen = tcpFastOpen
        self.domainStrategy = domainStrategy
        self.fallbackDelay = fallbackDelay
        self.resolverServer = resolverServer
    }
}

/// Dials kernel sockets. Thread-safe value; every socket it makes is owned by the caller.
package struct SystemDialer: Dialer {
    package var parameters: DialParameters
    package var resolver: any DNSResolver
    /// `auto_detect_interface`: without `bindInterface`, each new socket binds to this tracker's current
    /// interface, so a changed default route takes effect on the next dial.
    package var defaultInterface: DefaultInterfaceTracker?

    package init(parameters: DialParameters = DialParameters(), resolver: any DNSResolver = SystemResolver(),
                 defaultInterface: DefaultInterfaceTracker? = nil) {
        self.parameters = parameters
        self.resolver = resolver
        self.defaultInterface = defaultInterface
    }

    // MARK: TCP

    package func dialTCP(to destination: Destination, on eventLoop: any EventLoop) async throws -> any Channel {
        let addresses = try await resolve(destination.host, strategy: parameters.domainStrategy)
        return try await dialParallel(addresses, port: destination.port, on: eventLoop,
                                      preferIPv6: parameters.domainStrategy == .preferIPv6).get()
    }

    /// Connects to already-resolved `addresses` (the router's `resolve` action) with happy eyeballs.
    package func dialTCP(addresses: [IPAddress], port: UInt16, on eventLoop: any EventLoop) async throws -> any Channel {
        let ordered = parameters.domainStrategy.apply(addresses)
        guard !ordered.isEmpty else { throw AdapterError(.notFound, "no address to dial") }
        return try await dialParallel(ordered, port: port, on: eventLoop,
                                      preferIPv6: parameters.domainStrategy == .preferIPv6).get()
    }

    /// This dialer with a flow's `route-options` applied (domain strategy, fallback delay).
    package func adjusted(for metadata: FlowMetadata) -> SystemDialer {
        var copy = self
        if let strategy = metadata.domainStrategy { copy.parameters.domainStrategy = strategy }
        if let delay = metadata.fallbackDelay { copy.parameters.fallbackDelay = delay }
        return copy
    }

    /// Resolves `host` to an ordered address list (an IP stays as is).
    package func resolve(_ host: Host, strategy: DomainStrategy) async throws -> [IPAddress] {
        switch host {
        case .ip(let ip):
            return [ip]
        case .domain(let domain):
            let options = DNSLookupOptions(server: parameters.resolverServer, strategy: strategy)
            let found = try await resolver.lookup(domain, options: options)
            let ordered = strategy.apply(found)
            guard !ordered.isEmpty else { throw AdapterError(.notFound, "lookup \(domain): no such host") }
            return ordered
        }
    }

    /// Happy eyeballs over `addresses`: the family of the first address (or IPv6 when preferred)
    /// goes first, the other after `fallbackDelay` or when the first family is exhausted.
    func dialParallel(_ addresses: [IPAddress], port: UInt16, on loop: any EventLoop,
                      preferIPv6: Bool) -> EventLoopFuture<any Channel> {
        let firstIsV6 = preferIPv6 ? addresses.contains { !$0.unmapped.isIPv4 } : !(addresses.first?.unmapped.isIPv4 ?? true)
        let primary = addresses.filter { $0.unmapped.isIPv4 != firstIsV6 }
        let fallback = addresses.filter { $0.unmapped.isIPv4 == firstIsV6 }
        if fallback.isEmpty || primary.isEmpty {
            return dialSerial(primary.isEmpty ? fallback : primary, port: port, on: loop)
        }
        let race = HappyEyeballsRace(loop: loop)
        let startFallback: @Sendable () -> Void = { [self] in
            guard race.startFallbackOnce() else { return }
            race.attach(self.dialSerial(fallback, port: port, on: loop))
        }
        race.attach(dialSerial(primary, port: port, on: loop), onFailure: startFallback)
        let timer = loop.scheduleTask(in: parameters.fallbackDelay) { startFallback() }
        race.result.futureResult.whenComplete { _ in timer.cancel() }
        return race.result.futureResult
    }

    /// Tries `addresses` one after another; fails with the last error.
    func dialSerial(_ addresses: [IPAddress], port: UInt16, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        guard let first = addresses.first else {
            return loop.makeFailedFuture(AdapterError(.notFound, "no address to dial"))
        }
        let rest = Array(addresses.dropFirst())
        return connect(first, port: port, on: loop).flatMapError { error in
            if rest.isEmpty { return loop.makeFailedFuture(error) }
            return self.dialSerial(rest, port: port, on: loop)
        }
    }

    /// One TCP connect with every dial field applied. The channel comes back with autoRead off and
    /// a `FlowBufferHandler` in its pipeline (removed by `Relay.start`).
    func connect(_ ip: IPAddress, port: UInt16, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(parameters.connectTimeout)
            .channelOption(ChannelOptions.autoRead, value: false)
            // A server that answers and hangs up before the relay exists: without half-closure NIO
            // closes on EOF and the teardown drops what FlowBufferHandler held (bench/socks.sh saw
            // ~5% of short connections lose their reply).
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
        if parameters.reuseAddress {
            bootstrap = bootstrap.channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        }
        if let mark = parameters.routingMark {
            bootstrap = bootstrap.channelOption(SocketLevelOption.mark, value: Int(Int32(bitPattern: mark)))
        }
        if parameters.tcpFastOpen {
            bootstrap = bootstrap.channelOption(SocketLevelOption.fastOpenConnect, value: 1)
        }
        if let bind = ip.unmapped.isIPv4 ? parameters.inet4BindAddress : parameters.inet6BindAddress {
            bootstrap = bootstrap.bind(to: SocketAddress(ip: bind, port: 0))
        }
        let device = parameters.bindInterface ?? defaultInterface?.current
        bootstrap = bootstrap.channelInitializer { channel in
            // Bytes the server sends (and its FIN) before the relay exists wait here.
            let buffered = channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(FlowBufferHandler())
            }
            guard let device else { return buffered }
            return buffered.flatMap { SocketLevelOption.bindToDevice(channel, device) }
        }
        return bootstrap.connect(to: SocketAddress(ip: ip, port: port)).map { $0 as any Channel }
            .flatMapErrorThrowing { error in
                throw AdapterError(.other, "dial tcp \(Destination(ip: ip, port: port)): \(SocketLevelOption.describe(error))")
            }
    }

    // MARK: UDP

    package func listenPacket(on eventLoop: any EventLoop) async throws -> any PacketConnection {
        var parameters = parameters
        if parameters.bindInterface == nil { parameters.bindInterface = defaultInterface?.current }
        return try await DatagramPacketConnection.open(on: eventLoop, parameters: parameters, resolver: resolver).get()
    }
}

/// First-success race between two dial attempts, on one loop.
final class HappyEyeballsRace: @unchecked Sendable {
    let loop: any EventLoop
    let result: EventLoopPromise<any Channel>
    private var pending = 0
    private var fallbackStarted = false
    private var lastError: (any Error)?
    private var settled = false

    init(loop: any EventLoop) {
        self.loop = loop
        self.result = loop.makePromise()
    }

    /// Returns true once: the caller starts the fallback attempt.
    func startFallbackOnce() -> Bool {
        loop.preconditionInEventLoop()
        guard !fallbackStarted, !settled else { return false }
        fallbackStarted = true
        return true
    }

    func attach(_ attempt: EventLoopFuture<any Channel>, onFailure: (@Sendable () -> Void)? = nil) {
        pending += 1
        attempt.hop(to: loop).whenComplete { [self] outcome in
            pending -= 1
            switch outcome {
            case .success(let channel):
                if settled {
                    channel.close(promise: nil)  // the other family won
                } else {
                    settled = true
                    result.succeed(channel)
                }
            case .failure(let error):
                lastError = error
                if let onFailure, !settled { onFailure() }
                if pending == 0, !settled, fallbackStarted || onFailure == nil {
                    settled = true
                    result.fail(error)
                }
            }
        }
    }
}

/// Socket options NIO has no names for, applied through NIO's option plumbing.
enum SocketLevelOption {
    static let mark = ChannelOptions.Types.SocketOption(level: .init(rawValue: SOL_SOCKET), name: .init(rawValue: 36 /* SO_MARK */))
    static let fastOpenConnect = ChannelOptions.Types.SocketOption(
        level: .init(rawValue: Int32(IPPROTO_TCP)), name: .init(rawValue: 30 /* TCP_FASTOPEN_CONNECT */))

    /// SO_BINDTODEVICE takes the interface name, NUL-padded to IFNAMSIZ (16).
    static func bindToDevice(_ channel: any Channel, _ device: String) -> EventLoopFuture<Void> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(AdapterError(.other, "bind_interface: channel has no socket"))
        }
        var name: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &name) { raw in
            for (i, byte) in device.utf8.prefix(15).enumerated() { raw[i] = byte }
        }
        return provider.unsafeSetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(25 /* SO_BINDTODEVICE */), value: name)
    }

    static let fastOpenQueue = ChannelOptions.Types.SocketOption(
        level: .init(rawValue: Int32(IPPROTO_TCP)), name: .init(rawValue: 23 /* TCP_FASTOPEN */))

    /// Go-like text for a kernel error: `connect: connection refused`, `i/o timeout`.
    static func describe(_ error: any Error, operation: String = "connect") -> String {
        if let io = error as? IOError {
            return "\(operation): " + String(cString: strerror(io.errnoCode)).lowercased()
        }
        if let channelError = error as? ChannelError, case .connectTimeout = channelError { return "i/o timeout" }
        if let connection = error as? NIOConnectionError, let first = connection.connectionErrors.first {
            return describe(first.error, operation: operation)
        }
        return "\(error)"
    }
}
