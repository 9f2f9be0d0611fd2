// The `ssh` outbound against OpenSSH's sshd (its own config, keys and port in the test's directory),
// ours and Go sing-box 1.12.12 side by side: curl → mixed inbound → ssh outbound (direct-tcpip) →
// sshd → the file server, byte-exact; pinned host keys; refused keys; the key formats we read.
import Foundation
import Testing

/// sshd on 127.0.0.1 with an ed25519 host key; root may log in with the keys in `authorized`.
final class SSHServer: @unchecked Sendable {
    static let sshd = "/usr/sbin/sshd"
    static let keygen = "/usr/bin/ssh-keygen"
    let port: UInt16
    /// The host key's public line (`ssh-ed25519 AAAA… comment`).
    let hostKey: String
    private let process: Spawned

    init(authorized: [String], in work: TemporaryDirectory) throws {
        let host = try SSHServer.makeKey("host-\(UUID().uuidString.prefix(8))", type: "ed25519", in: work)
        hostKey = try String(contentsOfFile: host + ".pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let keys = try work.write("authorized_keys-\(UUID().uuidString.prefix(8))", authorized.joined(separator: "\n") + "\n")
        // sshd refuses to start without its privilege separation directory.
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        var attempt = 0
        while true {
            let port = try freePort()
            let config = try work.write("sshd-\(port).conf", """
                Port \(port)
                ListenAddress 127.0.0.1
                HostKey \(host)
                PidFile \(work.file("sshd-\(port).pid"))
                AuthorizedKeysFile \(keys)
                StrictModes no
                UsePAM no
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                PermitRootLogin prohibit-password
                AllowTcpForwarding yes
                LogLevel VERBOSE
                """)
            let process = try Spawned(SSHServer.sshd, ["-D", "-e", "-f", config], name: "sshd-\(port)", directory: work)
            do {
                try waitForTCP(port: port, process: process)
                self.port = port
                self.process = process
                return
            } catch {
                process.stop()
                attempt += 1
                if attempt == 5 { throw error }
            }
        }
    }

    var log: String { process.log }
    func stop() { process.stop() }

    /// `ssh-keygen -t type` without a passphrase (or with `passphrase`); returns the private key's path.
    static func makeKey(_ name: String, type: String, bits: Int? = nil, passphrase: String = "", format: [String] = [],
                        in work: TemporaryDirectory) throws -> String {
        let path = work.file(name)
        let result = try runTool(keygen, ["-q", "-t", type] + (bits.map { ["-b", String($0)] } ?? []) + format
                                 + ["-N", passphrase, "-C", "test@\(name)", "-f", path])
        guard result.status == 0 else { throw PeerError("ssh-keygen \(type): \(result.stderr)") }
        return path
    }
}

@Suite(.serialized) struct SSHInteropTests {
    private static func sshOut(port: UInt16, extra: String) -> String {
        "{\"type\":\"ssh\",\"tag\":\"ssh\",\"server\":\"127.0.0.1\",\"server_port\":\(port),\"user\":\"root\",\(extra)}"
    }

    private static func jsonString(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self).dropFirst().dropLast().description
    }

    /// Byte-exact downloads with an ed25519 key from a file and an ecdsa key given inline, the
    /// host key pinned; both flows share one SSH connection per loop.
    @Test(arguments: [Implementation.ours, .go])
    func downloadsThroughSSHWithPinnedHostKey(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let ed25519 = try SSHServer.makeKey("ed", type: "ed25519", in: work)
        let ecdsa = try SSHServer.makeKey("ec", type: "ecdsa", bits: 256, in: work)
        let sshd = try SSHServer(authorized: [try String(contentsOfFile: ed25519 + ".pub", encoding: .utf8),
                                              try String(contentsOfFile: ecdsa + ".pub", encoding: .utf8)], in: work)
        defer { sshd.stop() }
        let inline = try String(contentsOfFile: ecdsa, encoding: .utf8).split(separator: "\n").map { Self.jsonString(String($0)) }
        let viaFile = try freePort(), viaInline = try freePort()
        let box = try SingBox(implementation, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: viaFile, tag: "a"), ConfigJSON.mixed(port: viaInline, tag: "b")],
            outbounds: [Self.sshOut(port: sshd.port, extra: "\"private_key_path\":\"\(ed25519)\",\"host_key\":[\(Self.jsonString(sshd.hostKey))]"),
                        Self.sshOut(port: sshd.port, extra: "\"private_key\":[\(inline.joined(separator: ","))]")
                            .replacingOccurrences(of: "\"tag\":\"ssh\"", with: "\"tag\":\"ssh-inline\"")],
            rules: "[{\"inbound\":\"b\",\"outbound\":\"ssh-inline\"}]"), waitPort: viaFile, in: work)
        defer { box.stop() }
        for port in [viaFile, viaFile, viaInline] {
            let body = try curl(["--socks5-hostname", "127.0.0.1:\(port)", files.blobURL])
            #expect(body == files.blob, "\(implementation) via \(port)\n\(box.log)\n\(sshd.log)")
        }
        // Both outbounds logged in, each with its own key.
        #expect(sshd.log.contains("Accepted publickey for root from 127.0.0.1") && sshd.log.contains("ssh2: ED25519 SHA256:"), "\(sshd.log)")
        #expect(sshd.log.contains("ssh2: ECDSA SHA256:"), "\(sshd.log)")
    }

    /// A pinned host key that is not the server's, and a key the server does not know: the flow
    /// fails and the log says why, in Go's words.
    @Test(arguments: [Implementation.ours, .go])
    func wrongHostKeyAndUnknownKeyFail(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let known = try SSHServer.makeKey("known", type: "ed25519", in: work)
        let stranger = try SSHServer.makeKey("stranger", type: "ed25519", in: work)
        let otherHost = try String(contentsOfFile: try SSHServer.makeKey("other-host", type: "ed25519", in: work) + ".pub", encoding: .utf8)
        let sshd = try SSHServer(authorized: [try String(contentsOfFile: known + ".pub", encoding: .utf8)], in: work)
        defer { sshd.stop() }
        let pinned = try freePort(), unknown = try freePort()
        let box = try SingBox(implementation, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: pinned, tag: "a"), ConfigJSON.mixed(port: unknown, tag: "b")],
            outbounds: [Self.sshOut(port: sshd.port, extra: "\"private_key_path\":\"\(known)\",\"host_key\":[\(Self.jsonString(otherHost))]"),
                        Self.sshOut(port: sshd.port, extra: "\"private_key_path\":\"\(stranger)\"")
                            .replacingOccurrences(of: "\"tag\":\"ssh\"", with: "\"tag\":\"ssh-stranger\"")],
            rules: "[{\"inbound\":\"b\",\"outbound\":\"ssh-stranger\"}]"), waitPort: pinned, in: work)
        defer { box.stop() }
        for port in [pinned, unknown] {
            #expect(throws: (any Error).self) { try curl(["--socks5-hostname", "127.0.0.1:\(port)", files.blobURL]) }
        }
        let served = sshd.hostKey.split(separator: " ").prefix(2).joined(separator: " ")
        // The log line may land just after curl saw the close.
        for message in ["host key mismatch, server send \(served)",
                        "unable to authenticate, attempted methods [none publickey], no supported methods remain"] {
            var seen = false
            for _ in 0..<40 where !seen {
                seen = box.log.contains(message)
                if !seen { usleep(50_000) }
            }
            #expect(seen, "\(implementation) \(message)\n\(box.log)")
        }
    }

    /// Keys we cannot use are refused at start with a reason (never a silent skip); the ones we read,
    /// in every format ssh-keygen writes for them, start.
    @Test func keyFormatsAtStart() throws {
        let work = try TemporaryDirectory()
        func check(_ extra: String) throws -> (ok: Bool, output: String) {
            let path = try work.write("check-\(UUID().uuidString.prefix(8)).json", ConfigJSON.box(
                inbounds: [], outbounds: [Self.sshOut(port: 22, extra: extra)]))
            let result = try runTool(Peers.ours, ["check", "-c", path])
            return (result.status == 0, result.stderr + String(decoding: result.stdout, as: UTF8.self))
        }
        for (type, bits) in [("ed25519", nil), ("ecdsa", 256), ("ecdsa", 384), ("ecdsa", 521)] as [(String, Int?)] {
            let key = try SSHServer.makeKey("ok-\(type)-\(bits ?? 0)", type: type, bits: bits, in: work)
            let result = try check("\"private_key_path\":\"\(key)\"")
            #expect(result.ok, "\(type) \(bits ?? 0): \(result.output)")
        }
        let pem = try SSHServer.makeKey("pem-ecdsa", type: "ecdsa", bits: 256, format: ["-m", "PEM"], in: work)
        #expect(try check("\"private_key_path\":\"\(pem)\"").ok)
        let rsa = try SSHServer.makeKey("rsa", type: "rsa", bits: 2048, in: work)
        let locked = try SSHServer.makeKey("locked", type: "ed25519", passphrase: "secret", in: work)
        let refused: [(String, String)] = [
            ("\"private_key_path\":\"\(rsa)\"", "parse private key: RSA keys are not supported by this build"),
            ("\"private_key_path\":\"\(locked)\",\"private_key_passphrase\":\"secret\"", "parse private key: passphrase-protected OpenSSH keys"),
            ("\"private_key\":[\"garbage\"]", "parse private key: ssh: no key found"),
            ("\"private_key_path\":\"\(work.file("missing"))\"", "read private key: open \(work.file("missing"))"),
            ("\"host_key\":[\"ssh-ed25519 !!!\"]", "parse host key ssh-ed25519 !!!"),
        ]
        for (extra, message) in refused {
            let result = try check(extra)
            #expect(!result.ok && result.output.contains(message), "\(extra): \(result.output)")
        }
    }
}
