// Private keys for `private_key` / `private_key_path`, read at start (never on a data path).
//
// The OpenSSH format (PROTOCOL.key in OpenSSH): PEM armour "OPENSSH PRIVATE KEY" around
// "openssh-key-v1\0", then SSH strings: cipher, kdf, kdf options, a key count (1), the public key,
// and the private section: two equal check words, the key type, the key's fields, a comment and
// padding 1, 2, 3…. ed25519 carries the 32-byte public key and 64 bytes (seed ‖ public key);
// ecdsa carries the curve name, the public point and the private scalar as an mpint.
// PEM "EC PRIVATE KEY" (SEC 1) and "PRIVATE KEY" (PKCS #8) ECDSA keys go through swift-crypto.
import Crypto
import Foundation
import NIOSSH

/// Why a private key could not be used; the outbound prefixes Go's "parse private key".
package struct SSHKeyError: Error, CustomStringConvertible, Equatable {
    package let description: String
    init(_ description: String) { self.description = description }
}

enum SSHPrivateKey {
    /// Parses `text` (PEM); `passphrase` must be empty: encrypted keys are refused with a clear error.
    static func parse(_ text: String, passphrase: String?) throws(SSHKeyError) -> NIOSSHPrivateKey {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("-----BEGIN OPENSSH PRIVATE KEY-----") {
            return try parseOpenSSH(armoured: trimmed, passphrase: passphrase)
        }
        if trimmed.hasPrefix("-----BEGIN ENCRYPTED PRIVATE KEY-----") || trimmed.contains("Proc-Type: 4,ENCRYPTED") {
            throw SSHKeyError("passphrase-protected PEM keys are not supported by this build")
        }
        if trimmed.hasPrefix("-----BEGIN RSA PRIVATE KEY-----") {
            throw SSHKeyError("RSA keys are not supported by this build (use ed25519 or ecdsa)")
        }
        if trimmed.hasPrefix("-----BEGIN EC PRIVATE KEY-----") || trimmed.hasPrefix("-----BEGIN PRIVATE KEY-----") {
            if let key = try? P256.Signing.PrivateKey(pemRepresentation: trimmed) { return NIOSSHPrivateKey(p256Key: key) }
            if let key = try? P384.Signing.PrivateKey(pemRepresentation: trimmed) { return NIOSSHPrivateKey(p384Key: key) }
            if let key = try? P521.Signing.PrivateKey(pemRepresentation: trimmed) { return NIOSSHPrivateKey(p521Key: key) }
            throw SSHKeyError("unsupported PEM private key (ed25519 and RSA keys need the OpenSSH format here)")
        }
        throw SSHKeyError("ssh: no key found")
    }

    private static func parseOpenSSH(armoured: String, passphrase: String?) throws(SSHKeyError) -> NIOSSHPrivateKey {
        let body = armoured.split(whereSeparator: \.isNewline)
            .filter { !$0.hasPrefix("-----") }
            .joined()
        guard let data = Data(base64Encoded: body) else { throw SSHKeyError("ssh: invalid base64 in private key") }
        var reader = SSHWireReader(bytes: Array(data))
        let magic = Array("openssh-key-v1".utf8) + [0]
        guard reader.take(magic.count) == magic else { throw SSHKeyError("ssh: invalid openssh private key format") }
        let cipher = try reader.string()
        let kdf = try reader.string()
        _ = try reader.blob()
        if cipher != "none" || kdf != "none" {
            throw SSHKeyError("passphrase-protected OpenSSH keys (\(cipher), \(kdf)) are not supported by this build")
        }
        if let passphrase, !passphrase.isEmpty {
            throw SSHKeyError("ssh: key is not password protected")
        }
        guard try reader.uint32() == 1 else { throw SSHKeyError("ssh: multi-key files are not supported") }
        _ = try reader.blob()
        var section = SSHWireReader(bytes: try reader.blob())
        guard try section.uint32() == section.uint32() else { throw SSHKeyError("ssh: malformed OpenSSH key (check words differ)") }
        let type = try section.string()
        do {
            switch type {
            case "ssh-ed25519":
                _ = try section.blob()
                let secret = try section.blob()
                guard secret.count == 64 else { throw SSHKeyError("ssh: malformed ed25519 key") }
                return NIOSSHPrivateKey(ed25519Key: try Curve25519.Signing.PrivateKey(rawRepresentation: secret[0..<32]))
            case "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521":
                _ = try section.string()
                _ = try section.blob()
                var scalar = try section.blob()
                let size = type.hasSuffix("256") ? 32 : type.hasSuffix("384") ? 48 : 66
                // An mpint: strip the sign byte, left-pad to the curve's size.
                while scalar.count > size, scalar.first == 0 { scalar.removeFirst() }
                guard scalar.count <= size else { throw SSHKeyError("ssh: malformed ecdsa key") }
                scalar = [UInt8](repeating: 0, count: size - scalar.count) + scalar
                switch size {
                case 32: return NIOSSHPrivateKey(p256Key: try P256.Signing.PrivateKey(rawRepresentation: scalar))
                case 48: return NIOSSHPrivateKey(p384Key: try P384.Signing.PrivateKey(rawRepresentation: scalar))
                default: return NIOSSHPrivateKey(p521Key: try P521.Signing.PrivateKey(rawRepresentation: scalar))
                }
            case "ssh-rsa":
                throw SSHKeyError("RSA keys are not supported by this build (use ed25519 or ecdsa)")
            default:
                throw SSHKeyError("ssh: unhandled key type \(type)")
            }
        } catch let error as SSHKeyError {
            throw error
        } catch {
            throw SSHKeyError("ssh: invalid key: \(error)")
        }
    }
}

/// Reads SSH wire types (RFC 4251 §5) from bytes; every read is bounds-checked.
struct SSHWireReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func take(_ count: Int) -> [UInt8]? {
        guard count >= 0, bytes.count - offset >= count else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func uint32() throws(SSHKeyError) -> UInt32 {
        guard let four = take(4) else { throw SSHKeyError("ssh: truncated key") }
        return four.reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func blob() throws(SSHKeyError) -> [UInt8] {
        let length = try uint32()
        guard length <= UInt32(bytes.count), let value = take(Int(length)) else { throw SSHKeyError("ssh: truncated key") }
        return value
    }

    mutating func string() throws(SSHKeyError) -> String {
        String(decoding: try blob(), as: UTF8.self)
    }
}
