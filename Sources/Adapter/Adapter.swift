// Adapter: the protocols the parts of the box meet through.
//
// Owns: `Inbound`, `Outbound`, `Endpoint`, `Service` (all `Lifecycle`), `Dialer`, `DNSResolver`,
// `FlowHandler`, `PacketConnection`, the flow value types (`FlowMetadata`, `Destination`,
// `IPAddress`, `IPPrefix`), logging (`LogCore`, `ContextLogger`) and the `AdapterRegistry`.
//
// Invariants:
// - A flow (one TCP connection or one UDP association) belongs to one `EventLoop`; every callback
//   about it runs there. Its bytes are `ByteBuffer`s passed through, never copied into arrays.
// - Nothing here touches a socket: `Net` and the netstack glue implement these protocols.
// - Imports: Config and NIOCore only (STYLE.md §1). Never Net, Router, Box or a protocol.

/// The module's name, for log lines and diagnostics.
package enum AdapterModule {
    package static let name = "Adapter"
}
