// NotImplementedAdapter: stands in for a config type this build has no code for.
package import Adapter
package import NIOCore

/// An adapter whose type parses but has no implementation registered. It fails the box at
/// `start(.start)` with `not implemented: <type>` (the box prefixes the adapter's name), so
/// `check` accepts the config while `run` says exactly what is missing. Never carries a flow.
package final class NotImplementedAdapter: Inbound, Endpoint, Service {
    package let type: String
    package let tag: String
    package let kind: String
    package let networks: Set<NetworkKind> = []

    package init(kind: String, type: String, tag: String) {
        self.kind = kind
        self.type = type
        self.tag = tag
    }

    package func start(_ stage: StartStage) async throws {
        if stage == .start { throw AdapterError.notImplemented(type) }
    }

    package func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        throw AdapterError.notImplemented(type)
    }

    package func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        throw AdapterError.notImplemented(type)
    }
}
