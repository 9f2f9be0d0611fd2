/// The TCP control bits (RFC 9293 §3.1, RFC 3168 for ECE/CWR), as in byte 13 of the header.
package struct TCPFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    package var rawValue: UInt8
    @inlinable package init(rawValue: UInt8) { self.rawValue = rawValue }

    package static let fin = TCPFlags(rawValue: 0x01)
    package static let syn = TCPFlags(rawValue: 0x02)
    package static let rst = TCPFlags(rawValue: 0x04)
    package static let psh = TCPFlags(rawValue: 0x08)
    package static let ack = TCPFlags(rawValue: 0x10)
    package static let urg = TCPFlags(rawValue: 0x20)
    package static let ece = TCPFlags(rawValue: 0x40)
    package static let cwr = TCPFlags(rawValue: 0x80)

    /// `SYN|ACK` style text, for test failures and trace logs.
    package var description: String {
        let names: [(TCPFlags, String)] = [(.syn, "SYN"), (.fin, "FIN"), (.rst, "RST"), (.psh, "PSH"),
                                           (.ack, "ACK"), (.urg, "URG"), (.ece, "ECE"), (.cwr, "CWR")]
        let present = names.filter { contains($0.0) }.map(\.1)
        return present.isEmpty ? "none" : present.joined(separator: "|")
    }
}
