// The server side of a SOCKS handshake as a pure state machine: bytes in, replies and one
// decision out. Channel handlers (`SOCKSServerHandler`) own the I/O; tests drive it directly.
//
// 1. the first byte picks the version (4 or 5; anything else fails)
// 2. SOCKS4: one request; CONNECT only; with users, the USERID must be a user with an empty password
// 3. SOCKS5: greeting → method selection (X'02' when users are set, X'00' otherwise, as sing);
//    RFC 1929 exchange when X'02'; then one request: CONNECT or UDP ASSOCIATE, else REP 7
// 4. the request is handed out; the success reply is written later, after the outbound dialed
//    (sing's LazyConn), by `SOCKSServerHandshake.successReply`.
package import Adapter
package import NIOCore

/// Username/password pairs an inbound accepts (sing's `auth.Authenticator`). Empty means open.
package struct SOCKSUsers: Sendable {
    private var passwords: [String: String]

    /// Later duplicates win, as Go's map build does.
    package init(_ users: [(username: String, password: String)]) {
        var passwords: [String: String] = [:]
        for user in users { passwords[user.username] = user.password }
        self.passwords = passwords
    }

    /// True when no user is configured: every client is let in.
    package var isEmpty: Bool { passwords.isEmpty }

    /// True when `username` exists with exactly `password`.
    package func verify(username: String, password: String) -> Bool {
        passwords[username].map { $0 == password } ?? false
    }
}

/// What a finished SOCKS handshake asks for.
package struct SOCKSServerRequest: Hashable, Sendable {
    /// The SOCKS version the client spoke (4 or 5); SOCKS4A is version 4 with a domain.
    package var version: UInt8
    /// CONNECT or UDP ASSOCIATE (SOCKS5 codes; SOCKS4 CONNECT maps to `SOCKS5.commandConnect`).
    package var command: UInt8
    /// DST.ADDR/DST.PORT. For UDP ASSOCIATE it is the client's hint, usually 0.0.0.0:0.
    package var destination: Destination
    /// The authenticated user, when the inbound has users.
    package var user: String?

    package init(version: UInt8, command: UInt8, destination: Destination, user: String?) {
        self.version = version
        self.command = command
        self.destination = destination
        self.user = user
    }
}

/// The server handshake state machine. Not thread-safe; one per connection.
package struct SOCKSServerHandshake: Sendable {
    /// What the owner must do next.
    package enum Action: Sendable {
        /// Wait for more bytes.
        case needMore
        /// Write these bytes, then call `advance` again with the same buffer.
        case reply(ByteBuffer)
        /// The handshake is complete. Bytes left in the buffer are the client's early payload.
        case request(SOCKSServerRequest)
        /// Write `reply` if present, then close. `reason` is the log line, worded as sing's.
        case fail(reply: ByteBuffer?, reason: Failure)
    }

    /// Why a handshake was refused.
    package enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        case malformed(SOCKSError)
        case unsupportedVersion(UInt8)
        case socks4AuthenticationFailed(username: String)
        case socks5AuthenticationFailed(username: String, password: String)
        case noAcceptableMethod
        case unsupportedCommand(version: UInt8, command: UInt8)

        package var description: String {
            switch self {
            case .malformed(let error): return "\(error)"
            case .unsupportedVersion(let v): return "socks: unsupported version \(v)"
            case .socks4AuthenticationFailed(let user): return "socks4: authentication failed, username=\(user)"
            case .socks5AuthenticationFailed(let user, let password):
                return "socks5: authentication failed, username=\(user), password=\(password)"
            case .noAcceptableMethod: return "socks5: no acceptable authentication method"
            case .unsupportedCommand(let version, let command): return "socks\(version): unsupported command \(command)"
            }
        }
    }

    private enum State: Sendable {
        case start, greeting, password, request, done
    }

    private var state: State = .start
    private let users: SOCKSUsers
    private var user: String?
    private let allocator = ByteBufferAllocator()

    /// Starts a handshake that accepts `users` (empty: no authentication).
    package init(users: SOCKSUsers) {
        self.users = users
    }

    /// Consumes what it can from `buffer` and says what to do. Call again after `.reply`.
    package mutating func advance(_ buffer: inout ByteBuffer) -> Action {
        do {
            return try step(&buffer)
        } catch {
            state = .done
            return .fail(reply: nil, reason: .malformed(error))
        }
    }

    private mutating func step(_ buffer: inout ByteBuffer) throws(SOCKSError) -> Action {
        switch state {
        case .start:
            guard let version = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return .needMore }
            switch version {
            case SOCKS4.version: return try socks4Request(&buffer)
            case SOCKS5.version: state = .greeting; return try step(&buffer)
            default: state = .done; return .fail(reply: nil, reason: .unsupportedVersion(version))
            }
        case .greeting:
            guard let greeting = try SOCKS5Greeting.read(from: &buffer) else { return .needMore }
            let method: UInt8
            if users.isEmpty {
                // sing answers "no authentication" whatever was offered; clients that offered only
                // X'02' proceed without it.
                method = SOCKS5.methodNoAuthentication
                state = .request
            } else if greeting.methods.contains(SOCKS5.methodUsernamePassword) {
                method = SOCKS5.methodUsernamePassword
                state = .password
            } else {
                state = .done
                return .fail(reply: selection(SOCKS5.methodNoAcceptable), reason: .noAcceptableMethod)
            }
            return .reply(selection(method))
        case .password:
            guard let request = try SOCKS5PasswordRequest.read(from: &buffer) else { return .needMore }
            var reply = allocator.buffer(capacity: 2)
            guard users.verify(username: request.username, password: request.password) else {
                state = .done
                SOCKS5PasswordReply(status: SOCKS5.passwordFailure).write(to: &reply)
                return .fail(reply: reply, reason: .socks5AuthenticationFailed(username: request.username,
                                                                              password: request.password))
            }
            user = request.username
            state = .request
            SOCKS5PasswordReply(status: SOCKS5.passwordSuccess).write(to: &reply)
            return .reply(reply)
        case .request:
            guard let request = try SOCKS5Message.read(from: &buffer) else { return .needMore }
            state = .done
            switch request.code {
            case SOCKS5.commandConnect, SOCKS5.commandUDPAssociate:
                return .request(SOCKSServerRequest(version: SOCKS5.version, command: request.code,
                                                   destination: request.address, user: user))
            default:
                return .fail(reply: Self.socks5Reply(SOCKS5.replyCommandNotSupported),
                             reason: .unsupportedCommand(version: 5, command: request.code))
            }
        case .done:
            return .needMore
        }
    }

    private mutating func socks4Request(_ buffer: inout ByteBuffer) throws(SOCKSError) -> Action {
        guard let request = try SOCKS4Request.read(from: &buffer) else { return .needMore }
        state = .done
        guard request.command == SOCKS4.commandConnect else {
            return .fail(reply: Self.socks4Reply(SOCKS4.rejectedOrFailed),
                         reason: .unsupportedCommand(version: 4, command: request.command))
        }
        if !users.isEmpty {
            // sing checks the SOCKS4 USERID against a user with an empty password.
            guard users.verify(username: request.userID, password: "") else {
                return .fail(reply: Self.socks4Reply(SOCKS4.rejectedOrFailed),
                             reason: .socks4AuthenticationFailed(username: request.userID))
            }
        }
        return .request(SOCKSServerRequest(version: SOCKS4.version, command: SOCKS5.commandConnect,
                                           destination: request.destination,
                                           user: request.userID.isEmpty ? nil : request.userID))
    }

    private func selection(_ method: UInt8) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 2)
        SOCKS5MethodSelection(method: method).write(to: &buffer)
        return buffer
    }

    /// A SOCKS4 reply with DSTPORT/DSTIP zero.
    package static func socks4Reply(_ code: UInt8, bind: Destination? = nil) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: SOCKS4Reply.length)
        var port: UInt16 = 0, ip: UInt32 = 0
        if let bind, case .ip(let address) = bind.host, case .v4(let v4) = address.unmapped {
            port = bind.port
            ip = v4
        }
        SOCKS4Reply(code: code, port: port, ipv4: ip).write(to: &buffer)
        return buffer
    }

    /// A SOCKS5 reply; the bind address defaults to 0.0.0.0:0.
    package static func socks5Reply(_ code: UInt8, bind: Destination = Destination(ip: .v4(0), port: 0)) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 22)
        // An IP bind address always fits, so this cannot throw; a domain is replaced by 0.0.0.0.
        let address = bind.isDomain ? Destination(ip: .v4(0), port: bind.port) : bind
        try? SOCKS5Message(code: code, address: address).write(to: &buffer)
        return buffer
    }

    /// The reply that tells a client its request succeeded, in its version.
    package static func successReply(version: UInt8, bind: Destination) -> ByteBuffer {
        version == SOCKS4.version ? socks4Reply(SOCKS4.granted, bind: bind)
            : socks5Reply(SOCKS5.replySucceeded, bind: bind)
    }

    /// The reply for a failed dial: SOCKS4 CD 91; SOCKS5 REP chosen from the error as sing's
    /// `ReplyCodeForError` does (ENETUNREACH 3, EHOSTUNREACH 4, ECONNREFUSED 5, EPERM 2, else 1).
    package static func failureReply(version: UInt8, error: any Error) -> ByteBuffer {
        if version == SOCKS4.version { return socks4Reply(SOCKS4.rejectedOrFailed) }
        return socks5Reply(replyCode(for: error))
    }

    /// The SOCKS5 REP for a dial error.
    package static func replyCode(for error: any Error) -> UInt8 {
        if let failure = error as? DialFailure { return replyCode(for: failure.underlying) }
        let errno: Int32?
        if let io = error as? IOError { errno = io.errnoCode } else { errno = nil }
        switch errno {
        case 101: return SOCKS5.replyNetworkUnreachable   // ENETUNREACH
        case 113: return SOCKS5.replyHostUnreachable      // EHOSTUNREACH
        case 111: return SOCKS5.replyConnectionRefused    // ECONNREFUSED
        case 1: return SOCKS5.replyNotAllowed             // EPERM
        default:
            // NIOPosix wraps connect failures; their text carries the errno name.
            let text = "\(error)".lowercased()
            if text.contains("connection refused") { return SOCKS5.replyConnectionRefused }
            if text.contains("network is unreachable") { return SOCKS5.replyNetworkUnreachable }
            if text.contains("no route to host") { return SOCKS5.replyHostUnreachable }
            if text.contains("operation not permitted") { return SOCKS5.replyNotAllowed }
            return SOCKS5.replyGeneralFailure
        }
    }
}
