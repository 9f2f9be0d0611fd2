// Small text helpers every floor uses (HTTP header values, URL escapes, config strings).

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (HTTP's OWS; Go's `textproto.TrimString`).
    package var trimmingSpaces: Substring {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return slice
    }
}

/// The value of an ASCII hex digit (`0-9`, `a-f`, `A-F`), or nil.
package func asciiHexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
