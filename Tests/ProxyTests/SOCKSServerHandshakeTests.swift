import Adapter
import NIOCore
import SOCKS
import Testing

/// Drives a handshake with `input` and collects what it wrote and how it ended.
private func run(_ input: [UInt8], users: SOCKSUsers = SOCKSUsers([])) -> (written: [UInt8], last: SOCKSServerHandshake.Action, rest: [UInt8]) {
    var machine = SOCKSServerHandshake(users: users)
    var b = buffer(input)
    var written: [UInt8] = []
    while true {
        let action = machine.advance(&b)
        if case .reply(let reply) = action { written += bytes(reply); continue }
        if case .fail(let reply?, _) = action { written += bytes(reply) }
        return (written, action, bytes(b))
    }
}

private let bob = SOCKSUsers([(username: "bob", password: "secret")])

@Suite struct SOCKSServerHandshakeTests {
    @Test func socks5NoAuthConnect() throws {
        // greeting (no auth), then CONNECT 127.0.0.1:8080, then 2 bytes of early payload
        let (written, last, rest) = run([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 0x7f, 0, 0, 1, 0x1f, 0x90, 0xAA, 0xBB])
        #expect(written == [0x05, 0x00])
        guard case .request(let request) = last else { Issue.record("\(last)"); return }
        #expect(request == SOCKSServerRequest(version: 5, command: 1, destination: Destination(ip: .v4(0x7F00_0001), port: 8080), user: nil))
        #expect(rest == [0xAA, 0xBB])
    }

    @Test func socks5PasswordAuth() throws {
        let input: [UInt8] = [0x05, 0x02, 0x00, 0x02] + [0x01, 0x03] + Array("bob".utf8) + [0x06] + Array("secret".utf8)
            + [0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0, 0]
        let (written, last, _) = run(input, users: bob)
        // method X'02', then RFC 1929 success
        #expect(written == [0x05, 0x02, 0x01, 0x00])
        guard case .request(let request) = last else { Issue.record("\(last)"); return }
        #expect(request.command == SOCKS5.commandUDPAssociate)
        #expect(request.user == "bob")
    }

    @Test func socks5WrongPasswordFails() {
        let input: [UInt8] = [0x05, 0x01, 0x02, 0x01, 0x03] + Array("bob".utf8) + [0x01, 0x78]
        let (written, last, _) = run(input, users: bob)
        #expect(written == [0x05, 0x02, 0x01, 0x01])
        guard case .fail(_, let reason) = last else { Issue.record("\(last)"); return }
        #expect(reason.description == "socks5: authentication failed, username=bob, password=x")
    }

    @Test func socks5WithoutPasswordMethodIsRefused() {
        let (written, last, _) = run([0x05, 0x01, 0x00], users: bob)
        #expect(written == [0x05, 0xff])
        guard case .fail(_, .noAcceptableMethod) = last else { Issue.record("\(last)"); return }
    }

    @Test func socks5BindIsUnsupported() {
        let (written, last, _) = run([0x05, 0x01, 0x00, 0x05, 0x02, 0x00, 0x01, 0x7f, 0, 0, 1, 0, 1])
        // method 0, then REP 7 with 0.0.0.0:0 — as Go answers
        #expect(written == [0x05, 0x00, 0x05, 0x07, 0x00, 0x01, 0, 0, 0, 0, 0, 0])
        guard case .fail(_, let reason) = last else { Issue.record("\(last)"); return }
        #expect(reason.description == "socks5: unsupported command 2")
    }

    @Test func socks4ConnectAndUserCheck() {
        let request: [UInt8] = [0x04, 0x01, 0x00, 0x50, 0x7f, 0, 0, 1] + Array("bob".utf8) + [0]
        guard case .request(let open) = run(request).last else { Issue.record("no request"); return }
        #expect(open.version == 4)
        #expect(open.user == "bob")
        // With users, the USERID must name a user with an empty password.
        let (written, last, _) = run(request, users: bob)
        #expect(written == [0x00, 0x5b, 0, 0, 0, 0, 0, 0])
        guard case .fail(_, let reason) = last else { Issue.record("\(last)"); return }
        #expect(reason.description == "socks4: authentication failed, username=bob")
        let empty = SOCKSUsers([(username: "bob", password: "")])
        guard case .request = run(request, users: empty).last else { Issue.record("not accepted"); return }
    }

    @Test func socks4BindIsRejected() {
        let (written, last, _) = run([0x04, 0x02, 0x00, 0x50, 0x7f, 0, 0, 1, 0])
        #expect(written == [0x00, 0x5b, 0, 0, 0, 0, 0, 0])
        guard case .fail(_, let reason) = last else { Issue.record("\(last)"); return }
        #expect(reason.description == "socks4: unsupported command 2")
    }

    @Test func unknownVersionFails() {
        guard case .fail(nil, .unsupportedVersion(0x47)) = run(Array("GET / HTTP/1.1\r\n".utf8)).last else {
            Issue.record("not refused"); return
        }
    }

    @Test func everyPrefixOfAFullExchangeWaits() {
        let input: [UInt8] = [0x05, 0x02, 0x00, 0x02] + [0x01, 0x03] + Array("bob".utf8) + [0x06] + Array("secret".utf8)
            + [0x05, 0x01, 0x00, 0x03, 0x04] + Array("a.io".utf8) + [0x00, 0x50]
        for length in 0..<input.count {
            let (_, last, _) = run(Array(input.prefix(length)), users: bob)
            guard case .needMore = last else { Issue.record("length \(length): \(last)"); return }
        }
        // Byte by byte gives the same result as all at once.
        var machine = SOCKSServerHandshake(users: bob)
        var b = ByteBuffer()
        var outcome: SOCKSServerRequest?
        for byte in input {
            b.writeInteger(byte)
            while true {
                let action = machine.advance(&b)
                if case .reply = action { continue }
                if case .request(let request) = action { outcome = request }
                break
            }
        }
        #expect(outcome?.destination == Destination(domain: "a.io", port: 80))
    }

    @Test func failureRepliesFollowGo() {
        struct Refused: Error, CustomStringConvertible { var description: String { "dial tcp 127.0.0.1:1: connect: connection refused" } }
        #expect(bytes(SOCKSServerHandshake.failureReply(version: 5, error: Refused())) == [0x05, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0, 0])
        #expect(bytes(SOCKSServerHandshake.failureReply(version: 4, error: Refused())) == [0x00, 0x5b, 0, 0, 0, 0, 0, 0])
        #expect(SOCKSServerHandshake.replyCode(for: IOError(errnoCode: 113, reason: "connect")) == SOCKS5.replyHostUnreachable)
        #expect(SOCKSServerHandshake.replyCode(for: IOError(errnoCode: 101, reason: "connect")) == SOCKS5.replyNetworkUnreachable)
        #expect(bytes(SOCKSServerHandshake.successReply(version: 5, bind: Destination(ip: .v4(0x7F00_0001), port: 1080)))
                == [0x05, 0x00, 0x00, 0x01, 0x7f, 0, 0, 1, 0x04, 0x38])
    }
}
