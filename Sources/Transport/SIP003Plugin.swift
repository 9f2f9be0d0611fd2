// SIP003Plugin: the shadowsocks outbound's `plugin` / `plugin_opts`, run in-process as Go's
// transport/sip003 does: `obfs-local` (simple-obfs, http or tls; the SimpleObfs…ClientHandlers) and
// `v2ray-plugin` (websocket, optional TLS, mux.cool framing unless `mux=0`; quic mode is not built).
// 1. `SIP003Arguments.parse` splits plugin_opts (`k=v;k2;k3=a\;b`, Go's ParsePluginOptions).
// 2. `SIP003Plugin(name:options:serverPort:)` looks the name up and reads its arguments.
// 3. `SIP003PluginDialer.connect` dials the server through the plugin; the shadowsocks handler goes
//    right after the handler it returns.
package import Adapter
package import Config
import Net
package import NIOCore

/// A plugin of a shadowsocks outbound's server streams (TCP only: Go dials UDP without it).
package enum SIP003Plugin: Sendable, Equatable {
    /// simple-obfs HTTP: a fake `GET /` carrying the first write, the server's reply header stripped.
    case obfsHTTP(host: String, port: UInt16)
    /// simple-obfs TLS: a fake ClientHello carrying the first write, then application-data records.
    case obfsTLS(host: String)
    /// v2ray-plugin's client: websocket (TLS when `tls`), each stream one mux.cool session when mux > 0.
    case v2ray(tls: OutboundTLSOptions?, transport: V2RayTransportOptions, mux: Int)

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
            self = try Self.v2ray(arguments)
        default:
            throw AdapterError(.other, "plugin not found: \(name)")
        }
    }

    /// Go's newV2RayPlugin: `tls`, `cert` (a CA file), `certRaw` (base64 DER body), `host` (the ws
    /// Host header and the TLS server name; default cloudfront.com), `path` (default /), `mode`
    /// (websocket or quic), `mux` (websocket only; default 1).
    private static func v2ray(_ arguments: SIP003Arguments) throws(AdapterError) -> SIP003Plugin {
        var tls = OutboundTLSOptions()
        tls.enabled = arguments.first("tls") != nil
        if let path = arguments.first("cert") { tls.certificatePath = path }
        if let raw = arguments.first("certRaw") {
            tls.certificate = ["-----BEGIN CERTIFICATE-----\n" + raw + "\n-----END CERTIFICATE-----"]
        }
        let host = arguments.first("host") ?? "cloudfront.com"
        if arguments.first("host") != nil { tls.serverName = host }
        let mode = arguments.first("mode") ?? "websocket"
        switch mode {
        case "websocket":
            var ws = V2RayWebsocketOptions()
            ws.headers = ListableMap([(key: "Host", values: [host])])
            ws.path = arguments.first("path") ?? "/"
            let mux = try arguments.first("mux").map { text throws(AdapterError) in try goAtoi(text, context: "parse mux value") } ?? 1
            return .v2ray(tls: tls.enabled ? tls : nil, transport: .ws(ws), mux: mux)
        case "quic":
            throw AdapterError.notImplemented("v2ray-plugin mode quic on shadowsocks outbound")
        default:
            throw AdapterError(.other, "v2ray-plugin: unknown mode: \(mode)")
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

/// A plugin bound to its outbound's dialer and server. Immutable; `connect` runs from any thread.
package struct SIP003PluginDialer: Sendable {
    package let plugin: SIP003Plugin
    private let dialer: any Dialer
    private let server: Destination
    /// v2ray-plugin's TLS and websocket, built once.
    private let stream: ProxyStreamDialer?

    /// Builds what the plugin needs up front (v2ray-plugin's TLS client; Go's tls.NewClient errors).
    package init(_ plugin: SIP003Plugin, dialer: any Dialer, server: ServerOptions) throws {
        self.plugin = plugin
        self.dialer = dialer
        self.server = Destination(host: Host(server.server), port: server.serverPort)
        if case let .v2ray(tls, transport, _) = plugin {
            stream = try ProxyStreamDialer(dialer: dialer, server: server, tls: tls, transport: transport, protocolName: "shadowsocks")
        } else {
            stream = nil
        }
    }

    /// Dials the server through the plugin: returns the channel and the handler the shadowsocks
    /// handler must follow (nil: first in the pipeline). The channel is closed on failure.
    package func connect(on eventLoop: any EventLoop) async throws -> (any Channel, (any ChannelHandler)?) {
        switch plugin {
        case let .obfsHTTP(host, port):
            return try await dial(SimpleObfsHTTPClientHandler(host: host, port: port), on: eventLoop)
        case let .obfsTLS(host):
            return try await dial(SimpleObfsTLSClientHandler(host: host), on: eventLoop)
        case let .v2ray(_, _, mux):
            guard let stream else { preconditionFailure("v2ray-plugin without its stream dialer") }
            let (channel, last) = try await stream.connect(on: eventLoop)
            // Go wraps the transport's stream only when mux > 0; mux.cool goes right above the ws handler.
            guard mux > 0 else { return (channel, last) }
            let wrapper = MuxCoolClientHandler()
            do {
                try await channel.eventLoop.submit {
                    try channel.pipeline.syncOperations.addHandler(wrapper, position: ProxyStreamDialer.position(channel, after: last))
                }.get()
                return (channel, wrapper)
            } catch {
                channel.close(promise: nil)
                throw error
            }
        }
    }

    /// simple-obfs: the handler goes first (next to the socket), as the dialer's plain stream.
    private func dial<Handler: ChannelHandler & Sendable>(_ handler: Handler, on eventLoop: any EventLoop) async throws -> (any Channel, (any ChannelHandler)?) {
        let channel = try await dialer.dialTCP(to: server, on: eventLoop)
        do {
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.addHandler(handler, position: .first)
            }.get()
            return (channel, handler)
        } catch {
            channel.close(promise: nil)
            throw error
        }
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
