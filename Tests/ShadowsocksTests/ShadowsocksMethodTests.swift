// Method names and keys, with Go's error wording (sing-shadowsocks2 for the outbound,
// sing-shadowsocks for the inbound).
import Testing
import Adapter
@testable import Shadowsocks

@Suite struct ShadowsocksMethodTests {
    func clientError(_ name: String, _ password: String) -> String? {
        do { _ = try ShadowsocksMethod.client(name: name, password: password); return nil } catch { return error.description }
    }

    func serverError(_ name: String, _ password: String) -> String? {
        do { _ = try ShadowsocksMethod.server(name: name, password: password); return nil } catch { return error.description }
    }

    @Test func outboundErrorsAreGos() {
        #expect(clientError("aes-128-cfb8", "x") == "unknown method: aes-128-cfb8")
        #expect(clientError("plain", "x") == "unknown method: plain")
        #expect(clientError("aes-128-gcm", "") == "missing password")
        #expect(clientError("2022-blake3-aes-128-gcm", "") == "missing password")
        #expect(clientError("2022-blake3-aes-128-gcm", "AAAA*AAA") == "decode key: illegal base64 data at input byte 4")
        #expect(clientError("2022-blake3-aes-128-gcm", "AAAAAAAAAAAAAAAAAAAAAA") == "decode key: illegal base64 data at input byte 20")
        // 32 bytes for a 16-byte method.
        #expect(clientError("2022-blake3-aes-128-gcm", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                == "bad key length, required 16, got 32")
        #expect(clientError("2022-blake3-chacha20-poly1305", "AAAAAAAAAAAAAAAAAAAAAA==:AAAAAAAAAAAAAAAAAAAAAA==")
                == "Shadowsocks 2022 EIH support only available in AES ciphers")
        #expect(clientError("none", "") == nil)
        #expect(clientError("chacha20-ietf-poly1305", "pw") == nil)
    }

    @Test func inboundErrorsAreGos() {
        #expect(serverError("aes-128-cfb8", "x") == "unsupported method: aes-128-cfb8")
        #expect(serverError("aes-256-gcm", "") == "missing password")
        #expect(serverError("2022-blake3-aes-256-gcm", "") == "missing psk")
        #expect(serverError("2022-blake3-aes-256-gcm", "!!") == "decode psk: illegal base64 data at input byte 0")
        #expect(serverError("2022-blake3-aes-256-gcm", "AAAAAAAAAAAAAAAAAAAAAA==") == "bad key")
    }

    @Test func keysHaveTheMethodsLengths() throws {
        #expect(try ShadowsocksMethod.client(name: "aes-192-gcm", password: "pw").key.count == 24)
        #expect(try ShadowsocksMethod.client(name: "xchacha20-ietf-poly1305", password: "pw").key.count == 32)
        let psk = try ShadowsocksMethod.client(name: "2022-blake3-aes-128-gcm", password: "AAECAwQFBgcICQoLDA0ODw==")
        #expect(psk.key == Array(0...15))
        // The inbound hashes a longer PSK down (Go's `Key`: SHA-256, truncated).
        let long = try ShadowsocksMethod.server(name: "2022-blake3-aes-128-gcm", password: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        #expect(long.key.count == 16)
    }
}
