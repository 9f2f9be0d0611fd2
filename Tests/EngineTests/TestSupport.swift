// Loopback helpers for the engine tests: servers, collecting handlers, random payloads.
import Adapter
import NIOCore
import NIOPosix
import Testing

/// The event loop group the tests share (two threads: relays must work across accept loops).
let testGroup = MultiThreadedEventLoopGroup.singleton

/// Deterministic pseudo-random bytes (xorshift), so a failing transfer can be reproduced.
func testPayload(count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
    var state = seed
    var out = [UInt8]()
    out.reserveCapacity(count)
    for _ in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        out.append(UInt8(truncatingIfNeeded: state))
    }
    return out
}

/// Collects every byte a channel reads; completes `done` at end of input or close.
final class CollectHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var received: [UInt8] = []
    let done: EventLoopPromise<[UInt8]>
    /// Sent back (then output shut) once the peer's input ends: for half-close tests.
    let replyOnEOF: ((Int) -> [UInt8])?
    var finished = false

    init(loop: any EventLoop, replyOnEOF: ((Int) -> [UInt8])? = nil) {
        self.done = loop.makePromise()
        self.replyOnEOF = replyOnEOF
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received += buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            if let replyOnEOF {
                let reply = replyOnEOF(received.count)
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: reply))).whenComplete { _ in
                    channel.close(mode: .output, promise: nil)
                }
            }
            finish()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
    }

    func finish() {
        guard !finished else { return }
        finished = true
        done.succeed(received)
    }
}

/// Echoes everything back; forwards end of input as a half-close.
final class EchoHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }
    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(mode: .output, promise: nil)
        }
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// Starts a loopback TCP server whose children get `makeHandler()`; returns the server channel.
func startServer(autoRead: Bool = true,
                 _ makeHandler: @escaping @Sendable (any Channel) -> any ChannelHandler) async throws -> any Channel {
    try await ServerBootstrap(group: testGroup)
        .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        .childChannelOption(ChannelOptions.autoRead, value: autoRead)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(makeHandler(channel)) }
        }
        .bind(host: "127.0.0.1", port: 0).get()
}

/// Connects a loopback client with `handler` in its pipeline.
func connectClient(port: Int, handler: any ChannelHandler & Sendable) async throws -> any Channel {
    try await ClientBootstrap(group: testGroup)
        .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
        }
        .connect(host: "127.0.0.1", port: port).get()
}

extension Channel {
    /// The bound local port (servers bound to port 0).
    var boundPort: Int { localAddress?.port ?? 0 }
}

/// Waits for a future with a deadline, failing the test instead of hanging the suite.
func wait<T: Sendable>(_ future: EventLoopFuture<T>, timeout: TimeAmount = .seconds(10)) async throws -> T {
    let loop = future.eventLoop
    let promise = loop.makePromise(of: T.self)
    let timer = loop.scheduleTask(in: timeout) { promise.fail(TestTimeout()) }
    future.whenComplete { result in
        timer.cancel()
        promise.completeWith(result)
    }
    return try await promise.futureResult.get()
}

struct TestTimeout: Error, CustomStringConvertible {
    var description: String { "timed out" }
}
