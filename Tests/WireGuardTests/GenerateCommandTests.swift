import TestSupport
import Foundation
import Testing
@testable import WireGuard

/// `sing-box generate …` run as a process: formats, key validity checked by independent tools (`wg`, `openssl`),
/// and cobra-style errors pinned to Go sing-box 1.12.12's exact text.
@Suite struct GenerateCommandTests {
    func generate(_ arguments: String...) throws -> ProcessResult {
        try ProcessRunner.run(ProcessRunner.singBox, ["generate"] + arguments)
    }

    func keyLines(_ text: String) -> (String, String)? {
        let lines = text.split(separator: "\n").map(String.init)
        guard lines.count == 2, lines[0].hasPrefix("PrivateKey: "), lines[1].hasPrefix("PublicKey: ") else { return nil }
        return (String(lines[0].dropFirst(12)), String(lines[1].dropFirst(11)))
    }

    /// Decodes unpadded base64url (reality, vapid).
    func base64URL(_ text: String) -> Data? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard)
    }

    /// The bytes inside the PEM block `type`.
    func pemBlock(_ text: String, _ type: String) -> Data? {
        guard let begin = text.range(of: "-----BEGIN \(type)-----\n"),
              let end = text.range(of: "-----END \(type)-----\n", range: begin.upperBound..<text.endIndex) else { return nil }
        let body = text[begin.upperBound..<end.lowerBound].replacingOccurrences(of: "\n", with: "")
        return Data(base64Encoded: body)
    }

    @Test func uuidIsVersion4() throws {
        let result = try generate("uuid")
        #expect(result.status == 0)
        let text = result.output
        #expect(text.hasSuffix("\n"))
        let groups = text.dropLast().split(separator: "-").map(String.init)
        #expect(groups.map(\.count) == [8, 4, 4, 4, 12])
        #expect(groups.allSatisfy { $0.allSatisfy { "0123456789abcdef".contains($0) } })
        #expect(groups[2].first == "4")
        #expect(groups[3].first.map { "89ab".contains($0) } == true)
        #expect(try generate("uuid").output != text)
    }

    @Test func randFormats() throws {
        let raw = try generate("rand", "37")
        #expect(raw.status == 0 && raw.standardOutput.count == 37)
        let hex = try generate("rand", "16", "--hex").output
        #expect(hex.count == 33 && hex.hasSuffix("\n"))
        #expect(hex.dropLast().allSatisfy { "0123456789abcdef".contains($0) })
        let b64 = try generate("rand", "16", "--base64").output
        #expect(Data(base64Encoded: String(b64.dropLast()))?.count == 16)
        #expect(try generate("rand", "0").standardOutput.isEmpty)
        // --base64 wins over --hex, as in Go.
        let both = try generate("rand", "3", "--hex", "--base64").output
        #expect(both.count == 5 && Data(base64Encoded: String(both.dropLast()))?.count == 3)
    }

    @Test func wgKeyPairMatchesWgPubkey() throws {
        let result = try generate("wg-keypair")
        #expect(result.status == 0)
        let (privateKey, publicKey) = try #require(keyLines(result.output))
        let privateBytes = try #require(Data(base64Encoded: privateKey))
        #expect(privateBytes.count == 32)
        #expect(privateBytes[0] & 7 == 0 && privateBytes[31] & 0xc0 == 0x40)  // clamped
        let wg = try #require(ProcessRunner.which("wg"), "wireguard-tools must be installed")
        let derived = try ProcessRunner.run(wg, ["pubkey"], input: Data((privateKey + "\n").utf8))
        #expect(derived.output == publicKey + "\n")
    }

    @Test func realityKeyPairIsRawURLBase64() throws {
        let (privateKey, publicKey) = try #require(keyLines(try generate("reality-keypair").output))
        #expect(privateKey.count == 43 && publicKey.count == 43)
        #expect(!privateKey.contains("=") && !privateKey.contains("+") && !privateKey.contains("/"))
        let privateBytes = try #require(base64URL(privateKey))
        let publicBytes = try #require(base64URL(publicKey))
        let derived = X25519.publicKey(of: try #require(Bytes32(privateBytes)))
        #expect(derived.bytes == Array(publicBytes))
    }

    @Test func vapidKeyPairIsP256() throws {
        let (privateKey, publicKey) = try #require(keyLines(try generate("vapid-keypair").output))
        #expect(try #require(base64URL(privateKey)).count == 32)
        let point = try #require(base64URL(publicKey))
        #expect(point.count == 65 && point.first == 0x04)
    }

    @Test func tlsKeyPairParsesWithOpenSSL() throws {
        let result = try generate("tls-keypair", "example.org", "-m", "3")
        #expect(result.status == 0)
        let text = result.output
        #expect(text.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        #expect(text.contains("-----END PRIVATE KEY-----\n\n-----BEGIN CERTIFICATE-----\n"))
        #expect(text.hasSuffix("-----END CERTIFICATE-----\n\n"))
        let openssl = try #require(ProcessRunner.which("openssl"), "openssl must be installed")
        let input = Data(text.utf8)
        let certificate = try ProcessRunner.run(openssl, ["x509", "-noout", "-subject", "-issuer", "-ext",
                                                          "subjectAltName,keyUsage,extendedKeyUsage,basicConstraints"], input: input)
        #expect(certificate.status == 0)
        #expect(certificate.output.contains("subject=CN = example.org"))
        #expect(certificate.output.contains("issuer=CN = example.org"))
        #expect(certificate.output.contains("DNS:example.org"))
        #expect(certificate.output.contains("Digital Signature, Key Encipherment"))
        #expect(certificate.output.contains("TLS Web Server Authentication"))
        #expect(certificate.output.contains("CA:FALSE"))
        let key = try ProcessRunner.run(openssl, ["pkey", "-check", "-noout"], input: input)
        #expect(key.output.contains("Key is valid"))
        // The certificate's public key is the private key's.
        let certKey = try ProcessRunner.run(openssl, ["x509", "-noout", "-pubkey"], input: input).output
        let keyPub = try ProcessRunner.run(openssl, ["pkey", "-pubout"], input: input).output
        #expect(!certKey.isEmpty && certKey == keyPub)
        // Valid from an hour ago for three months.
        let dates = try ProcessRunner.run(openssl, ["x509", "-noout", "-checkend", "\(80 * 86400)"], input: input)
        #expect(dates.status == 0)
        let expired = try ProcessRunner.run(openssl, ["x509", "-noout", "-checkend", "\(95 * 86400)"], input: input)
        #expect(expired.status == 1)
    }

    /// An empty server name: Go leaves the subject empty and marks the (empty) DNS SAN critical (RFC 5280 §4.2.1.6).
    @Test func tlsKeyPairEmptyName() throws {
        let result = try generate("tls-keypair", "")
        #expect(result.status == 0)
        let openssl = try #require(ProcessRunner.which("openssl"))
        let text = try ProcessRunner.run(openssl, ["x509", "-noout", "-subject", "-ext", "subjectAltName"],
                                         input: result.standardOutput).output
        #expect(text.hasPrefix("subject=\n"))
        #expect(text.contains("X509v3 Subject Alternative Name: critical"))
    }

    @Test func echKeyPairLayout() throws {
        let text = try generate("ech-keypair", "public.example").output
        let configs = [UInt8](try #require(pemBlock(text, "ECH CONFIGS")))
        let keys = [UInt8](try #require(pemBlock(text, "ECH KEYS")))
        // ECHConfigList: u16 length, then ECHConfig { version 0xfe0d, u16 length, contents }.
        #expect(Int(configs[0]) << 8 | Int(configs[1]) == configs.count - 2)
        let config = Array(configs[2...])
        #expect(config[0] == 0xfe && config[1] == 0x0d)
        #expect(Int(config[2]) << 8 | Int(config[3]) == config.count - 4)
        #expect(config[4] == 0)  // config_id
        #expect(config[5] == 0x00 && config[6] == 0x20)  // DHKEM(X25519, HKDF-SHA256)
        #expect(config[7] == 0 && config[8] == 32)
        let publicKey = Array(config[9..<41])
        #expect(Array(config[41..<43]) == [0, 12])
        #expect(Array(config[43..<55]) == [0, 1, 0, 1, 0, 1, 0, 2, 0, 1, 0, 3])
        #expect(config[55] == 0)  // maximum_name_length
        #expect(Int(config[56]) == 14 && String(decoding: config[57..<71], as: UTF8.self) == "public.example")
        #expect(Array(config[71...]) == [0, 0])
        // ECH KEYS: u16-prefixed private key, then the same u16-prefixed ECHConfig.
        #expect(keys[0] == 0 && keys[1] == 32)
        let privateKey = try #require(Bytes32(keys[2..<34]))
        #expect(X25519.publicKey(of: privateKey).bytes == publicKey)
        #expect(Array(keys[34...]) == Array(configs))
    }

    @Test func errorsMatchGo() throws {
        let missing = try generate("rand")
        #expect(missing.status == 1)
        #expect(missing.standardError.hasPrefix("Error: accepts 1 arg(s), received 0\nUsage:\n  sing-box generate rand <length> [flags]\n"))
        #expect(missing.standardError.hasSuffix("\n\n\u{1b}[31mFATAL\u{1b}[0m[0000] accepts 1 arg(s), received 0\n"))
        let syntax = try generate("rand", "abc")
        #expect(syntax.status == 1)
        #expect(syntax.standardError == "\u{1b}[31mFATAL\u{1b}[0m[0000] strconv.Atoi: parsing \"abc\": invalid syntax\n")
        let plain = try generate("rand", "abc", "--disable-color")
        #expect(plain.standardError == "FATAL[0000] strconv.Atoi: parsing \"abc\": invalid syntax\n")
        let extra = try generate("uuid", "x")
        #expect(extra.standardError.hasPrefix("Error: unknown command \"x\" for \"sing-box generate uuid\"\n"))
        let months = try generate("tls-keypair", "a", "-m", "x")
        #expect(months.standardError.hasPrefix(
            "Error: invalid argument \"x\" for \"-m, --months\" flag: strconv.ParseInt: parsing \"x\": invalid syntax\n"))
        let unknown = try generate("rand", "4", "--bogus")
        #expect(unknown.status == 1 && unknown.standardError.hasPrefix("Error: unknown flag: --bogus\n"))
        let help = try generate()
        #expect(help.status == 0 && help.output.hasPrefix("Generate things\n\nUsage:\n  sing-box generate [command]\n"))
        #expect(help.output.contains("  wg-keypair      Generate WireGuard key pair\n"))
    }

    /// The whole stdout/stderr/exit status of error and help paths equals Go sing-box's, when its binary is present.
    @Test func sameBytesAsGoReference() throws {
        let candidates = ["/work/main/.peers/bin/sing-box-go",
                          ProcessRunner.buildDirectory.appendingPathComponent("../../.peers/bin/sing-box-go").standardized.path]
        guard let go = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { return }
        let cases: [[String]] = [[], ["rand"], ["rand", "x"], ["rand", "-1"], ["uuid", "x"], ["tls-keypair"],
                                 ["tls-keypair", "a", "-m", "x"], ["rand", "3", "--base64=maybe"], ["-x"], ["rand", "--help"],
                                 ["tls-keypair", "-h"], ["ech-keypair"], ["wg-keypair", "x"], ["tls-keypair", "ü"]]
        for arguments in cases {
            let ours = try ProcessRunner.run(ProcessRunner.singBox, ["generate"] + arguments)
            let theirs = try ProcessRunner.run(go, ["generate"] + arguments)
            #expect(ours.status == theirs.status, "\(arguments)")
            #expect(ours.standardOutput == theirs.standardOutput, "\(arguments)")
            #expect(ours.standardError == theirs.standardError, "\(arguments)")
        }
    }
}
