/// A TCP sequence number: 32-bit, compared modulo 2^32 (RFC 9293 §3.4, "sequence number arithmetic").
///
/// `a < b` means `b` is ahead of `a` by less than 2^31. Distances are `SeqLength` (signed, in bytes).
public struct SeqNumber: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    /// The signed distance from `other` to `self` (positive when `self` is ahead).
    @inlinable public func distance(from other: SeqNumber) -> Int32 {
        Int32(bitPattern: rawValue &- other.rawValue)
    }

    @inlinable public static func + (lhs: SeqNumber, rhs: UInt32) -> SeqNumber { SeqNumber(lhs.rawValue &+ rhs) }
    @inlinable public static func + (lhs: SeqNumber, rhs: Int) -> SeqNumber { SeqNumber(lhs.rawValue &+ UInt32(truncatingIfNeeded: rhs)) }
    @inlinable public static func - (lhs: SeqNumber, rhs: UInt32) -> SeqNumber { SeqNumber(lhs.rawValue &- rhs) }
    @inlinable public static func += (lhs: inout SeqNumber, rhs: UInt32) { lhs.rawValue &+= rhs }
    /// Bytes from `rhs` up to `lhs`, modulo 2^32 (callers ensure `lhs` is not behind `rhs`).
    @inlinable public static func - (lhs: SeqNumber, rhs: SeqNumber) -> UInt32 { lhs.rawValue &- rhs.rawValue }

    @inlinable public static func < (lhs: SeqNumber, rhs: SeqNumber) -> Bool { lhs.distance(from: rhs) < 0 }
    @inlinable public static func <= (lhs: SeqNumber, rhs: SeqNumber) -> Bool { lhs.distance(from: rhs) <= 0 }
    @inlinable public static func > (lhs: SeqNumber, rhs: SeqNumber) -> Bool { lhs.distance(from: rhs) > 0 }
    @inlinable public static func >= (lhs: SeqNumber, rhs: SeqNumber) -> Bool { lhs.distance(from: rhs) >= 0 }

    /// `low <= self < high` in sequence space (RFC 9293's acceptability tests use this shape).
    @inlinable public func isIn(_ low: SeqNumber, _ high: SeqNumber) -> Bool {
        self.distance(from: low) >= 0 && high.distance(from: self) > 0
    }

    public var description: String { String(rawValue) }
}
