// LocalRuleSetWatcher: reloads a `type: local` rule-set when its file changes, as Go 1.12 does with
// fswatch (route/rule/rule_set_local.go). We poll the file's identity (inode, size, mtime) once a
// second instead of holding an inotify descriptor: one stat per set per second, and it also sees a
// file replaced by rename, which is how editors and `rule-set compile` write. A reload that fails
// is logged (`reload rule-set <tag>: …`) and the rules in force stay.

import Adapter
import Config
import Rules
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Watches one local rule-set file. Control plane: its own task, cancelled on close.
final class LocalRuleSetWatcher: Sendable {
    let ruleSet: RuleSet
    let path: String
    let format: String
    let interval: Duration
    private let logger: ContextLogger
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(ruleSet: RuleSet, path: String, format: String, logger: ContextLogger, interval: Duration = .seconds(1)) {
        self.ruleSet = ruleSet
        self.path = path
        self.format = format
        self.logger = logger
        self.interval = interval
    }

    /// Starts polling; the identity seen now is the one the box loaded (built moments before).
    func start() {
        let first = SystemFile.stamp(path)
        let polling = Task { [self] in
            var last = first
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }
                let now = SystemFile.stamp(path)
                guard let now, now != last else { continue }
                last = now
                reload()
            }
        }
        task.withLock { $0 = polling }
    }

    func close() {
        task.withLock { task in
            task?.cancel()
            task = nil
        }
    }

    private func reload() {
        guard let bytes = SystemFile.read(path) else {
            return logger.error("reload rule-set \(ruleSet.tag): open \(path): no such file or directory")
        }
        do {
            ruleSet.update(try RuleSet.compile(bytes: bytes, format: format, path: path))
            logger.info("reloaded rule-set \(ruleSet.tag)")
        } catch {
            logger.error("reload rule-set \(ruleSet.tag): \(error.message)")
        }
    }
}
