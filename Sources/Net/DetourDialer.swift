// DetourDialer: a `Dialer` that goes through another outbound (`detour`).
package import Adapter
package import NIOCore

/// Dials through the outbound tagged `detour`, looked up at dial time (so start order does not
/// matter and a reload sees the new box's outbound). Fails with `outbound detour not found: <tag>`.
package struct DetourDialer: Dialer {
    package let detour: String
    package let outbounds: OutboundManager
    /// The flow whose dial this is (for logs and the inner outbound's metadata).
    package let template: FlowMetadata?

    package init(detour: String, outbounds: OutboundManager, template: FlowMetadata? = nil) {
        self.detour = detour
        self.outbounds = outbounds
        self.template = template
    }

    private func outbound() throws -> any Outbound {
        guard let outbound = outbounds.outbound(detour) else {
            throw AdapterError(.notFound, "outbound detour not found: \(detour)")
        }
        return outbound
    }

    private func metadata(_ destination: Destination, network: NetworkKind) -> FlowMetadata {
        var metadata = template ?? FlowMetadata(inbound: "", inboundType: "", network: network, source: nil, destination: destination)
        metadata.network = network
        metadata.destination = destination
        metadata.destinationAddresses = []
        return metadata
    }

    package func dialTCP(to destination: Destination, on eventLoop: any EventLoop) async throws -> any Channel {
        try await outbound().dialTCP(metadata(destination, network: .tcp), on: eventLoop)
    }

    package func listenPacket(on eventLoop: any EventLoop) async throws -> any PacketConnection {
        let unspecified = Destination(ip: .v4(0), port: 0)
        return try await outbound().listenPacket(metadata(unspecified, network: .udp), on: eventLoop)
    }
}
