// RouteAddressSetRefresher: keeps auto_redirect's route_address_set / route_exclude_address_set in
// step with their rule-sets, as Go's tun does with rule-set update callbacks: a remote download or a
// local file reload gives new destination IP CIDRs, and the nftables table is replaced with them.

import Adapter
import Synchronization

/// The per-tag contents of both lists and the installer to call. Called on the updating rule-set's
/// task (never an event loop); the table update is one blocking netlink batch.
final class RouteAddressSetRefresher: Sendable {
    private let lists: Mutex<(include: [(tag: String, prefixes: [NetworkPrefix])], exclude: [(tag: String, prefixes: [NetworkPrefix])])>
    private let install: @Sendable ([NetworkPrefix], [NetworkPrefix]) throws -> Void
    private let logger: ContextLogger

    init(include: [(tag: String, prefixes: [NetworkPrefix])], exclude: [(tag: String, prefixes: [NetworkPrefix])],
         install: @escaping @Sendable ([NetworkPrefix], [NetworkPrefix]) throws -> Void, logger: ContextLogger) {
        self.lists = Mutex((include, exclude))
        self.install = install
        self.logger = logger
    }

    /// The rule-set `tag` now has `prefixes`: rebuild both lists and replace the table.
    func update(_ tag: String, _ prefixes: [IPPrefix]) {
        let converted = prefixes.compactMap { NetworkPrefix($0.description) }
        let (include, exclude) = lists.withLock { lists in
            for index in lists.include.indices where lists.include[index].tag == tag { lists.include[index].prefixes = converted }
            for index in lists.exclude.indices where lists.exclude[index].tag == tag { lists.exclude[index].prefixes = converted }
            return (lists.include.flatMap(\.prefixes), lists.exclude.flatMap(\.prefixes))
        }
        do {
            try install(include, exclude)
            logger.info("updated route address sets from rule-set \(tag)")
        } catch {
            logger.error("update route address sets from rule-set \(tag): \(error)")
        }
    }
}
