package import NetstackWire

/// An address and port: one end of a flow.
package struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    package var address: IPAddress
    package var port: UInt16

    @inlinable package init(_ address: IPAddress, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    package var description: String {
        address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}

/// Which transport a flow carries.
package enum FlowProtocol: UInt8, Hashable, Sendable {
    case tcp = 6
    case udp = 17
}

/// The 5-tuple of a flow as a value, seen from the stack: `local` is the destination of packets that
/// arrive (in transparent mode the ORIGINAL destination the client dialled), `remote` their source.
package struct FlowKey: Hashable, Sendable, CustomStringConvertible {
    package var proto: FlowProtocol
    package var local: Endpoint
    package var remote: Endpoint

    @inlinable package init(proto: FlowProtocol, local: Endpoint, remote: Endpoint) {
        self.proto = proto
        self.local = local
        self.remote = remote
    }

    package var description: String { "\(proto == .tcp ? "tcp" : "udp") \(remote) -> \(local)" }
}

/// A handle to a flow: a slot index and the slot's generation, so a stale handle to a reused slot
/// is detected instead of touching someone else's flow.
package struct FlowID: Hashable, Sendable, CustomStringConvertible {
    package var index: UInt32
    package var generation: UInt32

    @inlinable package init(index: UInt32, generation: UInt32) {
        self.index = index
        self.generation = generation
    }

    package var description: String { "flow#\(index).\(generation)" }
}
