// The padding scheme (sing-anytls padding/padding.go): which record sizes the client's first
// writes of a session are cut or padded to.
//
// Text: `key=value` lines. `stop=N`: packets 0..<N are shaped. `K=ranges`: packet K's sizes, a
// comma list of `min-max` (a random size in min..<max, or exactly min when equal; swapped when
// reversed; skipped when either is ≤ 0 or not a number) and `c` (a check mark: stop cutting this
// packet once its payload is all written). Packet 0 is the authentication's padding length.
// Parsing follows Go exactly (no trimming, unknown entries skipped) except one bound: a size over
// 65,535 is skipped, because the waste frame's u16 length cannot carry it (Go would truncate the
// length and corrupt its own stream).
import Synchronization

/// One parsed scheme. Immutable; shared by the sessions of an outbound.
package struct AnyTLSPaddingScheme: Sendable, Equatable {
    /// A `c` in a packet's list.
    package static let checkMark = -1
    /// Go's `DefaultPaddingScheme`.
    package static let defaultText = """
        stop=8
        0=30-30
        1=100-400
        2=400-500,c,500-1000,c,500-1000,c,500-1000,c,500-1000
        3=9-9,500-1000
        4=500-1000
        5=500-1000
        6=500-1000
        7=500-1000
        """
    /// The scheme built in (always valid).
    package static let `default` = AnyTLSPaddingScheme(Array(defaultText.utf8))!

    /// The text as sent in an update frame.
    package let raw: [UInt8]
    /// Hex MD5 of `raw` (`padding-md5`).
    package let md5: String
    /// Packets below this are shaped (`uint32(stop)`, as Go converts it).
    package let stop: UInt32
    private let entries: [String: String]

    /// Go's `NewPaddingFactory`: nil when no line has `=` or `stop` is not an integer.
    package init?(_ raw: [UInt8]) {
        let map = AnyTLSStringMap.parse(raw)
        guard !map.isEmpty, let stopText = map["stop"], let stop = Int(stopText) else { return nil }
        self.raw = raw
        self.md5 = AnyTLSModule.md5Hex(raw)
        self.stop = UInt32(truncatingIfNeeded: stop)
        self.entries = map
    }

    /// Go's `GenerateRecordPayloadSizes(pkt)`: sizes (or `checkMark`) for packet `packet`.
    package func recordSizes<R: RandomNumberGenerator>(for packet: UInt32, using generator: inout R) -> [Int] {
        guard let list = entries[String(packet)] else { return [] }
        var sizes: [Int] = []
        for item in list.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
            if bounds.count == 2 {
                guard var low = Int64(bounds[0]), var high = Int64(bounds[1]) else { continue }
                if low > high { swap(&low, &high) }
                guard low > 0, high > 0, high <= Int64(UInt16.max) else { continue }
                sizes.append(low == high ? Int(low) : Int(Int64.random(in: low..<high, using: &generator)))
            } else if item == "c" {
                sizes.append(Self.checkMark)
            }
        }
        return sizes
    }

    /// `recordSizes(for:using:)` with the system generator (Go uses crypto/rand).
    package func recordSizes(for packet: UInt32) -> [Int] {
        var generator = SystemRandomNumberGenerator()
        return recordSizes(for: packet, using: &generator)
    }

    /// Schemes are equal when their text is.
    package static func == (lhs: Self, rhs: Self) -> Bool { lhs.raw == rhs.raw }
}

/// The scheme an outbound's sessions pad by; a server's update replaces it for all of them
/// (Go's `atomic.TypedValue[*PaddingFactory]` shared by the client's sessions).
package final class AnyTLSPaddingState: Sendable {
    private let current: Mutex<AnyTLSPaddingScheme>

    /// Starts with `scheme` (Go's clients start with the default).
    package init(_ scheme: AnyTLSPaddingScheme = .default) {
        current = Mutex(scheme)
    }

    /// The scheme now.
    package var scheme: AnyTLSPaddingScheme { current.withLock { $0 } }

    /// Replaces the scheme; false (unchanged) when `raw` does not parse.
    package func update(_ raw: [UInt8]) -> Bool {
        guard let scheme = AnyTLSPaddingScheme(raw) else { return false }
        current.withLock { $0 = scheme }
        return true
    }
}
