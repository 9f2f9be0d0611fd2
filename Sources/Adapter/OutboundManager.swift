// OutboundManager: tag → outbound (and endpoint) lookup, and the default outbound.
import Synchronization

/// Every outbound and endpoint of a box by tag, plus the default (`route.final`, else the first
/// outbound). Filled by the box before any flow runs; read from any thread afterwards.
package final class OutboundManager: Sendable {
    private let state = Mutex<(byTag: [String: any Outbound], order: [String], defaultTag: String?)>(([:], [], nil))

    package init() {}

    /// Adds an outbound or endpoint. A duplicate tag replaces the earlier one (the config loader
    /// rejects duplicates before this point).
    package func add(_ outbound: any Outbound) {
        state.withLock { state in
            if state.byTag.updateValue(outbound, forKey: outbound.tag) == nil { state.order.append(outbound.tag) }
        }
    }

    /// Sets `route.final`. Nil falls back to the first outbound added.
    package func setDefault(tag: String?) {
        state.withLock { $0.defaultTag = tag }
    }

    /// The outbound or endpoint with `tag`.
    package func outbound(_ tag: String) -> (any Outbound)? {
        state.withLock { $0.byTag[tag] }
    }

    /// The default outbound; nil only when the box has none.
    package var defaultOutbound: (any Outbound)? {
        state.withLock { state in
            if let tag = state.defaultTag { return state.byTag[tag] }
            return state.order.first.flatMap { state.byTag[$0] }
        }
    }

    /// All outbounds in configuration order.
    package var all: [any Outbound] {
        state.withLock { state in state.order.compactMap { state.byTag[$0] } }
    }
}
