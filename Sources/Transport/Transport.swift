// Transport: what carries a protocol's bytes besides a bare socket. Today: sing's UDP-over-TCP
// (UoT), which the `socks` and `shadowsocks` outbounds use with `udp_over_tcp` and which the
// `socks`, `http` and `mixed` inbounds answer (Go's common/uot router).
//
// Invariants: every connection here is confined to its channel's event loop; parsers of peer bytes
// never trap (typed throws, nil for "need more bytes"). Imports Adapter, Net and NIOCore only; no
// protocol module, no Router (the inbounds wrap the router's `FlowHandler`, as Go wraps its router).
