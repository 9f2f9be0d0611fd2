// TUICCodec: TUIC v5's commands on the wire (sing-quic tuic/protocol.go, packet.go, read for facts).
//
//   every command:  version 5 | command (0 Authenticate, 1 Connect, 2 Packet, 3 Dissociate, 4 Heartbeat)
//   Authenticate:   uuid[16] | token[32]                                     (unidirectional stream)
//   Connect:        address                                                  (bidirectional stream, then raw bytes)
//   Packet:         assoc_id u16 | packet_id u16 | frag_total u8 | frag_id u8 | size u16 | address | payload[size]
//   Dissociate:     assoc_id u16
//   Heartbeat:      —                                                        (DATAGRAM)
//   address:        0x00 len name port | 0x01 ipv4 port | 0x02 ipv6 port | 0xff (none, no port)
//
// Packet goes in a DATAGRAM (native mode; exact length) or alone on a unidirectional stream (quic
// mode). Fragments after the first carry address none; a packet is reassembled from all its
// fragments, keyed by packet id, as Go's defragger does. Parsers take bytes from peers: they throw
// `TUICError` (Go's wording in `description`) or return nil for "need more bytes"; they never trap.
package import Adapter
package import NIOCore

/// Why TUIC bytes were refused. `description` is Go's text for the same failure.
package enum TUICError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A version byte other than 5.
    case unknownVersion(UInt8)
    /// A command not allowed where it came.
    case unknownCommand(UInt8)
    /// A stream opened with a command other than Connect.
    case unsupportedStreamCommand(UInt8)
    /// A bad address field.
    case address(AddressSerializerError)
    /// A datagram shorter than its two command bytes.
    case invalidMessage
    /// A DATAGRAM whose payload length disagrees with its size field.
    case unexpectedEOF
    /// A stream or message ended before its command was complete.
    case truncated
    /// A Connect with address none.
    case missingDestination
    /// A Dissociate with extra bytes.
    case invalidDissociate

    package var description: String {
        switch self {
        case .unknownVersion(let version): "unknown version \(version)"
        case .unknownCommand(let command): "unknown command \(command)"
        case .unsupportedStreamCommand(let command): "unsupported stream command \(command)"
        case .address(.badFamily(let family)): "unknown address family: \(family)"
        case .address(let error): "read address: \(error)"
        case .invalidMessage: "invalid message"
        case .unexpectedEOF: "unexpected EOF"
        case .truncated: "EOF"
        case .missingDestination: "invalid destination address"
        case .invalidDissociate: "invalid dissociate message"
        }
    }
}

/// TUIC's command numbers.
package enum TUICCommand: UInt8, Sendable {
    case authenticate = 0, connect = 1, packet = 2, dissociate = 3, heartbeat = 4
}

/// One Packet command's header (after version and command).
package struct TUICPacketHeader: Equatable, Sendable {
    package var associationID: UInt16
    package var packetID: UInt16
    package var fragmentTotal: UInt8
    package var fragmentID: UInt8
    package var size: UInt16
    /// nil: address none (fragments after the first).
    package var destination: Destination?

    package init(associationID: UInt16, packetID: UInt16, fragmentTotal: UInt8, fragmentID: UInt8, size: UInt16, destination: Destination?) {
        self.associationID = associationID
        self.packetID = packetID
        self.fragmentTotal = fragmentTotal
        self.fragmentID = fragmentID
        self.size = size
        self.destination = destination
    }
}

/// What arrived on a unidirectional stream.
package enum TUICUniMessage: Equatable, Sendable {
    case authenticate(uuid: [UInt8], token: [UInt8])
    case packet(TUICPacketHeader, ByteBuffer)
    case dissociate(UInt16)
}

/// What arrived in a DATAGRAM frame.
package enum TUICDatagram: Equatable, Sendable {
    case packet(TUICPacketHeader, ByteBuffer)
    case heartbeat
}

/// TUIC encoding and parsing.
package enum TUICCodec {
    /// Family bytes 1, 2, 0 (sing-quic's `AddressSerializer`; 0xff is handled here).
    static let serializer = AddressSerializer(ipv4: 1, ipv6: 2, domain: 0)
    static let addressNone: UInt8 = 0xff
    /// Authenticate's length with its two command bytes (Go's `AuthenticateLen`).
    package static let authenticateLength = 2 + 16 + 32
    /// Packet's fixed header with its two command bytes (Go's `headerSize` less the address).
    static let packetFixedLength = 10

    // MARK: Addresses

    /// Reads an address. Outer nil: the bytes end early (nothing consumed); inner nil: address none.
    package static func readAddress(from buffer: inout ByteBuffer) throws(TUICError) -> Destination?? {
        guard let family = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        if family == addressNone {
            buffer.moveReaderIndex(forwardBy: 1)
            return .some(nil)
        }
        do {
            guard var destination = try serializer.read(from: &buffer) else { return nil }
            if let ip = destination.ip { destination.host = .ip(ip.unmapped) }
            return .some(destination)
        } catch {
            throw .address(error)
        }
    }

    /// The bytes an address takes (1 for none).
    package static func addressLength(_ destination: Destination?) -> Int {
        destination.map { serializer.encodedLength($0) } ?? 1
    }

    /// Writes an address (none for nil). Throws for a name longer than 255 bytes or empty.
    package static func writeAddress(_ destination: Destination?, to buffer: inout ByteBuffer) throws(TUICError) {
        guard let destination else {
            buffer.writeInteger(addressNone)
            return
        }
        do { try serializer.write(destination, to: &buffer) } catch { throw .address(error) }
    }

    // MARK: Commands we send

    /// Authenticate: version, command, UUID, token.
    package static func authenticate(uuid: [UInt8], token: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(authenticateLength)
        buffer.writeBytes([version, TUICCommand.authenticate.rawValue])
        buffer.writeBytes(uuid)
        buffer.writeBytes(token)
        return buffer
    }

    /// Connect's header; raw stream bytes follow it.
    package static func connect(_ destination: Destination) throws(TUICError) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes([version, TUICCommand.connect.rawValue])
        try writeAddress(destination, to: &buffer)
        return buffer
    }

    /// Dissociate.
    package static func dissociate(_ associationID: UInt16) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes([version, TUICCommand.dissociate.rawValue])
        buffer.writeInteger(associationID)
        return buffer
    }

    /// Heartbeat.
    package static var heartbeat: ByteBuffer { ByteBuffer(bytes: [version, TUICCommand.heartbeat.rawValue]) }

    /// One Packet command carrying `payload` whole.
    package static func packet(_ header: TUICPacketHeader, payload: ByteBuffer) throws(TUICError) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(packetFixedLength + addressLength(header.destination) + payload.readableBytes)
        buffer.writeBytes([version, TUICCommand.packet.rawValue])
        buffer.writeInteger(header.associationID)
        buffer.writeInteger(header.packetID)
        buffer.writeInteger(header.fragmentTotal)
        buffer.writeInteger(header.fragmentID)
        buffer.writeInteger(UInt16(truncatingIfNeeded: payload.readableBytes))
        try writeAddress(header.destination, to: &buffer)
        buffer.writeImmutableBuffer(payload)
        return buffer
    }

    /// A datagram as Packet commands of at most `maxPacketSize` bytes each (Go's `fragUDPMessage`:
    /// each fragment holds `maxPacketSize` less the first fragment's header; fragments after the
    /// first carry address none). Empty when the payload would need more than 255 fragments, is
    /// larger than 65535 bytes or the room is too small for any payload.
    package static func fragments(associationID: UInt16, packetID: UInt16, destination: Destination, payload: ByteBuffer,
                                  maxPacketSize: Int) throws(TUICError) -> [ByteBuffer] {
        guard payload.readableBytes <= 0xffff else { return [] }
        let room = maxPacketSize - packetFixedLength - addressLength(destination)
        var header = TUICPacketHeader(associationID: associationID, packetID: packetID, fragmentTotal: 1, fragmentID: 0,
                                      size: UInt16(payload.readableBytes), destination: destination)
        if payload.readableBytes <= room { return [try packet(header, payload: payload)] }
        guard room > 0 else { return [] }
        let count = (payload.readableBytes + room - 1) / room
        guard count <= 255 else { return [] }
        var rest = payload
        var result: [ByteBuffer] = []
        result.reserveCapacity(count)
        for index in 0..<count {
            guard let slice = rest.readSlice(length: min(room, rest.readableBytes)) else { break }
            header.fragmentTotal = UInt8(count)
            header.fragmentID = UInt8(index)
            header.destination = index == 0 ? destination : nil
            result.append(try packet(header, payload: slice))
        }
        return result
    }

    // MARK: Commands we receive

    /// Checks the version byte and returns the command byte; nil when fewer than two bytes are there.
    static func readCommand(from buffer: inout ByteBuffer) throws(TUICError) -> UInt8? {
        guard let versionByte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let command = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return nil }
        guard versionByte == version else { throw .unknownVersion(versionByte) }
        return command
    }

    /// A Packet header after version and command; nil (nothing consumed) when it is incomplete.
    static func readPacketHeader(from buffer: inout ByteBuffer) throws(TUICError) -> TUICPacketHeader? {
        var copy = buffer
        guard let association = copy.readInteger(as: UInt16.self), let packetID = copy.readInteger(as: UInt16.self),
              let total = copy.readInteger(as: UInt8.self), let fragment = copy.readInteger(as: UInt8.self),
              let size = copy.readInteger(as: UInt16.self) else { return nil }
        guard let destination = try readAddress(from: &copy) else { return nil }
        buffer = copy
        return TUICPacketHeader(associationID: association, packetID: packetID, fragmentTotal: total, fragmentID: fragment,
                                size: size, destination: destination)
    }

    /// A Connect stream's header: the destination, or nil (nothing consumed) until it is complete.
    /// Bytes after it stay in `buffer` (the flow's first payload).
    package static func readConnect(from buffer: inout ByteBuffer) throws(TUICError) -> Destination? {
        var copy = buffer
        guard let command = try readCommand(from: &copy) else { return nil }
        guard command == TUICCommand.connect.rawValue else { throw .unsupportedStreamCommand(command) }
        copy.moveReaderIndex(forwardBy: 2)
        guard let address = try readAddress(from: &copy) else { return nil }
        guard let destination = address else { throw .missingDestination }
        buffer = copy
        return destination
    }

    /// A unidirectional stream's command. `finished`: the stream ended, so incomplete is an error.
    /// `server` says which commands are allowed (the client takes Packet only). Nil: need more.
    package static func readUni(from buffer: inout ByteBuffer, finished: Bool, server: Bool) throws(TUICError) -> TUICUniMessage? {
        guard let message = try readUniIfComplete(from: &buffer, server: server) else {
            if finished { throw .truncated }
            return nil
        }
        return message
    }

    private static func readUniIfComplete(from buffer: inout ByteBuffer, server: Bool) throws(TUICError) -> TUICUniMessage? {
        var copy = buffer
        guard let command = try readCommand(from: &copy) else { return nil }
        copy.moveReaderIndex(forwardBy: 2)
        switch TUICCommand(rawValue: command) {
        case .authenticate where server:
            guard let uuid = copy.readBytes(length: 16), let token = copy.readBytes(length: 32) else { return nil }
            buffer = copy
            return .authenticate(uuid: uuid, token: token)
        case .packet:
            guard let header = try readPacketHeader(from: &copy), let payload = copy.readSlice(length: Int(header.size)) else { return nil }
            buffer = copy
            return .packet(header, payload)
        case .dissociate where server:
            // Go reads the two bytes after the command and refuses a first read with more.
            guard let association = copy.readInteger(as: UInt16.self) else { return nil }
            guard copy.readableBytes == 0 else { throw .invalidDissociate }
            buffer = copy
            return .dissociate(association)
        default:
            throw .unknownCommand(command)
        }
    }

    /// A DATAGRAM frame's payload (Go's `handleMessage` + `decodeUDPMessage`).
    package static func readDatagram(_ datagram: ByteBuffer) throws(TUICError) -> TUICDatagram {
        var buffer = datagram
        guard let command = try readCommand(from: &buffer) else { throw .invalidMessage }
        buffer.moveReaderIndex(forwardBy: 2)
        switch TUICCommand(rawValue: command) {
        case .packet:
            guard let header = try readPacketHeader(from: &buffer) else { throw .unexpectedEOF }
            guard buffer.readableBytes == Int(header.size) else { throw .unexpectedEOF }
            return .packet(header, buffer)
        case .heartbeat:
            return .heartbeat
        default:
            // Go prints the version byte here (`data[0]`), a quirk kept for the same log line.
            throw .unknownCommand(version)
        }
    }
}

/// Reassembles fragmented packets of one association (Go's `udpDefragger`). At most
/// `capacity` packets wait; the oldest is dropped for a new one (Go's LRU ages them out after 10 s).
/// Loop-confined, like its association.
package struct TUICDefragmenter {
    private struct Item {
        var parts: [ByteBuffer?]
        var destination: Destination?
        var count: Int
    }

    private var items: [UInt16: Item] = [:]
    private var order: [UInt16] = []
    private let capacity: Int

    package init(capacity: Int = 64) { self.capacity = capacity }

    /// Packets waiting for fragments.
    package var pendingCount: Int { items.count }

    /// Feeds one fragment; returns the whole datagram and its destination (fragment 0's) once every
    /// fragment came. A whole packet (total ≤ 1) passes through. Go's rules: an id beyond the total
    /// is dropped; a different total restarts the packet; a repeated fragment is ignored; an empty
    /// reassembled payload is dropped.
    package mutating func feed(_ header: TUICPacketHeader, payload: ByteBuffer) -> (ByteBuffer, Destination?)? {
        guard header.fragmentTotal > 1 else { return (payload, header.destination) }
        guard header.fragmentID < header.fragmentTotal else { return nil }
        let total = Int(header.fragmentTotal), id = Int(header.fragmentID)
        var item: Item
        if let existing = items[header.packetID], existing.parts.count == total {
            item = existing
            guard item.parts[id] == nil else { return nil }
            item.parts[id] = payload
            item.count += 1
        } else {
            if items[header.packetID] == nil {
                if items.count >= capacity, let oldest = order.first {
                    order.removeFirst()
                    items[oldest] = nil
                }
                order.append(header.packetID)
            }
            item = Item(parts: Array(repeating: nil, count: total), destination: nil, count: 1)
            item.parts[id] = payload
        }
        if id == 0 { item.destination = header.destination }
        guard item.count == total else {
            items[header.packetID] = item
            return nil
        }
        items[header.packetID] = nil
        order.removeAll { $0 == header.packetID }
        let size = item.parts.reduce(0) { $0 + ($1?.readableBytes ?? 0) }
        guard size > 0 else { return nil }
        var whole = ByteBuffer()
        whole.reserveCapacity(size)
        for part in item.parts { if let part { whole.writeImmutableBuffer(part) } }
        return (whole, item.destination)
    }
}

private let version = TUICModule.version
