// DefaultInterfaceTracker: the interface outbound sockets bind to under `route.auto_detect_interface`,
// kept current by whoever watches the host's routes (the box's interface monitor), read per dial.
import Synchronization

/// The current default interface's name, written on monitor callbacks and read by every dial that
/// has no `bind_interface` of its own (Go's `DefaultInterfaceMonitor` behind `auto_detect_interface`).
/// Thread-safe; a read is one lock and a string retain.
package final class DefaultInterfaceTracker: Sendable {
    private let name: Mutex<String?>

    /// A tracker starting at `initial` (nil: no default interface known yet, sockets are not bound).
    package init(initial: String?) {
        name = Mutex(initial)
    }

    /// The interface new sockets bind to; nil while there is no default route.
    package var current: String? {
        name.withLock { $0 }
    }

    /// Records a new default interface (nil: lost). Returns whether it changed.
    @discardableResult
    package func update(_ newName: String?) -> Bool {
        name.withLock { value in
            guard value != newName else { return false }
            value = newName
            return true
        }
    }
}
