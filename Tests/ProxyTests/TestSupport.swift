// Shared helpers for the proxy unit tests.
import Adapter
import NIOCore
import Synchronization

/// A buffer holding `bytes`.
func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

/// A buffer holding `text` as UTF-8.
func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

/// The readable bytes of `buffer`.
func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }

/// Logs nowhere.
let silentLogger = ContextLogger(core: .disabled, name: "test")

/// A router stand-in that records what inbounds hand it.
final class RecordingFlowHandler: FlowHandler {
    struct TCPFlow: @unchecked Sendable {
        var channel: any Channel
        var metadata: FlowMetadata
        var responder: (any HandshakeResponder)?
    }
    struct UDPFlow: @unchecked Sendable {
        var connection: any PacketConnection
        var metadata: FlowMetadata
    }
    private let state = Mutex<([TCPFlow], [UDPFlow])>(([], []))

    var tcp: [TCPFlow] { state.withLock { $0.0 } }
    var udp: [UDPFlow] { state.withLock { $0.1 } }

    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) {
        state.withLock { $0.0.append(TCPFlow(channel: channel, metadata: metadata, responder: responder)) }
    }

    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) {
        state.withLock { $0.1.append(UDPFlow(connection: connection, metadata: metadata)) }
    }
}
