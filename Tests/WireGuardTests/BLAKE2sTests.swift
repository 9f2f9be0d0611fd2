import COpenSSL
import Foundation
import Testing
@testable import WireGuard

/// BLAKE2s against RFC 7693 (Appendix B and the Appendix E self-test) and against OpenSSL's BLAKE2S-256 and
/// BLAKE2SMAC for every length over two block boundaries, keyed and unkeyed.
@Suite struct BLAKE2sTests {
    static func hash(_ input: [UInt8], key: [UInt8] = [], outputByteCount: Int = 32) -> [UInt8] {
        var state = key.withUnsafeBytes { BLAKE2s(outputByteCount: outputByteCount, key: $0) }
        state.update(input)
        var out = [UInt8](repeating: 0, count: outputByteCount)
        out.withUnsafeMutableBytes { state.finalize(into: $0) }
        return out
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { hexDigits($0) }.joined() }

    @Test func rfc7693AppendixB() {
        // BLAKE2s-256("abc"), RFC 7693 Appendix B.
        #expect(Self.hex(Self.hash(Array("abc".utf8))) == "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982")
        // BLAKE2s-256("") (the RFC's test module computes it; also in the BLAKE2 reference vectors).
        #expect(Self.hex(Self.hash([])) == "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9")
    }

    /// RFC 7693 Appendix E: hashes of keyed and unkeyed inputs of lengths 0, 3, 64, 65, 255, 1024 at every
    /// digest length 16, 20, 28, 32, all fed into one BLAKE2s-256 whose digest is the published constant.
    @Test func rfc7693SelfTest() {
        func selftestSequence(_ count: Int, seed: UInt32) -> [UInt8] {
            var a = 0xDEAD_4BAD &* seed
            var b: UInt32 = 1
            var out = [UInt8](repeating: 0, count: count)
            for index in 0..<count {
                let t = a &+ b
                a = b
                b = t
                out[index] = UInt8(truncatingIfNeeded: t >> 24)
            }
            return out
        }
        var total = BLAKE2s()
        for outputByteCount in [16, 20, 28, 32] {
            for inputCount in [0, 3, 64, 65, 255, 1024] {
                let input = selftestSequence(inputCount, seed: UInt32(inputCount))
                total.update(Self.hash(input, outputByteCount: outputByteCount))
                let key = selftestSequence(outputByteCount, seed: UInt32(outputByteCount))
                total.update(Self.hash(input, key: key, outputByteCount: outputByteCount))
            }
        }
        let digest = total.finalize()
        #expect(digest.description == "6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe")
    }

    /// Every length 0...200 (crossing block boundaries and the exact-block case) and split updates equal OpenSSL.
    @Test func matchesOpenSSL() throws {
        let digest = try #require(EVP_MD_fetch(nil, "BLAKE2S-256", nil))
        defer { EVP_MD_free(digest) }
        let mac = try #require(EVP_MAC_fetch(nil, "BLAKE2SMAC", nil))
        defer { EVP_MAC_free(mac) }
        var generator = SystemRandomNumberGenerator()
        for count in 0...200 {
            let input = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var expected = [UInt8](repeating: 0, count: 32)
            var length: UInt32 = 0
            #expect(EVP_Digest(input, count, &expected, &length, digest, nil) == 1)
            #expect(Self.hash(input) == expected, "length \(count)")
            // The same input fed in two uneven pieces.
            let split = count / 3
            var state = BLAKE2s()
            state.update(Array(input[..<split]))
            state.update(Array(input[split...]))
            #expect(state.finalize().bytes == expected)

            // Keyed, 16-byte output: WireGuard's MAC.
            let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let context = try #require(EVP_MAC_CTX_new(mac))
            defer { EVP_MAC_CTX_free(context) }
            var size = 16
            // OSSL_PARAM keeps the name pointer: give it one that outlives the call.
            let sizeName = try #require(strdup("size"))
            defer { free(sizeName) }
            let initialized = withUnsafeMutablePointer(to: &size) { sizePointer in
                var params = [OSSL_PARAM_construct_size_t(sizeName, sizePointer), OSSL_PARAM_construct_end()]
                return EVP_MAC_init(context, key, 32, &params)
            }
            #expect(initialized == 1)
            #expect(EVP_MAC_update(context, input, count) == 1)
            var macOut = [UInt8](repeating: 0, count: 16)
            var macLength = 0
            #expect(EVP_MAC_final(context, &macOut, &macLength, 16) == 1)
            #expect(Self.hash(input, key: key, outputByteCount: 16) == macOut, "mac length \(count)")
        }
    }
}
