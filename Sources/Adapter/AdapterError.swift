// AdapterError: errors that name an adapter or a flow step, worded as sing-box words them.

/// An error from an adapter. `description` is the text Go's sing-box prints for the same failure
/// (`not implemented: tun`, `start inbound/mixed[in]: listen tcp 127.0.0.1:80: bind: address already in use`).
package struct AdapterError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, for callers that branch.
    package enum Kind: Sendable, Equatable {
        /// The config type parsed, but this build has no implementation.
        case notImplemented
        /// A tag reference (`detour`, `outbound`, `final`) names nothing.
        case notFound
        /// A rule rejected the flow.
        case rejected
        /// The outbound cannot carry this network.
        case unsupportedNetwork
        /// Anything else (dial, listen, start).
        case other
    }

    package var kind: Kind
    package var message: String

    package init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    package var description: String { message }

    /// `not implemented: <type>`.
    @inline(never) package static func notImplemented(_ type: String) -> AdapterError {
        AdapterError(.notImplemented, "not implemented: \(type)")
    }

    /// Prefixes `context: ` to `error`'s message, keeping its kind (Go's `E.Cause(err, context)`).
    @inline(never) package static func cause(_ error: any Error, _ context: String) -> AdapterError {
        if let adapter = error as? AdapterError { return AdapterError(adapter.kind, "\(context): \(adapter.message)") }
        return AdapterError(.other, "\(context): \(error)")
    }
}

/// A flow's dial that failed, as Go's router words it for the log and for the inbound that reports
/// it to its client (an anytls SYN-ACK, a sing-mux stream status): `open connection to <dest> using
/// outbound/<type>[<tag>]: <error>`. Inbounds that map errors to reply codes read `underlying`.
package struct DialFailure: Error, CustomStringConvertible, Sendable {
    package var context: String
    package var underlying: any Error

    package init(_ context: String, underlying: any Error) {
        self.context = context
        self.underlying = underlying
    }

    package var description: String { "\(context): \(underlying)" }
}
