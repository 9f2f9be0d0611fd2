// QUICDriver: our client and our server, each on a real NIO UDP channel on loopback, driven by
// the event loop's timers — a stream of 1 MB and a DATAGRAM echoed, then an application close.
import NIOCore
import NIOPosix
import NetstackWire
@testable import QUIC
import QUICNIO
import Synchronization
import Testing

@Suite(.serialized) struct QUICDriverTests {
    @Test func nioClientAndServerEchoStreamAndDatagram() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let (serverChannel, server) = try await QUICDriver.bind(group: group, host: "127.0.0.1", port: 0, server: serverConfiguration()).get()
        defer { serverChannel.close(promise: nil) }
        let (clientChannel, client) = try await QUICDriver.bind(group: group, host: "127.0.0.1", port: 0).get()
        defer { clientChannel.close(promise: nil) }
        let serverAddress = try #require(serverChannel.localAddress)
        let body = payload(5, count: 1_000_000)
        let done = clientChannel.eventLoop.makePromise(of: (stream: [UInt8], datagram: String, closed: QUICCloseReason?).self)
        let serverClosed = serverChannel.eventLoop.makePromise(of: QUICCloseReason.self)

        try await serverChannel.eventLoop.submit {
            var finished: Set<UInt64> = []
            server.onEvent = { connection, event in
                switch event {
                case .datagram(let data): connection.sendDatagram(data)
                case .streamReadable: echoStreams(connection, finished: &finished)
                case .closed(let reason): serverClosed.succeed(reason)
                default: break
                }
                server.flush(connection)
            }
        }.get()
        try await clientChannel.eventLoop.submit {
            var received: [UInt8] = []
            var echoedDatagram = ""
            var stream: UInt64?
            var streamDone = false
            func closeWhenDone(_ connection: QUICConnection) {
                guard streamDone, !echoedDatagram.isEmpty else { return }
                connection.close(errorCode: 0x33, reason: "finished", now: Instant(nanoseconds: NIODeadline.now().uptimeNanoseconds))
            }
            client.onEvent = { connection, event in
                switch event {
                case .handshakeCompleted:
                    stream = connection.openStream(bidirectional: true)
                    if let stream { try? connection.writeStream(stream, ByteBuffer(bytes: body), fin: true) }
                    connection.sendDatagram(ByteBuffer(string: "over nio"))
                case .datagram(let data):
                    echoedDatagram = String(buffer: data)
                    closeWhenDone(connection)
                case .streamReadable(let id):
                    while let data = connection.readStream(id) { received += data.bytes }
                    if connection.isStreamFinished(id) { streamDone = true }
                    closeWhenDone(connection)
                case .closed(let reason): done.succeed((received, echoedDatagram, reason))
                default: break
                }
                client.flush(connection)
            }
            _ = try client.connect(to: serverAddress, configuration: clientConfiguration())
        }.get()
        let timeout = clientChannel.eventLoop.scheduleTask(in: .seconds(30)) { done.fail(ChannelError.connectTimeout(.seconds(30))) }
        let result = try await done.futureResult.get()
        timeout.cancel()
        let same = result.stream == body
        #expect(same, "echoed \(result.stream.count) of \(body.count)")
        #expect(result.datagram == "over nio")
        let reason = try await serverClosed.futureResult.get()
        #expect(reason == QUICCloseReason(errorCode: 0x33, isApplication: true, reason: "finished", byPeer: true))
        #expect(result.closed?.byPeer == false)
    }
}
