// BLAKE3 against the official vectors: hash, keyed hash and derive_key, 131-byte XOF output each,
// for every input length of the vector file (0 … 102400 bytes: one block, one chunk, deep trees).
import Testing
@testable import Shadowsocks

func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        out.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return out
}

/// The vector file's input: 0, 1, …, 250 repeating.
func vectorInput(_ length: Int) -> [UInt8] { (0..<length).map { UInt8($0 % 251) } }

@Suite struct BLAKE3Tests {
    @Test(arguments: BLAKE3Vectors.cases.map(\.inputLength))
    func officialVectors(inputLength: Int) throws {
        let vector = try #require(BLAKE3Vectors.cases.first { $0.inputLength == inputLength })
        let input = vectorInput(inputLength)

        var plain = BLAKE3()
        plain.update(input)
        #expect(hex(plain.finalize(byteCount: 131)) == vector.hash)
        #expect(hex(BLAKE3.hash(input)) == String(vector.hash.prefix(64)))

        var keyed = BLAKE3(key: Array(BLAKE3Vectors.key.utf8))
        keyed.update(input)
        #expect(hex(keyed.finalize(byteCount: 131)) == vector.keyedHash)

        #expect(hex(BLAKE3.deriveKey(context: BLAKE3Vectors.context, material: input, byteCount: 131)) == vector.deriveKey)
    }

    /// Feeding the input in uneven pieces gives the same output as one update.
    @Test(arguments: [1, 7, 64, 1000, 1024, 1025])
    func incrementalUpdatesMatchOneShot(piece: Int) {
        let input = vectorInput(5000)
        var hasher = BLAKE3(deriveKeyContext: "shadowsocks 2022 session subkey")
        var offset = 0
        while offset < input.count {
            hasher.update(input[offset..<min(offset + piece, input.count)])
            offset += piece
        }
        #expect(hasher.finalize(byteCount: 32)
                == BLAKE3.deriveKey(context: "shadowsocks 2022 session subkey", material: input, byteCount: 32))
    }
}
