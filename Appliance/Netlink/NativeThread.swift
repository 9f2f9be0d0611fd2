// A plain pthread for blocking loops (the monitor's poll). Swift's cooperative pool must never block
// on poll(), and Foundation's Thread is not imported here.
import Glibc

/// A joinable pthread running one closure.
final class NativeThread {
    private var thread: pthread_t

    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new thread. Throws `NetlinkError` if pthread_create fails.
    init(name: String, _ body: @escaping () -> Void) throws {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { argument in
            let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw NetlinkError(operation: "start thread \(name)", errno: result)
        }
        self.thread = thread
    }

    /// Waits for the thread to finish.
    func join() {
        pthread_join(thread, nil)
    }
}
