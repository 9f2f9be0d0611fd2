// DirectOutbound: dials the destination itself through the kernel (or a detour).
package import Adapter
package import NIOCore
import Net

/// The `direct` outbound. Logs `outbound connection to <dest>` per TCP flow and
/// `outbound packet connection to <dest>` per UDP flow, as Go does.
package final class DirectOutbound: Outbound {
    package let type = "direct"
    package let tag: String
    package let networks: Set<NetworkKind> = [.tcp, .udp]
    package let dependencies: [String]
    /// Kernel dialer, or a detour dialer.
    package let dialer: any Dialer
    /// Deprecated `override_address` / `override_port` (still honoured in 1.12).
    package let override: DestinationOverride
    let logger: ContextLogger

    package init(tag: String, dialer: any Dialer, override: DestinationOverride = DestinationOverride(host: nil, port: nil),
                 detour: String? = nil, logger: ContextLogger) {
        self.tag = tag
        self.dialer = dialer
        self.override = override
        self.dependencies = detour.map { [$0] } ?? []
        self.logger = logger.named("outbound/direct[\(tag)]")
    }

    package func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        let destination = override.apply(to: metadata.destination)
        logger.info("outbound connection to \(destination)", flow: metadata.flowID)
        if let system = dialer as? SystemDialer {
            let adjusted = system.adjusted(for: metadata)
            // The router's `resolve` action already looked the name up: dial those addresses.
            if destination.isDomain, destination.host == metadata.destination.host, !metadata.destinationAddresses.isEmpty {
                return try await adjusted.dialTCP(addresses: metadata.destinationAddresses, port: destination.port, on: eventLoop)
            }
            return try await adjusted.dialTCP(to: destination, on: eventLoop)
        }
        return try await dialer.dialTCP(to: destination, on: eventLoop)
    }

    package func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        let destination = override.apply(to: metadata.destination)
        logger.info("outbound packet connection to \(destination)", flow: metadata.flowID)
        let dialer = (self.dialer as? SystemDialer)?.adjusted(for: metadata) ?? self.dialer
        let connection = try await dialer.listenPacket(on: eventLoop)
        if override.isEmpty { return connection }
        return OverridePacketConnection(inner: connection, override: override)
    }
}

/// Rewrites every datagram's destination with the outbound's override.
final class OverridePacketConnection: PacketConnection, @unchecked Sendable {
    let inner: any PacketConnection
    let override: DestinationOverride

    init(inner: any PacketConnection, override: DestinationOverride) {
        self.inner = inner
        self.override = override
    }

    var eventLoop: any EventLoop { inner.eventLoop }
    var closeFuture: EventLoopFuture<Void> { inner.closeFuture }
    func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        inner.writePacket(payload, to: override.apply(to: destination))
    }
    func flush() { inner.flush() }
    func setReceiver(_ receiver: any PacketReceiver) { inner.setReceiver(receiver) }
    func close() { inner.close() }
}
