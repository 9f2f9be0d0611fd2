// The client side of a SOCKS handshake as a pure state machine, as sing's client runs it:
//   SOCKS5: greeting offering one method (X'02' with a username, else X'00') → RFC 1929 exchange
//           if the server picked X'02' → request → reply; REP 0 succeeds
//   SOCKS4/4A: request with USERID = username → 8-byte reply; CD 90 succeeds
package import Adapter
package import NIOCore

/// One client handshake. Not thread-safe.
package struct SOCKSClientHandshake: Sendable {
    /// What the owner must do next.
    package enum Action: Sendable, Equatable {
        case needMore
        /// Write these bytes, then call `advance` again.
        case send(ByteBuffer)
        /// The server accepted; `bind` is BND.ADDR/BND.PORT (SOCKS4: DSTIP/DSTPORT).
        case done(bind: Destination)
    }

    private enum State: Sendable {
        case methodSelection, passwordReply, reply, done
    }

    package let version: UInt8
    package let command: UInt8
    package let destination: Destination
    package let username: String
    package let password: String
    private var state: State

    /// `version` is 4 (also 4A: a domain destination is sent by name) or 5; `command` a SOCKS5
    /// command code (CONNECT 1, UDP ASSOCIATE 3; SOCKS4 knows CONNECT only).
    package init(version: UInt8, command: UInt8, destination: Destination, username: String = "", password: String = "") {
        self.version = version
        self.command = command
        self.destination = destination
        self.username = username
        self.password = password
        self.state = version == SOCKS4.version ? .reply : .methodSelection
    }

    /// The first bytes to send. Throws when a field does not fit the wire format.
    package func start() throws(SOCKSError) -> ByteBuffer {
        var out = ByteBuffer()
        if version == SOCKS4.version {
            guard command == SOCKS5.commandConnect else { throw .unsupportedNetwork }
            try SOCKS4Request(command: SOCKS4.commandConnect, destination: destination, userID: username).write(to: &out)
        } else {
            let method = username.isEmpty ? SOCKS5.methodNoAuthentication : SOCKS5.methodUsernamePassword
            SOCKS5Greeting(methods: [method]).write(to: &out)
        }
        return out
    }

    /// Consumes the server's bytes. Throws on a refusal or malformed reply.
    package mutating func advance(_ buffer: inout ByteBuffer) throws(SOCKSError) -> Action {
        switch state {
        case .methodSelection:
            guard let selection = try SOCKS5MethodSelection.read(from: &buffer) else { return .needMore }
            switch selection.method {
            case SOCKS5.methodNoAuthentication:
                state = .reply
                return .send(try request())
            case SOCKS5.methodUsernamePassword where !username.isEmpty:
                state = .passwordReply
                var out = ByteBuffer()
                try SOCKS5PasswordRequest(username: username, password: password).write(to: &out)
                return .send(out)
            case SOCKS5.methodNoAcceptable:
                throw .noAcceptableMethod
            default:
                throw .unexpectedMethod(selection.method)
            }
        case .passwordReply:
            guard let reply = try SOCKS5PasswordReply.read(from: &buffer) else { return .needMore }
            guard reply.status == SOCKS5.passwordSuccess else { throw .authenticationFailed(status: reply.status) }
            state = .reply
            return .send(try request())
        case .reply:
            if version == SOCKS4.version {
                guard let reply = try SOCKS4Reply.read(from: &buffer) else { return .needMore }
                guard reply.code == SOCKS4.granted else { throw .rejected(code: reply.code) }
                state = .done
                return .done(bind: Destination(ip: .v4(reply.ipv4), port: reply.port))
            }
            guard let reply = try SOCKS5Message.read(from: &buffer) else { return .needMore }
            guard reply.code == SOCKS5.replySucceeded else { throw .rejected(code: reply.code) }
            state = .done
            return .done(bind: reply.address)
        case .done:
            return .needMore
        }
    }

    private func request() throws(SOCKSError) -> ByteBuffer {
        var out = ByteBuffer()
        try SOCKS5Message(code: command, address: destination).write(to: &out)
        return out
    }
}
