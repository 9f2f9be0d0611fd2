// DNS: the DNS wire codec, the client and its cache, the DNS router with its rules, and the DNS
// servers ("transports") of sing-box 1.12: udp, tcp, tls, dhcp, local, hosts, fakeip.
//
// Parts:
// - DNSMessage (+Parse, +Emit), DNSName, DNSResourceRecord: our own codec. Parsing untrusted octets
//   uses typed throws (DNSWireError) and never traps; compression pointers must point backwards.
// - DNSClient, DNSCache: sing-box's dns.Client: strategy, TTL rules, negative caching, LRU capacity,
//   disable_expire, independent_cache, coalescing of identical in-flight queries, subnet-aware keys.
// - UDPTransport, TCPTransport, LocalTransport: sockets come from an Adapter.Dialer (kernel or detour);
//   state lives on one event loop per transport.
// - HostsTransport, FakeIPStore/FakeIPTransport: answered in memory.
// - DNSRule, DNSRuleAction, DNSRouter: dns.rules evaluated as Go's dns/router.go; the router is the
//   box's DNSResolver (domain_resolver, resolve), answers hijack-dns and feeds reverse mapping.
// - TLSTransport (+DNSTLSClientHandler, OpenSSL over memory BIOs), DHCPTransport (+Net.DHCPSocket).
// - DNSTransportResolver: a rule-less Adapter.DNSResolver over the client and tagged transports.
//
// Invariants: every answer handed out has the asker's ID; a response is accepted only from the
// server, with a pending random ID and the asked question. No https (needs HTTP/2) or quic/h3
// (needs QUIC) transports yet; no RDRC (needs the cache file).
//
// Imports: Adapter, Config, Rules, Net, COpenSSL, NIOCore, NIOPosix; never Box, Router or a protocol. See
// ../shared/STYLE.md §1.

/// The module's name, for log lines and diagnostics.
package enum DNSModule {
    package static let name = "DNS"
}
