// ClashModeStore: the Clash API's routing mode (Go's ClashServer.Mode / SetMode), read by the
// `clash_mode` rule items of the router and the DNS router and changed through the API.
import Synchronization

/// The current Clash mode and the modes a config names. Exists only when `experimental.clash_api`
/// is set (Go's clash server exists then even without `external_controller`); without it no
/// `clash_mode` item matches, as in Go.
package final class ClashModeStore: Sendable {
    /// The selectable modes: the default first when the rules do not name it (Go's order otherwise).
    package let modes: [String]
    private let current: Mutex<String>
    private let onChange: Mutex<[@Sendable (String) -> Void]>

    /// `defaultMode` (Go: `default_mode`, else "Rule") starts selected; `ruleModes` are the modes the
    /// route and DNS rules name, in Go's `CalculateClashModeList` order.
    package init(defaultMode: String?, ruleModes: [String]) {
        let start = (defaultMode ?? "").isEmpty ? "Rule" : defaultMode!
        modes = ruleModes.contains(start) ? ruleModes : [start] + ruleModes
        current = Mutex(start)
        onChange = Mutex([])
    }

    /// The mode now.
    package var mode: String { current.withLock { $0 } }

    /// Go's `SetMode`: an exact name, else one of the list equal ignoring case; anything else is
    /// ignored. Returns whether the mode changed (observers run then, e.g. the DNS cache is cleared).
    @discardableResult
    package func set(_ requested: String) -> Bool {
        guard let chosen = modes.first(where: { $0 == requested }) ?? modes.first(where: { $0.lowercased() == requested.lowercased() })
        else { return false }
        let changed = current.withLock { mode -> Bool in
            guard mode != chosen else { return false }
            mode = chosen
            return true
        }
        if changed { for observer in onChange.withLock({ $0 }) { observer(chosen) } }
        return changed
    }

    /// Runs `observer` after every change.
    package func observe(_ observer: @escaping @Sendable (String) -> Void) {
        onChange.withLock { $0.append(observer) }
    }

    /// Go's `CalculateClashModeList`: the distinct non-empty modes, those other than Rule, Global
    /// and Direct sorted first, then those three in that order.
    package static func modeList(_ named: [String]) -> [String] {
        var seen: [String] = []
        for mode in named where !mode.isEmpty && !seen.contains(mode) { seen.append(mode) }
        let predefined = ["Rule", "Global", "Direct"]
        return seen.filter { !predefined.contains($0) }.sorted() + predefined.filter { seen.contains($0) }
    }
}
