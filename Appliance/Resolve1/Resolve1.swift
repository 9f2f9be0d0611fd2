// Resolve1: a drop-in for systemd-resolved's interfaces, answered by our DNS router.
//
// - `org.freedesktop.resolve1` on the system bus (sd-bus from libsystemd): the Manager at
//   /org/freedesktop/resolve1 and one Link object per kernel interface at
//   /org/freedesktop/resolve1/link/_<ifindex>, with the signatures of systemd 252's
//   resolved-bus.c / resolved-link-bus.c and resolved's error names (`Resolve1Bus`).
// - Per-link DNS settings pushed by network managers (`LinkTable`), dropped when netlink says the
//   link is gone; the `resolved` DNS server reads them through Adapter's `ResolvedLinkSource`.
// - Varlink `io.systemd.Resolve` (ResolveHostname, ResolveAddress) for nss-resolve (`VarlinkServer`).
// - The DNS stub listener (`DNSStubListener`, UDP and TCP) and stub-resolv.conf / resolv.conf
//   (`ResolvConfWriter`).
// What answers queries is a `ResolveBackend` the box hands in (its DNS router); this module never
// asks the system resolver. Imports Adapter, DNS (codec), Config (JSON for varlink), CSystemd;
// must not import Box, Router, Netlink or any protocol.
import Adapter
package import DNS
package import NIOCore

/// The module's name, for log lines and diagnostics.
package enum Resolve1Module {
    package static let name = "Resolve1"
    /// The well-known bus name.
    package static let busName = "org.freedesktop.resolve1"
    /// The Manager object.
    package static let managerPath = "/org/freedesktop/resolve1"
    /// The prefix of Link objects (`…/link/_31` for ifindex 1, sd-bus path escaping).
    package static let linkPathPrefix = "/org/freedesktop/resolve1/link"
    /// Where resolved keeps its runtime files (stub-resolv.conf, resolv.conf, the varlink socket).
    package static let defaultRuntimeDirectory = "/run/systemd/resolve"
}

/// What a resolve1 call failed with: a D-Bus error name and message, as systemd-resolved words them
/// (`org.freedesktop.resolve1.NoSuchLink`, "Link 42 not known"), or a setup failure with an errno.
package enum Resolve1Error: Error, CustomStringConvertible, Equatable {
    /// A D-Bus error reply.
    case bus(name: String, message: String)
    /// A system call or sd-bus call failed during setup (`connect to system bus: No such file or directory`).
    case system(String, Int32)

    package var description: String {
        switch self {
        case .bus(let name, let message): "\(name): \(message)"
        case .system(let what, let code): "\(what): \(String(cString: strerror(code)))"
        }
    }

    @inline(never) static func invalidArgs(_ message: String) -> Resolve1Error {
        .bus(name: "org.freedesktop.DBus.Error.InvalidArgs", message: message)
    }
    @inline(never) static func noSuchLink(_ index: Int32) -> Resolve1Error {
        .bus(name: "org.freedesktop.resolve1.NoSuchLink", message: "Link \(index) not known")
    }
    @inline(never) static func accessDenied(_ message: String) -> Resolve1Error {
        .bus(name: "org.freedesktop.DBus.Error.AccessDenied", message: message)
    }
    @inline(never) static func nxdomain(_ name: String) -> Resolve1Error {
        .bus(name: "org.freedesktop.resolve1.DnsError.NXDOMAIN", message: "'\(name)' not found")
    }
    @inline(never) static func noSuchRR(_ name: String) -> Resolve1Error {
        .bus(name: "org.freedesktop.resolve1.NoSuchRR", message: "'\(name)' does not have any RR of the requested type")
    }
    @inline(never) static func dnsError(_ name: String, rcode: DNSRcode) -> Resolve1Error {
        .bus(name: "org.freedesktop.resolve1.DnsError.\(rcode)",
             message: "Could not resolve '\(name)', server or network returned error \(rcode)")
    }
    @inline(never) static func noNameServers() -> Resolve1Error {
        .bus(name: "org.freedesktop.resolve1.NoNameServers", message: "No appropriate name servers or networks for name found")
    }
    @inline(never) static func timeout() -> Resolve1Error {
        .bus(name: "org.freedesktop.DBus.Error.Timeout", message: "Query timed out")
    }
}

import Glibc

/// What answers the queries that arrive over D-Bus, varlink and the stub: the box's DNS router.
/// Called from any task; implementations are thread-safe.
package protocol ResolveBackend: Sendable {
    /// Exchanges one query through the DNS router (rules, cache, transports). Throws when no answer
    /// came (the router dropped the query or every server failed).
    func exchange(_ query: DNSMessage) async throws -> DNSMessage
    /// The stub's UDP fast path: exchanges a query already in wire form, on `loop` and without a
    /// task hop, and completes on `loop` with the answer in wire form cut to the query's UDP size
    /// (RFC 6891 §7), or nil when no answer came in time.
    func exchangeDatagram(_ query: ByteBuffer, on loop: any EventLoop) -> EventLoopFuture<ByteBuffer?>
    /// The DNS router's cached answer to `query`, without a task or a flow (the stub's UDP fast
    /// path for the common case); nil when not cached.
    func cachedAnswer(_ query: DNSMessage) -> DNSMessage?
    /// Empties the DNS cache (FlushCaches).
    func flushCaches()
    /// The DNS cache's size, hits and misses (CacheStatistics); zeros when the box has no cache.
    var cacheStatistics: DNSCache.Statistics { get }
    /// Sets the cache's hit and miss counters back to zero (ResetStatistics).
    func resetCacheStatistics()
}
