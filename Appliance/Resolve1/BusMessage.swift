// BusMessage: typed reads and appends on an sd_bus_message for Swift, which cannot call the variadic
// sd_bus_message_read / _append (shared/SWIFT-LINUX.md §1). Every call returns sd-bus's negative
// errno as `BusFailure`; a message that does not match the vtable signature never reaches a handler
// (sd-bus answers InvalidArgs itself), so a failure here is a short or odd message.
import CSystemd
import Glibc

/// A negative errno from an sd-bus call.
struct BusFailure: Error {
    var code: Int32
}

/// Reads the arguments of a method call in signature order.
struct BusReader {
    let message: OpaquePointer

    @inline(__always) private func check(_ result: Int32) throws(BusFailure) {
        if result < 0 { throw BusFailure(code: result) }
    }

    private func basic<T>(_ type: Character, _ initial: T) throws(BusFailure) -> T {
        var value = initial
        let result = withUnsafeMutablePointer(to: &value) { sd_bus_message_read_basic(message, CChar(type.asciiValue!), $0) }
        try check(result)
        // 0 means "end of container": the caller asked for more than there is.
        if result == 0 { throw BusFailure(code: -ENXIO) }
        return value
    }

    func int32() throws(BusFailure) -> Int32 { try basic("i", Int32(0)) }
    func uint16() throws(BusFailure) -> UInt16 { try basic("q", UInt16(0)) }
    func uint64() throws(BusFailure) -> UInt64 { try basic("t", UInt64(0)) }
    func bool() throws(BusFailure) -> Bool { try basic("b", Int32(0)) != 0 }

    func string() throws(BusFailure) -> String {
        var pointer: UnsafePointer<CChar>?
        let result = sd_bus_message_read_basic(message, CChar(UInt8(ascii: "s")), &pointer)
        try check(result)
        guard result > 0, let pointer else { throw BusFailure(code: -ENXIO) }
        return String(cString: pointer)
    }

    /// An `ay` as bytes.
    func bytes() throws(BusFailure) -> [UInt8] {
        var pointer: UnsafeRawPointer?
        var size = 0
        try check(sd_bus_message_read_array(message, CChar(UInt8(ascii: "y")), &pointer, &size))
        guard let pointer, size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: size))
    }

    /// Enters an array, struct (`r`) or variant; returns false at the end of the enclosing array.
    func enter(_ type: Character, _ contents: String) throws(BusFailure) -> Bool {
        let result = sd_bus_message_enter_container(message, CChar(type.asciiValue!), contents)
        try check(result)
        return result > 0
    }

    func exit() throws(BusFailure) { try check(sd_bus_message_exit_container(message)) }

    /// Reads an array of `element` structs with `body` per element.
    func array(_ element: String, _ body: () throws(BusFailure) -> Void) throws(BusFailure) {
        guard try enter("a", "(\(element))") else { return }
        while try enter("r", element) {
            try body()
            try exit()
        }
        try exit()
    }

    /// An `as`.
    func strings() throws(BusFailure) -> [String] {
        var out: [String] = []
        guard try enter("a", "s") else { return out }
        while true {
            var pointer: UnsafePointer<CChar>?
            let result = sd_bus_message_read_basic(message, CChar(UInt8(ascii: "s")), &pointer)
            try check(result)
            guard result > 0, let pointer else { break }
            out.append(String(cString: pointer))
        }
        try exit()
        return out
    }
}

/// Appends values to a reply or a property value in signature order.
struct BusWriter {
    let message: OpaquePointer

    @inline(__always) private func check(_ result: Int32) throws(BusFailure) {
        if result < 0 { throw BusFailure(code: result) }
    }

    private func basic<T>(_ type: Character, _ value: T) throws(BusFailure) {
        var copy = value
        try check(withUnsafePointer(to: &copy) { sd_bus_message_append_basic(message, CChar(type.asciiValue!), $0) })
    }

    func int32(_ value: Int32) throws(BusFailure) { try basic("i", value) }
    func uint16(_ value: UInt16) throws(BusFailure) { try basic("q", value) }
    func uint64(_ value: UInt64) throws(BusFailure) { try basic("t", value) }
    func bool(_ value: Bool) throws(BusFailure) { try basic("b", Int32(value ? 1 : 0)) }

    /// `s` (or `o` with `type: "o"`): sd-bus wants the char pointer itself.
    func string(_ value: String, type: Character = "s") throws(BusFailure) {
        try check(value.withCString { sd_bus_message_append_basic(message, CChar(type.asciiValue!), $0) })
    }

    func bytes(_ value: [UInt8]) throws(BusFailure) {
        try check(value.withUnsafeBytes { sd_bus_message_append_array(message, CChar(UInt8(ascii: "y")), $0.baseAddress, $0.count) })
    }

    func open(_ type: Character, _ contents: String) throws(BusFailure) {
        try check(sd_bus_message_open_container(message, CChar(type.asciiValue!), contents))
    }

    func close() throws(BusFailure) { try check(sd_bus_message_close_container(message)) }

    /// `a<element>` with `body` writing each item.
    func array<S: Sequence>(_ element: String, _ items: S, _ body: (S.Element) throws(BusFailure) -> Void) throws(BusFailure) {
        try open("a", element)
        for item in items { try body(item) }
        try close()
    }

    /// `(…)` with `body` writing the fields.
    func structure(_ contents: String, _ body: () throws(BusFailure) -> Void) throws(BusFailure) {
        try open("r", contents)
        try body()
        try close()
    }
}
