// BoxError: why a box could not be built or started, in Go's words.

/// A build or start failure. `description` is the adapter-level message Go's `check` prints;
/// `run` prefixes it with `create service: ` or `start service: ` (`runDescription`).
package struct BoxError: Error, CustomStringConvertible, Sendable {
    package enum Phase: Sendable { case create, start }
    package var phase: Phase
    /// The adapter-level message (`initialize inbound[0]: …`, `start inbound/mixed[m]: …`).
    package var message: String

    package init(_ phase: Phase, _ message: String) {
        self.phase = phase
        self.message = message
    }

    package var description: String { message }

    /// The text after `FATAL[0000] ` when `run` fails.
    package var runDescription: String {
        switch phase {
        case .create: "create service: \(message)"
        case .start: "start service: \(message)"
        }
    }
}
