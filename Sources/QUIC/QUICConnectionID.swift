// QUICConnectionID: 0…20 opaque bytes naming a connection at one endpoint (RFC 9000 §5.1).

/// A connection ID. QUIC v1 limits it to 20 bytes (RFC 9000 §17.2); parsers enforce that.
package struct QUICConnectionID: Hashable, Sendable, CustomStringConvertible {
    /// The ID's bytes, at most 20.
    package var bytes: [UInt8]

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// A random ID of `length` bytes from `generator`.
    package static func random(length: Int = 8, using generator: inout some RandomNumberGenerator) -> QUICConnectionID {
        QUICConnectionID((0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    package var count: Int { bytes.count }
    package static let empty = QUICConnectionID([])

    package var description: String { bytes.map { String($0, radix: 16).leftPadded(2) }.joined() }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
