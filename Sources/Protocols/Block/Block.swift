// Block: the `block` outbound, which refuses every flow.
//
// Imports: Adapter, Config, NIOCore (STYLE.md §1).
package import Adapter
package import NIOCore
import Config

/// The module's name, for log lines and diagnostics.
package enum BlockModule {
    package static let name = "Block"
}

/// Refuses every flow: logs `blocked connection to <dest>` and fails the dial with EPERM's text,
/// as Go's block outbound does, so the inbound answers its error reply.
package final class BlockOutbound: Outbound {
    package let type = "block"
    package let tag: String
    package let networks: Set<NetworkKind> = [.tcp, .udp]
    let logger: ContextLogger

    package init(tag: String, logger: ContextLogger) {
        self.tag = tag
        self.logger = logger.named("outbound/block[\(tag)]")
    }

    package func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        logger.info("blocked connection to \(metadata.destination)", flow: metadata.flowID)
        throw AdapterError(.rejected, "operation not permitted")
    }

    package func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        logger.info("blocked packet connection to \(metadata.destination)", flow: metadata.flowID)
        throw AdapterError(.rejected, "operation not permitted")
    }
}

extension BlockModule {
    /// Registers the `block` outbound.
    package static func register(in registry: AdapterRegistry) {
        registry.register(outbound: "block") { context, options in
            BlockOutbound(tag: options.tag, logger: context.logger(""))
        }
    }
}
