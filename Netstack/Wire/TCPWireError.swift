/// Why bytes could not be read as a TCP header or its options.
///
/// Thrown on the hot path by `TCPHeaderView`, `TCPOptions` and `TCPSegment`: no strings, no boxing,
/// only the numbers needed to count and trace the drop. The stack drops such a segment and counts it.
/// (Kept TCP-specific so it does not collide with the stack's `WireError`; the integrator may fold it in.)
public enum TCPWireError: Error, Equatable, Sendable {
    /// Fewer bytes than the fixed header (20) or than the data offset says.
    case truncated(need: Int, have: Int)
    /// A data offset below 5 words.
    case badHeaderLength(Int)
    /// An option whose length byte is missing, below 2, or runs past the option space.
    case malformedOption(kind: UInt8, offset: Int)
    /// A known option (MSS, window scale, SACK-permitted, SACK, timestamps) with the wrong length.
    case badOptionLength(kind: UInt8, length: Int)
}
