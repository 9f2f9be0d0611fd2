// Nftables: nftables through libnftnl + libmnl (no `nft` binary at run time): a small builder for
// tables, chains, sets, rules and expressions; the `auto_redirect` table as sing-box 1.12 builds it; a
// table for the `tproxy` inbound.
//
// Invariants: everything we change goes in ONE netlink batch (NFNL_MSG_BATCH_BEGIN … END), which the
// kernel applies entirely or not at all; any error in the answers means "nothing applied". Replacing a
// table is create + delete + create in the same batch, so there is no moment without rules.
// Must not import: Netlink, TunDevice, Box. Linux headers arrive through CMnl/CNftnl only.

/// The module's name, for log lines and diagnostics.
package enum NftablesModule {
    package static let name = "Nftables"
}

/// An nftables batch was refused: nothing in it was applied.
package struct NftablesError: Error, CustomStringConvertible, Equatable {
    /// What we were doing: `install table inet sing-box`.
    package var operation: String
    /// The first errno the kernel answered (or the socket call's).
    package var errno: Int32
    /// Which command of the batch failed, if known (`add rule sing-box prerouting #3`).
    package var failedCommand: String?

    /// An error for `operation`.
    package init(operation: String, errno: Int32, failedCommand: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.failedCommand = failedCommand
    }

    /// `install table inet sing-box: No such file or directory (errno 2) at add rule …; nothing applied`.
    package var description: String {
        var text = "\(operation): \(Self.describe(errno)) (errno \(errno))"
        if let failedCommand { text += " at \(failedCommand)" }
        return text + "; nothing applied"
    }

    private static func describe(_ code: Int32) -> String { errnoText(code) }
}
