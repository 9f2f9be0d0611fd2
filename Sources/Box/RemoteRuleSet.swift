// RemoteRuleSet: keeps a `type: remote` rule-set current, as Go 1.12's route/rule/rule_set_remote.go.
//
// 1. build (box init): a cached copy in `experimental.cache_file` is compiled into the set, so
//    everything built from the set at init (tun's route_address_set) sees it
// 2. start stage `start` (after outbounds started, before inbounds): pick the download outbound
//    (`download_detour`, else the default one); with no cached copy, download now and fail the
//    start on error (`initialize rule-set[i]: initial rule-set: <tag>: …`); as in Go, up to 5 sets
//    start at once and the first failure cancels the others
// 3. start stage `postStart`: a task re-downloads when the copy is older than `update_interval`
//    (default 1d), then every interval; `If-None-Match` carries the ETag and a 304 keeps the rules
// 4. each successful download swaps the set's rules (new flows only), runs its update callbacks
//    and rewrites the cache; a failed one is logged (`fetch rule-set <tag>: …`) and changes nothing
// 5. close cancels the task

import Adapter
import Config
import NIOCore
import Rules
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One remote rule-set's updater. Control plane: runs on the box's control task and its own task.
final class RemoteRuleSet: Sendable {
    let index: Int
    let ruleSet: RuleSet
    let url: String
    let format: String
    let downloadDetour: String?
    let updateInterval: Duration
    private let cache: CacheFile?
    private let outbounds: OutboundManager
    private let group: any EventLoopGroup
    private let logger: ContextLogger
    private let maximumBodySize: Int
    /// Why the cached copy could not be used (reported at start, as Go).
    private let restoreError: String?
    private let state = Mutex<(lastUpdated: Int64, etag: String, outbound: (any Outbound)?, task: Task<Void, Never>?)>((0, "", nil, nil))

    /// `set` is the (empty) set the rules already reference; `options.source` must be `.remote`.
    init(index: Int, set: RuleSet, options: RuleSetOptions, cache: CacheFile?, outbounds: OutboundManager,
         group: any EventLoopGroup, logger: ContextLogger, maximumBodySize: Int = 32 << 20) {
        self.index = index
        self.ruleSet = set
        guard case .remote(let url, let detour, let interval) = options.source else { preconditionFailure("not a remote rule-set") }
        self.url = url
        self.format = options.format
        self.downloadDetour = detour.flatMap { $0.isEmpty ? nil : $0 }
        // Go: a zero or absent interval means 24h.
        self.updateInterval = interval.flatMap { $0.nanoseconds > 0 ? $0.duration : nil } ?? .seconds(86_400)
        self.cache = cache
        self.outbounds = outbounds
        self.group = group
        self.logger = logger
        self.maximumBodySize = maximumBodySize
        var restoreError: String?
        if let saved = cache?.load(options.tag) {
            do {
                set.update(try RuleSet.compile(bytes: saved.content, format: options.format, path: url))
                state.withLock { $0.lastUpdated = saved.lastUpdated; $0.etag = saved.etag }
            } catch {
                restoreError = error.message
            }
        }
        self.restoreError = restoreError
    }

    var tag: String { ruleSet.tag }

    /// Stage `start`: restores or downloads the first copy. Throws Go's wording.
    func start() async throws(BoxError) {
        let prefix = "initialize rule-set[\(index)]"
        if let restoreError { throw BoxError(.start, "\(prefix): restore cached rule-set: \(restoreError)") }
        let outbound: any Outbound
        if let downloadDetour {
            guard let found = outbounds.outbound(downloadDetour) else {
                throw BoxError(.start, "\(prefix): download detour not found: \(downloadDetour)")
            }
            outbound = found
        } else {
            guard let found = outbounds.defaultOutbound else { throw BoxError(.start, "\(prefix): missing default outbound") }
            outbound = found
        }
        let cached = state.withLock { state in
            state.outbound = outbound
            return state.lastUpdated != 0
        }
        if !cached {
            do { try await fetch() } catch {
                throw BoxError(.start, "\(prefix): initial rule-set: \(tag): \(error.message)")
            }
        }
    }

    /// Stage `postStart`: starts the update loop (Go's `loopUpdate`).
    func startUpdates() {
        let task = Task { [self] in
            if Self.nowMilliseconds() - state.withLock({ $0.lastUpdated }) > Self.milliseconds(updateInterval) {
                await updateOnce()
            }
            while !Task.isCancelled {
                do { try await Task.sleep(for: updateInterval) } catch { return }
                await updateOnce()
            }
        }
        state.withLock { $0.task = task }
    }

    func close() {
        state.withLock { state in
            state.task?.cancel()
            state.task = nil
        }
    }

    private func updateOnce() async {
        do { try await fetch() } catch {
            logger.error("fetch rule-set \(tag): \(error.message)")
        }
    }

    /// Downloads once; on success swaps the rules and saves the cache. Throws `BoxError` with Go's
    /// message (`Get "<url>": …`, `unexpected status: 404 Not Found`, a decode error).
    func fetch() async throws(BoxError) {
        logger.debug("updating rule-set \(tag) from URL: \(url)")
        let (outbound, etag) = state.withLock { ($0.outbound, $0.etag) }
        guard let outbound else { throw BoxError(.start, "rule-set \(tag) not started") }
        let downloader = RuleSetDownloader(outbound: outbound, group: group, maximumBodySize: maximumBodySize)
        let response = try await downloader.get(url, etag: etag.isEmpty ? nil : etag)
        switch response.status {
        case 200:
            break
        case 304:
            let now = Self.nowMilliseconds()
            state.withLock { $0.lastUpdated = now }
            if let cache, var saved = cache.load(tag) {
                saved.lastUpdated = now
                do { try cache.save(tag, saved) } catch {
                    logger.error("save rule-set updated time: \(error.message)")
                    return
                }
            }
            logger.info("update rule-set \(tag): not modified")
            return
        default:
            throw BoxError(.start, "unexpected status: \(response.status) \(response.statusText)")
        }
        let rules: [HeadlessRule]
        do { rules = try RuleSet.compile(bytes: response.body, format: format, path: url) } catch {
            throw BoxError(.start, error.message)
        }
        ruleSet.update(rules)
        let now = Self.nowMilliseconds()
        let newTag = state.withLock { state in
            if let etag = response.etag, !etag.isEmpty { state.etag = etag }
            state.lastUpdated = now
            return state.etag
        }
        if let cache {
            do { try cache.save(tag, SavedRuleSet(content: response.body, lastUpdated: now, etag: newTag)) } catch {
                logger.error("save rule-set cache: \(error.message)")
            }
        }
        logger.info("updated rule-set \(tag)")
    }

    static func nowMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// The router's rule-set part of the box's lifecycle (Go starts rule-sets in `router.Start`):
/// remote downloads at `start`, update loops and local file watchers from `postStart`.
final class RuleSetLifecycle: Lifecycle {
    let remotes: [RemoteRuleSet]
    let watchers: [LocalRuleSetWatcher]

    init(remotes: [RemoteRuleSet], watchers: [LocalRuleSetWatcher]) {
        self.remotes = remotes
        self.watchers = watchers
    }

    func start(_ stage: StartStage) async throws {
        switch stage {
        case .start:
            try await Self.startAll(remotes)
        case .postStart:
            for remote in remotes { remote.startUpdates() }
            for watcher in watchers { watcher.start() }
        default:
            break
        }
    }

    /// Go's rule-set start: up to 5 sets at once, and the first failure ends start (the others are
    /// cancelled) with that set's error.
    static func startAll(_ remotes: [RemoteRuleSet], concurrency: Int = 5) async throws(BoxError) {
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var next = remotes.makeIterator()
                for _ in 0..<concurrency {
                    guard let remote = next.next() else { break }
                    group.addTask { try await remote.start() }
                }
                while try await group.next() != nil {
                    if let remote = next.next() { group.addTask { try await remote.start() } }
                }
            }
        } catch let error as BoxError {
            throw error
        } catch {
            throw BoxError(.start, "initialize rule-set: \(error)")
        }
    }

    func close() async throws {
        for remote in remotes { remote.close() }
        for watcher in watchers { watcher.close() }
    }
}
