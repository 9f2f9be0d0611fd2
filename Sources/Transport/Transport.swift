// Transport: what carries a protocol's bytes besides a bare socket: sing's UDP-over-TCP (UoT),
// which the `socks` and `shadowsocks` outbounds use with `udp_over_tcp` and which the `socks`,
// `http` and `mixed` inbounds answer (Go's common/uot router); the v2ray transports (ws,
// httpupgrade, and grpc and http over NIOHTTP2 in frame mode) under trojan, vmess and vless; and
// sing-mux multiplexing (Mux/: smux, yamux and h2mux sessions, `MuxClient` for outbounds,
// `MuxFlowHandler` for inbounds); and the shadowsocks outbound's SIP003 plugins, in-process as in Go
// (`SIP003Plugin`: simple-obfs http/tls, v2ray-plugin over ws with mux.cool framing).
//
// Invariants: every connection here is confined to its channel's event loop; parsers of peer bytes
// never trap (typed throws, nil for "need more bytes"). Imports Adapter, Net, TLS, Config, NIOCore and NIOHTTP2/NIOHPACK; no
// protocol module, no Router (the inbounds wrap the router's `FlowHandler`, as Go wraps its router).
