package import NetstackWire

/// An address and port: one end of a flow.
package struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    /// The IP address.
    package var address: IPAddress
    /// The TCP or UDP port.
    package var port: UInt16

    /// An endpoint of `address` and `port`.
    @inlinable package init(_ address: IPAddress, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    /// `192.0.2.1:53` or `[2001:db8::1]:53`.
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
    /// TCP or UDP.
    package var proto: FlowProtocol
    /// Our end: the destination of arriving packets (in transparent mode, the original destination).
    package var local: Endpoint
    /// The peer's end: the source of arriving packets.
    package var remote: Endpoint

    /// A key from its parts.
    @inlinable package init(proto: FlowProtocol, local: Endpoint, remote: Endpoint) {
        self.proto = proto
        self.local = local
        self.remote = remote
    }

    /// `tcp 10.0.0.2:51000 -> 93.184.216.34:443` (remote first, as a client sees it).
    package var description: String { "\(proto == .tcp ? "tcp" : "udp") \(remote) -> \(local)" }
}

/// A handle to a flow: a slot index and the slot's generation, so a stale handle to a reused slot
/// is detected instead of touching someone else's flow.
package struct FlowID: Hashable, Sendable, CustomStringConvertible {
    /// The slot in the stack's flow table.
    package var index: UInt32
    /// The slot's generation when the flow was created.
    package var generation: UInt32

    /// An id from its parts (the stack makes them; tests may too).
    @inlinable package init(index: UInt32, generation: UInt32) {
        self.index = index
        self.generation = generation
    }

    /// `flow#3.1`: index and generation.
    package var description: String { "flow#\(index).\(generation)" }
}
