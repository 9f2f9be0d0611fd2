// TUIC: sing-box's `tuic` inbound and outbound (TUIC v5 over QUIC; Go sing-box 1.12.12
// protocol/tuic and sing-quic's tuic package, read for facts).
//
// 1. Wire (`TUICCodec`): commands Authenticate, Connect, Packet, Dissociate, Heartbeat; addresses
//    with family bytes 0 (name), 1 (IPv4), 2 (IPv6), 0xff (none); Packet fragmentation and
//    reassembly with Go's limits.
// 2. `TUICSession`: one QUIC connection (client or server) on one event loop: authentication on a
//    unidirectional stream (token = TLS exporter, label = UUID bytes, context = password), a
//    bidirectional stream per TCP flow (`TUICStreamChannel`), UDP associations
//    (`TUICPacketConnection`) carried in DATAGRAM frames (native) or unidirectional streams (quic),
//    heartbeats.
// 3. `TUICOutbound` keeps one session per event loop (flows stay on their loop, as the relay needs),
//    redialing when it dies; `TUICInbound` runs one server socket.
//
// Our QUIC core has NewReno only and no 0-RTT: `congestion_control` cubic/bbr run NewReno and
// `zero_rtt_handshake` does a full handshake, each with one warning at start.
//
// Imports: QUIC, QUICNIO, Transport (UDP-over-TCP), Net, Adapter, Config. Never the router. QUIC and
// QUICNIO are `@_implementationOnly`: QUIC's TLS is BoringSSL (CNIOBoringSSL), whose C declarations
// clash with the system OpenSSL's (COpenSSL) in any module that loads both, and Box imports COpenSSL.
// No QUIC type appears in this module's package API, so Box never needs QUIC's layout.
package import Adapter
import Config

/// Namespace of the tuic protocol (registration, shared helpers).
package enum TUICModule {
    /// TUIC's version byte.
    static let version: UInt8 = 5

    /// A UUID in its text form as 16 bytes (Go's `uuid.FromString`: hyphenated, braced, `urn:uuid:`
    /// or bare hex); nil when it is not one.
    package static func parseUUID(_ text: String) -> [UInt8]? {
        var hex = Substring(text)
        if hex.hasPrefix("urn:uuid:") { hex = hex.dropFirst(9) }
        if hex.hasPrefix("{"), hex.hasSuffix("}") { hex = hex.dropFirst().dropLast() }
        let digits = Array(hex.utf8)
        let compact: [UInt8]
        if digits.count == 36 {
            guard [8, 13, 18, 23].allSatisfy({ digits[$0] == UInt8(ascii: "-") }) else { return nil }
            compact = digits.enumerated().filter { ![8, 13, 18, 23].contains($0.offset) }.map(\.element)
        } else {
            compact = digits
        }
        guard compact.count == 32 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        var index = 0
        while index < 32 {
            guard let high = hexValue(compact[index]), let low = hexValue(compact[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Checks `congestion_control` as Go does (`unknown congestion control algorithm: …`) and says
    /// what we run instead: nil for NewReno, else the warning to log once (we only have NewReno).
    static func congestionWarning(_ value: String?) throws -> String? {
        switch value ?? "" {
        case "":
            return nil  // Go's default is cubic; unasked for, the substitution is not worth a warning
        case "cubic":
            return "congestion_control cubic is not implemented: using new_reno"
        case "bbr":
            return "congestion_control bbr is not implemented: using new_reno"
        case "new_reno":
            return nil
        default:
            throw AdapterError(.other, "unknown congestion control algorithm: \(value ?? "")")
        }
    }

    /// The warning for `zero_rtt_handshake: true`: our QUIC has no 0-RTT, so the handshake is a full one.
    static let zeroRTTWarning = "zero_rtt_handshake is not implemented: using a full handshake"
}
