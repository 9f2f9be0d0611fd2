// The inbound TLS server (`TLSServerConfiguration` + `TLSHandler` in server mode) on a loopback
// NIO listener: our client against it (ALPN, 1 MiB echoed byte-exact with close_notify both
// ways), and bad input — garbage, a truncated record — that must close the connection and fail
// the handshake future without trapping. Real clients (curl, s_client, Go) are in InteropTests.
import Adapter
import Config
import Foundation
import NIOCore
import NIOPosix
import Net
import TLS
import Testing

/// Echoes plaintext; ends its output when the client's input ends.
private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }
    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { context.close(mode: .output, promise: nil) }
    }
}

/// Gathers every byte until the input ends, then fulfills `done`.
private final class Gatherer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var bytes: [UInt8] = []
    private let done: EventLoopPromise<[UInt8]>
    init(done: EventLoopPromise<[UInt8]>) { self.done = done }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { bytes += unwrapInboundIn(data).readableBytesView }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { done.succeed(bytes) }
    }
    func channelInactive(context: ChannelHandlerContext) { done.succeed(bytes) }
}

/// Handshake results the server's children report, read by the test.
private final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Result<TLSConnection, any Error>] = []
    func append(_ item: Result<TLSConnection, any Error>) { lock.withLock { items.append(item) } }
    var all: [Result<TLSConnection, any Error>] { lock.withLock { items } }
}

@Suite(.serialized) struct TLSServerTests {
    /// A loopback listener whose children run the TLS server then `EchoHandler`; handshake results
    /// are collected in `results`.
    private final class Server: @unchecked Sendable {
        let channel: any Channel
        let results = ResultsBox()
        init(_ configuration: TLSServerConfiguration) async throws {
            let results = self.results
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        try configuration.addServerHandler(to: child).whenComplete { result in results.append(result) }
                        try child.pipeline.syncOperations.addHandler(EchoHandler())
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
        }
        var port: UInt16 { UInt16(channel.localAddress?.port ?? 0) }
    }

    private func serverOptions(_ certificates: TestCertificates, _ edit: (inout InboundTLSOptions) -> Void = { _ in }) -> InboundTLSOptions {
        var options = InboundTLSOptions()
        options.enabled = true
        options.certificatePath = certificates.certificatePath
        options.keyPath = certificates.keyPath
        edit(&options)
        return options
    }

    @Test func ourClientNegotiatesALPNAndEchoesBytes() async throws {
        let certificates = try TestCertificates()
        let configuration = try #require(try TLSServerConfiguration.make(serverOptions(certificates) { $0.alpn = ["h2", "http/1.1"] }))
        let server = try await Server(configuration)
        defer { server.channel.close(promise: nil) }
        var client = OutboundTLSOptions()
        client.enabled = true
        client.certificatePath = certificates.caPath
        client.alpn = ["http/1.1", "h2"]
        let clientConfiguration = try #require(try TLSClientConfiguration.make(client, serverAddress: "127.0.0.1"))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let channel = try await SystemDialer().dialTCP(to: Destination(ip: .v4(0x7f00_0001), port: server.port), on: loop)
        let connection = try await clientConfiguration.handshake(on: channel) {
            if let holder = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) { return .before(holder) }
            return .last
        }
        #expect(connection.alpn == "h2")  // the server's preference wins, as in Go
        let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        let done = loop.makePromise(of: [UInt8].self)
        try await loop.submit {
            try channel.pipeline.syncOperations.addHandler(Gatherer(done: done))
            if let holder = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) {
                channel.pipeline.syncOperations.removeHandler(holder, promise: nil)
            }
            _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            channel.read()
            channel.write(channel.allocator.buffer(bytes: payload), promise: nil)
            channel.close(mode: .output, promise: nil)
        }.get()
        let echoed = try await done.futureResult.get()
        #expect(echoed.count == payload.count)
        #expect(echoed == payload)
        try? await channel.close()
        let results = server.results.all
        #expect(results.count == 1)
        if case .success(let accepted)? = results.first {
            #expect(accepted.alpn == "h2")
        } else {
            Issue.record("server handshake: \(results)")
        }
    }

    /// Garbage, a truncated ClientHello followed by FIN, and plaintext HTTP: each closes the
    /// connection and fails the handshake with a reason.
    @Test(arguments: ["garbage", "truncated", "http"]) func badInputClosesTheConnection(kind: String) async throws {
        let certificates = try TestCertificates()
        let configuration = try #require(try TLSServerConfiguration.make(serverOptions(certificates)))
        let server = try await Server(configuration)
        defer { server.channel.close(promise: nil) }
        let bytes: [UInt8]
        switch kind {
        case "garbage": bytes = (0..<700).map { UInt8(truncatingIfNeeded: $0 &* 167 &+ 13) }
        case "truncated": bytes = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]
        default: bytes = Array("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n".utf8)
        }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let channel = try await SystemDialer().dialTCP(to: Destination(ip: .v4(0x7f00_0001), port: server.port), on: loop)
        let done = loop.makePromise(of: [UInt8].self)
        try await loop.submit {
            try channel.pipeline.syncOperations.addHandler(Gatherer(done: done))
            if let holder = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) {
                channel.pipeline.syncOperations.removeHandler(holder, promise: nil)
            }
            _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            channel.read()
            channel.writeAndFlush(channel.allocator.buffer(bytes: bytes), promise: nil)
            if kind == "truncated" { channel.close(mode: .output, promise: nil) }
        }.get()
        // The server ends the connection (at most an alert comes back first).
        let reply = try await done.futureResult.get()
        #expect(reply.count < 64)
        try? await channel.close()
        var results: [Result<TLSConnection, any Error>] = []
        for _ in 0..<100 {
            results = server.results.all
            if !results.isEmpty { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        guard case .failure(let error)? = results.first else {
            Issue.record("handshake did not fail: \(results)")
            return
        }
        if kind == "http" { #expect("\(error)" == "tls: first record does not look like a TLS handshake") }
        if kind == "truncated" { #expect("\(error)" == "EOF") }
    }

    /// Go's option errors, before any file is touched by OpenSSL.
    @Test func optionErrors() throws {
        let certificates = try TestCertificates()
        func failure(_ edit: (inout InboundTLSOptions) -> Void) -> String {
            do {
                _ = try TLSServerConfiguration.make(serverOptions(certificates, edit))
                return "built"
            } catch {
                return "\(error)"
            }
        }
        #expect(failure { $0.certificatePath = "/nonexistent.pem" } == "read certificate: open /nonexistent.pem: no such file or directory")
        #expect(failure { $0.keyPath = "/tmp" } == "read key: read /tmp: is a directory")
        #expect(failure { $0.keyPath = nil } == "missing key")
        #expect(failure { $0.maxVersion = "1.5" } == "parse max_version: unknown tls version:1.5")
        #expect(failure { $0.certificatePath = certificates.keyPath }
            == "parse x509 key pair: tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched")
        #expect(failure { $0.ech = InboundECHOptions(); $0.ech?.enabled = true } == "not implemented: tls.ech")
        #expect(failure { $0.enabled = false } == "built")
    }
}
