// BusLoop: one sd-bus connection driven by a thread of its own that blocks in poll(2) on the bus fd
// (sd_bus_get_fd / sd_bus_get_events / sd_bus_get_timeout) and on a pipe other threads use to
// hand it work. sd-bus objects are not thread-safe: everything touching the bus runs on this thread.
// SwiftNIO has no public way to watch readiness of a fd that someone else reads (shared/
// SWIFT-LINUX.md §3), hence the thread; it sleeps in poll and never spins.
import CSystemd
import Glibc
import Synchronization

/// A bus connection and the thread that serves it. Work posted with `post` runs on that thread in
/// order; `stop()` ends the loop, closes the bus and joins the thread.
package final class BusLoop: @unchecked Sendable {
    /// The sd_bus; touched only on the loop thread (and before the thread starts).
    private(set) var bus: OpaquePointer?
    /// A pipe other threads write a byte into to wake the loop: [read end, write end].
    private let wakeFDs: (Int32, Int32)
    private let queue = Mutex<[@Sendable () -> Void]>([])
    private let stopping = Atomic<Bool>(false)
    private var thread: pthread_t?

    /// Opens the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured). Throws `Resolve1Error` with
    /// sd-bus's errno text when there is no bus.
    package init() throws(Resolve1Error) {
        var opened: OpaquePointer?
        let result = sd_bus_open_system(&opened)
        guard result >= 0, let opened else { throw .system("connect to system bus", -result) }
        bus = opened
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            sd_bus_flush_close_unref(opened)
            throw .system("pipe", errno)
        }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        wakeFDs = (ends[0], ends[1])
    }

    deinit {
        if let bus { sd_bus_flush_close_unref(bus) }
        close(wakeFDs.0)
        close(wakeFDs.1)
    }

    /// Starts the loop thread. Call once, after registering objects.
    package func start() throws(Resolve1Error) {
        let context = Unmanaged.passRetained(self).toOpaque()
        var created = pthread_t()
        let result = pthread_create(&created, nil, { argument in
            let loop = Unmanaged<BusLoop>.fromOpaque(argument!).takeRetainedValue()
            loop.run()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<BusLoop>.fromOpaque(context).release()
            throw .system("start bus thread", result)
        }
        thread = created
    }

    /// Runs `work` on the loop thread (soon, in posting order).
    package func post(_ work: @escaping @Sendable () -> Void) {
        queue.withLock { $0.append(work) }
        var one: UInt8 = 1
        _ = write(wakeFDs.1, &one, 1)
    }

    /// Ends the loop, waits for the thread, then flushes and closes the bus. Call before the
    /// vtables registered on it are freed: closing walks them to unregister their members.
    package func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt8 = 1
        _ = write(wakeFDs.1, &one, 1)
        if let thread { pthread_join(thread, nil) }
        thread = nil
        if let bus { sd_bus_flush_close_unref(bus) }
        bus = nil
    }

    private func run() {
        guard let bus else { return }
        var fds = [pollfd(fd: 0, events: 0, revents: 0), pollfd(fd: wakeFDs.0, events: Int16(POLLIN), revents: 0)]
        while !stopping.load(ordering: .acquiring) {
            // 1. Run posted work (async replies), 2. let sd-bus process until it has nothing to do,
            // 3. sleep until the bus fd, its timeout or a post wakes us.
            let work = queue.withLock { list -> [@Sendable () -> Void] in
                defer { list.removeAll(keepingCapacity: true) }
                return list
            }
            for item in work { item() }
            while sd_bus_process(bus, nil) > 0 {}
            fds[0].fd = sd_bus_get_fd(bus)
            let events = sd_bus_get_events(bus)
            fds[0].events = Int16(truncatingIfNeeded: max(events, 0))
            fds[0].revents = 0
            fds[1].revents = 0
            var deadline: UInt64 = 0
            var timeoutMilliseconds: Int32 = -1
            if sd_bus_get_timeout(bus, &deadline) >= 0, deadline != UInt64.max {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let nowMicroseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
                timeoutMilliseconds = deadline <= nowMicroseconds ? 0 : Int32(clamping: (deadline - nowMicroseconds + 999) / 1000)
            }
            let ready = poll(&fds, 2, timeoutMilliseconds)
            if ready < 0 && errno != EINTR { break }
            if fds[1].revents != 0 {
                var drain = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
                _ = withUnsafeMutableBytes(of: &drain) { read(wakeFDs.0, $0.baseAddress, $0.count) }
            }
            // A dropped connection (the bus daemon went away) ends the loop.
            if fds[0].revents & Int16(POLLHUP | POLLERR) != 0 && sd_bus_is_open(bus) <= 0 { break }
        }
        // Late work (replies for calls in flight) still gets to unref its messages.
        let late = queue.withLock { list -> [@Sendable () -> Void] in
            defer { list.removeAll() }
            return list
        }
        for item in late { item() }
        sd_bus_flush(bus)
    }
}
