// The outbound's UDP flow: datagrams to any destination through the server, each sealed on its
// own (see ShadowsocksPacketCodec). A SIP022 client tracks the server's session (and the one before
// it for a minute), refusing replayed packet ids, as sing-shadowsocks2's client does.
package import Adapter
package import NIOCore

/// A UDP flow through a shadowsocks server. Loop-confined to the socket's loop.
package final class ShadowsocksClientPacketConnection: PacketConnection, PacketReceiver, @unchecked Sendable {
    let socket: any PacketConnection
    let server: Destination
    let codec: ShadowsocksPacketCodec
    let sender: ShadowsocksUDPSender?
    let clock: ShadowsocksClock
    let logger: ContextLogger?
    package var eventLoop: any EventLoop { socket.eventLoop }
    package var closeFuture: EventLoopFuture<Void> { socket.closeFuture }
    private var receiver: (any PacketReceiver)?
    // The server's sessions (SIP022).
    private var remoteSessionID: UInt64 = 0
    private var remoteOpener: ShadowsocksAEAD?
    private var window = ShadowsocksSlidingWindow()
    private var lastRemoteSessionID: UInt64 = 0
    private var lastRemoteOpener: ShadowsocksAEAD?
    private var lastWindow = ShadowsocksSlidingWindow()
    private var lastRemoteSeen: Int64 = 0

    /// `socket` is an unconnected UDP packet path; `server` the shadowsocks server.
    package init(socket: any PacketConnection, server: Destination, method: ShadowsocksMethod,
                 clock: @escaping ShadowsocksClock = shadowsocksSystemClock, logger: ContextLogger? = nil) {
        self.socket = socket
        self.server = server
        self.clock = clock
        self.logger = logger
        codec = ShadowsocksPacketCodec(method: method, isServer: false, clock: clock)
        sender = method.family == .blake3 ? ShadowsocksUDPSender(method: method) : nil
    }

    package func setReceiver(_ receiver: any PacketReceiver) {
        self.receiver = receiver
        socket.setReceiver(self)
    }

    package func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        socket.writePacket(codec.seal(payload, address: destination, sender: sender), to: server)
    }

    package func flush() { socket.flush() }

    package func close() { socket.close() }

    package func packetConnectionClosed() {
        let receiver = self.receiver
        self.receiver = nil
        receiver?.packetConnectionClosed()
    }

    package func packetReceived(_ payload: ByteBuffer, from source: Destination) {
        // Only the server speaks on this socket.
        guard source.port == server.port, server.ip == nil || source.ip?.unmapped == server.ip?.unmapped else { return }
        do {
            let packet = try open(payload)
            receiver?.packetReceived(packet.payload, from: packet.address)
        } catch {
            logger?.debug("drop packet from \(source): \(error)")
        }
    }

    private func open(_ datagram: ByteBuffer) throws(ShadowsocksError) -> ShadowsocksOpenedPacket {
        guard codec.method.family == .blake3, let sender else { return try codec.openLegacy(datagram) }
        var packet = datagram
        let header = try codec.openHeader(&packet)
        let id = header.sessionID
        if id == remoteSessionID {
            guard window.check(header.packetID) else { throw .packetIDNotUnique }
        } else if id == lastRemoteSessionID {
            guard lastWindow.check(header.packetID) else { throw .packetIDNotUnique }
        }
        let opener: ShadowsocksAEAD?
        if id == remoteSessionID, remoteOpener != nil || codec.method.aead == .chacha20Poly1305 {
            opener = remoteOpener
        } else if id == lastRemoteSessionID, lastRemoteOpener != nil || codec.method.aead == .chacha20Poly1305 {
            opener = lastRemoteOpener
        } else {
            opener = codec.remoteOpener(sessionID: id)
        }
        let opened = try codec.openBody(packet, header: header, opener: opener)
        guard opened.clientSessionID == sender.sessionID else { throw .badClientSessionID }
        let now = clock()
        if id == remoteSessionID {
            window.add(header.packetID)
        } else if id == lastRemoteSessionID {
            lastWindow.add(header.packetID)
            lastRemoteSeen = now
        } else {
            if remoteSessionID != 0 {
                guard now - lastRemoteSeen >= 60 else { throw .tooManyServerSessions }
                lastRemoteSessionID = remoteSessionID
                lastWindow = window
                lastRemoteSeen = now
                lastRemoteOpener = remoteOpener
                window = ShadowsocksSlidingWindow()
            }
            remoteSessionID = id
            remoteOpener = opener
            window.add(header.packetID)
        }
        return opened
    }
}
