// QUICServerEndpoint: the sans-I/O demultiplexer of a QUIC server socket. It finds the connection
// a datagram belongs to by Destination Connection ID (RFC 9000 §5.2) and makes a new server
// connection for a client Initial that is at least 1200 bytes (§14.1). The owner keeps the
// peer address of each connection and calls `forget` when one closes.
package import NIOCore
package import NetstackWire

/// Routes datagrams to server connections. One owner, one thread.
package final class QUICServerEndpoint {
    let configuration: QUICConfiguration
    var byID: [QUICConnectionID: QUICConnection] = [:]
    /// Datagrams that matched no connection and could not start one.
    package private(set) var droppedDatagrams = 0

    package init(configuration: QUICConfiguration) { self.configuration = configuration }

    /// The connection `datagram` belongs to, made if it is a valid first Initial; `isNew` is true
    /// for a new one. Nil: dropped (unknown ID, short or garbled, TLS set-up failure).
    package func route(_ datagram: ByteBuffer, now: Instant) -> (connection: QUICConnection, isNew: Bool)? {
        guard let header = try? QUICPacketHeader.parse(datagram: datagram, at: datagram.readerIndex,
                                                       shortConnectionIDLength: configuration.connectionIDLength) else {
            droppedDatagrams += 1
            return nil
        }
        if let connection = byID[header.destinationID] { return (connection, false) }
        // §14.1: a server drops an Initial in a datagram smaller than 1200 bytes; §7.2: the client's
        // first DCID is at least 8 bytes.
        guard header.type == .initial, datagram.readableBytes >= 1200, header.destinationID.count >= 8,
              let connection = try? QUICConnection(server: configuration, firstInitial: header, now: now) else {
            droppedDatagrams += 1
            return nil
        }
        byID[header.destinationID] = connection
        refresh(connection)
        return (connection, true)
    }

    /// The Version Negotiation packet (RFC 9000 §6.1, §17.2.1) answering a datagram of an unknown
    /// version, or nil. Only for datagrams of at least 1200 bytes (§6.1: smaller ones are dropped,
    /// so we cannot be used to amplify), never in answer to a Version Negotiation packet.
    package func versionNegotiation(for datagram: ByteBuffer) -> ByteBuffer? {
        guard datagram.readableBytes >= 1200,
              let header = try? QUICPacketHeader.parse(datagram: datagram, at: datagram.readerIndex,
                                                       shortConnectionIDLength: configuration.connectionIDLength),
              header.type == .versionNegotiation, header.version != 0 else { return nil }
        var packet = ByteBuffer()
        packet.writeInteger(UInt8(0xC0))  // long header; the other bits are unused (§17.2.1)
        packet.writeInteger(UInt32(0))
        // The IDs swap: the client's Source ID is our Destination ID and the other way round.
        packet.writeInteger(UInt8(header.sourceID.count)); packet.writeBytes(header.sourceID.bytes)
        packet.writeInteger(UInt8(header.destinationID.count)); packet.writeBytes(header.destinationID.bytes)
        packet.writeInteger(quicVersion1)
        return packet
    }

    /// Re-reads the IDs a connection answers to (call after its `receive`/`transmit`).
    package func refresh(_ connection: QUICConnection) {
        for id in connection.localIDs.values where byID[id] == nil { byID[id] = connection }
    }

    /// Drops every route to `connection`.
    package func forget(_ connection: QUICConnection) {
        byID = byID.filter { $0.value !== connection }
    }

    /// Connections currently routed.
    package var connectionCount: Int { Set(byID.values.map { ObjectIdentifier($0) }).count }
}
