// DNS: the DNS wire codec, the client and its cache, and the DNS servers ("transports") of sing-box
// 1.12: udp, tcp, local, hosts, fakeip. DNS rules and the DNS router build on DNSClient.
//
// Parts:
// - DNSMessage (+Parse, +Emit), DNSName, DNSResourceRecord: our own codec. Parsing untrusted octets
//   uses typed throws (DNSWireError) and never traps; compression pointers must point backwards.
// - DNSClient, DNSCache: sing-box's dns.Client: strategy, TTL rules, negative caching, LRU capacity,
//   disable_expire, independent_cache, coalescing of identical in-flight queries, subnet-aware keys.
// - UDPTransport, TCPTransport, LocalTransport: sockets come from an Adapter.Dialer (kernel or detour);
//   state lives on one event loop per transport.
// - HostsTransport, FakeIPStore/FakeIPTransport: answered in memory.
// - DNSTransportResolver: Adapter.DNSResolver for dialers, over the client and tagged transports.
//
// Invariants: every answer handed out has the asker's ID; a response is accepted only from the
// server, with a pending random ID and the asked question. No tls/https/quic transports yet (TLS and
// QUIC are other targets'); no DNS rules, RDRC or reverse mapping here.
//
// Imports: Adapter, Net (tests), NIOCore, NIOPosix; never Box, Router or a protocol. See
// ../shared/STYLE.md §1.

/// The module's name, for log lines and diagnostics.
package enum DNSModule {
    package static let name = "DNS"
}
