// The Clash API's pushed streams, as Go's clashapi writes them: `/traffic` (`{"up":N,"down":N}` each
// second), `/memory` (`{"inuse":N,"oslimit":0}` each second, the first 0), `/logs` (`{"type":…,
// "payload":…}` per log line at or above the asked level) and the WebSocket form of `/connections`
// (the snapshot at once, then every `interval` ms).
//
// 1. The route answers a stream request with a `ClashAPIStream` (query checked, secret already passed).
// 2. The connection handler upgrades (`Upgrade: websocket`: 101, the HTTP handlers leave, a
//    `ClashAPIWebSocketHandler` takes the channel) or starts a chunked 200.
// 3. A `ClashAPIStreamPump` on the channel's loop makes the lines (timers, or a log subscription) and
//    hands them to the framing: one chunk or one text frame per line, flushed.
// 4. A client that does not read costs a bounded amount, as in Go, where the handler blocks in its
//    write: lines go to the channel only while it is writable (below its high-water mark). A timer
//    tick that finds it unwritable is skipped (Go's ticker drops ticks a blocked reader misses); log
//    lines wait in a queue of `logBuffer` (Go's observer gives each subscriber a 64-entry channel)
//    and lines that do not fit are dropped, so one stalled subscriber neither grows our memory nor
//    holds up the loggers or the other subscribers.
// 5. The client closing (or a WebSocket close frame) stops the pump.
import Adapter
import Config
import Glibc
import NIOCore
import Synchronization
import Transport

/// What a stream request pushes.
enum ClashAPIStream: Sendable {
    case traffic
    case memory
    case logs(LogLevel)
    case connections(intervalMilliseconds: Int64)
}

/// Makes a stream's lines on one loop. Loop-confined: created, started and stopped on the
/// channel's loop (hence the unchecked conformance).
final class ClashAPIStreamPump: @unchecked Sendable {
    private let stream: ClashAPIStream
    private let setup: ClashAPISetup
    private let loop: any EventLoop
    private var task: RepeatedTask?
    private var logSubscription: UInt64?
    private var stopped = false
    /// The framing's `send` and the channel's writability, set by `start`.
    private var send: ((String) -> Void)?
    private var isWritable: () -> Bool = { true }
    /// Log lines waiting for the channel (filled on the logging threads, drained on the loop).
    private let logQueue = Mutex<LogQueue>(LogQueue())

    /// Go's per-subscriber buffer (`observable.NewObserver(…, 64)`): lines beyond it are dropped.
    static let logBuffer = 64

    struct LogQueue {
        var lines = CircularBuffer<String>(initialCapacity: 8)
        /// A drain is on its way to the loop (one at a time, however many lines come).
        var drainScheduled = false
        /// Lines dropped because the queue was full (a test hook).
        var dropped = 0
    }

    /// Log lines dropped for this subscriber so far.
    var droppedLogLines: Int { logQueue.withLock { $0.dropped } }

    init(stream: ClashAPIStream, setup: ClashAPISetup, loop: any EventLoop) {
        self.stream = stream
        self.setup = setup
        self.loop = loop
    }

    /// Starts pushing lines (each ends with a newline, as Go's `json.Encoder`) to `send`, while
    /// `isWritable` (the channel's writability) says the client keeps up; the framing calls
    /// `writabilityChanged` when it changes. On the loop.
    func start(isWritable: @escaping () -> Bool, _ send: @escaping (String) -> Void) {
        // The WebSocket handler starts a turn after it was added: the client may have gone by then.
        guard !stopped else { return }
        self.send = send
        self.isWritable = isWritable
        let bound = NIOLoopBound(send, eventLoop: loop)
        let writable = NIOLoopBound(isWritable, eventLoop: loop)
        let tracker = setup.connections
        switch stream {
        case .traffic:
            // Go reads the totals when the request comes and reports the difference each second.
            let last = NIOLoopBoundBox(tracker?.totals ?? (upload: 0, download: 0), eventLoop: loop)
            task = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                guard writable.value() else { return }  // a tick the client cannot take is skipped
                let now = tracker?.totals ?? (upload: 0, download: 0)
                let line = JSONValue.object(JSONObject([("up", .number(String(now.upload - last.value.upload))),
                                                        ("down", .number(String(now.download - last.value.download)))]))
                last.value = now
                bound.value(line.compactSerialized() + "\n")
            }
        case .memory:
            let first = NIOLoopBoundBox(true, eventLoop: loop)
            task = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                guard writable.value() else { return }
                // Go sends 0 first, "to make chart.js begin with zero".
                let inuse = first.value ? 0 : ClashAPIStreamPump.memoryInUse()
                first.value = false
                let line = JSONValue.object(JSONObject([("inuse", .number(String(inuse))), ("oslimit", .number("0"))]))
                bound.value(line.compactSerialized() + "\n")
            }
        case .connections(let interval):
            let snapshot = { ClashAPIStreamPump.snapshot(tracker).compactSerialized() + "\n" }
            send(snapshot())
            task = loop.scheduleRepeatedTask(initialDelay: .milliseconds(interval), delay: .milliseconds(interval)) { _ in
                guard writable.value() else { return }
                bound.value(snapshot())
            }
        case .logs(let level):
            guard let observer = setup.logCore?.observer else { return }
            logSubscription = observer.subscribe { [self] entryLevel, text in
                guard entryLevel <= level else { return }
                enqueueLog(entryLevel, text)
            }
        }
    }

    /// On a logging thread: queues the line if there is room, drops it if not (Go's
    /// `Subscriber.Emit`); one drain at a time goes to the loop.
    private func enqueueLog(_ level: LogLevel, _ text: String) {
        let scheduleDrain = logQueue.withLock { state -> Bool in
            guard state.lines.count < Self.logBuffer else {
                state.dropped += 1
                return false
            }
            let line = JSONValue.object(JSONObject([("type", .string(level.description)), ("payload", .string(text))]))
                .compactSerialized() + "\n"
            state.lines.append(line)
            guard !state.drainScheduled else { return false }
            state.drainScheduled = true
            return true
        }
        if scheduleDrain { loop.execute { self.drainLogs() } }
    }

    /// The channel's writability changed: queued log lines may go on. On the loop.
    func writabilityChanged() {
        guard case .logs = stream, !stopped else { return }
        drainLogs()
    }

    /// Hands queued log lines to the channel while it takes them; the rest wait for
    /// `writabilityChanged` (and new lines beyond the queue's room are dropped meanwhile).
    private func drainLogs() {
        while !stopped, let send, isWritable() {
            let line = logQueue.withLock { state -> String? in
                if let line = state.lines.popFirst() { return line }
                state.drainScheduled = false
                return nil
            }
            guard let line else { return }
            send(line)
        }
        logQueue.withLock { $0.drainScheduled = false }
    }

    /// Stops the timer or the subscription; idempotent.
    func stop() {
        guard !stopped else { return }
        stopped = true
        task?.cancel()
        task = nil
        if let logSubscription { setup.logCore?.observer.unsubscribe(logSubscription) }
        logSubscription = nil
        send = nil
        logQueue.withLock { $0.lines.removeAll() }
    }

    // MARK: Snapshots

    /// Go's `Snapshot` JSON (a Go map: keys sorted).
    static func snapshot(_ tracker: ConnectionTracker?) -> JSONValue {
        let totals = tracker?.totals ?? (upload: 0, download: 0)
        let flows = tracker?.snapshot() ?? []
        return .object(JSONObject([
            ("connections", .array(flows.map(connection))),
            ("downloadTotal", .number(String(totals.download))),
            ("memory", .number(String(memoryInUse()))),
            ("uploadTotal", .number(String(totals.upload))),
        ]))
    }

    /// Go's `TrackerMetadata.MarshalJSON`.
    static func connection(_ flow: TrackedFlow) -> JSONValue {
        let metadata = flow.metadata
        let inbound = metadata.inbound.isEmpty ? metadata.inboundType : metadata.inboundType + "/" + metadata.inbound
        var processPath = ""
        if let process = metadata.process {
            processPath = process.path
            if processPath.isEmpty {
                if process.userID != -1 { processPath = String(process.userID) }
            } else if !process.userName.isEmpty {
                processPath += " (\(process.userName))"
            } else if process.userID != -1 {
                processPath += " (\(process.userID))"
            }
        }
        let fields = JSONObject([
            ("destinationIP", .string(metadata.destination.ip.map { "\($0)" } ?? "")),
            ("destinationPort", .string(String(metadata.destination.port))),
            ("dnsMode", .string("normal")),
            ("host", .string(metadata.matchDomain ?? "")),
            ("network", .string(metadata.network.rawValue)),
            ("processPath", .string(processPath)),
            ("sourceIP", .string(metadata.source?.ip.map { "\($0)" } ?? "")),
            ("sourcePort", .string(String(metadata.source?.port ?? 0))),
            ("type", .string(inbound)),
        ])
        return .object(JSONObject([
            ("chains", .array(flow.chains.map { .string($0) })),
            ("download", .number(String(flow.download))),
            ("id", .string(flow.id)),
            ("metadata", .object(fields)),
            ("rule", .string(flow.rule)),
            ("rulePayload", .string("")),
            ("start", .string(ClashAPIRoutes.rfc3339(flow.start))),
            ("upload", .number(String(flow.upload))),
        ]))
    }

    /// Resident memory in bytes (`/proc/self/statm`); Go reports its heap and stacks in use.
    static func memoryInUse() -> UInt64 {
        let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else { return 0 }
        let fields = String(decoding: buffer[0..<count], as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// The channel after a stream request upgraded to WebSocket: pushes the pump's lines as text frames,
/// answers pings, and closes on the client's close frame or a bad frame.
final class ClashAPIWebSocketHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let pump: ClashAPIStreamPump
    private var frames = WebSocketFrameReader()
    private var inbound = ByteBuffer()

    init(pump: ClashAPIStreamPump) { self.pump = pump }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        // Start once the HTTP handlers have left (their removal completes within this loop turn).
        let pump = self.pump
        context.eventLoop.execute { pump.start(isWritable: { bound.value.channel.isWritable }) { line in
            let context = bound.value
            guard context.channel.isActive else { return }
            let frame = WebSocketFrameReader.frame(opcode: 0x1, payload: ByteBuffer(string: line), masked: false,
                                                   allocator: context.channel.allocator)
            context.writeAndFlush(NIOAny(frame), promise: nil)
        } }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        do {
            while let frame = try frames.next(from: &inbound) {
                switch frame.opcode {
                case 0x8:
                    let reply = WebSocketFrameReader.frame(opcode: 0x8, payload: ByteBuffer(), masked: false, allocator: context.channel.allocator)
                    context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in context.close(promise: nil) }
                    pump.stop()
                    return
                case 0x9:
                    let pong = WebSocketFrameReader.frame(opcode: 0xA, payload: frame.payload, masked: false, allocator: context.channel.allocator)
                    context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
                default:
                    break  // Go's stream handlers never read what the client sends
                }
            }
            inbound.discardReadBytes()
        } catch {
            pump.stop()
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        pump.stop()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pump.stop()
    }
}
