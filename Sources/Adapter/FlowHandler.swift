// FlowHandler: what inbounds hand accepted flows to (the router).
package import NIOCore

/// Lets the router tell an inbound how the outbound side went, so protocols that answer the
/// client only after dialing (SOCKS5 reply, HTTP CONNECT `200`) can do so. Called on the flow's
/// event loop, exactly one of the two, at most once.
package protocol HandshakeResponder: Sendable {
    /// The outbound is connected and the relay is already installed behind the inbound's handlers.
    /// Write the success reply to `channel` and remove the handshake handlers (bytes they release
    /// on removal flow into the relay); the returned future completes when that is done.
    func succeed(_ channel: any Channel) -> EventLoopFuture<Void>
    /// Dialing failed or a rule rejected the flow. Write the protocol's error reply if any; the
    /// router closes the channel after the returned future.
    func fail(_ channel: any Channel, error: any Error) -> EventLoopFuture<Void>
}

/// Takes flows from inbounds. Implemented by the router; tests may use a fake.
///
/// Contract: called on the flow's event loop. For TCP the handler takes ownership of `channel`
/// (active, `autoRead` OFF, early payload held by Net's `FlowBufferHandler` or the inbound's own
/// handler — NIO drains a socket on EOF even with autoRead off — handshake handlers
/// either removed or waiting on `responder`, payload `ByteBuffer`); it closes the channel when the
/// flow ends. For UDP it takes ownership of `connection`: its `packetReceived(_:from:)` gives the
/// address the client sent to, and `writePacket(_:to:)` delivers a reply that appears to come
/// from that address.
package protocol FlowHandler: AnyObject, Sendable {
    /// Routes and relays one TCP flow.
    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?)
    /// Routes and relays one UDP flow.
    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata)
}

/// Answers DNS queries from flows that a `hijack-dns` rule caught. Implemented by the DNS router;
/// the box hands it to the router. Takes ownership of the flow like `FlowHandler`.
package protocol DNSHijacker: AnyObject, Sendable {
    /// DNS over a TCP stream (two-byte length prefix per message, RFC 1035 §4.2.2).
    func hijackTCP(_ channel: any Channel, metadata: FlowMetadata)
    /// DNS over UDP datagrams.
    func hijackUDP(_ connection: any PacketConnection, metadata: FlowMetadata)
}
