// The trojan request header and UDP frames (see Trojan.swift for the layout).
package import Adapter
package import NIOCore
import SOCKS

/// Why bytes could not be written or read as trojan. Thrown per frame; the flow is closed.
package enum TrojanError: Error, Equatable, CustomStringConvertible {
    /// A domain longer than the address field's length byte.
    case domainTooLong(Int)
    /// An empty domain or an unknown address type in a frame from the server.
    case badAddress
    /// The payload does not fit the 16-bit length field.
    case packetTooLarge(Int)

    package var description: String {
        switch self {
        case .domainTooLong(let length): "trojan: domain too long: \(length) bytes"
        case .badAddress: "trojan: read destination: bad address"
        case .packetTooLarge(let length): "trojan: packet too large: \(length) bytes"
        }
    }
}

/// Encodes and decodes trojan's bytes. Pure functions over `ByteBuffer`.
package enum TrojanCodec {
    private static let crlf: UInt16 = 0x0d0a

    /// Bytes of the request header for `destination` (key, CRLF, command, address, CRLF).
    package static func requestLength(for destination: Destination) -> Int {
        TrojanModule.keyLength + 2 + 1 + destination.socks5EncodedLength + 2
    }

    /// Appends `key CRLF command address CRLF` to `buffer`.
    package static func writeRequest(key: [UInt8], command: UInt8, destination: Destination,
                                     to buffer: inout ByteBuffer) throws(TrojanError) {
        let start = buffer.writerIndex
        buffer.writeBytes(key)
        buffer.writeInteger(crlf)
        buffer.writeInteger(command)
        do {
            try destination.writeSOCKS5(to: &buffer)
        } catch {
            buffer.moveWriterIndex(to: start)
            throw .domainTooLong(destination.domain?.utf8.count ?? 0)
        }
        buffer.writeInteger(crlf)
    }

    /// Bytes of a UDP frame's header for `destination` (address, length, CRLF).
    package static func packetHeaderLength(for destination: Destination) -> Int {
        destination.socks5EncodedLength + 4
    }

    /// Appends one UDP frame: address, length, CRLF, payload.
    package static func writePacket(_ payload: ByteBuffer, to destination: Destination,
                                    into buffer: inout ByteBuffer) throws(TrojanError) {
        guard payload.readableBytes <= Int(UInt16.max) else { throw .packetTooLarge(payload.readableBytes) }
        let start = buffer.writerIndex
        do {
            try destination.writeSOCKS5(to: &buffer)
        } catch {
            buffer.moveWriterIndex(to: start)
            throw .domainTooLong(destination.domain?.utf8.count ?? 0)
        }
        buffer.writeInteger(UInt16(payload.readableBytes))
        buffer.writeInteger(crlf)
        buffer.writeImmutableBuffer(payload)
    }

    /// Reads one whole UDP frame from the front of `buffer`: nil (consuming nothing) until it is
    /// all there. Go skips the two bytes after the length without looking at them; so do we.
    package static func readPacket(from buffer: inout ByteBuffer) throws(TrojanError) -> (Destination, ByteBuffer)? {
        var view = buffer
        let source: Destination?
        do {
            source = try Destination.readSOCKS5(from: &view)
        } catch {
            throw .badAddress
        }
        guard let source, let length = view.readInteger(as: UInt16.self),
              view.readableBytes >= 2 + Int(length) else { return nil }
        view.moveReaderIndex(forwardBy: 2)
        guard let payload = view.readSlice(length: Int(length)) else { return nil }
        buffer.moveReaderIndex(to: view.readerIndex)
        return (source, payload)
    }
}
