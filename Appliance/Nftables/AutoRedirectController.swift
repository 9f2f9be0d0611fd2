// Keeps the auto_redirect table's local address sets equal to this host's addresses, as sing-box's
// network-monitor callback does (`nftablesUpdateLocalAddressSet`): on every interface or address change
// the sets are recomputed and, if they differ, replaced in one batch.
package import Adapter
import Synchronization

/// Installs the auto_redirect table and follows an `InterfaceMonitor` until stopped.
package final class AutoRedirectController: Sendable {
    private struct State {
        var options: AutoRedirectOptions
        var token: InterfaceListenerToken?
        var lastError: String?
    }

    private let firewall: any FirewallInstaller
    private let monitor: any InterfaceMonitor
    private let state: Mutex<State>

    /// A controller for `options` (its `localAddresses` are replaced by the monitor's view).
    package init(options: AutoRedirectOptions, firewall: any FirewallInstaller, monitor: any InterfaceMonitor) {
        self.firewall = firewall
        self.monitor = monitor
        self.state = Mutex(State(options: options))
    }

    /// Installs the table with the current local addresses and starts following changes.
    package func start() throws {
        let options = state.withLock { state -> AutoRedirectOptions in
            state.options.localAddresses = AutoRedirectTable.localAddresses(of: monitor.interfaces)
            return state.options
        }
        try firewall.installAutoRedirect(options)
        let token = monitor.addListener { [weak self] event in
            switch event {
            case .addressesChanged, .linkChanged, .linkRemoved: self?.refresh()
            case .defaultInterfaceChanged: break
            }
        }
        state.withLock { $0.token = token }
    }

    /// Stops following changes and removes the table.
    package func stop() throws {
        let (token, name) = state.withLock { state -> (InterfaceListenerToken?, String) in
            defer { state.token = nil }
            return (state.token, state.options.tableName)
        }
        if let token { monitor.removeListener(token) }
        try firewall.removeTable(named: name)
    }

    /// Replaces the table with new route_address_set / route_exclude_address_set contents (a rule-set
    /// was updated). One batch: the old table stays if it fails. A no-op once stopped.
    package func updateRouteAddressSets(include: [NetworkPrefix], exclude: [NetworkPrefix]) throws {
        let options = state.withLock { state -> AutoRedirectOptions? in
            guard state.token != nil else { return nil }
            guard state.options.routeAddressSet != include || state.options.routeExcludeAddressSet != exclude else { return nil }
            state.options.routeAddressSet = include
            state.options.routeExcludeAddressSet = exclude
            return state.options
        }
        guard let options else { return }
        try firewall.installAutoRedirect(options)
    }

    /// The local addresses last installed.
    package var localAddresses: [NetworkPrefix] { state.withLock { $0.options.localAddresses } }

    /// The last update failure (the previous sets stay installed), for the log.
    package var lastError: String? { state.withLock { $0.lastError } }

    private func refresh() {
        let addresses = AutoRedirectTable.localAddresses(of: monitor.interfaces)
        let options = state.withLock { state -> AutoRedirectOptions? in
            guard state.token != nil, addresses != state.options.localAddresses else { return nil }
            state.options.localAddresses = addresses
            return state.options
        }
        guard let options else { return }
        do {
            try firewall.updateLocalAddresses(options)
        } catch {
            state.withLock { $0.lastError = "update local address set: \(error)" }
        }
    }
}
