// RedirectListener: the TCP listener an nftables `redirect` sends connections to (the tun inbound's
// `auto_redirect`), and SO_ORIGINAL_DST to learn where each connection was going.
package import Adapter
package import NIOCore
import NIOPosix
import Glibc

/// Two listeners on one port, IPv4 `0.0.0.0` and IPv6 `::` (IPV6_V6ONLY): SO_ORIGINAL_DST is asked per
/// family (SOL_IP / SOL_IPV6), and on a dual-stack socket an IPv4 connection answers neither.
/// The caller owns `channels` and closes them.
package struct RedirectListener: Sendable {
    /// The listening channels (IPv4, then IPv6 when the host has IPv6).
    package let channels: [any Channel]
    /// The port both listen on.
    package let port: UInt16

    /// Binds a free port on both families. Each accepted child reaches `accept` once active, with
    /// `autoRead` off and a `FlowBufferHandler` holding early bytes (as `Listener.listenTCP`).
    /// Throws `listen tcp 0.0.0.0:0: …` as Go words listen errors.
    package static func bind(group: any EventLoopGroup, accept: @escaping @Sendable (any Channel) -> Void) async throws -> RedirectListener {
        func bootstrap(v6Only: Bool) -> ServerBootstrap {
            var bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(ChannelOptions.backlog, value: 1024)
                .childChannelOption(ChannelOptions.autoRead, value: false)
                .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandlers([FlowBufferHandler(), ActiveNotifier(accept)])
                    }
                }
            if v6Only { bootstrap = bootstrap.serverChannelOption(ChannelOptions.socketOption(.ipv6_v6only), value: 1) }
            return bootstrap
        }
        let v4: any Channel
        do {
            v4 = try await bootstrap(v6Only: false).bind(host: "0.0.0.0", port: 0).get()
        } catch {
            throw AdapterError(.other, "listen tcp 0.0.0.0:0: \(SocketLevelOption.describe(error, operation: "bind"))")
        }
        let port = UInt16(v4.localAddress?.port ?? 0)
        // A host without IPv6 (disabled by sysctl) keeps the IPv4 listener alone.
        if let v6 = try? await bootstrap(v6Only: true).bind(host: "::", port: Int(port)).get() {
            return RedirectListener(channels: [v4, v6], port: port)
        }
        return RedirectListener(channels: [v4], port: port)
    }

    /// Closes both listeners.
    package func close() async {
        for channel in channels { try? await channel.close() }
    }

    /// Where a redirected connection was going before nftables rewrote it (SO_ORIGINAL_DST, or
    /// IP6T_SO_ORIGINAL_DST on IPv6). Fails for a connection that was not redirected (ENOENT) or a
    /// channel that is not a kernel socket. Call on the channel's loop or any thread.
    package static func originalDestination(of channel: any Channel) -> EventLoopFuture<Destination> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(AdapterError(.other, "SO_ORIGINAL_DST: not a socket"))
        }
        let soOriginalDst: CInt = 80  // SO_ORIGINAL_DST = IP6T_SO_ORIGINAL_DST = 80 (linux/netfilter_ipv4.h)
        if case .v4? = channel.localAddress {
            let future: EventLoopFuture<sockaddr_in> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_IP), name: SocketOptionName(soOriginalDst))
            return future.flatMapThrowing { address in
                Destination(ip: .v4(UInt32(bigEndian: address.sin_addr.s_addr)), port: UInt16(bigEndian: address.sin_port))
            }
        }
        let future: EventLoopFuture<sockaddr_in6> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_IPV6), name: SocketOptionName(soOriginalDst))
        return future.flatMapThrowing { address in
            let bytes = withUnsafeBytes(of: address.sin6_addr) { Array($0) }
            guard let ip = IPAddress(bytes: bytes) else { throw AdapterError(.other, "SO_ORIGINAL_DST: bad address") }
            return Destination(ip: ip.unmapped, port: UInt16(bigEndian: address.sin6_port))
        }
    }
}
