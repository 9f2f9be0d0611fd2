// v2ray stream transports, client side (Go's transport/v2raywebsocket and v2rayhttpupgrade): after
// the TCP connect and the TLS handshake, the stream is upgraded and protocols write through it.
//
// - `httpupgrade`: `GET path` with `Connection: Upgrade`, `Upgrade: websocket`; a 101 answer with
//   both headers makes the rest of the stream raw bytes.
// - `ws`: an RFC 6455 handshake (Sec-WebSocket-Key/Accept), then binary frames, masked from the
//   client; ping is answered, close ends the stream. `max_early_data`: the handshake waits for the
//   first write and carries up to that many of its bytes, base64url, in `early_data_header_name` or
//   appended to the path (Go's EarlyWebsocketConn).
// - `grpc` (Go's v2raygrpclite, the default build's gRPC): an HTTP/2 POST to
//   `/<service_name>/Tun` on a connection of its own (h2c with prior knowledge without TLS), each
//   chunk a gun message (GunFraming, HTTP2ClientStreamHandler).
// - `http` (v2rayhttp): with TLS the same HTTP/2 stream carrying raw bytes (method default PUT,
//   host chosen at random from the list, default `www.example.com`); without TLS HTTP/1.1 whose
//   request head goes with the first write and whose 200 head precedes the raw stream.
// - `quic`: not implemented here (a clear error at start).
package import Adapter
package import Config
import COpenSSL
import Foundation
import Net
package import NIOCore
import NIOHPACK
import NIOHTTP2

/// Builds and runs one outbound's transport.
package final class V2RayTransportClient: Sendable {
    enum Kind: Sendable {
        case httpUpgrade
        case webSocket(maxEarlyData: Int, earlyDataHeader: String?)
        case grpc(keepalive: HTTP2ClientStreamHandler.Keepalive?)
        /// `http`: hosts to pick from, the method, and whether TLS is under it (HTTP/2) or not (HTTP/1.1).
        case http(hosts: [String], method: String, http2: Bool, keepalive: HTTP2ClientStreamHandler.Keepalive?)
    }

    let kind: Kind
    /// The request target (path and query).
    let path: String
    /// The `Host` header.
    let host: String
    /// Other headers in order (`Host` removed).
    let headers: [(String, String)]

    /// Go's client setup: the path gets a leading slash; `Host` comes from the options, else (for
    /// httpupgrade) the TLS server name, else the server address. `tls`: whether TLS runs under
    /// the transport (grpc and http pick HTTP/2 or HTTP/1.1 by it). Throws for the transports this
    /// build lacks.
    package init(options: V2RayTransportOptions, server: Destination, tlsServerName: String?, tls: Bool = false) throws(AdapterError) {
        func normalized(_ path: String?) -> String {
            let path = path ?? ""
            return path.hasPrefix("/") ? path : "/" + path
        }
        switch options {
        case .httpUpgrade(let upgrade):
            kind = .httpUpgrade
            path = normalized(upgrade.path)
            host = (upgrade.host ?? "").isEmpty ? ((tlsServerName ?? "").isEmpty ? server.description : tlsServerName!) : upgrade.host!
            headers = upgrade.headers.entries.flatMap { entry in entry.values.map { (entry.key, $0) } }
                .filter { $0.0.lowercased() != "host" }
        case .ws(let ws):
            kind = .webSocket(maxEarlyData: Int(ws.maxEarlyData ?? 0), earlyDataHeader: (ws.earlyDataHeaderName ?? "").isEmpty ? nil : ws.earlyDataHeaderName)
            path = normalized(ws.path)
            var pairs = ws.headers.entries.flatMap { entry in entry.values.map { (entry.key, $0) } }
            host = pairs.first { $0.0.lowercased() == "host" }?.1 ?? server.description
            pairs.removeAll { $0.0.lowercased() == "host" }
            if !pairs.contains(where: { $0.0.lowercased() == "user-agent" }) { pairs.append(("User-Agent", "Go-http-client/1.1")) }
            headers = pairs
        case .grpc(let grpc):
            kind = .grpc(keepalive: Self.keepalive(idle: grpc.idleTimeout, ping: grpc.pingTimeout))
            // Go: Path "/" + name + "/Tun" with RawPath url.PathEscape(name), which is what goes out.
            path = "/" + Self.pathEscape(grpc.serviceName ?? "") + "/Tun"
            // Go: the TLS server name with the server's port, else the server address.
            if let name = tlsServerName, !name.isEmpty, tls {
                host = Destination(host: Host(name), port: server.port).description
            } else {
                host = server.description
            }
            headers = [("content-type", "application/grpc"), ("user-agent", "grpc-go/1.48.0"), ("te", "trailers")]
        case .http(let http):
            kind = .http(hosts: http.host, method: (http.method ?? "").isEmpty ? "PUT" : http.method!, http2: tls,
                         keepalive: Self.keepalive(idle: http.idleTimeout, ping: http.pingTimeout))
            path = normalized(http.path)
            var pairs = http.headers.entries.flatMap { entry in entry.values.map { (entry.key, $0) } }
            if tls {
                // HTTP/2 takes the authority from the request's Host, never from a header.
                pairs.removeAll { $0.0.lowercased() == "host" }
                host = ""
            } else {
                // Go's HTTP/1.1 conn: a configured Host header wins; else the chosen host, else the
                // server address without its port.
                host = pairs.first { $0.0.lowercased() == "host" }?.1 ?? ""
                pairs.removeAll { $0.0.lowercased() == "host" }
            }
            headers = pairs
            hostFallback = tls ? "www.example.com" : server.host.description
            return
        default:
            throw AdapterError.notImplemented("transport \(options.type)")
        }
        hostFallback = ""
    }

    /// For `http`: the host when the list is empty (Go: `www.example.com` over HTTP/2, the server
    /// address over HTTP/1.1).
    let hostFallback: String

    /// ALPN the TLS layer offers when the config names none: Go sets http/1.1 for ws and
    /// httpupgrade, h2 for grpc and http.
    package static func defaultALPN(for options: V2RayTransportOptions) -> [String] {
        switch options {
        case .grpc, .http: ["h2"]
        default: ["http/1.1"]
        }
    }

    /// Go's http2.Transport ReadIdleTimeout and PingTimeout (15 s when unset).
    static func keepalive(idle: ConfigDuration?, ping: ConfigDuration?) -> HTTP2ClientStreamHandler.Keepalive? {
        guard let idle, idle.nanoseconds > 0 else { return nil }
        let timeout = (ping?.nanoseconds ?? 0) > 0 ? ping!.nanoseconds : 15_000_000_000
        return .init(idle: .nanoseconds(idle.nanoseconds), pingTimeout: .nanoseconds(timeout))
    }

    /// Go's `url.PathEscape`: everything but unreserved characters and `$&+:=@` is %-escaped (upper-case hex).
    static func pathEscape(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"),
                 UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "+"), UInt8(ascii: ":"), UInt8(ascii: "="), UInt8(ascii: "@"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return out
    }

    /// The `http` transport's host for one dial: one of the list at random, else the fallback.
    func chosenHost(from hosts: [String]) -> String {
        if !host.isEmpty { return host }
        return hosts.randomElement() ?? hostFallback
    }

    /// Upgrades `channel` (connected, TLS done): installs the transport right after `previous` (the
    /// TLS handler) or before the dialer's early-bytes holder, and returns once the stream carries
    /// raw bytes (with early data, at once: the handshake goes with the first write). Returns the
    /// channel protocol handlers go on and the handler they go after: `channel` and the transport's
    /// handler, or for grpc and http over HTTP/2 the stream's own channel (its writability follows
    /// the server's flow-control window) and nil — there they go before its early-bytes holder.
    /// Closes the channel on failure.
    package func upgrade(_ channel: any Channel, after previous: (any ChannelHandler)?) async throws -> (channel: any Channel, last: (any ChannelHandler)?) {
        let loop = channel.eventLoop
        let ready = loop.makePromise(of: Void.self)
        let handler: any ChannelHandler & Sendable
        switch kind {
        case .httpUpgrade:
            handler = HTTPUpgradeClientHandler(request: requestHead(extra: [("Connection", "Upgrade"), ("Upgrade", "websocket")], path: path),
                                               ready: ready)
        case .webSocket(let maxEarlyData, let earlyDataHeader):
            handler = WebSocketClientHandler(client: self, maxEarlyData: maxEarlyData, earlyDataHeader: earlyDataHeader, ready: ready)
        case .grpc(let keepalive):
            handler = HTTP2ClientStreamHandler(request: http2Request(method: "POST", authority: host), framing: .gun,
                                               errorPrefix: "v2ray-grpc", keepalive: keepalive, ready: ready)
        case .http(let hosts, let method, true, let keepalive):
            handler = HTTP2ClientStreamHandler(request: http2Request(method: method, authority: chosenHost(from: hosts)), framing: .raw,
                                               errorPrefix: "v2ray-http", keepalive: keepalive, ready: ready)
        case .http(let hosts, let method, false, _):
            var head = "\(method) \(path) HTTP/1.1\r\nHost: \(chosenHost(from: hosts))\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            handler = HTTP1ClientStreamHandler(requestHead: head + "\r\n")
            // Go's HTTPConn: the request goes with the first write.
            ready.succeed(())
        }
        // HTTP/2 under the stream handler: NIOHTTP2 in frame mode, windows as Go's transport (4 MiB a stream).
        let overHTTP2 = handler is HTTP2ClientStreamHandler
        try await loop.submit {
            let connection: (any ChannelHandler)? = overHTTP2 ? Self.http2ConnectionHandler() : nil
            let sync = channel.pipeline.syncOperations
            let position: ChannelPipeline.SynchronousOperations.Position
            if let previous {
                position = .after(previous)
            } else if let holder = try? sync.handler(type: FlowBufferHandler.self) {
                position = .before(holder)
            } else {
                position = .last
            }
            if let connection {
                try sync.addHandler(connection, position: position)
                try sync.addHandler(handler, position: .after(connection))
            } else {
                try sync.addHandler(handler, position: position)
            }
        }.get()
        let timeout = loop.scheduleTask(in: .seconds(15)) { ready.fail(AdapterError(.other, "transport handshake timed out")) }
        do {
            try await ready.futureResult.get()
            timeout.cancel()
            guard let http2 = handler as? HTTP2ClientStreamHandler else { return (channel, handler) }
            // The stream channel holds what arrives until the relay takes it, as a dialed socket's
            // holder does; the connection's own holder gets nothing any more.
            let stream = try await loop.submit {
                guard let stream = http2.stream else { throw AdapterError(.other, "transport: connection closed") }
                try stream.pipeline.syncOperations.addHandler(FlowBufferHandler())
                if let holder = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) {
                    channel.pipeline.syncOperations.removeHandler(holder, promise: nil)
                }
                return stream
            }.get()
            return (stream, nil)
        } catch {
            timeout.cancel()
            channel.close(promise: nil)
            throw error
        }
    }

    /// The stream window both HTTP/2 transports advertise (Go's http2.Transport: 4 MiB). Also the
    /// most a stream holds for a reader that does not read.
    static let streamWindow = 4 << 20

    /// NIOHTTP2 (client, frame mode) under an `HTTP2ClientStreamHandler`, windows as Go's transport.
    static func http2ConnectionHandler() -> NIOHTTP2Handler {
        NIOHTTP2Handler(mode: .client, initialSettings: [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 100),
            HTTP2Setting(parameter: .initialWindowSize, value: streamWindow),
            HTTP2Setting(parameter: .maxHeaderListSize, value: HPACKDecoder.defaultMaxHeaderListSize),
        ])
    }

    /// The request HEADERS of a grpc or http stream: pseudo-headers, then the configured headers
    /// (lower-cased, as HTTP/2 requires).
    func http2Request(method: String, authority: String) -> HPACKHeaders {
        var out = HPACKHeaders([(":method", method), (":scheme", "https"), (":authority", authority), (":path", path)])
        for (name, value) in headers { out.add(name: name.lowercased(), value: value) }
        if case .http = kind, !out.contains(name: "user-agent") { out.add(name: "user-agent", value: "Go-http-client/2.0") }
        return out
    }

    /// `GET path HTTP/1.1` with Host, the configured headers and `extra`.
    func requestHead(extra: [(String, String)], path: String) -> String {
        var text = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        for (name, value) in headers + extra { text += "\(name): \(value)\r\n" }
        return text + "\r\n"
    }
}
