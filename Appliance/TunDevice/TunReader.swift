// Reading a TUN queue on an event loop. SwiftNIO has no public API to watch a descriptor it does not own
// (NIOPipeBootstrap owns and reads it itself, into pooled buffers that lose our headroom), so readiness
// comes from a small thread waiting in an epoll set of its own, and all reading happens on the loop:
//
// 1. the thread waits in epoll_wait for the TUN fd (EPOLLIN | EPOLLONESHOT) or the stop eventfd
// 2. the one-shot registration disarms itself; the thread hands one `drain` to the loop (`execute`):
//    one hop per wakeup, not per packet
// 3. on the loop, `drain` reads batches of up to `batchSize` packets and calls the handler per batch,
//    at most `batchesPerDrain` times, then re-executes itself (so other work on the loop is not
//    starved), or, once a read finds the queue empty, re-arms the TUN fd with epoll_ctl from the loop
//    itself: the thread wakes only when packets are there, not to be told to watch again
// Under load the thread sleeps and the loop reads back-to-back batches. A short batch does not
// re-arm: handling it sends ACKs that the kernel sender answers in this very thread, so the queue is
// usually full again. Re-reading first took a single-stream upload (bench/netstack.sh) from about
// 11-12 to 13-16 Gbit/s and cut the thread's hops from ~11,000 to ~4,000 a second.
package import NIOCore
package import Netstack
import CLinux
import Glibc
import Synchronization

/// Delivers batches read from a `TunDevice` on an event loop until stopped.
package final class TunReader: @unchecked Sendable {
    // Invariant: `batch` is touched only on `loop`; the fds are created in init and closed in deinit.
    private let device: TunDevice
    private let loop: any EventLoop
    private let batchSize: Int
    private let batchesPerDrain: Int
    private let headroom: Int
    private let handler: (inout PacketBatch) -> Void
    private let errorHandler: (TunError) -> Void
    private var batch: PacketBatch
    private let pollSet: CInt
    private let stopEvent: CInt
    private let thread = Mutex<pthread_t?>(nil)
    private let stopped = Atomic<Bool>(false)

    /// Prepares a reader; `start()` begins. `handler` runs on `loop` with each non-empty batch and may
    /// take the packets (the batch is emptied, keeping its capacity, after it returns).
    /// `errorHandler` runs on `loop` if a read fails (the reader then stops).
    package init(device: TunDevice, loop: any EventLoop, batchSize: Int = 64, batchesPerDrain: Int = 8, headroom: Int = Stack.headroom,
                 handler: @escaping (inout PacketBatch) -> Void, errorHandler: @escaping (TunError) -> Void = { _ in }) throws {
        self.device = device
        self.loop = loop
        self.batchSize = batchSize
        self.batchesPerDrain = batchesPerDrain
        self.headroom = headroom
        self.handler = handler
        self.errorHandler = errorHandler
        self.batch = PacketBatch(capacity: batchSize)
        let stop = clinux_eventfd()
        guard stop >= 0 else { throw TunError(operation: "eventfd", errno: -stop) }
        let set = epoll_create1(CInt(EPOLL_CLOEXEC))
        guard set >= 0 else {
            let code = errno
            Glibc.close(stop)
            throw TunError(operation: "epoll_create1", errno: code)
        }
        var stopInterest = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(fd: stop))
        var tunInterest = Self.oneShotInterest(in: device)
        guard epoll_ctl(set, EPOLL_CTL_ADD, stop, &stopInterest) == 0,
              epoll_ctl(set, EPOLL_CTL_ADD, device.fileDescriptor, &tunInterest) == 0 else {
            let code = errno
            Glibc.close(set)
            Glibc.close(stop)
            throw TunError(operation: "epoll_ctl \(device.name)", errno: code)
        }
        pollSet = set
        stopEvent = stop
    }

    deinit {
        stop()
        Glibc.close(pollSet)
        Glibc.close(stopEvent)
    }

    /// Starts the poll thread. Idempotent. The thread keeps the reader alive: call `stop()`.
    package func start() throws {
        try thread.withLock { thread in
            guard thread == nil else { return }
            let context = Unmanaged.passRetained(self).toOpaque()
            var created = pthread_t()
            let result = pthread_create(&created, nil, { argument in
                let reader = Unmanaged<TunReader>.fromOpaque(argument!).takeRetainedValue()
                reader.pollLoop()
                return nil
            }, context)
            guard result == 0 else {
                Unmanaged<TunReader>.fromOpaque(context).release()
                throw TunError(operation: "start tun reader thread", errno: result)
            }
            thread = created
        }
    }

    /// Stops the poll thread and waits for it; batches already handed to the loop may still run.
    /// Idempotent. Must not be called on the poll thread.
    package func stop() {
        stopped.store(true, ordering: .releasing)
        let running = thread.withLock { thread -> pthread_t? in
            defer { thread = nil }
            return thread
        }
        guard let running else { return }
        var one: UInt64 = 1
        _ = Glibc.write(stopEvent, &one, 8)
        pthread_join(running, nil)
    }

    private func pollLoop() {
        var events = (epoll_event(), epoll_event())
        while !stopped.load(ordering: .acquiring) {
            let ready = withUnsafeMutablePointer(to: &events) { pointer in
                pointer.withMemoryRebound(to: epoll_event.self, capacity: 2) { epoll_wait(pollSet, $0, 2, -1) }
            }
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if (ready > 0 && events.0.data.fd == stopEvent) || (ready > 1 && events.1.data.fd == stopEvent) { return }
            // The TUN fd fired (readable, or an error the next read reports) and is disarmed until the
            // loop finds the queue empty.
            if ready > 0 { loop.execute { self.drain() } }
        }
    }

    /// Watches the TUN fd again (from the loop, once a read found the queue empty). If packets came in
    /// meanwhile, the thread wakes at once.
    private func rearm() {
        var interest = Self.oneShotInterest(in: device)
        if epoll_ctl(pollSet, EPOLL_CTL_MOD, device.fileDescriptor, &interest) != 0, !stopped.load(ordering: .acquiring) {
            let code = errno
            stopped.store(true, ordering: .releasing)
            errorHandler(TunError(operation: "epoll_ctl \(device.name)", errno: code))
        }
    }

    /// The TUN fd's registration: readable, once, until re-armed.
    private static func oneShotInterest(in device: TunDevice) -> epoll_event {
        epoll_event(events: EPOLLIN.rawValue | EPOLLONESHOT.rawValue, data: epoll_data_t(fd: device.fileDescriptor))
    }

    /// Runs on the loop: read and deliver batches, then re-arm or reschedule.
    private func drain() {
        for _ in 0..<batchesPerDrain {
            // The handler may have stopped the reader (and closed the device).
            guard !stopped.load(ordering: .acquiring) else { return }
            let count: Int
            do {
                count = try device.readBatch(into: &batch, maxPackets: batchSize, headroom: headroom)
            } catch let error as TunError {
                batch.removeAll()
                stopped.store(true, ordering: .releasing)
                errorHandler(error)
                return
            } catch {
                return
            }
            if count > 0 { handler(&batch) }
            batch.removeAll()
            if count == 0 {
                // Nothing queued: watch for readiness again. A short batch reads again first, since
                // handling it (the ACKs it sends reach the kernel sender in this thread) usually
                // queues more, and the thread would only hand it straight back.
                rearm()
                return
            }
        }
        // Still full after our share of the loop: come back after other queued work.
        loop.execute { self.drain() }
    }
}
