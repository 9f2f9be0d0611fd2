// The outbound TLS client against a real peer (`openssl s_server` on 127.0.0.1, certificates made
// with the openssl CLI per test), and its option checks against Go sing-box 1.12.12's wording.
import Adapter
import Config
import Foundation
import NIOCore
import NIOPosix
import Net
import TLS
import Testing

@Suite(.serialized) struct TLSClientTests {
    /// Dials 127.0.0.1:`port` with the system dialer and runs the handshake; returns the channel.
    private func handshake(_ options: OutboundTLSOptions, port: UInt16) async throws -> (any Channel, TLSConnection) {
        let configuration = try #require(try TLSClientConfiguration.make(options, serverAddress: "127.0.0.1"))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let channel = try await SystemDialer().dialTCP(to: Destination(ip: .v4(0x7f00_0001), port: port), on: loop)
        let connection = try await configuration.handshake(on: channel) {
            if let holder = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) { return .before(holder) }
            return .last
        }
        return (channel, connection)
    }

    private func options(_ edit: (inout OutboundTLSOptions) -> Void) -> OutboundTLSOptions {
        var options = OutboundTLSOptions()
        options.enabled = true
        edit(&options)
        return options
    }

    /// The error text of a handshake that must fail.
    private func failure(_ options: OutboundTLSOptions, port: UInt16) async -> String {
        do {
            let (channel, _) = try await handshake(options, port: port)
            try? await channel.close()
            return "handshake succeeded"
        } catch {
            return "\(error)"
        }
    }

    @Test func certificatePathVerifiesTheServerAndCarriesBytes() async throws {
        let certificates = try TestCertificates()
        let server = try OpenSSLServer(certificates, extra: ["-alpn", "http/1.1"])
        defer { server.stop() }
        let (channel, connection) = try await handshake(options {
            $0.certificatePath = certificates.caPath
            $0.alpn = ["h2", "http/1.1"]
        }, port: server.port)
        #expect(connection.alpn == "http/1.1")
        #expect(connection.version == "TLSv1.3")
        // Plaintext both ways through the handler: s_server -www answers a GET with a status page.
        let response = try await exchange(channel, Array("GET / HTTP/1.0\r\n\r\n".utf8))
        #expect(String(decoding: response.prefix(16), as: UTF8.self) == "HTTP/1.0 200 ok\r")
        #expect(response.count > 200)
    }

    @Test func inlineCertificateLinesVerifyToo() async throws {
        let certificates = try TestCertificates()
        let server = try OpenSSLServer(certificates)
        defer { server.stop() }
        let pem = try String(contentsOfFile: certificates.caPath, encoding: .utf8)
        let (channel, connection) = try await handshake(options {
            $0.certificate = pem.split(separator: "\n").map(String.init)
        }, port: server.port)
        #expect(connection.alpn == nil)
        try await channel.close()
    }

    @Test func wrongCAFailsWithTheVerifyReason() async throws {
        let certificates = try TestCertificates()
        let server = try OpenSSLServer(certificates)
        defer { server.stop() }
        let text = await failure(options { $0.certificatePath = certificates.otherCAPath }, port: server.port)
        #expect(text == "tls handshake: certificate verify failed: unable to get local issuer certificate", "\(text)")
        // insecure skips the check altogether.
        let (channel, _) = try await handshake(options {
            $0.certificatePath = certificates.otherCAPath
            $0.insecure = true
        }, port: server.port)
        try await channel.close()
    }

    @Test func serverNameMustMatchTheCertificate() async throws {
        let certificates = try TestCertificates()
        let server = try OpenSSLServer(certificates)
        defer { server.stop() }
        let text = await failure(options {
            $0.certificatePath = certificates.caPath
            $0.serverName = "other.test"
        }, port: server.port)
        #expect(text == "tls handshake: certificate verify failed: hostname mismatch", "\(text)")
        // The name in the certificate passes, with SNI and without (disable_sni still verifies).
        for disableSNI in [false, true] {
            let (channel, _) = try await handshake(options {
                $0.certificatePath = certificates.caPath
                $0.serverName = "trojan.test"
                $0.disableSNI = disableSNI
            }, port: server.port)
            try await channel.close()
        }
        let noSNIWrongName = await failure(options {
            $0.certificatePath = certificates.caPath
            $0.serverName = "other.test"
            $0.disableSNI = true
        }, port: server.port)
        #expect(noSNIWrongName.contains("hostname mismatch"), "\(noSNIWrongName)")
    }

    @Test func versionBoundsAreEnforced() async throws {
        let certificates = try TestCertificates()
        let tls12 = try OpenSSLServer(certificates, extra: ["-tls1_2"])
        defer { tls12.stop() }
        let text = await failure(options {
            $0.certificatePath = certificates.caPath
            $0.minVersion = "1.3"
        }, port: tls12.port)
        #expect(text.hasPrefix("tls handshake: "), "\(text)")
        #expect(text.contains("protocol version") || text.contains("alert"), "\(text)")
        let (channel, connection) = try await handshake(options { $0.certificatePath = certificates.caPath }, port: tls12.port)
        #expect(connection.version == "TLSv1.2")
        try await channel.close()

        let any = try OpenSSLServer(certificates)
        defer { any.stop() }
        let (capped, cappedConnection) = try await handshake(options {
            $0.certificatePath = certificates.caPath
            $0.maxVersion = "1.2"
        }, port: any.port)
        #expect(cappedConnection.version == "TLSv1.2")
        try await capped.close()
    }

    @Test func cipherSuitesRestrictTLS12() async throws {
        let certificates = try TestCertificates()
        let server = try OpenSSLServer(certificates, extra: ["-tls1_2"])
        defer { server.stop() }
        for (goName, openSSLName) in [("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"),
                                      ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384")] {
            let (channel, connection) = try await handshake(options {
                $0.certificatePath = certificates.caPath
                $0.cipherSuites = [goName]
            }, port: server.port)
            #expect(connection.cipher == openSSLName)
            try await channel.close()
        }
        // An RSA-only suite cannot meet an ECDSA certificate: the handshake fails.
        let text = await failure(options {
            $0.certificatePath = certificates.caPath
            $0.cipherSuites = ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
        }, port: server.port)
        #expect(text.hasPrefix("tls handshake: "), "\(text)")
    }

    /// Option errors, worded as Go's tls.NewClient (and its release build's uTLS stubs).
    @Test func optionErrorsUseGoWording() throws {
        func message(_ edit: (inout OutboundTLSOptions) -> Void) -> String {
            do {
                _ = try TLSClientConfiguration.make(options(edit), serverAddress: "example.com")
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(message { $0.minVersion = "1.4" } == "parse min_version: unknown tls version:1.4")
        #expect(message { $0.maxVersion = "tls1.3" } == "parse max_version: unknown tls version:tls1.3")
        #expect(message { $0.cipherSuites = ["TLS_RSA_WITH_RC4_128_SHA"] } == "unknown cipher_suite: TLS_RSA_WITH_RC4_128_SHA")
        // Go 1.12.12's release build takes RSA key exchange for unknown too.
        #expect(message { $0.cipherSuites = ["TLS_RSA_WITH_AES_128_GCM_SHA256"] } == "unknown cipher_suite: TLS_RSA_WITH_AES_128_GCM_SHA256")
        #expect(message { $0.certificatePath = "/nonexistent/ca.pem" } == "read certificate: open /nonexistent/ca.pem: no such file or directory")
        #expect(message { $0.certificate = ["not a pem"] } == "failed to parse certificate:\n\nnot a pem")
        #expect(message { $0.utls = .init(); $0.utls?.enabled = true }
                == "uTLS is not included in this build, rebuild with -tags with_utls")
        #expect(message { $0.reality = .init(); $0.reality?.enabled = true }
                == "uTLS, which is required by reality is not included in this build, rebuild with -tags with_utls")
        #expect(message { $0.fragment = true } == "not implemented: tls.fragment")
        #expect(message { $0.recordFragment = true } == "not implemented: tls.record_fragment")
        #expect(message { $0.cipherSuites = ["TLS_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"] } == "accepted")
        // Not enabled: no TLS at all.
        var disabled = OutboundTLSOptions()
        disabled.minVersion = "bogus"
        #expect(try TLSClientConfiguration.make(disabled, serverAddress: "x") == nil)
    }

    /// Writes `request` through `channel` and collects what comes back until the server closes.
    private func exchange(_ channel: any Channel, _ request: [UInt8]) async throws -> [UInt8] {
        let done = channel.eventLoop.makePromise(of: [UInt8].self)
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(Collector(done: done))
            if let holder = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) {
                channel.pipeline.syncOperations.removeHandler(holder, promise: nil)
            }
            _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            channel.read()
            channel.writeAndFlush(channel.allocator.buffer(bytes: request), promise: nil)
        }.get()
        return try await done.futureResult.get()
    }
}

/// Gathers every byte until the channel ends (input closed or inactive).
private final class Collector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var bytes: [UInt8] = []
    private let done: EventLoopPromise<[UInt8]>
    init(done: EventLoopPromise<[UInt8]>) { self.done = done }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += unwrapInboundIn(data).readableBytesView
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            done.succeed(bytes)
            context.close(promise: nil)
        }
    }
    func channelInactive(context: ChannelHandlerContext) { done.succeed(bytes) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { done.fail(error) }
}
