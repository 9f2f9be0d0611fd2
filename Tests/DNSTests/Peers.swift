// Real and hostile DNS servers for transport tests, all on 127.0.0.1 and stopped on every path.
import Foundation
import NIOCore
import Synchronization
import NIOPosix
import Adapter
import Net
@testable import DNS
import TestSupport

/// One event loop group for every transport test.
let testGroup = MultiThreadedEventLoopGroup.singleton

/// A dnsmasq started on 127.0.0.1 with a random high port, answering from its own flags only.
final class Dnsmasq {
    let port: UInt16
    private let process: ChildProcess

    /// 250 octets, twice per TXT record, four records: ~2 KiB of answers for TC → TCP.
    static let bigString = String(repeating: "a", count: 250)

    /// Starts dnsmasq; waits without blocking the test's thread (the cooperative pool is 2 threads here).
    init(extra: [String] = []) async throws {
        var lastError: (any Error)? = nil
        for _ in 0..<10 {
            guard let port = freeLoopbackPort(udp: true, tcp: true) else { continue }
            let process = ChildProcess()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/dnsmasq")
            // --keep-in-foreground, not --no-daemon: in debug mode dnsmasq serves TCP in its main process, so
            // one idle pipelined TCP connection would stall every UDP answer.
            var arguments = ["--keep-in-foreground", "--log-facility=-", "--no-resolv", "--no-hosts", "--port=\(port)", "--listen-address=127.0.0.1",
                             "--bind-interfaces", "--pid-file=", "--cache-size=0",
                             "--address=/x.test/10.1.2.3", "--address=/gone.test/",
                             "--host-record=multi.test,10.0.0.1", "--host-record=multi.test,10.0.0.2",
                             "--host-record=v6.test,fd00::6"]
            for _ in 0..<4 { arguments.append("--txt-record=big.test,\(Self.bigString),\(Self.bigString)") }
            process.arguments = arguments + extra
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            do {
                try process.run()
            } catch {
                lastError = error
                continue
            }
            // Bound or failed (port taken) within a moment: probe with a TCP connect.
            for _ in 0..<100 where process.isRunning {
                if Self.canConnect(port: port) {
                    self.port = port
                    self.process = process
                    return
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            kill(process.processIdentifier, SIGKILL)
        }
        throw lastError ?? CocoaError(.fileNoSuchFile)
    }

    var destination: Destination { Destination(ip: IPAddress("127.0.0.1")!, port: port) }

    /// SIGKILL: dnsmasq started from the test process inherits a signal mask that blocks SIGTERM.
    /// Foundation reaps the child; we do not wait here, so no test thread blocks.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }

    deinit { stop() }

    private static func canConnect(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// How a hostile UDP server answers each query.
enum HostileMode: Sendable {
    /// Random octets.
    case garbage
    /// A valid answer with the ID off by one.
    case wrongID
    /// A valid answer to another question, right ID.
    case wrongQuestion
    /// Nothing at all.
    case silent
    /// Garbage, a wrong ID and a wrong question first, then the right answer.
    case noiseThenAnswer
    /// A valid answer but QR clear.
    case notAResponse
}

/// A UDP server on 127.0.0.1:<random> that misbehaves as told; counts the queries it saw.
final class HostileServer: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let mode: HostileMode
    private(set) var channel: (any Channel)!
    private let counter = Mutex(0)
    var queries: Int { counter.withLock { $0 } }

    init(mode: HostileMode) async throws {
        self.mode = mode
        channel = try await DatagramBootstrap(group: testGroup)
            .channelOption(ChannelOptions.socketOption(.so_rcvbuf), value: 1 << 20)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(self) } }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    var destination: Destination { Destination(ip: IPAddress("127.0.0.1")!, port: UInt16(channel.localAddress!.port!)) }

    func stop() async { try? await channel.close() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        counter.withLock { $0 += 1 }
        guard let query = try? DNSMessage(parsing: envelope.data), let question = query.question else { return }
        var answer = DNSMessage(id: query.id, isResponse: true, recursionDesired: true, recursionAvailable: true, questions: [question])
        answer.answers = [.address(question.name, IPAddress("192.0.2.53")!, ttl: 60)]
        func send(_ bytes: [UInt8]) {
            context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: bytes))), promise: nil)
        }
        var other = answer
        other.questions = [DNSQuestion(name: try! DNSName("other.test"), type: .a)]
        var shifted = answer
        shifted.id &+= 1
        switch mode {
        case .garbage:
            send((0..<Int.random(in: 0...600)).map { _ in UInt8.random(in: 0...255) })
        case .wrongID:
            send(try! shifted.encoded())
        case .wrongQuestion:
            send(try! other.encoded())
        case .silent:
            return
        case .notAResponse:
            var query = answer
            query.isResponse = false
            send(try! query.encoded())
        case .noiseThenAnswer:
            send([1, 2, 3])
            send(try! shifted.encoded())
            send(try! other.encoded())
            send(try! answer.encoded())
        }
    }
}

/// A TCP DNS server on 127.0.0.1:<random>. `.oneShot` answers the first query on each connection with
/// 192.0.2.54 and then closes it, like a server with a one-query idle policy; the other modes misbehave.
final class OneShotTCPServer: @unchecked Sendable {
    enum Mode: Sendable {
        case oneShot
        /// A frame whose length (5) is shorter than a DNS header.
        case shortFrame
        /// Frames of random octets, then nothing.
        case garbageFrames
        /// A length prefix promising 1000 octets, then only 10.
        case stalledFrame
    }
    let mode: Mode
    private(set) var channel: (any Channel)!
    private let accepted = Mutex(0)
    var connections: Int { accepted.withLock { $0 } }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        var buffer = ByteBuffer()
        let mode: Mode
        init(mode: Mode) { self.mode = mode }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            switch mode {
            case .oneShot: break
            case .shortFrame:
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [0, 5, 1, 2, 3, 4, 5])), promise: nil)
                return
            case .garbageFrames:
                for _ in 0..<50 {
                    let body = (0..<Int.random(in: 12...300)).map { _ in UInt8.random(in: 0...255) }
                    var frame = ByteBuffer()
                    frame.writeInteger(UInt16(body.count))
                    frame.writeBytes(body)
                    context.write(wrapOutboundOut(frame), promise: nil)
                }
                context.flush()
                return
            case .stalledFrame:
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [0x03, 0xe8] + Array(repeating: 0, count: 10))), promise: nil)
                return
            }
            buffer.writeBuffer(&incoming)
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
                  buffer.readableBytes >= 2 + Int(length),
                  let query = try? DNSMessage(parsing: buffer.getSlice(at: buffer.readerIndex + 2, length: Int(length))!),
                  let question = query.question else { return }
            var answer = DNSMessage(id: query.id, isResponse: true, questions: [question])
            answer.answers = [.address(question.name, IPAddress("192.0.2.54")!, ttl: 60)]
            let wire = try! answer.encoded()
            var out = context.channel.allocator.buffer(capacity: wire.count + 2)
            out.writeInteger(UInt16(wire.count))
            out.writeBytes(wire)
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
            context.close(promise: nil)
        }
    }

    init(mode: Mode = .oneShot) async throws {
        self.mode = mode
        channel = try await ServerBootstrap(group: testGroup)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                accepted.withLock { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Handler(mode: mode)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    var destination: Destination { Destination(ip: IPAddress("127.0.0.1")!, port: UInt16(channel.localAddress!.port!)) }

    func stop() async { try? await channel.close() }
}
