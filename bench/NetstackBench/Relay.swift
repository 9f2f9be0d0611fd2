// Flow relay for the bench: each TCP flow our stack terminates is joined to a kernel socket, as a
// tun inbound with a direct outbound does. Everything runs on the stack's one event loop.
import NIOCore
import NIOPosix
import NetstackNIO
import NetstackNIOTesting
import Netstack
import NetstackWire

/// The engine's relay buffering (Sources/Net/Relay.swift): reads of up to 256 KiB and a write queue
/// of up to twice that on both sides, so one full read does not flip the partner unwritable and stop
/// reading. Against NIO's defaults (64 KiB reads, 64 KiB high-water mark) these took single-stream
/// iperf3 up from 9.77 to 10.38 Gbit/s and down from 8.88 to 10.30 (bench/netstack-ab.sh, 6 pairs each
/// way, 5 won each).
let relayMaximumRead = 1 << 18
let relayWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: relayMaximumRead / 2, high: 2 * relayMaximumRead)

/// Relays every incoming TCP flow to the same port on `target` (a kernel socket); UDP is refused
/// with ICMP port unreachable.
func relayFlows(of driver: NetstackDriver, to target: String) {
    driver.onIncoming = { [unowned driver] flow in
        guard flow.key.proto == .tcp else { return driver.reject(flow, .unreachable) }
        let stackSide = RelayGlue(), kernelSide = RelayGlue()
        let accepted = driver.accept(flow) { channel in
            channel.eventLoop.makeCompletedFuture {
                let options = channel.syncOptions!
                try options.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                try options.setOption(ChannelOptions.writeBufferWaterMark, value: relayWaterMark)
                try channel.pipeline.syncOperations.addHandler(stackSide)
            }
        }
        ClientBootstrap(group: driver.eventLoop)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.recvAllocator,
                           value: AdaptiveRecvByteBufferAllocator(minimum: 2048, initial: 65_536, maximum: relayMaximumRead))
            .channelOption(ChannelOptions.writeBufferWaterMark, value: relayWaterMark)
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
