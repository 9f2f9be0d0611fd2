// v2ray stream transports, client side (Go's transport/v2raywebsocket and v2rayhttpupgrade): after
// the TCP connect and the TLS handshake, the stream is upgraded and protocols write through it.
//
// - `httpupgrade`: `GET path` with `Connection: Upgrade`, `Upgrade: websocket`; a 101 answer with
//   both headers makes the rest of the stream raw bytes.
// - `ws`: an RFC 6455 handshake (Sec-WebSocket-Key/Accept), then binary frames, masked from the
//   client; ping is answered, close ends the stream. `max_early_data`: the handshake waits for the
//   first write and carries up to that many of its bytes, base64url, in `early_data_header_name` or
//   appended to the path (Go's EarlyWebsocketConn).
// - `http`, `grpc`, `quic`: not implemented here (a clear error at start).
package import Adapter
package import Config
import COpenSSL
import Foundation
import Net
package import NIOCore

/// Builds and runs one outbound's transport.
package final class V2RayTransportClient: Sendable {
    enum Kind: Sendable {
        case httpUpgrade
        case webSocket(maxEarlyData: Int, earlyDataHeader: String?)
    }

    let kind: Kind
    /// The request target (path and query).
    let path: String
    /// The `Host` header.
    let host: String
    /// Other headers in order (`Host` removed).
    let headers: [(String, String)]

    /// Go's client setup: the path gets a leading slash; `Host` comes from the options, else (for
    /// httpupgrade) the TLS server name, else the server address. Throws for the transports this
    /// build lacks.
    package init(options: V2RayTransportOptions, server: Destination, tlsServerName: String?) throws(AdapterError) {
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
        default:
            throw AdapterError.notImplemented("transport \(options.type)")
        }
    }

    /// ALPN the TLS layer offers when the config names none (Go sets http/1.1 for both).
    package static let defaultALPN = ["http/1.1"]

    /// Upgrades `channel` (connected, TLS done): installs the transport right after `previous` (the
    /// TLS handler) or before the dialer's early-bytes holder, and returns once the stream carries
    /// raw bytes (with early data, at once: the handshake goes with the first write). The returned
    /// handler is where protocol handlers go after. Closes the channel on failure.
    package func upgrade(_ channel: any Channel, after previous: (any ChannelHandler)?) async throws -> any ChannelHandler {
        let loop = channel.eventLoop
        let ready = loop.makePromise(of: Void.self)
        let handler: any ChannelHandler & Sendable
        switch kind {
        case .httpUpgrade:
            handler = HTTPUpgradeClientHandler(request: requestHead(extra: [("Connection", "Upgrade"), ("Upgrade", "websocket")], path: path),
                                               ready: ready)
        case .webSocket(let maxEarlyData, let earlyDataHeader):
            handler = WebSocketClientHandler(client: self, maxEarlyData: maxEarlyData, earlyDataHeader: earlyDataHeader, ready: ready)
        }
        try await loop.submit {
            let sync = channel.pipeline.syncOperations
            if let previous {
                try sync.addHandler(handler, position: .after(previous))
            } else if let holder = try? sync.handler(type: FlowBufferHandler.self) {
                try sync.addHandler(handler, position: .before(holder))
            } else {
                try sync.addHandler(handler, position: .last)
            }
        }.get()
        let timeout = loop.scheduleTask(in: .seconds(15)) { ready.fail(AdapterError(.other, "transport handshake timed out")) }
        do {
            try await ready.futureResult.get()
            timeout.cancel()
            return handler
        } catch {
            timeout.cancel()
            channel.close(promise: nil)
            throw error
        }
    }

    /// `GET path HTTP/1.1` with Host, the configured headers and `extra`.
    func requestHead(extra: [(String, String)], path: String) -> String {
        var text = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        for (name, value) in headers + extra { text += "\(name): \(value)\r\n" }
        return text + "\r\n"
    }
}
