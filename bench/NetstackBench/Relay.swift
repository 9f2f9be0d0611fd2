// Flow relay for the bench: each TCP flow our stack terminates is joined to a kernel socket, as a
// tun inbound with a direct outbound does. Everything runs on the stack's one event loop.
import NIOCore
import NIOPosix
import NetstackNIO
import NetstackNIOTesting
import Netstack
import NetstackWire

/// Relays every incoming TCP flow to the same port on `target` (a kernel socket); UDP is refused
/// with ICMP port unreachable.
func relayFlows(of driver: NetstackDriver, to target: String) {
    driver.onIncoming = { [unowned driver] flow in
        guard flow.key.proto == .tcp else { return driver.reject(flow, .unreachable) }
        let stackSide = RelayGlue(), kernelSide = RelayGlue()
        let accepted = driver.accept(flow) { channel in
            channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).flatMapThrowing {
                try channel.pipeline.syncOperations.addHandler(stackSide)
            }
        }
        ClientBootstrap(group: driver.eventLoop)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(kernelSide) }
            }
            .connect(host: target, port: Int(flow.key.local.port))
            .whenComplete { result in
                switch result {
                case .success: RelayGlue.join(stackSide, kernelSide)
                case .failure: accepted.whenSuccess { $0.close(promise: nil) }
                }
            }
    }
}
