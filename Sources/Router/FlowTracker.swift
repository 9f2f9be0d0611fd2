// FlowTracker: every live flow the router owns, so a closing box can end them all.
package import Adapter
package import NIOCore
import Synchronization

/// Live TCP channels and UDP packet connections by id. Adding and removing take a lock once per
/// flow (not per chunk). `closeAll` closes everything and waits for the closes to finish.
package final class FlowTracker: Sendable {
    private enum Flow {
        case tcp(any Channel)
        case udp(any PacketConnection)
    }

    private let flows = Mutex<(next: UInt64, live: [UInt64: Flow])>((0, [:]))

    package init() {}

    /// Number of live flows.
    package var count: Int { flows.withLock { $0.live.count } }

    /// Tracks `channel` until it closes (the channel's close future removes it).
    package func track(_ channel: any Channel) {
        let id = flows.withLock { state -> UInt64 in
            state.next += 1
            state.live[state.next] = .tcp(channel)
            return state.next
        }
        channel.closeFuture.whenComplete { [self] _ in _ = flows.withLock { $0.live.removeValue(forKey: id) } }
    }

    /// Tracks `connection` until it closes.
    package func track(_ connection: any PacketConnection) {
        let id = flows.withLock { state -> UInt64 in
            state.next += 1
            state.live[state.next] = .udp(connection)
            return state.next
        }
        connection.closeFuture.whenComplete { [self] _ in _ = flows.withLock { $0.live.removeValue(forKey: id) } }
    }

    /// Closes every live flow (each on its own loop) and waits until all are closed.
    package func closeAll() async {
        let live = flows.withLock { Array($0.live.values) }
        for flow in live {
            switch flow {
            case .tcp(let channel):
                try? await channel.close()
            case .udp(let connection):
                let loop = connection.eventLoop
                loop.execute { connection.close() }
                try? await connection.closeFuture.get()
            }
        }
    }
}
