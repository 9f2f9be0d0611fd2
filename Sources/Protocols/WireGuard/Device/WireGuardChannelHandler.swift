package import NIOCore
package import NetstackWire

/// Runs a `WireGuardDevice` in a SwiftNIO datagram pipeline: the owner the sans-I/O device needs.
///
/// Pipeline position: directly on a UDP `DatagramChannel`.
/// - inbound `AddressedEnvelope<ByteBuffer>` (UDP datagrams) → `device.receive` → decrypted inner IP packets go
///   on as `ByteBuffer`s (`fireChannelRead`) to the next handler (the endpoint's netstack glue);
/// - outbound `ByteBuffer`s (inner IP packets, ideally with 16 bytes of headroom) → `device.send` → datagrams out;
/// - the device's timers run on the channel's event loop: after every event the handler re-arms one scheduled
///   task at the device's next deadline.
/// Time is `NIODeadline.now()` (CLOCK_MONOTONIC) as an `Instant`; the device's `unixTimeAtZero` must be the
/// realtime clock minus the monotonic clock, which the creator of the device computes.
/// All state lives on the channel's event loop; nothing here is thread-safe or needs to be.
package final class WireGuardChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = AddressedEnvelope<ByteBuffer>
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// The device this handler drives (read it for counters and peer status on the event loop).
    package let device: WireGuardDevice
    private var output = WireGuardOutput()
    /// The outputs being handed on while `output` collects new ones.
    private var spare = WireGuardOutput()
    private var delivering = false
    private var timer: Scheduled<Void>?
    private var timerDeadline: Instant?
    private var context: ChannelHandlerContext?
    /// NIO addresses of recent endpoints: converting allocates, so each endpoint is converted once.
    private var addressCache: [WireGuardEndpoint: SocketAddress] = [:]

    package init(device: WireGuardDevice) { self.device = device }

    /// The event loop's clock as the device's `Instant`.
    package static func now() -> Instant { Instant(nanoseconds: NIODeadline.now().uptimeNanoseconds) }

    package func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    package func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    package func channelActive(context: ChannelHandlerContext) {
        // Start timers that were configured before the socket existed (persistent keepalives, none usually).
        afterEvent(context: context)
        context.fireChannelActive()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let source = WireGuardEndpoint(envelope.remoteAddress) else {
            return
        }
        device.receive(datagram: envelope.data, from: source, now: Self.now(), into: &output)
        afterEvent(context: context)
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        device.send(packet: unwrapOutboundIn(data), now: Self.now(), into: &output)
        afterEvent(context: context)
        // The inner packet is consumed whether or not it could be sent at once (staging is the device's).
        promise?.succeed(())
    }

    /// Starts a handshake with a peer now (e.g. when the endpoint starts and a peer has a keepalive).
    package func initiateHandshake(peer: Int) {
        guard let context else { return }
        device.initiateHandshake(peer: peer, now: Self.now(), into: &output)
        afterEvent(context: context)
        context.flush()
    }

    /// Sends what the device produced, hands decrypted packets on, and re-arms the timer.
    ///
    /// Re-entrant calls (a handler further down answers an inner packet with a write while we are still handing
    /// packets on) only add to `output`; the outermost call loops until nothing is left, so no packet is handed
    /// on twice and nothing waits. `output` and `spare` swap instead of copying, so this allocates nothing.
    private func afterEvent(context: ChannelHandlerContext) {
        if delivering { return }
        delivering = true
        defer { delivering = false }
        repeat {
            swap(&output, &spare)
            for datagram in spare.datagrams {
                guard let address = socketAddress(datagram.endpoint) else { continue }
                let envelope = AddressedEnvelope(remoteAddress: address, data: datagram.buffer)
                context.write(wrapOutboundOut(envelope), promise: nil)
            }
            for packet in spare.packets {
                context.fireChannelRead(wrapInboundOut(packet.buffer))
            }
            spare.removeAll()
            armTimer(context: context, next: device.poll(now: Self.now(), into: &output))
        } while !output.datagrams.isEmpty || !output.packets.isEmpty
    }

    private func socketAddress(_ endpoint: WireGuardEndpoint) -> SocketAddress? {
        if let cached = addressCache[endpoint] { return cached }
        guard let address = endpoint.socketAddress else { return nil }
        // Bounded: roaming peers and cookie replies to strangers must not grow it without end.
        if addressCache.count >= 1024 { addressCache.removeAll(keepingCapacity: true) }
        addressCache[endpoint] = address
        return address
    }

    private func armTimer(context: ChannelHandlerContext, next: Instant?) {
        guard let next else { return }
        if let current = timerDeadline, current <= next, timer != nil { return }
        timer?.cancel()
        timerDeadline = next
        let delay = next - Self.now()
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: .nanoseconds(max(0, delay.nanosecondsClamped))) {
            let handler = loopBound.value
            handler.timer = nil
            handler.timerDeadline = nil
            guard let context = handler.context else { return }
            handler.afterEvent(context: context)
            context.flush()
        }
    }
}

extension WireGuardEndpoint {
    /// The endpoint of a NIO socket address, without allocating; nil for a Unix socket.
    /// Reads the kernel layouts directly: sockaddr_in = family 2, port 2 (big-endian), address 4;
    /// sockaddr_in6 = family 2, port 2, flow info 4, address 16.
    package init?(_ address: SocketAddress) {
        let isIPv6: Bool
        switch address {
        case .v4: isIPv6 = false
        case .v6: isIPv6 = true
        case .unixDomainSocket: return nil
        }
        var endpoint = WireGuardEndpoint(ipv4: (0, 0, 0, 0), port: 0)
        address.withSockAddr { pointer, _ in
            let raw = UnsafeRawPointer(pointer)
            endpoint.port = UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            withUnsafeMutableBytes(of: &endpoint.address) { out in
                out.baseAddress!.copyMemory(from: raw + (isIPv6 ? 8 : 4), byteCount: isIPv6 ? 16 : 4)
            }
        }
        endpoint.isIPv6 = isIPv6
        self = endpoint
    }

    /// The NIO socket address of this endpoint (allocates: cache it).
    package var socketAddress: SocketAddress? {
        var buffer = ByteBuffer()
        buffer.writeBytes(addressBytes)
        return try? SocketAddress(packedIPAddress: buffer, port: Int(port))
    }
}
