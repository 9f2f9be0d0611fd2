// LinuxTransparentSockets: Adapter's `TransparentSockets` over the kernel.
//
// 1. TCP: SO_ORIGINAL_DST is read through NIO's `SocketOptionProvider` on the accepted channel, and
//    IP_TRANSPARENT is set on the server channel before it binds (NIO runs the server initializer
//    first).
// 2. UDP tproxy: NIO cannot return IP_ORIGDSTADDR control messages, so the listening socket is ours:
//    one reader thread per listener polls it and recvmsg()s each datagram with its original
//    destination into a ByteBuffer it hands to the inbound.
// 3. Replies: a transparent socket bound to the reply's source (the original destination) sends with
//    sendto(MSG_DONTWAIT); a full buffer drops the datagram, as UDP may.
package import Adapter
import CLinux
import Glibc
package import NIOCore
import Synchronization

/// The Linux implementation of `TransparentSockets`. Stateless; any thread.
package struct LinuxTransparentSockets: TransparentSockets {
    /// The implementation.
    package init() {}

    package func originalDestination(of channel: any Channel) -> EventLoopFuture<Destination> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(AdapterError(.other, "get original destination: not a socket"))
        }
        // Go (redirect.GetOriginalDestination) picks the call by the peer's family: IPv4 peers,
        // including v4-mapped ones on a dual-stack socket, use SOL_IP; IPv6 peers IP6T_SO_ORIGINAL_DST.
        guard let peer = channel.remoteAddress.flatMap(Destination.init) else {
            return channel.eventLoop.makeFailedFuture(AdapterError(.other, "get original destination: not connected"))
        }
        let isIPv4 = peer.ip.map { $0.unmapped.isIPv4 } ?? true
        if isIPv4 {
            let future: EventLoopFuture<sockaddr_in> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_IP), name: SocketOptionName(80))  // SO_ORIGINAL_DST
            return future.flatMapThrowing { value in
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: value, as: sockaddr_in.self) }
                guard let endpoint = SocketEndpoint(storage) else { throw Self.originalDestinationError(EAFNOSUPPORT) }
                return endpoint.destination
            }.flatMapErrorThrowing { error in throw Self.wrap(error) }
        }
        let future: EventLoopFuture<sockaddr_in6> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_IPV6), name: SocketOptionName(80))  // IP6T_SO_ORIGINAL_DST
        return future.flatMapThrowing { value in
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: value, as: sockaddr_in6.self) }
            guard let endpoint = SocketEndpoint(storage) else { throw Self.originalDestinationError(EAFNOSUPPORT) }
            return endpoint.destination
        }.flatMapErrorThrowing { error in throw Self.wrap(error) }
    }

    package func setTransparent(_ channel: any Channel, ipv6: Bool) -> EventLoopFuture<Void> {
        let v4 = ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel(rawValue: CInt(SOL_IP)),
                                                   name: NIOBSDSocket.Option(rawValue: 19))    // IP_TRANSPARENT
        let v6 = ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel(rawValue: CInt(SOL_IPV6)),
                                                   name: NIOBSDSocket.Option(rawValue: 75))    // IPV6_TRANSPARENT
        let set = channel.setOption(v4, value: 1)
        let both = ipv6 ? set.flatMap { channel.setOption(v6, value: 1) } : set
        return both.flatMapErrorThrowing { error in
            throw AdapterError(.other, "set IP_TRANSPARENT: \(error) (needs CAP_NET_ADMIN)")
        }
    }

    package func listenUDP(at address: SocketAddress, routingMark: UInt32?,
                           receive: @escaping @Sendable ([TransparentDatagram]) -> Void) throws
        -> any TransparentPacketListener {
        let ipv6 = address.protocol == .inet6
        let fd = try Self.openUDP(ipv6: ipv6, bindTo: address, routingMark: routingMark, receiveDestination: true,
                                  what: "listen udp \(Self.errorAddress(address))")
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let local = SocketEndpoint(storage)?.socketAddress() ?? address
        return TransparentUDPListener(fd: fd, localAddress: local, receive: receive)
    }

    package func openReplySocket(from source: SocketAddress, routingMark: UInt32?) throws -> any TransparentPacketSender {
        let fd = try Self.openUDP(ipv6: source.protocol == .inet6, bindTo: source, routingMark: routingMark,
                                  receiveDestination: false, what: "tproxy reply socket")
        return TransparentUDPSender(fd: fd)
    }

    /// socket + SO_REUSEADDR + IP_TRANSPARENT (+ IP_RECVORIGDSTADDR) + SO_MARK + bind, non-blocking.
    static func openUDP(ipv6: Bool, bindTo address: SocketAddress, routingMark: UInt32?, receiveDestination: Bool,
                        what: String) throws -> CInt {
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw AdapterError(.other, "\(what): socket: \(LinuxSocketError(operation: "socket", errno: errno))") }
        do {
            var one: CInt = 1
            guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
                throw LinuxSocketError(operation: "SO_REUSEADDR", errno: errno)
            }
            try LinuxSockets.setTransparent(fd, ipv6: ipv6)
            if receiveDestination { try LinuxSockets.setReceiveOriginalDestination(fd, ipv6: ipv6) }
            if let routingMark { try LinuxSockets.setMark(fd, routingMark) }
            let result = address.withSockAddr { pointer, size in bind(fd, pointer, socklen_t(size)) }
            guard result == 0 else {
                // Go's wording: `listen udp [::]:7893: bind: address already in use`.
                let text = strerror(errno).map { String(cString: $0).lowercased() } ?? "errno \(errno)"
                throw AdapterError(.other, "\(what): bind: \(text)")
            }
            return fd
        } catch let error as AdapterError {
            Glibc.close(fd)
            throw error
        } catch {
            Glibc.close(fd)
            throw AdapterError(.other, "\(what): \(error)")
        }
    }

    /// Go's listen errors print the dual-stack wildcard `::` as `0.0.0.0:<port>`.
    static func errorAddress(_ address: SocketAddress) -> String {
        guard let destination = Destination(address) else { return "?" }
        return destination.ip == IPAddress("::") ? "0.0.0.0:\(destination.port)" : destination.description
    }

    @inline(never) static func originalDestinationError(_ code: Int32) -> AdapterError {
        AdapterError(.other, "get original destination: \(LinuxSocketError(operation: "SO_ORIGINAL_DST", errno: code))")
    }

    @inline(never) static func wrap(_ error: any Error) -> any Error {
        if error is AdapterError { return error }
        return AdapterError(.other, "get original destination: \(error)")
    }
}

extension SocketEndpoint {
    /// As an Adapter destination.
    var destination: Destination {
        Destination(ip: IPAddress(bytes: address) ?? .v4(0), port: port)
    }

    /// As a NIO socket address (nil for an address of neither length).
    func socketAddress() -> SocketAddress? {
        IPAddress(bytes: address).map { SocketAddress(ip: $0, port: port) }
    }
}

/// A transparent UDP socket and the thread that reads it.
final class TransparentUDPListener: TransparentPacketListener, Sendable {
    let fd: CInt
    let localAddress: SocketAddress
    let stopped = Atomic<Bool>(false)
    let finished = Mutex<Bool>(false)

    init(fd: CInt, localAddress: SocketAddress, receive: @escaping @Sendable ([TransparentDatagram]) -> Void) {
        self.fd = fd
        self.localAddress = localAddress
        let thread = ReaderThread(listener: self, receive: receive)
        thread.start()
    }

    func close() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // The reader polls with a short timeout and sees `stopped`; wait for it so no callback
        // runs after close returns, then release the descriptor.
        while !finished.withLock({ $0 }) { usleep(5_000) }
        Glibc.close(fd)
    }

    /// 1. poll (100 ms, to notice close) 2. recvmsg with IP_ORIGDSTADDR until EAGAIN, a full
    /// scratch area or `maxBatch` datagrams, each at the next offset of one 256 KiB scratch area
    /// 3. copy the batch into one ByteBuffer and slice it (one allocation per batch, not per
    /// datagram) 4. hand the batch over in one call.
    func run(receive: @Sendable ([TransparentDatagram]) -> Void) {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.scratchSize, alignment: 16)
        defer { scratch.deallocate(); finished.withLock { $0 = true } }
        let allocator = ByteBufferAllocator()
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var spans: [(offset: Int, length: Int, source: SocketAddress, destination: SocketAddress)] = []
        spans.reserveCapacity(Self.maxBatch)
        var batch: [TransparentDatagram] = []
        while !stopped.load(ordering: .acquiring) {
            poller.revents = 0
            guard poll(&poller, 1, 100) > 0 else { continue }
            while !stopped.load(ordering: .acquiring) {
                spans.removeAll(keepingCapacity: true)
                var used = 0
                while spans.count < Self.maxBatch, Self.scratchSize - used >= 65_536 {
                    let area = UnsafeMutableRawBufferPointer(rebasing: scratch[used..<(used + 65_536)])
                    guard let datagram = try? LinuxSockets.receive(fd, into: area) else { break }  // EAGAIN
                    guard let source = datagram.source?.socketAddress(),
                          let destination = datagram.destination?.socketAddress() else { continue }
                    spans.append((used, datagram.length, source, destination))
                    used += datagram.length
                }
                guard !spans.isEmpty else { break }  // drained: poll again
                var storage = allocator.buffer(capacity: used)
                storage.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[0..<used]))
                batch = spans.map { span in
                    TransparentDatagram(payload: storage.getSlice(at: span.offset, length: span.length) ?? ByteBuffer(),
                                        source: span.source, destination: span.destination)
                }
                receive(batch)
            }
        }
    }

    /// Datagrams per hand-over, and the scratch area they are read into.
    static let maxBatch = 64
    static let scratchSize = 256 * 1024
}

/// Runs a listener's reader on its own pthread (blocking poll; never on an event loop).
final class ReaderThread: @unchecked Sendable {
    let listener: TransparentUDPListener
    let receive: @Sendable ([TransparentDatagram]) -> Void

    init(listener: TransparentUDPListener, receive: @escaping @Sendable ([TransparentDatagram]) -> Void) {
        self.listener = listener
        self.receive = receive
    }

    func start() {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(&thread, nil, { raw in
            let this = Unmanaged<ReaderThread>.fromOpaque(raw!).takeRetainedValue()
            this.listener.run(receive: this.receive)
            return nil
        }, context)
        if result == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<ReaderThread>.fromOpaque(context).release()
            listener.finished.withLock { $0 = true }
        }
    }
}

/// A transparent UDP socket bound to a reply source.
final class TransparentUDPSender: TransparentPacketSender, Sendable {
    let fd: CInt
    let closed = Atomic<Bool>(false)

    init(fd: CInt) { self.fd = fd }

    deinit { close() }

    func send(_ payload: ByteBuffer, to destination: SocketAddress) throws {
        guard !closed.load(ordering: .acquiring) else { return }
        let sent = payload.withUnsafeReadableBytes { bytes in
            destination.withSockAddr { address, size in
                sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), address, socklen_t(size))
            }
        }
        if sent < 0 && errno != EAGAIN && errno != ENOBUFS {
            throw AdapterError(.other, "write packet: \(LinuxSocketError(operation: "sendto", errno: errno))")
        }
    }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Glibc.close(fd)
    }
}
