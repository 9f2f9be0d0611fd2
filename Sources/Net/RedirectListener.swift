// RedirectListener: the TCP listener an nftables `redirect` sends connections to (the tun inbound's
// `auto_redirect`), and SO_ORIGINAL_DST to learn where each connection was going.
package import Adapter
package import NIOCore
import NIOPosix
import Glibc

/// One dual-stack listener on `::`. SO_ORIGINAL_DST is asked per family of the connection: SOL_IP for
/// IPv4 (also on the dual-stack socket, where Linux passes SOL_IP options of a v4-mapped connection to
/// the IPv4 code), SOL_IPV6 for IPv6. The caller owns `channels` and closes them.
package struct RedirectListener: Sendable {
    /// The listening channel (`::`, or `0.0.0.0` on a host without IPv6).
    package let channels: [any Channel]
    /// The port it listens on.
    package let port: UInt16

    /// Binds a free port. Each accepted child reaches `accept` once active, with
    /// `autoRead` off and a `FlowBufferHandler` holding early bytes (as `Listener.listenTCP`).
    /// Throws `listen tcp 0.0.0.0:0: …` as Go words listen errors.
    package static func bind(group: any EventLoopGroup, accept: @escaping @Sendable (any Channel) -> Void) async throws -> RedirectListener {
        func bootstrap() -> ServerBootstrap {
            ServerBootstrap(group: group)
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
        }
        // Dual-stack `::` first; a host without IPv6 (disabled by sysctl) gets `0.0.0.0`.
        if let channel = try? await bootstrap().bind(host: "::", port: 0).get() {
            return RedirectListener(channels: [channel], port: UInt16(channel.localAddress?.port ?? 0))
        }
        do {
            let channel = try await bootstrap().bind(host: "0.0.0.0", port: 0).get()
            return RedirectListener(channels: [channel], port: UInt16(channel.localAddress?.port ?? 0))
        } catch {
            throw AdapterError(.other, "listen tcp 0.0.0.0:0: \(SocketLevelOption.describe(error, operation: "bind"))")
        }
    }

    /// Closes the listener.
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
        let local = channel.localAddress?.ipAddress.flatMap { IPAddress($0) }
        if local?.unmapped.isIPv4 ?? false {
            let future: EventLoopFuture<sockaddr_in> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_IP), name: SocketOptionName(soOriginalDst))
            // struct sockaddr_in: family (2), port (2, network order), address (4).
            return future.flatMapThrowing { address in
                let bytes = withUnsafeBytes(of: address) { Array($0) }
                guard let ip = IPAddress(bytes: bytes[4..<8]) else { throw AdapterError(.other, "SO_ORIGINAL_DST: bad address") }
                return Destination(ip: ip, port: UInt16(bytes[2]) << 8 | UInt16(bytes[3]))
            }
        }
        let future: EventLoopFuture<sockaddr_in6> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_IPV6), name: SocketOptionName(soOriginalDst))
        // struct sockaddr_in6: family (2), port (2, network order), flow info (4), address (16).
        return future.flatMapThrowing { address in
            let bytes = withUnsafeBytes(of: address) { Array($0) }
            guard let ip = IPAddress(bytes: bytes[8..<24]) else { throw AdapterError(.other, "SO_ORIGINAL_DST: bad address") }
            return Destination(ip: ip.unmapped, port: UInt16(bytes[2]) << 8 | UInt16(bytes[3]))
        }
    }
}
