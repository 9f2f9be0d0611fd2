// VLESS: sing-box's `vless` inbound and outbound (sing-vmess vless/ for the wire format).
//
// A request is version 0 ‖ the user's UUID ‖ addons length ‖ addons (protobuf: the flow) ‖ command
// (1 TCP, 2 UDP, 3 mux) ‖ the destination as VMess writes it (port first; not for mux); the server
// answers version 0 ‖ addons length ‖ addons, then bytes flow raw.
// 1. TCP: the request goes with the first payload (`FirstWriteHeaderHandler`, 300 ms alone).
// 2. UDP, `packet_encoding` "" : command 2 to the destination, datagrams as length u16 ‖ payload.
// 3. UDP, xudp (the default): command 3 sent at once, then XUDP frames (VMess's XUDP connection).
// 4. The inbound reads the request (VLESSRequest.swift), answers with the first bytes it sends
//    and serves TCP, plain UDP and the mux command's XUDP sessions (VMess's mux server).
// Not here: `flow` (xtls-rprx-vision), packetaddr on the outbound, sing-mux on the inbound.
// The outbound's `multiplex` is Transport's `MuxClient`.
// Imports VMess for its address layout, UUID parsing and XUDP (STYLE: a protocol's codec).
package import Adapter
package import NIOCore
import VMess

/// Namespace and wire constants.
package enum VLESSModule {
    package static let version: UInt8 = 0
    package static let commandTCP: UInt8 = 1
    package static let commandUDP: UInt8 = 2
    package static let commandMux: UInt8 = 3
    /// The one flow sing-box knows (XTLS vision); this build refuses it at start.
    package static let flowVision = "xtls-rprx-vision"

    /// The request header for `command` (no address for mux); `flow` goes into the addons.
    package static func request(uuid: [UInt8], command: UInt8, destination: Destination?, flow: String = "") throws -> ByteBuffer {
        var out = ByteBuffer()
        out.writeInteger(version)
        out.writeBytes(uuid)
        if flow.isEmpty {
            out.writeInteger(UInt8(0))
        } else {
            // protobuf field 1 (flow), length-delimited: 0x0A ‖ varint length ‖ bytes.
            let bytes = Array(flow.utf8)
            var varint: [UInt8] = []
            var value = bytes.count
            repeat {
                varint.append(UInt8(value & 0x7F) | (value > 0x7F ? 0x80 : 0))
                value >>= 7
            } while value > 0
            out.writeInteger(UInt8(1 + varint.count + bytes.count))
            out.writeInteger(UInt8(0x0A))
            out.writeBytes(varint)
            out.writeBytes(bytes)
        }
        out.writeInteger(command)
        if command != commandMux, let destination {
            out.writeBytes(try VMessHeader.encodeAddress(destination))
        }
        return out
    }
}

/// Strips the server's response header (version 0 ‖ addons length ‖ addons) from the stream; a
/// wrong version closes it. Loop-confined.
final class VLESSResponseReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private var header = ByteBuffer()
    private var done = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { context.fireChannelRead(data); return }
        var bytes = unwrapInboundIn(data)
        header.writeBuffer(&bytes)
        guard let version = header.getInteger(at: header.readerIndex, as: UInt8.self),
              let addons = header.getInteger(at: header.readerIndex + 1, as: UInt8.self) else { context.read(); return }
        guard version == VLESSModule.version else {
            context.fireErrorCaught(AdapterError(.other, "vless: unexpected response version: \(version)"))
            context.close(promise: nil)
            return
        }
        guard header.readableBytes >= 2 + Int(addons) else { context.read(); return }
        header.moveReaderIndex(forwardBy: 2 + Int(addons))
        done = true
        if header.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(header)) } else { context.read() }
        header = ByteBuffer()
    }
}
