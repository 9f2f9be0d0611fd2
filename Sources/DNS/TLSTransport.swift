// The `tls` DNS server (sing-box 1.12 dns/transport/tls.go): DNS over TLS (RFC 7858), port 853 by
// default. The same length-prefixed framing and pipelining as `tcp` (TCPTransportCore), with a TLS
// client (DNSTLSClientHandler) between the framing and the dialer's channel, so a detour works too.

package import Adapter
package import NIOCore

/// The `tls` DNS server.
package final class TLSTransport: DNSTransport {
    package let tag: String
    package var type: String { "tls" }
    package let server: Destination
    private let core: TCPTransportCore

    /// A transport to `server` over TLS connections from `dialer`, on `eventLoop`. `tls` holds the
    /// verification settings; a query not answered within `timeout` fails with `DNSError.timeout`,
    /// one whose connection fails the handshake with `DNSTLSError`.
    package init(tag: String, server: Destination, tls: DNSTLSContext, dialer: any Dialer, eventLoop: any EventLoop,
                 timeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(30)) {
        self.tag = tag
        self.server = server
        core = TCPTransportCore(server: server, dialer: dialer, loop: eventLoop, timeout: TimeAmount(timeout),
                                idleTimeout: TimeAmount(idleTimeout), tls: tls)
    }

    package func exchange(_ message: DNSMessage) async throws -> DNSMessage {
        try await core.exchange(message, retryOnClose: true)
    }

    package func close() async {
        try? await core.loop.submit { self.core.close() }.get()
    }
}
