// Several streams at once on one client session, against Go sing-box 1.12.12's anytls inbound
// (→ direct → an echo server here) and against our inbound (its router echoing): every stream
// gets its own bytes back, byte-exact, and the session carries another stream after they close.
// Go's own client never shares a busy session, so our session code is the client here.
import Adapter
import AnyTLS
import Config
import Foundation
import NIOCore
import NIOPosix
import Net
import TestSupport
import Testing

private let quiet = ContextLogger(core: .disabled, name: "")

/// Writes back what it reads.
private final class EchoHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// Our inbound's router for this test: answers the SYN and echoes the stream.
private final class EchoFlowHandler: FlowHandler, @unchecked Sendable {
    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) {
        channel.eventLoop.execute {
            _ = responder?.succeed(channel)
            let sync = channel.pipeline.syncOperations
            try? sync.addHandler(EchoHandler())
            if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
            _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            channel.read()
        }
    }
    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) { connection.close() }
}

/// Collects a stream's bytes and completes once `expected` arrived.
private final class Expect: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let expected: Int
    let done: EventLoopPromise<[UInt8]>
    var bytes: [UInt8] = []
    private var finished = false
    init(expected: Int, done: EventLoopPromise<[UInt8]>) {
        self.expected = expected
        self.done = done
    }
    /// Completes `done` once (on the loop).
    func finish(_ error: (any Error)?) {
        guard !finished else { return }
        finished = true
        if let error { done.fail(error) } else { done.succeed(bytes) }
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += Array(unwrapInboundIn(data).readableBytesView)
        if bytes.count >= expected { finish(nil) }
    }
    func channelInactive(context: ChannelHandlerContext) {
        finish(ChannelError.eof)
    }
}

private func goBinary() -> String {
    if let path = ProcessInfo.processInfo.environment["SINGBOX_GO"], !path.isEmpty { return path }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".peers/bin/sing-box-go").path
}

@Suite(.serialized) struct AnyTLSSharedSessionTests {
    @Test(arguments: ["go", "ours"]) func concurrentStreamsShareOneSession(server: String) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let echo = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) } }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { echo.close(promise: nil) }
        let echoPort = UInt16(echo.localAddress?.port ?? 0)

        var process: ChildProcess?
        var inbound: AnyTLSInbound?
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("anytls-shared-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer {
            process?.terminate()
            process?.waitUntilExit()
            try? FileManager.default.removeItem(at: directory)
        }
        let port: UInt16
        if server == "go" {
            port = try #require(freeLoopbackPort())
            let config = """
                {"log":{"level":"debug","timestamp":false},
                 "inbounds":[{"type":"anytls","tag":"in","listen":"127.0.0.1","listen_port":\(port),"users":[{"name":"u","password":"pw"}]}],
                 "outbounds":[{"type":"direct"}]}
                """
            let path = directory.appendingPathComponent("go.json")
            try config.write(to: path, atomically: true, encoding: .utf8)
            let child = ChildProcess()
            child.executableURL = URL(fileURLWithPath: goBinary())
            child.arguments = ["run", "-c", path.path]
            child.standardOutput = FileHandle.nullDevice
            child.standardError = FileHandle.nullDevice
            try child.run()
            process = child
            var up = false
            for _ in 0..<100 where !up {
                up = (try? await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: Int(port)).get())
                    .map { $0.close(promise: nil); return true } ?? false
                if !up { try await Task.sleep(for: .milliseconds(100)) }
            }
            try #require(up, "Go sing-box did not listen")
        } else {
            var options = AnyTLSInboundOptions()
            options.listen.listen = IPAddressOption("127.0.0.1")
            options.listen.listenPort = 0
            var user = AnyTLSUser()
            user.name = "u"
            user.password = "pw"
            options.users = [user]
            let ours = try AnyTLSInbound(tag: "in", options: options, flowHandler: EchoFlowHandler(), logger: quiet, group: group)
            try await ours.start(.start)
            inbound = ours
            port = try #require(ours.listener.localAddress?.port)
        }
        defer { if let inbound { Task { try? await inbound.close() } } }

        let loop = group.next()
        let connection = try await ClientBootstrap(group: loop).connect(host: "127.0.0.1", port: Int(port)).get()
        defer { connection.close(promise: nil) }
        let session = try await loop.submit {
            let session = AnyTLSSession(role: .client(AnyTLSPaddingState()), eventLoop: loop, logger: quiet)
            try connection.pipeline.syncOperations.addHandler(session)
            session.writeAuthentication(passwordHash: AnyTLSModule.passwordHash("pw"), padding: .default)
            return session
        }.get()

        /// Opens a stream to the echo server, sends `payload`, returns what came back.
        func echoed(_ payload: [UInt8]) async throws -> (AnyTLSStreamChannel, EventLoopFuture<[UInt8]>) {
            try await loop.submit {
                let stream = try session.openStream(to: Destination(ip: .v4(0x7f00_0001), port: echoPort))
                let done = loop.makePromise(of: [UInt8].self)
                let expect = Expect(expected: payload.count, done: done)
                try stream.pipeline.syncOperations.addHandler(expect)
                stream.activate()
                stream.writeAndFlush(ByteBuffer(bytes: payload), promise: nil)
                let timeout = loop.scheduleTask(in: .seconds(10)) { expect.finish(ChannelError.connectTimeout(.seconds(10))) }
                done.futureResult.whenComplete { _ in timeout.cancel() }
                return (stream, done.futureResult)
            }.get()
        }

        let payloads = (0..<4).map { index in (0..<(1_000_000 + index * 3_000)).map { UInt8(truncatingIfNeeded: $0 &* (index + 3) ^ index) } }
        var running: [(AnyTLSStreamChannel, EventLoopFuture<[UInt8]>)] = []
        for payload in payloads { running.append(try await echoed(payload)) }
        #expect(try await loop.submit { session.streamCount }.get() == 4)
        for (index, (_, future)) in running.enumerated() {
            let back = try await future.get()
            #expect(back == payloads[index], "\(server): stream \(index + 1) got \(back.count) bytes")
        }
        for (stream, _) in running { try await stream.close() }
        // The same session carries a new stream after the others closed (id 5).
        let (last, future) = try await echoed(Array("again".utf8))
        #expect(try await future.get() == Array("again".utf8))
        #expect(last.streamID == 5)
        #expect(try await loop.submit { !session.isClosed }.get())
        try await last.close()
    }
}
