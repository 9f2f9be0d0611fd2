// HTTPProxy: the HTTP/1.1 proxy protocol (RFC 9110 §9.3.6 CONNECT, RFC 9112 §3.2.2 absolute-form,
// RFC 7617 Basic credentials in Proxy-Authorization), the `http` inbound and outbound, and the
// server handler the `mixed` inbound reuses.
//
// Layout: `HTTPRequestHead` / `HTTPResponseHead` parse heads from `ByteBuffer` with typed throws
// and a size limit; `HTTPProxyRequest` turns a head into a decision (tunnel, forward, answer);
// `HTTPProxyServerHandler` and `HTTPConnectClientHandler` run them on a channel.
//
// Invariants: a head is never buffered past `HTTPRequestHead.maximumLength`; nothing a peer sends
// can trap. Imports: Adapter, Net, Config, NIOCore only (STYLE.md §1, floor 8).

/// The module's name, for log lines and diagnostics.
package enum HTTPProxyModule {
    package static let name = "HTTPProxy"
}
