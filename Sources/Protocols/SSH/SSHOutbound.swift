// The `ssh` outbound (see SSH.swift for the shape): connections per event loop, a `direct-tcpip`
// channel per flow.
package import Adapter
package import Config
import Foundation
package import NIOCore
import NIOConcurrencyHelpers
import NIOSSH
import Net

/// sing-box's `ssh` outbound: TCP only, as in Go.
package final class SSHOutbound: Outbound, @unchecked Sendable {
    // Invariant: `connections` is only touched under its lock; each connection lives on its loop.
    package let type = "ssh"
    package let tag: String
    package let networks: Set<NetworkKind> = [.tcp]
    package let dependencies: [String]
    private let server: Destination
    private let credentials: SSHCredentials
    private let hostKeys: [NIOSSHPublicKey]
    private let dialer: any Dialer
    private let logger: ContextLogger
    private let connections = NIOLockedValueBox<[ObjectIdentifier: EventLoopFuture<SSHConnection>]>([:])
    /// How long the SSH handshake and authentication may take after the TCP connect.
    static let handshakeTimeout: TimeAmount = .seconds(15)

    /// Reads the key (file or lines) and the pinned host keys; throws Go's errors: `read private key`,
    /// `parse private key`, `parse host key`.
    package init(tag: String, options: SSHOutboundOptions, dialer: any Dialer, logger: ContextLogger) throws {
        self.tag = tag
        dependencies = options.dial.detour.map { [$0] } ?? []
        server = Destination(host: Host(options.server.server), port: options.server.serverPort == 0 ? 22 : options.server.serverPort)
        var key: NIOSSHPrivateKey?
        if !options.privateKey.isEmpty || options.privateKeyPath != nil {
            let text: String
            if !options.privateKey.isEmpty {
                text = options.privateKey.joined(separator: "\n")
            } else {
                let path = Self.expandEnvironment(options.privateKeyPath ?? "")
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw AdapterError(.other, "read private key: open \(path): no such file or directory")
                }
                text = String(decoding: data, as: UTF8.self)
            }
            do { key = try SSHPrivateKey.parse(text, passphrase: options.privateKeyPassphrase) } catch {
                throw AdapterError(.other, "parse private key: \(error)")
            }
        }
        credentials = SSHCredentials(user: (options.user ?? "").isEmpty ? "root" : options.user!,
                                     password: (options.password ?? "").isEmpty ? nil : options.password, key: key)
        hostKeys = try options.hostKey.map { line in
            do { return try NIOSSHPublicKey(openSSHPublicKey: line.trimmingCharacters(in: .whitespaces)) } catch {
                throw AdapterError(.other, "parse host key \(line)")
            }
        }
        self.dialer = dialer
        self.logger = logger
    }

    package func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        // Go's ssh outbound logs nothing of its own per flow.
        let connection = try await connection(on: eventLoop)
        let destination = metadata.destination
        let opened = eventLoop.makePromise(of: Channel.self)
        eventLoop.execute {
            let target = SSHChannelType.DirectTCPIP(targetHost: destination.host.description, targetPort: Int(destination.port),
                                                    originatorAddress: try! SocketAddress(ipAddress: "127.0.0.1", port: 0))  // a literal
            connection.handler.createChannel(opened, channelType: .directTCPIP(target)) { child, _ in
                child.setOption(ChannelOptions.autoRead, value: false).flatMapThrowing {
                    try child.pipeline.syncOperations.addHandlers([SSHChannelBytesHandler(), FlowBufferHandler(channelTakesOnlyBasicOptions: true)])
                }
            }
        }
        do {
            return try await opened.futureResult.get()
        } catch {
            throw AdapterError(.other, "open ssh channel to \(destination): \(error)")
        }
    }

    package func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        throw AdapterError(.unsupportedNetwork, "UDP is not supported by outbound: \(tag)")
    }

    package func close() async throws {
        let open = connections.withLockedValue { table in
            defer { table.removeAll() }
            return Array(table.values)
        }
        for future in open {
            if let connection = try? await future.get() { try? await connection.channel.close() }
        }
    }

    /// The loop's SSH connection: the open one, the one being opened, or a new one.
    private func connection(on loop: any EventLoop) async throws -> SSHConnection {
        let key = ObjectIdentifier(loop)
        let (future, promise): (EventLoopFuture<SSHConnection>, EventLoopPromise<SSHConnection>?) = connections.withLockedValue { table in
            if let existing = table[key] { return (existing, nil) }
            let promise = loop.makePromise(of: SSHConnection.self)
            table[key] = promise.futureResult
            return (promise.futureResult, promise)
        }
        if let promise {
            do {
                let connection = try await open(on: loop)
                connection.channel.closeFuture.whenComplete { [weak self] _ in self?.forget(future) }
                promise.succeed(connection)
            } catch {
                forget(future)
                promise.fail(error)
            }
        }
        return try await future.get()
    }

    private func forget(_ future: EventLoopFuture<SSHConnection>) {
        connections.withLockedValue { table in
            for (key, value) in table where value === future { table[key] = nil }
        }
    }

    /// Dials the server, runs the SSH handshake and authentication on `loop`.
    private func open(on loop: any EventLoop) async throws -> SSHConnection {
        let channel = try await dialer.dialTCP(to: server, on: loop)
        let ready = loop.makePromise(of: Void.self)
        let connection: SSHConnection
        do {
            connection = try await loop.submit { [credentials, hostKeys] in
                let handler = NIOSSHHandler(role: .client(SSHClientConfiguration(
                                                userAuthDelegate: SSHUserAuthentication(credentials),
                                                serverAuthDelegate: SSHHostKeyCheck(hostKeys))),
                                            allocator: channel.allocator, inboundChildChannelInitializer: nil)
                let sync = channel.pipeline.syncOperations
                // After the dialer's holder, so the server's banner it may hold flows into SSH.
                try sync.addHandler(handler)
                try sync.addHandler(SSHConnectionWatcher(ready: ready))
                if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
                channel.setOption(ChannelOptions.autoRead, value: true).whenSuccess { channel.read() }
                let timeout = loop.scheduleTask(in: Self.handshakeTimeout) {
                    ready.fail(AdapterError(.other, "ssh handshake timed out"))
                }
                ready.futureResult.whenComplete { _ in timeout.cancel() }
                return SSHConnection(channel: channel, handler: handler)
            }.get()
            try await ready.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw AdapterError(.other, "connect to ssh server: \(error)")
        }
        return connection
    }

    /// `$VAR` and `${VAR}` from the environment, as Go's `os.ExpandEnv`.
    static func expandEnvironment(_ path: String) -> String {
        var out = "", index = path.startIndex
        while index < path.endIndex {
            guard path[index] == "$" else { out.append(path[index]); index = path.index(after: index); continue }
            var name = "", next = path.index(after: index)
            if next < path.endIndex, path[next] == "{" {
                guard let close = path[next...].firstIndex(of: "}") else { out += path[index...]; break }
                name = String(path[path.index(after: next)..<close])
                next = path.index(after: close)
            } else {
                while next < path.endIndex, path[next].isLetter || path[next].isNumber || path[next] == "_" {
                    name.append(path[next]); next = path.index(after: next)
                }
            }
            out += ProcessInfo.processInfo.environment[name] ?? ""
            index = next
        }
        return out
    }
}

/// One authenticated SSH connection on its loop.
struct SSHConnection: @unchecked Sendable {
    let channel: any Channel
    let handler: NIOSSHHandler
}

/// Who we are: user name, password, key.
struct SSHCredentials: Sendable {
    let user: String
    let password: String?
    let key: NIOSSHPrivateKey?
}

/// Offers the key, then the password, each once and only if the server accepts that method (Go's
/// order: password first is what Go's list says, but servers try methods in the order offered and
/// a key never locks an account); "none" when nothing is configured.
final class SSHUserAuthentication: NIOSSHClientUserAuthenticationDelegate, @unchecked Sendable {
    private let credentials: SSHCredentials
    private var tried: [String] = []

    init(_ credentials: SSHCredentials) { self.credentials = credentials }

    func nextAuthenticationType(availableMethods: NIOSSHAvailableUserAuthenticationMethods,
                                nextChallengePromise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>) {
        if let key = credentials.key, availableMethods.contains(.publicKey), !tried.contains("publickey") {
            tried.append("publickey")
            nextChallengePromise.succeed(NIOSSHUserAuthenticationOffer(username: credentials.user, serviceName: "",
                                                                       offer: .privateKey(.init(privateKey: key))))
        } else if let password = credentials.password, availableMethods.contains(.password), !tried.contains("password") {
            tried.append("password")
            nextChallengePromise.succeed(NIOSSHUserAuthenticationOffer(username: credentials.user, serviceName: "",
                                                                       offer: .password(.init(password: password))))
        } else if credentials.key == nil, credentials.password == nil, tried.isEmpty {
            tried.append("none")
            nextChallengePromise.succeed(NIOSSHUserAuthenticationOffer(username: credentials.user, serviceName: "", offer: .none))
        } else {
            nextChallengePromise.fail(AdapterError(.other,
                "ssh: unable to authenticate, attempted methods [\((["none"] + tried).joined(separator: " "))], no supported methods remain"))
        }
    }
}

/// Pins the server's host key when `host_key` lists any (Go's HostKeyCallback), else accepts it.
final class SSHHostKeyCheck: NIOSSHClientServerAuthenticationDelegate, @unchecked Sendable {
    private let accepted: [NIOSSHPublicKey]

    init(_ accepted: [NIOSSHPublicKey]) { self.accepted = accepted }

    func validateHostKey(hostKey: NIOSSHPublicKey, validationCompletePromise: EventLoopPromise<Void>) {
        if accepted.isEmpty || accepted.contains(hostKey) {
            validationCompletePromise.succeed(())
            return
        }
        // "ssh-ed25519 AAAA…" → Go's "host key mismatch, server send ssh-ed25519 AAAA…".
        let line = String(openSSHPublicKey: hostKey).split(separator: " ").prefix(2).joined(separator: " ")
        validationCompletePromise.fail(AdapterError(.other, "host key mismatch, server send \(line)"))
    }
}

/// Completes `ready` when authentication succeeds, fails it with the first error or the close.
final class SSHConnectionWatcher: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Any
    private let ready: EventLoopPromise<Void>
    private var failure: (any Error)?

    init(ready: EventLoopPromise<Void>) { self.ready = ready }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is UserAuthSuccessEvent { ready.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failure == nil { failure = error }
        ready.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(failure ?? AdapterError(.other, "EOF"))
        context.fireChannelInactive()
    }
}

/// A `direct-tcpip` channel's data as plain bytes (extended data, i.e. stderr, has no meaning here).
final class SSHChannelBytesHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = SSHChannelData
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = SSHChannelData

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard case .channel = message.type, case .byteBuffer(let bytes) = message.data else { return }
        context.fireChannelRead(wrapInboundOut(bytes))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(wrapOutboundOut(SSHChannelData(type: .channel, data: .byteBuffer(unwrapOutboundIn(data)))), promise: promise)
    }
}
