// SIP003Plugin: the shadowsocks outbound's `plugin` / `plugin_opts`, run in-process as Go's
// transport/sip003 does. `obfs-local` (simple-obfs, http or tls) is carried by the
// SimpleObfs…ClientHandlers; `v2ray-plugin` parses as Go parses it and then fails as not implemented
// (its default `mux=1` needs VMess's mux.cool, which a transport may not import).
// 1. `SIP003Arguments.parse` splits plugin_opts (`k=v;k2;k3=a\;b`, Go's ParsePluginOptions).
// 2. `SIP003Plugin(name:options:serverPort:)` looks the name up and reads its arguments.
// 3. `install(in:)` puts the plugin's handler at the socket end of a dialed server stream.
package import Adapter
package import NIOCore

/// A plugin of a shadowsocks outbound's server streams (TCP only: Go dials UDP without it).
package enum SIP003Plugin: Sendable, Equatable {
    /// simple-obfs HTTP: a fake `GET /` carrying the first write, the server's reply header stripped.
    case obfsHTTP(host: String, port: UInt16)
    /// simple-obfs TLS: a fake ClientHello carrying the first write, then application-data records.
    case obfsTLS(host: String)

    /// Go's `sip003.CreatePlugin`: options parse first (`parse plugin_opts: …`), then the name
    /// (`plugin not found: …`), then the plugin's own arguments. Throws Go's wording.
    package init(name: String, options: String, serverPort: UInt16) throws(AdapterError) {
        let arguments: SIP003Arguments
        do {
            arguments = try SIP003Arguments.parse(options)
        } catch {
            throw AdapterError(.other, "parse plugin_opts: \(error.message)")
        }
        switch name {
        case "obfs-local":
            let mode = arguments.first("obfs") ?? "http"
            let host = arguments.first("obfs-host") ?? ""
            switch mode {
            case "http": self = .obfsHTTP(host: host, port: serverPort)
            case "tls": self = .obfsTLS(host: host)
            default: throw AdapterError(.other, "unknown obfs mode \(mode)")
            }
        case "v2ray-plugin":
            // Go's newV2RayPlugin checks the mode and the mux count before it builds anything.
            let mode = arguments.first("mode") ?? "websocket"
            switch mode {
            case "websocket":
                if let mux = arguments.first("mux") { _ = try Self.goAtoi(mux, context: "parse mux value") }
            case "quic": break
            default: throw AdapterError(.other, "v2ray-plugin: unknown mode: \(mode)")
            }
            throw AdapterError.notImplemented("v2ray-plugin on shadowsocks outbound")
        default:
            throw AdapterError(.other, "plugin not found: \(name)")
        }
    }

    /// Adds the plugin's handler first in `pipeline` (next to the socket, below the shadowsocks
    /// handler). Call on the channel's event loop after the shadowsocks handler is in place.
    package func install(in pipeline: ChannelPipeline.SynchronousOperations) throws {
        switch self {
        case let .obfsHTTP(host, port): try pipeline.addHandler(SimpleObfsHTTPClientHandler(host: host, port: port), position: .first)
        case let .obfsTLS(host): try pipeline.addHandler(SimpleObfsTLSClientHandler(host: host), position: .first)
        }
    }

    /// Go's `strconv.Atoi` with its error text under `context` (`parse mux value: strconv.Atoi:
    /// parsing "x": invalid syntax`).
    static func goAtoi(_ text: String, context: String) throws(AdapterError) -> Int {
        if let value = Int(text) { return value }
        let digits = text.drop { $0 == "+" || $0 == "-" }
        let syntaxOK = !digits.isEmpty && text.count - digits.count <= 1 && digits.allSatisfy { $0.isASCII && $0.isNumber }
        let reason = syntaxOK ? "value out of range" : "invalid syntax"
        throw AdapterError(.other, "\(context): strconv.Atoi: parsing \(goQuote(text)): \(reason)")
    }
}

/// A parse failure of plugin_opts, worded as Go's `ParsePluginOptions`.
package struct SIP003ArgumentsError: Error, Equatable, CustomStringConvertible {
    package var message: String
    package var description: String { message }
}

/// plugin_opts as a name → values map (SIP003's `SS_PLUGIN_OPTIONS`; Go's `sip003.Args`).
package struct SIP003Arguments: Equatable, Sendable {
    /// Every key with its values in the order given.
    package var values: [String: [String]] = [:]

    /// The first value given for `key`.
    package func first(_ key: String) -> String? { values[key]?.first }

    /// "k=v" pairs split by `;`; `\` escapes the next byte; a key without `=` gets the value "1".
    /// Throws Go's `nothing following final escape in "…"` and `empty key in "…"`.
    package static func parse(_ text: String) throws(SIP003ArgumentsError) -> SIP003Arguments {
        var result = SIP003Arguments()
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            let begin = index
            let (keyEnd, key) = try readUnescaped(bytes, from: index, until: [UInt8(ascii: "="), UInt8(ascii: ";")])
            // Go quotes s[begin:i] before advancing i, which is always the empty string.
            guard !key.isEmpty else { throw SIP003ArgumentsError(message: "empty key in \(goQuote(String(decoding: bytes[begin..<begin], as: UTF8.self)))") }
            index = keyEnd
            guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else {
                result.values[key, default: []].append("1")
                index += 1
                continue
            }
            index += 1
            let (valueEnd, value) = try readUnescaped(bytes, from: index, until: [UInt8(ascii: ";")])
            result.values[key, default: []].append(value)
            index = valueEnd + 1
        }
        return result
    }

    /// Go's `indexUnescaped` over `bytes[from...]`: where the next unescaped terminator is, and the
    /// unescaped text before it.
    private static func readUnescaped(_ bytes: [UInt8], from start: Int, until terminators: [UInt8]) throws(SIP003ArgumentsError) -> (Int, String) {
        var out: [UInt8] = []
        var index = start
        while index < bytes.count {
            var byte = bytes[index]
            if terminators.contains(byte) { break }
            if byte == UInt8(ascii: "\\") {
                index += 1
                guard index < bytes.count else {
                    throw SIP003ArgumentsError(message: "nothing following final escape in \(goQuote(String(decoding: bytes[start...], as: UTF8.self)))")
                }
                byte = bytes[index]
            }
            out.append(byte)
            index += 1
        }
        return (index, String(decoding: out, as: UTF8.self))
    }
}

/// Go's `%q` for the printable strings config holds: quotes, `\"` and `\\`, other controls as `\xNN`.
func goQuote(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7f {
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
