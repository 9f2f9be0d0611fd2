// Box: builds a running sing-box from options, starts it in stages, closes it in reverse.
//
// Build (`Box.init`): log core → outbound manager and router → outbounds and endpoints → inbounds
// and services, each through the `AdapterRegistry`. A type Config knows but nothing registered
// becomes a `NotImplementedAdapter` that fails at start with `not implemented: <type>`.
// Start (`start()`): for each stage (initialize, start, post-start, started): services, outbounds
// (dependencies first), endpoints, inbounds. Any failure closes what was built and is reported as
// Go reports it (`start inbound/mixed[m]: listen tcp …: bind: address already in use`).
// Close (`close()`): inbounds, endpoints, outbounds, services — the reverse.
//
// Imports: everything below (STYLE.md §1); nothing imports Box but CLI and ControlAPI.

/// The module's name, for log lines and diagnostics.
package enum BoxModule {
    package static let name = "Box"
}
