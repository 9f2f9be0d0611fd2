// Shadowsocks: the `shadowsocks` inbound and outbound of sing-box 1.12 (sing-shadowsocks server,
// sing-shadowsocks2 client): `none`, the SIP004 AEAD methods and the SIP022 `2022-blake3-*`
// methods, over TCP and UDP; multi-user inbounds (`users`: SIP022 identity headers, legacy keys tried
// in turn) and clients with several PSKs; `udp_over_tcp` (sing's UoT v1/v2) on the outbound and the
// magic UoT destinations on the inbound; `multiplex` both ways (sing-mux, Transport); the outbound's
// SIP003 `plugin`s (Transport) and legacy stream ciphers (`ShadowsocksStreamCipher`, outbound only,
// as in Go). Not here: `destinations`, `managed` (each a `not implemented` error naming it).
//
// Layout: primitives (`ShadowsocksCrypto`, `BLAKE3`), the method and its key (`ShadowsocksMethod`),
// the stream framing (`ShadowsocksStream`), per-connection protocol state without I/O
// (`ShadowsocksTCPSession`), datagram sealing and opening (`ShadowsocksPacketCodec`), then the
// channel handlers and the adapters.
//
// Invariants: nothing a peer sends can trap; AEAD contexts are per connection or UDP session and
// live on that flow's event loop; the data path seals and opens in place.
// Imports: Adapter, Net, Config, COpenSSL, CSodium, NIOCore only (STYLE.md §1, floor 8).

/// The module's name, for log lines and diagnostics.
package enum ShadowsocksModule {
    package static let name = "Shadowsocks"
}
