// Legacy per-inbound fields of `listen` options that change how the router treats a flow.
package import Config
import NIOCore

extension FlowMetadata {
    /// Copies the deprecated-but-honoured listen fields every inbound shares into the flow:
    /// `sniff` / `sniff_override_destination` / `sniff_timeout`, `domain_strategy`,
    /// `udp_timeout`, `udp_disable_domain_unmapping`. Inbounds call this once per flow.
    package mutating func applyListenOptions(_ listen: ListenOptions) {
        if listen.sniff {
            inboundSniff = InboundSniff(overrideDestination: listen.sniffOverrideDestination,
                                        timeout: listen.sniffTimeout.map { .nanoseconds($0.nanoseconds) })
        }
        if let strategy = listen.domainStrategy, strategy != .asIs {
            inboundDomainStrategy = DomainStrategy(rawValue: strategy.rawValue)
        }
        if let timeout = listen.udpTimeout, timeout.value.nanoseconds > 0 {
            udpTimeout = .nanoseconds(timeout.value.nanoseconds)
        }
        if listen.udpDisableDomainUnmapping { udpDisableDomainUnmapping = true }
        // Go's TCP listener gives every accepted connection the listen `detour` (its UDP listener does
        // not; the direct inbound sets it for packets itself).
        if network == .tcp, let detour = listen.detour, !detour.isEmpty { inboundDetour = detour }
    }
}
